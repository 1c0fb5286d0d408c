"""The error model: how close is close enough, per dtype.

Error is measured in units of ``eps(dtype) * scale``, where ``scale`` is returned by the oracle with
every value (the magnitude of the summands behind it). A correct implementation lands within a
small, dtype-independent number of these units; a bug usually lands thousands of units away.

Value error (per output element, the maximum is reported)::

    error = |framework - oracle| / (eps * max(scale, tiny))

Gradient error (normwise per input, the maximum over inputs is reported)::

    error = max_i |g_framework - g_oracle|_i / (eps * max_i grad_scale_i)

over the elements that are not within ``KINK_RTOL`` of a non-differentiable point.

Scales are floored at ``tiny / eps`` (``tiny``: the dtype's smallest normal number), so any
difference smaller than the smallest normal number counts as rounding: XLA and GPUs flush
subnormal results to zero.

The bounds below were calibrated on correct implementations (``losscheck check --all``, float64
and float32, every framework and Keras backend present): see README "Tolerance model".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The half-precision dtypes.
HALF = ("float16", "bfloat16")
#: the largest element of the cotangent the gradient property pulls back (properties.common.cotangent_for)
COTANGENT_MAX = 1.5
#: Machine epsilon (spacing of 1.0) per dtype name.
EPS = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0 ** -7,
}
#: Smallest positive normal per dtype: differences below it are rounding (see the module doc).
TINY = {
    "float64": float(np.finfo(np.float64).tiny),
    "float32": float(np.finfo(np.float32).tiny),
    "float16": float(np.finfo(np.float16).tiny),
    "bfloat16": float(np.finfo(np.float32).tiny),
}
#: Largest finite value per dtype (bfloat16: float32's exponent range with an 8-bit significand).
MAX = {
    "float64": float(np.finfo(np.float64).max),
    "float32": float(np.finfo(np.float32).max),
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": (2.0 - 2.0 ** -7) * 2.0 ** 127,
}
DTYPES = tuple(EPS)


@dataclass(frozen=True)
class Bound:
    """Allowed error in eps units: ``base + per_log2 * log2(1 + terms)`` for a value computed from
    ``terms`` summands (reductions accumulate rounding error with the number of summands)."""
    base: float
    per_log2: float

    def __call__(self, terms: int = 1) -> float:
        return self.base + self.per_log2 * math.log2(1 + max(int(terms), 0))


# The same number of eps in float64, float32 and float16. Half precision once had twice as many,
# which in bfloat16 (eps 2^-7) let anything within 100 % of the scale pass: Keras Circle's float16
# mean came out twice the exact one at 127 eps and passed (README, "Half precision"). In bfloat16
# even 64 eps is half the scale, so a factor of 2 passed; its bound stays below the 64 eps of a
# factor of 2 up to 4,095 summands.
VALUE_BOUND = {d: Bound(64, 8) for d in DTYPES} | {"bfloat16": Bound(16, 4)}
GRAD_BOUND = dict(VALUE_BOUND)

#: Gradient elements within this relative distance of a kink (in eps of the dtype) are a subgradient
#: choice: rounding inside the loss may move them across it. The distance is the base of the dtype's
#: bound (64 bfloat16 eps would be a relative distance of 0.5).
KINK_RTOL_EPS = {d: b.base for d, b in GRAD_BOUND.items()}


def kink_rtol(dtype: str) -> float:
    return KINK_RTOL_EPS[dtype] * EPS[dtype]


def kinks_where_finite(kinks, *grads):
    """The kink mask to skip, less the elements where a gradient is NaN or infinite: at a kink either
    one-sided derivative is right, a NaN or an infinity is neither (the oracle's is finite there, or
    the comparison drops the element anyway)."""
    if kinks is None:
        return None
    out = np.asarray(kinks, dtype=bool)
    for g in grads:
        if g is not None and np.shape(g) == out.shape:
            out = out & np.isfinite(g)
    return out


def round_to(dtype: str, x):
    """Round a float64 array to ``dtype`` and back to float64 (what the framework will see)."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float64":
        return x
    if dtype == "bfloat16":
        return _round_bfloat16(x)
    with np.errstate(over="ignore"):
        return x.astype(dtype).astype(np.float64)


def _round_bfloat16(x):
    """Round-to-nearest-even to bfloat16 (the top 16 bits of a float32), without ml_dtypes."""
    with np.errstate(over="ignore"):
        f = np.ascontiguousarray(x.astype(np.float32))
    bits = f.view(np.uint32)
    nan = np.isnan(f)
    lsb = (bits >> 16) & 1
    rounded = ((bits.astype(np.uint64) + 0x7FFF + lsb) >> 16 << 16).astype(np.uint32)
    out = rounded.view(np.float32).astype(np.float64)
    return np.where(nan, np.nan, out).reshape(np.shape(x))  # ascontiguousarray makes 0-d arrays 1-d


def scale_floor(dtype: str) -> float:
    return TINY[dtype] / EPS[dtype]


def value_error(actual, expected, scale, dtype: str):
    """Per-element error in eps units; NaN where the oracle is undefined (NaN).

    Equal infinities are no error; an infinity or NaN where the oracle is finite is infinite error.
    """
    a, e, s = (np.asarray(v, dtype=np.float64) for v in (actual, expected, scale))
    a, e, s = np.broadcast_arrays(a, e, s)
    denom = EPS[dtype] * np.maximum(np.where(np.isfinite(s), s, 0.0), scale_floor(dtype))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - e) / denom
    same_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
    err = np.where(same_inf, 0.0, err)
    err = np.where(np.isfinite(e) & ~np.isfinite(a), np.inf, err)
    return np.where(np.isnan(e), np.nan, err)


def grad_error(actual, expected, magnitude, dtype: str, skip=None) -> float:
    """Normwise gradient error in eps units over the elements not in ``skip``."""
    a, e, m = (np.asarray(v, dtype=np.float64) for v in (actual, expected, magnitude))
    if a.size and a.shape == e.shape == m.shape and (skip is None or not np.any(skip)):
        # nothing skipped: a finite max |a - e| means every element of both is finite, and the
        # masked path below reduces to this (same elements, same operations); else take it
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.max(np.abs(a - e))
        top = float(np.max(m))
        if math.isfinite(diff) and math.isfinite(top):
            return float(diff / (EPS[dtype] * max(top, scale_floor(dtype))))
    keep = np.ones(e.shape, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    keep &= ~np.isnan(e)
    if not keep.any():
        return 0.0
    a, e, m = a[keep], e[keep], m[keep]
    if not np.all(np.isfinite(a[np.isfinite(e)])):
        return math.inf
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0
    # a non-finite magnitude (0 * inf, an infinite input) counts as 0, as value_error counts a
    # scale: the norm of the others, not an infinite or NaN one that would pass any gradient
    mf = m[finite]
    denom = EPS[dtype] * max(float(np.max(mf, where=np.isfinite(mf), initial=0.0)), scale_floor(dtype))
    return float(np.max(np.abs(a[finite] - e[finite])) / denom)
