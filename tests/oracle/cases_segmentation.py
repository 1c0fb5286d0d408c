"""Finite-difference cases for reference/segmentation.py."""
import numpy as np

from losscheck.reference import segmentation as SG

from .fd import OracleCase, probs, reals

KERAS_REDUCE = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum")]


def _targets(rng, shape):
    """0/1 masks (some all-zero) or soft targets."""
    if rng.random() < 0.5:
        return probs(rng, shape)
    t = rng.integers(0, 2, size=shape).astype(float)
    if rng.random() < 0.3:
        t[...] = 0.0
    return t


def _keras_axis(rng, rank):
    opts = [None, -1] + ([(1,), tuple(range(1, rank))] if rank > 1 else [])
    return opts[rng.integers(len(opts))]


def _make_keras(tversky):
    def make(rng):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 4, size=rank))
        kw = {"axis": _keras_axis(rng, rank), "epsilon": float(rng.choice([1e-7, 0.0, 0.5])),
              "smooth": float(rng.choice([0.0, 1.0]))} | KERAS_REDUCE[rng.integers(3)]
        if tversky:
            kw |= {"alpha": float(rng.uniform(0, 1)), "beta": float(rng.uniform(0, 1))}
        # predictions off 0 so that a zero epsilon and smooth keep the denominator away from 0
        return {"predictions": probs(rng, shape, 0.05, 1.0), "targets": _targets(rng, shape)}, kw
    return make


def _class_shape(rng):
    rank = int(rng.integers(2, 5))
    return tuple(int(v) for v in rng.integers(1, 4, size=rank - 1)) + (int(rng.integers(1, 5)),)


def _one_hot_or_soft(rng, shape):
    if rng.random() < 0.5:
        return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    t = probs(rng, shape)
    return t / t.sum(axis=-1, keepdims=True)


def _probabilities(rng, shape, apply_softmax):
    if apply_softmax:
        return reals(rng, shape, -6, 6)
    p = probs(rng, shape)
    return p / p.sum(axis=-1, keepdims=True)


def _make_dice_loss(rng):
    shape = _class_shape(rng)
    rank = len(shape)
    soft = bool(rng.random() < 0.7)
    axes = [None, ()] + ([(1,), (0, 1), -2] if rank > 2 else [0])
    kw = {"smooth": float(rng.choice([1.0, 0.1, 0.0])), "alpha": float(rng.uniform(0, 1)),
          "beta": float(rng.uniform(0, 1)), "apply_softmax": soft,
          "class_reduction": str(rng.choice(["mean", "sum", "none"])), "ignore_background": bool(rng.integers(2)),
          "axis": axes[rng.integers(len(axes))]}
    if rng.random() < 0.5:
        kw["class_weights"] = rng.uniform(0.0, 2.0, size=shape[-1])
    x, t = _probabilities(rng, shape, soft), _one_hot_or_soft(rng, shape)
    if shape[-1] == 1 and rng.random() < 0.5:     # the rank-adjusting layouts
        x, t = (x[..., 0], t) if rng.random() < 0.5 else (x, t[..., 0])
    return {"predictions": x, "targets": t}, kw


def _make_binary(rng):
    shape = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    sig = bool(rng.random() < 0.7)
    x = reals(rng, shape, -6, 6) if sig else probs(rng, shape)
    t = rng.integers(0, 2, size=shape).astype(float) if rng.random() < 0.5 else probs(rng, shape)
    return {"predictions": x, "targets": t}, {"smooth": float(rng.choice([1.0, 0.1])), "apply_sigmoid": sig}


def _make_generalized(rng):
    shape = _class_shape(rng)
    soft = bool(rng.random() < 0.7)
    t = _one_hot_or_soft(rng, shape) if rng.random() < 0.5 else probs(rng, shape, 0.1, 1.0)
    kw = {"smooth": float(rng.choice([1.0, 0.1])), "apply_softmax": soft,
          "ignore_background": bool(rng.integers(2)), "weight_epsilon": float(rng.choice([1e-7, 0.0, 0.5]))}
    return {"predictions": _probabilities(rng, shape, soft), "targets": t}, kw


CASES = [
    OracleCase("keras_dice", SG.dice, _make_keras(False)),
    OracleCase("keras_tversky", SG.tversky, _make_keras(True)),
    OracleCase("optax_dice_loss", SG.dice_loss, _make_dice_loss, draws=10),
    OracleCase("optax_binary_dice_loss", SG.binary_dice_loss, _make_binary),
    OracleCase("optax_generalized_dice_loss", SG.generalized_dice_loss, _make_generalized, draws=8),
]
