"""Finite-difference cases for reference/embedding.py and reference/ranking.py."""
import numpy as np

from losscheck.reference import embedding as E
from losscheck.reference import ranking as Rk

from .fd import OracleCase, away_from, labels, reals, reject

TORCH_RED = [dict(reduction="none"), dict(reduction="mean"), dict(reduction="sum")]


def _red(rng):
    return dict(TORCH_RED[rng.integers(len(TORCH_RED))])



def _kink_free(fn, kwargs, gap=1e-3):
    def ok(inputs):
        res = fn(**inputs, **kwargs)
        return all(np.all(np.asarray(g) > gap) for g in res.kink_gap.values())
    return ok


def _make_triplet(distance, optax=False):
    def make(rng):
        n, d = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        shape = (n, d) if rng.random() < 0.8 else (d,)
        if optax:
            kw = {"p": float(rng.choice([2.0, 4.0, 1.0, 3.0])), "eps_root": float(rng.choice([1e-6, 0.0, 0.3])),
                  "axis": int(rng.choice([-1, 0]))}
        elif distance == "cosine":
            kw = {"distance": "cosine", "norm_floor": float(rng.choice([1e-8, 0.5])), "swap": bool(rng.integers(2))}
        else:
            kw = {"p": float(rng.choice([1.0, 1.5, 2.0, 3.0, np.inf])), "eps_shift": float(rng.choice([1e-6, 0.0, 0.2])),
                  "swap": bool(rng.integers(2))}
        kw |= {"margin": float(rng.choice([0.3, 1.0, 2.5]))} | _red(rng)

        def draw(rng):
            a = reals(rng, shape, -2, 2)
            p = a + reals(rng, shape, -1, 1) * rng.choice([0.05, 1.0])   # sometimes close to the anchor
            return ({"anchor": a, "positive": p, "negative": reals(rng, shape, -2, 2)},)

        (inputs,) = reject(rng, draw, _kink_free(E.triplet_margin, kw), tries=400)
        return inputs, kw
    return make


def _make_margin_ranking(rng):
    shape = (int(rng.integers(1, 6)),) if rng.random() < 0.8 else ()
    margin = float(rng.choice([0.0, 0.5, -0.3]))
    y = rng.choice([-1.0, 1.0], size=shape) if rng.random() < 0.7 else away_from(rng, shape, [0.0], -2, 2, gap=0.2)
    x2 = reals(rng, shape)
    z = away_from(rng, shape, [0.0], -3, 3)           # the hinge argument, away from its kink
    x1 = x2 - (z - margin) / y
    return {"input1": x1, "input2": x2, "target": y}, {"margin": margin} | _red(rng)


def _make_hinge_embedding(rng):
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
    margin = float(rng.choice([1.0, 0.0, 2.5]))
    y = rng.choice([-1.0, 1.0], size=shape)
    if rng.random() < 0.2:
        y.reshape(-1)[0] = 0.0                          # neither label: both terms (torch's where())
    return {"input": away_from(rng, shape, [margin], -4, 4)}, {"target": y, "margin": margin} | _red(rng)


def _make_cosine_embedding(rng):
    # d >= 2: in one dimension the cosine is a sign and its gradient O(eps / x^3), below FD noise
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 5))
    batched = rng.random() < 0.8
    shape, yshape = ((n, d), (n,)) if batched else ((d,), ())
    kw = {"margin": float(rng.choice([0.0, 0.5, -0.4])), "eps": float(rng.choice([0.0, 1e-12, 0.3]))} | _red(rng)

    def draw(rng):
        x1, x2 = reals(rng, shape), reals(rng, shape)
        if kw["eps"] and rng.random() < 0.3:
            x1 = x1 * 1e-3                                # near zero: smooth with eps > 0
        return ({"input1": x1, "input2": x2}, rng.choice([-1.0, 1.0], size=yshape))

    inputs, y = reject(rng, draw, lambda i, y: _kink_free(E.cosine_embedding, kw | {"target": y})(i),
                       tries=400)
    return inputs, kw | {"target": y}


def _make_soft_margin(rng):
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
    y = rng.choice([-1.0, 1.0], size=shape) if rng.random() < 0.6 else reals(rng, shape, -2, 2)
    return {"input": reals(rng, shape, -30, 30), "target": y}, _red(rng)


def _make_circle(rng):
    n, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    y = labels(rng, (n,), int(rng.integers(1, 4)))
    kw = {"gamma": float(rng.choice([80.0, 4.0, 1.0])), "margin": float(rng.choice([0.4, 0.1, 0.6])),
          "remove_diagonal": bool(rng.integers(2)), "labels": y}
    red = [dict(reduction="none"), dict(reduction="sum"), dict(reduction="sum_over_batch_size"),
           dict(reduction="mean_with_sample_weight")][rng.integers(4)]
    if rng.random() < 0.5:
        red["weights"] = rng.uniform(0.1, 2.0, size=(n,))
    kw |= red | {"keras_mask": bool(rng.integers(2))}

    def draw(rng):
        x = rng.normal(size=(n, d))
        unit = kw["remove_diagonal"] and rng.random() < 0.5  # the diagonal of unit vectors is a kink
        x = x / np.linalg.norm(x, axis=-1, keepdims=True) * (1.0 if unit else rng.uniform(0.3, 0.9, (n, 1)))
        return ({"embeddings": x},)

    (inputs,) = reject(rng, draw, _kink_free(E.circle, kw), tries=400)
    return inputs, kw


def _make_circle_refs(rng):
    """keras.losses.circle with a reference set: M references of their own (a label of theirs may be
    absent from the batch), a memory bank holding copies of the batch after other rows (the copies are
    separate inputs: each side of a self-pair gets its own gradient), or only one of ref_labels (the
    batch relabelled) and ref_embeddings (labelled by the batch's labels, so M = N)."""
    n, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    k = int(rng.integers(1, 4))
    y = labels(rng, (n,), k)
    form = str(rng.choice(["separate", "bank", "labels", "embeddings"]))
    m = {"separate": int(rng.integers(1, 6)), "bank": n + int(rng.integers(1, 4))}.get(form, n)
    kw = {"gamma": float(rng.choice([80.0, 4.0, 1.0])), "margin": float(rng.choice([0.4, 0.1, 0.6])),
          "remove_diagonal": bool(rng.integers(2)), "labels": y, "reduction": "none"}
    if form in ("separate", "labels"):
        kw["ref_labels"] = labels(rng, (m,), k + 1)
    elif form == "bank":
        kw["ref_labels"] = np.concatenate([labels(rng, (m - n,), k + 1), y])

    def rows(rng, count):
        x = rng.normal(size=(count, d))
        return x / np.linalg.norm(x, axis=-1, keepdims=True) * rng.uniform(0.3, 0.9, (count, 1))

    def draw(rng):
        x = rows(rng, n)
        out = {"embeddings": x}
        if form in ("separate", "embeddings"):
            out["ref_embeddings"] = rows(rng, m)
        elif form == "bank":
            out["ref_embeddings"] = np.concatenate([rows(rng, m - n), x])
        return (out,)

    (inputs,) = reject(rng, draw, _kink_free(E.circle, kw), tries=400)
    return inputs, kw


def _make_ntxent(rng):
    n, d = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    y = labels(rng, (n,), int(rng.integers(1, 4)))
    y[1] = y[0]                                          # at least one positive pair
    kw = {"labels": y, "temperature": float(rng.choice([0.07, 0.5, 1.0])),
          "norm_floor": float(rng.choice([0.0, 1.49e-8, 0.5]))}

    def draw(rng):
        x = reals(rng, (n, d), -2, 2)
        if kw["norm_floor"] == 0.5 and rng.random() < 0.5:
            x[0] *= 0.01                                 # below the floor
        return ({"embeddings": x},)

    (inputs,) = reject(rng, draw, _kink_free(E.ntxent, kw), tries=400)
    return inputs, kw


def _make_ranking(rng):
    shape = [(5,), (3, 4), (2, 2, 3)][rng.integers(3)]
    kw = {"reduce_fn": [None, "sum", "mean"][rng.integers(3)]}
    inputs = {"logits": reals(rng, shape, -6, 6), "labels": rng.integers(0, 4, size=shape).astype(float)}
    if rng.random() < 0.5:
        m = rng.random(shape) < 0.7
        if len(shape) > 1 and rng.random() < 0.5:
            m[0] = False                                   # a list without valid items
        kw["where"] = m
    if rng.random() < 0.5:
        inputs["weights"] = reals(rng, shape, 0.1, 2.0)
    return inputs, kw


CASES = [
    OracleCase("triplet_margin/torch_p", E.triplet_margin, _make_triplet("p")),
    OracleCase("triplet_margin/cosine", E.triplet_margin, _make_triplet("cosine")),
    OracleCase("triplet_margin/optax", E.triplet_margin, _make_triplet("p", optax=True)),
    OracleCase("margin_ranking", E.margin_ranking, _make_margin_ranking),
    OracleCase("hinge_embedding", E.hinge_embedding, _make_hinge_embedding),
    OracleCase("cosine_embedding", E.cosine_embedding, _make_cosine_embedding),
    OracleCase("soft_margin", E.soft_margin, _make_soft_margin),
    OracleCase("circle", E.circle, _make_circle),
    OracleCase("circle/references", E.circle, _make_circle_refs, draws=16),
    OracleCase("ntxent", E.ntxent, _make_ntxent),
    OracleCase("ranking_softmax", Rk.ranking_softmax, _make_ranking),
]
