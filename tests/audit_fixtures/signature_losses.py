"""Losses whose signature or return value the audit once misread (tests/test_audit_signatures.py):
keyword-only inputs, non-tensor returns, *args/**kwargs signatures and jitted lambdas."""
import torch

import jax
import jax.numpy as jnp
import optax

import losscheck


def kw_masked_loss(pred, target, *, mask):
    return (mask * (pred - target) ** 2).mean()


@losscheck.declare(inputs="pred=reals(N,D),target=reals(N,D),mask=mask(N,D)")
def kw_declared_loss(pred, target, *, mask):
    return (mask * (pred - target) ** 2).mean()


def kw_norm_loss(pred, target, *, mask):
    # BUG: the square root of a zero distance: a NaN gradient where a row is predicted exactly (N003)
    return torch.sqrt((mask * (pred - target) ** 2).sum(dim=1)).mean()


def kw_optional_loss(pred, target, *, scale=1.0):   # an optional keyword-only argument keeps its default
    return scale * ((pred - target) ** 2).mean()


def none_loss(pred, target):
    ((pred - target) ** 2).mean()   # BUG: no return


def str_loss(pred, target):
    return f"loss={((pred - target) ** 2).mean().item():.4f}"


async def async_loss(pred, target):
    return ((pred - target) ** 2).mean()


def generator_loss(pred, target):
    yield ((pred - target) ** 2).mean()


def list_loss(pred, target):
    return [((pred - target) ** 2).mean()]


def float_loss(pred, target):
    return ((pred - target) ** 2).mean().item()


def varargs_loss(*args):
    pred, target, mask = args
    return (mask * (pred - target) ** 2).mean()


@losscheck.declare(inputs="pred=reals(N,D),target=reals(N,D),mask=mask(N,D)")
def kwargs_declared_loss(**kwargs):
    return (kwargs["mask"] * (kwargs["pred"] - kwargs["target"]) ** 2).mean()


lam_jit_loss = jax.jit(lambda predictions, targets: jnp.sum((predictions - targets) ** 2))

jit_loss = jax.jit(lambda logits, labels: optax.softmax_cross_entropy_with_integer_labels(
    jax.nn.softmax(logits), labels).sum())


def jnp_mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


jit_mse = jax.jit(jnp_mse)   # another name for jnp_mse, not another loss
