"""Classification losses: binary and categorical cross-entropy (on probabilities and on logits),
torch ``CrossEntropyLoss`` / ``NLLLoss``, optax's softmax cross-entropies and PolyLoss, and the
focal losses of Keras and optax.

Shapes: the class axis is ``axis`` (default the last one; torch's class dimension is 1, or 0 for an
unbatched input). Labels are class probabilities of the logits' shape (or broadcastable to it) for
the dense losses, integer class indices of the logits' shape without the class axis for the sparse
ones. Every function but torch's :func:`cross_entropy` and :func:`nll_loss` (which reduce the way
torch does) takes the reduction keywords of :func:`reference._core.reduce` (``reduction``,
``axis``, ``weights``, ``divisor``) and defaults to ``reduction="none"``.

Framework semantics are keyword parameters whose default is the exact mathematics; the catalog binds
the values each framework uses (Keras' ``clip_eps=1e-7``, torch's ``log_clamp=-100``). Where the
exact mathematics is finite and a framework's formula is not (``0 * log 0`` with a ``-inf`` logit
and a zero label), the reference returns the finite value, following the ``0 log 0 = 0``
convention of every cross-entropy here.

Clip bounds: ``clip_eps=e`` clips probabilities to ``[e, 1 - e]`` in float64. Frameworks clip with
the bounds rounded to their dtype: in float32, ``1 - 1e-7`` is ``1 - 2**-23`` (about
``1 - 1.19e-7``), so ``log(1 - p)`` at the upper clip differs by ``log(1.19) = 0.17`` from the
float64 bound. ``clip_eps`` also accepts an explicit ``(lo, hi)`` pair so the catalog can bind the
bounds a framework really uses, e.g. ``(float(np.float32(1e-7)), float(np.float32(1 - 1e-7)))``:
measured against float32 Keras (all three backends), ``BinaryCrossentropy`` at p = 1 is 8e4
``eps * scale`` units off with ``clip_eps=1e-7`` and within 1.2 units with that pair.

Keras in float64 (``keras.config.set_floatx("float64")``, Keras 3.15): on the jax and torch
backends ``ops.mean`` computes in ``result_type(x.dtype, "float32")``, which those backends map to
float32 (keras/src/backend/common/dtypes.py ``BIT64_TO_BIT32_DTYPE``), so every per-sample mean
(``BinaryCrossentropy``, the focal losses) is float32-accurate (relative 1e-8) although its dtype
is float64; on torch, ``divide_no_nan`` (the ``sum_over_batch_size`` and masked reductions) even
returns a float32 tensor. TensorFlow computes all of it in float64. Measured, not modelled here.
"""
from __future__ import annotations

import dataclasses
import math
import operator

import numpy as np

from ._core import Result, f64, finish, log_sigmoid, rel_gap, sigmoid, softplus, unbroadcast


# ---- helpers -------------------------------------------------------------------------------------

def _clip_bounds(clip_eps):
    """``None`` -> no clipping; ``e`` -> ``(e, 1 - e)``; ``(lo, hi)`` -> as given."""
    if clip_eps is None:
        return None
    if np.ndim(clip_eps) == 0:
        e = float(clip_eps)
        return e, 1.0 - e
    lo, hi = clip_eps
    return float(lo), float(hi)


def _clip_gap(p, bounds):
    lo, hi = bounds
    return np.minimum(rel_gap(p, lo), rel_gap(p, hi))


def _where0(cond, value):
    """``value`` where ``cond``, else 0, without evaluating the discarded branch's NaNs/infs."""
    with np.errstate(invalid="ignore"):
        return np.where(cond, value, 0.0)


def _axes(axis, ndim) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    return tuple(out)


def _to_last(a, axes):
    """Move ``axes`` (in the order given) to the end and flatten them into one class axis: the
    layout of optax's multi-axis softmax losses (batch axes first, in order)."""
    a = np.asarray(a)
    rest = [i for i in range(a.ndim) if i not in axes]
    t = np.transpose(a, rest + list(axes))
    n = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
    return t.reshape(t.shape[: len(rest)] + (n,))


def _from_last(a, shape, axes):
    """Inverse of :func:`_to_last` for an array of the full ``shape``."""
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = rest + list(axes)
    t = np.asarray(a).reshape(tuple(shape[i] for i in perm))
    return np.transpose(t, np.argsort(perm))


def _expand_where(where, ndim, axis):
    """optax: a ``where`` of lower rank than the logits gets the class axis inserted."""
    where = np.asarray(where, dtype=bool)
    if where.ndim != ndim:
        where = np.expand_dims(where, axis)
    return where


def _softmax_parts(x, mask=None):
    """For class-last ``x``: the finite row maximum ``m``, ``log_s = log sum exp(x - m)`` over
    ``mask`` and the softmax ``p`` (0 where masked and in rows with nothing selected).

    -log_softmax is then ``(m - x) + log_s``, two non-negative terms, and the log-normaliser
    ``m + log_s``. ``log_s`` is ``log1p`` of the sum without the maximum's exact 1, so a confident
    row (loss ~ e^-20) keeps its relative precision."""
    xm = x if mask is None else np.where(mask, x, -np.inf)
    rows = _Rows(xm.shape)
    x2 = rows.flat(xm)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        k = np.argmax(x2, axis=-1)
        m_raw = rows.take(x2, k)                        # the maximum (NaN where a row has one)
        m = np.where(np.isfinite(m_raw), m_raw, 0.0)
        e = np.subtract(x2, m)
        np.exp(e, out=e)                                # in place: one (rows, classes) temporary, not two
        s = np.sum(e, axis=-1, keepdims=True)
        e_k = rows.take(e, k)
        rows.put(e, k, 0.0)                             # the sum of the others, then the maximum back
        others = np.sum(e, axis=-1, keepdims=True)
        rows.put(e, k, e_k)
        log_s = np.where(np.isfinite(m_raw), np.log1p(others), np.log(s))
        p = np.divide(e, s, out=e) if np.all(s > 0) else np.where(s > 0, e / np.where(s > 0, s, 1.0), 0.0)
    return rows.unflat(m), rows.unflat(log_s), rows.unflat(p)


class _Rows:
    """Class-last arrays of ``shape`` as (rows, classes) matrices, with one column per row read or
    written by flat indexing (``take_along_axis`` builds index grids on every call)."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        n = math.prod(self.shape[:-1])
        self.index = np.arange(n)

    def flat(self, a):
        return np.reshape(a, (len(self.index), self.shape[-1]))

    def unflat(self, a):
        return np.reshape(a, self.shape[:-1] + (a.shape[-1],))

    def take(self, a2, k):
        """``a2[r, k[r]]`` as a (rows, 1) column."""
        return a2[self.index, np.reshape(k, -1)][:, None]

    def put(self, a2, k, v):
        a2[self.index, np.reshape(k, -1)] = np.reshape(v, -1) if np.ndim(v) else v


def _complement(p, s=1.0):
    """``1 - p/s`` along the last axis for non-negative rows summing to ``s``, without cancellation:
    at each row's largest element it is the sum of the others (only one element can exceed half
    the row, and everywhere else ``1 - p/s >= 1/2``)."""
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        comp = (s - p) / s
        k = np.argmax(p, axis=-1)[..., None]
        others = np.array(p, dtype=np.float64, copy=True)
        np.put_along_axis(others, k, 0.0, axis=-1)
        rest = np.sum(others, axis=-1, keepdims=True) / s
    np.put_along_axis(comp, k, rest, axis=-1)
    return comp


def _log_quotient(p, s, comp):
    """log(p / s) for non-negative rows summing to ``s``; near 1 it is log1p(-comp), with
    ``comp = _complement(p, s)``, so a confident row keeps its relative precision."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p / s
        return np.where(q > 0.5, np.log1p(-comp), np.log(q))


def _softmax_vjp(g_logp, p):
    """VJP of log_softmax: ``g - p * sum(g)`` (the chain rule torch and jax apply)."""
    with np.errstate(invalid="ignore"):
        return g_logp - p * np.sum(g_logp, axis=-1, keepdims=True)


def _softmax_vjp_scale(g_logp, p):
    a = np.abs(g_logp)
    return a + p * np.sum(a, axis=-1, keepdims=True)


def _bce_logits_scale(x, ys, pw=1.0):
    """Summand magnitudes of the stable binary cross-entropy on logits in its three usual forms:
    ``pw y softplus(-x) + (1-y) softplus(x)`` (optax, Keras-jax), ``(1-y) x + l softplus(-x)`` with
    ``l = 1 + (pw-1) y`` (torch) and ``max(x, 0) - x y + log1p(exp(-|x|))`` (TensorFlow)."""
    xf = np.where(np.isfinite(x), np.abs(x), 0.0)
    lw = 1.0 + (pw - 1.0) * ys
    with np.errstate(invalid="ignore", over="ignore"):
        exact = _where0(pw * ys != 0, np.abs(pw * ys) * softplus(-x)) + _where0(ys != 1, np.abs(1 - ys) * softplus(x))
        torch_form = np.abs(1 - ys) * xf + _where0(lw != 0, np.abs(lw) * softplus(-x))
        tf_form = xf * (1.0 + np.abs(ys)) + math.log(2.0)
    return exact + np.maximum(torch_form, tf_form)


def _focal_power(u, gamma):
    """``u**gamma`` and ``gamma * u**(gamma - 1)`` (0 for gamma == 0, also at u == 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.power(u, gamma)
        df = np.zeros_like(u) if gamma == 0 else gamma * np.power(u, gamma - 1.0)
    return f, df


_EPS64 = float(np.finfo(np.float64).eps)


def _focal_base_err(u, df, gamma, times):
    """How far an eps-sized (absolute) rounding error in the focal base ``u`` moves ``u**gamma * times``,
    per eps: ``|df| * |times|``; 0 where u == 0 (exact) or df == 0, even where ``times`` is infinite."""
    # For gamma < 1, u**gamma is concave (subadditive), so an error d moves it by at most d**gamma:
    # |df| is capped at eps**(gamma - 1), float64's eps (a larger cap than float32's). Without the
    # cap, df overflows to inf below u ~ 1e-308 (gamma = 2**-9, u = 1.1e-309) and an infinite scale
    # reads as none.
    err = np.abs(df) if gamma >= 1 else np.minimum(np.abs(df), _EPS64 ** (gamma - 1.0))
    with np.errstate(invalid="ignore"):
        return _where0((df != 0) & (u != 0), err * np.abs(times))


# ---- binary cross-entropy ------------------------------------------------------------------------

def binary_cross_entropy(probs, labels, *, clip_eps=None, log_clamp=None, grad_floor=None, weight=None,
                         label_smoothing: float = 0.0, reduction: str = "none", **reduce_kw) -> Result:
    """-(y log p + (1 - y) log(1 - p)) on probabilities, elementwise.

    Shapes: ``probs``, ``labels`` and ``weight`` broadcast together; the terms have the broadcast
    shape. Gradients w.r.t. ``probs`` and ``labels`` (soft labels).

    * Keras ``BinaryCrossentropy()`` / ``binary_crossentropy`` (``from_logits=False``):
      ``clip_eps=1e-7``, ``label_smoothing=ls`` (labels become ``y (1 - ls) + ls / 2``), then the
      catalog's ``reduce_kw`` ``axis=-1`` (the per-sample mean) and ``sum_over_batch_size``.
      All three backends clip to ``[eps, 1 - eps]`` (keras/src/backend/{tensorflow,jax}/nn.py
      ``binary_crossentropy``); the torch backend (keras/src/backend/torch/nn.py) clips and then
      calls ``torch.nn.functional.binary_cross_entropy``, whose -100 log clamp and 1e-12 gradient
      floor are then inactive, so it is the same function (and the same gradient, zero where the
      clip is active) as the other backends.
    * torch ``BCELoss(weight)`` / ``F.binary_cross_entropy``: ``log_clamp=-100`` (each log is
      clamped at >= -100, torch/_decomp/decompositions.py ``binary_cross_entropy``),
      ``grad_floor=float(np.float32(1e-12))`` (see below), ``weight`` broadcast against the target
      (torch/nn/functional.py),
      ``reduction`` ``mean`` or ``sum``.

    ``grad_floor`` switches to torch's hand-written backward, which is not the derivative of the
    clamped forward: d/dp = w (p - y) / max(p (1 - p), floor) (decompositions.py
    ``binary_cross_entropy_backward``; e.g. -3e11 at p = 0, y = 0.3 where the clamped value is flat)
    and d/dy = w (log(1 - p) - log p), the *unclamped* logit (aten
    ``binary_cross_entropy_target_backward``: ``-logit(p)``, +inf at p = 0, 690.8 at p = 1e-300,
    where the clamped forward's derivative would be 100). Both verified in float64 against torch.
    torch's C++ kernel holds the floor as a float32 constant even for float64 tensors: bind
    ``grad_floor=float(np.float32(1e-12))`` (9.99999996e-13) to match it to the last bit (with
    1e-12, d/dp at p = 0 differs in the 8th digit). Without ``grad_floor`` the gradient is the
    derivative of the (clipped, clamped) value.

    Kinks: p at the clip bounds; log p or log(1 - p) at ``log_clamp`` (measured in log space).
    """
    p, y = f64(probs, labels)
    w = None if weight is None else f64(weight)
    shape = np.broadcast_shapes(p.shape, y.shape, () if w is None else w.shape)
    pb, yb = np.broadcast_to(p, shape), np.broadcast_to(y, shape)
    wb = np.ones(shape) if w is None else np.broadcast_to(w, shape)
    ls = float(label_smoothing)
    ys = yb * (1.0 - ls) + 0.5 * ls
    bounds = _clip_bounds(clip_eps)
    if bounds is None:
        pc, free = pb, np.ones(shape, dtype=bool)
    else:
        pc, free = np.clip(pb, *bounds), (pb >= bounds[0]) & (pb <= bounds[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        lp, lq = np.log(pc), np.log1p(-pc)
    lp_c, lq_c = lp, lq
    live_p = live_q = np.ones(shape, dtype=bool)
    if log_clamp is not None:
        lp_c, lq_c = np.maximum(lp, log_clamp), np.maximum(lq, log_clamp)
        live_p, live_q = lp > log_clamp, lq > log_clamp
    a, b = _where0(ys != 0, ys * lp_c), _where0(ys != 1, (1.0 - ys) * lq_c)
    terms = -wb * (a + b)
    scale = np.abs(wb) * (np.abs(a) + np.abs(b) + np.abs(1.0 - ys))  # + 1 ulp of 1 from rounding 1 - p
    if ls:
        # the smoothed label is rounded (1 - ls/2 rounds to 1 in float32 for tiny ls), and 1 - ys
        # cancels: its absolute error eps * |ys| multiplies log q (and ys's multiplies log p)
        scale = scale + np.abs(wb) * np.abs(ys) * (_where0(lq_c != 0, np.abs(lq_c)) + _where0(lp_c != 0, np.abs(lp_c)))

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if grad_floor is None:
            dp1 = _where0((ys != 0) & live_p, -ys / pc)
            dp2 = _where0((ys != 1) & live_q, (1.0 - ys) / (1.0 - pc))
            dp, dp_scale = (dp1 + dp2) * free, (np.abs(dp1) + np.abs(dp2)) * free
            dy, dy_scale = lq_c - lp_c, np.abs(lq_c) + np.abs(lp_c)
        else:
            den = np.maximum(pc * (1.0 - pc), grad_floor)
            dp, dp_scale = (pc - ys) / den * free, (np.abs(pc) + np.abs(ys)) / den * free
            dy, dy_scale = lq - lp, np.abs(lq) + np.abs(lp)

    def vjp(g):
        g = g * wb
        with np.errstate(invalid="ignore"):
            return {"probs": unbroadcast(g * dp, p.shape), "labels": unbroadcast(g * dy * (1.0 - ls), y.shape)}

    def gscale(g):
        g = g * np.abs(wb)
        with np.errstate(invalid="ignore"):
            return {"probs": unbroadcast(g * dp_scale, p.shape),
                    "labels": unbroadcast(g * dy_scale * abs(1.0 - ls), y.shape)}

    gap = np.ones(shape)
    if bounds is not None:
        gap = np.minimum(gap, _clip_gap(pb, bounds))
    if log_clamp is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.minimum(gap, np.minimum(rel_gap(np.log(pb), log_clamp), rel_gap(np.log1p(-pb), log_clamp)))
    kinks = {"probs": gap} if (bounds is not None or log_clamp is not None) else {}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def binary_cross_entropy_with_logits(logits, labels, *, weight=None, pos_weight=None, label_smoothing: float = 0.0,
                                     reduction: str = "none", **reduce_kw) -> Result:
    """pw y softplus(-x) + (1 - y) softplus(x) = -(pw y log sigmoid(x) + (1 - y) log sigmoid(-x)),
    times ``weight``; elementwise.

    Shapes: ``logits``, ``labels``, ``weight`` and ``pos_weight`` broadcast together (numpy rules, so
    a ``pos_weight`` of shape ``(C,)`` applies along the last, class, dimension as torch documents).
    Gradients w.r.t. ``logits`` and ``labels``.

    * torch ``BCEWithLogitsLoss(weight, pos_weight)``: the decomposition
      (torch/_decomp/decompositions.py ``binary_cross_entropy_with_logits``) computes
      ``(1 - y) x - (1 + (pw - 1) y) log_sigmoid(x)``, the same function.
    * Keras ``BinaryCrossentropy(from_logits=True, label_smoothing=ls)``: labels ``y (1-ls) + ls/2``
      (keras/src/losses/losses.py), then ``tf.nn.sigmoid_cross_entropy_with_logits`` / jax
      ``log_sigmoid`` / torch ``binary_cross_entropy_with_logits`` per backend; per-sample mean via
      ``reduce_kw`` ``axis=-1``.
    * optax ``sigmoid_binary_cross_entropy`` (optax/losses/_classification.py).

    Stable for |x| up to and including infinity: a term whose coefficient is zero is zero
    (``y = 1, x = +inf`` gives 0). torch and optax give NaN there (``0 * inf``); verified.
    """
    x, y = f64(logits, labels)
    w = None if weight is None else f64(weight)
    pw = None if pos_weight is None else f64(pos_weight)
    shape = np.broadcast_shapes(x.shape, y.shape, () if w is None else w.shape, () if pw is None else pw.shape)
    xb, yb = np.broadcast_to(x, shape), np.broadcast_to(y, shape)
    wb = np.ones(shape) if w is None else np.broadcast_to(w, shape)
    pwb = np.ones(shape) if pw is None else np.broadcast_to(pw, shape)
    ls = float(label_smoothing)
    ys = yb * (1.0 - ls) + 0.5 * ls
    a = _where0(pwb * ys != 0, pwb * ys * softplus(-xb))
    b = _where0(ys != 1, (1.0 - ys) * softplus(xb))
    terms = wb * (a + b)
    scale = np.abs(wb) * _bce_logits_scale(xb, ys, pwb)

    with np.errstate(over="ignore", invalid="ignore"):
        sx, snx = sigmoid(xb), sigmoid(-xb)
    lw = 1.0 + (pwb - 1.0) * ys
    dx = _where0(pwb * ys != 0, -pwb * ys * snx) + _where0(ys != 1, (1.0 - ys) * sx)
    # torch's backward is (lw sigmoid(x) - pw y): its rounding is the larger of the two scales
    dx_scale = np.maximum(np.abs(pwb * ys) * snx + np.abs(1.0 - ys) * sx, np.abs(lw) * sx + np.abs(pwb * ys))
    with np.errstate(invalid="ignore"):
        dy = pwb * softplus(-xb) - softplus(xb)
    dy_scale = np.abs(pwb) * softplus(-xb) + softplus(xb)

    def vjp(g):
        g = g * wb
        with np.errstate(invalid="ignore"):
            return {"logits": unbroadcast(g * dx, x.shape), "labels": unbroadcast(g * dy * (1.0 - ls), y.shape)}

    def gscale(g):
        g = g * np.abs(wb)
        return {"logits": unbroadcast(g * dx_scale, x.shape),
                "labels": unbroadcast(g * dy_scale * abs(1.0 - ls), y.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


# ---- softmax cross-entropy on logits -------------------------------------------------------------

def _softmax_ce_last(x, ys, mask=None, cw=None):
    """-sum(cw * ys * log_softmax(x)) along the last axis (over ``mask``), with the 0 log 0 = 0
    convention. Returns terms, scale, and functions mapping a per-row cotangent to
    (d/dx, d/dys) and to their summand magnitudes."""
    m, log_s, p = _softmax_parts(x, mask)
    sel = np.ones(x.shape, dtype=bool) if mask is None else np.broadcast_to(mask, x.shape)
    coef = ys if cw is None else ys * cw
    live = sel & (coef != 0)
    with np.errstate(invalid="ignore", over="ignore"):
        nls = (m - x) + log_s                      # -log_softmax; +inf at -inf logits
        lse = m + log_s
        terms = np.sum(_where0(live, coef * nls), axis=-1)
        # |x| + |lse|, plus 1: frameworks take log(sum(exp(x - m))) of a sum >= 1 rounded to an ulp
        mag = np.where(np.isfinite(x), np.abs(x), np.inf) + np.abs(lse) + 1.0
        scale = np.sum(_where0(live, np.abs(coef) * mag), axis=-1)
    cwf = 1.0 if cw is None else cw

    def back(g):
        g = np.asarray(g)[..., None]
        with np.errstate(invalid="ignore"):
            g_logp = _where0(live, -g * coef)
            gx = _where0(sel, _softmax_vjp(g_logp, p))
            gy = _where0(sel, g * cwf * nls)
        return gx, gy

    def back_scale(g):
        g = np.abs(np.asarray(g))[..., None]
        with np.errstate(invalid="ignore"):
            g_logp = _where0(live, g * np.abs(coef))
            gx = _where0(sel, _softmax_vjp_scale(g_logp, p))
            gy = _where0(sel, g * np.abs(cwf) * mag)
        return gx, gy

    return terms, scale, back, back_scale, p, sel


def _dense_layout(logits, labels, axis, where):
    """Broadcast logits/labels/where (optax rules) and move the class axes to the end."""
    x, y = f64(logits, labels)
    shape = np.broadcast_shapes(x.shape, y.shape)
    axes = _axes(axis, len(shape))
    xl = _to_last(np.broadcast_to(x, shape), axes)
    yl = _to_last(np.broadcast_to(y, shape), axes)
    mask = None
    if where is not None:
        mask = _to_last(np.broadcast_to(_expand_where(where, len(shape), axis), shape), axes)
    return x, y, shape, axes, xl, yl, mask


def softmax_cross_entropy(logits, labels, *, axis=-1, where=None, label_smoothing: float = 0.0, class_weight=None,
                          smoothing_classes: int | None = None, reduction: str = "none", **reduce_kw) -> Result:
    """-sum(w * y * log_softmax(x)) along ``axis``; labels are class probabilities (float).

    Shapes: ``logits`` ``[..., C, ...]`` with the classes along ``axis`` (an int, or a tuple of
    axes as optax allows); ``labels`` broadcastable to it; ``where`` (optax) of the logits' shape, or
    of the shape without the class axis (it then masks whole rows); ``class_weight`` ``(C,)``.
    Terms have the shape without the class axes. Gradients w.r.t. ``logits`` and ``labels``.

    * optax ``softmax_cross_entropy(logits, labels, axis, where)``
      (optax/losses/_classification.py): masked classes leave both the normaliser and the sum; a
      row with nothing selected gives 0. optax's label gradient is NaN at masked classes (its
      ``log_softmax`` is -inf there and the masked sum multiplies a zero cotangent by it); the
      reference gives 0, the derivative.
    * Keras ``CategoricalCrossentropy(from_logits=True, label_smoothing=ls, axis)``: labels
      ``y (1 - ls) + ls / C`` with C the size of the *last* axis whatever ``axis`` is
      (keras/src/losses/losses.py ``categorical_crossentropy``: pass ``smoothing_classes`` when
      ``axis != -1``); backends: ``tf.nn.softmax_cross_entropy_with_logits`` or ``log_softmax``.
    * torch ``CrossEntropyLoss(weight=class_weight, label_smoothing=ls)`` with probability
      targets, on class-last data (see :func:`cross_entropy` for torch's layouts and its mean).

    ``label_smoothing`` maps labels to ``y (1 - ls) + ls / K`` with ``K = smoothing_classes`` or
    the number of classes. -inf logits are exact where their labels are 0 (0 log 0 = 0): optax's
    ``softmax_cross_entropy`` and torch give NaN there, optax's ``safe_softmax_cross_entropy`` the
    finite value (verified).
    """
    x, y, shape, axes, xl, yl, mask = _dense_layout(logits, labels, axis, where)
    ncls = xl.shape[-1]
    ls = float(label_smoothing)
    ys = yl * (1.0 - ls) + ls / float(smoothing_classes or ncls)
    cw = None if class_weight is None else f64(class_weight)
    terms, scale, back, back_scale, _, _ = _softmax_ce_last(xl, ys, mask, cw)

    def vjp(g):
        gx, gy = back(g)
        return {"logits": unbroadcast(_from_last(gx, shape, axes), x.shape),
                "labels": unbroadcast(_from_last(gy * (1.0 - ls), shape, axes), y.shape)}

    def gscale(g):
        gx, gy = back_scale(g)
        return {"logits": unbroadcast(_from_last(gx, shape, axes), x.shape),
                "labels": unbroadcast(_from_last(gy * abs(1.0 - ls), shape, axes), y.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def safe_softmax_cross_entropy(logits, labels, *, reduction: str = "none", **reduce_kw) -> Result:
    """optax ``safe_softmax_cross_entropy``: -sum(y log_softmax(x)) over the last axis, finite when
    logits are -inf where labels are 0 (``weighted_logsoftmax`` returns 0 there).

    In exact arithmetic it is :func:`softmax_cross_entropy` (which follows the same 0 log 0 = 0
    convention). optax's custom JVP gives d/dx = sum(y) softmax - y (0 at the -inf logits) and
    d/dy = -log_softmax (+inf at the -inf logits): the derivative, reproduced here (verified).

    Shapes: ``logits`` and ``labels`` ``[..., C]`` (broadcast together, classes last); terms ``[...]``
    for ``reduction="none"``, a scalar otherwise.
    """
    return softmax_cross_entropy(logits, labels, axis=-1, reduction=reduction, **reduce_kw)


def softmax_cross_entropy_with_integer_labels(logits, labels, *, axis=-1, where=None, reduction: str = "none",
                                              **reduce_kw) -> Result:
    """optax ``softmax_cross_entropy_with_integer_labels``: logsumexp(x over ``where``) - x[label].

    Shapes: ``logits`` ``[..., C]`` (classes along ``axis``; a tuple of axes makes ``labels`` flat
    indices into those axes, in the order given, as optax does); integer ``labels`` of the logits'
    shape without the class axes; ``where`` as in :func:`softmax_cross_entropy`. Gradient w.r.t.
    ``logits`` only.

    optax takes the label's logit from the unmasked logits, so a label outside ``where`` still
    contributes -x[label] (the value can be negative); rows with nothing selected give 0
    (optax/losses/_classification.py; verified).
    """
    x = f64(logits)
    axes = _axes(axis, x.ndim)
    xl = _to_last(x, axes)
    lab = np.asarray(labels).astype(np.int64)
    mask = None
    if where is not None:
        mask = _to_last(np.broadcast_to(_expand_where(where, x.ndim, axis), x.shape), axes)
    m, log_s, p = _softmax_parts(xl, mask)
    any_sel = np.ones(lab.shape, dtype=bool) if mask is None else np.any(mask, axis=-1)
    idx = lab[..., None]
    x_y = np.take_along_axis(xl, idx, axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        terms = _where0(any_sel, (m[..., 0] - x_y) + log_s[..., 0])
        scale = _where0(any_sel, np.abs(m[..., 0] + log_s[..., 0]) + np.abs(x_y) + 1.0)
    onehot = np.zeros(xl.shape)
    np.put_along_axis(onehot, idx, 1.0, axis=-1)

    def vjp(g):
        g = _where0(any_sel, g)[..., None]
        return {"logits": _from_last(g * (p - onehot), x.shape, axes)}

    def gscale(g):
        g = _where0(any_sel, g)[..., None]
        return {"logits": _from_last(g * (p + onehot), x.shape, axes)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def poly_loss_cross_entropy(logits, labels, *, epsilon: float = 2.0, axis=-1, where=None, reduction: str = "none",
                            **reduce_kw) -> Result:
    """optax ``poly_loss_cross_entropy`` (Poly-1): softmax cross-entropy + eps * sum(y (1 - p)),
    p = softmax(x), both over ``axis`` and ``where``.

    Shapes as :func:`softmax_cross_entropy`. Gradients w.r.t. ``logits`` and ``labels``
    (optax/losses/_classification.py; like ``softmax_cross_entropy``, optax's label gradient is NaN
    at masked classes, the reference's 0). ``1 - p`` is evaluated without cancellation.
    """
    x, y, shape, axes, xl, yl, mask = _dense_layout(logits, labels, axis, where)
    eps = float(epsilon)
    ce, ce_scale, back, back_scale, p, sel = _softmax_ce_last(xl, yl, mask)
    comp = _complement(p)
    poly = np.sum(_where0(sel, yl * comp), axis=-1)
    terms = ce + eps * poly
    scale = ce_scale + abs(eps) * np.sum(_where0(sel, np.abs(yl)), axis=-1)
    yp = np.sum(_where0(sel, yl * p), axis=-1, keepdims=True)
    ayp = np.sum(_where0(sel, np.abs(yl) * p), axis=-1, keepdims=True)

    def vjp(g):
        gx, gy = back(g)
        g = np.asarray(g)[..., None]
        gx = gx + _where0(sel, g * eps * p * (yp - yl))
        gy = gy + _where0(sel, g * eps * comp)
        return {"logits": unbroadcast(_from_last(gx, shape, axes), x.shape),
                "labels": unbroadcast(_from_last(gy, shape, axes), y.shape)}

    def gscale(g):
        gx, gy = back_scale(g)
        g = np.abs(np.asarray(g))[..., None]
        gx = gx + _where0(sel, g * abs(eps) * p * (ayp + np.abs(yl)))
        gy = gy + _where0(sel, g * abs(eps))
        return {"logits": unbroadcast(_from_last(gx, shape, axes), x.shape),
                "labels": unbroadcast(_from_last(gy, shape, axes), y.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


# ---- categorical cross-entropy on probabilities --------------------------------------------------

_ORDERS = ("renormalize_then_clip", "clip_then_renormalize", None)


def _categorical_last(p, ys, bounds, order):
    """-sum(ys log q) along the last axis for probabilities ``p``, q per ``order``. Returns terms,
    scale, back(g) -> (d/dp, d/dys), back_scale, the per-element kink gap of ``p`` (or None)."""
    if order not in _ORDERS:
        raise ValueError(f"unknown order {order!r}; expected one of {_ORDERS}")
    shape = p.shape
    live = ys != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if order == "renormalize_then_clip":
            s = np.sum(p, axis=-1, keepdims=True)
            q = p / s
            lq = _log_quotient(p, s, _complement(p, s))
            if bounds is not None:
                qc = np.clip(q, *bounds)
                free = (q >= bounds[0]) & (q <= bounds[1])
                lq = np.where(q < bounds[0], math.log(bounds[0]), np.where(q > bounds[1], math.log(bounds[1]), lq))
            else:
                qc, free = q, np.ones(shape, bool)
            extra = np.ones(shape)                       # 1 ulp of log from rounding p / s
        else:
            pc = p if bounds is None else np.clip(p, *bounds)
            free = np.ones(shape, bool) if bounds is None else (p >= bounds[0]) & (p <= bounds[1])
            if order is None:
                lq, extra = np.log(pc), np.zeros(shape)
            else:
                S = np.sum(pc, axis=-1, keepdims=True)
                lq = _log_quotient(pc, S, _complement(pc, S))
                extra = 1.0 + np.abs(np.log(S)) + np.zeros(shape)   # TF: logsumexp(log pc) - log pc
        terms = -np.sum(_where0(live, ys * lq), axis=-1)
        scale = np.sum(_where0(live, np.abs(ys) * (np.abs(lq) + extra)), axis=-1)

    def back(g):
        g = np.asarray(g)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if order == "renormalize_then_clip":
                gq = _where0(live & free, -g * ys / qc)
                gp = (gq - np.sum(gq * q, axis=-1, keepdims=True)) / s
            elif order is None:
                gp = _where0(live & free, -g * ys / pc)
            else:
                gp = _where0(free, _where0(live, -g * ys / pc) + g * np.sum(ys, axis=-1, keepdims=True) / S)
            gy = -g * lq
        return gp, gy

    def back_scale(g):
        g = np.abs(np.asarray(g))[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if order == "renormalize_then_clip":
                gq = _where0(live & free, g * np.abs(ys) / qc)
                gp = (gq + np.sum(gq * q, axis=-1, keepdims=True)) / s
            elif order is None:
                gp = _where0(live & free, g * np.abs(ys) / pc)
            else:
                tot = g * np.sum(np.abs(ys), axis=-1, keepdims=True) / S
                gp = _where0(free, _where0(live, g * np.abs(ys) / pc) + tot)
            gy = g * (np.abs(lq) + extra)
        return gp, gy

    gap = None
    if bounds is not None:
        if order == "renormalize_then_clip":
            # every element of a row moves q, so a row near a clip bound is near a kink throughout
            gap = np.broadcast_to(np.min(_clip_gap(q, bounds), axis=-1, keepdims=True), shape)
        else:
            gap = _clip_gap(p, bounds)
    return terms, scale, back, back_scale, gap


def categorical_cross_entropy(probs, labels, *, axis: int = -1, clip_eps=None, order="renormalize_then_clip",
                              label_smoothing: float = 0.0, reduction: str = "none", **reduce_kw) -> Result:
    """Cross-entropy on probabilities, -sum(y log q) along ``axis``.

    ``order`` says how q is made from ``probs`` (clip bounds from ``clip_eps``, none when ``None``):

    * ``"renormalize_then_clip"``: q = clip(p / sum(p)). Keras ``CategoricalCrossentropy()`` on the
      jax and torch backends, and on TensorFlow (keras/src/backend/{jax,torch,tensorflow}/nn.py
      ``categorical_crossentropy``), with ``clip_eps=1e-7``; also Keras'
      ``SparseCategoricalCrossentropy`` on jax and torch (see
      :func:`sparse_categorical_cross_entropy`).
    * ``"clip_then_renormalize"``: q = clip(p) / sum(clip(p)). Keras' TensorFlow
      ``sparse_categorical_crossentropy`` takes ``log(clip(p))`` as logits of
      ``tf.nn.sparse_softmax_cross_entropy_with_logits``, i.e. this.
    * ``None``: q = clip(p) (or p): with ``clip_eps=None`` the exact -sum(y log p).

    Shapes: ``probs`` and ``labels`` the same shape; terms without the class axis. Gradients
    w.r.t. ``probs`` (zero through an active clip) and ``labels``. ``label_smoothing``: labels
    ``y (1 - ls) + ls / C`` with C the size of the last axis, as Keras does whatever ``axis`` is.
    Kinks: q at a clip bound (for renormalise-then-clip, the whole row).
    """
    p, y = f64(probs, labels)
    shape = np.broadcast_shapes(p.shape, y.shape)
    ls = float(label_smoothing)
    ysf = np.broadcast_to(y, shape) * (1.0 - ls) + ls / float(shape[-1])
    axes = _axes(axis, len(shape))
    pl, yl = _to_last(np.broadcast_to(p, shape), axes), _to_last(ysf, axes)
    terms, scale, back, back_scale, gap = _categorical_last(pl, yl, _clip_bounds(clip_eps), order)

    def vjp(g):
        gp, gy = back(g)
        return {"probs": unbroadcast(_from_last(gp, shape, axes), p.shape),
                "labels": unbroadcast(_from_last(gy * (1.0 - ls), shape, axes), y.shape)}

    def gscale(g):
        gp, gy = back_scale(g)
        return {"probs": unbroadcast(_from_last(gp, shape, axes), p.shape),
                "labels": unbroadcast(_from_last(gy * abs(1.0 - ls), shape, axes), y.shape)}

    kinks = {} if gap is None else {"probs": _from_last(gap, shape, axes)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def keras_masked_reduce_kw(valid, reduction: str, weights=None, divisor=None) -> dict:
    """The ``reduce`` keywords reproducing Keras' reduction of a masked loss
    (keras/src/losses/loss.py ``reduce_weighted_values`` / ``apply_mask``).

    Keras turns the mask into sample weights: for ``"mean"`` and ``"sum_over_batch_size"`` valid
    entries weigh ``total / valid`` and the sum is divided by ``total``, i.e. the weighted sum over
    the valid entries divided by their *count* (``divide_no_nan``: 0 when none is valid); for
    ``"mean_with_sample_weight"`` the divisor is the sum of ``mask * sample_weight``; ``"sum"``
    just drops the masked entries. Returns ``{"weights": mask * weights, "divisor": ...}``.

    Shapes: ``valid`` boolean, the shape of the per-sample losses it masks; ``weights`` broadcastable
    to it. The returned ``weights`` have ``valid``'s shape; ``divisor`` is a scalar, present only when
    given or for ``"mean"`` / ``"sum_over_batch_size"``.
    """
    valid = np.asarray(valid, dtype=bool)
    w = valid.astype(np.float64)
    if weights is not None:
        w = w * np.broadcast_to(f64(weights), valid.shape)
    out = {"weights": w}
    if divisor is not None:
        out["divisor"] = divisor
    elif reduction in ("mean", "sum_over_batch_size"):
        out["divisor"] = float(np.sum(valid))
    return out


def sparse_categorical_cross_entropy(output, labels, *, from_logits: bool = False, axis: int = -1,
                                     ignore_class: int | None = None, clip_eps=None,
                                     order="renormalize_then_clip", reduction: str = "none",
                                     **reduce_kw) -> Result:
    """Keras ``SparseCategoricalCrossentropy(from_logits, ignore_class, axis)``: cross-entropy with
    integer labels.

    Shapes: ``output`` ``[..., C]`` (classes along ``axis``); integer ``labels`` of the output's
    shape without the class axis (a trailing size-1 axis in its place is squeezed, as Keras does).
    Gradient w.r.t. ``output`` only.

    * ``from_logits=True``: -log_softmax(x)[label] (all backends; ``clip_eps``/``order`` unused).
      Only the torch backend honours ``axis`` other than the last: TF raises for it and the jax
      backend's shape check requires the classes last.
    * ``from_logits=False``: :func:`categorical_cross_entropy` of the one-hot labels with
      ``clip_eps=1e-7`` and ``order="renormalize_then_clip"`` (jax, torch backends:
      keras/src/backend/{jax,torch}/nn.py) or ``order="clip_then_renormalize"`` (TensorFlow:
      ``log(clip(p))`` fed to ``sparse_softmax_cross_entropy_with_logits``; axis -1 only).

    ``ignore_class`` (keras/src/losses/losses.py): positions whose label is ``ignore_class`` give 0
    and a zero gradient, and Keras attaches the validity mask to the loss, so the ``Loss`` object's
    reduction runs on the masked values: with ``ignore_class`` set and a reduction other than
    ``"none"``, this function reduces the same way (:func:`keras_masked_reduce_kw`; a ``weights``
    keyword is the sample weight, merged with the mask, and an explicit ``divisor`` wins). The mask
    itself is :func:`sparse_valid_mask`.
    """
    x = f64(output)
    lab = np.asarray(labels)
    ax = _axes(axis, x.ndim)[0]
    if lab.ndim == x.ndim and lab.shape[ax] == 1:
        lab = np.squeeze(lab, axis=ax)
    lab = lab.astype(np.int64)
    valid = sparse_valid_mask(lab, ignore_class)
    safe = np.where(valid, lab, 0)
    xl = np.moveaxis(x, ax, -1)
    onehot = np.zeros(xl.shape)
    np.put_along_axis(onehot, safe[..., None], 1.0, axis=-1)
    gap = None
    if from_logits:
        terms, scale, back, back_scale, _, _ = _softmax_ce_last(xl, onehot)
    else:
        terms, scale, back, back_scale, gap = _categorical_last(xl, onehot, _clip_bounds(clip_eps), order)
    terms, scale = _where0(valid, terms), _where0(valid, scale)

    def vjp(g):
        return {"output": np.moveaxis(back(_where0(valid, g))[0], -1, ax)}

    def gscale(g):
        return {"output": np.moveaxis(back_scale(_where0(valid, g))[0], -1, ax)}

    if ignore_class is not None and reduction != "none":
        reduce_kw = dict(reduce_kw)
        reduce_kw.update(keras_masked_reduce_kw(valid, reduction, reduce_kw.pop("weights", None),
                                                reduce_kw.pop("divisor", None)))
    kinks = {} if gap is None else {"output": np.moveaxis(gap, -1, ax)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def sparse_valid_mask(labels, ignore_class=None):
    """Keras' validity mask for ``ignore_class``: ``labels != ignore_class`` (all True for None).

    Shapes: integer ``labels`` of any shape; the boolean mask has the same shape.
    """
    labels = np.asarray(labels)
    if ignore_class is None:
        return np.ones(labels.shape, dtype=bool)
    return labels != ignore_class


# ---- torch CrossEntropyLoss / NLLLoss ------------------------------------------------------------

def _torch_layout(input):
    x = f64(input)
    cdim = 0 if x.ndim == 1 else 1
    return x, cdim, np.moveaxis(x, cdim, -1)


def _torch_index_target(target, xl, ignore_index, dense=True):
    """``valid`` (not ignored), ``safe`` (the target, 0 where ignored) and, with ``dense``, its
    one-hot of the input's (class-last) shape."""
    t = np.asarray(target).astype(np.int64)
    if t.shape != xl.shape[:-1]:
        raise ValueError(f"target shape {t.shape} does not match input {xl.shape[:-1]} (class dim removed)")
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    if np.any((safe < 0) | (safe >= xl.shape[-1])):
        raise IndexError("target out of bounds")
    if not dense:
        return valid, safe, None
    onehot = np.zeros(xl.shape)
    np.put_along_axis(onehot, safe[..., None], 1.0, axis=-1)
    return valid, safe, onehot


def _torch_reduce(terms, scale, local_vjp, reduction, total_weight, valid, local_grad_scale):
    """torch's ``none`` / ``sum`` / ``mean`` (the mean divides by ``total_weight``). A zero total
    weight gives torch's 0/0 = NaN (every target ignored) or x/0 = inf; the gradient is then 0 at
    ignored targets and cot/0 elsewhere, as torch's nll backward computes it."""
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"torch reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    if reduction != "mean" or total_weight != 0:
        kw = {"divisor": total_weight} if reduction == "mean" else {}
        return finish(terms, scale, local_vjp, reduction, local_grad_scale=local_grad_scale, **kw)
    res = finish(terms, scale, local_vjp, "sum", local_grad_scale=local_grad_scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        value, vscale = res.value / 0.0, res.scale / 0.0

        def vjp(cot):
            with np.errstate(divide="ignore", invalid="ignore"):
                return local_vjp(_where0(valid, np.full(valid.shape, np.float64(cot) / 0.0)))

    return dataclasses.replace(res, value=np.asarray(value), scale=np.asarray(vscale), vjp=vjp)


def cross_entropy(input, target, *, weight=None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Result:
    """torch ``nn.CrossEntropyLoss`` / ``F.cross_entropy``, in full.

    Shapes: ``input`` ``(C,)`` (unbatched, class dim 0), ``(N, C)`` or ``(N, C, d1, ..., dk)``
    (class dim 1). ``target`` either integer class indices of the input's shape without the class
    dim, or float class probabilities of the input's shape. ``weight`` ``(C,)``. Reductions
    ``none`` / ``sum`` / ``mean`` only (torch's own; no ``reduce_kw``). Gradients w.r.t. ``input``,
    and w.r.t. ``target`` when it is a probability target.

    Index targets (aten ``cross_entropy_loss`` / ``cross_entropy_loss_label_smoothing``, with
    ``nll_loss`` as in torch/_decomp/decompositions.py ``_nll_loss_forward``):
    ``(1 - ls) * w[t] * (-log_softmax(x)[t]) + ls / C * sum_c w[c] * (-log_softmax(x)[c])`` per
    position, 0 where ``t == ignore_index``. The mean divides *both* parts by the sum of ``w[t]``
    over the non-ignored positions (the number of them without ``weight``); every position ignored
    gives NaN for the mean (0/0) with a zero gradient, 0 for the sum (verified). A zero weight sum
    otherwise gives +-inf and torch's inf/NaN gradient pattern (except at positions with
    ``w[t] == 0``, 0 here and NaN in torch).

    Probability targets (aten ``cross_entropy_loss_prob_target``): labels ``y (1 - ls) + ls / C``,
    ``-sum_c w[c] y[c] log_softmax(x)[c]``; the mean divides by the number of positions
    (N * d1 * ... * dk, 1 unbatched), not by weights. torch rejects ``ignore_index >= 0`` with
    probability targets ("ignore_index is not supported for floating point target"), and so does
    this function. torch gives NaN where a label is 0 and its logit -inf; the reference, 0 log 0 = 0.
    """
    x, cdim, xl = _torch_layout(input)
    ncls = xl.shape[-1]
    t = np.asarray(target)
    w = np.ones(ncls) if weight is None else f64(weight)
    ls = float(label_smoothing)

    if np.issubdtype(t.dtype, np.floating):
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        y = f64(t)
        if y.shape != x.shape:
            raise ValueError(f"probability target shape {y.shape} != input shape {x.shape}")
        ys = np.moveaxis(y, cdim, -1) * (1.0 - ls) + ls / ncls
        terms, scale, back, back_scale, _, _ = _softmax_ce_last(xl, ys, None, w)

        def vjp(g):
            gx, gy = back(g)
            return {"input": np.moveaxis(gx, -1, cdim), "target": np.moveaxis(gy * (1.0 - ls), -1, cdim)}

        def gscale(g):
            gx, gy = back_scale(g)
            return {"input": np.moveaxis(gx, -1, cdim), "target": np.moveaxis(gy * abs(1.0 - ls), -1, cdim)}

        if reduction not in ("none", "sum", "mean"):
            raise ValueError(f"torch reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
        return finish(terms, scale, vjp, reduction, local_grad_scale=gscale)

    if ls == 0 and np.all(np.isfinite(w)):
        return _torch_ce_target_column(xl, cdim, t, w, ignore_index, reduction)
    valid, safe, onehot = _torch_index_target(t, xl, ignore_index)
    m, log_s, p = _softmax_parts(xl)
    with np.errstate(invalid="ignore", over="ignore"):
        nls = (m - xl) + log_s
        mag = np.where(np.isfinite(xl), np.abs(xl), np.inf) + np.abs(m + log_s) + 1.0
        coef = (1.0 - ls) * w * onehot                 # d terms / d(-log_softmax)
        if ls > 0:
            coef = coef + (ls / ncls) * w
        coef = coef * valid[..., None]
        terms = np.sum(_where0(coef != 0, coef * nls), axis=-1)
        scale = np.sum(_where0(coef != 0, np.abs(coef) * mag), axis=-1)
    w_t = np.where(valid, w[safe], 0.0)
    total_weight = float(np.sum(w_t))

    def local_vjp(g):
        with np.errstate(invalid="ignore"):
            g_logp = _where0(coef != 0, -np.asarray(g)[..., None] * coef)
        return {"input": np.moveaxis(_softmax_vjp(g_logp, p), -1, cdim)}

    def local_gscale(g):
        g_logp = _where0(coef != 0, np.asarray(g)[..., None] * np.abs(coef))
        return {"input": np.moveaxis(_softmax_vjp_scale(g_logp, p), -1, cdim)}

    return _torch_reduce(terms, scale, local_vjp, reduction, total_weight, valid, local_gscale)


def _torch_ce_target_column(xl, cdim, target, w, ignore_index, reduction):
    """:func:`cross_entropy` with index targets and no label smoothing, on the target column alone:
    per position ``c * (-log_softmax(x)[t])`` with ``c = w[t]`` (0 where ignored), its scale
    ``|c| (|x[t]| + |m + log_s| + 1)`` (the summands of ``x[t] - logsumexp(x)``, and 1 for the
    rounded sum inside the log) and the gradient ``g c (softmax(x) - onehot(t))``: the same numbers
    as the dense form (every other class has a zero coefficient there), without (N, C) one-hot
    and coefficient arrays. Finite ``w`` only (an infinite weight times a zero one-hot is NaN in
    the dense form)."""
    valid, safe, _ = _torch_index_target(target, xl, ignore_index, dense=False)
    m, log_s, p = _softmax_parts(xl)
    rows = _Rows(xl.shape)
    x_t = rows.unflat(rows.take(rows.flat(xl), safe))
    with np.errstate(invalid="ignore", over="ignore"):
        c = w[safe] * valid                            # d terms / d(-log_softmax[t])
        nls = ((m - x_t) + log_s)[..., 0]
        mag = (np.where(np.isfinite(x_t), np.abs(x_t), np.inf) + np.abs(m + log_s) + 1.0)[..., 0]
        terms = _where0(c != 0, c * nls)
        scale = _where0(c != 0, np.abs(c) * mag)
    total_weight = float(np.sum(np.where(valid, w[safe], 0.0)))

    def at_target(gc, sign):
        """``p gc + sign gc onehot(t)`` with the class axis back in place."""
        with np.errstate(invalid="ignore"):
            gx = p * gc[..., None]
            g2 = rows.flat(gx)
            rows.put(g2, safe, rows.take(g2, safe)[:, 0] + sign * np.reshape(gc, -1))
        return {"input": np.moveaxis(gx, -1, cdim)}

    def local_vjp(g):
        # g c p - g c onehot: -log_softmax's VJP, g_logp - p sum(g_logp), for a one-column g_logp
        with np.errstate(invalid="ignore"):
            return at_target(_where0(c != 0, np.asarray(g) * c), -1.0)

    def local_gscale(g):
        with np.errstate(invalid="ignore"):
            return at_target(_where0(c != 0, np.asarray(g) * np.abs(c)), 1.0)

    return _torch_reduce(terms, scale, local_vjp, reduction, total_weight, valid, local_gscale)


def nll_loss(input, target, *, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Result:
    """torch ``nn.NLLLoss`` / ``F.nll_loss`` on log-probabilities: ``-w[t] * input[t]`` per position,
    0 where ``t == ignore_index``.

    Shapes as the index-target form of :func:`cross_entropy`: ``input`` ``(C,)``, ``(N, C)`` or
    ``(N, C, d1, ..., dk)``, integer ``target`` without the class dim, ``weight`` ``(C,)``. The mean
    divides by the sum of ``w[t]`` over non-ignored positions (torch/_decomp/decompositions.py
    ``_nll_loss_forward``); all ignored gives NaN with a zero gradient (verified). Gradient w.r.t.
    ``input``: ``-w[t]`` at the target class (``_nll_loss_backward``).
    """
    x, cdim, xl = _torch_layout(input)
    w = np.ones(xl.shape[-1]) if weight is None else f64(weight)
    valid, safe, onehot = _torch_index_target(target, xl, ignore_index)
    w_t = np.where(valid, w[safe], 0.0)
    x_t = np.take_along_axis(xl, safe[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        terms = _where0(valid, -w_t * x_t)
    scale = np.abs(terms)
    total_weight = float(np.sum(w_t))

    def local_vjp(g):
        with np.errstate(invalid="ignore"):
            gt = _where0(valid, -np.asarray(g) * w_t)
        return {"input": np.moveaxis(gt[..., None] * onehot, -1, cdim)}

    return _torch_reduce(terms, scale, local_vjp, reduction, total_weight, valid, None)


# ---- focal losses --------------------------------------------------------------------------------


def _logit(b: float) -> float:
    """log(b / (1 - b)) of a clip bound; +-inf where rounding to a half dtype made the bound 0 or 1."""
    with np.errstate(divide="ignore"):
        return float(np.log(np.float64(b)) - np.log1p(-np.float64(b)))


def binary_focal_cross_entropy(output, labels, *, from_logits: bool = False, gamma: float = 2.0, alpha: float = 0.25,
                               apply_class_balancing: bool = False, label_smoothing: float = 0.0, clip_eps=None,
                               reduction: str = "none", **reduce_kw) -> Result:
    """Keras ``BinaryFocalCrossentropy``, elementwise (the catalog applies Keras' per-sample mean
    with ``reduce_kw`` ``axis=-1``).

    keras/src/losses/losses.py ``binary_focal_crossentropy``, in this order: labels
    ``y (1 - ls) + ls / 2``; ``p = sigmoid(output)`` if ``from_logits``; ``bce`` =
    ``binary_crossentropy(y, p)`` on probabilities (Keras clips p to ``[eps, 1 - eps]``:
    ``clip_eps=1e-7``); ``p_t = y p + (1 - y)(1 - p)`` from the *unclipped* p; loss
    ``(1 - p_t)**gamma * bce``, times ``alpha y + (1 - alpha)(1 - y)`` when
    ``apply_class_balancing``.

    Shapes: ``output`` and ``labels`` broadcast together. Gradients w.r.t. ``output`` (the focal
    factor keeps its gradient where the clip is active) and ``labels``. With ``from_logits`` the
    logs are evaluated stably (log_sigmoid), ``1 - p`` as ``sigmoid(-x)``.
    Kinks: p at a clip bound (x at the logit of a bound).

    TensorFlow backend with ``from_logits=True``: Keras' TF ``sigmoid`` tags its output with
    ``_keras_logits`` and TF ``binary_crossentropy`` then works from those logits
    (``sigmoid_cross_entropy_with_logits``, keras/src/backend/tensorflow/nn.py ``_get_logits``),
    so the bce is *not* clipped there: bind ``clip_eps=None`` for TF with logits, ``1e-7``
    elsewhere (at x = 20, y = 0 the two differ by 24%; verified on all three backends).
    """
    z, y = f64(output, labels)
    shape = np.broadcast_shapes(z.shape, y.shape)
    zb, yb = np.broadcast_to(z, shape), np.broadcast_to(y, shape)
    ls = float(label_smoothing)
    ys = yb * (1.0 - ls) + 0.5 * ls
    bounds = _clip_bounds(clip_eps)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if from_logits:
            p, q = sigmoid(zb), sigmoid(-zb)  # noqa: the discarded branch of _core.sigmoid overflows
            lp_raw, lq_raw = log_sigmoid(zb), log_sigmoid(-zb)
            dpdz = p * q
        else:
            p, q = zb, 1.0 - zb
            lp_raw, lq_raw = np.log(zb), np.log1p(-zb)
            dpdz = np.ones(shape)
        if bounds is None:
            free = np.ones(shape, dtype=bool)
            lp, lq = lp_raw, lq_raw
        else:
            lo, hi = bounds
            below, above = p < lo, p > hi
            free = ~below & ~above
            lp = np.where(below, np.log(lo), np.where(above, np.log(hi), lp_raw))
            lq = np.where(below, np.log1p(-lo), np.where(above, np.log1p(-hi), lq_raw))  # -inf: 1 - 1e-7 is 1 in float16
        a, b = _where0(ys != 0, ys * lp), _where0(ys != 1, (1.0 - ys) * lq)
        bce = -(a + b)
        # rounding: 1 ulp of 1 in 1 - p; with logits, sigmoid's relative error in p becomes
        # p / (1 - p) ulps in log(1 - p) (Keras takes log(1 - sigmoid(x))), on top of the 1 ulp of 1
        # (keras-jax float32, y = 0, x = -8: -log(fl(1 - p)) = 3.35392e-4, exact 3.35406e-4, 0.12 ulp of 1)
        q_err = 1.0
        if from_logits and bounds is not None:  # unclipped (TensorFlow) works from the logits: no 1 - p
            q_err = 1.0 + np.exp(np.minimum(zb, _logit(hi)))
        bce_scale = np.abs(a) + np.abs(b) + np.abs(1.0 - ys) * q_err + np.abs(ys)
        u = ys * q + (1.0 - ys) * p                   # 1 - p_t
        f, df = _focal_power(u, gamma)
        wbal = ys * alpha + (1.0 - ys) * (1.0 - alpha) if apply_class_balancing else np.ones(shape)
        dwbal = (2.0 * alpha - 1.0) if apply_class_balancing else 0.0
        terms = wbal * f * bce
        # 1 - p_t rounds to eps-sized errors, moving f by |df| of them (capped where gamma < 1:
        # subnormal labels or smoothing, gamma = 2**-9, u = 1.1e-309)
        scale = np.abs(wbal) * (f * bce_scale + _focal_base_err(u, df, gamma, bce))
        if apply_class_balancing and ls != 0 and dwbal != 0:
            # smoothed labels are rounded: near 1, 1 - ys in the balancing weight is all rounding error
            scale = scale + abs(dwbal) * np.abs(ys) * f * np.abs(bce)

        # d bce / dz where the clip is inactive: -ys/p + (1-ys)/(1-p), times dp/dz
        if from_logits:
            dbce, dbce_s = p - ys, p + np.abs(ys)
        else:
            dbce = _where0(ys != 0, -ys / p) + _where0(ys != 1, (1.0 - ys) / q)
            dbce_s = _where0(ys != 0, np.abs(ys) / p) + _where0(ys != 1, np.abs(1.0 - ys) / q)
        dbce, dbce_s = _where0(free, dbce), _where0(free, dbce_s)
        du = (1.0 - 2.0 * ys) * dpdz
        dfz = _where0(df != 0, df * du * bce)
        dz = wbal * (dfz + f * dbce)
        # autograd differentiates p_t = y p + (1 - y)(1 - p) as y g - (1 - y) g: two summands of
        # |y| g and |1 - y| g, whose difference 1 - 2y is all rounding near y = 1/2 (keras-torch
        # float64, y_true = y_pred = 0, gamma = 1, label_smoothing = 1 - 2**-53: y = 1/2 - 2**-54,
        # d/dy_pred = 2**-53 bce exactly; fl(y g) - g/2 gives 2**-50, 0.70x of it at g = 1.42 bce)
        dfz_s = _where0(df != 0, np.abs(df * bce) * (np.abs(ys) + np.abs(1.0 - ys)) * dpdz)
        dz_s = np.abs(wbal) * (dfz_s + f * dbce_s)
        if from_logits:
            # frameworks differentiate sigmoid as s (1 - s): 1 - s carries an absolute rounding error
            # of eps, which is all of it when s rounds near 1 (x = 26: relative error 4e-5 in float64)
            dz_s = dz_s + np.abs(wbal) * _where0(df != 0, np.abs(df * (1.0 - 2.0 * ys) * bce) * p)
        dfy = _where0(df != 0, df * (q - p) * bce)
        dy = dwbal * f * bce + wbal * (dfy + f * (lq - lp))
        # lq carries bce's rounding of log(1 - p) (q_err): the label gradient differences it with lp
        dy_s = abs(dwbal) * f * bce_scale + np.abs(wbal) * (np.abs(dfy) + f * (np.abs(lq) + np.abs(lp) + q_err))
        # 1 - p_t rounds to eps-sized errors (as in the value's scale), moving f by _focal_base_err;
        # for the labels this also covers autograd's p g - (1 - p) g for (q - p) g, which cancels near
        # p = 1/2: its rounding is eps |df| bce and bce <= |lq| + |lp| for labels in [0, 1]
        dy_s = dy_s + np.abs(wbal) * _focal_base_err(u, df, gamma, np.abs(lq) + np.abs(lp))
        dz_s = dz_s + np.abs(wbal) * _focal_base_err(u, df, gamma, dbce_s)
        if apply_class_balancing and ls != 0 and dwbal != 0:
            # as in the value's scale, the rounded smoothed label moves the balancing weight by
            # |dwbal| |ys| eps (keras-jax float32, alpha = 0, ls = 1e-7, y_true = 1: 1 - ys is
            # 5.96e-8 for 5e-8, d/dy_pred 1.19x the oracle's)
            dz_s = dz_s + abs(dwbal) * np.abs(ys) * (dfz_s + f * dbce_s)
            dy_s = dy_s + abs(dwbal) * np.abs(ys) * (np.abs(dfy) + f * (np.abs(lq) + np.abs(lp)))

    def vjp(g):
        with np.errstate(invalid="ignore"):
            return {"output": unbroadcast(g * dz, z.shape), "labels": unbroadcast(g * dy * (1.0 - ls), y.shape)}

    def gscale(g):
        with np.errstate(invalid="ignore"):
            return {"output": unbroadcast(g * dz_s, z.shape),
                    "labels": unbroadcast(g * dy_s * abs(1.0 - ls), y.shape)}

    kinks = {}
    if bounds is not None:
        if from_logits:
            lo, hi = bounds
            # also in p-space: sigmoid(z) rounded to the dtype can land exactly on a bound (sigmoid(16)
            # is 1 - 2**-23 in float32) and the clip then passes the gradient
            kinks = {"output": np.minimum.reduce([rel_gap(zb, _logit(lo)),
                                                  rel_gap(zb, _logit(hi)), _clip_gap(p, bounds)])}
        else:
            kinks = {"output": _clip_gap(zb, bounds)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def categorical_focal_cross_entropy(output, labels, *, from_logits: bool = False, gamma: float = 2.0, alpha=0.25,
                                    label_smoothing: float = 0.0, clip_eps=None, axis: int = -1,
                                    reduction: str = "none", **reduce_kw) -> Result:
    """Keras ``CategoricalFocalCrossentropy``: sum over ``axis`` of
    ``alpha * (1 - q)**gamma * (-y log q)``.

    keras/src/losses/losses.py ``categorical_focal_crossentropy``, in this order: labels
    ``y (1 - ls) + ls / C`` (C the size of the last axis); ``softmax(output, axis)`` if
    ``from_logits``; q = output / sum(output) (renormalised even after the softmax, an identity in
    exact arithmetic); q clipped to ``[eps, 1 - eps]`` (``clip_eps=1e-7``); the modulating factor
    uses the *clipped* q (unlike the binary focal loss). ``alpha`` is a scalar or a per-class list;
    Keras multiplies it in the output's layout, so it broadcasts against the trailing axes (the
    class axis when ``axis=-1``), as here. On the torch backend a list ``alpha`` becomes a float32
    tensor whatever floatx is (``convert_to_tensor`` of a Python list): pass the float32-rounded
    list to model it.

    Shapes: ``output``, ``labels`` the same shape; terms without the class axis. Gradients w.r.t.
    ``output`` (zero through an active clip) and ``labels``. Kinks: any q of the row at a clip bound.
    """
    z, y = f64(output, labels)
    shape = np.broadcast_shapes(z.shape, y.shape)
    ls = float(label_smoothing)
    ysf = np.broadcast_to(y, shape) * (1.0 - ls) + ls / float(shape[-1])
    alf = np.broadcast_to(f64(alpha), shape)
    axes = _axes(axis, len(shape))
    zl, yl, al = (_to_last(a, axes) for a in (np.broadcast_to(z, shape), ysf, alf))
    bounds = _clip_bounds(clip_eps)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if from_logits:
            m, log_s, q = _softmax_parts(zl)
            lq_raw = (zl - m) - log_s
            comp = _complement(q)
            s = None
        else:
            s = np.sum(zl, axis=-1, keepdims=True)
            q = zl / s
            comp = _complement(zl, s)
            lq_raw = _log_quotient(zl, s, comp)
        if bounds is None:
            free = np.ones(q.shape, dtype=bool)
            lq, cq = lq_raw, comp
        else:
            lo, hi = bounds
            below, above = q < lo, q > hi
            free = ~below & ~above
            lq = np.where(below, math.log(lo), np.where(above, math.log(hi), lq_raw))
            cq = np.where(below, 1.0 - lo, np.where(above, 1.0 - hi, comp))
        qc = q if bounds is None else np.clip(q, *bounds)
        live = yl != 0
        cce = _where0(live, -yl * lq)
        f, df = _focal_power(cq, gamma)
        terms = np.sum(al * f * cce, axis=-1)
        cce_scale = _where0(live, np.abs(yl) * (np.abs(lq) + 1.0))
        # 1 - q rounds to eps-sized errors, capped as in the binary loss: without the cap the scale
        # is inf at gamma = 2**-9, output [1, 1e-309] (unclipped) and reads as none
        scale = np.sum(np.abs(al) * (f * cce_scale + _focal_base_err(cq, df, gamma, cce)), axis=-1)
        # d/dqc of alpha f(1 - qc) (-y log qc): -alpha df cce - alpha f y / qc
        dq = _where0(free, -al * (_where0(df != 0, df * cce) + _where0(live, f * yl / qc)))
        dq_s = _where0(free, np.abs(al) * (_where0(df != 0, np.abs(df * cce)) + _where0(live, f * np.abs(yl) / qc)))
        # Keras' q = output / sum(output) (also after the softmax) is off by eps q, so 1 - q by eps q
        # absolute: all of its significance near q = 1. d(dq)/dq = alpha (d2f cce + 2 df y / q + f y / q**2)
        # times eps q is, beyond dq_s's relative terms, (2 + |gamma - 1|) |df| |y| eps (d2f cce q <=
        # |gamma - 1| df y as -q log q <= 1 - q). keras-jax float32, axis=0, gamma=1, y_pred column
        # [6.1031e-5, 1 - 2**-14] (all backends alike): the sum 1 - 3.7e-9 rounds to 1, 1 - q is 2**-14
        # for 6.1031e-5 and d/dy_pred is 6.1e-5 relative off, 255 eps of a scale without this term
        dq_s = dq_s + _where0(free, np.abs(al) * _focal_base_err(cq, df, gamma, (2.0 + abs(gamma - 1.0)) * np.abs(yl)))
        dy = -al * f * lq
        # the same rounding of 1 - q, moving f, as in the value's scale
        dy_s = np.abs(al) * (f * (np.abs(lq) + 1.0) + _focal_base_err(cq, df, gamma, lq))

    def back(gq, sc=False):
        """VJP (or its summand magnitudes) of q = output / sum(output), or of q = softmax(output)."""
        tot = np.sum(gq * q, axis=-1, keepdims=True)
        gq = gq + tot if sc else gq - tot
        return q * gq if from_logits else gq / s

    def vjp(g):
        g = np.asarray(g)[..., None]
        with np.errstate(invalid="ignore"):
            gz = back(g * dq)
            gy = g * dy * (1.0 - ls)
        return {"output": unbroadcast(_from_last(gz, shape, axes), z.shape),
                "labels": unbroadcast(_from_last(gy, shape, axes), y.shape)}

    def gscale(g):
        g = np.abs(np.asarray(g))[..., None]
        with np.errstate(invalid="ignore"):
            gz = back(g * dq_s, sc=True)
            gy = g * dy_s * abs(1.0 - ls)
        return {"output": unbroadcast(_from_last(gz, shape, axes), z.shape),
                "labels": unbroadcast(_from_last(gy, shape, axes), y.shape)}

    kinks = {}
    if bounds is not None:
        gap = np.broadcast_to(np.min(_clip_gap(q, bounds), axis=-1, keepdims=True), q.shape)
        kinks = {"output": _from_last(gap, shape, axes)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def sigmoid_focal_loss(logits, labels, *, alpha=None, gamma: float = 2.0, reduction: str = "none",
                       **reduce_kw) -> Result:
    """optax ``sigmoid_focal_loss``: ``alpha_t * (1 - p_t)**gamma * bce(x, y)`` elementwise, with
    ``1 - p_t = (1 - y) sigmoid(x) + y sigmoid(-x)`` and ``alpha_t = alpha y + (1 - alpha)(1 - y)``
    (no weighting when ``alpha`` is None).

    optax/losses/_classification.py computes log(1 - p_t) with a weighted logsumexp of the two
    log-sigmoids (stable for extreme logits and gamma < 2, soft labels in [0, 1]); the reference
    does the same. Shapes: ``logits`` and ``labels`` broadcast together. Gradients w.r.t. both.

    optax's label gradient is wrong at labels exactly 0 or 1: ``jax.scipy.special.logsumexp``
    replaces ``a`` by -inf where ``b == 0`` (jax/_src/ops/special.py), which drops d/db there, i.e.
    the ``sigmoid(-x)`` (y = 0) or ``sigmoid(x)`` (y = 1) part of d(1 - p_t)/dy. At x = -2, y = 0,
    gamma = 2 optax gives 0.0248, the derivative is 0.0515 (finite differences agree); the reference
    gives the derivative. The value and the logits gradient agree with optax to 1e-15.
    """
    x, y = f64(logits, labels)
    shape = np.broadcast_shapes(x.shape, y.shape)
    xb, yb = np.broadcast_to(x, shape), np.broadcast_to(y, shape)
    gamma = float(gamma)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = _where0(yb != 0, yb * softplus(-xb))
        b = _where0(yb != 1, (1.0 - yb) * softplus(xb))
        ce = a + b
        ce_scale = _bce_logits_scale(xb, yb)
        lsx, lsnx = log_sigmoid(xb), log_sigmoid(-xb)
        # log(1 - p_t) = log((1 - y) e^lsx + y e^lsnx), shifted by the larger exponent; defined
        # (and smooth) for labels slightly outside [0, 1] too, so hard labels have a derivative
        big = np.maximum(lsx, lsnx)
        log_u = big + np.log((1.0 - yb) * np.exp(lsx - big) + yb * np.exp(lsnx - big))
        f = np.exp(gamma * log_u)
        # gamma u**(gamma-1) sigmoid(x) sigmoid(-x), in log space
        dfx = 0.0 if gamma == 0 else gamma * np.exp((gamma - 1.0) * log_u + lsx + lsnx)
        df = 0.0 if gamma == 0 else gamma * np.exp((gamma - 1.0) * log_u)
        wa = np.ones(shape) if alpha is None else alpha * yb + (1.0 - alpha) * (1.0 - yb)
        dwa = 0.0 if alpha is None else 2.0 * alpha - 1.0
        terms = wa * f * ce
        scale = np.abs(wa) * (f * ce_scale + np.abs(ce) * (abs(gamma) * f * (np.abs(log_u) + 1.0) + np.abs(df)))
        sx, snx = np.exp(lsx), np.exp(lsnx)
        dcex = _where0(yb != 0, -yb * snx) + _where0(yb != 1, (1.0 - yb) * sx)
        dcex_s = np.abs(yb) * snx + np.abs(1.0 - yb) * sx
        dfx_ce = _where0(ce != 0, (1.0 - 2.0 * yb) * dfx * ce)
        dx = wa * (dfx_ce + f * dcex)
        # f, dfx and df are exps of gamma log_u, of (gamma - 1) log_u + lsx + lsnx and of
        # (gamma - 1) log_u: each exponent's absolute rounding (eps times its summands) is the
        # factor's relative error, 264 eps at x = -88 and gamma = 3 (soak seed 7)
        amp_f = 1.0 + abs(gamma) * (np.abs(log_u) + 1.0)
        amp_df = 1.0 + abs(gamma - 1.0) * (np.abs(log_u) + 1.0)
        dx_s = np.abs(wa) * (_where0(dfx_ce != 0, np.abs(dfx_ce) * (amp_df + np.abs(lsx) + np.abs(lsnx)))
                             + _where0(f != 0, f * dcex_s * amp_f))
        dfy_ce = _where0(ce != 0, df * (snx - sx) * ce)
        fx = _where0(f != 0, -f * xb)
        dy = dwa * f * ce + wa * (dfy_ce + fx)
        f_amp = _where0(f != 0, f * amp_f)
        dy_s = abs(dwa) * f_amp * np.abs(ce) + np.abs(wa) * (_where0(dfy_ce != 0, np.abs(dfy_ce) * amp_df)
                                                             + f_amp * (softplus(xb) + softplus(-xb)))

    def vjp(g):
        with np.errstate(invalid="ignore"):
            return {"logits": unbroadcast(g * dx, x.shape), "labels": unbroadcast(g * dy, y.shape)}

    def gscale(g):
        with np.errstate(invalid="ignore"):
            return {"logits": unbroadcast(g * dx_s, x.shape), "labels": unbroadcast(g * dy_s, y.shape)}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def categorical_generalized_cross_entropy(y_true, y_pred, *, q: float, reduction: str = "none",
                                          **reduce_kw) -> Result:
    """Keras ``CategoricalGeneralizedCrossEntropy(q)`` / ``categorical_generalized_cross_entropy``
    (Zhang & Sabuncu 2018): (1 - p_y^q) / q with p_y the predicted probability of the integer label.

    ``y_true`` int (N,) or (N, 1); ``y_pred`` probabilities (N, C); one value per sample. Keras
    neither clips nor renormalises ``y_pred`` (keras/src/losses/losses.py). The gradient
    -p_y^(q - 1) is infinite at p_y == 0 for q < 1. ``y_true`` gets no gradient.
    """
    p = f64(y_pred)
    labels = np.asarray(y_true).astype(np.int64)
    if labels.ndim == p.ndim:
        labels = labels[..., 0]
    oh = (labels[..., None] == np.arange(p.shape[-1])).astype(np.float64)
    py = np.sum(p * oh, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pq = py ** q
        terms = (1.0 - pq) / q
        dpy = -(py ** (q - 1.0))

    def vjp(g):
        return {"y_pred": (g * dpy)[..., None] * oh}

    return finish(terms, (1.0 + pq) / q, vjp, reduction, **reduce_kw)
