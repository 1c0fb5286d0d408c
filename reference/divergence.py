"""Kullback-Leibler divergences: torch ``kl_div``, Keras ``KLDivergence`` and optax's
``kl_divergence``, ``kl_divergence_with_log_targets`` and ``generalized_kl_divergence``.

Conventions shared by every function here:

* 0 log 0 = 0: a target of exactly 0 contributes nothing (torch uses ``xlogy(t, t)``, optax
  ``where(t == 0, 0, log t)``). A negative target has no logarithm: the value is NaN there, as in
  every framework.
* The gradient with respect to a target t is log t + (terms without t), whose one-sided limit at
  t == 0 is -inf; the reference returns -inf there and lists t == 0 in ``kink_gap`` (the edge of
  the domain). torch and optax both return NaN at t == 0 (``xlogy``'s backward and ``where``'s
  masked branch produce 0/0).
* Inputs broadcast against each other; gradients are summed back to each input's shape.

The reduction keywords of :func:`reference._core.reduce` (``reduction``, ``weights``,
``divisor``; ``axis`` only for :func:`kl_div`, the others consume it as their own summation axis)
are passed through; every function defaults to ``reduction="none"``.
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, rel_gap, unbroadcast, xlogy


def _broadcast(a, b):
    a, b = f64(a, b)
    return a, b, np.broadcast_arrays(a, b)


def _summation(shape, axis, where):
    """Helpers of a masked sum over ``axis`` (int, tuple or None) of an array of ``shape``.

    Returns ``(total, pull)``: ``total(x)`` sums the masked ``x`` over ``axis``; ``pull(g, d)``
    is the cotangent ``g`` of the sum broadcast back to ``shape`` times the local derivative ``d``,
    exactly 0 where masked (even where ``d`` is infinite or NaN: excluded elements do not enter
    the loss).
    """
    ndim = len(shape)
    axes = tuple(range(ndim)) if axis is None else tuple(a % ndim for a in np.atleast_1d(axis))
    kshape = tuple(1 if i in axes else n for i, n in enumerate(shape))
    mask = np.ones(shape, bool) if where is None else np.broadcast_to(np.asarray(where, bool), shape)

    def total(x):
        return np.sum(np.where(mask, x, 0.0), axis=axes)

    def pull(g, d):
        ge = np.broadcast_to(np.reshape(np.asarray(g, np.float64), kshape), shape)
        with np.errstate(invalid="ignore"):
            return np.where(mask, ge * d, 0.0)

    return total, pull


def kl_div(input, target, *, log_target: bool = False, reduction: str = "none", **reduce_kw) -> Result:
    """torch ``F.kl_div`` / ``nn.KLDivLoss``: pointwise KL with ``input`` in log-space.

    ``log_target=False``: t (log t - x), evaluated as ``xlogy(t, t) - t * x`` (0 where t == 0);
    ``log_target=True``: exp(t) (t - x).

    Args:
      input: log-probabilities x, any shape.
      target: probabilities t (log-probabilities with ``log_target``), broadcastable with ``input``.
      log_target: torch's ``log_target``.
      reduction: torch's ``"none"`` (pointwise, the broadcast shape), ``"sum"``, ``"mean"`` (over
        every element) or ``"batchmean"`` (sum divided by the size of the first axis; a 0-d
        input is not divided).

    Models ``torch.nn.functional.kl_div`` (torch/nn/functional.py: ``batchmean`` is a ``sum``
    divided by ``input.size(0)``) over ``torch.kl_div``, whose ATen body is
    ``xlogy(target, target) - target * input`` or ``exp(target) * (target - input)``.
    """
    x, t, (xb, tb) = _broadcast(input, target)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if log_target:
            et = np.exp(tb)
            terms = et * (tb - xb)
            scale = et * (np.abs(tb) + np.abs(xb))
            dx, dt = -et, et * (tb - xb + 1.0)
            gsx, gst = et, et * (np.abs(tb) + np.abs(xb) + 1.0)
            kinks = {}
        else:
            tlt, tx = xlogy(tb, tb), tb * xb
            terms = tlt - tx
            scale = np.abs(tlt) + np.abs(tx)
            lt = np.log(tb)
            dx, dt = -tb, lt + 1.0 - xb
            gsx, gst = np.abs(tb), np.abs(lt) + 1.0 + np.abs(xb)
            kinks = {"target": rel_gap(tb, 0.0)}

    def vjp(g):
        return {"input": unbroadcast(g * dx, x.shape), "target": unbroadcast(g * dt, t.shape)}

    def gscale(g):
        return {"input": unbroadcast(g * gsx, x.shape), "target": unbroadcast(g * gst, t.shape)}

    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def kl_divergence_keras(y_true, y_pred, *, clip_eps: float | None = None, axis: int = -1,
                        reduction: str = "none", **reduce_kw) -> Result:
    """Keras ``KLDivergence`` / ``keras.losses.kl_divergence``: sum(y log(y / p)) over ``axis``.

    Keras clips both arguments to [epsilon, 1] with ``epsilon = keras.config.epsilon() = 1e-7``
    (``clip_eps=1e-7``); the gradient is zero where a clip is active and the clip boundaries are
    kinks. ``clip_eps=None`` is the exact divergence without any clipping (0 log 0 = 0).

    Args:
      y_true: target probabilities, shape [..., d].
      y_pred: predicted probabilities, broadcastable with ``y_true``.
      axis: the summed axis (Keras: the last).

    Returns the per-sample divergences, shape [...] (``reduction="none"``); Keras' default
    reduction is ``sum_over_batch_size``.

    Source: keras/src/losses/losses.py ``kl_divergence`` (``ops.clip`` then
    ``ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)``).
    """
    t0, p0, (tb0, pb0) = _broadcast(y_true, y_pred)
    if clip_eps is None:
        tb, pb = tb0, pb0
        t_free = p_free = np.ones(tb.shape, bool)
    else:
        tb, pb = np.clip(tb0, clip_eps, 1.0), np.clip(pb0, clip_eps, 1.0)
        t_free = (tb0 > clip_eps) & (tb0 < 1.0)
        p_free = (pb0 > clip_eps) & (pb0 < 1.0)
    total, pull = _summation(tb.shape, axis, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        tlt, tlp = xlogy(tb, tb), xlogy(tb, pb)
        terms = total(tlt - tlp)
        # Keras rounds y / p before the log: an absolute error of about |y| ulp on top of the two logs.
        scale = total(np.abs(tlt) + np.abs(tlp) + np.abs(tb))
        dp = np.where(p_free, -tb / pb, 0.0)
        lt = np.log(tb)
        dt = np.where(t_free, lt - np.log(pb) + 1.0, 0.0)
        gsp = np.abs(dp)
        gst = np.where(t_free, np.abs(lt) + np.abs(np.log(pb)) + 1.0, 0.0)

    def vjp(g):
        return {"y_true": unbroadcast(pull(g, dt), t0.shape), "y_pred": unbroadcast(pull(g, dp), p0.shape)}

    def gscale(g):
        return {"y_true": unbroadcast(pull(g, gst), t0.shape), "y_pred": unbroadcast(pull(g, gsp), p0.shape)}

    if clip_eps is None:
        kinks = {"y_true": rel_gap(tb0, 0.0)}
    else:
        kinks = {"y_true": np.minimum(rel_gap(tb0, clip_eps), rel_gap(tb0, 1.0)),
                 "y_pred": np.minimum(rel_gap(pb0, clip_eps), rel_gap(pb0, 1.0))}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def kl_divergence(log_predictions, targets, *, axis=-1, where=None, reduction: str = "none",
                  **reduce_kw) -> Result:
    """optax ``kl_divergence``: sum(t (log t - log q)) over ``axis``, 0 where t == 0.

    Args:
      log_predictions: log q, shape [..., d].
      targets: probabilities t, broadcastable with ``log_predictions``.
      axis: summed axis, tuple of axes, or None (all).
      where: boolean mask of the elements included in the sum (optax ``where``).

    Returns shape [...] (the broadcast shape without ``axis``) for ``reduction="none"``.
    Source: optax/losses/_classification.py ``kl_divergence``.
    """
    lq, t, (lqb, tb) = _broadcast(log_predictions, targets)
    total, pull = _summation(tb.shape, axis, where)
    with np.errstate(divide="ignore", invalid="ignore"):
        tlt, tlq = xlogy(tb, tb), tb * lqb
        terms = total(tlt - tlq)
        scale = total(np.abs(tlt) + np.abs(tlq))
        lt = np.log(tb)
        dq, dt = -tb, lt - lqb + 1.0
        gsq, gst = np.abs(tb), np.abs(lt) + np.abs(lqb) + 1.0

    def vjp(g):
        return {"log_predictions": unbroadcast(pull(g, dq), lq.shape), "targets": unbroadcast(pull(g, dt), t.shape)}

    def gscale(g):
        return {"log_predictions": unbroadcast(pull(g, gsq), lq.shape), "targets": unbroadcast(pull(g, gst), t.shape)}

    return finish(terms, scale, vjp, reduction, kink_gap={"targets": rel_gap(tb, 0.0)},
                  local_grad_scale=gscale, **reduce_kw)


def kl_divergence_with_log_targets(log_predictions, log_targets, *, axis=-1, where=None,
                                   reduction: str = "none", **reduce_kw) -> Result:
    """optax ``kl_divergence_with_log_targets``: sum(exp(lt) (lt - lq)) over ``axis``.

    Args:
      log_predictions: log q, shape [..., d].
      log_targets: log t, broadcastable with ``log_predictions``.
      axis, where: as in :func:`kl_divergence`.

    Source: optax/losses/_classification.py ``kl_divergence_with_log_targets``.
    """
    lq, lt, (lqb, ltb) = _broadcast(log_predictions, log_targets)
    total, pull = _summation(ltb.shape, axis, where)
    with np.errstate(over="ignore", invalid="ignore"):
        et = np.exp(ltb)
        terms = total(et * (ltb - lqb))
        scale = total(et * (np.abs(ltb) + np.abs(lqb)))
        dq, dt = -et, et * (ltb - lqb + 1.0)
        gst = et * (np.abs(ltb) + np.abs(lqb) + 1.0)

    def vjp(g):
        return {"log_predictions": unbroadcast(pull(g, dq), lq.shape),
                "log_targets": unbroadcast(pull(g, dt), lt.shape)}

    def gscale(g):
        return {"log_predictions": unbroadcast(pull(g, et), lq.shape),
                "log_targets": unbroadcast(pull(g, gst), lt.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def generalized_kl_divergence(log_predictions, targets, *, axis=-1, where=None, reduction: str = "none",
                              **reduce_kw) -> Result:
    """optax ``generalized_kl_divergence`` (and its deprecated alias ``convex_kl_divergence``):
    sum(t (log t - log q) + q - t) over ``axis``, the Bregman divergence of x log x - x, defined
    for unnormalised t and q.

    Args:
      log_predictions: log q, shape [..., d].
      targets: t >= 0, broadcastable with ``log_predictions``.
      axis, where: as in :func:`kl_divergence`.

    Source: optax/losses/_classification.py ``generalized_kl_divergence`` (``kl_divergence`` plus
    ``sum(exp(log_predictions) - targets)``, both with the same ``axis`` and ``where``).
    """
    lq, t, (lqb, tb) = _broadcast(log_predictions, targets)
    total, pull = _summation(tb.shape, axis, where)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tlt, tlq, q = xlogy(tb, tb), tb * lqb, np.exp(lqb)
        terms = total(tlt - tlq + q - tb)
        scale = total(np.abs(tlt) + np.abs(tlq) + q + np.abs(tb))
        lt = np.log(tb)
        dq, dt = q - tb, lt - lqb
        gsq, gst = q + np.abs(tb), np.abs(lt) + np.abs(lqb) + 2.0

    def vjp(g):
        return {"log_predictions": unbroadcast(pull(g, dq), lq.shape), "targets": unbroadcast(pull(g, dt), t.shape)}

    def gscale(g):
        return {"log_predictions": unbroadcast(pull(g, gsq), lq.shape), "targets": unbroadcast(pull(g, gst), t.shape)}

    return finish(terms, scale, vjp, reduction, kink_gap={"targets": rel_gap(tb, 0.0)},
                  local_grad_scale=gscale, **reduce_kw)
