"""Planted bugs, one per check family, in otherwise correct JAX losses; each `bug_<family>_*` loss
has a correct twin `ok_<family>_*` that must pass with no findings."""
import jax
import jax.numpy as jnp
import optax

import losscheck


# V: a sum where the declared reference (the mean of optax's squared error) takes the mean
@losscheck.declare(reference="optax.losses.squared_error")
def bug_V_mse(predictions, targets):
    return jnp.sum((predictions - targets) ** 2)


@losscheck.declare(reference="optax.losses.squared_error")
def ok_V_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


# G: stop_gradient on the prediction
def bug_G_mse(predictions, targets):
    return jnp.mean((jax.lax.stop_gradient(predictions) - targets) ** 2)


def ok_G_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


# B: normalised by the batch's spread of the targets
def bug_B_scaled_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2) / jnp.var(targets)


def ok_B_scaled_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2) / 2.0


# N: log(sum(exp(z))) overflows for confident logits
def bug_N_cross_entropy(logits, labels):
    log_probs = logits - jnp.log(jnp.sum(jnp.exp(logits), axis=-1, keepdims=True))
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def ok_N_cross_entropy(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


# D: jax.lax.mul does not promote: an integer mask is rejected
def bug_D_masked_mse(predictions, targets, mask):
    return jnp.mean(jax.lax.mul((predictions - targets) ** 2, mask))


def ok_D_masked_mse(predictions, targets, mask):
    sq = (predictions - targets) ** 2
    return jnp.mean(jax.lax.mul(sq, mask.astype(sq.dtype)))


# P: a Python double loop over the pairs of samples
def bug_P_pairwise_loss(embeddings):
    n = embeddings.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            total = total + jnp.sum((embeddings[i] - embeddings[j]) ** 2)
    return total / (n * n)


def ok_P_pairwise_loss(embeddings):
    n = embeddings.shape[0]
    return 2.0 * jnp.sum((embeddings - embeddings.mean(axis=0)) ** 2) / n


# X: float() leaves JAX: a Python number, no gradient
def bug_X_mse(predictions, targets):
    return float(jnp.mean((predictions - targets) ** 2))


def ok_X_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


# X: a Python `if` on an array works eagerly and raises under jax.jit (X010)
def bug_X_branchy_mse(predictions, targets):
    if jnp.sum(jnp.abs(targets)) == 0:
        return jnp.zeros(())
    return jnp.mean((predictions - targets) ** 2)


def ok_X_branchy_mse(predictions, targets):
    mse = jnp.mean((predictions - targets) ** 2)
    return jnp.where(jnp.sum(jnp.abs(targets)) == 0, 0.0, mse)


# A: softmax before optax's softmax cross-entropy, which expects logits (a double softmax)
def bug_A_cross_entropy(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy(jax.nn.softmax(logits), labels))


def ok_A_cross_entropy(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))
