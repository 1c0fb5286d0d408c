"""Hypothesis strategies for loss inputs: domains, shapes and parameters.

Every draw goes through ``data.draw(..., label=...)``: under ``st.data()`` hypothesis notes each
labelled value (the runner's searches draw through :func:`cases`, which drops the labels, since
reports print the drawn case by argument name). Every array respects a size budget
(``SIZE_BUDGET`` elements) so examples stay small, fast and readable when shrunk.

Strategy objects are built once per distinct argument set and reused (:func:`_cached`): hypothesis
validates and labels a strategy on its first draw, which cost about a quarter of a drawn example
when every draw built a new one. The draws themselves are unchanged.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools

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


@contextlib.contextmanager
def reproducible():
    """Draws that depend on the seed alone. Hypothesis (since 6.131) also draws constants it finds in
    the source of every non-site-packages module imported so far (losscheck's own, the user's loss
    file), so a seed's examples changed with what the process had imported before: a repro command
    run alone drew other inputs than the nightly that printed it. Inside this block that pool is
    empty; its cache is cleared on the way in and out so draws outside keep hypothesis' behaviour."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
        real, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
    except (ImportError, AttributeError):  # a hypothesis without the constants pool draws by seed alone
        yield
        return
    empty = Constants()
    cache.cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = real
        cache.cache.clear()


def _cached(build):
    """``build`` memoised on the ``repr`` of its arguments (which tells -0.0 from 0.0, as a float
    bound must be told); arguments are numbers, strings and tuples of them."""
    built: dict[str, object] = {}

    @functools.wraps(build)
    def get(*args):
        key = repr(args)
        if key not in built:
            if len(built) >= 4096:
                built.clear()
            built[key] = build(*args)
        return built[key]

    return get


class _Draws:
    """What a spec's draw gets inside :func:`cases`: ``draw(strategy, label=None)``, the call it
    makes on ``st.data()``'s object. The label names the draw for ``st.data()``'s notes, which
    losscheck's reports do not use (they print the drawn case), so here it is dropped."""
    __slots__ = ("_draw",)

    def __init__(self, draw):
        self._draw = draw

    def draw(self, strategy, label=None):
        return self._draw(strategy)


def cases(draw_case):
    """The strategy of the cases ``draw_case(data)`` draws. A search that takes ``st.data()`` and
    calls ``draw_case`` in its body makes the same choices in the same order, but ``st.data()``
    snapshots the global random state around every draw and notes each value: 10 to 26 % of the
    time of drawing an example, measured on four catalog specs (BENCHMARKS.md, section 2)."""
    return st.composite(lambda draw: draw_case(_Draws(draw)))()


def sample(draw_case, examples: int) -> list:
    """``examples`` cases of ``draw_case`` in hypothesis' generation order, the same in every process
    (derandomised, :func:`reproducible`): what a spec's draws look like, for tests and
    :mod:`losscheck.coverage`."""
    from hypothesis import HealthCheck, Phase, given, settings

    out = []

    @settings(max_examples=examples, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(cases(draw_case))
    def collect(case):
        out.append(case)

    with reproducible():
        collect()
    return out


def _plain(options: tuple) -> bool:
    return all(v is None or isinstance(v, (bool, int, float, str)) for v in options)


@_cached
def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


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


@_cached
def _elements_for(lo, hi, extreme):
    if not extreme:
        return _floats(lo, hi)
    return st.one_of(st.sampled_from(_edges(lo, hi)), _floats(lo, hi))


def _floats_in(data, shp, label, lo, hi) -> np.ndarray:
    return array(data, shp, _elements_for(lo, hi, is_extreme()), label)


_ARRAYS: dict[tuple, tuple] = {}


def array(data, shp, elements, label, dtype=np.float64) -> np.ndarray:
    """``hnp.arrays(dtype, shp, elements=elements)``, its strategy cached per shape for a constant
    (module-level or :func:`_cached`) ``elements`` strategy, held by the cache so that its id stays
    its own."""
    key = (tuple(int(n) for n in shp), id(elements), np.dtype(dtype).str)
    hit = _ARRAYS.get(key)
    if hit is None or hit[0] is not elements:
        if len(_ARRAYS) >= 4096:
            _ARRAYS.clear()
        hit = _ARRAYS[key] = (elements, hnp.arrays(dtype, key[0], elements=elements))
    return data.draw(hit[1], label=label)


@_cached
def _sampled(options: tuple):
    return st.sampled_from(options)


def _sample(data, options, label):
    """``sampled_from(options)``, the strategy cached when the options are plain values."""
    options = tuple(options)
    return data.draw(_sampled(options) if _plain(options) else st.sampled_from(options), label=label)


#: Sizes a dimension takes. Compiling frameworks (JAX/XLA) build one program per new shape, so a
#: few sizes -- 1, a small even, a small odd, a prime, the bounds -- buy most of the coverage of every
#: size at a fraction of the compilations. Non-equal sizes keep axes distinguishable.
SIZES = (1, 2, 3, 5)


def dim(data, label, lo, hi) -> int:
    """A dimension size in [lo, hi], from :data:`SIZES` and the bounds."""
    return _sample(data, sorted({lo, hi, *(n for n in SIZES if lo <= n <= hi)}), label)


def batch_size(data, label="N", lo=1, hi=MAX_BATCH) -> int:
    return dim(data, label, lo, hi)


def classes(data, label="C", lo=2, hi=MAX_CLASSES) -> int:
    return dim(data, label, lo, hi)


def shape(data, label="shape", min_dims=1, max_dims=3, min_side=1, max_side=MAX_BATCH) -> tuple[int, ...]:
    """A tensor shape within the size budget; the first axis is the batch."""
    sides = tuple(sorted({min_side, max_side, *(n for n in SIZES if min_side <= n <= max_side)}))
    shp = tuple(data.draw(_side_lists(sides, min_dims, max_dims), label=label))
    while int(np.prod(shp)) > SIZE_BUDGET:
        shp = shp[:-1] if len(shp) > min_dims else tuple(max(min_side, s // 2) for s in shp)
    return tuple(shp)


@_cached
def _side_lists(sides, min_dims, max_dims):
    return st.lists(_sampled(sides), min_size=min_dims, max_size=max_dims)


def reals(data, shp, label, lo=-8.0, hi=8.0) -> np.ndarray:
    return _floats_in(data, shp, label, lo, hi)


def positives(data, shp, label, lo=1e-3, hi=8.0) -> np.ndarray:
    return _floats_in(data, shp, label, lo, hi)


def probabilities(data, shp, label, lo=0.0, hi=1.0) -> np.ndarray:
    """Probabilities including, by default, exactly 0 and 1 (where clipping conventions differ)."""
    return _floats_in(data, shp, label, lo, hi)


def simplex(data, shp, label, axis=-1, floor=0.0) -> np.ndarray:
    """Rows that sum to one along ``axis`` (drawn as non-negative weights, then normalised).
    In extreme mode a row may be all zeros (a zero-sum "distribution")."""
    w = _floats_in(data, shp, label, 0.0, 1.0)
    zero = w.sum(axis=axis, keepdims=True) == 0
    if is_extreme() and zero.any():
        return np.where(zero, 0.0, (w + floor) / np.where(zero, 1.0, (w + floor).sum(axis=axis, keepdims=True)))
    w = w + floor + 1e-3 * zero
    return w / w.sum(axis=axis, keepdims=True)


def binary_labels(data, shp, label) -> np.ndarray:
    return array(data, shp, _sampled((0.0, 1.0)), label)


def sign_labels(data, shp, label) -> np.ndarray:
    return array(data, shp, _sampled((-1.0, 1.0)), label)


@_cached
def _index_elements(num_classes, extra):
    elements = st.integers(0, num_classes - 1)
    if extra:
        elements = st.one_of(elements, st.sampled_from(list(extra)))
    return elements


def indices(data, shp, num_classes, label, extra=()) -> np.ndarray:
    """Integer class labels in [0, num_classes), plus any of ``extra`` (e.g. an ignore index)."""
    return array(data, shp, _index_elements(int(num_classes), tuple(extra)), label, dtype=np.int64)


def one_hot_rows(data, shp, label) -> np.ndarray:
    """One-hot float rows along the last axis."""
    idx = indices(data, shp[:-1], shp[-1], label)
    return (idx[..., None] == np.arange(shp[-1])).astype(np.float64)


def choice(data, options, label):
    return _sample(data, options, label)


_BOOLEANS = st.booleans()


def flag(data, label) -> bool:
    return data.draw(_BOOLEANS, label=label)


def number(data, label, lo, hi) -> float:
    return data.draw(_floats(lo, hi), label=label)


def mask(data, shp, label) -> np.ndarray:
    """A boolean mask (``where=``), at least one True along the last axis of each row."""
    m = array(data, shp, _BOOLEANS, label, dtype=bool)
    if m.ndim:
        m[..., 0] |= ~m.any(axis=-1)
    return m
