"""Finite-difference cases for reference/classification.py."""
import numpy as np

from losscheck.reference import classification as R

from .fd import OracleCase, away_from, batch_shape, labels, probs, reals, simplex

REDUCE = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum"),
          dict(reduction="sum_over_batch_size", axis=-1)]
TORCH_REDUCE = ["none", "mean", "sum"]


def _reduce(rng, elementwise=True):
    """Reduction keywords; ``axis=-1`` (Keras' per-sample mean) only for elementwise terms."""
    options = REDUCE if elementwise else REDUCE[:3] + [dict(reduction="sum_over_batch_size")]
    kw = dict(options[rng.integers(len(options))])
    return kw


def _weighted(rng, per_sample_shape):
    kw = _reduce(rng, elementwise=False)
    if rng.random() < 0.4 and len(per_sample_shape):
        kw["weights"] = rng.uniform(0.1, 2.0, size=per_sample_shape)
        if rng.random() < 0.5:
            kw["reduction"] = "mean_with_sample_weight"
    return kw


def _probs_away(rng, shape, points, lo=0.02, hi=0.98):
    """Probabilities in [lo, hi] at least 0.05 from each of ``points`` (clip bounds under test)."""
    return np.clip(away_from(rng, shape, points, lo, hi), lo, hi)


def _choice(rng, options):
    return options[int(rng.integers(len(options)))]


# ---- binary ------------------------------------------------------------------------------------

def _make_bce(rng):
    shape = batch_shape(rng)
    kw = {"label_smoothing": _choice(rng, [0.0, 0.0, 0.1])}
    mode = rng.integers(4)
    p = probs(rng, shape)
    if mode == 0:                                    # Keras: clip at 1e-7 (inactive on these probs)
        kw["clip_eps"] = 1e-7
    elif mode == 1:                                  # a clip that is active on some elements
        kw["clip_eps"] = 0.2
        p = _probs_away(rng, shape, [0.2, 0.8])
    elif mode == 2:                                  # torch BCELoss: clamp at -100 and grad floor
        kw.update(log_clamp=-100.0, grad_floor=1e-12)
    else:                                            # an active log clamp (autodiff gradient: 0 there)
        kw["log_clamp"] = -2.0
        p = _probs_away(rng, shape, [np.exp(-2.0), 1 - np.exp(-2.0)])
    if rng.random() < 0.4:
        kw["weight"] = rng.uniform(0.2, 2.0, size=_choice(rng, [shape[-1:], (shape[0], 1), shape]))
    kw.update(_reduce(rng))
    return {"probs": p, "labels": probs(rng, shape, 0.0, 1.0)}, kw


def _make_bce_binary_labels(rng):
    shape = batch_shape(rng)
    y = labels(rng, shape, 2).astype(np.float64)
    kw = {"clip_eps": _choice(rng, [None, 1e-7]), "label_smoothing": _choice(rng, [0.0, 0.2])}
    return {"probs": probs(rng, shape), "labels": y}, kw | _reduce(rng)


def _make_bce_logits(rng):
    shape = batch_shape(rng)
    x = reals(rng, shape, -6, 6) if rng.random() < 0.7 else reals(rng, shape, -40, 40)
    kw = {"label_smoothing": _choice(rng, [0.0, 0.0, 0.1])}
    if rng.random() < 0.5:
        kw["pos_weight"] = rng.uniform(0.3, 3.0, size=shape[-1:])
    if rng.random() < 0.4:
        kw["weight"] = rng.uniform(0.2, 2.0, size=_choice(rng, [shape[-1:], (shape[0], 1)]))
    return {"logits": x, "labels": probs(rng, shape, 0.0, 1.0)}, kw | _reduce(rng)


# ---- softmax on logits ---------------------------------------------------------------------------

def _make_softmax_ce(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    kw = {}
    if rng.random() < 0.3:                           # classes along axis 1 of a rank-3 array
        shape, axis = (n, c, int(rng.integers(1, 4))), 1
    else:
        shape, axis = (n, c), _choice(rng, [-1, -1, 0])
    kw["axis"] = axis
    x = reals(rng, shape, -5, 5)
    y = simplex(rng, shape, axis=axis) if rng.random() < 0.7 else reals(rng, shape, 0.0, 1.5)
    form = rng.integers(4)
    if form == 0:
        kw["where"] = rng.random(shape) < 0.7
    elif form == 1:
        kw["label_smoothing"] = _choice(rng, [0.1, 0.3])
        if rng.random() < 0.5:
            kw["smoothing_classes"] = 7
    elif form == 2 and axis in (-1, len(shape) - 1):
        kw["class_weight"] = rng.uniform(0.2, 2.0, size=(shape[-1],))
    batch = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
    return {"logits": x, "labels": y}, kw | _weighted(rng, batch)


def _make_softmax_ce_rowmask(rng):
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    where = rng.random((n,)) < 0.6                   # batch-shaped where masks whole rows
    return ({"logits": reals(rng, (n, c)), "labels": simplex(rng, (n, c))},
            {"where": where, "reduction": _choice(rng, TORCH_REDUCE)})


def _make_softmax_ce_tuple_axis(rng):
    shape = (int(rng.integers(1, 4)), 2, int(rng.integers(2, 4)))
    return ({"logits": reals(rng, shape), "labels": simplex(rng, (shape[0], 2 * shape[2])).reshape(shape)},
            {"axis": (1, 2), "reduction": _choice(rng, TORCH_REDUCE)})


def _make_softmax_ce_broadcast_labels(rng):
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    return {"logits": reals(rng, (n, c)), "labels": simplex(rng, (1, c))}, {"reduction": "sum"}


def _make_safe(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    y = simplex(rng, (n, c))
    y = np.where(rng.random((n, c)) < 0.3, 0.0, y)   # zero labels: the entries the 0 log 0 rule covers
    return {"logits": reals(rng, (n, c), -8, 8), "labels": y}, _reduce(rng, elementwise=False)


def _make_integer_labels(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    kw = {"labels": labels(rng, (n,), c)}
    if rng.random() < 0.5:
        kw["where"] = rng.random((n, c)) < 0.7 if rng.random() < 0.7 else rng.random((n,)) < 0.7
    return {"logits": reals(rng, (n, c), -6, 6)}, kw | _reduce(rng, elementwise=False)


def _make_integer_labels_axes(rng):
    shape = (int(rng.integers(1, 4)), 2, 3)
    if rng.random() < 0.5:
        return ({"logits": reals(rng, shape)},
                {"labels": labels(rng, (shape[0],), 6), "axis": (1, 2), "reduction": "none"})
    return ({"logits": reals(rng, shape)},
            {"labels": labels(rng, (shape[0], 3), 2), "axis": 1, "reduction": "sum"})


def _make_poly(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    kw = {"epsilon": _choice(rng, [2.0, -1.0, 0.5])}
    if rng.random() < 0.4:
        kw["where"] = rng.random((n, c)) < 0.7
    x = reals(rng, (n, c), -5, 5) if rng.random() < 0.7 else reals(rng, (n, c), -30, 30)
    return {"logits": x, "labels": simplex(rng, (n, c))}, kw | _weighted(rng, (n,))


# ---- categorical on probabilities ----------------------------------------------------------------

def _make_categorical(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    order = _choice(rng, ["renormalize_then_clip", "clip_then_renormalize", None])
    clip = _choice(rng, [None, 1e-7, 0.15])
    if order is None and clip is None or rng.random() < 0.3:
        p = simplex(rng, (n, c))
    else:
        p = rng.uniform(0.03, 1.2, size=(n, c))       # unnormalised: exercises the renormalisation
    kw = {"order": order, "clip_eps": clip, "label_smoothing": _choice(rng, [0.0, 0.0, 0.2])}
    axis = _choice(rng, [-1, 0])
    kw["axis"] = axis
    y = simplex(rng, (n, c), axis=axis)
    return {"probs": p, "labels": y}, kw | _reduce(rng, elementwise=False)


def _make_categorical_clip_bounds(rng):
    """An explicit (lo, hi) pair, e.g. the float32-rounded Keras bounds."""
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    bounds = (float(np.float32(1e-7)), float(np.float32(1 - 1e-7)))
    return ({"probs": simplex(rng, (n, c)), "labels": simplex(rng, (n, c))},
            {"clip_eps": bounds, "reduction": "sum"})


def _make_sparse(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    from_logits = bool(rng.integers(2))
    kw = {"from_logits": from_logits}
    if rng.random() < 0.3:
        shape, axis = (n, c, int(rng.integers(1, 4))), 1
        lab_shape = (n, shape[2])
    else:
        shape, axis, lab_shape = (n, c), -1, (n,)
    kw["axis"] = axis
    x = reals(rng, shape, -5, 5) if from_logits else rng.uniform(0.03, 1.0, size=shape)
    if not from_logits:
        kw["clip_eps"] = _choice(rng, [None, 1e-7, 0.15])
        kw["order"] = _choice(rng, ["renormalize_then_clip", "clip_then_renormalize", None])
        if kw["order"] is None:
            x = simplex(rng, shape, axis=axis)
    lab = labels(rng, lab_shape, c)
    if rng.random() < 0.5:
        kw["ignore_class"] = int(_choice(rng, [-1, 255]))
        lab = np.where(rng.random(lab_shape) < 0.3, kw["ignore_class"], lab)
    if axis == -1 and rng.random() < 0.2:
        lab = lab[..., None]                          # Keras squeezes a trailing size-1 label axis
    kw["labels"] = lab
    return {"output": x}, kw | _weighted(rng, lab_shape)


# ---- torch ---------------------------------------------------------------------------------------

def _torch_shapes(rng):
    c = int(rng.integers(2, 6))
    layout = rng.integers(4)
    if layout == 0:
        return (c,), ()
    n = int(rng.integers(1, 5))
    if layout == 1:
        return (n, c), (n,)
    if layout == 2:
        d = int(rng.integers(1, 4))
        return (n, c, d), (n, d)
    d1, d2 = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    return (n, c, d1, d2), (n, d1, d2)


def _index_target(rng, tshape, c, ignore_index):
    t = labels(rng, tshape, c)
    if ignore_index is not None and rng.random() < 0.6:
        ign = rng.random(tshape) < 0.3
        if np.all(ign):
            ign.reshape(-1)[0] = False                # keep the mean's divisor nonzero
        t = np.where(ign, ignore_index, t)
    return t


def _make_cross_entropy_index(rng):
    shape, tshape = _torch_shapes(rng)
    c = shape[0] if len(shape) == 1 else shape[1]
    kw = {"reduction": _choice(rng, TORCH_REDUCE), "label_smoothing": _choice(rng, [0.0, 0.0, 0.1, 0.25])}
    ignore = _choice(rng, [-100, 1, None])
    if ignore is not None:
        kw["ignore_index"] = ignore
    if rng.random() < 0.5:
        kw["weight"] = rng.uniform(0.2, 2.0, size=(c,))
    kw["target"] = _index_target(rng, tshape, c, ignore if ignore is not None else -100)
    return {"input": reals(rng, shape, -5, 5)}, kw


def _make_cross_entropy_prob(rng):
    shape, _ = _torch_shapes(rng)
    cdim = 0 if len(shape) == 1 else 1
    kw = {"reduction": _choice(rng, TORCH_REDUCE), "label_smoothing": _choice(rng, [0.0, 0.0, 0.2])}
    if rng.random() < 0.5:
        kw["weight"] = rng.uniform(0.2, 2.0, size=(shape[cdim],))
    return {"input": reals(rng, shape, -5, 5), "target": simplex(rng, shape, axis=cdim)}, kw


def _make_nll(rng):
    shape, tshape = _torch_shapes(rng)
    c = shape[0] if len(shape) == 1 else shape[1]
    kw = {"reduction": _choice(rng, TORCH_REDUCE)}
    ignore = _choice(rng, [-100, 0])
    kw["ignore_index"] = ignore
    if rng.random() < 0.5:
        kw["weight"] = rng.uniform(0.2, 2.0, size=(c,))
    kw["target"] = _index_target(rng, tshape, c, ignore)
    return {"input": reals(rng, shape, -6, 0)}, kw


# ---- focal ---------------------------------------------------------------------------------------

def _make_binary_focal(rng):
    shape = batch_shape(rng)
    from_logits = bool(rng.integers(2))
    kw = {"from_logits": from_logits, "gamma": _choice(rng, [2.0, 0.0, 0.5, 1.0, 3.5]),
          "alpha": _choice(rng, [0.25, 0.6]), "apply_class_balancing": bool(rng.integers(2)),
          "label_smoothing": _choice(rng, [0.0, 0.0, 0.1]), "clip_eps": _choice(rng, [None, 1e-7, 0.2])}
    if from_logits:
        z = reals(rng, shape, -5, 5)
        if kw["clip_eps"] == 0.2:
            k = np.log(0.2 / 0.8)
            z = away_from(rng, shape, [k, -k], -4, 4, gap=0.1)
    else:
        z = probs(rng, shape, 0.03, 0.97)
        if kw["clip_eps"] == 0.2:
            z = _probs_away(rng, shape, [0.2, 0.8], 0.03, 0.97)
    y = probs(rng, shape, 0.0, 1.0) if rng.random() < 0.6 else labels(rng, shape, 2).astype(np.float64)
    return {"output": z, "labels": y}, kw | _reduce(rng)


def _make_categorical_focal(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    from_logits = bool(rng.integers(2))
    kw = {"from_logits": from_logits, "gamma": _choice(rng, [2.0, 0.0, 0.5, 3.0]),
          "label_smoothing": _choice(rng, [0.0, 0.0, 0.2]), "clip_eps": _choice(rng, [None, 1e-7, 0.15])}
    kw["alpha"] = _choice(rng, [0.25, 1.0, "list"])
    if kw["alpha"] == "list":
        kw["alpha"] = list(rng.uniform(0.1, 1.0, size=c))
    z = reals(rng, (n, c), -4, 4) if from_logits else rng.uniform(0.03, 1.0, size=(n, c))
    y = simplex(rng, (n, c)) if rng.random() < 0.5 else np.eye(c)[labels(rng, (n,), c)]
    return {"output": z, "labels": y}, kw | _weighted(rng, (n,))


def _make_sigmoid_focal(rng):
    shape = batch_shape(rng)
    kw = {"alpha": _choice(rng, [None, 0.25, 0.7]), "gamma": _choice(rng, [2.0, 0.0, 0.5, 1.0, 4.0])}
    x = reals(rng, shape, -6, 6) if rng.random() < 0.7 else reals(rng, shape, -30, 30)
    y = probs(rng, shape, 0.0, 1.0) if rng.random() < 0.6 else labels(rng, shape, 2).astype(np.float64)
    return {"logits": x, "labels": y}, kw | _reduce(rng)


CASES = [
    OracleCase("binary_cross_entropy", R.binary_cross_entropy, _make_bce, draws=10),
    OracleCase("binary_cross_entropy/hard_labels", R.binary_cross_entropy, _make_bce_binary_labels),
    OracleCase("binary_cross_entropy_with_logits", R.binary_cross_entropy_with_logits, _make_bce_logits, draws=8),
    OracleCase("softmax_cross_entropy", R.softmax_cross_entropy, _make_softmax_ce, draws=10),
    OracleCase("softmax_cross_entropy/row_where", R.softmax_cross_entropy, _make_softmax_ce_rowmask),
    OracleCase("softmax_cross_entropy/tuple_axis", R.softmax_cross_entropy, _make_softmax_ce_tuple_axis),
    OracleCase("softmax_cross_entropy/broadcast_labels", R.softmax_cross_entropy, _make_softmax_ce_broadcast_labels),
    OracleCase("safe_softmax_cross_entropy", R.safe_softmax_cross_entropy, _make_safe),
    OracleCase("softmax_cross_entropy_with_integer_labels", R.softmax_cross_entropy_with_integer_labels,
               _make_integer_labels, draws=8),
    OracleCase("softmax_cross_entropy_with_integer_labels/axes", R.softmax_cross_entropy_with_integer_labels,
               _make_integer_labels_axes),
    OracleCase("poly_loss_cross_entropy", R.poly_loss_cross_entropy, _make_poly, draws=8),
    OracleCase("categorical_cross_entropy", R.categorical_cross_entropy, _make_categorical, draws=12),
    OracleCase("categorical_cross_entropy/clip_bounds", R.categorical_cross_entropy, _make_categorical_clip_bounds),
    OracleCase("sparse_categorical_cross_entropy", R.sparse_categorical_cross_entropy, _make_sparse, draws=12),
    OracleCase("cross_entropy/index", R.cross_entropy, _make_cross_entropy_index, draws=12),
    OracleCase("cross_entropy/probabilities", R.cross_entropy, _make_cross_entropy_prob, draws=8),
    OracleCase("nll_loss", R.nll_loss, _make_nll, draws=8),
    OracleCase("binary_focal_cross_entropy", R.binary_focal_cross_entropy, _make_binary_focal, draws=12),
    OracleCase("categorical_focal_cross_entropy", R.categorical_focal_cross_entropy, _make_categorical_focal,
               draws=12),
    OracleCase("sigmoid_focal_loss", R.sigmoid_focal_loss, _make_sigmoid_focal, draws=10),
]
