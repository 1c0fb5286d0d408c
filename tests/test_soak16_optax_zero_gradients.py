"""Soak seed 16: two alarms, both optax gradients that are exactly 0 where the derivative is not (G003).

* ``huber_loss`` at predictions [3.03e-140, 3.03e-140], targets [0, 1], delta 1: optax's gradient is
  (q - delta + delta) sign(e) with q = min(|e|, delta), which is exactly 0 once |e| is below about
  eps * delta / 2. The recorded cancellation expectation covered only cases with every |e| inside
  delta / 4 (the normwise error), not one element's exact zero next to an error at delta.
* ``dice_loss`` at predictions [1], targets [0], alpha 2.2e-309: XLA on CPU flushes the subnormal
  alpha, the only weight the gradient goes through, so the gradient is 0 (exact 2.2e-306)."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case

SOAK_E = 3.0298631193705995e-140


def _huber(predictions, targets, delta=1.0):
    return Case({"predictions": np.asarray(predictions, dtype=np.float64),
                 "targets": np.asarray(targets, dtype=np.float64)}, {"delta": delta})


@pytest.mark.parametrize("predictions, targets, delta, dtype, covered", [
    ([SOAK_E, SOAK_E], [0.0, 1.0], 1.0, "float64", True),   # the soak's case
    ([1e-17, 0.5], [0.0, 0.0], 1.0, "float64", True),        # 1e-17 - 1 + 1 == 0 in float64
    ([1e-15, 0.5], [0.0, 0.0], 1.0, "float64", False),       # 1e-15 - 1 + 1 != 0
    ([1e-8, 0.5], [0.0, 0.0], 1.0, "float32", True),         # below float32's eps / 2
    ([1e-8, 0.5], [0.0, 0.0], 1.0, "float64", False),
    ([0.0, 3.0], [0.0, 0.0], 1.0, "float64", False),         # e == 0: a zero gradient is right
    ([1e-17, 3.0], [0.0, 0.0], 1e-20, "float64", False),     # |e| beyond delta: the linear part
])
def test_huber_zero_gradient_scope(predictions, targets, delta, dtype, covered):
    found = get("optax.losses.huber_loss").expected_for("gradient", dtype, "jax",
                                                        _huber(predictions, targets, delta), "G003")
    assert (found is not None and "taken to its end" in found.reason) is covered


def test_huber_zero_gradient_is_optax_behaviour():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    targets = np.array([0.0, 1.0])
    g = jax.grad(lambda p: jax.numpy.sum(optax.losses.huber_loss(p, targets, delta=1.0)))(np.array([SOAK_E] * 2))
    assert np.asarray(g).tolist() == [0.0, -1.0]
    exact = get("optax.losses.huber_loss").oracle(_huber([SOAK_E] * 2, targets)).grad()["predictions"]
    assert exact[0] > 0


def _dice(alpha, beta=0.5):
    return Case({"predictions": np.array([1.0]), "targets": np.array([0.0])},
                {"smooth": 1e-3, "alpha": alpha, "beta": beta, "apply_softmax": False, "reduction": "mean",
                 "ignore_background": False, "axis": None})


@pytest.mark.parametrize("alpha, beta, dtype, covered", [
    (2.225073858507203e-309, 0.5, "float64", True),   # the soak's case
    (0.5, 1e-310, "float64", True),
    (2.2250738585072014e-308, 0.5, "float64", False),  # the smallest normal float64
    (1e-39, 0.5, "float32", True),                     # subnormal in float32 only
    (1e-39, 0.5, "float64", False),
    (0.0, 0.5, "float64", False),                      # an exact 0 weight
])
def test_dice_weight_flush_scope(alpha, beta, dtype, covered):
    found = get("optax.losses.dice_loss").expected_for("gradient", dtype, "jax", _dice(alpha, beta), "G003")
    assert (found is not None and "subnormal alpha or beta" in found.reason) is covered


def test_dice_subnormal_alpha_is_flushed_by_xla():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)

    def grad(alpha):
        def f(p):
            return jax.numpy.sum(optax.losses.dice_loss(p, np.array([0.0]), smooth=1e-3, alpha=alpha, beta=0.5,
                                                        apply_softmax=False, reduction="mean", axis=None))
        return float(jax.grad(f)(np.array([1.0]))[0])

    assert grad(2.225073858507203e-309) == 0.0
    assert grad(2.2250738585072014e-308) == pytest.approx(2.2250738585072014e-305, rel=1e-6)
    exact = get("optax.losses.dice_loss").oracle(_dice(2.225073858507203e-309)).grad()["predictions"]
    assert float(np.ravel(exact)[0]) == pytest.approx(2.225073858507203e-306, rel=1e-6)
