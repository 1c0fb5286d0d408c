"""The Circle oracle's gradient scale counts the rounding of the derivative's own factors (soak alarm,
seed 23: keras.losses.Circle, keras-torch, gradient, float32, G005 at 85 eps against a bound of 80).
At y_pred = [[1], [0], [0]] every negative pair sits at d = 1, where the negative term's derivative
gamma * ((1 - margin - d) + (1 + margin - d)) is exactly 0. The factors are ~margin there, so their
magnitudes gave a tiny scale, but Keras rounds the constants 1 - margin and 1 + margin to float32 and
every backend (torch, jax, TensorFlow) returns 2.3841858e-06 = 20 eps. NumPy only: the float32
computation below follows keras.losses.circle's backward at these inputs."""
import numpy as np

from losscheck.reference import embedding as E
from losscheck.tolerance import EPS, GRAD_BOUND, grad_error

F = np.float32
LABELS = np.array([0, 1, 1])
X = np.array([[1.0], [0.0], [0.0]])
GAMMA, MARGIN = 80.0, 0.0018475680035571211


def _oracle():
    return E.circle(LABELS, X, gamma=GAMMA, margin=MARGIN, remove_diagonal=True, keras_mask=True,
                    reduction="sum_over_batch_size")


def _keras_float32_grad():
    """d/dx in float32, as Keras computes it: neg_weights = (1 + margin) - d and neg_dists =
    (1 - margin) - d with the constants rounded to float32; rows 1 and 2 each have one negative
    (row 0) and one positive at d = 1, and the mask loss > 0 keeps them (sum_over_batch_size / 2)."""
    d = F(1) - X.astype(F) @ X.astype(F).T
    neg_weights, neg_dists = F(1 + MARGIN) - d, F(1 - MARGIN) - d
    dtn = -F(GAMMA) * (neg_dists + neg_weights)           # d(gamma w (1 - m - d)) / dd, rounded
    g = np.zeros((3, 1), F)
    for i in (1, 2):                                      # one negative per row: softmax weight 1
        gz = F(0.5)                                       # sigmoid(z ~ 80) = 1, mean over 2 rows
        g[i, 0] += gz * dtn[i, 0] * -X[0, 0]              # d d_i0 / d x_i = -x_0
    return g.astype(np.float64)


def test_the_float32_gradient_is_what_keras_returns():
    got = _keras_float32_grad()
    np.testing.assert_array_equal(got.ravel(), [0.0, 20 * EPS["float32"], 20 * EPS["float32"]])
    assert np.all(np.abs(_oracle().grad()["embeddings"]) < 1e-13)


def test_the_rounded_constants_are_within_the_scale():
    res = _oracle()
    err = grad_error(_keras_float32_grad(), res.grad()["embeddings"], res.grad_magnitude()["embeddings"], "float32")
    assert err <= 2, err


def test_a_wrong_gradient_at_the_cancellation_is_still_caught():
    """A backward that drops one of the two factors gives gamma * margin / 2 = 0.074 per row."""
    res = _oracle()
    expected, mag = res.grad()["embeddings"], res.grad_magnitude()["embeddings"]
    wrong = expected + np.array([[0.0], [0.5 * GAMMA * MARGIN], [0.5 * GAMMA * MARGIN]])
    assert grad_error(wrong, expected, mag, "float32") > GRAD_BOUND["float32"](X.size)
    assert grad_error(expected + 1e-9, expected, mag, "float64") > GRAD_BOUND["float64"](X.size)
