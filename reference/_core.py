"""Shared machinery of the oracle: the result type, reductions and stable primitives.

Every reference function in this package returns a :class:`Result`:

* ``value`` -- the loss exactly as the modelled framework returns it (after its reduction);
* ``scale`` -- same shape as ``value``: the magnitude of the summands behind each output element.
  A correct implementation in a dtype with machine epsilon ``eps`` is expected to land within a
  small multiple of ``eps * scale`` of ``value``; the harness measures error in these units;
* ``vjp(cotangent)`` -- the analytic gradient, as a vector-Jacobian product: for a cotangent of
  ``value``'s shape it returns ``{input name: d<cotangent, value>/d input}`` for every
  differentiable input, each with that input's shape;
* ``kink_gap`` -- for inputs that have non-differentiable points, the relative distance of each
  element to the nearest one (0 at a kink); gradient checks treat elements close to a kink as a
  subgradient choice, not a bug;
* ``grad_scale`` -- optional, like ``vjp`` but returning the magnitude of the summands of each
  gradient element, for losses whose gradient is a difference of nearly equal terms
  (``softmax - onehot``). Without it the gradient's own magnitude is used.

Only NumPy and the standard library may be imported anywhere in this package.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

Array = np.ndarray
Grads = dict[str, Array]

TINY = np.finfo(np.float64).tiny

#: Reductions understood by :func:`reduce`.
#: ``sum_over_batch_size`` is Keras' name for the mean over every element of the per-sample
#: losses; ``mean_with_sample_weight`` divides the weighted sum by the sum of the weights;
#: ``batchmean`` divides the sum by the size of the first axis (torch KLDivLoss).
REDUCTIONS = ("none", "sum", "mean", "batchmean", "sum_over_batch_size", "mean_with_sample_weight")


@dataclass(frozen=True)
class Result:
    value: Array
    scale: Array
    vjp: Callable[[Array], Grads]
    kink_gap: Mapping[str, Array] = field(default_factory=dict)
    grad_scale: Callable[[Array], Grads] | None = None

    def grad(self, cotangent: Array | None = None) -> Grads:
        """Gradient of ``sum(cotangent * value)``; the cotangent defaults to ones."""
        return self.vjp(self._cotangent(cotangent))

    def grad_magnitude(self, cotangent: Array | None = None) -> Grads:
        """Magnitude of the gradient's summands: the scale of the gradient error model."""
        cot = self._cotangent(cotangent)
        if self.grad_scale is not None:
            return {k: np.abs(v) for k, v in self.grad_scale(np.abs(cot)).items()}
        return {k: np.abs(v) for k, v in self.vjp(cot).items()}

    def kinks(self, rtol: float, shapes: Mapping[str, tuple] | None = None) -> dict[str, Array]:
        """Boolean masks of the elements within ``rtol`` (relative) of a non-differentiable point.

        With ``shapes``, a mask computed on broadcast operands is folded back to each input's shape
        (an input element is near a kink if any element it was broadcast to is)."""
        out = {}
        for k, gap in self.kink_gap.items():
            mask = np.asarray(gap) <= rtol
            if shapes is not None and k in shapes and mask.shape != tuple(shapes[k]):
                mask = unbroadcast(mask.astype(np.float64), tuple(shapes[k])) > 0
            out[k] = mask
        return out

    def _cotangent(self, cotangent: Array | None) -> Array:
        if cotangent is None:
            return np.ones_like(self.value)
        return np.broadcast_to(np.asarray(cotangent, dtype=np.float64), np.shape(self.value))


def f64(*arrays):
    """Cast every argument to a float64 ndarray (one argument: returns it, not a tuple)."""
    out = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    return out[0] if len(out) == 1 else out


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting an input of ``shape``."""
    grad = np.asarray(grad)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(axis=i, keepdims=True)
    return grad.reshape(shape)


def reduce(
    terms: Array,
    scale: Array | None = None,
    reduction: str = "mean",
    *,
    axis: int | None = None,
    weights: Array | None = None,
    divisor: float | Array | None = None,
    reduce_scalars: bool = True,
):
    """Reduce unreduced loss ``terms`` the way a framework does.

    Order of operations (the order every framework here uses):
    1. ``axis``: mean over this axis first (Keras' per-sample ``mean(..., axis=-1)``);
    2. ``weights``: multiply by constant weights broadcast to the per-sample losses;
    3. ``reduction``: one of :data:`REDUCTIONS`; ``divisor`` overrides the denominator of a mean
       (torch's weighted mean divides by the sum of the weights of the non-ignored targets).
       A zero divisor gives 0, as Keras' ``divide_no_nan`` does.
       ``reduce_scalars=False``: 0-d per-sample losses are returned unreduced (Keras'
       ``reduce_values`` returns them as they are, even for ``mean_with_sample_weight``).

    Returns ``(value, value_scale, back)``; ``back(cotangent)`` maps a cotangent of ``value`` to
    the cotangent of ``terms``.
    """
    terms = np.asarray(terms, dtype=np.float64)
    scale = np.abs(terms) if scale is None else np.asarray(scale, dtype=np.float64)
    if scale.shape == terms.shape and not np.all(np.isfinite(scale)):
        # a finite term with an infinite or NaN scale (a saturated term of infinite inputs, or
        # 0 * inf in its magnitude) is exact, as value_error reads it; summed, it would make the
        # reduction's scale NaN or inf and the reduced value exact too
        scale = np.where(np.isfinite(terms) & ~np.isfinite(scale), 0.0, scale)
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    per_sample, per_scale, n_axis = terms, scale, 1
    if axis is not None:
        n_axis = terms.shape[axis]
        per_sample, per_scale = terms.mean(axis=axis), scale.mean(axis=axis)
    w = None
    if weights is not None:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), per_sample.shape)
        per_sample, per_scale = per_sample * w, per_scale * np.abs(w)

    if reduction == "none" or (not reduce_scalars and per_sample.ndim == 0):
        value, value_scale, denom = per_sample, per_scale, None
    else:
        if divisor is not None:
            denom = float(np.asarray(divisor))
        elif reduction == "sum":
            denom = 1.0
        elif reduction == "batchmean":
            denom = float(per_sample.shape[0]) if per_sample.ndim else 1.0
        elif reduction == "mean_with_sample_weight" and weights is not None:
            denom = float(np.sum(weights))
        else:
            denom = float(per_sample.size)
        inv = 0.0 if denom == 0 else 1.0 / denom
        value = np.asarray(per_sample.sum() * inv)
        value_scale = np.asarray(per_scale.sum() * abs(inv))

    def back(cot: Array) -> Array:
        cot = np.asarray(cot, dtype=np.float64)
        if denom is None:
            g = np.broadcast_to(cot, per_sample.shape).astype(np.float64)
        else:
            g = np.full(per_sample.shape, float(cot) * inv)
        if w is not None:
            g = g * w
        if axis is not None:
            g = np.broadcast_to(np.expand_dims(g, axis) / n_axis, terms.shape)
        return np.asarray(g, dtype=np.float64)

    return value, value_scale, back


def finish(terms, scale, local_vjp, reduction="mean", *, kink_gap=None, local_grad_scale=None, **reduce_kw):
    """Reduce ``terms`` and wrap the result.

    ``local_vjp(g_terms)`` maps a cotangent of the unreduced terms to the input gradients;
    ``local_grad_scale(g_terms)`` (optional) gives the magnitude of their summands.
    """
    value, value_scale, back = reduce(terms, scale, reduction, **reduce_kw)
    grad_scale = None
    if local_grad_scale is not None:
        grad_scale = lambda cot: local_grad_scale(np.abs(back(cot)))  # noqa: E731
    return Result(
        value=np.asarray(value),
        scale=np.asarray(value_scale),
        vjp=lambda cot: local_vjp(back(cot)),
        kink_gap=kink_gap or {},
        grad_scale=grad_scale,
    )


def rel_gap(a, b=0.0) -> Array:
    """Relative distance between ``a`` and ``b``: 0 where they are equal, about 1 when far apart."""
    a, b = f64(a, b)
    return np.abs(a - b) / (np.abs(a) + np.abs(b) + 1.0)


# ---- numerically stable primitives -------------------------------------------------------------

def softplus(x):
    """log(1 + exp(x)) without overflow."""
    x = f64(x)
    return np.logaddexp(0.0, x)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x)."""
    return -softplus(-f64(x))


def sigmoid(x):
    x = f64(x)
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def max_shift(x, axis=-1, where=None):
    """``x`` in float64 with the entries outside ``where`` at -inf, and its max along ``axis`` (kept;
    0 where the max is not finite): the shift of the stable logsumexp, log_softmax and softmax."""
    x = f64(x)
    masked = x if where is None else np.where(where, x, -np.inf)
    m = np.max(masked, axis=axis, keepdims=True)
    return masked, np.where(np.isfinite(m), m, 0.0)


def logsumexp(x, axis=-1, keepdims=False, where=None):
    """log(sum(exp(x))) along ``axis``, stable for large |x| and for -inf entries."""
    masked, m = max_shift(x, axis, where)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(masked - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x, axis=-1, where=None):
    """(x - max) - log(sum(exp(x - max))) along ``axis`` (the sum over ``where`` only), as
    jax.nn.log_softmax and torch compute it. Not x - logsumexp(x): logsumexp rounds log(sum) + max to
    the ulp of max, 1.8e-12 at |x| = 1e4 (log_softmax([-1e4, -1e4]) was 1,131 eps from -log 2)."""
    x = f64(x)
    masked, m = max_shift(x, axis, where)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x - m) - np.log(np.sum(np.exp(masked - m), axis=axis, keepdims=True))


def softmax(x, axis=-1, where=None):
    """exp(x - max) / sum(exp(x - max)) along ``axis`` (0 where ``where`` is False).

    Not exp(log_softmax(x)): that rounds log(sum) + max to the ulp of max (1.8e-12 at |x| = 1e4),
    a relative error of thousands of eps in every probability (softmax([-1e4, -1e4]) was
    0.5 (1 - 8.7e-14))."""
    masked, m = max_shift(x, axis, where)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(masked - m)
        out = e / np.sum(e, axis=axis, keepdims=True)
    return out if where is None else np.where(where, out, 0.0)


def xlogy(x, y):
    """x * log(y), with 0 where x == 0 (the convention of every cross-entropy here)."""
    x, y = f64(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def xlogx(x):
    """x * log(x) with 0 at x == 0 (entropy terms)."""
    return xlogy(x, x)


def one_hot(labels, num_classes: int, axis: int = -1) -> Array:
    labels = np.asarray(labels)
    out = (labels[..., None] == np.arange(num_classes)).astype(np.float64)
    return np.moveaxis(out, -1, axis) if axis != -1 else out
