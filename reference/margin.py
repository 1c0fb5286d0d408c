"""Margin losses: binary hinge and squared hinge, perceptron, Keras' categorical hinge and optax's
multiclass hinge and perceptron.

All are piecewise linear (or quadratic): they are non-differentiable where the margin is exactly
zero and, for the multiclass forms, where the inner maximum is tied. Those points are listed in
``kink_gap``. At a kink the reference returns one subgradient: 0 for the outer ``max(., 0)`` and,
for a tied inner maximum, the average over the tied entries (the rule of ``jnp.max`` and
``tf.reduce_max``).

Every function takes the reduction keywords of :func:`reference._core.reduce` and defaults to
``reduction="none"``.
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, one_hot, rel_gap, unbroadcast


def _top_two_gap(z):
    """Relative gap between the largest and second largest entries along the last axis (1 when
    there is only one entry): 0 where the maximum is tied."""
    if z.shape[-1] < 2:
        return np.ones(z.shape[:-1])
    top = np.sort(z, axis=-1)
    return rel_gap(top[..., -1], top[..., -2])


def _argmax_share(z, zmax):
    """Subgradient of max(z) along the last axis: 1/k on each of the k tied maxima."""
    at = (z == zmax[..., None]).astype(np.float64)
    return at / at.sum(axis=-1, keepdims=True)


def hinge(predictions, targets, *, squared: bool = False, convert_binary: bool = False,
          reduction: str = "none", **reduce_kw) -> Result:
    """max(0, 1 - t p), or its square with ``squared=True``.

    Args:
      predictions: decision values p, any shape.
      targets: labels t in {-1, 1} (any float works), broadcastable with ``predictions``.
      squared: Keras ``squared_hinge``.
      convert_binary: Keras' ``convert_binary_labels_to_hinge``: if *every* element of
        ``targets`` is 0 or 1, the labels are replaced by 2t - 1; otherwise they are used as given.
        The test is on the whole tensor (the whole batch), so a batch of {0, 1} labels and the
        same labels mixed with one -1 give different losses. The value is therefore discontinuous
        in ``targets`` at such inputs; the gradient returned is that of the branch taken (what
        autodiff through ``ops.cond`` returns): 2 dL/dt' after a conversion.

    Models: optax ``hinge_loss(predictor_outputs, targets)`` (no conversion, no reduction);
    Keras ``Hinge`` / ``SquaredHinge`` (``convert_binary=True``, ``squared``, then ``axis=-1`` and
    ``sum_over_batch_size``). Sources: optax/losses/_classification.py ``hinge_loss``,
    keras/src/losses/losses.py ``hinge``, ``squared_hinge``, ``convert_binary_labels_to_hinge``.

    Kink (for ``squared``, a jump of the second derivative) where 1 - t p == 0.

    Precision note (Keras 3.15): on the JAX and torch backends ``ops.mean`` accumulates in
    ``result_type(x.dtype, "float32")``, which Keras maps to float32 even for float64 ``x``
    (keras/src/backend/jax/numpy.py ``mean``, keras/src/backend/common/dtypes.py
    ``result_type``), so Keras' float64 hinge values and gradients carry float32 rounding there;
    the TensorFlow backend stays in float64.
    """
    p, t = f64(predictions, targets)
    factor = 1.0
    if convert_binary and np.all((t == 0) | (t == 1)):
        t, factor = 2.0 * t - 1.0, 2.0
    pb, tb = np.broadcast_arrays(p, t)
    tp = tb * pb
    m = 1.0 - tp
    active = m > 0
    mp = np.where(active, m, 0.0)
    if squared:
        terms, scale, dm = mp * mp, mp * (1.0 + np.abs(tp)), 2.0 * mp
    else:
        terms, scale, dm = mp, np.where(active, 1.0 + np.abs(tp), 0.0), active.astype(np.float64)

    def vjp(g):
        gm = g * dm
        return {"predictions": unbroadcast(-gm * tb, p.shape),
                "targets": unbroadcast(-factor * gm * pb, t.shape)}

    gap = rel_gap(tp, 1.0)
    return finish(terms, scale, vjp, reduction, kink_gap={"predictions": gap, "targets": gap}, **reduce_kw)


def perceptron(predictions, targets, *, reduction: str = "none", **reduce_kw) -> Result:
    """max(0, -p t): optax ``perceptron_loss(predictor_outputs, targets)`` (targets in {-1, 1},
    equal shapes in optax; broadcast here). Kink where p t == 0.

    Source: optax/losses/_classification.py ``perceptron_loss``.
    """
    p, t = f64(predictions, targets)
    pb, tb = np.broadcast_arrays(p, t)
    m = -pb * tb
    active = m > 0
    terms = np.where(active, m, 0.0)

    def vjp(g):
        ga = np.where(active, g, 0.0)
        return {"predictions": unbroadcast(-ga * tb, p.shape), "targets": unbroadcast(-ga * pb, t.shape)}

    gap = rel_gap(m, 0.0)
    return finish(terms, terms, vjp, reduction, kink_gap={"predictions": gap, "targets": gap}, **reduce_kw)


def categorical_hinge(predictions, targets, *, reduction: str = "none", **reduce_kw) -> Result:
    """Keras ``CategoricalHinge``: max(neg - pos + 1, 0) with pos = sum(t p) and
    neg = max((1 - t) p) over the last axis.

    Note ``neg`` includes the entries where t == 1, which are exactly 0: with one-hot targets and
    every other score negative, neg = 0, not the largest wrong score.

    Args:
      predictions: scores p, shape [..., c].
      targets: one-hot (or any float) targets t, broadcastable with ``predictions``.

    Returns shape [...] for ``reduction="none"`` (Keras then applies ``sum_over_batch_size``).
    Kinks: neg - pos + 1 == 0 (outer max) and ties of the inner max.
    Source: keras/src/losses/losses.py ``categorical_hinge``.
    """
    p, t = f64(predictions, targets)
    pb, tb = np.broadcast_arrays(p, t)
    tp = tb * pb
    pos = tp.sum(axis=-1)
    z = (1.0 - tb) * pb
    neg = z.max(axis=-1)
    m = neg - pos + 1.0
    active = m > 0
    terms = np.where(active, m, 0.0)
    scale = np.where(active, np.abs(neg) + np.abs(tp).sum(axis=-1) + 1.0, 0.0)
    share = _argmax_share(z, neg)

    def vjp(g):
        ga = np.where(active, g, 0.0)[..., None]
        return {"predictions": unbroadcast(ga * (share * (1.0 - tb) - tb), p.shape),
                "targets": unbroadcast(-ga * (share + 1.0) * pb, t.shape)}

    def gscale(g):
        ga = np.where(active, g, 0.0)[..., None]
        return {"predictions": unbroadcast(ga * (share * np.abs(1.0 - tb) + np.abs(tb)), p.shape),
                "targets": unbroadcast(ga * (share + 1.0) * np.abs(pb), t.shape)}

    gap = np.broadcast_to(np.minimum(rel_gap(neg + 1.0, pos), _top_two_gap(z))[..., None], pb.shape)
    return finish(terms, scale, vjp, reduction, kink_gap={"predictions": gap, "targets": gap},
                  local_grad_scale=gscale, **reduce_kw)


def _multiclass(scores, labels, margin: float, reduction, reduce_kw) -> Result:
    s = f64(scores)
    oh = one_hot(labels, s.shape[-1])
    z = s + margin * (1.0 - oh) if margin else s
    zmax = z.max(axis=-1)
    s_label = np.sum(s * oh, axis=-1)
    terms = zmax - s_label
    scale = np.abs(zmax) + np.abs(s_label) + margin
    share = _argmax_share(z, zmax)

    def vjp(g):
        return {"scores": np.asarray(g)[..., None] * (share - oh)}

    def gscale(g):
        return {"scores": np.asarray(g)[..., None] * (share + oh)}

    gap = np.broadcast_to(_top_two_gap(z)[..., None], s.shape)
    return finish(terms, scale, vjp, reduction, kink_gap={"scores": gap}, local_grad_scale=gscale, **reduce_kw)


def multiclass_hinge(scores, labels, *, reduction: str = "none", **reduce_kw) -> Result:
    """optax ``multiclass_hinge_loss``: max(s + 1 - onehot(y)) - s[y] over the last axis.

    Args:
      scores: shape [..., c].
      labels: integer labels, shape [...]. A label outside [0, c) has an all-zero one-hot row
        (``jax.nn.one_hot``), so its loss is max(s) + 1.

    Returns shape [...]. Kinks: ties of the maximum. The value above is written as optax computes
    it (max(s + 1 - onehot) rather than max over j != y of s_j + 1, floored at the true score).
    Source: optax/losses/_classification.py ``multiclass_hinge_loss``.
    """
    return _multiclass(scores, labels, 1.0, reduction, reduce_kw)


def multiclass_perceptron(scores, labels, *, reduction: str = "none", **reduce_kw) -> Result:
    """optax ``multiclass_perceptron_loss``: max(s) - s[y] over the last axis.

    Args and return as :func:`multiclass_hinge`. Kinks: ties of the maximum.
    Source: optax/losses/_classification.py ``multiclass_perceptron_loss``.

    Shapes: ``scores`` [..., c]; integer ``labels`` [...]. Returns shape [...] for ``reduction="none"``,
    a scalar otherwise.
    """
    return _multiclass(scores, labels, 0.0, reduction, reduce_kw)
