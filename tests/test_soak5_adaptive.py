"""AdaptiveLogSoftmaxWithLoss's error scales count the rounding of its logits (soak alarm, seed 5:
torch, numerics, float32, G006 on ``head_weight``). At input -1e4 and head weights of -1 (one of them
-0.99999988) the head logits are 4e4 apart by 1.2e-3; float32 rounds that difference away, softmax is
uniform, and torch's head-weight gradient is 1,667 float32 eps from the exact one: rounding of an
intermediate, not a bug, as for LinearCrossEntropyLoss."""
import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.spec import Case
from losscheck.properties import gradient, value
from losscheck.properties.common import Finding
from losscheck.reference import structured as R

torch = pytest.importorskip("torch")

BIG = -1e4
CASE = Case({"input": np.full((1, 4), BIG), "target": np.array([0]),
             "head_weight": np.array([[-0.9999998807907104, -1.0, -1.0, -1.0]] + [[-1.0] * 4] * 2),
             "tail_0_proj": np.full((4, 4), BIG), "tail_0_out": np.full((4, 4), BIG)},
            {"n_classes": 6, "cutoffs": [2], "div_value": 1.0, "head_bias": False, "output": "loss"})


def _runtime():
    from losscheck.frameworks import get_runtime
    return get_runtime("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_soak_case_passes_in_both_dtypes(dtype):
    spec = catalog.get("torch.nn.AdaptiveLogSoftmaxWithLoss")
    gradient.check(spec, CASE, dtype, _runtime())
    value.check(spec, CASE, dtype, _runtime())


def test_a_wrong_head_gradient_of_the_same_size_is_still_caught():
    """The wider scale is |g| p (M + pM) eps: an O(1) relative error in the head gradient stays far
    beyond it (a backward that drops the softmax term)."""
    spec = catalog.get("torch.nn.AdaptiveLogSoftmaxWithLoss")
    ref = spec.oracle(CASE)
    g = ref.grad()["head_weight"]
    m = ref.grad_magnitude()["head_weight"]
    from losscheck.tolerance import GRAD_BOUND, grad_error
    bad = g.copy()
    bad[0] *= 2.0
    assert grad_error(bad, g, m, "float32") > GRAD_BOUND["float32"](16)


def test_the_scale_adds_the_logits_rounding_only_through_the_softmax():
    x = np.array([[1.0, -2.0]])
    w = np.array([[0.5, 1.0], [-1.0, 2.0], [3.0, 0.0]])
    tails = [(np.eye(2), np.array([[1.0, 0.0], [0.0, 1.0]]))]
    r = R.adaptive_log_softmax(x, np.array([0]), w, tails=tails, cutoffs=[2, 4])
    head = x @ w.T
    p = np.exp(head - np.log(np.exp(head).sum()))
    m = np.abs(x) @ np.abs(w).T
    mag = r.grad_magnitude()["head_weight"]
    plain = ((np.eye(3)[0] + p) / 1.0)[0][:, None] * np.abs(x)    # |g| (onehot + p) |x|
    extra = (p * (m + (p * m).sum()))[0][:, None] * np.abs(x)
    assert np.allclose(mag, plain + extra)
