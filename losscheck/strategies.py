"""Hypothesis strategies for loss inputs: domains, shapes and parameters.

Every draw goes through ``data.draw(..., label=...)`` so a failing example prints as named
arguments, and every array respects a size budget (``SIZE_BUDGET`` elements) so examples stay
small, fast and readable when shrunk.
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SIZE_BUDGET = 48
MAX_BATCH = 6
MAX_CLASSES = 5

#: In extreme mode (the numerics property) every domain also draws its hard values: magnitudes up
#: to 1e4 and infinities for unbounded reals, exact 0 and 1 and values within 1e-12 of them for
#: probabilities, zero vectors, zero-sum rows.
_EXTREME = contextvars.ContextVar("losscheck_extreme", default=False)
HUGE = 1e4


@contextlib.contextmanager
def extreme():
    token = _EXTREME.set(True)
    try:
        yield
    finally:
        _EXTREME.reset(token)


def is_extreme() -> bool:
    return _EXTREME.get()


def _floats(lo, hi, **kw):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kw)


def _edges(lo, hi):
    """Hard values inside [lo, hi]: the bounds, values just inside them, and (for wide real domains)
    magnitudes up to 1e4 and the infinities."""
    pts = {lo, hi, 0.0 if lo <= 0 <= hi else lo}
    for b in (lo, hi):
        for d in (1e-12, 1e-7):
            pts.update(v for v in (b + d, b - d) if lo <= v <= hi)
    if lo <= -1 and hi >= 1:  # an unbounded real domain: huge and infinite values
        pts.update((-HUGE, HUGE, -1e3, 1e3, -88.0, 88.0, -np.inf, np.inf))
    elif hi > 1 and lo >= 0:  # an unbounded positive domain (not probabilities)
        pts.update((HUGE, 1e3))
    return sorted(pts)


def _elements(lo, hi):
    if not is_extreme():
        return _floats(lo, hi)
    return st.one_of(st.sampled_from(_edges(lo, hi)), _floats(lo, hi))


#: Sizes a dimension takes. Compiling frameworks (JAX/XLA) build one program per new shape, so a
#: few sizes -- 1, a small even, a small odd, a prime, the bounds -- buy most of the coverage of every
#: size at a fraction of the compilations. Non-equal sizes keep axes distinguishable.
SIZES = (1, 2, 3, 5)


def dim(data, label, lo, hi) -> int:
    """A dimension size in [lo, hi], from :data:`SIZES` and the bounds."""
    choices = sorted({lo, hi, *(n for n in SIZES if lo <= n <= hi)})
    return data.draw(st.sampled_from(choices), label=label)


def batch_size(data, label="N", lo=1, hi=MAX_BATCH) -> int:
    return dim(data, label, lo, hi)


def classes(data, label="C", lo=2, hi=MAX_CLASSES) -> int:
    return dim(data, label, lo, hi)


def shape(data, label="shape", min_dims=1, max_dims=3, min_side=1, max_side=MAX_BATCH) -> tuple[int, ...]:
    """A tensor shape within the size budget; the first axis is the batch."""
    sides = st.sampled_from(sorted({min_side, max_side, *(n for n in SIZES if min_side <= n <= max_side)}))
    shp = tuple(data.draw(st.lists(sides, min_size=min_dims, max_size=max_dims), label=label))
    while int(np.prod(shp)) > SIZE_BUDGET:
        shp = shp[:-1] if len(shp) > min_dims else tuple(max(min_side, s // 2) for s in shp)
    return tuple(shp)


def reals(data, shp, label, lo=-8.0, hi=8.0) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shp, elements=_elements(lo, hi)), label=label)


def positives(data, shp, label, lo=1e-3, hi=8.0) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shp, elements=_elements(lo, hi)), label=label)


def probabilities(data, shp, label, lo=0.0, hi=1.0) -> np.ndarray:
    """Probabilities including, by default, exactly 0 and 1 (where clipping conventions differ)."""
    return data.draw(hnp.arrays(np.float64, shp, elements=_elements(lo, hi)), label=label)


def simplex(data, shp, label, axis=-1, floor=0.0) -> np.ndarray:
    """Rows that sum to one along ``axis`` (drawn as non-negative weights, then normalised).
    In extreme mode a row may be all zeros (a zero-sum "distribution")."""
    w = data.draw(hnp.arrays(np.float64, shp, elements=_elements(0.0, 1.0)), label=label)
    zero = w.sum(axis=axis, keepdims=True) == 0
    if is_extreme() and zero.any():
        return np.where(zero, 0.0, (w + floor) / np.where(zero, 1.0, (w + floor).sum(axis=axis, keepdims=True)))
    w = w + floor + 1e-3 * zero
    return w / w.sum(axis=axis, keepdims=True)


def binary_labels(data, shp, label) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shp, elements=st.sampled_from([0.0, 1.0])), label=label)


def sign_labels(data, shp, label) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shp, elements=st.sampled_from([-1.0, 1.0])), label=label)


def indices(data, shp, num_classes, label, extra=()) -> np.ndarray:
    """Integer class labels in [0, num_classes), plus any of ``extra`` (e.g. an ignore index)."""
    elements = st.integers(0, num_classes - 1)
    if extra:
        elements = st.one_of(elements, st.sampled_from(list(extra)))
    return data.draw(hnp.arrays(np.int64, shp, elements=elements), label=label)


def one_hot_rows(data, shp, label) -> np.ndarray:
    """One-hot float rows along the last axis."""
    idx = indices(data, shp[:-1], shp[-1], label)
    return (idx[..., None] == np.arange(shp[-1])).astype(np.float64)


def choice(data, options, label):
    return data.draw(st.sampled_from(list(options)), label=label)


def flag(data, label) -> bool:
    return data.draw(st.booleans(), label=label)


def number(data, label, lo, hi) -> float:
    return data.draw(_floats(lo, hi), label=label)


def mask(data, shp, label) -> np.ndarray:
    """A boolean mask (``where=``), at least one True along the last axis of each row."""
    m = data.draw(hnp.arrays(bool, shp, elements=st.booleans()), label=label)
    if m.ndim:
        m[..., 0] |= ~m.any(axis=-1)
    return m
