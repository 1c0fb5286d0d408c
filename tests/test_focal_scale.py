"""The binary focal oracle's error scale where the focal base 1 - p_t is below the rounding error of
forming it (soak alarm: keras-torch, float64, label_smoothing = 2.2e-309). NumPy only."""
import numpy as np
import pytest

from losscheck.reference import classification as C
from losscheck.tolerance import VALUE_BOUND, value_error

GAMMA = 2.0 ** -9


def _focal(label_smoothing, gamma=GAMMA, y_pred=0.0):
    return C.binary_focal_cross_entropy(np.array([y_pred]), np.array([0.0]), gamma=gamma, clip_eps=1e-7,
                                        label_smoothing=label_smoothing)


@pytest.mark.parametrize("ls", [2.225073858507203e-309, 1e-305, 1e-20])
def test_subtracted_base_rounding_to_zero_is_within_the_scale(ls):
    """Keras computes 1 - (1 - ls/2) = 0 in float64 (all backends), so the loss is 0; the exact base ls/2
    gives (ls/2)**gamma * bce = 2.49e-8 at ls = 2.2e-309. The derivative of u**gamma overflowed there
    (u = 1.1e-309) and an infinite scale reads as none: 1.1e300 eps."""
    res = _focal(ls)
    assert np.all(np.isfinite(res.scale))
    assert value_error(0.0, res.value, res.scale, "float64").max() <= VALUE_BOUND["float64"](1)
    # the scale still says the answer is about the exact value's size, not anything at all
    assert value_error(400 * res.value, res.value, res.scale, "float64").max() > VALUE_BOUND["float64"](1)


def test_cap_leaves_a_base_above_eps_alone():
    """At y_pred = 0.3 (u = 0.3) the scale is the linearised one: f * bce terms + |df| * |bce|."""
    res = _focal(0.0, gamma=0.5, y_pred=0.3)
    bce = -np.log1p(-0.3)
    f, df = 0.3 ** 0.5, 0.5 * 0.3 ** -0.5
    np.testing.assert_allclose(res.value, f * bce, rtol=1e-15)
    np.testing.assert_allclose(res.scale, f * (bce + 1.0) + df * bce, rtol=1e-14)


def test_logits_scale_counts_the_rounding_of_one_minus_p():
    """Keras (jax backend) takes log(1 - sigmoid(x)) of the clipped probability: fl(1 - p) is off by up to
    half an ulp of 1 whatever p is. float32, y_true = 0, x = -8: -log(fl(1 - p)) = 3.35392e-4, exact 3.35406e-4
    (180 eps of a scale that counted only sigmoid's relative error, p / (1 - p) = 3.4e-4 ulps)."""
    p = np.float32(1) / (np.float32(1) + np.exp(np.float32(8)))
    framework = -np.log(np.float32(1) - p)            # the clip [1e-7, 1 - 1e-7] is inactive at p = 3.4e-4
    res = C.binary_focal_cross_entropy(np.array([-8.0]), np.array([0.0]), from_logits=True, gamma=0.0,
                                       clip_eps=1e-7)
    np.testing.assert_allclose(res.value, np.log1p(np.exp(-8.0)), rtol=1e-15)
    assert abs(float(framework) - res.value[0]) > 1e-8    # the rounding under test is there
    assert value_error(framework, res.value, res.scale, "float32").max() <= VALUE_BOUND["float32"](1)
