"""Regression losses: squared and absolute error, Huber, SmoothL1, log-cosh, MAPE, MSLE, Poisson,
Gaussian NLL and cosine similarity.

Shapes: ``predictions`` and ``targets`` broadcast against each other (torch broadcasts with a
warning; Keras and optax expect equal shapes). Every function takes the reduction keywords of
:func:`reference._core.reduce` (``reduction``, ``axis``, ``weights``, ``divisor``) and defaults to
``reduction="none"``, the per-element terms.

Framework semantics are keyword parameters whose default is the exact mathematics; the catalog
binds the value each framework documents (Keras' ``epsilon=1e-7`` clips, torch's ``eps``).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ._core import Result, f64, finish, rel_gap, softplus, unbroadcast

LOG2 = math.log(2.0)

#: How a mean with an element-wise ``weight`` is normalised (:func:`weighted_finish`):
#: ``"weight_sum"`` divides sum(w * terms) by sum(w) (the weighted mean; torch ``mse_loss`` and
#: ``l1_loss``), ``"count"`` by the number of elements (torch ``huber_loss``: mean(w * terms)).
WEIGHTED_MEANS = ("weight_sum", "count")


def _pair(predictions, targets):
    p, t = f64(predictions, targets)
    return p, t, np.broadcast_arrays(p, t)


def weighted_finish(terms, scale, local_vjp, reduction, weight, weighted_mean, reduce_kw, *, like, kink_gap=None,
                    local_grad_scale=None) -> Result:
    """:func:`~._core.finish` with torch's element-wise ``weight`` (torch 2.13 ``mse_loss``, ``l1_loss``,
    ``huber_loss`` in torch/nn/functional.py; not the ``nn`` classes, not ``smooth_l1_loss``).

    ``weight=None``: ``finish(terms, ..., reduction, **reduce_kw)``, the unweighted loss. Otherwise
    torch's rule: ``weight`` must have the shape of ``like`` (the ``input``; torch raises ValueError,
    it does not broadcast the weight to the input) and multiplies the per-element terms (broadcast
    shape of input and target); ``"none"`` returns w * terms, ``"sum"`` sum(w * terms), ``"mean"``
    sum(w * terms) / sum(w) (``weighted_mean="weight_sum"``, torch ``mse_loss`` and ``l1_loss``)
    or sum(w * terms) / terms.size (``"count"``: torch ``huber_loss``'s ``weighted_loss.mean()``).
    torch documents ``weight`` as "Weights for each sample"; it is per element.

    A zero sum(w) with ``"weight_sum"`` is divided as torch divides, in IEEE arithmetic: all weights 0
    give 0/0 = NaN, and the gradient cot / 0 * w = inf * 0 is NaN for every element (verified, torch
    2.13.0, float64 and float32: mse_loss(x, t, weight=zeros) and l1_loss are NaN with NaN gradients;
    huber_loss's mean is 0 with zero gradients). The value's error scale carries the rounding of the
    divisor, sum(|w|) / |sum(w)| (1 for non-negative weights). Only torch's three reductions; the
    ``reduce_kw`` of the other frameworks do not combine with ``weight``.
    """
    if weight is None:
        return finish(terms, scale, local_vjp, reduction, kink_gap=kink_gap, local_grad_scale=local_grad_scale,
                      **reduce_kw)
    if reduce_kw:
        raise TypeError(f"weight= (torch's element-wise weight) does not combine with {sorted(reduce_kw)}")
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"torch reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    if weighted_mean not in WEIGHTED_MEANS:
        raise ValueError(f"weighted_mean must be one of {WEIGHTED_MEANS}, got {weighted_mean!r}")
    w = f64(weight)
    if w.shape != np.shape(like):
        raise ValueError(f"weight of shape {w.shape} must have the input's shape {np.shape(like)}")
    kw = dict(weights=w, kink_gap=kink_gap, local_grad_scale=local_grad_scale)
    if reduction != "mean" or weighted_mean == "count":
        return finish(terms, scale, local_vjp, reduction, **kw)
    total = float(np.sum(w))
    if total != 0:
        res = finish(terms, scale, local_vjp, "mean", divisor=total, **kw)
        return replace(res, scale=res.scale * (float(np.sum(np.abs(w))) / abs(total)))
    res = finish(terms, scale, local_vjp, "sum", **kw)
    wb = np.broadcast_to(w, np.shape(terms))
    with np.errstate(divide="ignore", invalid="ignore"):
        value, vscale = res.value / 0.0, res.scale / 0.0

    def vjp(cot):
        with np.errstate(divide="ignore", invalid="ignore"):
            return local_vjp((np.float64(cot) / 0.0) * wb)

    return replace(res, value=np.asarray(value), scale=np.asarray(vscale), vjp=vjp, grad_scale=None)


def squared_error(predictions, targets, *, half: bool = False, weight=None, weighted_mean: str = "weight_sum",
                  reduction: str = "none", **reduce_kw) -> Result:
    """(p - t)^2, or 0.5 (p - t)^2 with ``half=True`` (optax ``l2_loss``).

    torch ``MSELoss`` (reduction mean over all elements), Keras ``MeanSquaredError`` (mean over the
    last axis, then ``sum_over_batch_size``), optax ``squared_error`` / ``l2_loss`` (no reduction).
    ``weight``: torch 2.13 ``F.mse_loss``'s element-wise weight, of the predictions' shape; its mean
    is sum(w (p - t)^2) / sum(w) (:func:`weighted_finish`).
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    c = 0.5 if half else 1.0
    d = pb - tb
    terms = c * d * d

    def vjp(g):
        gp = g * 2.0 * c * d
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-gp, t.shape)}

    return weighted_finish(terms, terms, vjp, reduction, weight, weighted_mean, reduce_kw, like=p)


def absolute_error(predictions, targets, *, weight=None, weighted_mean: str = "weight_sum", reduction: str = "none",
                   **reduce_kw) -> Result:
    """|p - t|: torch ``L1Loss``, Keras ``MeanAbsoluteError``. Not differentiable at p == t
    (the gradient there is a subgradient; torch and Keras use sign(0) = 0).

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise. ``weight``:
    torch 2.13 ``F.l1_loss``'s element-wise weight, of the predictions' shape; its mean is
    sum(w |p - t|) / sum(w) (:func:`weighted_finish`).
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    d = pb - tb
    terms = np.abs(d)

    def vjp(g):
        gp = g * np.sign(d)
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-gp, t.shape)}

    gap = rel_gap(pb, tb)
    return weighted_finish(terms, terms, vjp, reduction, weight, weighted_mean, reduce_kw, like=p,
                           kink_gap={"predictions": gap, "targets": gap})


def huber(predictions, targets, *, delta: float = 1.0, weight=None, weighted_mean: str = "weight_sum",
          reduction: str = "none", **reduce_kw) -> Result:
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta), with d = p - t.

    torch ``HuberLoss(delta)``, Keras ``Huber(delta)``, optax ``huber_loss(delta)``. The loss is
    once differentiable; the second derivative jumps at |d| = delta, listed in ``kink_gap`` so
    finite-difference checks stay off it.

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise. ``weight``:
    torch 2.13 ``F.huber_loss``'s element-wise weight, of the predictions' shape. Its mean
    (:func:`weighted_finish`) defaults to the weighted mean sum(w huber) / sum(w); torch's
    ``huber_loss`` divides by the number of elements instead, ``weighted_mean="count"``, unlike its
    own ``mse_loss`` and ``l1_loss``.
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    d = pb - tb
    a = np.abs(d)
    inner = a <= delta
    terms = np.where(inner, 0.5 * d * d, delta * (a - 0.5 * delta))
    scale = np.where(inner, 0.5 * d * d, delta * (a + 0.5 * delta))

    def vjp(g):
        gp = g * np.where(inner, d, delta * np.sign(d))
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-gp, t.shape)}

    gap = rel_gap(a, delta)
    return weighted_finish(terms, scale, vjp, reduction, weight, weighted_mean, reduce_kw, like=p,
                           kink_gap={"predictions": gap, "targets": gap})


def smooth_l1(predictions, targets, *, beta: float = 1.0, reduction: str = "none", **reduce_kw) -> Result:
    """torch ``SmoothL1Loss(beta)``: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta.

    ``beta == 0`` is exactly L1 (torch special-cases it), with a kink at d == 0.

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise.
    """
    if beta == 0:
        return absolute_error(predictions, targets, reduction=reduction, **reduce_kw)
    p, t, (pb, tb) = _pair(predictions, targets)
    d = pb - tb
    a = np.abs(d)
    inner = a < beta
    terms = np.where(inner, 0.5 * d * d / beta, a - 0.5 * beta)
    scale = np.where(inner, terms, a + 0.5 * beta)

    def vjp(g):
        gp = g * np.where(inner, d / beta, np.sign(d))
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-gp, t.shape)}

    gap = rel_gap(a, beta)
    return finish(terms, scale, vjp, reduction, kink_gap={"predictions": gap, "targets": gap}, **reduce_kw)


def log_cosh(predictions, targets, *, reduction: str = "none", **reduce_kw) -> Result:
    """log(cosh(p - t)), evaluated as |d| + softplus(-2|d|) - log 2 (no overflow for huge d).

    Keras ``LogCosh`` and optax ``log_cosh`` both compute a difference of terms of size |d| and
    log 2, so the error scale is that sum, not the (much smaller) value near d = 0.
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    d = pb - tb
    a = np.abs(d)
    sp = softplus(-2.0 * a)
    terms = a + sp - LOG2
    scale = a + sp + LOG2

    def vjp(g):
        gp = g * np.tanh(d)
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-gp, t.shape)}

    def gscale(g):
        # Both formulations differentiate to a difference of two terms that sum to 1
        # (e^d - e^-d over their sum; 1 - 2 sigmoid(2d)): the error scale is 1, not |tanh d|.
        one = np.ones_like(d)
        return {"predictions": unbroadcast(g * one, p.shape), "targets": unbroadcast(g * one, t.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def mape(predictions, targets, *, epsilon: float | None = None, reduction: str = "none", **reduce_kw) -> Result:
    """100 |t - p| / max(|t|, epsilon): Keras ``MeanAbsolutePercentageError`` (epsilon = 1e-7).

    ``epsilon=None`` is the exact |t - p| / |t| (infinite at t == 0). Kinks: p == t, |t| == epsilon.

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise.
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    d = pb - tb
    at = np.abs(tb)
    denom = at if epsilon is None else np.maximum(at, epsilon)
    clipped = np.zeros_like(at, dtype=bool) if epsilon is None else at < epsilon
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = 100.0 * np.abs(d) / denom

        def vjp(g):
            gp = g * 100.0 * np.sign(d) / denom
            # d/dt of |t - p| / |t| = -sign(d)/|t| - |d| sign(t)/t^2 (second term absent when clipped)
            gt = -gp - np.where(clipped, 0.0, g * 100.0 * np.abs(d) * np.sign(tb) / (denom * denom))
            return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(gt, t.shape)}

        def gscale(g):
            gp = g * 100.0 / denom
            gt = gp + np.where(clipped, 0.0, g * 100.0 * np.abs(d) / (denom * denom))
            return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(gt, t.shape)}

    gap_d = rel_gap(pb, tb)
    gap_t = np.minimum(gap_d, rel_gap(at, 0.0 if epsilon is None else epsilon))
    return finish(terms, terms, vjp, reduction, kink_gap={"predictions": gap_d, "targets": gap_t},
                  local_grad_scale=gscale, **reduce_kw)


def msle(predictions, targets, *, epsilon: float | None = None, reduction: str = "none", **reduce_kw) -> Result:
    """(log(1 + max(p, eps)) - log(1 + max(t, eps)))^2: Keras ``MeanSquaredLogarithmicError``
    (epsilon = 1e-7). ``epsilon=None`` is the exact (log1p(p) - log1p(t))^2 for p, t > -1.

    Keras evaluates log(x + 1) rather than log1p(x): each log carries an absolute error of about
    one ulp of 1, which the scale includes.

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise.
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    lo = -np.inf if epsilon is None else epsilon
    pc, tc = np.maximum(pb, lo), np.maximum(tb, lo)
    lp, lt = np.log1p(pc), np.log1p(tc)
    d = lp - lt
    terms = d * d
    scale = terms + 2.0 * np.abs(d) * (np.abs(lp) + np.abs(lt) + 2.0)

    def vjp(g):
        gd = g * 2.0 * d
        gp = np.where(pb >= lo, gd / (1.0 + pc), 0.0)
        gt = np.where(tb >= lo, -gd / (1.0 + tc), 0.0)
        return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(gt, t.shape)}

    def gscale(g):
        # d = lp - lt cancels when p is close to t: its error is that of the logs, not of d
        gd = g * 2.0 * (np.abs(lp) + np.abs(lt) + 2.0)
        return {"predictions": unbroadcast(gd / (1.0 + pc), p.shape), "targets": unbroadcast(gd / (1.0 + tc), t.shape)}

    kinks = {}
    if epsilon is not None:
        kinks = {"predictions": rel_gap(pb, epsilon), "targets": rel_gap(tb, epsilon)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def poisson(predictions, targets, *, epsilon: float = 0.0, reduction: str = "none", **reduce_kw) -> Result:
    """p - t log(p + epsilon): Keras ``Poisson`` (epsilon = 1e-7, mean over the last axis).

    Requires p + epsilon > 0. ``epsilon=0`` is the exact Poisson negative log-likelihood without
    the log(t!) constant.

    Shapes: ``predictions`` and ``targets`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise.
    """
    p, t, (pb, tb) = _pair(predictions, targets)
    q = pb + epsilon
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.log(q)
        tl = tb * lq
        terms = pb - tl
        # rounding p + epsilon costs one ulp of the sum, i.e. about eps absolute in log(q)
        scale = np.abs(pb) + np.abs(tl) + np.abs(tb)

        def vjp(g):
            gp = g * (1.0 - tb / q)
            return {"predictions": unbroadcast(gp, p.shape), "targets": unbroadcast(-g * lq, t.shape)}

        def gscale(g):
            return {"predictions": unbroadcast(g * (1.0 + np.abs(tb / q)), p.shape),
                    "targets": unbroadcast(g * (np.abs(lq) + 1.0), t.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def _stirling(t):
    """t log t - t + 0.5 log(2 pi t) for t > 1, else 0 (torch's ``full=True`` term), and d/dt."""
    big = t > 1
    ts = np.where(big, t, 2.0)
    term = np.where(big, ts * np.log(ts) - ts + 0.5 * np.log(2.0 * math.pi * ts), 0.0)
    dterm = np.where(big, np.log(ts) + 0.5 / ts, 0.0)
    scale = np.where(big, np.abs(ts * np.log(ts)) + ts + np.abs(0.5 * np.log(2.0 * math.pi * ts)), 0.0)
    return term, dterm, scale


def poisson_nll(input, target, *, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                reduction: str = "none", **reduce_kw) -> Result:
    """torch ``PoissonNLLLoss``.

    ``log_input=True``: exp(x) - t x (x is the log-rate); ``log_input=False``: x - t log(x + eps).
    ``full=True`` adds Stirling's approximation of log(t!) where t > 1 (0 elsewhere: the value jumps
    at t == 1, listed in ``kink_gap``). ``eps=0`` with ``log_input=False`` is the exact NLL.

    Shapes: ``input`` and ``target`` broadcast together; the output has the broadcast shape
    (without ``axis`` when one is given) for ``reduction="none"``, a scalar otherwise.
    """
    x, t, (xb, tb) = _pair(input, target)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if log_input:
            ex = np.exp(xb)
            tx = tb * xb
            terms = ex - tx
            scale = ex + np.abs(tx)
            dx, dt = ex - tb, -xb
            gsx, gst = ex + np.abs(tb), np.abs(xb)
        else:
            q = xb + eps
            lq = np.log(q)
            tl = tb * lq
            terms = xb - tl
            scale = np.abs(xb) + np.abs(tl) + np.abs(tb)
            dx, dt = 1.0 - tb / q, -lq
            gsx, gst = 1.0 + np.abs(tb / q), np.abs(lq) + 1.0
    kinks = {}
    if full:
        st, dst, sst = _stirling(tb)
        terms, scale, dt, gst = terms + st, scale + sst, dt + dst, gst + np.abs(dst) + 1.0
        kinks = {"target": rel_gap(tb, 1.0)}

    def vjp(g):
        return {"input": unbroadcast(g * dx, x.shape), "target": unbroadcast(g * dt, t.shape)}

    def gscale(g):
        return {"input": unbroadcast(g * gsx, x.shape), "target": unbroadcast(g * gst, t.shape)}

    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def gaussian_var_shape(input_shape, var_shape):
    """torch's rule for ``var``: same shape as input, input shape without its last dim (then
    unsqueezed), or one mismatched dimension of size 1. Returns the broadcastable shape, or raises."""
    input_shape, var_shape = tuple(input_shape), tuple(var_shape)
    if var_shape == input_shape:
        return var_shape
    if input_shape[:-1] == var_shape:
        return var_shape + (1,)
    if len(var_shape) == len(input_shape) and sum(
        v for i, v in zip(input_shape, var_shape) if i != v
    ) == 1:
        return var_shape
    raise ValueError("var is of incorrect size")


def gaussian_nll(input, target, var, *, full: bool = False, eps: float = 1e-6, straight_through: bool = True,
                 reduction: str = "none", **reduce_kw) -> Result:
    """torch ``GaussianNLLLoss``: 0.5 (log v + (x - t)^2 / v) (+ 0.5 log 2 pi when ``full``),
    with v = max(var, eps).

    torch clamps ``var`` in place under ``no_grad``: the value uses the clamped variance but the
    gradient passes through the clamp as if it were the identity (``straight_through=True``, the
    default). ``straight_through=False`` is the derivative of the clamped value (zero below
    ``eps``); ``eps=0`` is the exact NLL. ``var`` may be one dimension short of
    ``input`` or have one broadcast dimension (:func:`gaussian_var_shape`).
    """
    x, t, v0 = f64(input, target, var)
    vshape = gaussian_var_shape(x.shape, v0.shape)
    v_in = v0.reshape(vshape)
    v = np.maximum(v_in, eps)
    shape = np.broadcast_shapes(x.shape, t.shape, vshape)
    xb, tb, vb = (np.broadcast_to(a, shape) for a in (x, t, v))
    d = xb - tb
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.log(vb)
        q = d * d / vb
        const = 0.5 * math.log(2.0 * math.pi) if full else 0.0
        terms = 0.5 * (lv + q) + const
        scale = 0.5 * (np.abs(lv) + q) + const

        def vjp(g):
            gx = g * d / vb
            gv = g * 0.5 * (1.0 / vb - q / vb)
            if not straight_through:
                gv = np.where(np.broadcast_to(v_in, shape) > eps, gv, 0.0)
            return {"input": unbroadcast(gx, x.shape), "target": unbroadcast(-gx, t.shape),
                    "var": unbroadcast(gv, vshape).reshape(v0.shape)}

        def gscale(g):
            gx = np.abs(g * d / vb)
            gv = g * 0.5 * (1.0 / vb + q / vb)
            return {"input": unbroadcast(gx, x.shape), "target": unbroadcast(gx, t.shape),
                    "var": unbroadcast(gv, vshape).reshape(v0.shape)}

    kinks = {"var": rel_gap(v0, eps)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def _norm(x, axis):
    """Euclidean norm along ``axis`` (kept), scaled so that it neither underflows nor overflows."""
    big = np.max(np.abs(x), axis=axis, keepdims=True)
    safe = np.where(big > 0, big, 1.0)
    return np.where(big > 0, safe * np.sqrt(np.sum((x / safe) ** 2, axis=axis, keepdims=True)), 0.0)


def _vector_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as optax takes it (an int, a tuple of ints, ``()`` for none, None for every axis) as a
    sorted tuple of non-negative axes of an ``ndim``-dimensional array; out-of-range and repeated
    axes raise, as in NumPy and jax."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(int(a) for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    out = sorted(a % ndim for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(out)


def cosine_similarity(predictions, targets, *, axis: int | tuple[int, ...] | None = -1, norm_floor: float = 0.0,
                      negate: bool = False, where=None, reduction: str = "none", **reduce_kw) -> Result:
    """sum(a/max(|a|, floor) * b/max(|b|, floor)) along ``axis``.

    optax ``cosine_similarity(epsilon=e)`` is ``norm_floor=sqrt(e)``; Keras ``CosineSimilarity``
    normalises with ``x * min(rsqrt(|x|^2), 1/1e-7)``, i.e. ``norm_floor=1e-7``, and returns the
    negation (``negate=True``). With ``norm_floor=0`` a zero vector gives NaN (0/0), the exact
    mathematics having no value there. ``where`` masks elements (optax).
    Non-differentiable where a norm equals the floor.

    ``axis`` follows optax 0.2.8 (optax/losses/_regression.py ``cosine_similarity``: the squared
    norms are ``jnp.square(x).sum(axis=axis, where=where, keepdims=True)`` clipped at epsilon, the
    result ``(a_unit * b_unit).sum(axis=axis, where=where)``): an int, a tuple of ints (the vectors
    span all of those axes: their norms and the dot product sum over every one), ``()`` (no axis:
    each element is its own one-element vector, whose cosine is sign(a) sign(b) for norms above the
    floor) or None (every axis: one vector, a 0-d result).

    Shapes: ``predictions`` and ``targets`` broadcast together, the vectors along ``axis`` (``[..., D]``
    by default); ``where`` broadcastable to them. The output has the broadcast shape without the
    ``axis`` axes (``[...]`` by default) for ``reduction="none"``, a scalar otherwise.
    """
    a, b = f64(predictions, targets)
    a, b = np.broadcast_arrays(a, b)
    m = np.ones(a.shape, dtype=bool) if where is None else np.broadcast_to(np.asarray(where, bool), a.shape)
    a0, b0 = np.where(m, a, 0.0), np.where(m, b, 0.0)
    axis = _vector_axes(axis, a.ndim)
    na, nb = _norm(a0, axis), _norm(b0, axis)
    da, db = np.maximum(na, norm_floor), np.maximum(nb, norm_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        ua, ub = a0 / da, b0 / db
        sim = np.sum(ua * ub, axis=axis)
        sign = -1.0 if negate else 1.0
        terms = sign * sim
        scale = np.sum(np.abs(ua * ub), axis=axis) + 1.0

        def vjp(g):
            gs = sign * np.expand_dims(g, axis)
            simk = np.expand_dims(sim, axis)
            # d/da of (a . ub)/|a| is (ub - sim * ua)/|a| when the norm is above the floor,
            # and ub/floor when the floor is active (|a| constant).
            ga = np.where(na > norm_floor, (ub - simk * ua) / da, ub / da)
            gb = np.where(nb > norm_floor, (ua - simk * ub) / db, ua / db)
            return {"predictions": np.where(m, gs * ga, 0.0), "targets": np.where(m, gs * gb, 0.0)}

        def gscale(g):
            gs = np.abs(np.expand_dims(g, axis))
            return {"predictions": np.where(m, gs * (np.abs(ub) + np.abs(ua)) / da, 0.0),
                    "targets": np.where(m, gs * (np.abs(ua) + np.abs(ub)) / db, 0.0)}

    ga_gap = np.broadcast_to(rel_gap(na, norm_floor) if norm_floor else na / (na + 1.0), a.shape)
    gb_gap = np.broadcast_to(rel_gap(nb, norm_floor) if norm_floor else nb / (nb + 1.0), a.shape)
    return finish(terms, scale, vjp, reduction, kink_gap={"predictions": ga_gap, "targets": gb_gap},
                  local_grad_scale=gscale, **reduce_kw)


def cosine_distance(predictions, targets, *, axis: int | tuple[int, ...] | None = -1, norm_floor: float = 0.0,
                    where=None, reduction: str = "none", **reduce_kw) -> Result:
    """1 - cosine_similarity: optax ``cosine_distance`` (optax/losses/_regression.py, which returns
    ``1 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)``).

    Shapes as :func:`cosine_similarity`: ``predictions`` and ``targets`` broadcast together, the vectors
    along ``axis`` (an int, a tuple of ints, ``()`` or None); the output has the broadcast shape without
    the ``axis`` axes for ``reduction="none"``, a scalar otherwise.
    """
    neg = cosine_similarity(predictions, targets, axis=axis, norm_floor=norm_floor, negate=True, where=where)
    return finish(1.0 + neg.value, neg.scale + 1.0, neg.vjp, reduction, kink_gap=neg.kink_gap,
                  local_grad_scale=neg.grad_scale, **reduce_kw)
