"""Structured-prediction losses and losses that own their output layer.

* sparsemax losses (optax ``sparsemax_loss``, ``multiclass_sparsemax_loss``) and Fenchel-Young
  losses ``max_fun(z) - <y, z>`` (optax ``make_fenchel_young_loss``) for three max functions;
* optax ``smooth_labels`` (a label transform exported beside the losses);
* torch ``AdaptiveLogSoftmaxWithLoss`` and ``LinearCrossEntropyLoss`` / ``F.linear_cross_entropy``,
  as functions of the input *and* the module's weight matrices, with gradients for all of them.

Shapes are given per function. Sources read: optax/losses/_classification.py,
optax/losses/_fenchel_young.py, optax/losses/_smoothing.py, torch/nn/modules/adaptive.py,
torch/nn/modules/loss.py, torch/nn/functional.py (torch 2.13).
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, logsumexp, one_hot, rel_gap, softmax
from .classification import cross_entropy


def projection_simplex(z, axis=-1):
    """Euclidean projection of each row onto the probability simplex (sparsemax), and the
    threshold tau with p = max(z - tau, 0).

    Computed on d = z - max(z), like a stable softmax: p depends only on differences, and every
    score in the support lies within 1 of the max, so d is exact there (Sterbenz) and p is exact
    to a few eps *absolute* whatever |z| is. On z itself, tau = (sum(z) - 1) / k rounds at
    |z| * eps: scores of -1e4 gave p = 1/3 + 6.1e-13 (2,700 eps) where optax returns 1/3 exactly.

    Shapes: ``z`` of any shape, projected along ``axis``; returns ``(p, tau)``, ``p`` of ``z``'s shape
    and ``tau`` of ``z``'s shape with ``axis`` of size 1.
    """
    z = np.moveaxis(f64(z), axis, -1)
    top = np.max(z, axis=-1, keepdims=True) if z.shape[-1] else np.zeros(z.shape[:-1] + (1,))
    shift = np.where(np.isfinite(top), top, 0.0)   # +-inf: no shift (the same NaN/inf as before)
    d = z - shift
    u = -np.sort(-d, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    k = np.arange(1, z.shape[-1] + 1)
    support = u - css / k > 0
    rho = np.sum(support, axis=-1, keepdims=True)
    tau_d = np.take_along_axis(css, rho - 1, axis=-1) / rho
    p = np.maximum(d - tau_d, 0.0)
    return np.moveaxis(p, -1, axis), np.moveaxis(tau_d + shift, -1, axis)


def sparsemax(z, axis=-1):
    """Sparsemax (Martins & Astudillo 2016): the Euclidean projection of ``z`` onto the probability
    simplex along ``axis``, the ``p`` of :func:`projection_simplex`.

    Shapes: ``z`` of any shape; the output has ``z``'s shape. A plain array, not a :class:`Result`.
    """
    return projection_simplex(z, axis)[0]


def _sparse_plus(x):
    return np.where(x <= -1.0, 0.0, np.where(x >= 1.0, x, (x + 1.0) ** 2 / 4.0))


def _sparse_sigmoid(x):
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)


def sparsemax_loss(logits, labels, *, reduction: str = "none", **reduce_kw) -> Result:
    """Binary sparsemax loss, optax ``sparsemax_loss``: sparse_plus(-x) where the label is true
    (nonzero), sparse_plus(x) elsewhere; sparse_plus is 0 below -1, (x+1)^2/4 on [-1, 1], x above.

    ``labels`` select a branch (optax uses ``jnp.where(labels, ...)``) and get no gradient. The
    loss is once differentiable; its second derivative jumps at z = +-1 (listed in ``kink_gap``).
    """
    x = f64(logits)
    truth = np.asarray(labels) != 0
    x, truth = np.broadcast_arrays(x, truth)
    sign = np.where(truth, -1.0, 1.0)
    z = sign * x
    terms = _sparse_plus(z)

    def vjp(g):
        return {"logits": g * _sparse_sigmoid(z) * sign}

    gap = np.minimum(rel_gap(z, 1.0), rel_gap(z, -1.0))
    return finish(terms, terms + np.where(np.abs(z) < 1, 0.5, 0.0), vjp, reduction,
                  kink_gap={"logits": gap}, **reduce_kw)


def multiclass_sparsemax_loss(scores, labels, *, reduction: str = "none", **reduce_kw) -> Result:
    """optax ``multiclass_sparsemax_loss``: the Fenchel-Young loss of the Gini regulariser,
    <p, z - z_y> + (1 - |p|^2) / 2 with p = sparsemax(z), for scores (N, C) and integer labels (N,).

    Gradient p - onehot(y). Not twice differentiable where the support of p changes (a score
    crossing the threshold tau): those points are in ``kink_gap``.
    """
    z = f64(scores)
    y = np.asarray(labels)
    p, tau = projection_simplex(z)
    oh = one_hot(y, z.shape[-1])
    zy = np.sum(z * oh, axis=-1, keepdims=True)
    inner = p * (z - zy)
    terms = np.sum(inner, axis=-1) + 0.5 * (1.0 - np.sum(p * p, axis=-1))
    scale = np.sum(np.abs(inner), axis=-1) + 0.5 * (1.0 + np.sum(p * p, axis=-1))
    # optax's p = 1/k + (z - mean of the support) rounds at the size of |z| + |tau| (this oracle's p
    # does not: see projection_simplex), and the value moves by v = z - z_y - p per unit of p
    tau_b = np.broadcast_to(tau, z.shape) if np.ndim(tau) == z.ndim else np.expand_dims(tau, -1)
    supp = p > 0
    v = np.where(supp, np.abs(z - zy - p), 0.0)
    p_err = np.where(supp, np.abs(z) + np.abs(tau_b), 0.0)
    scale = scale + np.sum(v * p_err, axis=-1)

    def vjp(g):
        return {"scores": g[..., None] * (p - oh)}

    # optax's backward takes the projection's VJP of v (dL/dp) on the support, v - mean(v): a
    # cancellation at the size of |v| (scores [0, -1000, 0, 0, -1000], label 1: v is 1000 - 1/3 on
    # the three supported scores, and the compiled gradient is 2.3e-13 off in float64)
    v_mean = np.sum(v, axis=-1, keepdims=True) / np.maximum(np.sum(supp, axis=-1, keepdims=True), 1)
    vjp_err = np.where(supp, v + v_mean, 0.0)

    def gscale(g):
        return {"scores": g[..., None] * (p + oh + p_err + vjp_err)}

    gap = np.broadcast_to(np.min(rel_gap(z, tau), axis=-1, keepdims=True), z.shape)
    return finish(terms, scale, vjp, reduction, kink_gap={"scores": gap}, local_grad_scale=gscale, **reduce_kw)


MAX_FUNCTIONS = ("logsumexp", "max", "sparsemax")


def fenchel_young_loss(scores, targets, *, max_fun: str = "logsumexp", reduction: str = "none",
                       **reduce_kw) -> Result:
    """optax ``make_fenchel_young_loss(max_fun)(scores, targets)`` = max_fun(z) - <y, z> over the
    last axis, for ``max_fun``:

    * ``"logsumexp"`` (``jax.nn.logsumexp``): the softmax cross-entropy; gradient softmax(z) - y;
    * ``"max"`` (``jnp.max``): the perceptron loss; gradient onehot(argmax z) - y, kinks at ties;
    * ``"sparsemax"``: the Gini max <p, z> - |p|^2/2 + 1/2, p = sparsemax(z); gradient p - y.

    The gradient w.r.t. the targets is -z.

    Shapes: ``scores`` and ``targets`` broadcast together, ``[..., C]`` with the classes last; terms
    ``[...]`` for ``reduction="none"``, a scalar otherwise.
    """
    z, y = f64(scores, targets)
    z, y = np.broadcast_arrays(z, y)
    kinks, dm_err = {}, 0.0
    if max_fun == "logsumexp":
        m = logsumexp(z, axis=-1)
        # plus 1: jax.nn.logsumexp is log(sum(exp(z - max))) + max, the log of a sum >= 1 rounded
        # to an ulp, so its absolute error is eps however small the loss (scores [0, -6] in float32:
        # 0.00247565191 for log1p(e^-6) = 0.00247568514, 0.28 eps of 1, 113 eps of the loss)
        dm, mscale = softmax(z, axis=-1), np.abs(m) + 1.0
    elif max_fun == "max":
        m = np.max(z, axis=-1)
        top = z == m[..., None]
        dm = top / np.sum(top, axis=-1, keepdims=True)
        mscale = np.abs(m)
        srt = -np.sort(-z, axis=-1)
        gap = rel_gap(srt[..., 0], srt[..., 1]) if z.shape[-1] > 1 else np.ones(z.shape[:-1])
        kinks = {"scores": np.broadcast_to(gap[..., None], z.shape)}
    elif max_fun == "sparsemax":
        p, tau = projection_simplex(z)
        m = np.sum(p * z, axis=-1) - 0.5 * np.sum(p * p, axis=-1) + 0.5
        dm = p
        mscale = np.sum(np.abs(p * z), axis=-1) + 0.5 * np.sum(p * p, axis=-1) + 0.5
        # optax.projections.projection_simplex computes p = 1/k + (z - cumsum(sorted z)/k) on the raw
        # scores, so p rounds at |z| + |tau| absolute (unlike this oracle, exact to a few eps): scores
        # [-99998.91063938744, -99998.85607848178] give p 32768 eps below the exact [0.47271954717,
        # 0.52728045283], a gradient off by 1,000 eps of |p - y|, and a Gini max 1.46e-6 too high
        # (1,900 eps of the loss): on the support the value moves by z - p (= tau) per unit of p
        dm_err = np.where(p > 0, np.abs(z) + np.abs(np.broadcast_to(tau, z.shape)), 0.0)
        mscale = mscale + np.sum(np.abs(z - p) * dm_err, axis=-1)
        kinks = {"scores": np.broadcast_to(np.min(rel_gap(z, tau), axis=-1, keepdims=True), z.shape)}
    else:
        raise ValueError(f"max_fun must be one of {MAX_FUNCTIONS}, got {max_fun!r}")
    dot = np.sum(y * z, axis=-1)
    terms = m - dot
    scale = mscale + np.sum(np.abs(y * z), axis=-1)

    def vjp(g):
        gk = g[..., None]
        return {"scores": gk * (dm - y), "targets": -gk * z}

    def gscale(g):
        gk = g[..., None]
        return {"scores": gk * (np.abs(dm) + np.abs(y) + dm_err), "targets": gk * np.abs(z)}

    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def smooth_labels(labels, alpha: float, *, axis=-1, where=None) -> Result:
    """optax ``smooth_labels``: (1 - alpha) * labels + alpha / K, K the size of ``axis`` (or the
    number of selected classes when ``where`` is given). Same shape as ``labels``."""
    y = f64(labels)
    if where is None:
        k = y.shape[axis]
    else:
        k = np.sum(np.broadcast_to(np.asarray(where, bool), y.shape), axis=axis, keepdims=True)
    out = (1.0 - alpha) * y + alpha / k
    scale = np.abs((1.0 - alpha) * y) + np.abs(alpha / k) * np.ones_like(y)
    return Result(out, scale, lambda g: {"labels": (1.0 - alpha) * np.asarray(g, dtype=np.float64)})


def adaptive_log_softmax(input, target, head_weight, *, tails, cutoffs, head_bias=None,
                         output: str = "loss") -> Result:
    """torch ``AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value, head_bias)``.

    ``input`` (N, d) or (d,), ``target`` int (N,) or (); ``head_weight`` (shortlist + clusters, d);
    ``tails`` = [(proj_i (h_i, d), out_i (size_i, h_i)), ...] for each cluster; ``cutoffs`` the
    module's cutoffs without n_classes appended, followed by n_classes (the module's
    ``self.cutoffs``). The target's log-probability is the head's log-softmax at the target (or at
    its cluster's slot, plus the cluster's own log-softmax at the relative target).
    ``output="output"`` returns those log-probabilities (N,); ``"loss"`` returns -mean of them.

    Gradient names: ``input``, ``head_weight``, ``head_bias``, ``tail_{i}_proj``, ``tail_{i}_out``.

    Error scales: the head logits, the tail projections ``h`` and the tail logits are intermediates
    the framework rounds in the tested dtype, off by up to ~eps times their summands' magnitudes
    ``M`` (``|x| @ |W|^T + |b|``; for the tail logits ``(|h| + |x| @ |proj|^T) @ |out|^T``), as in
    :func:`linear_cross_entropy`. The value's scale adds ``M_target + sum_c p_c M_c`` per row and the
    logits' gradient magnitudes add the softmax Jacobian of that error, ``|g| p_c (M_c + sum_k p_k
    M_k)``; the tail weights' gradient magnitudes use ``|h| + |x| @ |proj|^T`` for ``h``. At inputs
    of 1e4 and weights of -1 the float32 head logits (4e4) lose a difference of 1.2e-3, which moves
    softmax, and so the head weights' gradient, by about 1,700 float32 eps (soak seed 5).
    """
    x0 = f64(input)
    batched = x0.ndim == 2
    x = x0 if batched else x0[None, :]
    t = np.atleast_1d(np.asarray(target))
    w_head = f64(head_weight)
    head = x @ w_head.T + (0.0 if head_bias is None else f64(head_bias))
    ax = np.abs(x)
    m_head = ax @ np.abs(w_head).T + (0.0 if head_bias is None else np.abs(f64(head_bias)))
    shortlist = cutoffs[0]
    lse_head = logsumexp(head, axis=-1)
    p_head = softmax(head, axis=-1)
    cluster = np.searchsorted(np.asarray(cutoffs), t, side="right") - 1   # -1: shortlist
    gather = np.where(t < shortlist, t, shortlist + cluster)
    out = np.take_along_axis(head, gather[:, None], axis=1)[:, 0] - lse_head
    scale = np.abs(np.take_along_axis(head, gather[:, None], axis=1)[:, 0]) + np.abs(lse_head)
    scale += _rounded_logits_scale(m_head, p_head, gather)
    tail_parts = []
    for i, (proj, outw) in enumerate(tails):
        rows = np.flatnonzero((t >= cutoffs[i]) & (t < cutoffs[i + 1]))
        h = x[rows] @ f64(proj).T
        m_h = np.abs(h) + ax[rows] @ np.abs(f64(proj)).T          # h, and its own rounding
        logits = h @ f64(outw).T
        m_logits = m_h @ np.abs(f64(outw)).T
        lse = logsumexp(logits, axis=-1)
        rel = t[rows] - cutoffs[i]
        picked = logits[np.arange(len(rows)), rel]
        out[rows] += picked - lse
        p = softmax(logits, axis=-1)
        scale[rows] += np.abs(picked) + np.abs(lse) + _rounded_logits_scale(m_logits, p, rel)
        tail_parts.append((rows, h, p, rel, m_h, m_logits))

    n = len(t)
    if output == "loss":
        value, vscale = np.asarray(-np.mean(out)), np.asarray(np.mean(scale))
    elif output == "output":
        value, vscale = (out, scale) if batched else (out[0], scale[0])
    else:
        raise ValueError("output must be 'loss' or 'output'")

    def backprop(cot, magnitude=False):
        """The gradient, or with ``magnitude`` the sizes of its summands (|p| + |y| for the softmax
        factors p - y, absolute weights and activations): the input's gradient cancels."""
        sign, a = (1.0, np.abs) if magnitude else (-1.0, lambda v: v)
        g_out = np.full(n, -float(cot) / n) if output == "loss" else np.atleast_1d(np.asarray(cot, np.float64))
        g_out = a(g_out)
        g_head = g_out[:, None] * (one_hot(gather, head.shape[1]) + sign * p_head)
        if magnitude:
            g_head = g_head + _rounded_logits_grad(g_out[:, None], p_head, m_head)
        xs = a(x)
        grads = {"head_weight": g_head.T @ xs}
        gx = g_head @ a(w_head)
        if head_bias is not None:
            grads["head_bias"] = g_head.sum(axis=0)
        for i, ((proj, outw), (rows, h, p, rel, m_h, m_logits)) in enumerate(zip(tails, tail_parts)):
            g_logits = g_out[rows, None] * (one_hot(rel, p.shape[1]) + sign * p)
            if magnitude:
                g_logits = g_logits + _rounded_logits_grad(g_out[rows, None], p, m_logits)
            grads[f"tail_{i}_out"] = g_logits.T @ (m_h if magnitude else h)
            g_h = g_logits @ a(f64(outw))
            grads[f"tail_{i}_proj"] = g_h.T @ xs[rows]
            gx[rows] += g_h @ a(f64(proj))
        grads["input"] = gx if batched else gx[0]
        return grads

    return Result(value, vscale, backprop, grad_scale=lambda cot: backprop(cot, magnitude=True))


def _rounded_logits_scale(m, p, picked):
    """Per row, the value error of ``logits[picked] - logsumexp(logits)`` when each logit is off by
    up to eps * ``m``: ``m[picked] + sum_c p_c m_c``."""
    with np.errstate(invalid="ignore", over="ignore"):
        extra = m[np.arange(len(picked)), picked] + np.sum(p * m, axis=-1)
    return np.where(np.isnan(extra), 0.0, extra)


def _rounded_logits_grad(a, p, m, axis=-1):
    """Magnitudes added to a log-softmax's logit gradient by logits off by up to eps * ``m``:
    softmax's Jacobian carries them into ``p``, ``a p_c (m_c + sum_k p_k m_k)`` along the class
    ``axis``, for the gradient's non-negative amplitude ``a`` (kept along that axis)."""
    with np.errstate(invalid="ignore", over="ignore"):
        extra = a * p * (m + np.sum(p * m, axis=axis, keepdims=True))
    return np.where(np.isnan(extra), 0.0, extra)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         ignore_index: int | None = None, label_smoothing: float = 0.0,
                         reduction: str = "mean") -> Result:
    """torch ``F.linear_cross_entropy`` / ``LinearCrossEntropyLoss``: ``cross_entropy`` of the logits
    ``input @ linear_weight^T (+ linear_bias)``.

    ``input`` (N, d) or (d,); ``linear_weight`` (C, *out_features, d); logits (N, C, *out_features).
    ``ignore_index=None`` means torch's -100. Gradients: ``input``, ``linear_weight``, ``linear_bias``
    (and ``target`` for probability targets).

    Error scales: the logits are an intermediate the framework computes in the tested dtype, so each
    is off by up to ~eps * M, ``M = |input| @ |linear_weight|^T + |linear_bias|`` (the summands of the
    dot product), which no rounding of the inputs removes. The value and the gradient scales add
    that error carried through the cross-entropy: ``sum_c |dL/dlogit_c| M_c`` for the value and the
    softmax Jacobian ``A p_c (M_c + sum_k p_k M_k)`` for the logits' gradient, ``A`` the summed
    magnitude of the log-softmax cotangent (N. J. Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., sec. 3.1, for the dot product's bound). With |input|, |weight| ~ 1e4 the
    float32 logits (~1e8) are rounded to 8: a logit difference of 4 is lost, softmax is uniform,
    and torch's gradient (reference path ``cross_entropy(linear(input, weight))``, options=None)
    differs from the exact one by O(1) -- rounding, not a bug.
    """
    x, w = f64(input, linear_weight)
    logits = np.tensordot(x, w, axes=([-1], [-1]))
    mag = np.tensordot(np.abs(x), np.abs(w), axes=([-1], [-1]))    # M: the logits' summand magnitudes
    if linear_bias is not None:
        logits = logits + f64(linear_bias)
        mag = mag + np.abs(f64(linear_bias))
    ce = cross_entropy(logits, target, weight=weight, ignore_index=-100 if ignore_index is None else ignore_index,
                       label_smoothing=label_smoothing, reduction=reduction)
    x_axes = list(range(x.ndim - 1))     # batch axes of the input (none when unbatched)
    cdim = 0 if x.ndim == 1 else 1       # the logits' class axis
    with np.errstate(invalid="ignore", over="ignore"):
        p = softmax(logits, axis=cdim)

    def rounded_logits(gm):
        """Summand magnitudes ``gm`` of the logits' gradient plus the logits' own rounding carried
        through softmax: ce's magnitudes are ``|g_logp| + p A`` (softmax VJP), whose class sum is 2A."""
        return gm + _rounded_logits_grad(np.sum(gm, axis=cdim, keepdims=True) / 2.0, p, mag, axis=cdim)

    with np.errstate(invalid="ignore", over="ignore"):
        gm1 = ce.grad_magnitude()["input"] * mag
        gm1 = np.where(np.isnan(gm1), 0.0, gm1)
        vscale = ce.scale + (np.sum(gm1, axis=cdim) if np.ndim(ce.value) else np.sum(gm1))

    def back(gl, x, w):
        """The logits' gradient ``gl`` carried back through the linear layer."""
        out = {"input": np.tensordot(gl, w, axes=(list(range(x.ndim - 1, gl.ndim)), list(range(w.ndim - 1)))),
               "linear_weight": np.tensordot(gl, x, axes=(x_axes, x_axes)) if x_axes else np.multiply.outer(gl, x)}
        if linear_bias is not None:
            out["linear_bias"] = gl.sum(axis=tuple(x_axes)) if x_axes else gl
        return out

    def vjp(cot):
        g = ce.vjp(cot)
        out = back(g["input"], x, w)
        if "target" in g:
            out["target"] = g["target"]
        return out

    def gscale(cot):
        # the input's gradient sums (p - y) W over classes, which cancels: its scale is |p - y|'s scale times |W|
        g = ce.grad_magnitude(cot)
        out = back(rounded_logits(g["input"]), np.abs(x), np.abs(w))
        if "target" in g:
            out["target"] = g["target"]
        return out

    return Result(ce.value, vscale, vjp, grad_scale=gscale)
