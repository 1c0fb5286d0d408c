"""The error scales of ``linear_cross_entropy`` cover the float32 rounding of its logits.

The logits ``input @ weight^T`` are an intermediate a framework computes in the tested dtype: off by
~eps * sum |input| |weight|, which no rounding of the inputs removes. A float32 composition of
``linear`` and ``cross_entropy`` (what torch's ``F.linear_cross_entropy`` runs with options=None),
written here in NumPy, must land within the bound of the oracle's scales; the soak's alarms at
weights of -1e4 (issue 9) are the first two cases.
"""
import numpy as np
import pytest

from losscheck.reference.structured import linear_cross_entropy
from losscheck.tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, value_error


def _float32_linear_ce(x, w, t, b=None):
    """Mean cross-entropy of float32 logits and its gradients, all in float32: (loss, dx, dw)."""
    x, w = np.float32(x), np.float32(w)
    logits = x @ w.T + (np.float32(0) if b is None else np.float32(b))
    z = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(t)
    loss = -np.mean((z - lse)[np.arange(n), t])
    gl = np.exp(z - lse)
    gl[np.arange(n), t] -= np.float32(1)
    gl /= np.float32(n)
    return loss, gl @ w, gl.T @ x


def _cancelling(seed=1, c=3):
    """Products of ~1e8 whose sums, the logits, are in [-2, 2]: the logits' absolute rounding is
    ~4 although the logits and the loss are small."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(0.5, 1.0, 2) * 1e4).astype(np.float32)
    w = np.empty((c, 2))
    w[:, 0] = rng.uniform(-1e4, 1e4, c)
    w[:, 1] = -(w[:, 0] * x[0] + rng.uniform(-2, 2, c)) / x[1]
    return x[None, :], w.astype(np.float32), np.array([int(rng.integers(c))]), None


CASES = {
    # the float32 logits 100020004 and 100020000 both round to 100020000: softmax is uniform
    "input_grad_at_1e4": ([[-2.0, -1e4, -2.0]], [[-2.0, -1e4, -1e4], [0.0, -1e4, -1e4]], np.array([0]), None),
    # 2e8 - 1 rounds to 2e8: the bias is lost
    "weight_grad_at_1e4": ([[-1e4, -1e4]], [[-1e4, -1e4], [-1e4, -1e4]], np.array([0]), [-1.0, 0.0]),
    "cancelling_logits": _cancelling(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_composition_is_within_the_bound(name):
    x, w, t, b = CASES[name]
    loss, dx, dw = _float32_linear_ce(x, w, t, b)
    ref = linear_cross_entropy(np.float32(x), np.float32(w), t,
                               linear_bias=None if b is None else np.float32(b))
    grads, mags = ref.grad(), ref.grad_magnitude()
    assert float(value_error(loss, ref.value, ref.scale, "float32")) <= VALUE_BOUND["float32"]()
    for key, got in (("input", dx), ("linear_weight", dw)):
        assert grad_error(got, grads[key], mags[key], "float32") <= GRAD_BOUND["float32"]()


def test_the_cases_are_far_off_the_exact_answer():
    """Not vacuous: each case's float32 answer is far from the exact one in the bare
    cross-entropy's scales (before the logits' rounding was counted: 404 and 1.5e6 eps in the soak)."""
    from losscheck.reference.classification import cross_entropy
    for x, w, t, b in CASES.values():
        x64, w64 = np.float64(np.float32(x)), np.float64(np.float32(w))
        logits = x64 @ w64.T + (0.0 if b is None else np.float64(np.float32(b)))
        ce = cross_entropy(logits, t)
        loss, dx, dw = _float32_linear_ce(x, w, t, b)
        gl, gm = ce.grad()["input"], ce.grad_magnitude()["input"]
        errs = [float(value_error(loss, ce.value, ce.scale, "float32")),
                grad_error(dx, gl @ w64, gm @ np.abs(w64), "float32"),
                grad_error(dw, gl.T @ x64, gm.T @ np.abs(x64), "float32")]
        assert max(errs) > 10 * GRAD_BOUND["float32"]()
