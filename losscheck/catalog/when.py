"""Predicates for scoped expected failures: ``when(case, dtype) -> bool``."""
from __future__ import annotations

import numpy as np

from ..tolerance import HALF, MAX, round_to


def squared_norm_underflows(*names: str, rsqrt_grad: bool = False):
    """True when one of the named inputs has a vector (along the case's ``axis`` parameter, the last
    axis when it has none; restricted to the ``where`` parameter when there is one) whose sum of
    squares is 0 in the tested dtype: a zero
    vector, or one so small that x^2 underflows. With ``rsqrt_grad``, also when the derivative of
    rsqrt at that sum, -s^-1.5 / 2, overflows: formed as s^-1.5 (sums below about 1e-205 in float64,
    6.1e-4 in float16: measured on jax and torch, a vector of norm 0.02 gives NaN, 0.03 does not)."""
    def when(case, dtype) -> bool:
        compute = np.float64 if dtype == "float64" else np.float32
        where = case.params.get("where")
        with np.errstate(under="ignore"):
            for k in names:
                sq = np.square(np.asarray(case.inputs[k], dtype=compute))
                if where is not None:
                    sq = np.where(np.broadcast_to(np.asarray(where, bool), sq.shape), sq, 0)
                total = np.sum(sq, axis=case.params.get("axis", -1))
                if np.any(total == 0):
                    return True
                if rsqrt_grad:
                    with np.errstate(over="ignore", divide="ignore"):
                        if np.any(np.isinf(np.power(total, compute(-1.5)))):
                            return True
                        if dtype in HALF and np.any(np.power(round_to(dtype, total), -1.5) > MAX[dtype]):
                            return True
        return False
    return when


def flushed(x, dtype):
    """``x`` as XLA on CPU sees it: subnormal inputs and results are flushed to zero."""
    tiny = np.finfo(np.float64 if dtype == "float64" else np.float32).tiny
    x = np.asarray(x)
    return np.where(np.abs(x) < tiny, 0.0, x)


def any_flushed(values, dtype) -> bool:
    """True when one of ``values`` has a non-zero element that :func:`flushed` makes 0."""
    return any(bool(np.any((x != 0) & (flushed(x, dtype) == 0))) for x in map(np.asarray, values))


def subnormal_difference(a: str, b: str):
    """True when ``a - b`` has a non-zero element below the smallest normal number of the tested
    dtype: flush-to-zero CPUs (TensorFlow, XLA) make it 0."""
    def when(case, dtype) -> bool:
        compute = np.float64 if dtype == "float64" else np.float32
        with np.errstate(under="ignore"):
            diff = np.abs(np.asarray(case.inputs[a], compute) - np.asarray(case.inputs[b], compute))
        return bool(np.any((diff != 0) & (diff < np.finfo(compute).tiny)))
    return when
