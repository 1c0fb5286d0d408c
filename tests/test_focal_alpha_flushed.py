"""optax ``sigmoid_focal_loss`` with a subnormal ``alpha``: XLA on CPU flushes it to zero, so the
positive labels' term vanishes (found by ``losscheck check ... --seed 22 --examples 150``: logits
[-145], labels [1], alpha 1.1125e-308, gamma 0 give 0 where the exact value is 1.6132e-306)."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case
from losscheck.runner import Task, run_check

ALPHA = 1.1125369292536007e-308


def _case(alpha, logits=-145.0):
    return Case({"logits": np.array([logits]), "labels": np.array([1.0])}, {"alpha": alpha, "gamma": 0.0})


@pytest.mark.parametrize("alpha, dtype, covered", [
    (ALPHA, "float64", True),                      # the check's case
    (2.2250738585072014e-308, "float64", False),   # the smallest normal float64
    (1e-39, "float32", True),                      # subnormal in float32 only
    (1e-39, "float64", False),
    (0.0, "float64", False),                       # zero is zero: nothing flushed
    (None, "float64", False),                      # no alpha: every term weighted 1
])
def test_scope(alpha, dtype, covered):
    found = get("optax.losses.sigmoid_focal_loss").expected_for("value", dtype, "jax", _case(alpha), "V001")
    assert (found is not None and "subnormal alpha" in found.reason) is covered


def test_it_is_optax_behaviour():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    x, y = np.array([-145.0]), np.array([1.0])
    assert float(optax.losses.sigmoid_focal_loss(x, y, alpha=ALPHA, gamma=0.0)[0]) == 0.0
    exact = float(get("optax.losses.sigmoid_focal_loss").oracle(_case(ALPHA)).value[0])
    assert exact == pytest.approx(ALPHA * 145.0, rel=1e-12)
    normal = 2.3e-308
    assert float(optax.losses.sigmoid_focal_loss(x, y, alpha=normal, gamma=0.0)[0]) == pytest.approx(normal * 145.0)


def test_the_value_check_on_the_found_case_is_an_expected_failure():
    # The case itself, not a seeded search: which examples a search draws depends on the process
    # (the full suite's xdist workers drew no subnormal alpha under seed 22).
    pytest.importorskip("optax")
    from losscheck.frameworks import get_runtime
    from losscheck.properties import PROPERTIES
    from losscheck.properties.common import Finding

    spec = get("optax.losses.sigmoid_focal_loss")
    with pytest.raises(Finding) as found:
        PROPERTIES["value"](spec, _case(ALPHA), "float64", get_runtime("jax", "cpu"))
    expected = spec.expected_for("value", "float64", "jax", found.value.case or _case(ALPHA), found.value.code)
    assert expected is not None and "subnormal alpha" in expected.reason, found.value.code
