"""The input strategies reuse their strategy objects without changing what they draw."""
from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

from losscheck import strategies as S


def test_a_strategy_is_built_once_per_argument_set():
    assert S._floats(-1.0, 1.0) is S._floats(-1.0, 1.0)
    assert S._floats(-0.0, 1.0) is not S._floats(0.0, 1.0)   # -0.0 is a bound of its own
    assert S._elements_for(-8.0, 8.0, False) is S._elements_for(-8.0, 8.0, False)
    assert S._elements_for(-8.0, 8.0, True) is not S._elements_for(-8.0, 8.0, False)


def test_an_array_strategy_is_cached_for_its_own_elements_only():
    ones, twos = st.just(1.0), st.just(2.0)
    drawn = []

    @hseed(0)
    @settings(max_examples=3, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        drawn.append((S.array(data, (2,), ones, "a"), S.array(data, (2,), twos, "b")))

    draw()
    assert all(a.tolist() == [1.0, 1.0] and b.tolist() == [2.0, 2.0] for a, b in drawn)
    built = [v for v in S._ARRAYS.values() if v[0] is ones]
    assert len(built) == 1   # one array strategy for (2,) of ``ones``, reused by every example


def _draws(seed, extreme):
    out = []

    @hseed(seed)
    @settings(max_examples=20, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        shp = S.shape(data)
        out.append((shp, S.reals(data, shp, "x"), S.indices(data, shp, 3, "t", extra=(-100,)), S.flag(data, "f"),
                    S.choice(data, ["a", "b", None], "c"), S.choice(data, [np.zeros(1), np.ones(1)], "arr")))

    with _mode(extreme):
        draw()
    return out


def _mode(extreme):
    return S.extreme() if extreme else contextlib.nullcontext()


class _Forgetful(dict):
    """An array-strategy cache that keeps nothing."""

    def __setitem__(self, key, value):
        pass


def test_cached_and_fresh_strategies_draw_the_same_examples(monkeypatch):
    cached = {e: _draws(5, e) for e in (False, True)}
    for name in ("_floats", "_elements_for", "_sampled", "_side_lists", "_index_elements"):
        monkeypatch.setattr(S, name, getattr(S, name).__wrapped__)   # a new strategy on every call
    monkeypatch.setattr(S, "_ARRAYS", _Forgetful())
    for extreme in (False, True):
        fresh = _draws(5, extreme)
        assert len(fresh) == len(cached[extreme]) == 20
        for a, b in zip(cached[extreme], fresh):
            assert a[0] == b[0] and a[3:5] == b[3:5]
            assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and np.array_equal(a[5], b[5])


def _catalog_draws(spec, via_cases, extreme):
    from losscheck import runner

    out = []
    search = runner.search_settings(4)
    if via_cases:
        @hseed(11)
        @search
        @given(S.cases(spec.draw))
        def draw(case):
            out.append(case)
    else:
        @hseed(11)
        @search
        @given(st.data())
        def draw(data):
            out.append(spec.draw(data))

    with np.errstate(all="ignore"), _mode(extreme):
        draw()
    return out


def test_a_case_strategy_draws_what_a_search_over_data_draws():
    """The runner's searches take ``S.cases(spec.draw)``, not ``st.data()``: the same cases."""
    from losscheck import catalog

    ids = ("torch.nn.CrossEntropyLoss", "torch.nn.CTCLoss", "keras.losses.MeanSquaredError",
           "optax.losses.softmax_cross_entropy", "torch.nn.AdaptiveLogSoftmaxWithLoss")
    for spec in map(catalog.get, ids):
        for extreme in (False, True):
            by_cases = _catalog_draws(spec, True, extreme)
            assert len(by_cases) == 4
            assert repr(by_cases) == repr(_catalog_draws(spec, False, extreme)), spec.id


def test_the_case_strategy_passes_draws_through_and_drops_labels():
    seen = []

    @hseed(0)
    @settings(max_examples=2, database=None)
    @given(S.cases(lambda data: (data.draw(st.integers(0, 9), label="digit"), data.draw(st.just(3)))))
    def draw(case):
        seen.append(case)

    draw()
    assert seen and all(0 <= d <= 9 and three == 3 for d, three in seen)
