"""Planted bugs in JAX/optax losses, written the way people write them, each with its correct twin.
Losses checked against an optax reference are elementwise like optax's own (the caller reduces)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from ..audit.declare import declare
from .record import Mutant

M = partial(Mutant, framework="jax")


# ---- V: value ---------------------------------------------------------------------------------------

@declare(reference="optax.losses.squared_error")
def mse_sum(predictions, targets):
    return jnp.sum((predictions - targets) ** 2)


@declare(reference="optax.losses.squared_error")
def mse_mean(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


def huber_no_delta_scale(predictions, targets, delta=2.0):
    d = jnp.abs(predictions - targets)
    quadratic = jnp.minimum(d, delta)
    return 0.5 * quadratic ** 2 + (d - quadratic)   # the linear part is not multiplied by delta


def huber(predictions, targets, delta=2.0):
    d = jnp.abs(predictions - targets)
    quadratic = jnp.minimum(d, delta)
    return 0.5 * quadratic ** 2 + delta * (d - quadratic)


def sigmoid_bce_swapped(logits, labels):
    return jax.nn.softplus(labels) - labels * logits   # logits and labels exchanged


def sigmoid_bce(logits, labels):
    return jax.nn.softplus(logits) - logits * labels


def l2_loss_no_half(predictions, targets):
    return (predictions - targets) ** 2   # optax's l2_loss is 0.5 * (p - t)^2


def l2_loss(predictions, targets):
    return 0.5 * (predictions - targets) ** 2


# ---- G: gradient ---------------------------------------------------------------------------------------

def squared_error_stop_gradient(predictions, targets):
    return (jax.lax.stop_gradient(predictions) - targets) ** 2


def squared_error(predictions, targets):
    return (predictions - targets) ** 2


def _squared_error_vjp(factor):
    @jax.custom_vjp
    def f(predictions, targets):
        return (predictions - targets) ** 2

    def fwd(predictions, targets):
        return f(predictions, targets), predictions - targets

    def bwd(d, g):
        grad = factor * 2.0 * d * g
        return grad, -grad

    f.defvjp(fwd, bwd)
    return f


_se_sign, _se_half, _se_right = _squared_error_vjp(-1.0), _squared_error_vjp(0.5), _squared_error_vjp(1.0)


@jax.custom_vjp
def _huber_mse_vjp(predictions, targets):
    d = jnp.abs(predictions - targets)
    q = jnp.minimum(d, 1.0)
    return 0.5 * q ** 2 + (d - q)


def _huber_fwd(predictions, targets):
    return _huber_mse_vjp(predictions, targets), predictions - targets


def _huber_mse_bwd(d, g):
    return d * g, -d * g   # the MSE gradient: the clip at |d| = 1 is missing


_huber_mse_vjp.defvjp(_huber_fwd, _huber_mse_bwd)


def squared_error_vjp_sign(predictions, targets):
    return _se_sign(predictions, targets)   # custom_vjp with the residual's sign flipped


def squared_error_vjp_half(predictions, targets):
    return _se_half(predictions, targets)   # custom_vjp missing the factor 2


def squared_error_vjp(predictions, targets):
    return _se_right(predictions, targets)


def huber_vjp_mse_backward(predictions, targets):
    return _huber_mse_vjp(predictions, targets)


def huber_unit_delta(predictions, targets):
    d = jnp.abs(predictions - targets)
    q = jnp.minimum(d, 1.0)
    return 0.5 * q ** 2 + (d - q)


# ---- B: batch handling --------------------------------------------------------------------------------

def mse_over_target_spread(predictions, targets):
    return jnp.mean((predictions - targets) ** 2) / jnp.var(targets)


def mse_over_two(predictions, targets):
    return jnp.mean((predictions - targets) ** 2) / 2.0


def ce_softmax_over_batch(logits, labels):
    log_probs = jax.nn.log_softmax(logits, axis=0)   # over the batch, not the classes
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def ce_softmax_over_classes(logits, labels):
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


# ---- D: integer context tensors -----------------------------------------------------------------------

def masked_mse_lax_mul(predictions, targets, mask):
    return jnp.mean(jax.lax.mul((predictions - targets) ** 2, mask))   # lax.mul does not promote an int mask


def masked_mse(predictions, targets, mask):
    sq = (predictions - targets) ** 2
    return jnp.mean(jax.lax.mul(sq, mask.astype(sq.dtype)))


# ---- N: numerics --------------------------------------------------------------------------------------

def ce_naive_logsumexp(logits, labels):
    log_probs = logits - jnp.log(jnp.sum(jnp.exp(logits), axis=-1, keepdims=True))
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def ce_optax(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def log_cosh_naive(predictions, targets):
    return jnp.log(jnp.cosh(predictions - targets))   # cosh overflows past |x| = 710


def log_cosh(predictions, targets):
    x = predictions - targets
    return jnp.abs(x) + jax.nn.softplus(-2.0 * jnp.abs(x)) - jnp.log(2.0)


# ---- P: performance -----------------------------------------------------------------------------------

def pairwise_loop(embeddings):
    n = embeddings.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            total = total + jnp.sum((embeddings[i] - embeddings[j]) ** 2)
    return total / (n * n)


def pairwise_vectorised(embeddings):
    n = embeddings.shape[0]
    return 2.0 * jnp.sum((embeddings - embeddings.mean(axis=0)) ** 2) / n


# ---- X: execution -------------------------------------------------------------------------------------

def mse_python_float(predictions, targets):
    return float(jnp.mean((predictions - targets) ** 2))


def mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


def mse_python_if(predictions, targets):
    if jnp.any(jnp.isnan(predictions)):   # a traced array is no Python bool: raises under jax.jit
        return jnp.full((), jnp.nan)
    return jnp.mean((predictions - targets) ** 2)


def squared_error_per_feature(predictions, targets):
    return jnp.mean((predictions - targets) ** 2, axis=0)   # reduces the batch where optax keeps every element


def mse_rows_of_two(predictions, targets):
    return jnp.mean((predictions.reshape(-1, 2) - targets.reshape(-1, 2)) ** 2)   # assumes an even size


# ---- X: side effects on the caller ----------------------------------------------------------------------
# JAX arrays cannot be written in place (and the engines pass JAX arrays, never NumPy): the JAX side
# effect is a changed setting.

def squared_error_x64_off(predictions, targets):
    jax.config.update("jax_enable_x64", False)   # "float32 is faster": for the whole process, from now on
    return (predictions - targets) ** 2


# ---- A: activation / loss pairing ---------------------------------------------------------------------

def softmax_then_softmax_ce(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy(jax.nn.softmax(logits), labels))


def softmax_ce(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))


def sigmoid_then_sigmoid_bce(logits, labels):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(jax.nn.sigmoid(logits), labels))


def sigmoid_bce_mean(logits, labels):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


MUTANTS = [
    # V
    M("jax.mse_sum_for_mean", "V", "sum where the mean is meant", mse_sum, mse_mean, via="audit"),
    M("jax.huber_delta", "V", "Huber's linear part not multiplied by delta", huber_no_delta_scale, huber,
      "optax.losses.huber_loss", params={"delta": 2.0}),
    M("jax.sigmoid_bce_swapped", "V", "logits and labels exchanged in a hand-written sigmoid BCE",
      sigmoid_bce_swapped, sigmoid_bce, "optax.losses.sigmoid_binary_cross_entropy",
      properties=("value", "gradient", "batch")),   # softplus(x) - x * y is NaN at x = inf: not this bug
    M("jax.l2_loss_no_half", "V", "optax-style l2_loss without its 1/2", l2_loss_no_half, l2_loss,
      "optax.losses.l2_loss"),
    # G
    M("jax.stop_gradient", "G", "lax.stop_gradient on the predictions", squared_error_stop_gradient, squared_error,
      "optax.losses.squared_error"),
    M("jax.custom_vjp_sign", "G", "custom_vjp with the residual's sign flipped", squared_error_vjp_sign,
      squared_error_vjp, "optax.losses.squared_error"),
    M("jax.custom_vjp_half", "G", "custom_vjp missing the factor 2", squared_error_vjp_half, squared_error_vjp,
      "optax.losses.squared_error"),
    M("jax.custom_vjp_not_forward", "G", "custom_vjp of a Huber loss returns the MSE gradient",
      huber_vjp_mse_backward, huber_unit_delta, "optax.losses.huber_loss", params={"delta": 1.0}),
    # B
    M("jax.batch_statistic", "B", "normalised by the batch's target variance", mse_over_target_spread,
      mse_over_two, via="audit"),
    M("jax.softmax_over_batch", "B", "log_softmax over axis 0 (the batch)", ce_softmax_over_batch,
      ce_softmax_over_classes, via="audit"),
    # D
    M("jax.int_mask_lax_mul", "D", "integer mask given to lax.mul", masked_mse_lax_mul, masked_mse, via="audit"),
    # N
    M("jax.naive_logsumexp", "N", "log(sum(exp(z))) overflows", ce_naive_logsumexp, ce_optax, via="audit"),
    M("jax.log_cosh_overflow", "N", "log(cosh(x)) overflows for large residuals", log_cosh_naive, log_cosh,
      "optax.losses.log_cosh"),
    # P
    M("jax.pairwise_loop", "P", "Python double loop over the pairs of samples", pairwise_loop, pairwise_vectorised,
      via="audit"),
    # X
    M("jax.python_if", "X", "a Python if on an array: raises under jax.jit", mse_python_if, mse, via="audit"),
    M("jax.returns_float", "X", "float() of the loss: a Python number", mse_python_float, mse, via="audit"),
    M("jax.per_feature_output", "X", "reduces the batch axis where optax keeps every element",
      squared_error_per_feature, squared_error, "optax.losses.squared_error"),
    M("jax.reshape_pairs", "X", "reshapes into rows of two: raises on odd sizes", mse_rows_of_two, mse,
      via="audit"),
    M("jax.x64_disabled", "X", "jax.config.update('jax_enable_x64', False) inside the loss", squared_error_x64_off,
      squared_error, "optax.losses.squared_error"),
    # A
    M("jax.softmax_then_softmax_ce", "A", "softmax before optax.softmax_cross_entropy", softmax_then_softmax_ce,
      softmax_ce, via="audit"),
    M("jax.sigmoid_then_sigmoid_bce", "A", "sigmoid before optax.sigmoid_binary_cross_entropy",
      sigmoid_then_sigmoid_bce, sigmoid_bce_mean, via="audit"),
]
