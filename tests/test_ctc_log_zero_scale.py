"""CTC's error scale when a state of the lattice emits log 0 (a -inf log-probability or logit).

Such a state has no weight, but its magnitude |-inf| + 1 entered the scale's sums as 0 * inf, so
the value's scale was NaN and every sequence through it got an error of about 1e30 eps in float32
against a correct torch (the scale fell to the floor TINY / EPS). Found by comparing the oracle
with a 60-digit forward-backward: the gradient's magnitude fell back to |g| on the same inputs.
"""
import numpy as np
import pytest

from losscheck.reference import sequence as Q
from losscheck.tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, round_to, value_error


def _log_probs(rng, shape):
    x = rng.normal(size=shape)
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def _torch_case():
    lp = _log_probs(np.random.default_rng(0), (6, 2, 4))
    lp[0, 0, 0] = -np.inf       # blank impossible on the first frame: the lattice's first state
    lp[2, 1, 2] = -np.inf       # a label state of the second sequence
    return round_to("float32", lp), np.array([[1, 2], [2, 3]]), np.array([6, 6]), np.array([2, 2])


def test_torch_scale_and_gradient_magnitude_are_finite():
    lp, targets, il, tl = _torch_case()
    ref = Q.torch_ctc_loss(lp, targets, il, tl, reduction="none")
    assert np.all(np.isfinite(ref.value))
    assert np.all(np.isfinite(ref.scale)) and np.all(ref.scale > np.abs(ref.value))
    mag = ref.grad_magnitude(np.ones(2))["log_probs"]
    assert np.all(np.isfinite(mag))
    # the scale of a sequence does not depend on how impossible its impossible state is
    finite = np.where(np.isinf(lp), -1e4, lp)
    near = Q.torch_ctc_loss(finite, targets, il, tl, reduction="none")
    np.testing.assert_allclose(near.value, ref.value, rtol=1e-12)


@pytest.mark.parametrize("lattice", Q.LATTICES)
def test_logits_scale_is_finite_with_a_minus_inf_logit(lattice):
    logits = np.random.default_rng(1).normal(size=(2, 5, 4))
    logits[0, 1, 0] = -np.inf
    logits[1, 3, 1] = -np.inf
    ref = Q.ctc_loss(logits, np.array([[1, 2], [1, 3]]), np.array([2, 2]), lattice=lattice)
    assert np.all(np.isfinite(ref.value)) and np.all(np.isfinite(ref.scale))


def test_torch_float32_is_within_the_bounds_except_its_nan_at_log_zero():
    """torch's kernel computes ``exp(lp) - exp(lcab + nll - lp)``: at lp = -inf that is
    -inf - (-inf), NaN on every such element (emitted or not), where the gradient is 0 (a known
    deviation, see the README). The other elements and the value are within the bounds."""
    torch = pytest.importorskip("torch")
    lp, targets, il, tl = _torch_case()
    x = torch.tensor(lp, dtype=torch.float32, requires_grad=True)
    got = torch.nn.functional.ctc_loss(x, torch.tensor(targets), torch.tensor(il), torch.tensor(tl),
                                       reduction="sum")
    got.backward()
    ref = Q.torch_ctc_loss(lp, targets, il, tl, reduction="sum", log_softmax_grad=True)
    assert value_error(got.detach().numpy(), ref.value, ref.scale, "float32") <= VALUE_BOUND["float32"](2)
    cot = np.ones(())
    g = x.grad.numpy().astype(np.float64)
    log_zero = np.isinf(lp)
    assert np.array_equal(np.isnan(g), log_zero)
    expected = ref.grad(cot)["log_probs"]
    assert np.all(expected[log_zero] == 0.0)
    assert grad_error(g, expected, ref.grad_magnitude(cot)["log_probs"], "float32",
                      skip=log_zero) <= GRAD_BOUND["float32"](2)
