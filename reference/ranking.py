"""Listwise ranking losses: optax's ranking softmax loss.

Shapes: ``logits`` and ``labels`` are ``[..., list_size]``; the leading axes are lists (batch
axes). Source: optax/losses/_ranking.py (``ranking_softmax_loss``, ``_safe_reduce``).
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, max_shift


def ranking_softmax(logits, labels, *, where=None, weights=None, reduce_fn: str | None = "mean") -> Result:
    """-sum_i w_i y_i log softmax(s)_i over the valid items of each list, then ``reduce_fn``.

    Args:
      logits: scores s, ``[..., L]``.
      labels: relevance labels y (floats), ``[..., L]``.
      where: optional boolean ``[..., L]``: invalid items are dropped from the softmax (their
        logits become -inf) and from the sum.
      weights: optional per-item weights w, ``[..., L]`` (they multiply the labels).
      reduce_fn: ``"mean"`` (optax's default ``jnp.mean``): the mean over the lists with at least
        one valid item, 0 when there is none; ``"sum"``: their sum; ``None``: one loss per list,
        0 for a list without valid items.

    Gradients for ``logits``, ``labels`` and ``weights`` (all zero at invalid items). Smooth: no
    kinks.

    Shapes: ``logits`` and ``labels`` broadcast together to ``[..., L]``; ``where`` and ``weights`` to that.
    Returns a scalar for ``reduce_fn="mean"`` or ``"sum"``, shape ``[...]`` (one loss per list) for
    ``None``. Models optax ``ranking_softmax_loss`` (source in the module docstring).
    """
    s, y = f64(logits, labels)
    s, y = np.broadcast_arrays(s, y)
    m = np.ones(s.shape, bool) if where is None else np.broadcast_to(np.asarray(where, bool), s.shape)
    w = np.ones(s.shape) if weights is None else np.broadcast_to(f64(weights), s.shape)
    yw = np.where(m, y * w, 0.0)
    masked, top = max_shift(s, axis=-1, where=m)
    # (s - top) - log(sum exp(s - top)), as jax.nn.log_softmax computes it; not s - logsumexp(s), which
    # rounds the normaliser to the ulp of top: log_softmax([-1e4, -1e4]) came out 1131 eps from log(1/2)
    shifted = masked - top
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(np.sum(np.where(m, np.exp(shifted), 0.0), axis=-1, keepdims=True))
        lsm = np.where(m, shifted - log_s, 0.0)
        p = np.where(m, np.exp(lsm), 0.0)
    log_s0 = np.where(np.isfinite(log_s), log_s, 0.0)
    per = -np.sum(yw * lsm, axis=-1)
    # log_softmax is (s - max) - log(sum exp(s - max)); the sum is >= 1 and rounded, so each entry is
    # accurate to about eps * (|s - max| + log(sum) + 1), on top of |lsm| itself
    err = np.where(m, np.abs(lsm) + np.abs(s - top) + log_s0 + 1.0, 0.0)
    per_scale = np.sum(np.abs(yw) * err, axis=-1)
    any_valid = m.any(axis=-1)
    if reduce_fn is None:
        reduction, kw = "none", {"weights": any_valid}
    elif reduce_fn == "sum":
        reduction, kw = "sum", {"weights": any_valid}
    elif reduce_fn == "mean":
        reduction, kw = "mean", {"weights": any_valid, "divisor": float(any_valid.sum())}
    else:
        raise ValueError(f"unknown reduce_fn {reduce_fn!r}")

    def vjp(g):
        g = np.asarray(g)[..., None]
        sy = yw.sum(axis=-1, keepdims=True)
        gs = np.where(m, -g * (yw - p * sy), 0.0)
        return {"logits": gs, "labels": np.where(m, -g * w * lsm, 0.0),
                "weights": np.where(m, -g * y * lsm, 0.0)}

    def gscale(g):
        g = np.abs(np.asarray(g))[..., None]
        sy = np.abs(yw).sum(axis=-1, keepdims=True)
        return {"logits": np.where(m, g * (np.abs(yw) + p * sy), 0.0),
                "labels": np.where(m, g * np.abs(w) * err, 0.0),
                "weights": np.where(m, g * np.abs(y) * err, 0.0)}

    return finish(per, per_scale, vjp, reduction, local_grad_scale=gscale, **kw)
