"""What properties share: findings, measurements, rounding a case to the tested dtype."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog.spec import Case
from ..frameworks.guard import Hostile
from ..tolerance import COTANGENT_MAX, HALF, MAX, round_to


class Finding(AssertionError):
    """A failed check. Raised inside a hypothesis example so that it can be shrunk; the instance
    that escapes hypothesis is the one raised by the smallest failing example."""

    def __init__(self, code: str, message: str, *, error: float | None = None, bound: float | None = None,
                 case: Case | None = None, details: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message
        self.error, self.bound = error, bound
        self.case = case
        self.details = details or {}


@dataclass
class Measurement:
    """What a passing example measured: its error and bound in eps units, and (for specs with an
    exact variant) how far the framework's documented semantics are from the exact loss."""
    error: float
    bound: float
    deviation: float | None = None      # eps units of the tested dtype
    deviation_abs: float | None = None
    precision: Any = None               # the spec's Precision that excused an error beyond the bound
    extra: dict[str, Any] = field(default_factory=dict)


def rounded(case: Case, dtype: str, runtime: str | None = None) -> Case:
    """The case as the framework sees it: float inputs and float array parameters in ``dtype``."""
    def r(x):
        x = np.asarray(x)
        return round_to(dtype, x) if np.issubdtype(x.dtype, np.floating) else x

    inputs = {k: r(v) for k, v in case.inputs.items()}
    params = {k: r(v) if isinstance(v, np.ndarray) else v for k, v in case.params.items()}
    return Case(inputs, params, dtype=dtype, runtime=case.runtime if runtime is None else runtime)


def evaluate(spec, runtime, case, dtype, cotangent=None, want_grad=False, mode=None):
    """Call the framework (``mode``: see ``Runtime.evaluate``); any exception from the loss becomes
    an X001 finding, an input it wrote into an X008 one, a framework setting it changed (and the
    runtime put back) an X009 one."""
    try:
        if mode is None:
            return runtime.evaluate(spec.call, spec.args, case, dtype, cotangent, want_grad)
        return runtime.evaluate(spec.call, spec.args, case, dtype, cotangent, want_grad, mode=mode)
    except Finding:
        raise
    except Hostile as exc:
        raise Finding(exc.code, exc.message, case=case, details=exc.details) from exc
    except Exception as exc:  # the loss under test raised: that is the finding
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        details = {"exception": type(exc).__name__}
        if dtype in HALF and _UNSUPPORTED.search(str(exc)):
            details["unsupported_dtype"] = True   # the runner reports the check as skipped, with the message
        raise Finding("X001", f"{type(exc).__name__}: {msg}", case=case, details=details) from exc


#: how the frameworks say they have no kernel for a dtype (torch, TensorFlow, XLA)
_UNSUPPORTED = re.compile(r"not implemented for '(Half|BFloat16)'|DT_(HALF|BFLOAT16)|"
                          r"(half|bfloat16|float16) is not (in the list of allowed values|supported)", re.I)


def representable(x, dtype: str) -> np.ndarray:
    """Where a finite float64 result stays finite when rounded to ``dtype`` (float16 ends at 65504):
    where it does not, the framework's infinity of the right sign is the correctly rounded answer."""
    x = np.asarray(x, dtype=np.float64)
    return ~np.isfinite(x) | np.isfinite(round_to(dtype, x))


def overflows(x, dtype: str) -> np.ndarray | None:
    """``~representable(x, dtype)``, or None where no element overflows (every float64 result, and
    most others: one reduction decides it)."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float64" or x.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        if np.max(np.abs(x)) <= MAX[dtype]:   # False on a NaN: the elementwise test below
            return None
    out = ~representable(x, dtype)
    return out if out.any() else None


def round_overflow(x, dtype: str, actual) -> np.ndarray:
    """``x`` with the finite values that overflow ``dtype`` replaced by the infinity they round to,
    where the framework returned an infinity (a framework that computes a float16 loss in float32 and
    returns it so is compared with the finite value)."""
    x = np.asarray(x, dtype=np.float64)
    inf = np.isinf(np.asarray(actual, dtype=np.float64)) & ~representable(x, dtype)
    with np.errstate(invalid="ignore"):   # sign(0) * inf, discarded by the where
        return np.where(inf, np.sign(x) * np.inf, x)


def n_terms(case: Case) -> int:
    """Number of summands a reduction may accumulate: the largest input's size."""
    return max((int(np.size(v)) for v in case.inputs.values()), default=1)


def grad_shapes(spec, case) -> dict[str, tuple]:
    """{oracle name: shape} of the case's differentiable inputs, what ``Result.kinks`` takes."""
    return {a.oracle_name: np.shape(case.inputs[a.name]) for a in spec.grad_args if a.name in case.inputs}


def cotangent_for(shape) -> np.ndarray:
    """A fixed, non-uniform cotangent for non-scalar outputs (uniform ones would hide a gradient
    that mixes up output elements)."""
    n = int(np.prod(shape)) if shape else 1
    return (1.0 + (COTANGENT_MAX - 1.0) * np.sin(np.arange(n) + 1.0)).reshape(shape)


def within_declared_precision(spec, runtime, dtype, case, measure, bound_of) -> Any:
    """The spec's :class:`Precision` when the framework's result is right for a computation in the
    declared lower dtype, else None.

    ``measure(case, dtype)`` returns the error in ``dtype`` eps against the oracle evaluated on
    ``case``; it is called with the case rounded to the effective dtype (a float64 weight of 1e-257
    is 0 in float32, and a float32 computation is right to treat it so) and, failing that, with the
    case as given (frameworks that compute only part of the loss in the lower dtype: Keras reduces
    float32 terms with float64 sample weights)."""
    p = spec.precision_for(dtype, runtime.name)
    if p is None:
        return None
    bound = bound_of(p.effective)
    if measure(rounded(case, p.effective), p.effective) <= bound or measure(case, p.effective) <= bound:
        return p
    return None
