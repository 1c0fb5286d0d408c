"""A seed's examples do not depend on what the process imported before (found when a check that gave
an expected failure under ``losscheck check`` passed in the test suite's worker: hypothesis draws
constants from the source of every imported non-site-packages module, so the seed's draws moved)."""
import importlib
import sys

import pytest
from hypothesis import given
from hypothesis import seed as hseed
from hypothesis import strategies as st

from losscheck import strategies
from losscheck.runner import search_settings


def _user_module(base):
    """A module of the user's with constants of its own (none is one of hypothesis')."""
    return "CONSTANTS = [" + ", ".join(f"{base + k / 7919:.12f}" for k in range(40)) + "]\n"


def _draws(seed=5, examples=300):
    out = []

    @hseed(seed)
    @search_settings(examples)
    @given(st.lists(st.floats(-10, 10), min_size=1, max_size=4))
    def search(xs):
        out.append(tuple(xs))

    search()
    return out


def _import_user_module(tmp_path, name, base):
    (tmp_path / f"{name}.py").write_text(_user_module(base))
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_an_imported_module_does_not_move_the_draws(tmp_path):
    with strategies.reproducible():
        before = _draws()
    _import_user_module(tmp_path, "lc_user_loss_a", 0.1234567)
    with strategies.reproducible():
        after = _draws()
    assert before == after


def test_without_it_the_module_moves_the_draws(tmp_path):
    """The behaviour the block guards against, so that the test above can fail."""
    providers = pytest.importorskip("hypothesis.internal.conjecture.providers")
    if not hasattr(providers, "_get_local_constants"):
        pytest.skip("this hypothesis draws no constants from imported modules")
    before = _draws()
    _import_user_module(tmp_path, "lc_user_loss_b", 0.3456789)
    after = _draws()
    assert before != after
    assert any(abs(x - 0.3456789 - 0.0025) < 0.0026 and round(x, 12) == x for xs in after for x in xs)
