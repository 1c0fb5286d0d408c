"""Overlap losses for segmentation: Dice and Tversky (Keras), and optax's Dice family.

With ``TP = sum(p t)``, ``FP = sum(p (1 - t))``, ``FN = sum((1 - p) t)`` over the reduced axes, the
Tversky loss is ``1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth + epsilon)``; alpha weighs the
false positives and beta the false negatives (Salehi et al. 2017); alpha = beta = 1/2 is the Dice loss
``1 - (2 TP + 2 smooth) / (sum p + sum t + 2 smooth + 2 epsilon)``. ``smooth`` is a documented
hyperparameter (optax); ``epsilon`` is a guard against 0/0 added to the denominator only (Keras'
``backend.epsilon()``). With both 0 the loss is undefined (NaN) where the denominator is 0.

Each framework forms the sums differently (Keras' Dice ``sum p + sum t``, its Tversky
``sum(p (1 - t))``, optax ``sum p - TP``): the error scale counts every such summand. No kinks.

Sources read: keras/src/losses/losses.py ``dice``, ``tversky`` (Keras 3.15) and
optax/losses/_segmentation.py ``dice_loss``, ``binary_dice_loss``, ``multiclass_generalized_dice_loss``
(optax 0.2.8).
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, sigmoid, softmax


def _norm_axes(axis, ndim) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted({int(a) % ndim for a in axes})) if ndim else ()


def _overlap(p, t, alpha, beta, smooth, epsilon, axes):
    """The Tversky loss of probabilities ``p`` and targets ``t`` (same shape) summed over ``axes``.

    Returns ``(terms, scale, back, back_scale)``: ``back(g)`` maps a cotangent of ``terms`` to
    ``(dp, dt)``; ``back_scale(|g|)`` to the magnitudes of their summands."""
    pt = p * t
    s = lambda a: np.sum(a, axis=axes, keepdims=True)  # noqa: E731
    tp, fp, fn = s(pt), s(p - pt), s(t - pt)
    num = tp + smooth
    den = tp + alpha * fp + beta * fn + smooth + epsilon
    ap, at, apt = s(np.abs(p)), s(np.abs(t)), s(np.abs(pt))
    num_s = apt + abs(smooth)
    den_s = apt + abs(alpha) * (ap + apt) + abs(beta) * (at + apt) + abs(smooth) + abs(epsilon)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / den
        terms = 1.0 - r
        scale = 1.0 + (num_s + np.abs(r) * den_s) / np.abs(den)
    dden_p = t + alpha * (1.0 - t) - beta * t
    dden_t = p - alpha * p + beta * (1.0 - p)
    dden_p_s = np.abs(t) + abs(alpha) * (1.0 + np.abs(t)) + abs(beta) * np.abs(t)
    dden_t_s = np.abs(p) + abs(alpha) * np.abs(p) + abs(beta) * (1.0 + np.abs(p))

    def back(g):
        g = np.reshape(g, tp.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            gn, gd = -g / den, g * r / den
        return gn * t + gd * dden_p, gn * p + gd * dden_t

    def back_scale(g):
        g = np.reshape(np.abs(g), tp.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            gn, gd = g / np.abs(den), g * np.abs(r) / np.abs(den)
        return gn * np.abs(t) + gd * dden_p_s, gn * np.abs(p) + gd * dden_t_s

    squeeze = lambda a: np.squeeze(a, axis=axes)  # noqa: E731
    return squeeze(terms), squeeze(scale), back, back_scale


def tversky(predictions, targets, *, alpha: float = 0.5, beta: float = 0.5, smooth: float = 0.0,
            epsilon: float = 0.0, axis=None, reduction: str = "none", **reduce_kw) -> Result:
    """``1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth + epsilon)`` summed over ``axis``.

    Args:
      predictions: probabilities p, any shape.
      targets: targets t (0/1 masks or soft), the same shape.
      axis: int, tuple or None (every axis: one scalar).

    Returns the losses with ``axis`` removed, then ``reduction``.
    Models Keras ``tversky(y_true, y_pred, alpha, beta, axis)`` as documented (alpha on the false
    positives) with ``epsilon=keras.config.epsilon()``. Keras 3.15 computes it with the roles of
    alpha and beta exchanged (its ``fp`` is sum(y_true (1 - y_pred)), the false negatives): Keras'
    result is ``tversky(alpha=beta, beta=alpha)``.
    """
    p, t = f64(predictions, targets)
    p, t = np.broadcast_arrays(p, t)
    terms, scale, back, back_scale = _overlap(p, t, alpha, beta, smooth, epsilon, _norm_axes(axis, p.ndim))

    def vjp(g):
        dp, dt = back(g)
        return {"predictions": dp, "targets": dt}

    def gscale(g):
        dp, dt = back_scale(g)
        return {"predictions": dp, "targets": dt}

    return finish(terms, scale, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def dice(predictions, targets, *, smooth: float = 0.0, epsilon: float = 0.0, axis=None, reduction: str = "none",
         **reduce_kw) -> Result:
    """``1 - (2 sum(p t) + smooth) / (sum p + sum t + smooth + epsilon)`` summed over ``axis``: the
    Tversky loss with alpha = beta = 1/2 (smooth and epsilon halved).

    Models Keras ``dice(y_true, y_pred, axis)`` with ``epsilon=keras.config.epsilon()``; ``axis=None``
    reduces every axis, batch included, to one scalar.

    Shapes as :func:`tversky`: ``predictions`` and ``targets`` broadcast together (Keras: one shape);
    returns their shape with the ``axis`` axes removed (``None``: a scalar), then ``reduction``.
    """
    return tversky(predictions, targets, alpha=0.5, beta=0.5, smooth=0.5 * smooth, epsilon=0.5 * epsilon,
                   axis=axis, reduction=reduction, **reduce_kw)


# ---- optax -------------------------------------------------------------------------------------------

def _activate(x, kind):
    """``(probabilities, back, back_scale)`` for kind "softmax" (last axis), "sigmoid" or None."""
    if kind is None:
        return x, (lambda g: g), (lambda g: g)
    if kind == "sigmoid":
        s = sigmoid(x)
        d = s * sigmoid(-x)
        # jax differentiates the sigmoid as s (1 - s): where s rounds near 1 the subtraction leaves
        # an absolute error of eps, so the summands of 1 - s (1 and s) set the error scale
        return s, (lambda g: g * d), (lambda g: np.abs(g) * s * (1.0 + s))
    s = softmax(x, axis=-1)
    return (s, lambda g: s * (g - np.sum(g * s, axis=-1, keepdims=True)),
            lambda g: s * (np.abs(g) + np.sum(np.abs(g) * s, axis=-1, keepdims=True)))


def _dice_layout(x, t):
    """optax dice_loss's layout: the input with one dimension fewer gets the class axis."""
    if x.ndim == t.ndim - 1:
        x = x[..., None]
    if t.ndim == x.ndim - 1:
        t = t[..., None]
    if x.shape != t.shape:
        raise ValueError(f"shapes differ: {x.shape} and {t.shape}")
    return x, t


def _activation(x, apply_softmax):
    """optax dice_loss's activation for class-last logits: the sigmoid for one class, else the softmax."""
    return None if not apply_softmax else ("sigmoid" if x.shape[-1] == 1 else "softmax")


def _needs_binary_class_axis(x, t) -> bool:
    """binary_dice_loss adds a class axis of 1 to inputs of equal rank whose last axis is not 1."""
    return x.ndim == t.ndim and (x.ndim == 0 or x.shape[-1] != 1)


def optax_dice_probabilities(predictions, targets, *, apply_softmax: bool, binary: bool = False):
    """``(probabilities, targets)``, both ``[..., C]``, as optax's ``dice_loss`` (``binary``:
    ``binary_dice_loss``, where ``apply_softmax`` is its ``apply_sigmoid``) compares them.

    Shapes: ``predictions`` and ``targets`` as :func:`dice_loss` takes them (both ``[..., C]``, or one
    ``[...]`` against the other's ``[..., 1]``); with ``binary``, inputs of equal rank whose last axis
    is not 1 both get a class axis of 1 first.
    """
    x, t = f64(predictions, targets)
    if binary and _needs_binary_class_axis(x, t):
        x, t = x[..., None], t[..., None]
    x, t = _dice_layout(x, t)
    return _activate(x, _activation(x, apply_softmax))[0], t


def _class_dice(predictions, targets, alpha, beta, smooth, apply_softmax, axis):
    """optax's layout and per-class losses: returns ``(terms [..., C], scale, back, back_scale)``
    where ``back(g [..., C])`` gives the gradients in the callers' shapes."""
    x, t = f64(predictions, targets)
    x0, t0 = x.shape, t.shape
    x, t = _dice_layout(x, t)
    p, act_back, act_back_scale = _activate(x, _activation(x, apply_softmax))
    axes = tuple(range(1, p.ndim - 1)) if axis is None else _norm_axes(axis, p.ndim)
    if p.ndim - 1 in axes:
        raise ValueError("the class axis (the last) cannot be summed over")
    terms, scale, back, back_scale = _overlap(p, t, alpha, beta, smooth, 0.0, axes)

    def grads(g):
        dp, dt = back(g)
        return act_back(dp).reshape(x0), dt.reshape(t0)

    def grads_scale(g):
        dp, dt = back_scale(g)
        return act_back_scale(dp).reshape(x0), dt.reshape(t0)

    return terms, scale, grads, grads_scale


def _reduce_classes(terms, scale, how):
    if how == "mean":
        return terms.mean(axis=-1), scale.mean(axis=-1), lambda g: np.repeat(
            np.expand_dims(g, -1) / terms.shape[-1], terms.shape[-1], axis=-1)
    if how == "sum":
        return terms.sum(axis=-1), scale.sum(axis=-1), lambda g: np.repeat(
            np.expand_dims(g, -1), terms.shape[-1], axis=-1)
    if how == "none":
        return terms, scale, lambda g: np.asarray(g, dtype=np.float64)
    raise ValueError(f"unsupported class reduction {how!r}")


def dice_loss(predictions, targets, *, class_weights=None, smooth: float = 0.0, alpha: float = 0.5,
              beta: float = 0.5, apply_softmax: bool = True, class_reduction: str = "mean",
              ignore_background: bool = False, axis=None, reduction: str = "none", **reduce_kw) -> Result:
    """optax ``dice_loss``: the Tversky loss per class, weighted, then reduced over the classes.

    Args:
      predictions: logits of shape ``[..., C]`` (probabilities with ``apply_softmax=False``), or
        ``[...]`` against targets ``[..., 1]`` (a class axis of 1 is appended, and the same for targets).
      targets: ``[..., C]`` one-hot/soft targets (or ``[...]`` against predictions ``[..., 1]``).
      class_weights: optional ``(C,)`` weights multiplying the per-class losses.
      smooth, alpha, beta: as in :func:`tversky` (optax: smooth 1, alpha = beta = 0.5).
      apply_softmax: softmax over the last axis first, or the sigmoid when ``C == 1``.
      class_reduction: optax's ``reduction``: "mean", "sum" over the classes, or "none".
      ignore_background: drop class 0 (after the weights) when ``C > 1``.
      axis: the axes summed over; None: every axis but the first and the last.
      reduction, reduce_kw: a further :func:`reference._core.reduce` (default none).

    Returns ``[...]`` without the summed axes (and without the class axis unless
    ``class_reduction="none"``). With ``apply_softmax=False`` optax rejects predictions whose class
    rows do not sum to 1 (``jnp.allclose``, rtol 1e-5); the reference does not check.
    """
    terms, scale, grads, grads_scale = _class_dice(predictions, targets, alpha, beta, smooth, apply_softmax, axis)
    c = terms.shape[-1]
    w = np.ones(c) if class_weights is None else f64(class_weights)
    lo = 1 if ignore_background and c > 1 else 0
    kept, kept_s = (terms * w)[..., lo:], (scale * np.abs(w))[..., lo:]
    value, value_s, back_cls = _reduce_classes(kept, kept_s, class_reduction)

    def pad(g):
        full = np.zeros(terms.shape)
        full[..., lo:] = np.broadcast_to(g, kept.shape)
        return full * w

    def vjp(g):
        gx, gt = grads(pad(back_cls(g)))
        return {"predictions": gx, "targets": gt}

    def gscale(g):
        gx, gt = grads_scale(np.abs(pad(back_cls(np.abs(g)))))
        return {"predictions": gx, "targets": gt}

    return finish(value, value_s, vjp, reduction, local_grad_scale=gscale, **reduce_kw)


def binary_dice_loss(predictions, targets, *, smooth: float = 0.0, apply_sigmoid: bool = True,
                     reduction: str = "none", **reduce_kw) -> Result:
    """optax ``binary_dice_loss``: inputs of equal rank whose last axis is not 1 get a class axis
    of 1; then :func:`dice_loss` with the sigmoid (``apply_sigmoid``) and the class mean.

    optax 0.2.8 passes ``apply_sigmoid=False`` on as ``apply_softmax=False``, whose check that the
    class rows sum to 1 rejects every probability but 1 (a class axis of one): the reference
    computes the documented loss.

    Shapes: ``predictions`` (logits; probabilities with ``apply_sigmoid=False``) and ``targets``
    ``[N, ...]`` of one shape (or one ``[N, ...]`` against the other's ``[N, ..., 1]``, as
    :func:`dice_loss`). Returns ``[N]`` for ``reduction="none"`` (the axes between the first and the
    class axis are summed), a scalar otherwise.
    """
    x, t = f64(predictions, targets)
    if _needs_binary_class_axis(x, t):
        r = dice_loss(x[..., None], t[..., None], smooth=smooth, apply_softmax=apply_sigmoid,
                      class_reduction="mean", reduction=reduction, **reduce_kw)

        def vjp(g):
            d = r.vjp(g)
            return {"predictions": d["predictions"].reshape(x.shape), "targets": d["targets"].reshape(t.shape)}

        def gscale(g):
            d = r.grad_scale(g)
            return {"predictions": d["predictions"].reshape(x.shape), "targets": d["targets"].reshape(t.shape)}

        return Result(r.value, r.scale, vjp, grad_scale=gscale)
    return dice_loss(x, t, smooth=smooth, apply_softmax=apply_sigmoid, class_reduction="mean",
                     reduction=reduction, **reduce_kw)


def generalized_dice_loss(predictions, targets, *, smooth: float = 0.0, apply_softmax: bool = True,
                          ignore_background: bool = False, weight_epsilon: float = 0.0) -> Result:
    """optax ``multiclass_generalized_dice_loss`` (Sudre et al. 2017): :func:`dice_loss` per class
    (alpha = beta = 1/2, reduced over the spatial axes) with class weights ``u / sum(u) * C``,
    ``u_c = 1 / (f_c^2 + weight_epsilon)`` for the class frequencies ``f_c = sum(targets[..., c])``
    over every other axis, then the mean over every remaining element (batch and kept classes): a
    scalar. The weights depend on the targets and are differentiated (as autodiff does).

    optax uses ``weight_epsilon = 1e-7``; 0 is the exact 1/f^2, infinite for an absent class.
    Predictions and targets have the same shape ``[..., C]``.
    """
    x, t = f64(predictions, targets)
    if x.shape != t.shape:
        raise ValueError(f"shapes differ: {x.shape} and {t.shape}")
    terms, scale, grads, grads_scale = _class_dice(x, t, 0.5, 0.5, smooth, apply_softmax, None)
    c = terms.shape[-1]
    f = t.reshape(-1, c).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 1.0 / (f * f + weight_epsilon)
        ssum = u.sum()
        w = u / ssum * c
    lo = 1 if ignore_background and c > 1 else 0
    kept, kept_s = (terms * w)[..., lo:], (scale * np.abs(w))[..., lo:]
    m = kept.size
    value, value_s = np.asarray(kept.mean()), np.asarray(kept_s.mean())
    mask = np.zeros(c)
    mask[lo:] = 1.0

    def vjp(cot):
        cot = float(np.asarray(cot))
        gd = np.broadcast_to(cot / m * mask, terms.shape)
        gx, gt = grads(gd * w)
        gw = np.sum(gd * terms, axis=tuple(range(terms.ndim - 1)))             # dL/dw_c
        with np.errstate(divide="ignore", invalid="ignore"):
            gu = c / ssum * (gw - np.sum(gw * w) / c)                           # dL/du_c
            gf = gu * (-2.0 * f * u * u)                                        # dL/df_c
        return {"predictions": gx, "targets": gt + gf}

    def gscale(cot):
        cot = abs(float(np.asarray(cot)))
        gd = np.broadcast_to(cot / m * mask, terms.shape)
        gx, gt = grads_scale(gd * np.abs(w))
        gw = np.sum(gd * np.abs(terms), axis=tuple(range(terms.ndim - 1)))
        with np.errstate(divide="ignore", invalid="ignore"):
            gu = c / ssum * (gw + np.sum(gw * w) / c)
            gf = gu * (2.0 * np.abs(f) * u * u)
        return {"predictions": gx, "targets": gt + gf}

    return Result(value, value_s, vjp, grad_scale=gscale)
