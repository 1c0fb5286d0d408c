"""optax's ranking_softmax_loss at saturated logits (soak alarm, seed 3: logits [-1e4, -1e4] in float64).

The oracle computed log_softmax as s - logsumexp(s): logsumexp rounds max + log(sum) to the ulp of the
max (1.8e-12 at 1e4), so log_softmax([-1e4, -1e4]) was 1131 eps (relative) from log(1/2) and the label
gradient -log_softmax 777 eps from log 2 (G006, 325 eps of its error scale, bound 77). jax.nn.log_softmax
computes (s - max) - log(sum exp(s - max)), exact to an ulp here, and so does the oracle now.
"""
import numpy as np
import pytest

from losscheck.reference import ranking as Rk


def _exact_log_softmax(x):
    """log_softmax in long double (64-bit mantissa on x86): a reference 2^11 times finer than float64."""
    x = np.asarray(x, dtype=np.longdouble)
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("x", [[-1e4, -1e4], [-1e4, -1e4 + 1.0], [1e4, 1e4 - 3.0, 1e4 + 0.5], [3e5, 3e5 - 2.0]])
def test_label_gradient_is_exact_to_a_few_ulps_at_large_logits(x):
    """d loss / d labels = -log_softmax(s) per item (reduce_fn mean over one list)."""
    x = np.array(x)
    got = Rk.ranking_softmax(x, np.zeros_like(x)).vjp(1.0)["labels"]
    ref = -_exact_log_softmax(x)
    assert float(np.abs((got - ref) / ref).max()) <= 4 * np.finfo(np.float64).eps


def test_loss_at_saturated_logits_equals_the_loss_at_zero_logits():
    """log_softmax is shift invariant and [-1e4, -1e4] - max is exactly [0, 0]: every number must be identical."""
    y, wt = np.array([1.0, 0.5]), np.array([2.0, 0.3])
    far, near = (Rk.ranking_softmax(np.array(s), y, weights=wt) for s in ([-1e4, -1e4], [0.0, 0.0]))
    assert far.value == near.value
    for k in ("logits", "labels", "weights"):
        np.testing.assert_array_equal(far.vjp(1.0)[k], near.vjp(1.0)[k])


def test_masking_and_empty_lists_are_unchanged():
    """Masked items drop out of the softmax and the sum; a list without valid items gives loss 0."""
    s, y = np.array([[1.0, 50.0, 2.0], [3.0, 4.0, 5.0]]), np.array([[1.0, 7.0, 0.5], [1.0, 1.0, 1.0]])
    where = np.array([[True, False, True], [False, False, False]])
    r = Rk.ranking_softmax(s, y, where=where, reduce_fn=None)
    lsm = np.array([1.0, 2.0]) - np.logaddexp(1.0, 2.0)
    np.testing.assert_allclose(r.value, [-(1.0 * lsm[0] + 0.5 * lsm[1]), 0.0], rtol=4e-16)
    g = r.vjp(np.ones(2))
    np.testing.assert_array_equal(g["labels"][:, 1], 0.0)
    np.testing.assert_array_equal(g["logits"][1], 0.0)
