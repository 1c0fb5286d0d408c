"""Finite-difference cases for reference/multimargin.py."""
import numpy as np

from losscheck.reference import multimargin as MM

from .fd import OracleCase, away_from, reals, reject

REDUCE = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum")]


def _shape(rng):
    c = int(rng.integers(1, 6))
    return (c,) if rng.random() < 0.25 else (int(rng.integers(1, 5)), c)



def _make_multi_margin(p):
    def make(rng):
        shape = _shape(rng)
        margin = float(rng.choice([1.0, 0.5, 0.0, 2.5]))
        y = rng.integers(0, shape[-1], size=shape[:-1])

        def ok(x):
            x2 = np.atleast_2d(x)
            xy = x2[np.arange(x2.shape[0]), np.atleast_1d(y)]
            other = np.arange(x2.shape[1]) != np.atleast_1d(y)[:, None]
            return bool(np.all(np.abs(xy[:, None] - x2 - margin)[other] > 0.05))

        (x,) = reject(rng, lambda r: (reals(r, shape),), ok, tries=500)
        kw = {"p": p, "margin": margin, "target": y} | REDUCE[rng.integers(3)]
        if rng.random() < 0.5:
            kw["weight"] = rng.uniform(0.0, 3.0, size=shape[-1])
        return {"input": x}, kw
    return make


def _padded_targets(rng, shape):
    """Index targets padded with -1: a prefix of classes (possibly repeated, possibly empty), a -1,
    then anything (ignored)."""
    c = shape[-1]
    t = np.full(shape, -1, dtype=np.int64)
    for row in t.reshape(-1, c):
        k = int(rng.integers(0, c + 1))
        row[:k] = rng.choice(c, size=k, replace=rng.random() < 0.3)
        if k + 1 < c:
            row[k + 1:] = rng.integers(-1, c, size=c - k - 1)
    return t


def _make_multilabel_margin(rng):
    shape = _shape(rng)
    t = _padded_targets(rng, shape)

    def ok(x):
        prefix, is_t = MM.multilabel_target_mask(np.atleast_2d(t))
        x2 = np.atleast_2d(x)
        xj = np.take_along_axis(x2, np.where(prefix, np.atleast_2d(t), 0), axis=1)
        d = xj[:, :, None] - x2[:, None, :] - 1.0
        pair = prefix[:, :, None] & ~is_t[:, None, :]
        return bool(np.all(np.abs(d[pair]) > 0.05))

    (x,) = reject(rng, lambda r: (reals(r, shape),), ok, tries=500)
    return {"input": x}, {"target": t} | REDUCE[rng.integers(3)]


def _make_soft_margin(rng):
    shape = _shape(rng)
    y = rng.integers(0, 2, size=shape).astype(float) if rng.random() < 0.5 else rng.uniform(0, 1, size=shape)
    kw = dict(REDUCE[rng.integers(3)])
    if rng.random() < 0.5:
        kw["weight"] = rng.uniform(0.0, 3.0, size=shape[-1])
    return {"input": away_from(rng, shape, [0.0], -20, 20), "target": y}, kw


CASES = [
    OracleCase("multi_margin/p1", MM.multi_margin, _make_multi_margin(1)),
    OracleCase("multi_margin/p2", MM.multi_margin, _make_multi_margin(2)),
    OracleCase("multilabel_margin", MM.multilabel_margin, _make_multilabel_margin, draws=10),
    OracleCase("multilabel_soft_margin", MM.multilabel_soft_margin, _make_soft_margin),
]
