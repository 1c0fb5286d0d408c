"""Reference ids for the seed documents' custom losses (``custom.<name>``), bound to the oracles in
``reference/custom.py``.

These are not framework entry points, so they are not in the catalog's registry (its tests hold
every id to a framework namespace): :func:`get` and :data:`SPECS` serve ``losscheck audit
--reference custom.X``, ``losscheck.declare(reference="custom.X")`` and the audit's reference
identification. Each spec's ``call`` is the seed's own correct implementation, so the spec checks
the oracle against the seed too.

Context tensors (masks, weights, the adjacency matrix) are array-valued parameters of the case;
:data:`CONTEXT` says which parameter plays which context role (see ``losscheck.audit.infer``), so a
user's class that takes the context in its constructor can be built from them.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .. import strategies as S
from ..reference import custom as C
from .build import drawer
from .spec import Arg, LossSpec

#: reference id -> {oracle parameter: context role}
CONTEXT = {
    "custom.importance_weighted_mse": {"mask": "mask"},
    "custom.sample_weighted_mse": {"weights": "sample_weights"},
    "custom.class_weighted_mse": {"class_weights": "class_weights"},
    "custom.huber_with_l2_penalty": {"kernel": "kernel"},
    "custom.graph_cosine_loss": {"adjacency": "adjacency"},
}

#: reference id -> {framework: the vectorised form of the loss}, shown with a P001 finding
VECTORISED = {
    "custom.graph_cosine_loss": {
        "torch": ("u = torch.nn.functional.normalize(embeddings, dim=1, eps=1e-8)\n"
                  "loss = -(adjacency[:n, :n].gt(0).to(u.dtype) * (u @ u.T)).sum()"),
        "keras": ("u = keras.ops.normalize(embeddings, axis=1)\n"
                  "loss = -keras.ops.sum(keras.ops.cast(adjacency[:n, :n] > 0, u.dtype) * (u @ keras.ops.transpose(u)))"),
        "tensorflow": ("u = tf.math.l2_normalize(embeddings, axis=1)\n"
                       "loss = -tf.reduce_sum(tf.cast(adjacency[:n, :n] > 0, u.dtype) * tf.matmul(u, u, transpose_b=True))"),
        "jax": ("u = embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)\n"
                "loss = -jnp.sum((adjacency[:n, :n] > 0) * (u @ u.T))"),
    },
}

EIGHTHS = st.integers(1, 16).map(lambda k: k / 8.0)   # weights exact in every float dtype


def _eighths(data, shape, label) -> np.ndarray:
    return S.array(data, shape, EIGHTHS, label)


# ---- seed 002: WeightedMSELoss(importance_mask) ------------------------------------------------

def _importance_inputs(data, params):
    shp = S.shape(data, min_dims=1, max_dims=3)
    mask = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 4.0]), min_size=int(np.prod(shp)),
                              max_size=int(np.prod(shp))), label="mask")
    return {"predictions": S.reals(data, shp, "predictions", 0.0, 1.0),
            "labels": S.reals(data, shp, "labels", 0.0, 1.0),
            "__params__": {"mask": np.reshape(np.asarray(mask, np.float64), shp)}}


def _importance_torch(ns, params):
    mask = params["mask"].float() if hasattr(params["mask"], "float") else params["mask"]

    def forward(predictions, labels):
        squared_error = (predictions - labels) ** 2
        return ns.torch.mean(squared_error * mask)
    return forward


# ---- seed 002: DynamicWeightedLoss(weights) -----------------------------------------------------

def _sample_weighted_inputs(data, params):
    shp = (S.batch_size(data), data.draw(st.integers(1, 4), label="D"))
    return {"predictions": S.reals(data, shp, "predictions"), "labels": S.reals(data, shp, "labels"),
            "__params__": {"weights": _eighths(data, shp[:1], "weights")}}


def _sample_weighted_torch(ns, params):
    weights = params["weights"].float()

    def forward(predictions, labels):
        if predictions.shape[0] != weights.shape[0]:
            raise ValueError("The batch size of predictions does not match the weights shape")
        error = (predictions - labels) ** 2
        return ns.torch.mean(error * weights.view(-1, 1))
    return forward


# ---- seed 001: weighted_mse(y_true, y_pred, class_weights) --------------------------------------

def _class_weighted_inputs(data, params):
    shp = S.shape(data, min_dims=2, max_dims=3)
    return {"y_true": S.reals(data, shp, "y_true"), "y_pred": S.reals(data, shp, "y_pred"),
            "__params__": {"class_weights": _eighths(data, shp[-1:], "class_weights")}}


def _class_weighted_tf(ns, params):
    tf, class_weights = ns.tf, params["class_weights"]

    def weighted_mse(y_true, y_pred):
        weighted_errors = tf.multiply(tf.square(y_true - y_pred), tf.cast(class_weights, y_pred.dtype))
        return tf.reduce_mean(weighted_errors)
    return weighted_mse


# ---- seed 001: custom_huber_loss_with_regularization --------------------------------------------

def _huber_l2_inputs(data, params):
    shp = S.shape(data, min_dims=2, max_dims=2)
    kshape = (data.draw(st.integers(1, 3), label="kernel_rows"), data.draw(st.integers(1, 4), label="kernel_cols"))
    return {"y_true": S.reals(data, shp, "y_true"), "y_pred": S.reals(data, shp, "y_pred"),
            "__params__": {"kernel": _eighths(data, kshape, "kernel")}}


def _huber_l2_tf(ns, params):
    tf = ns.tf
    kernel, delta, lambda_reg = params["kernel"], params["delta"], params["lambda_reg"]

    def loss(y_true, y_pred):
        err = y_true - y_pred
        huber = tf.reduce_mean(tf.where(tf.abs(err) < delta, 0.5 * tf.square(err), delta * (tf.abs(err) - 0.5 * delta)))
        return huber + lambda_reg * tf.cast(tf.reduce_mean(tf.square(kernel)), huber.dtype)
    return loss


# ---- seed 002: GraphDistanceLoss(adjacency_matrix) ----------------------------------------------

def _graph_inputs(data, params):
    n, d = S.batch_size(data, lo=2), data.draw(st.integers(2, 3), label="D")
    e = S.reals(data, (n, d), "embeddings", -4.0, 4.0)
    # the seed divides by the product of two norms: keep it far from float32 underflow (and from 0/0,
    # where the seed's loss and the oracle are both NaN)
    e = np.where(np.linalg.norm(e, axis=1, keepdims=True) < 0.25, e + 0.5, e)
    flat = data.draw(st.lists(st.sampled_from([0, 1]), min_size=n * n, max_size=n * n), label="adjacency")
    adj = np.asarray(flat, np.float64).reshape(n, n)   # float: an integer context is the audit's D002 check
    adj[0, 1] = 1.0
    return {"embeddings": e, "__params__": {"adjacency": adj}}


def _graph_torch(ns, params):
    torch, adj = ns.torch, params["adjacency"].float()

    def forward(embeddings):
        num_nodes = embeddings.shape[0]
        loss = torch.zeros((), dtype=embeddings.dtype)
        for i in range(num_nodes):
            for j in range(num_nodes):
                if adj[i, j] > 0:
                    similarity = torch.dot(embeddings[i], embeddings[j]) / (
                        torch.norm(embeddings[i]) * torch.norm(embeddings[j]))
                    loss = loss - similarity
        return loss
    return forward


def _spec(name, framework, runtime, args, inputs, call, oracle, **extra) -> LossSpec:
    return LossSpec(id=f"custom.{name}", framework=framework, family="custom", reference=f"custom.{name}",
                    args=tuple(args), draw=drawer({}, inputs, fixed=extra.pop("fixed", {})), call=call,
                    oracle=oracle, runtimes=(runtime,), notes="a seed document's own loss (reference/custom.py)",
                    **extra)


SPECS = [
    _spec("importance_weighted_mse", "torch", "torch", [Arg("predictions"), Arg("labels")], _importance_inputs,
          _importance_torch, lambda c: C.importance_weighted_mse(c.inputs["predictions"], c.inputs["labels"],
                                                                 c.params["mask"]), lower_bound=0.0),
    _spec("sample_weighted_mse", "torch", "torch", [Arg("predictions"), Arg("labels")], _sample_weighted_inputs,
          _sample_weighted_torch, lambda c: C.sample_weighted_mse(c.inputs["predictions"], c.inputs["labels"],
                                                                  c.params["weights"]), lower_bound=0.0),
    _spec("class_weighted_mse", "keras", "keras-tensorflow", [Arg("y_true"), Arg("y_pred")], _class_weighted_inputs,
          _class_weighted_tf, lambda c: C.class_weighted_mse(c.inputs["y_true"], c.inputs["y_pred"],
                                                             c.params["class_weights"]),
          swappable=None, lower_bound=0.0),
    _spec("huber_with_l2_penalty", "keras", "keras-tensorflow", [Arg("y_true"), Arg("y_pred")], _huber_l2_inputs,
          _huber_l2_tf, lambda c: C.huber_with_l2_penalty(c.inputs["y_true"], c.inputs["y_pred"], c.params["kernel"],
                                                          delta=c.params["delta"], lambda_reg=c.params["lambda_reg"]),
          fixed={"delta": 1.0, "lambda_reg": 0.01}, lower_bound=0.0),
    _spec("graph_cosine_loss", "torch", "torch", [Arg("embeddings")], _graph_inputs, _graph_torch,
          lambda c: C.graph_cosine_loss(c.inputs["embeddings"], c.params["adjacency"]), pools_batch=True),
]
_BY_ID = {s.id: s for s in SPECS}


def get(spec_id: str) -> LossSpec:
    try:
        return _BY_ID[spec_id]
    except KeyError:
        raise KeyError(f"unknown custom reference {spec_id!r}; known: {', '.join(_BY_ID)}") from None


def is_custom(spec_id: str) -> bool:
    return spec_id.startswith("custom.")
