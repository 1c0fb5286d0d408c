"""Finite-difference cases for reference/regression.py."""
import numpy as np

from losscheck.reference import regression as R

from .fd import OracleCase, away_from, batch_shape, reals

REDUCE = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum"),
          dict(reduction="sum_over_batch_size", axis=-1)]


def _pair(rng, lo=-3, hi=3):
    shape = batch_shape(rng)
    return shape, reals(rng, shape, lo, hi), reals(rng, shape, lo, hi)


def _reduce(rng):
    kw = dict(REDUCE[rng.integers(len(REDUCE))])
    return kw


def _weighted(rng, shape):
    kw = _reduce(rng)
    if kw.get("axis") is not None and rng.random() < 0.5:
        kw["weights"] = rng.uniform(0.1, 2.0, size=shape[:-1])
    return kw


def _make_plain(extra=None, lo=-3, hi=3):
    def make(rng):
        shape, p, t = _pair(rng, lo, hi)
        kw = _weighted(rng, shape)
        kw.update(extra(rng) if extra else {})
        return {"predictions": p, "targets": t}, kw
    return make


def _make_broadcast(rng):
    n, d = int(rng.integers(1, 4)), int(rng.integers(2, 4))
    return {"predictions": reals(rng, (n, 1)), "targets": reals(rng, (n, d))}, _reduce(rng) | {"axis": None}


def _make_huber(rng):
    delta = float(rng.choice([0.5, 1.0, 2.5]))
    shape = batch_shape(rng)
    t = reals(rng, shape)
    d = away_from(rng, shape, [-delta, delta], -4, 4)
    return {"predictions": t + d, "targets": t}, _weighted(rng, shape) | {"delta": delta}


def _make_smooth_l1(rng):
    beta = float(rng.choice([0.0, 0.5, 1.0, 2.0]))
    shape = batch_shape(rng)
    t = reals(rng, shape)
    d = away_from(rng, shape, [-beta, 0.0, beta], -4, 4)
    return {"predictions": t + d, "targets": t}, _reduce(rng) | {"beta": beta}


def _make_l1(rng):
    shape = batch_shape(rng)
    t = reals(rng, shape)
    return {"predictions": t + away_from(rng, shape, [0.0]), "targets": t}, _weighted(rng, shape)


def _make_mape(rng):
    shape = batch_shape(rng)
    t = away_from(rng, shape, [0.0], -5, 5, gap=0.2)
    eps = [None, 1e-7, 0.5][rng.integers(3)]
    if eps == 0.5:
        t = away_from(rng, shape, [-0.5, 0.0, 0.5], -2, 2, gap=0.1)
    p = t + away_from(rng, shape, [0.0], -2, 2)
    return {"predictions": p, "targets": t}, _weighted(rng, shape) | {"epsilon": eps}


def _make_msle(rng):
    shape = batch_shape(rng)
    eps = [None, 1e-7, 0.3][rng.integers(3)]
    p = away_from(rng, shape, [0.3], 0.05, 5.0) if eps == 0.3 else reals(rng, shape, -0.5, 5.0)
    t = away_from(rng, shape, [0.3], 0.05, 5.0) if eps == 0.3 else reals(rng, shape, -0.5, 5.0)
    if eps == 1e-7:
        p, t = np.abs(p) + 0.01, np.abs(t) + 0.01
    return {"predictions": p, "targets": t}, _weighted(rng, shape) | {"epsilon": eps}


def _make_poisson(rng):
    shape = batch_shape(rng)
    return ({"predictions": reals(rng, shape, 0.05, 5.0), "targets": reals(rng, shape, 0.0, 6.0)},
            _weighted(rng, shape) | {"epsilon": float(rng.choice([0.0, 1e-7]))})


def _make_poisson_nll(rng):
    shape = batch_shape(rng)
    log_input = bool(rng.integers(2))
    x = reals(rng, shape, -3, 3) if log_input else reals(rng, shape, 0.05, 5)
    t = away_from(rng, shape, [1.0], 0.0, 6.0)
    kw = {"log_input": log_input, "full": bool(rng.integers(2)), "eps": float(rng.choice([1e-8, 0.0, 0.1]))}
    return {"input": x, "target": t}, kw | dict(REDUCE[rng.integers(3)])


def _make_gaussian_nll(rng):
    n, d = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x, t = reals(rng, (n, d)), reals(rng, (n, d))
    form = rng.integers(4)
    vshape = [(n, d), (n,), (n, 1), (1, d)][form]
    eps = float(rng.choice([1e-6, 0.3]))
    straight = bool(rng.integers(2))
    # Below eps torch passes the gradient straight through the clamp: not a derivative of the
    # value, so finite differences can only check that branch's formula above eps.
    v = away_from(rng, vshape, [eps], eps + 0.05 if straight else 0.05, 3.0, gap=0.03)
    kw = {"full": bool(rng.integers(2)), "eps": eps, "straight_through": straight}
    return {"input": x, "target": t, "var": v}, kw | dict(REDUCE[rng.integers(3)])


def _torch_weight(rng, shape):
    """torch 2.13's element-wise ``weight`` (of the input's shape) with one of its reductions and both
    normalisations of its mean; some weights 0, never all (a mean over sum(w) = 0 is NaN), sometimes a
    negative one (the scale's sum(|w|) / |sum(w)|)."""
    w = rng.uniform(0.1, 3.0, size=shape) * (rng.random(shape) < 0.7)
    w.reshape(-1)[0] = rng.uniform(0.5, 2.0) if rng.random() < 0.8 else -0.3
    return {"weight": w, "reduction": str(rng.choice(["none", "sum", "mean"])),
            "weighted_mean": str(rng.choice(["weight_sum", "count"]))}


def _make_weighted(kind):
    """squared/absolute error and Huber with ``weight``; in one draw of three the input is (N, 1)
    against an (N, D) target, so the weight has the input's shape and broadcasts to the terms."""
    def make(rng):
        n, d = int(rng.integers(1, 4)), int(rng.integers(2, 4))
        shape = (n, 1) if rng.random() < 1 / 3 else batch_shape(rng)
        tshape = (n, d) if shape == (n, 1) else shape
        t = reals(rng, tshape)
        kw = _torch_weight(rng, shape)
        if kind == "squared_error":
            return {"predictions": reals(rng, shape), "targets": t}, kw
        gaps = [0.0] if kind == "absolute_error" else [-1.5, 1.5]
        if kind == "huber":
            kw["delta"] = 1.5
        # residuals away from the kinks, in every pair of the broadcast (input column vs target columns)
        p = reals(rng, shape)
        if shape == (n, 1):
            t = p + away_from(rng, tshape, gaps, -4, 4)
        else:
            p = t + away_from(rng, shape, gaps, -4, 4)
        return {"predictions": p, "targets": t}, kw
    return make


def _make_cosine(negate_ok=True):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        kw = {"axis": int(rng.choice([-1, 0])) if len(shape) > 1 else -1,
              "norm_floor": float(rng.choice([0.0, 1e-7, 0.5]))}
        if negate_ok:
            kw["negate"] = bool(rng.integers(2))
        p, t = reals(rng, shape), reals(rng, shape)
        if kw["norm_floor"] == 0.5 and rng.random() < 0.5:
            p = p * 0.05  # below the floor: the floor branch of the gradient
        if rng.random() < 0.3:
            kw["where"] = rng.random(shape) < 0.7
        kw.update(_reduce(rng) | {"axis": kw["axis"]} if False else {"reduction": str(rng.choice(["none", "mean", "sum"]))})
        return {"predictions": p, "targets": t}, kw
    return make


def _drawn_axis(rng, ndim):
    """optax's ``axis`` as the catalog draws it: an int, a tuple of ints (any order, either sign),
    ``()`` or None."""
    form = rng.choice(["int", "tuple", "tuple", "empty", "none"])
    if form == "int":
        return int(rng.integers(-ndim, ndim))
    if form == "empty":
        return ()
    if form == "none":
        return None
    k = int(rng.integers(1, ndim + 1))
    return tuple(int(a) - (ndim if rng.random() < 0.5 else 0) for a in rng.permutation(ndim)[:k])


def _make_cosine_axes(negate_ok=True):
    """Vectors along one axis, several, none (``axis=()``: one-element vectors) or all (``None``), on
    inputs of rank 1 to 3; ``where`` only with a floor (a wholly masked vector is 0/0 without one)."""
    def make(rng):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(rng.integers(1, 4)) for _ in range(ndim))
        kw = {"axis": _drawn_axis(rng, ndim), "norm_floor": float(rng.choice([0.0, 1e-7, 0.5]))}
        if negate_ok:
            kw["negate"] = bool(rng.integers(2))
        p, t = away_from(rng, shape, 0.0), away_from(rng, shape, 0.0)
        if kw["norm_floor"] == 0.5 and rng.random() < 0.5:
            p = p * 0.05  # below the floor: the floor branch of the gradient
        if kw["norm_floor"] and rng.random() < 0.4:
            kw["where"] = rng.random(shape) < 0.7
        kw["reduction"] = str(rng.choice(["none", "mean", "sum"]))
        return {"predictions": p, "targets": t}, kw
    return make


def _make_keras_cosine_axes(rng):
    """keras.losses.CosineSimilarity as the catalog binds it (negated, norms floored at 1e-7) on a drawn
    axis, under Keras' reductions: sample weights of the per-vector losses' shape (the input's without
    the reduced axes, a scalar for None), 0-d losses left unreduced."""
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(rng.integers(1, 4)) for _ in range(ndim))
    axis = _drawn_axis(rng, ndim)
    p, t = away_from(rng, shape, 0.0), away_from(rng, shape, 0.0)
    kw = {"axis": axis, "norm_floor": 1e-7, "negate": True, "reduce_scalars": False,
          "reduction": str(rng.choice(["none", "sum", "sum_over_batch_size", "mean", "mean_with_sample_weight"]))}
    per_vector = np.shape(R.cosine_similarity(p, t, axis=axis).value)
    if rng.random() < 0.6:
        kw["weights"] = rng.uniform(0.1, 2.0, size=per_vector)
    return {"predictions": p, "targets": t}, kw


CASES = [
    OracleCase("squared_error", R.squared_error, _make_plain()),
    OracleCase("squared_error/half", R.squared_error, _make_plain(lambda rng: {"half": True})),
    OracleCase("squared_error/broadcast", R.squared_error, _make_broadcast),
    OracleCase("absolute_error", R.absolute_error, _make_l1),
    OracleCase("huber", R.huber, _make_huber),
    OracleCase("squared_error/torch_weight", R.squared_error, _make_weighted("squared_error"), draws=10),
    OracleCase("absolute_error/torch_weight", R.absolute_error, _make_weighted("absolute_error"), draws=10),
    OracleCase("huber/torch_weight", R.huber, _make_weighted("huber"), draws=10),
    OracleCase("smooth_l1", R.smooth_l1, _make_smooth_l1),
    OracleCase("log_cosh", R.log_cosh, _make_plain(lo=-30, hi=30)),
    OracleCase("mape", R.mape, _make_mape),
    OracleCase("msle", R.msle, _make_msle),
    OracleCase("poisson", R.poisson, _make_poisson),
    OracleCase("poisson_nll", R.poisson_nll, _make_poisson_nll),
    OracleCase("gaussian_nll", R.gaussian_nll, _make_gaussian_nll),
    OracleCase("cosine_similarity", R.cosine_similarity, _make_cosine()),
    OracleCase("cosine_distance", R.cosine_distance, _make_cosine(negate_ok=False)),
    OracleCase("cosine_similarity/axes", R.cosine_similarity, _make_cosine_axes(), draws=16),
    OracleCase("cosine_distance/axes", R.cosine_distance, _make_cosine_axes(negate_ok=False), draws=16),
    OracleCase("cosine_similarity/keras_axes", R.cosine_similarity, _make_keras_cosine_axes, draws=16),
]
