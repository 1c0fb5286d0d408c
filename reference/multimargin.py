"""Multi-class and multi-label margin losses of torch: ``MultiMarginLoss``, ``MultiLabelMarginLoss``
and ``MultiLabelSoftMarginLoss`` (and their ``torch.nn.functional`` twins).

Each takes an input of shape ``(N, C)`` or, unbatched, ``(C,)``, computes one loss per sample
(an average over the C classes) and then the torch reduction over the batch through the keywords of
:func:`reference._core.reduce` (default ``reduction="none"``: shape ``(N,)``, or ``()`` unbatched).

The hinge losses are non-differentiable where a margin is exactly zero; those points are listed in
``kink_gap``, and the reference returns the subgradient 0 of ``max(., 0)`` there (torch's kernels
test ``z > 0``).

Sources read: torch/nn/modules/loss.py (the documented formulas), torch/nn/functional.py
``multilabel_soft_margin_loss`` (a Python composition), and the C++ kernels' Python decompositions
in torch/_decomp/decompositions.py ``multi_margin_loss`` and ``multilabel_margin_loss_forward``.
The latter does not mask the padding positions j past the first -1 (they gather x[0] and still
contribute): torch.nn.functional.multilabel_margin_loss(x=[[0.1, 0.2, 0.4, 0.8]], y=[[3, 0, -1, 1]])
is 0.85 in eager mode, as documented, and 2.05 through the decomposition. The reference follows the
documentation and the eager kernel.
"""
from __future__ import annotations

import numpy as np

from . import classification
from ._core import Result, f64, finish, rel_gap


def _batched(x):
    """``(x as (N, C), unbatched?)``."""
    x = f64(x)
    return (x[None], True) if x.ndim == 1 else (x, False)


def _squeeze(a, unbatched):
    return a[0] if unbatched else a


def multi_margin(input, target, *, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "none",
                 **reduce_kw) -> Result:
    """torch ``MultiMarginLoss(p, margin, weight)``: per sample
    ``sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C``.

    Args:
      input: scores x, shape ``(N, C)`` or ``(C,)``.
      target: integer class indices y in [0, C), shape ``(N,)`` or ``()``.
      p: 1 or 2 (torch supports no other).
      margin: the margin.
      weight: optional class weights of shape ``(C,)``; as documented (and as the kernel computes),
        the weight of the *target* class multiplies the whole sample, after the power.

    Kinks where ``x[y] - x[i] == margin`` (for ``p=2`` a jump of the second derivative only).
    """
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 are supported")
    x, unbatched = _batched(input)
    y = np.atleast_1d(np.asarray(target, dtype=np.int64))
    n, c = x.shape
    rows = np.arange(n)
    xy = x[rows, y]
    other = np.arange(c)[None, :] != y[:, None]
    z = margin - xy[:, None] + x
    active = (z > 0) & other
    zp = np.where(active, z, 0.0)
    wy = np.ones(n) if weight is None else f64(weight)[y]
    h = zp if p == 1 else zp * zp
    terms = wy * h.sum(axis=1) / c
    # summands of z: margin, x[y], x[i] (times 2 z for p = 2)
    zs = np.where(active, abs(margin) + np.abs(xy)[:, None] + np.abs(x), 0.0)
    hs = zs if p == 1 else zs * zp
    scale = np.abs(wy) * hs.sum(axis=1) / c
    dh = active.astype(np.float64) if p == 1 else 2.0 * zp

    def vjp(g):
        gz = (np.asarray(g, dtype=np.float64) * wy / c)[:, None] * dh
        gx = gz.copy()
        gx[rows, y] -= gz.sum(axis=1)
        return {"input": _squeeze(gx, unbatched)}

    def gscale(g):
        gz = (np.abs(np.asarray(g, dtype=np.float64) * wy) / c)[:, None] * (active if p == 1 else 2.0 * zs)
        gx = gz.copy()
        gx[rows, y] += gz.sum(axis=1)
        return {"input": _squeeze(gx, unbatched)}

    # an element of x is near a kink if any hinge it enters is: x[i] in its own, x[y] in every one
    pair_gap = np.where(other, rel_gap(xy[:, None] - x, margin), np.inf)
    gap = pair_gap.copy()
    gap[rows, y] = pair_gap.min(axis=1)
    return finish(_squeeze(terms, unbatched), _squeeze(scale, unbatched), vjp, reduction,
                  kink_gap={"input": _squeeze(gap, unbatched)}, local_grad_scale=gscale, **reduce_kw)


def multilabel_target_mask(target):
    """For index targets padded with -1, shape ``(N, C)``: ``(prefix, is_target)`` where
    ``prefix[n, j]`` marks the entries before the first -1 of row n and ``is_target[n, i]`` the
    classes named in that prefix."""
    t = np.asarray(target, dtype=np.int64)
    c = t.shape[-1]
    ended = np.cumsum(t == -1, axis=-1) > 0
    prefix = ~ended
    is_target = np.zeros(t.shape, dtype=bool)
    rows, cols = np.nonzero(prefix)
    is_target[rows, t[rows, cols]] = True
    return prefix, is_target


def multilabel_margin(input, target, *, reduction: str = "none", **reduce_kw) -> Result:
    """torch ``MultiLabelMarginLoss``: per sample
    ``sum_j sum_{i not a target} max(0, 1 - (x[y[j]] - x[i])) / C``.

    Args:
      input: scores x, shape ``(N, C)`` or ``(C,)``.
      target: integer class indices of the same shape, padded with -1: only the entries before the
        first -1 count (all C when there is none); a class named twice in that prefix counts twice
        (the kernel's behaviour; the documented sum over j does the same). A sample with an empty
        prefix, or one that names every class, has loss 0.

    Kinks where ``x[y[j]] - x[i] == 1`` for a target j and a non-target i.
    """
    x, unbatched = _batched(input)
    t = np.asarray(target, dtype=np.int64).reshape(x.shape)
    n, c = x.shape
    prefix, is_target = multilabel_target_mask(t)
    tj = np.where(prefix, t, 0)
    xj = np.take_along_axis(x, tj, axis=1)                     # x[y[j]], (N, J)
    pair = prefix[:, :, None] & ~is_target[:, None, :]          # (N, J, I)
    z = 1.0 - xj[:, :, None] + x[:, None, :]
    active = pair & (z > 0)
    terms = np.where(active, z, 0.0).sum(axis=(1, 2)) / c
    scale = np.where(active, 1.0 + np.abs(xj)[:, :, None] + np.abs(x)[:, None, :], 0.0).sum(axis=(1, 2)) / c
    rows = np.arange(n)[:, None]

    def _spread(gz):
        gi = gz.sum(axis=1)                                     # d/dx[i]
        gx = gi.copy()
        np.add.at(gx, (np.broadcast_to(rows, tj.shape), tj), -gz.sum(axis=2) * prefix)
        return gx

    def vjp(g):
        gz = (np.asarray(g, dtype=np.float64).reshape(n) / c)[:, None, None] * active
        return {"input": _squeeze(_spread(gz), unbatched).reshape(np.shape(input))}

    def gscale(g):
        gz = (np.abs(np.asarray(g, dtype=np.float64)).reshape(n) / c)[:, None, None] * active
        return {"input": _squeeze(_abs_spread(gz, tj, prefix, rows), unbatched).reshape(np.shape(input))}

    pair_gap = np.where(pair, rel_gap(xj[:, :, None] - x[:, None, :], 1.0), np.inf)
    gap = pair_gap.min(axis=1)                                  # as the non-target i
    as_target = pair_gap.min(axis=2)                            # as the target y[j]
    np.minimum.at(gap, (np.broadcast_to(rows, tj.shape), tj), np.where(prefix, as_target, np.inf))
    return finish(_squeeze(terms, unbatched), _squeeze(scale, unbatched), vjp, reduction,
                  kink_gap={"input": _squeeze(gap, unbatched).reshape(np.shape(input))},
                  local_grad_scale=gscale, **reduce_kw)


def _abs_spread(gz, tj, prefix, rows):
    """Like ``_spread`` with every contribution counted positive: the gradient's summand magnitude."""
    gx = gz.sum(axis=1)
    np.add.at(gx, (np.broadcast_to(rows, tj.shape), tj), gz.sum(axis=2) * prefix)
    return gx


def multilabel_soft_margin(input, target, *, weight=None, reduction: str = "none", **reduce_kw) -> Result:
    """torch ``MultiLabelSoftMarginLoss(weight)``: per sample
    ``-sum_i w[i] (y[i] log sigmoid(x[i]) + (1 - y[i]) log sigmoid(-x[i])) / C``, the class-weighted
    binary cross-entropy with logits averaged over the classes; ``reduction`` then acts on the
    per-sample losses (mean over the batch, not over N x C elements).

    Args:
      input: logits, shape ``(N, C)`` or ``(C,)``.
      target: labels (documented as 0 or 1; any real works and is differentiated), same shape.
      weight: optional class weights, shape ``(C,)``.

    torch composes it in Python (torch/nn/functional.py) from ``logsigmoid``; the reference is
    :func:`reference.classification.binary_cross_entropy_with_logits` with a mean over the last axis.
    """
    r = classification.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction,
                                                        axis=-1, **reduce_kw)
    names = {"logits": "input", "labels": "target"}

    def rename(d):
        return {names.get(k, k): v for k, v in d.items()}

    return Result(value=r.value, scale=r.scale, vjp=lambda cot: rename(r.vjp(cot)),
                  kink_gap=rename(r.kink_gap), grad_scale=None if r.grad_scale is None
                  else (lambda cot: rename(r.grad_scale(cot))))
