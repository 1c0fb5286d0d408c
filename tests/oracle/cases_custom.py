"""Finite-difference cases for reference/custom.py (the seed documents' own losses)."""
import numpy as np

from losscheck.reference import custom as C

from .fd import OracleCase, away_from, batch_shape, reals

REDUCE = ["none", "sum", "mean", "sum_over_batch_size"]


def _reduce(rng):
    return {"reduction": REDUCE[rng.integers(len(REDUCE))]}


def _make_importance(rng):
    shape = batch_shape(rng, rank=int(rng.integers(1, 4)))
    mask_shape = shape if rng.random() < 0.7 else shape[-1:]  # same shape, or broadcast rows
    return ({"predictions": reals(rng, shape, 0.0, 1.0), "labels": reals(rng, shape, 0.0, 1.0)},
            {"mask": rng.choice([0.0, 1.0, 2.0, 4.0], size=mask_shape)} | _reduce(rng))


def _make_sample_weighted(rng):
    # rank 1 included: the seed's w.view(-1, 1) then broadcasts to an (n, n) matrix
    shape = batch_shape(rng, rank=int(rng.integers(1, 3)))
    return ({"predictions": reals(rng, shape), "labels": reals(rng, shape)},
            {"weights": rng.uniform(0.1, 2.0, size=shape[0])} | _reduce(rng))


def _make_class_weighted(rng):
    shape = batch_shape(rng, rank=int(rng.integers(1, 4)))
    return ({"y_true": reals(rng, shape), "y_pred": reals(rng, shape)},
            {"class_weights": rng.uniform(0.2, 1.5, size=shape[-1])} | _reduce(rng))


def _make_huber_l2(rng):
    shape = batch_shape(rng)
    delta = float(rng.choice([0.5, 1.0, 2.0]))
    t = reals(rng, shape)
    p = t + away_from(rng, shape, [-delta, delta], -4.0, 4.0)
    kernel = reals(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 5))), -3.0, 3.0)
    return ({"y_true": t, "y_pred": p, "kernel": kernel},
            {"delta": delta, "lambda_reg": float(rng.choice([0.0, 0.01, 0.5]))} | _reduce(rng))


def _make_graph(floor):
    def make(rng):
        # d >= 2 and an edge between distinct nodes: otherwise every cosine is constant (±1) and the
        # gradient is exactly zero, which finite differences cannot check relatively
        n, d = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        e = reals(rng, (n, d))
        if floor:
            # some rows below the floor, every norm away from it
            e = e * np.where(rng.random((n, 1)) < 0.4, 0.05, 1.0)
            norms = np.linalg.norm(e, axis=1, keepdims=True)
            e = np.where(np.abs(norms - floor) < 0.05 * floor, e * 1.5, e)
        else:
            norms = np.linalg.norm(e, axis=1, keepdims=True)
            e = np.where(norms < 0.1, e + 0.5, e)
        extra = int(rng.integers(0, 2))  # the seed reads only the leading (n, n) block
        adj = (rng.random((n + extra, n + extra)) < 0.5).astype(np.int64)
        adj[0, 1] = 1
        if rng.random() < 0.5:
            adj = np.maximum(adj, adj.T)  # undirected graph, both directions count
        return {"embeddings": e}, {"adjacency": adj, "norm_floor": floor} | _reduce(rng)
    return make


CASES = [
    OracleCase("importance_weighted_mse", C.importance_weighted_mse, _make_importance),
    OracleCase("sample_weighted_mse", C.sample_weighted_mse, _make_sample_weighted),
    OracleCase("class_weighted_mse", C.class_weighted_mse, _make_class_weighted),
    OracleCase("huber_with_l2_penalty", C.huber_with_l2_penalty, _make_huber_l2),
    OracleCase("graph_cosine_loss", C.graph_cosine_loss, _make_graph(0.0)),
    OracleCase("graph_cosine_loss/norm_floor", C.graph_cosine_loss, _make_graph(0.5)),
]
