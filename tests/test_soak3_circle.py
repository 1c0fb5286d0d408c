"""The Circle oracle's gradient error scale counts the rounding of the log-sum-exp exponents (soak alarm,
seed 3: keras.losses.Circle, keras-torch, numerics, float64; Keras' torch backend runs ops.matmul of
float64 in float32, so the whole loss is float32 there). torch's logsumexp backward is exp(t - lse) with
the forward's rounded lse: at lse = 833 the softmax weights are off by 2.9e-5 relative (244 float32
eps), which a scale of the derivative summands alone (|dt/dd| ~ 520) read as 214 eps > bound 86.
NumPy only: the float32 computation below follows keras.losses.circle and torch's autograd."""
import numpy as np

from losscheck.reference import embedding as E
from losscheck.tolerance import GRAD_BOUND, grad_error

F = np.float32
A = float(F(1.4999999))
LABELS = np.array([0, 1, 1, 1, 1, 1])
X = np.array([[-A], [-A], [-A], [A], [-A], [A]])
GAMMA, MARGIN = 80.0, 0.4


def _lse(t, mask):
    """torch.logsumexp in float32 over a row (masked entries are -inf): max + log(sum exp(t - max))."""
    tm = np.where(mask, t, F(-np.inf))
    top = tm.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, F(0))
    with np.errstate(divide="ignore"):
        return (np.log(np.sum(np.exp(tm - top), axis=1, keepdims=True)) + top).astype(F)


def _torch_float32_grad(weights):
    """d/dx of sum_over_batch_size(circle(LABELS, X)) in float32, with the softmax weights of the
    logsumexp backward given by ``weights(t, lse, mask)``; the Keras mask (loss > 0) keeps rows 1..5."""
    x = X.astype(F)
    g_, m_ = F(GAMMA), F(MARGIN)
    same = LABELS[:, None] == LABELS[None, :]
    pmask, nmask = same & ~np.eye(6, dtype=bool), ~same
    raw = F(1) - x @ x.T
    d = np.maximum(raw, F(0))
    wp, wn = np.maximum(m_ + d, F(0)), np.maximum(F(1) + m_ - d, F(0))
    tp, tn = -g_ * wp * (m_ - d), g_ * wn * (F(1) - m_ - d)
    lp, ln = _lse(tp, pmask), _lse(tn, nmask)
    valid = np.isfinite(lp + ln)[:, 0]
    ap = np.where(pmask & valid[:, None], weights(tp, lp, pmask), F(0))
    an = np.where(nmask & valid[:, None], weights(tn, ln, nmask), F(0))
    gz = np.where(valid, F(1) / F(valid.sum()), F(0))[:, None]     # softplus'(z > 20) = 1 in torch
    dtp = -g_ * ((m_ + d > 0) * (m_ - d) - wp)
    dtn = -g_ * ((F(1) + m_ - d > 0) * (F(1) - m_ - d) + wn)
    gdot = -(gz * (ap * dtp + an * dtn)) * (raw > 0)
    return ((gdot + gdot.T) @ x).astype(np.float64)


def _torch_weights(t, lse, mask):
    return np.exp(t - lse)                     # FunctionsManual.cpp logsumexp_backward


def _softmax_weights(t, lse, mask):
    tm = np.where(mask, t, F(-np.inf))
    top = tm.max(axis=1, keepdims=True)
    e = np.exp(tm - np.where(np.isfinite(top), top, F(0)))
    with np.errstate(invalid="ignore"):
        return e / e.sum(axis=1, keepdims=True)


def _oracle():
    return E.circle(LABELS, X, gamma=GAMMA, margin=MARGIN, remove_diagonal=True, keras_mask=True,
                    reduction="sum_over_batch_size")


def test_torch_logsumexp_backward_is_within_the_scale():
    res = _oracle()
    expected, mag = res.grad()["embeddings"], res.grad_magnitude()["embeddings"]
    got = _torch_float32_grad(_torch_weights)
    # the rounding under test is there: keras-torch gives -259.99331665 (exact -259.99995)
    np.testing.assert_allclose(got[1, 0], -259.99331665, rtol=1e-6)
    assert abs(got[1, 0] - expected[1, 0]) > 200 * np.finfo(F).eps * abs(expected[1, 0])
    assert grad_error(got, expected, mag, "float32") <= GRAD_BOUND["float32"](X.size)


def test_the_scale_still_catches_a_wrong_gradient():
    """The stable softmax weights (jax, TensorFlow) land within a few eps of the exact gradient; a
    float32 gradient off by 10% (float64: by 1e-9) is beyond the bound with the exponents' rounding
    counted. (Rounding d = 3.25 moves t by |dt/dd| 2 ulps ~ 3,400 eps, so a weight may be off by that
    much relative: the float32 bound is ~6% here, gamma = 80 makes the loss that ill-conditioned.)"""
    res = _oracle()
    expected, mag = res.grad()["embeddings"], res.grad_magnitude()["embeddings"]
    stable = _torch_float32_grad(_softmax_weights)
    np.testing.assert_allclose(stable, expected, rtol=1e-6)
    assert grad_error(expected * 1.1, expected, mag, "float32") > GRAD_BOUND["float32"](X.size)
    assert grad_error(expected * (1 + 1e-9), expected, mag, "float64") > GRAD_BOUND["float64"](X.size)
