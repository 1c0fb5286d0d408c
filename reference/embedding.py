"""Embedding and pair losses: triplet margin (p-norm or cosine distance), margin ranking, hinge
embedding, cosine embedding, soft margin, Keras' Circle loss and optax's NT-Xent.

Shapes: embeddings are ``[..., D]`` with the feature axis last (``axis`` where a framework has
one); per-pair losses have the batch shape ``[...]``. Every function takes the reduction keywords of
:func:`reference._core.reduce` and defaults to ``reduction="none"``, except :func:`ntxent`, which
(as optax does) averages over the positive pairs itself.

Framework semantics are keyword parameters whose default is the exact mathematics:

* torch's ``pairwise_distance(x1, x2, p, eps)`` is ``||x1 - x2 + eps||_p`` (the eps is added to
  every component of the difference, not to the norm): ``eps_shift=eps``;
* optax's ``triplet_margin_loss`` is ``(sum(d^p) + eps)^(1/p)`` (eps inside the root):
  ``eps_root=eps``;
* torch's ``cosine_embedding_loss`` adds ``EPSILON`` to both squared norms
  (aten/src/ATen/native/Loss.cpp), a float32 constant even for float64 inputs:
  ``eps=float(np.float32(1e-12))`` (9.99999996e-13; with 1e-12 itself the float64 gradient at a
  zero vector is 2e-9 relative off, with the float32 constant 1.3e-16);
* torch's ``cosine_similarity(eps=1e-8)`` floors each norm, ``x / max(||x||, eps)``, and optax's
  ``ntxent`` uses ``cosine_similarity(epsilon=finfo(dtype).eps)``, ``sqrt(max(||x||^2, e))``: both
  are ``norm_floor`` (1e-8, resp. ``sqrt(e)``).

Non-differentiable points (``kink_gap``): the hinges, ties of the swap's minimum and of the
infinity norm, components at zero for the 1-norm, zero vectors for the other p-norms (at zero the
gradient returned is 0, as torch's norm backward masks it), norms at their floor, Circle's clamps.

Sources read: torch/_refs/nn/functional/__init__.py (``triplet_margin_loss``,
``_triplet_margin_with_distance_loss``, ``pairwise_distance``, ``margin_ranking_loss``,
``hinge_embedding_loss``), torch/_decomp/decompositions.py (``soft_margin_loss`` and its backward),
torch/nn/functional.py, optax/losses/_self_supervised.py, optax/losses/_regression.py
(``cosine_similarity``), keras/src/losses/losses.py (``circle``), keras/src/losses/loss.py (masked
reductions), keras/src/utils/numerical_utils.py (``build_pos_neg_masks``).
"""
from __future__ import annotations

import numpy as np

from ._core import Result, f64, finish, rel_gap, sigmoid, softplus
from .regression import cosine_distance


def _top_two_gap(z, axis):
    """Relative gap between the two largest entries along ``axis`` (1 with a single entry)."""
    if z.shape[axis] < 2:
        return np.ones(np.delete(z.shape, axis % z.ndim))
    top = np.sort(z, axis=axis)
    return rel_gap(np.take(top, -1, axis=axis), np.take(top, -2, axis=axis))


def _p_distance(x1, x2, *, p, eps_shift=0.0, eps_root=0.0, axis=-1):
    """The p-distance along ``axis`` and its pieces: ``(dist, scale, back, gscale, gap)``.

    ``dist = (sum |x1 - x2 + eps_shift|^p + eps_root)^(1/p)`` (``max |.|`` for p = inf).
    ``back(g)`` returns the gradient with respect to ``x1`` (that of ``x2`` is its negative);
    ``gap`` (the shape of ``x1``) is the relative distance of each component to a kink.
    """
    raw = x1 - x2
    d = raw + eps_shift
    a = np.abs(d)
    # x1 - x2 is exact when the two are close (Sterbenz) and eps-relative otherwise: each
    # component is accurate to about eps * (|x1 - x2| + |d|)
    err = np.abs(raw) + a
    k = lambda v: np.expand_dims(v, axis)  # noqa: E731
    if np.isinf(p):
        dist = a.max(axis=axis)
        share = (a == k(dist)).astype(np.float64)
        share /= share.sum(axis=axis, keepdims=True)
        dgrad = np.sign(d) * share
        scale = dist + err.max(axis=axis)
        gap = np.minimum(_top_two_gap(a, axis), rel_gap(dist, 0.0))
        gap = np.broadcast_to(k(gap), d.shape)
    elif p == 1:
        dist = a.sum(axis=axis) + eps_root
        dgrad = np.sign(d)
        scale = dist + err.sum(axis=axis)
        gap = np.abs(d) / (np.abs(x1) + np.abs(x2) + abs(eps_shift) + 1.0)
    else:
        s = np.sum(a ** p, axis=axis) + eps_root
        dist = s ** (1.0 / p)
        with np.errstate(divide="ignore", invalid="ignore"):
            dgrad = np.where(k(dist) > 0, np.sign(d) * (a / np.where(k(dist) > 0, k(dist), 1.0)) ** (p - 1), 0.0)
        scale = dist + np.sum(err ** p, axis=axis) ** (1.0 / p)
        gap = np.broadcast_to(k(rel_gap(dist, 0.0)), d.shape)

    def back(g):
        return k(g) * dgrad

    def gscale(g):
        return np.abs(k(g)) * np.abs(dgrad)

    return dist, scale, back, gscale, gap


def _distance(x1, x2, kind, p, eps_shift, eps_root, norm_floor, axis):
    """``(dist, scale, back(g) -> (g1, g2), gscale(g) -> (m1, m2), gap1, gap2)``."""
    if kind == "cosine":
        r = cosine_distance(x1, x2, axis=axis, norm_floor=norm_floor)

        def back(g):
            out = r.vjp(g)
            return out["predictions"], out["targets"]

        def gscale(g):
            out = r.grad_scale(np.abs(g))
            return out["predictions"], out["targets"]

        return r.value, r.scale, back, gscale, r.kink_gap["predictions"], r.kink_gap["targets"]
    dist, scale, back1, gs1, gap = _p_distance(x1, x2, p=p, eps_shift=eps_shift, eps_root=eps_root, axis=axis)
    return (dist, scale, lambda g: (back1(g), -back1(g)), lambda g: (gs1(g), gs1(g)), gap, gap)


def triplet_margin(anchor, positive, negative, *, margin: float = 1.0, p: float = 2.0, eps_shift: float = 0.0,
                   eps_root: float = 0.0, swap: bool = False, distance: str = "p", norm_floor: float = 0.0,
                   axis: int = -1, reduction: str = "none", **reduce_kw) -> Result:
    """max(d(a, p) - d(a, n) + margin, 0), with d(a, n) replaced by min(d(a, n), d(p, n)) if ``swap``.

    Args:
      anchor, positive, negative: embeddings of one shape ``[..., D]`` (features on ``axis``).
      p: the norm degree of ``distance="p"`` (any p >= 1, ``inf`` included).
      eps_shift: torch's ``pairwise_distance`` eps, added to every component of the difference.
      eps_root: optax's eps, added to the sum of powers inside the p-th root.
      distance: ``"p"`` (the p-distance) or ``"cosine"`` (1 - cosine similarity, each norm floored
        at ``norm_floor``: torch's ``1 - F.cosine_similarity(x, y, eps=1e-8)`` is 1e-8).

    Returns shape ``[...]`` for ``reduction="none"``.

    Models torch ``TripletMarginLoss(margin, p, eps, swap)`` / ``F.triplet_margin_loss``
    (``eps_shift=eps``), ``TripletMarginWithDistanceLoss`` with its default distance (``p=2``,
    ``eps_shift=1e-6``) or a cosine distance, and optax ``triplet_margin_loss(axis, norm_degree,
    margin, eps)`` (``eps_root=eps``; optax has no ``swap``). Kinks: the hinge, the swap's minimum,
    and those of each distance. At a tied swap minimum the gradient is split evenly (torch.minimum).
    """
    a, pos, n = f64(anchor, positive, negative)
    a, pos, n = np.broadcast_arrays(a, pos, n)
    dist = lambda x, y: _distance(x, y, distance, p, eps_shift, eps_root, norm_floor, axis)  # noqa: E731
    dp, sp, bp, gsp, gp1, gp2 = dist(a, pos)
    dn, sn, bn, gsn, gn1, gn2 = dist(a, n)
    k = lambda v: np.expand_dims(v, axis)  # noqa: E731
    gap_a, gap_p, gap_n = np.minimum(gp1, gn1), gp2, gn2
    use_swap = np.zeros(np.shape(dn), dtype=np.float64)
    dneg, sneg, bs, gss = dn, sn, None, None
    if swap:
        ds, ss, bs, gss, gs1, gs2 = dist(pos, n)
        use_swap = np.where(ds < dn, 1.0, np.where(ds == dn, 0.5, 0.0))
        dneg, sneg = np.minimum(dn, ds), np.maximum(sn, ss)
        # the kinks of both candidate distances count, and so does a tie between them
        tie = k(rel_gap(dn, ds))
        gap_a, gap_p, gap_n = np.minimum(gap_a, tie), np.minimum(np.minimum(gap_p, gs1), tie), \
            np.minimum(np.minimum(gap_n, gs2), tie)
    m = margin + dp - dneg
    active = m > 0
    terms = np.where(active, m, 0.0)
    # the clamp does not hide rounding near the hinge: the scale is that of its argument
    scale = abs(margin) + sp + sneg
    hinge = k(rel_gap(margin + dp, dneg))

    def parts(g, fp, fn, fs, sign):
        """Combine the three distances' backward passes; ``sign=-1`` subtracts (the gradient),
        ``sign=1`` adds (the magnitudes of its summands)."""
        ga = np.where(active, g, 0.0)
        pa, pp = fp(ga)
        na, nn = fn(ga * (1.0 - use_swap))
        sa, sn_ = fs(ga * use_swap) if swap else (0.0, 0.0)
        return {"anchor": pa + sign * na, "positive": pp + sign * sa, "negative": sign * (nn + sn_)}

    def vjp(g):
        return parts(g, bp, bn, bs, -1.0)

    def gscale(g):
        return parts(np.abs(g), gsp, gsn, gss, 1.0)

    kinks = {"anchor": np.minimum(gap_a, hinge), "positive": np.minimum(gap_p, hinge),
             "negative": np.minimum(gap_n, hinge)}
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def margin_ranking(input1, input2, target, *, margin: float = 0.0, reduction: str = "none", **reduce_kw) -> Result:
    """max(0, -y (x1 - x2) + margin): torch ``MarginRankingLoss(margin)``, all of one shape.

    ``target`` is y in {-1, 1} (any float works; its gradient is -(x1 - x2) where the hinge is
    active, torch differentiates it too). Kink where -y (x1 - x2) + margin == 0.
    """
    x1, x2, y = f64(input1, input2, target)
    x1, x2, y = np.broadcast_arrays(x1, x2, y)
    diff = x1 - x2
    z = -y * diff
    m = z + margin
    active = m > 0
    terms = np.where(active, m, 0.0)
    scale = np.abs(y) * (np.abs(x1) + np.abs(x2)) + abs(margin)

    def vjp(g):
        ga = np.where(active, g, 0.0)
        return {"input1": -ga * y, "input2": ga * y, "target": -ga * diff}

    gap = rel_gap(z, -margin)
    return finish(terms, scale, vjp, reduction, kink_gap={"input1": gap, "input2": gap, "target": gap},
                  **reduce_kw)


def hinge_embedding(input, target, *, margin: float = 1.0, reduction: str = "none", **reduce_kw) -> Result:
    """torch ``HingeEmbeddingLoss(margin)``: x where y == 1, max(0, margin - x) where y == -1.

    torch evaluates ``where(y != 1, max(margin - x, 0), 0) + where(y != -1, x, 0)``: a label that
    is neither 1 nor -1 gets both terms; this is reproduced. The target enters only through
    comparisons: no gradient for it (torch returns none). Kink where margin - x == 0 (y != 1).

    Shapes: ``input`` and ``target`` broadcast together (torch: one shape, any rank); returns their
    broadcast shape for ``reduction="none"``, a scalar otherwise.
    """
    x, y = f64(input, target)
    x, y = np.broadcast_arrays(x, y)
    use_m, use_x = y != 1, y != -1
    h = margin - x
    active = use_m & (h > 0)
    terms = np.where(active, h, 0.0) + np.where(use_x, x, 0.0)
    scale = np.where(use_m, abs(margin) + np.abs(x), 0.0) + np.where(use_x, np.abs(x), 0.0)

    def vjp(g):
        return {"input": np.where(active, -g, 0.0) + np.where(use_x, g, 0.0)}

    gap = np.where(use_m, rel_gap(x, margin), 1.0)
    return finish(terms, scale, vjp, reduction, kink_gap={"input": gap}, **reduce_kw)


def cosine_embedding(input1, input2, target, *, margin: float = 0.0, eps: float = 0.0, reduction: str = "none",
                     **reduce_kw) -> Result:
    """torch ``CosineEmbeddingLoss(margin)``: 1 - cos where y == 1, max(0, cos - margin) where y == -1,
    0 for any other label; cos = x1.x2 / sqrt((|x1|^2 + eps) (|x2|^2 + eps)) along the last axis.

    Args:
      input1, input2: ``[N, D]`` or ``[D]``.
      target: y of shape ``[N]`` (or ``[]``), in {-1, 1}; no gradient (torch returns none).
      eps: torch adds ``EPSILON = float32(1e-12)`` to each squared norm (Loss.cpp),
        which makes the loss smooth at zero vectors; ``eps=0`` is the exact cosine (NaN at a zero
        vector). Kink where cos == margin (y == -1).
    """
    x1, x2, y = f64(input1, input2, target)
    dot = np.sum(x1 * x2, axis=-1)
    s1, s2 = np.sum(x1 * x1, axis=-1) + eps, np.sum(x2 * x2, axis=-1) + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        den = np.sqrt(s1 * s2)
        cos = dot / den
        pos, neg = y == 1, y == -1
        active = neg & (cos - margin > 0)
        terms = np.where(pos, 1.0 - cos, 0.0) + np.where(active, cos - margin, 0.0)
        cscale = np.sum(np.abs(x1 * x2), axis=-1) / den
        scale = np.where(pos, 1.0 + cscale, 0.0) + np.where(neg, cscale + abs(margin), 0.0)

        def dcos(gc):
            gc = gc[..., None]
            return (gc * (x2 / den[..., None] - (cos / s1)[..., None] * x1),
                    gc * (x1 / den[..., None] - (cos / s2)[..., None] * x2))

        def vjp(g):
            gc = np.where(pos, -g, 0.0) + np.where(active, g, 0.0)
            g1, g2 = dcos(gc)
            return {"input1": g1, "input2": g2}

        def gscale(g):
            gc = np.abs(np.where(pos | active, g, 0.0))[..., None]
            return {"input1": gc * (np.abs(x2) / den[..., None] + (np.abs(cos) / s1)[..., None] * np.abs(x1)),
                    "input2": gc * (np.abs(x1) / den[..., None] + (np.abs(cos) / s2)[..., None] * np.abs(x2))}

    gap = np.where(neg, rel_gap(cos, margin), 1.0)[..., None]
    gaps = {"input1": np.broadcast_to(gap, x1.shape), "input2": np.broadcast_to(gap, x2.shape)}
    return finish(terms, scale, vjp, reduction, kink_gap=gaps, local_grad_scale=gscale, **reduce_kw)


def soft_margin(input, target, *, reduction: str = "none", **reduce_kw) -> Result:
    """log(1 + exp(-y x)): torch ``SoftMarginLoss``, y in {-1, 1} (any float works here).

    Returns the gradient for both inputs (the loss is symmetric in x and y); torch differentiates
    only ``input``. torch evaluates ``log1p(exp(-y x))``, which overflows to inf where
    -y x > log(max float) (88.7 in float32): the exact value, -y x + log1p(exp(y x)), is returned.

    Shapes: ``input`` and ``target`` broadcast together (torch: one shape, any rank); returns their
    broadcast shape for ``reduction="none"``, a scalar otherwise.
    """
    x, y = f64(input, target)
    x, y = np.broadcast_arrays(x, y)
    z = -y * x
    terms = softplus(z)
    scale = terms + sigmoid(z) * np.abs(z)

    def vjp(g):
        gz = g * sigmoid(z)
        return {"input": -gz * y, "target": -gz * x}

    return finish(terms, scale, vjp, reduction, **reduce_kw)


# ---- losses on a batch of embeddings -------------------------------------------------------------

def _logsumexp_masked(z, mask):
    """Row-wise log-sum-exp over ``mask`` (-inf on an empty row) and its softmax weights."""
    zm = np.where(mask, z, -np.inf)
    top = zm.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(mask, np.exp(zm - top), 0.0)
    tot = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.log(tot[..., 0]) + top[..., 0]
        w = np.where(tot > 0, e / np.where(tot > 0, tot, 1.0), 0.0)
    return lse, w


def circle(labels, embeddings, *, ref_labels=None, ref_embeddings=None, gamma: float = 80.0, margin: float = 0.4,
           remove_diagonal: bool = True, keras_mask: bool = False, reduction: str = "none", **reduce_kw) -> Result:
    """Keras ``Circle`` / ``circle`` (Sun et al. 2020): each embedding of the batch against a reference
    set, by default the batch itself.

    Follows keras/src/losses/losses.py ``circle`` (Keras 3.15) and ``build_pos_neg_masks``
    (keras/src/utils/numerical_utils.py). With d_ij = max(1 - x_i . r_j, 0) between batch embedding
    x_i and reference embedding r_j, positives P (same label; (i, j) with j != i if
    ``remove_diagonal``) and negatives N (other label):

        p_i = logsumexp_{j in P} -gamma max(margin + d, 0) (margin - d)
        n_i = logsumexp_{j in N}  gamma max(1 + margin - d, 0) (1 - margin - d)
        loss_i = softplus(p_i + n_i)

    An empty P or N row gives loss 0 (logsumexp of nothing is -inf).

    Args:
      labels: integer labels ``[N]`` (or ``[N, 1]``): Keras' ``y_true``.
      embeddings: ``[N, D]`` (``y_pred``); Keras documents them as L2-normalised and does NOT normalise
        them itself: the formula above is applied to the embeddings as given.
      ref_labels: integer labels ``[M]`` of the reference embeddings; None: ``labels``.
      ref_embeddings: ``[M, D]``; None: ``embeddings`` (then each embedding is on both sides of its
        pairs, and its gradient has both parts). Without ``ref_labels`` the references are labelled by
        ``labels``, so M = N; without ``ref_embeddings`` the ``ref_labels`` label the batch (M = N).
      remove_diagonal: drops the pairs (i, i) from P: Keras builds the mask with ``ops.eye(N, M)``, by
        position, whatever the references are. With the batch as its own reference set these are the
        self-pairs; with another reference set they are the i-th reference for the i-th sample (an
        unrelated pair when the references are a memory bank, where the sample's own copy sits off
        the diagonal and stays a positive), and for M != N the diagonal is the rectangular one.
      keras_mask: Keras' ``circle`` marks its output with the mask ``loss > 0``
        (``backend.set_keras_mask``) and ``Loss.__call__`` reduces with it
        (keras/src/losses/loss.py ``apply_mask``): ``sum_over_batch_size`` and ``mean`` then divide
        by the number of nonzero losses (0 if there is none), ``mean_with_sample_weight`` by the sum
        of the weights of those samples. The function ``keras.losses.circle`` returns ``[N]``
        unreduced. (The class ``keras.losses.Circle`` takes no reference set.)

    Returns shape ``[N]`` (one loss per embedding) for ``reduction="none"``, a scalar otherwise. The
    gradient is with respect to ``embeddings`` and, when given, ``ref_embeddings`` (``[M, D]``).

    Kinks: 1 - x_i.r_j == 0, margin + d == 0 and 1 + margin - d == 0, on pairs that count.
    """
    x = f64(embeddings)
    y = np.asarray(labels).reshape(-1)
    shared = ref_embeddings is None
    r = x if shared else f64(ref_embeddings)
    yr = y if ref_labels is None else np.asarray(ref_labels).reshape(-1)
    nn, mm = x.shape[0], r.shape[0]
    if y.shape != (nn,) or yr.shape != (mm,):
        raise ValueError(f"labels {y.shape} and ref_labels {yr.shape} must label the {nn} embeddings and the "
                         f"{mm} reference embeddings")
    same = y[:, None] == yr[None, :]
    pmask = same & ~np.eye(nn, mm, dtype=bool) if remove_diagonal else same
    nmask = ~same
    dot = x @ r.T
    raw = 1.0 - dot
    d = np.maximum(raw, 0.0)
    dd = (raw > 0).astype(np.float64)                         # d d / d dot = -dd
    wp_raw, wn_raw = margin + d, 1.0 + margin - d
    wp, wn = np.maximum(wp_raw, 0.0), np.maximum(wn_raw, 0.0)
    tp = -gamma * wp * (margin - d)
    tn = gamma * wn * (1.0 - margin - d)
    derr = 1.0 + np.abs(x) @ np.abs(r).T                      # rounding of d, in units of eps
    # derivatives with respect to d, and the magnitudes of their summands
    dtp = -gamma * ((wp_raw > 0) * (margin - d) - wp)
    dtn = -gamma * ((wn_raw > 0) * (1.0 - margin - d) + wn)
    mtp = gamma * ((wp_raw > 0) * np.abs(margin - d) + wp)
    mtn = gamma * ((wn_raw > 0) * np.abs(1.0 - margin - d) + wn)
    # For the gradient, the rounding of the derivatives themselves: d's error moves both factors
    # (|d2t/dd2| = 2 gamma), and the constants 1 +- margin are rounded. Near d = 1 the factors
    # 1 + margin - d and 1 - margin - d are ~margin, so mtn is tiny, but their rounding is still
    # ~eps (seed 23: at d = 1 the derivative is exactly 0, and Keras' float32 gives 0.5 eps gamma)
    rtp = 2.0 * gamma * (wp_raw > 0) * derr
    rtn = gamma * (wn_raw > 0) * (1.0 + margin + 2.0 * derr)
    lp, ap = _logsumexp_masked(tp, pmask)
    ln, an = _logsumexp_masked(tn, nmask)
    z = lp + ln
    valid = np.isfinite(z)
    zf = np.where(valid, z, -np.inf)
    terms = np.where(valid, softplus(zf), 0.0)
    sig = np.where(valid, sigmoid(np.where(valid, z, 0.0)), 0.0)
    # absolute rounding errors, in eps, of each exponent (its own and that of d) and of each row's
    # log-sum-exp; z = lp + ln carries both rows'
    etp, etn = np.abs(tp) + mtp * derr, np.abs(tn) + mtn * derr
    elp = np.where(valid, np.abs(np.where(valid, lp, 0.0)) + np.sum(ap * etp, axis=-1), 0.0)
    eln = np.where(valid, np.abs(np.where(valid, ln, 0.0)) + np.sum(an * etn, axis=-1), 0.0)
    zscale = elp + eln
    scale = terms + sig * zscale
    # The softmax weights exp(t_j - lse) of the gradient inherit the absolute errors of t_j and of
    # lse as relative errors, and sigmoid(z) inherits (1 - sigmoid) times that of z: with gamma = 80
    # the exponents reach ~10^3 (torch's logsumexp backward, exp(t - rounded lse), is off by
    # |lse| eps relative: 2.9e-5 at lse 833 in float32)
    amp_p = 1.0 + etp + (elp + (1.0 - sig) * zscale)[:, None]
    amp_n = 1.0 + etn + (eln + (1.0 - sig) * zscale)[:, None]

    def back(g, mag=False):
        """{input: gradient (or with ``mag`` the magnitude of its summands)}: d loss / d dot_ij is
        gdot_ij, so x_i gets sum_j gdot_ij r_j and r_j gets sum_i gdot_ij x_i."""
        gz = (np.abs(g) if mag else g) * sig
        if mag:
            gd = gz[:, None] * (ap * (mtp * amp_p + rtp) + an * (mtn * amp_n + rtn))
        else:
            gd = gz[:, None] * (ap * dtp + an * dtn)
        gdot = -gd * dd
        xs, rs = (np.abs(x), np.abs(r)) if mag else (x, r)
        gx, gr = gdot @ rs, gdot.T @ xs
        return {"embeddings": gx + gr} if shared else {"embeddings": gx, "ref_embeddings": gr}

    def vjp(g):
        return back(g)

    def gscale(g):
        return {k: np.abs(v) for k, v in back(g, mag=True).items()}

    counted = pmask | nmask
    entry = np.minimum(np.minimum(rel_gap(dot, 1.0), rel_gap(d, -margin)), rel_gap(d, 1.0 + margin))
    entry = np.where(counted, entry, 1.0)
    if shared:
        gap = np.minimum(entry.min(axis=1), entry.min(axis=0))
        kinks = {"embeddings": np.broadcast_to(gap[:, None], x.shape)}
    else:
        kinks = {"embeddings": np.broadcast_to(entry.min(axis=1)[:, None], x.shape),
                 "ref_embeddings": np.broadcast_to(entry.min(axis=0)[:, None], r.shape)}

    if keras_mask:
        reduce_kw = _keras_masked(terms > 0, reduction, reduce_kw)
    return finish(terms, scale, vjp, reduction, kink_gap=kinks, local_grad_scale=gscale, **reduce_kw)


def _keras_masked(mask, reduction, reduce_kw):
    """Keras' ``apply_mask``: the mask becomes (part of) the sample weights; for the means it is
    rescaled by total / valid, so the mean runs over the valid entries only."""
    kw = dict(reduce_kw)
    m = mask.astype(np.float64)
    if reduction in ("mean", "sum_over_batch_size"):
        valid = m.sum()
        m = m * (m.size / valid if valid else 0.0)
    w = kw.get("weights")
    kw["weights"] = m if w is None else np.asarray(w, dtype=np.float64) * m
    return kw


def ntxent(embeddings, labels, *, temperature: float = 0.07, norm_floor: float = 0.0) -> Result:
    """NT-Xent (Chen et al. 2020) as optax ``ntxent(embeddings, labels, temperature)`` computes it.

    With s_ij = cos(x_i, x_j) / temperature (norms floored at ``norm_floor``), positive pairs
    (i, j) (same label, i != j) and negatives k of i (other label):

        loss = mean over positive pairs of -s_ij + log(exp(s_ij) + sum_k exp(s_ik))

    The denominator holds the pair's own positive and i's negatives, not i's other positives. With
    no positive pair the mean is 0/0: NaN (optax returns NaN too).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      norm_floor: optax passes ``epsilon = finfo(dtype).eps`` to ``cosine_similarity``, which
        computes ``sqrt(max(|x|^2, epsilon))``: ``norm_floor = sqrt(finfo(dtype).eps)``
        (1.49e-8 in float64, 3.45e-4 in float32). 0 is the exact cosine (NaN at a zero vector).

    Returns a scalar. Kinks: norms at the floor (a zero vector is below it: its gradient is that of
    x / floor). Source: optax/losses/_self_supervised.py.
    """
    x = f64(embeddings)
    y = np.asarray(labels).reshape(-1)
    nn = x.shape[0]
    nrm = np.sqrt(np.sum(x * x, axis=-1))
    floored = nrm <= norm_floor
    den = np.maximum(nrm, norm_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = x / den[:, None]
    s = (u @ u.T) / temperature
    sabs = (np.abs(u) @ np.abs(u).T) / temperature
    same = y[:, None] == y[None, :]
    match = same & ~np.eye(nn, dtype=bool)
    diff = ~same
    count = int(match.sum())
    total, tscale = 0.0, 0.0
    gs = np.zeros((nn, nn))       # d loss_sum / d s
    ms = np.zeros((nn, nn))       # magnitudes of its summands
    for i, j in zip(*np.nonzero(match)):
        cols = diff[i].copy()
        cols[j] = True
        lse, w = _logsumexp_masked(s[i][None, :], cols[None, :])
        lse, w = float(lse[0]), w[0]
        total += lse - s[i, j]
        # the log of a sum >= 1 (after the max shift) is accurate to eps absolute: the + 1
        tscale += abs(lse) + abs(s[i, j]) + 2.0 * float(np.max(np.where(cols, sabs[i], 0.0))) + 1.0
        gs[i] += w
        gs[i, j] -= 1.0
        ms[i] += w
        ms[i, j] += 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.asarray(total / count) if count else np.asarray(np.nan)
        scale = np.asarray(tscale / count) if count else np.asarray(np.nan)
    inv = 1.0 / count if count else 0.0

    def back(g, mag=False):
        G = (ms if mag else gs) * (float(g) * inv) / temperature
        uu = np.abs(u) if mag else u
        gu = (G + G.T) @ uu
        if mag:
            gx = np.where(floored[:, None], gu, gu + np.abs(u) * np.sum(np.abs(u) * gu, axis=-1, keepdims=True))
        else:
            gx = np.where(floored[:, None], gu, gu - u * np.sum(u * gu, axis=-1, keepdims=True))
        return gx / den[:, None]

    gap = rel_gap(nrm, norm_floor) if norm_floor else nrm / (nrm + 1.0)
    return Result(value=value, scale=scale, vjp=lambda cot: {"embeddings": back(cot)},
                  kink_gap={"embeddings": np.broadcast_to(gap[:, None], x.shape)},
                  grad_scale=lambda cot: {"embeddings": np.abs(back(np.abs(cot), mag=True))})
