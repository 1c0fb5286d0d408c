"""The focal oracles' error scales where the focal base 1 - p_t is below the rounding error of forming
it (soak alarm: keras-torch, float64, label_smoothing = 2.2e-309), and where autograd's derivative of
p_t cancels (soak alarm: keras-torch, float64, label_smoothing = 1 - 2**-53). NumPy only."""
import numpy as np
import pytest

from losscheck.reference import classification as C
from losscheck.tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, value_error

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


def _autograd_p_t(a, b, g):
    """What autograd gives for d/da of p_t = b a + (1 - b)(1 - a) times g, in its order of operations:
    fl(b g) + fl(-(fl(1 - b) g)) (torch's mul and rsub backward, accumulated)."""
    a, b, g = np.float64(a), np.float64(b), np.float64(g)
    return b * g + -((np.float64(1) - b) * g)


def test_prediction_gradient_scale_counts_the_cancellation_in_one_minus_two_y():
    """keras-torch float64, y_true = y_pred = 0 (clipped: only the focal factor has a gradient), gamma = 1,
    label_smoothing = 1 - 2**-53: y = 1/2 - 2**-54 and 1 - y rounds to 1/2, so d/dy_pred = 2**-53 bce
    comes out as fl(y g) - g/2 with g = 1.42 bce: 2**-50, 0.70x the exact 1.27e-15 (the soak's G005)."""
    ls = 1.0 - 2.0 ** -53
    cot = 1.4207354924039484
    res = C.binary_focal_cross_entropy(np.array([0.0]), np.array([0.0]), gamma=1.0, clip_eps=1e-7,
                                       label_smoothing=ls)
    ys = 0.5 * ls
    bce = -(ys * np.log(1e-7) + (1 - ys) * np.log1p(-1e-7))
    expected = res.grad(np.array([cot]))["output"]
    np.testing.assert_allclose(expected, 2.0 ** -53 * bce * cot, rtol=1e-14)
    framework = np.array([-_autograd_p_t(0.0, ys, cot * bce)])    # d(1 - p_t): the focal factor is u**1
    assert framework[0] == 2.0 ** -50                        # the rounding under test is there
    mag = res.grad_magnitude(np.array([cot]))["output"]
    assert grad_error(framework, expected, mag, "float64") <= GRAD_BOUND["float64"](1)
    # the scale is the summands' size (|y| + |1 - y|) g, not anything at all
    assert grad_error(expected + 1e-12 * bce, expected, mag, "float64") > GRAD_BOUND["float64"](1)


def test_label_gradient_cancellation_in_q_minus_p_is_within_the_scale():
    """d/dy_true of the focal factor is (1 - p - p) g: at y_pred = 1/2 + 2**-53 autograd's fl(p g) - fl(q g)
    is all rounding (gamma = 1, y_true = 0.3: -3.33e-16 where the oracle says -3.76e-16); the scale's
    |df| (|log q| + |log p|) term, for the rounding of 1 - p_t, bounds it (bce <= |log q| + |log p|)."""
    p = 0.5 + 2.0 ** -53
    res = C.binary_focal_cross_entropy(np.array([p]), np.array([0.3]), gamma=1.0, clip_eps=1e-7)
    lp, lq = np.log(p), np.log1p(-p)
    bce = -(0.3 * lp + 0.7 * lq)
    u = 0.3 * (1 - p) + 0.7 * p
    framework = np.array([-_autograd_p_t(0.3, p, bce) + u * (lq - lp)])
    expected = res.grad(np.array([1.0]))["labels"]
    assert abs(framework[0] - expected[0]) > 0.1 * abs(expected[0])
    mag = res.grad_magnitude(np.array([1.0]))["labels"]
    assert grad_error(framework, expected, mag, "float64") <= GRAD_BOUND["float64"](1)


@pytest.mark.parametrize("from_logits, output", [(False, [1.0, 1e-309]), (True, [0.0, -720.0])])
def test_categorical_scale_is_finite_at_a_subnormal_base(from_logits, output):
    """Unclipped (the exact variant), gamma = 2**-9: 1 - q is 1e-309 (or e**-720) for the first class and
    gamma (1 - q)**(gamma - 1) overflowed, so the row's scale was inf and its other term, 0.25 * 0.5 *
    (-log q1) = 89, was held to the scale floor: 1 ulp off read as 1.9e294 eps."""
    res = C.categorical_focal_cross_entropy(np.array([output]), np.array([[0.5, 0.5]]), gamma=GAMMA,
                                            clip_eps=None, from_logits=from_logits)
    assert np.all(np.isfinite(res.scale)) and np.all(res.scale < 1.01 * res.value + 1.0)
    off_by_ulps = res.value * (1 + 4 * np.finfo(np.float64).eps)
    assert value_error(off_by_ulps, res.value, res.scale, "float64").max() <= VALUE_BOUND["float64"](1)
    assert value_error(res.value * (1 + 1e-12), res.value, res.scale, "float64").max() > VALUE_BOUND["float64"](1)


def test_categorical_cap_leaves_a_base_above_eps_alone():
    """q = [0.7, 0.3], y = [1, 0], gamma = 0.5: scale alpha (f y (|log q| + 1) + |df| cce) for the live class."""
    res = C.categorical_focal_cross_entropy(np.array([[0.7, 0.3]]), np.array([[1.0, 0.0]]), gamma=0.5,
                                            clip_eps=1e-7)
    cce = -np.log(0.7)
    f, df = 0.3 ** 0.5, 0.5 * 0.3 ** -0.5
    np.testing.assert_allclose(res.value, 0.25 * f * cce, rtol=1e-15)
    np.testing.assert_allclose(res.scale, 0.25 * (f * (cce + 1.0) + df * cce), rtol=1e-14)


def test_balancing_weight_rounding_is_in_the_gradient_scale():
    """keras-jax float32, apply_class_balancing, alpha = 0, gamma = 0, label_smoothing = 1e-7, y_true = 1,
    logits -8: the smoothed label rounds to 1 - 2**-24, so the weight 1 - y is 5.96e-8 for 5e-8 and
    d/dy_pred = w (p - y) comes out 1.19x the oracle's (as the value does, whose scale counted it)."""
    f32 = np.float32
    ys = f32(1) * (f32(1) - f32(1e-7)) + f32(0.5) * f32(1e-7)
    p = f32(1) / (f32(1) + np.exp(f32(8)))
    framework = np.array([(f32(1) - ys) * (p - ys)], dtype=np.float64)
    res = C.binary_focal_cross_entropy(np.array([-8.0]), np.array([1.0]), from_logits=True, gamma=0.0, alpha=0.0,
                                       apply_class_balancing=True, label_smoothing=1e-7, clip_eps=1e-7)
    expected = res.grad(np.array([1.0]))["output"]
    np.testing.assert_allclose(framework / expected, 1.19209, rtol=1e-4)   # the rounding under test is there
    mag = res.grad_magnitude(np.array([1.0]))["output"]
    assert grad_error(framework, expected, mag, "float32") <= GRAD_BOUND["float32"](1)


def test_categorical_gradient_scale_counts_the_renormalised_q_in_one_minus_q():
    """keras-jax (torch, TensorFlow alike) float32, axis = 0, gamma = 1, y_true column [0, 1], y_pred column
    [6.1031e-5, 1 - 2**-14]: the sum 1 - 3.7e-9 rounds to 1, so 1 - q is 2**-14 for 6.1031e-5 and
    d/dy_pred[0, 0] comes out 4.3356744e-5 for 4.3354104e-5 (255 eps of a scale without the rounding of q)."""
    f32 = np.float32
    z = np.array([6.103143823565915e-05, 0.99993896484375], dtype=f32)
    cot = 1.0 + 0.5 * np.sin(np.arange(1.0, 4.0))
    # Keras' forward in float32 and its autodiff: q = z / s, loss = a (1 - q)(-log q) for the live class
    s = z[0] + z[1]
    assert s == 1                                           # the rounding under test is there
    q1, a, g = z[1] / s, f32(0.25), f32(cot[0])
    gq1 = -a * g * (-np.log(q1) + (f32(1) - q1) / q1)
    framework = np.zeros((2, 3))
    framework[:, 0] = [-gq1 * z[1] / (s * s), gq1 * z[0] / (s * s)]
    np.testing.assert_allclose(framework[0, 0], 4.3356743844924495e-05, rtol=1e-7)   # measured on keras-jax
    y_pred = np.array([[z[0], 0.5, 0.5], [z[1], 0.5, 0.5]], dtype=np.float64)
    res = C.categorical_focal_cross_entropy(y_pred, np.array([[0.0, 0, 0], [1, 0, 0]]), gamma=1.0, alpha=0.25,
                                            clip_eps=1e-7, axis=0)
    expected, mag = res.grad(cot)["output"], res.grad_magnitude(cot)["output"]
    assert abs(framework[0, 0] / expected[0, 0] - 1) > 5e-5
    assert grad_error(framework, expected, mag, "float32") <= GRAD_BOUND["float32"](1)
    # the scale still tells a gradient without the focal factor (alpha y / q alone) from the right one
    zd = z.astype(np.float64)
    plain = expected.copy()
    plain[:, 0] = 0.25 * cot[0] * np.array([1 / zd.sum(), 1 / zd.sum() - 1 / zd[1]])   # of -alpha log(z1 / s)
    assert grad_error(plain, expected, mag, "float32") > 1e3 * GRAD_BOUND["float32"](1)


def test_sigmoid_focal_gradient_scale_counts_the_rounding_of_its_exponents():
    """optax ``sigmoid_focal_loss``, float64, logits -88, label 1.65e-47, gamma 3 (soak seed 7: G006,
    139 eps against 72): the factors are exps of gamma log(1 - p_t) ~ -264 and alike, so the
    exponents' rounding is a relative error of hundreds of eps in optax and the oracle alike. The
    exact gradient (mpmath, 80 digits) is 5.375296710539373e-153; optax gives 5.375296710539316e-153
    (jax 0.10.2), 48 eps of the old scale from it, and the oracle 92 eps on the other side."""
    res = C.sigmoid_focal_loss(np.array([-88.0]), np.array([1.6493635187796058e-47]), gamma=3.0)
    exact, optax_dx = 5.375296710539373e-153, 5.375296710539316e-153
    g, m = res.grad()["logits"], res.grad_magnitude()["logits"]
    bound = GRAD_BOUND["float64"](1)
    assert grad_error(g, [exact], m, "float64") <= bound
    assert grad_error([optax_dx], g, m, "float64") <= bound
    assert grad_error([exact * (1 + 1e-10)], g, m, "float64") > bound   # still far tighter than 1e-10
