"""optax's Dice family at saturated logits (soak alarms: logits -1e4 in float64, -88 in float32).

* The oracle's softmax was exp(log_softmax(x)), which rounds log(sum) + max to the ulp of max: at
  logits [-1e4, -1e4] each probability was 0.5 (1 - 8.7e-14), and the Dice gradients were off by
  hundreds of eps (G006), or non-zero where the exact gradient is 0 by symmetry (G003).
* XLA on CPU flushes a subnormal sigmoid/softmax output to 0 (scoped expectation ACTIVATION_FLUSHED).
"""
import numpy as np
import pytest

from losscheck.catalog.segmentation import _activation_flushed
from losscheck.catalog.spec import Case
from losscheck.reference import segmentation as SG
from losscheck.reference._core import softmax


def _exact_softmax(x):
    """Softmax in long double (64-bit mantissa on x86): a reference 2^11 times finer than float64."""
    x = np.asarray(x, dtype=np.longdouble)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("x", [[-1e4, -1e4], [-1e4, -1e4 + 1.0], [1e4, 1e4 - 3.0, 1e4 + 0.5], [3e5, 3e5 - 2.0]])
def test_softmax_is_exact_to_a_few_ulps_at_large_logits(x):
    got = softmax(np.array(x))
    ref = _exact_softmax(x)
    rel = np.abs((got - ref) / ref).max()
    assert float(rel) <= 4 * np.finfo(np.float64).eps


def test_softmax_keeps_its_masking_and_non_finite_semantics():
    np.testing.assert_array_equal(softmax(np.array([1.0, 2.0, 3.0]), where=np.array([True, False, True]))[1], 0.0)
    np.testing.assert_array_equal(softmax(np.array([1.0, 2.0]), where=np.array([False, False])), [0.0, 0.0])
    np.testing.assert_array_equal(softmax(np.array([0.0, -np.inf])), [1.0, 0.0])
    assert np.isnan(softmax(np.array([-np.inf, -np.inf]))).all()


def test_generalized_dice_gradient_is_zero_at_equal_saturated_logits():
    """Two identical classes (logits equal, targets both 0): the gradient w.r.t. the logits is 0 by
    symmetry; jax gives 0, the old oracle 1.96e-14 (388 eps of its scale)."""
    r = SG.generalized_dice_loss(np.array([-1e4, -1e4]), np.array([0.0, 0.0]), smooth=1.0, weight_epsilon=1e-7)
    np.testing.assert_array_equal(r.vjp(1.0)["predictions"], [0.0, 0.0])


def test_dice_loss_at_saturated_logits_equals_the_loss_at_zero_logits():
    """softmax is shift invariant and [-1e4, -1e4] - max is exactly [0, 0]: every number must be identical."""
    t = np.array([1.0, 0.0])
    far, near = (SG.dice_loss(np.array(x), t, smooth=1.0) for x in ([-1e4, -1e4], [0.0, 0.0]))
    assert far.value == near.value
    for k in ("predictions", "targets"):
        np.testing.assert_array_equal(far.vjp(1.0)[k], near.vjp(1.0)[k])


def _case(predictions, targets, **params):
    return Case({"predictions": np.array(predictions), "targets": np.array(targets)}, params)


@pytest.mark.parametrize("case, dtype, flushed", [
    (_case([-88.0], [0.0], apply_sigmoid=True), "float32", True),      # sigmoid 6.05e-39 < tiny 1.18e-38
    (_case([-87.0], [0.0], apply_sigmoid=True), "float32", False),     # sigmoid 1.65e-38: normal
    (_case([-88.0], [0.0], apply_sigmoid=True), "float64", False),
    (_case([-720.0], [0.0], apply_sigmoid=True), "float64", True),
    (_case([-1e4], [0.0], apply_sigmoid=True), "float32", False),      # exactly 0 in float64 too
    (_case([-88.0], [0.0], apply_sigmoid=False), "float32", False),
    (_case([[-88.0, 0.0]], [[0.0, 1.0]], apply_softmax=True), "float32", True),
    (_case([[-80.0, 0.0]], [[0.0, 1.0]], apply_softmax=True), "float32", False),
    (_case([[-88.0]], [[0.0]], apply_softmax=True), "float32", True),    # a class axis of 1: the sigmoid
    (_case([-88.0], [[0.0]], apply_softmax=True), "float32", True),      # predictions one axis short
])
def test_activation_flushed_predicate(case, dtype, flushed):
    assert _activation_flushed(case, dtype) is flushed


def test_xla_flushes_the_subnormal_sigmoid():
    """The framework behaviour the expectation records; if this fails, drop ACTIVATION_FLUSHED."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    if jax.default_backend() != "cpu":
        pytest.skip("flush-to-zero is XLA's CPU behaviour")
    loss = lambda x: optax.losses.binary_dice_loss(x, jnp.zeros(1, jnp.float32), smooth=1e-3).sum()  # noqa: E731
    assert float(jax.grad(loss)(jnp.array([-88.0], jnp.float32))[0]) == 0.0
    exact = SG.binary_dice_loss(np.array([-88.0]), np.array([0.0]), smooth=1e-3).vjp(1.0)["predictions"][0]
    np.testing.assert_allclose(exact, 500 * np.exp(-88.0) / (1 + 500 * np.exp(-88.0)) ** 2, rtol=1e-14)
    np.testing.assert_allclose(float(jax.grad(loss)(jnp.array([-87.0], jnp.float32))[0]), 500 * np.exp(-87.0),
                               rtol=1e-5)
