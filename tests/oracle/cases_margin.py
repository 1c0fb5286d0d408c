"""Finite-difference cases for reference/margin.py."""
import numpy as np

from losscheck.reference import margin as M

from .fd import OracleCase, away_from, batch_shape, labels, reals, reject

REDUCE = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum"),
          dict(reduction="sum_over_batch_size", axis=-1)]


def _reduce(rng, shape=None):
    kw = dict(REDUCE[rng.integers(len(REDUCE))])
    if shape is not None and kw.get("axis") is not None and rng.random() < 0.5:
        kw["weights"] = rng.uniform(0.1, 2.0, size=shape[:-1])
    return kw


def _signs(rng, shape):
    """±1 labels with at least one -1 (all-ones labels would be binary and get converted)."""
    t = rng.choice([-1.0, 1.0], size=shape)
    t.reshape(-1)[0] = -1.0
    return t


def _make_hinge(squared, label_kind):
    def make(rng):
        shape = batch_shape(rng)
        if label_kind == "binary01":
            t01 = rng.integers(0, 2, size=shape).astype(float)
            signed = 2.0 * t01 - 1.0          # what Keras converts them to
            t = t01
        elif label_kind == "signs":
            t = signed = _signs(rng, shape)
        else:                                 # soft float targets (no conversion applies)
            t = signed = away_from(rng, shape, [0.0], -2.0, 2.0, gap=0.2)
        # margins 1 - t p away from 0
        p = (1.0 - away_from(rng, shape, [0.0], -3.0, 3.0)) / signed
        kw = {"squared": squared, "convert_binary": label_kind != "soft" and rng.random() < 0.8} | _reduce(rng, shape)
        if label_kind == "binary01":
            kw["convert_binary"] = True
        return {"predictions": p, "targets": t}, kw
    return make


def _make_perceptron(rng):
    shape = batch_shape(rng)
    t = _signs(rng, shape) if rng.random() < 0.7 else away_from(rng, shape, [0.0], -2.0, 2.0, gap=0.2)
    return {"predictions": away_from(rng, shape, [0.0]), "targets": t}, _reduce(rng, shape)


def _tie_free(z, gap=0.05):
    """Every row's maximum is at least ``gap`` above the runner-up (no tie kink)."""
    if z.shape[-1] < 2:
        return True
    top = np.sort(z, axis=-1)
    return bool(np.all(top[..., -1] - top[..., -2] > gap))



def _make_categorical_hinge(one_hot_targets):
    def make(rng):
        shape = batch_shape(rng, max_d=5)

        def draw(rng):
            p = reals(rng, shape)
            if one_hot_targets:
                return p, np.eye(shape[-1])[labels(rng, shape[:-1], shape[-1])]
            return p, reals(rng, shape, 0.0, 1.0)

        def ok(p, t):
            z = (1.0 - t) * p
            return _tie_free(z) and bool(np.all(np.abs(z.max(-1) - (t * p).sum(-1) + 1.0) > 0.05))

        p, t = reject(rng, draw, ok)
        kw = _reduce(rng)
        kw.pop("axis", None)
        return {"predictions": p, "targets": t}, kw
    return make


def _make_multiclass(margin):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        y = labels(rng, shape[:-1], shape[-1])
        oh = np.eye(shape[-1])[y]
        (s,) = reject(rng, lambda r: (reals(r, shape),), lambda s: _tie_free(s + margin * (1.0 - oh)))
        kw = _reduce(rng)
        kw.pop("axis", None)
        return {"scores": s}, kw | {"labels": y}
    return make


CASES = [
    OracleCase("hinge/signs", M.hinge, _make_hinge(False, "signs")),
    OracleCase("hinge/soft_targets", M.hinge, _make_hinge(False, "soft")),
    # {0, 1} labels converted to ±1: the value jumps as soon as a target leaves {0, 1}, so only the
    # predictions' gradient has a finite-difference meaning
    OracleCase("hinge/convert_binary01", M.hinge, _make_hinge(False, "binary01"), skip=("targets",)),
    OracleCase("squared_hinge/signs", M.hinge, _make_hinge(True, "signs")),
    OracleCase("squared_hinge/soft_targets", M.hinge, _make_hinge(True, "soft")),
    OracleCase("squared_hinge/convert_binary01", M.hinge, _make_hinge(True, "binary01"), skip=("targets",)),
    OracleCase("perceptron", M.perceptron, _make_perceptron),
    OracleCase("categorical_hinge/one_hot", M.categorical_hinge, _make_categorical_hinge(True)),
    OracleCase("categorical_hinge/soft", M.categorical_hinge, _make_categorical_hinge(False)),
    OracleCase("multiclass_hinge", M.multiclass_hinge, _make_multiclass(1.0)),
    OracleCase("multiclass_perceptron", M.multiclass_perceptron, _make_multiclass(0.0)),
]
