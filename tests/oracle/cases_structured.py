"""Finite-difference cases for reference/structured.py and Keras' generalized cross-entropy."""
import numpy as np

from losscheck.reference import classification as C
from losscheck.reference import structured as T

from .fd import OracleCase, labels, probs, reals


def _away_from_support_change(rng, n, c):
    """Scores whose sparsemax support is stable under small moves (no score near tau)."""
    while True:
        z = rng.normal(size=(n, c)) * 2
        _, tau = T.projection_simplex(z)
        if np.min(np.abs(z - tau)) > 0.05:
            return z


def _sparsemax_binary(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.uniform(-3, 3, size=(n, c))
    x = np.where(np.abs(np.abs(x) - 1) < 0.05, x * 1.2, x)
    return {"logits": x}, {"labels": rng.integers(0, 2, size=(n, c)), "reduction": str(rng.choice(["none", "mean"]))}


def _sparsemax_multi(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    return {"scores": _away_from_support_change(rng, n, c)}, {"labels": labels(rng, (n,), c)}


def _fenchel_young(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    fun = str(rng.choice(T.MAX_FUNCTIONS))
    z = _away_from_support_change(rng, n, c)
    y = rng.dirichlet(np.ones(c), size=n)
    return {"scores": z, "targets": y}, {"max_fun": fun, "reduction": str(rng.choice(["none", "sum"]))}


def _smooth(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    kw = {"alpha": float(rng.uniform(0, 0.5))}
    if rng.random() < 0.4:
        kw["where"] = rng.random((n, c)) < 0.7
        kw["where"][:, 0] = True
    return {"labels": rng.dirichlet(np.ones(c), size=n)}, kw


def _adaptive(rng):
    d, n = 8, int(rng.integers(1, 5))
    cutoffs = [[2, 6], [2, 4, 6]][rng.integers(2)]
    shortlist, clusters = cutoffs[0], len(cutoffs) - 1
    tails = [(rng.normal(size=(d // 2 ** (i + 1), d)) * 0.5,
              rng.normal(size=(cutoffs[i + 1] - cutoffs[i], d // 2 ** (i + 1))) * 0.5) for i in range(clusters)]
    inputs = {"input": rng.normal(size=(n, d)), "head_weight": rng.normal(size=(shortlist + clusters, d)) * 0.5}
    if rng.random() < 0.5:
        inputs["head_bias"] = rng.normal(size=shortlist + clusters)
    kw = {"target": rng.integers(0, cutoffs[-1], size=n), "cutoffs": cutoffs, "tails": tails,
          "output": str(rng.choice(["loss", "output"]))}
    return inputs, kw




def _adaptive_flat(input, head_weight, head_bias=None, *, target, cutoffs, tails, output, **tail_mats):
    tails = [(tail_mats.get(f"tail_{i}_proj", p), tail_mats.get(f"tail_{i}_out", o)) for i, (p, o) in enumerate(tails)]
    return T.adaptive_log_softmax(input, target, head_weight, tails=tails, cutoffs=cutoffs, head_bias=head_bias,
                                  output=output)


def _adaptive_with_tails(rng):
    inputs, kw = _adaptive(rng)
    for i, (p, o) in enumerate(kw["tails"]):
        inputs[f"tail_{i}_proj"], inputs[f"tail_{i}_out"] = p, o
    return inputs, kw


def _linear_ce(rng):
    n, d, c = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    out = [(), (2,)][rng.integers(2)]
    batched = rng.random() < 0.8
    x = rng.normal(size=(n, d) if batched else (d,))
    w = rng.normal(size=(c, *out, d))
    inputs = {"input": x, "linear_weight": w}
    if rng.random() < 0.5:
        inputs["linear_bias"] = rng.normal(size=(c, *out))
    tshape = ((n,) if batched else ()) + out
    kw = {"reduction": str(rng.choice(["mean", "sum", "none"])), "label_smoothing": float(rng.choice([0.0, 0.2]))}
    if rng.random() < 0.5:
        kw["target"] = rng.integers(0, c, size=tshape)
        if rng.random() < 0.3 and kw["target"].size > 1:
            kw["target"].reshape(-1)[0] = -100
    else:
        p = rng.dirichlet(np.ones(c), size=int(np.prod(tshape)) or 1).reshape(*tshape, c)
        inputs["target"] = np.moveaxis(p, -1, 1 if batched else 0)
    if rng.random() < 0.4:
        kw["weight"] = rng.uniform(0.5, 2.0, size=c)
    return inputs, kw


def _gce(rng):
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    kw = {"y_true": labels(rng, (n,) if rng.random() < 0.5 else (n, 1), c), "q": float(rng.uniform(0.1, 0.9)),
          "reduction": str(rng.choice(["none", "mean"]))}
    return {"y_pred": probs(rng, (n, c), 0.05, 0.95)}, kw


CASES = [
    OracleCase("sparsemax_loss", T.sparsemax_loss, _sparsemax_binary),
    OracleCase("multiclass_sparsemax_loss", T.multiclass_sparsemax_loss, _sparsemax_multi),
    OracleCase("fenchel_young_loss", T.fenchel_young_loss, _fenchel_young),
    OracleCase("smooth_labels", T.smooth_labels, _smooth),
    OracleCase("adaptive_log_softmax", _adaptive_flat, _adaptive_with_tails),
    OracleCase("linear_cross_entropy", T.linear_cross_entropy, _linear_ce),
    OracleCase("categorical_generalized_cross_entropy", C.categorical_generalized_cross_entropy, _gce),
]
