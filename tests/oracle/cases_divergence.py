"""Finite-difference cases for reference/divergence.py."""
import numpy as np

from losscheck.reference import divergence as D

from .fd import OracleCase, away_from, batch_shape, probs, reals, simplex

TORCH_REDUCE = ["none", "sum", "mean", "batchmean"]
SUMMED_REDUCE = [dict(reduction="none"), dict(reduction="sum"), dict(reduction="mean"),
                 dict(reduction="sum_over_batch_size")]


def _with_zeros(rng, t, frac=0.3):
    """Some targets exactly 0 (0 log 0 = 0; t == 0 is a kink for the target's gradient)."""
    return np.where(rng.random(t.shape) < frac, 0.0, t) if rng.random() < 0.5 else t


def _axis_where(rng, shape, masked):
    """optax ``axis`` (last, first, a tuple or all) and a ``where`` mask when ``masked``."""
    kw = {"axis": [-1, 0, (0, 1), None][rng.integers(4)] if len(shape) > 1 else -1}
    if masked:
        kw["where"] = rng.random(shape) < 0.7
    return kw | SUMMED_REDUCE[rng.integers(len(SUMMED_REDUCE))]


def _make_kl_div(log_target):
    def make(rng):
        shape = batch_shape(rng, rank=int(rng.integers(1, 4)))
        x = np.log(simplex(rng, shape))
        t = reals(rng, shape, -4.0, 0.5) if log_target else _with_zeros(rng, probs(rng, shape, 0.01, 1.5))
        if len(shape) > 1 and rng.random() < 0.3:
            x = x[..., :1]  # torch broadcasts input against target
        return {"input": x, "target": t}, {"log_target": log_target, "reduction": TORCH_REDUCE[rng.integers(4)]}
    return make


def _make_kl_keras(clip):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        if clip is not None and clip > 1e-3:
            # elements on both sides of both clip boundaries, away from them
            t = away_from(rng, shape, [clip, 1.0], 0.0, 1.3, gap=0.01)
            p = away_from(rng, shape, [clip, 1.0], 0.0, 1.3, gap=0.01)
        else:
            t, p = _with_zeros(rng, simplex(rng, shape)), simplex(rng, shape)
        kw = {"clip_eps": clip} | SUMMED_REDUCE[rng.integers(len(SUMMED_REDUCE))]
        if kw["reduction"] != "none" and rng.random() < 0.5:
            kw["weights"] = rng.uniform(0.1, 2.0, size=shape[:-1])
        return {"y_true": t, "y_pred": p}, kw
    return make


def _make_kl_optax(masked):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        return ({"log_predictions": np.log(simplex(rng, shape)), "targets": _with_zeros(rng, simplex(rng, shape))},
                _axis_where(rng, shape, masked))
    return make


def _make_kl_log_targets(masked):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        return ({"log_predictions": np.log(simplex(rng, shape)), "log_targets": reals(rng, shape, -6.0, 1.0)},
                _axis_where(rng, shape, masked))
    return make


def _make_generalized(masked):
    def make(rng):
        shape = batch_shape(rng, max_d=5)
        # unnormalised measures
        return ({"log_predictions": reals(rng, shape, -3.0, 1.5), "targets": probs(rng, shape, 0.01, 4.0)},
                _axis_where(rng, shape, masked))
    return make


CASES = [
    OracleCase("kl_div", D.kl_div, _make_kl_div(False)),
    OracleCase("kl_div/log_target", D.kl_div, _make_kl_div(True)),
    OracleCase("kl_divergence_keras/exact", D.kl_divergence_keras, _make_kl_keras(None)),
    OracleCase("kl_divergence_keras/clip_1e-7", D.kl_divergence_keras, _make_kl_keras(1e-7)),
    OracleCase("kl_divergence_keras/clip_active", D.kl_divergence_keras, _make_kl_keras(0.05)),
    OracleCase("kl_divergence", D.kl_divergence, _make_kl_optax(False)),
    OracleCase("kl_divergence/where", D.kl_divergence, _make_kl_optax(True)),
    OracleCase("kl_divergence_with_log_targets", D.kl_divergence_with_log_targets, _make_kl_log_targets(False)),
    OracleCase("kl_divergence_with_log_targets/where", D.kl_divergence_with_log_targets, _make_kl_log_targets(True)),
    OracleCase("generalized_kl_divergence", D.generalized_kl_divergence, _make_generalized(False)),
    OracleCase("generalized_kl_divergence/where", D.generalized_kl_divergence, _make_generalized(True)),
]
