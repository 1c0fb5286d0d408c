"""The custom losses of the seed documents (user articles in /work/shared/seeds), as float64
references with analytic gradients.

Each seed loss returns one scalar for the whole batch: with ``reduction="none"`` (the default) the
reference returns that scalar as a 0-d array, the function's own natural output. Framework
wrappers applied on top (Keras' ``sum_over_batch_size`` of a scalar is the scalar itself) go
through the usual reduction keywords of :func:`reference._core.reduce`.

Constant tensors of a seed loss (masks, weights, the adjacency matrix) are keyword arguments and
have no gradient; every float tensor the seed differentiates through has one.
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, rel_gap, unbroadcast
from .regression import huber


def _weighted_mean_square(p, y, w, names, reduction, reduce_kw) -> Result:
    """mean(w (p - y)^2) over the broadcast shape of p, y and w; gradients for p and y."""
    pb, yb, wb = np.broadcast_arrays(p, y, w)
    d = pb - yb
    n = d.size
    e = wb * d * d
    terms = np.asarray(e.sum() / n)
    scale = np.asarray(np.abs(e).sum() / n)

    def vjp(g):
        gp = float(g) * 2.0 * wb * d / n
        return {names[0]: unbroadcast(gp, p.shape), names[1]: unbroadcast(-gp, y.shape)}

    return finish(terms, scale, vjp, reduction, **reduce_kw)


def importance_weighted_mse(predictions, labels, mask, *, reduction: str = "none", **reduce_kw) -> Result:
    """mean(mask * (p - y)^2): seed 002 ``WeightedMSELoss`` (torch module holding a constant float
    ``importance_mask``), ``torch.mean(((predictions - labels) ** 2) * importance_mask)``.

    Args:
      predictions, labels: same shape (torch broadcasting applies).
      mask: constant float weights, the predictions' shape or broadcastable to it (no gradient).

    Returns a 0-d array: the mean over the broadcast shape of all three.
    """
    p, y, w = f64(predictions, labels, mask)
    return _weighted_mean_square(p, y, w, ("predictions", "labels"), reduction, reduce_kw)


def sample_weighted_mse(predictions, labels, weights, *, reduction: str = "none", **reduce_kw) -> Result:
    """mean(w.view(-1, 1) * (p - y)^2): seed 002 ``DynamicWeightedLoss``.

    The seed raises ``ValueError`` unless ``predictions.shape[0] == weights.shape[0]``, then
    multiplies the squared error by the weights reshaped to a column (n, 1) and takes the mean
    over the *broadcast* shape. For predictions of shape (n, d) this is the intended per-sample
    weighting; for predictions of shape (n,) the column broadcasts against the row to an (n, n)
    matrix, mean_ij(w_i e_j) = mean(w) mean(e): the per-sample weights are silently lost. The
    reference reproduces the seed literally, pitfall included.

    Args:
      predictions, labels: shape (n, ...).
      weights: constant per-sample weights, n elements (no gradient).

    Returns a 0-d array.
    """
    p, y, w = f64(predictions, labels, weights)
    if p.shape[0] != w.shape[0]:
        raise ValueError("The batch size of predictions does not match the weights shape")
    e_shape = np.broadcast_shapes(p.shape, y.shape)
    col = w.reshape(-1, 1)
    # broadcast the squared error with the column first, as torch does (it may raise here too)
    np.broadcast_shapes(e_shape, col.shape)
    return _weighted_mean_square(p, y, col, ("predictions", "labels"), reduction, reduce_kw)


def class_weighted_mse(y_true, y_pred, class_weights, *, reduction: str = "none", **reduce_kw) -> Result:
    """mean((t - p)^2 * class_weights): seed 001 ``weighted_mse``
    (``tf.reduce_mean(tf.multiply(tf.square(y_true - y_pred), class_weights))``), compiled in
    Keras through a lambda that binds a constant ``class_weights`` of shape (c,).

    Args:
      y_true, y_pred: shape [..., c].
      class_weights: constant weights broadcast over the last axis (no gradient).

    Returns a 0-d array (the mean over every element of the broadcast shape).
    """
    t, p, w = f64(y_true, y_pred, class_weights)
    return _weighted_mean_square(p, t, w, ("y_pred", "y_true"), reduction, reduce_kw)


def huber_with_l2_penalty(y_true, y_pred, kernel, *, delta: float = 1.0, lambda_reg: float = 0.01,
                          reduction: str = "none", **reduce_kw) -> Result:
    """mean(huber(t - p, delta)) + lambda_reg * mean(kernel^2): seed 001 example 3
    (``custom_huber_loss_with_regularization``).

    The seed's Huber branch is ``|t - p| < delta`` (strict) where ``regression.huber`` uses
    ``<=``: the two branches agree in value and slope at |t - p| == delta, which is a kink of the
    second derivative (listed in ``kink_gap``). The seed reads ``model.layers[0].kernel`` from a
    closure; here the kernel is an explicit input, and its gradient is the partial derivative
    2 lambda_reg kernel / kernel.size (in training the kernel also reaches the loss through
    ``y_pred``, which this function does not see).

    Args:
      y_true, y_pred: any shape (broadcast).
      kernel: the penalised weight matrix, any shape.

    Returns a 0-d array.
    """
    k = f64(kernel)
    h = huber(y_pred, y_true, delta=delta, reduction="mean")
    k2 = k * k
    pen = lambda_reg * k2.sum() / k.size
    terms = np.asarray(h.value + pen)
    scale = np.asarray(h.scale + abs(pen))

    def vjp(g):
        gh = h.vjp(g)
        return {"y_true": gh["targets"], "y_pred": gh["predictions"],
                "kernel": float(g) * 2.0 * lambda_reg * k / k.size}

    kinks = {"y_true": h.kink_gap["targets"], "y_pred": h.kink_gap["predictions"]}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, **reduce_kw)


def graph_cosine_loss(embeddings, adjacency, *, norm_floor: float = 0.0, reduction: str = "none",
                      **reduce_kw) -> Result:
    """-sum over ordered pairs (i, j) with adjacency[i, j] > 0 of cos(e_i, e_j): seed 002
    ``GraphDistanceLoss``.

    The seed loops over every ordered pair of the n nodes, so an undirected edge counts twice
    ((i, j) and (j, i)) and a self-loop (adjacency[i, i] > 0) adds cos(e_i, e_i) = 1 (with zero
    gradient). Only the leading (n, n) block of ``adjacency`` is read. The cosine is
    ``dot(e_i, e_j) / (norm(e_i) * norm(e_j))``; here each norm is floored at ``norm_floor``.
    With the seed's ``norm_floor=0`` a zero embedding that has an edge gives 0/0 = NaN, which the
    reference returns too (the exact mathematics has no value there). A graph without edges gives
    0 (in the seed the loss is then the leaf ``torch.tensor(0.0, requires_grad=True)`` and
    ``embeddings.grad`` stays ``None``; the reference returns a zero gradient).

    Args:
      embeddings: shape (n, d).
      adjacency: constant, at least (n, n); entries > 0 are edges (no gradient).

    Returns a 0-d array. Non-differentiable where a norm equals ``norm_floor`` > 0.
    """
    e = f64(embeddings)
    n = e.shape[0]
    a = np.asarray(adjacency)
    if a.shape[0] < n or a.shape[1] < n:
        raise IndexError(f"adjacency of shape {a.shape} is smaller than ({n}, {n})")
    w = (a[:n, :n] > 0).astype(np.float64)
    sym = w + w.T
    norms = np.sqrt(np.sum(e * e, axis=1, keepdims=True))
    den = np.maximum(norms, norm_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = e / den
        terms = np.asarray(0.0 - np.sum(w * (u @ u.T)))
        scale = np.asarray(np.sum(w * (np.abs(u) @ np.abs(u).T)))

        def vjp(g):
            v = -float(g) * (sym @ u)  # d loss / d u
            above = norms > norm_floor
            ge = np.where(above, (v - np.sum(u * v, axis=1, keepdims=True) * u) / den, v / den)
            return {"embeddings": ge}

        def gscale(g):
            v = abs(float(g)) * (sym @ np.abs(u))
            above = norms > norm_floor
            return {"embeddings": np.where(above, (v + np.sum(np.abs(u) * v, axis=1, keepdims=True) * np.abs(u)) / den,
                                           v / den)}

    gap = np.broadcast_to(rel_gap(norms, norm_floor) if norm_floor else norms / (norms + 1.0), e.shape)
    return finish(terms, scale, vjp, reduction, kink_gap={"embeddings": gap}, local_grad_scale=gscale, **reduce_kw)
