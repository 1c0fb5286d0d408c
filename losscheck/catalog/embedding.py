"""Embedding, pair and ranking losses of every framework: torch's triplet, margin ranking, hinge
embedding, cosine embedding and soft margin losses (class and functional twins), Keras' Circle loss
(class and function), optax's triplet margin loss, NT-Xent and ranking softmax loss."""
from __future__ import annotations

import dataclasses
import math
from functools import partial

import numpy as np
from hypothesis import strategies as st

from .. import strategies as S
from ..reference import embedding as E
from ..reference import ranking as Rk
from ..tolerance import EPS, MAX
from .build import TORCH_REDUCTIONS, describe, drawer, keras_twins, optax_spec, torch_twins
from . import layouts
from .spec import Arg, Deviation, Expected
from .when import subnormal_difference

DOCS = "https://pytorch.org/docs/stable/generated/torch.nn.{}.html"
OPTAX_DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"
RED = {"reduction": TORCH_REDUCTIONS}
#: aten/src/ATen/native/Loss.cpp: EPSILON is a float32 constant, also for float64 inputs
COSINE_EMBEDDING_EPS = float(np.float32(1e-12))


def _red(case):
    return case.params.get("reduction", "mean")


# ---- inputs --------------------------------------------------------------------------------------

def _embedding_shape(data, unbatched=True):
    n, d = S.batch_size(data), S.classes(data, "D", 1, 5)
    if unbatched and S.flag(data, "unbatched"):
        return (d,)
    return (n, d)


def _triplet_inputs(names=("anchor", "positive", "negative")):
    """Three embeddings; the positive may equal the anchor (or sit within 1e-6 of it) and the
    negative may equal the anchor or be a zero vector: distances of zero are the hard cases."""
    an, pn, nn = names

    def inputs(data, params):
        shp = _embedding_shape(data)
        a = S.reals(data, shp, an, -4.0, 4.0)
        form = S.choice(data, ["free", "equal", "near", "zero"], f"{pn}_form")
        p = {"free": lambda: S.reals(data, shp, pn, -4.0, 4.0), "equal": lambda: a.copy(),
             "near": lambda: a + S.reals(data, shp, pn, -1e-6, 1e-6), "zero": lambda: np.zeros(shp)}[form]()
        nform = S.choice(data, ["free", "free", "equal", "zero"], f"{nn}_form")
        n = {"free": lambda: S.reals(data, shp, nn, -4.0, 4.0), "equal": lambda: a.copy(),
             "zero": lambda: np.zeros(shp)}[nform]()
        return {an: a, pn: p, nn: n}
    return inputs


def _signs(data, shp, label):
    return S.sign_labels(data, shp, label)


def _ranking_pair_inputs(data, params):
    shp = (S.batch_size(data),) if not S.flag(data, "unbatched") else ()
    x1 = S.reals(data, shp, "input1")
    x2 = x1.copy() if S.flag(data, "tied_inputs") else S.reals(data, shp, "input2")
    return {"input1": x1, "input2": x2, "target": _signs(data, shp, "target")}


def _hinge_embedding_inputs(data, params):
    shp = S.shape(data, max_dims=2)
    return {"input": S.reals(data, shp, "input"), "target": _signs(data, shp, "target")}


def _cosine_embedding_inputs(data, params):
    shp = _embedding_shape(data)
    x1 = S.reals(data, shp, "input1")
    if S.flag(data, "input1_zero_vector"):
        x1 = np.zeros(shp)
    x2 = S.reals(data, shp, "input2")
    return {"input1": x1, "input2": x2, "target": _signs(data, shp[:-1], "target")}


def _soft_margin_inputs(data, params):
    shp = S.shape(data, max_dims=2)
    hi = S.choice(data, [8.0, 120.0], "input_range")
    return {"input": S.reals(data, shp, "input", -hi, hi), "target": _signs(data, shp, "target")}


# ---- torch ---------------------------------------------------------------------------------------

TRIPLET = (Arg("anchor"), Arg("positive"), Arg("negative"))
MARGIN = st.one_of(st.sampled_from([1.0, 0.5]), st.floats(0.05, 3.0))


def _triplet_oracle(exact=False):
    def oracle(c):
        return E.triplet_margin(c.inputs["anchor"], c.inputs["positive"], c.inputs["negative"],
                                margin=c.params["margin"], p=c.params["p"], swap=c.params["swap"],
                                eps_shift=0.0 if exact else c.params["eps"], reduction=_red(c))
    return oracle


def _cosine_distance(torch, F):
    return lambda x, y: 1.0 - F.cosine_similarity(x, y, dim=-1)


def _with_distance_call(kind, ns, params):
    """``distance_function`` is drawn by name and built here, inside the framework call."""
    params = dict(params)
    name = params.pop("distance_function")
    fn = None if name == "default" else _cosine_distance(ns.torch, ns.F)
    if kind == "class":
        return ns.torch.nn.TripletMarginWithDistanceLoss(distance_function=fn, **params)
    return partial(ns.F.triplet_margin_with_distance_loss, distance_function=fn, **params)


def _with_distance_oracle(exact=False):
    def oracle(c):
        cosine = c.params["distance_function"] == "cosine"
        kw = ({"distance": "cosine", "norm_floor": 0.0 if exact else 1e-8} if cosine
              else {"p": 2.0, "eps_shift": 0.0 if exact else 1e-6})
        return E.triplet_margin(c.inputs["anchor"], c.inputs["positive"], c.inputs["negative"],
                                margin=c.params["margin"], swap=c.params["swap"], reduction=_red(c), **kw)
    return oracle


def _norm_below_floor(c, dtype) -> bool:
    """The cosine distance, and a nonzero embedding whose norm is below F.cosine_similarity's eps (1e-8)."""
    if c.params.get("distance_function") != "cosine":
        return False
    for k in ("anchor", "positive", "negative"):
        nrm = np.sqrt(np.sum(np.square(np.asarray(c.inputs[k])), axis=-1))
        if np.any((nrm > 0) & (nrm < 1e-8)):
            return True
    return False


COSINE_STRAIGHT_THROUGH = Expected(
    "F.cosine_similarity floors each norm at eps=1e-8 in the value, but its backward differentiates the "
    "unfloored norm (the clamp does not reach autograd): below the floor the gradient is not the derivative "
    "of the value. Verified in float64: x1=[[1e-9, 0]], x2=[[1, 0]] gives cosine 0.1 = 1e-9 / 1e-8 and "
    "d/dx1 = [9e7, 0]; the derivative of x1 . x2 / (1e-8 |x2|) is [1e8, 0] (a zero vector agrees: x1 . x2 = 0)",
    "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Distance.cpp",
    property="gradient", when=_norm_below_floor)


#: (N, D) embeddings, or one unbatched (D,)
TORCH_TRIPLET = layouts.leading({"anchor": 2, "positive": 2, "negative": 2})


def _with_distance_specs():
    specs = torch_twins(
        "TripletMarginWithDistanceLoss", "triplet_margin_with_distance_loss", args=TRIPLET,
        space={**RED, "distance_function": ["default", "cosine"], "margin": MARGIN, "swap": [False, True]},
        inputs=_triplet_inputs(), oracle=_with_distance_oracle(), exact=_with_distance_oracle(exact=True),
        deviation=Deviation("the default distance is pairwise_distance, ||x - y + 1e-6||_2 (eps added to the "
                            "difference); the cosine distance 1 - F.cosine_similarity floors each norm at 1e-8",
                            DOCS.format("TripletMarginWithDistanceLoss")),
        expected=(COSINE_STRAIGHT_THROUGH,),
        family="embedding", reference="embedding.triplet_margin", unbatched=True, lower_bound=0.0,
        batch_layout=TORCH_TRIPLET, notes="distance_function is drawn by name: 'default' (None: pairwise_distance) or 'cosine' "
              "(lambda x, y: 1 - F.cosine_similarity(x, y, dim=-1), built in the call)")
    return [dataclasses.replace(s, call=partial(_with_distance_call, "class" if s.id.startswith("torch.nn.T")
                                                else "functional")) for s in specs]


def _exp_overflows(c, dtype) -> bool:
    """-y x above log(max float) of the tested dtype (88.72 in float32 and bfloat16, 709.78 in float64,
    11.09 in float16)."""
    limit = math.log(MAX[dtype]) - 0.01
    return bool(np.any(-c.inputs["input"] * c.inputs["target"] > limit))


SOFT_MARGIN_OVERFLOW = Expected(
    "soft_margin_loss evaluates log1p(exp(-y x)) and its backward -y z / (1 + z) with z = exp(-y x): both "
    "overflow where -y x > log(max float) (88.7 in float32 and bfloat16, 709.8 in float64, 11.1 in float16). Verified: input=-89, target=1 in "
    "float32 gives loss inf and gradient nan (and input=-800 in float64 the same); the loss is 89, its gradient -1",
    "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Loss.cpp",
    when=_exp_overflows)

SPECS = [
    *torch_twins(
        "TripletMarginLoss", "triplet_margin_loss", args=TRIPLET,
        space={**RED, "margin": MARGIN, "p": [2.0, 1.0, 3.0, 1.5, math.inf], "eps": [1e-6, 1e-3],
               "swap": [False, True]},
        inputs=_triplet_inputs(), oracle=_triplet_oracle(), exact=_triplet_oracle(exact=True),
        deviation=Deviation("pairwise_distance adds eps to every component of the difference, ||a - p + eps||_p, "
                            "so identical embeddings are eps * D^(1/p) apart", DOCS.format("TripletMarginLoss")),
        family="embedding", reference="embedding.triplet_margin(eps_shift=eps)", unbatched=True, lower_bound=0.0,
        batch_layout=TORCH_TRIPLET),
    *_with_distance_specs(),
    *torch_twins(
        "MarginRankingLoss", "margin_ranking_loss", args=(Arg("input1"), Arg("input2"), Arg("target")),
        space={**RED, "margin": st.one_of(st.sampled_from([0.0, 0.5]), st.floats(-1.0, 2.0))},
        inputs=_ranking_pair_inputs,
        oracle=lambda c: E.margin_ranking(c.inputs["input1"], c.inputs["input2"], c.inputs["target"],
                                          margin=c.params["margin"], reduction=_red(c)),
        family="embedding", reference="embedding.margin_ranking", unbatched=True, lower_bound=0.0,
        batch_layout=layouts.leading({"input1": 1, "input2": 1, "target": 1})),
    *torch_twins(
        "HingeEmbeddingLoss", "hinge_embedding_loss", args=(Arg("input"), Arg("target", differentiable=False)),
        space={**RED, "margin": st.one_of(st.sampled_from([1.0, 0.0]), st.floats(-1.0, 3.0))},
        inputs=_hinge_embedding_inputs,
        oracle=lambda c: E.hinge_embedding(c.inputs["input"], c.inputs["target"], margin=c.params["margin"],
                                           reduction=_red(c)),
        family="embedding", reference="embedding.hinge_embedding", unbatched=True, pair=("input", "target")),
    *torch_twins(
        "CosineEmbeddingLoss", "cosine_embedding_loss",
        args=(Arg("input1"), Arg("input2"), Arg("target", differentiable=False)),
        space={**RED, "margin": st.one_of(st.sampled_from([0.0, 0.5]), st.floats(-1.0, 1.0))},
        inputs=_cosine_embedding_inputs,
        oracle=lambda c: E.cosine_embedding(c.inputs["input1"], c.inputs["input2"], c.inputs["target"],
                                            margin=c.params["margin"], eps=COSINE_EMBEDDING_EPS, reduction=_red(c)),
        exact=lambda c: E.cosine_embedding(c.inputs["input1"], c.inputs["input2"], c.inputs["target"],
                                           margin=c.params["margin"], reduction=_red(c)),
        deviation=Deviation("1e-12 (a float32 constant) is added to each squared norm: a zero vector has cosine 0, "
                            "where the exact cosine is undefined", DOCS.format("CosineEmbeddingLoss")),
        family="embedding", reference="embedding.cosine_embedding(eps=float32(1e-12))", unbatched=True,
        lower_bound=0.0, batch_layout=layouts.leading({"input1": 2, "input2": 2, "target": 1})),
    *torch_twins(
        "SoftMarginLoss", "soft_margin_loss", args=(Arg("input"), Arg("target", differentiable=False)),
        space=RED, inputs=_soft_margin_inputs,
        oracle=lambda c: E.soft_margin(c.inputs["input"], c.inputs["target"], reduction=_red(c)),
        expected=(SOFT_MARGIN_OVERFLOW,), family="embedding", reference="embedding.soft_margin", unbatched=True,
        pair=("input", "target"), lower_bound=0.0),
]


# ---- keras ---------------------------------------------------------------------------------------

def _circle_rows(data, n, d, label):
    """``n`` embeddings of size ``d``, L2-normalised (the documented input: Keras does not normalise
    them itself) or scaled off the unit sphere; the last may repeat the first."""
    own = label == "y_pred"   # y_pred keeps the flag labels it always had
    x = S.reals(data, (n, d), label, -4.0, 4.0)
    if S.flag(data, "repeat_first_embedding" if own else f"repeat_first_{label}") and n > 1:
        x[-1] = x[0]
    norms = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    x = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0)
    if not S.flag(data, "unit_norm" if own else f"{label}_unit_norm"):
        x = x * S.reals(data, (n, 1), f"{label}_norm", 0.25, 1.5)
    return x


def _circle_inputs(data, params):
    n, d = S.batch_size(data), S.classes(data, "D", 1, 5)
    y = S.indices(data, (n,), S.classes(data, "num_labels", 1, 3), "y_true")
    return {"y_true": y, "y_pred": _circle_rows(data, n, d, "y_pred")}


#: the reference set of keras.losses.circle, by how often it is drawn: none (the default: the batch
#: against itself), M references of their own, a memory bank (other rows, then the batch), the batch
#: passed explicitly (ref_labels=y_true, ref_embeddings=y_pred: the default's value), and one of the
#: two alone (ref_labels relabels the batch; ref_embeddings are labelled by y_true, so M = N)
CIRCLE_REFERENCE_SETS = ("none", "none", "separate", "separate", "bank", "batch", "labels", "embeddings")


def _circle_fn_inputs(data, params):
    """``_circle_inputs`` and, for the function, a reference set (``CIRCLE_REFERENCE_SETS``). Reference
    labels range over the batch's labels and one more (a class of the references only: more
    negatives); a batch label missing from them leaves its sample without positives (loss 0)."""
    out = _circle_inputs(data, params)
    y, x = out["y_true"], out["y_pred"]
    n, d = x.shape
    form = S.choice(data, CIRCLE_REFERENCE_SETS, "reference_set")
    if form == "none":
        return out
    k = int(np.max(y)) + 2
    if form == "batch":
        out.update(ref_labels=y.copy(), ref_embeddings=x.copy())
    elif form == "labels":
        out["ref_labels"] = S.indices(data, (n,), k, "ref_labels")
    elif form == "embeddings":
        out["ref_embeddings"] = _circle_rows(data, n, d, "ref_embeddings")
    else:
        m = S.batch_size(data, "M")
        labels = S.indices(data, (m,), k, "ref_labels")
        rows = _circle_rows(data, m, d, "ref_embeddings")
        if form == "bank":   # cross-batch memory: the batch's own copies sit at rows m..m+n-1, off the diagonal
            labels, rows = np.concatenate([labels, y]), np.concatenate([rows, x])
        out.update(ref_labels=labels, ref_embeddings=rows)
    return out


def _circle_oracle(case, reduce_kw):
    return E.circle(case.inputs["y_true"], case.inputs["y_pred"], ref_labels=case.inputs.get("ref_labels"),
                    ref_embeddings=case.inputs.get("ref_embeddings"), gamma=case.params["gamma"],
                    margin=case.params["margin"], remove_diagonal=case.params["remove_diagonal"],
                    keras_mask=True, **reduce_kw)


def _circle_fn_layout(case):
    """The batch is y_true/y_pred's axis 0. A reference set of its own (both refs given) is shared by
    every sample and not batched; a lone ref_labels or ref_embeddings pairs with the batch (M = N)."""
    refs = [k for k in ("ref_labels", "ref_embeddings") if k in case.inputs]
    return {"y_true": 0, "y_pred": 0, **({k: 0 for k in refs} if len(refs) == 1 else {})}


def _weighted(c, dtype) -> bool:
    return c.inputs.get("sample_weight") is not None


SAMPLE_WEIGHT_MUTATED = Expected(
    "Loss.__call__ writes into the caller's sample_weight on the torch backend (X008): apply_mask "
    "(keras/src/losses/loss.py) does 'sample_weight *= float_mask' on the tensor it was given (convert_to_tensor "
    "and cast return it as is), and circle() always sets a mask (loss > 0). The value is right, but the caller's "
    "weights are rescaled by total/valid (or zeroed where masked) on every call. Verified: y_true=[0, 1, 1], "
    "y_pred=zeros((3, 1)), sample_weight=torch.tensor([0, 1.5, 1.5]) gives 81.6, 122.4, 183.6 on three calls "
    "(TensorFlow and JAX: 81.6 each time)",
    "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py",
    runtime="keras-torch", code="X008", when=_weighted)


# 2 gamma margin^2 < 87 keeps softplus(p + n) above float32's smallest normal number, so the mask
# "loss > 0" is the same in every dtype (0 only for a sample without positives or without negatives)
CIRCLE_SPACE = {"gamma": st.one_of(st.just(80.0), st.floats(1.0, 128.0)),
                "margin": st.one_of(st.just(0.4), st.floats(0.0, 0.5)), "remove_diagonal": [True, False]}


def _keras_specs():
    specs = keras_twins(
        "Circle", "circle",
        space=CIRCLE_SPACE,
        inputs=_circle_inputs, oracle=_circle_oracle, family="embedding", expected=(SAMPLE_WEIGHT_MUTATED,),
        reference="embedding.circle(keras_mask=True)", pools_batch=True,
        notes="the per-sample losses carry the Keras mask loss > 0: the class's sum_over_batch_size divides by "
              "the number of nonzero losses")
    labels = Arg("y_true", "labels", kind="int", differentiable=False)
    cls, fn = [dataclasses.replace(s, args=(labels, Arg("y_pred", "embeddings"), *s.args[2:])) for s in specs]
    # Only the function takes a reference set (Circle.__init__ has no ref_labels/ref_embeddings, and
    # Loss.__call__ passes y_true, y_pred alone). ref_embeddings is a differentiable argument, as y_pred
    # is: Keras differentiates the loss through both sides of x_i . r_j, and the catalog treats float
    # tensors that enter a loss's formula (triplet positives and negatives, cosine targets, ranking
    # weights) as arguments; array parameters are configuration (where masks, class weights, adjacency).
    fn = dataclasses.replace(
        fn, args=(*fn.args, Arg("ref_labels", kind="int", differentiable=False), Arg("ref_embeddings")),
        draw=drawer(CIRCLE_SPACE, _circle_fn_inputs), batch_layout=_circle_fn_layout,
        params_doc=describe(CIRCLE_SPACE) + ", ref_labels/ref_embeddings=" + "|".join(dict.fromkeys(
            CIRCLE_REFERENCE_SETS)),
        notes="the reference set (ref_labels [M], ref_embeddings [M, D]) is drawn as an input: "
              f"{', '.join(dict.fromkeys(CIRCLE_REFERENCE_SETS))}; remove_diagonal removes the pairs (i, i) "
              "by position (ops.eye(N, M)), whatever the references are")
    return [cls, fn]


SPECS += _keras_specs()


# ---- optax ---------------------------------------------------------------------------------------

OPTAX_TRIPLET = (Arg("anchors", "anchor"), Arg("positives", "positive"), Arg("negatives", "negative"))


def _optax_triplet_oracle(exact=False):
    def oracle(c):
        return E.triplet_margin(c.inputs["anchors"], c.inputs["positives"], c.inputs["negatives"],
                                margin=c.params["margin"], p=float(c.params["norm_degree"]),
                                eps_root=0.0 if exact else c.params["eps"], axis=c.params["axis"])
    return oracle


def _odd_degree_negative(c, dtype) -> bool:
    if c.params["norm_degree"] % 2 == 0:
        return False
    a = c.inputs["anchors"]
    return bool(np.any(a - c.inputs["positives"] < 0) or np.any(a - c.inputs["negatives"] < 0))


ODD_NORM_DEGREE = Expected(
    "optax computes power(anchors - positives, norm_degree) without an absolute value: for an odd norm_degree "
    "a negative component subtracts from the 'norm' (norm_degree=1 gives sum(a - p) + eps, which can be "
    "negative; norm_degree=3 gives (sum (a - p)^3 + eps)^(1/3), NaN when the sum is negative). Verified: "
    "anchors=[[0., 0.]], positives=[[1., 1.]], negatives=[[0., 0.]], norm_degree=1 returns 0 (-2 + 1e-6 - 1e-6 "
    "+ 1 clamped), the documented L1 distance gives 2 + 1 - 0 = 3",
    "https://github.com/google-deepmind/optax/blob/main/optax/losses/_self_supervised.py",
    when=_odd_degree_negative)


_triplet_subnormal_difference = (subnormal_difference("anchors", "positives"),
                                 subnormal_difference("anchors", "negatives"))

TRIPLET_SUBNORMAL_FLUSHED = Expected(
    "XLA on CPU flushes subnormal results to zero: a difference anchors - negatives (or - positives) in the "
    "subnormal range becomes 0, and so does its share of the gradient, although the exact gradient "
    "d / sqrt(d^2 + eps) is a normal number. Verified (jax 0.10.2, CPU, float64): jax.grad of "
    "triplet_margin_loss(anchors=[[2.2e-309]], positives=[[2.2e-309]], negatives=[[0.]], eps=1e-6) with "
    "respect to anchors is [[0.]], the derivative is -2.2e-306 (at 2.2e-300 jax gives -2.2e-297, the derivative)",
    "https://github.com/jax-ml/jax/issues/16200", property="gradient", runtime="jax",
    when=lambda case, dtype: any(w(case, dtype) for w in _triplet_subnormal_difference))


def _optax_triplet_inputs(data, params):
    return _triplet_inputs(("anchors", "positives", "negatives"))(data, params)


def _ntxent_inputs(data, params):
    n, d = S.batch_size(data, lo=2), S.classes(data, "D", 1, 5)
    y = S.indices(data, (n,), S.classes(data, "num_labels", 1, 3), "labels")
    x = S.reals(data, (n, d), "embeddings", -4.0, 4.0)
    form = S.choice(data, ["free", "zero_vector", "repeated"], "embeddings_form")
    if form == "zero_vector":
        x[0] = 0.0
    elif form == "repeated":
        x[-1] = x[0]
    return {"embeddings": x, "labels": y}


def _ntxent_oracle(c):
    # optax passes epsilon = finfo(dtype).eps to cosine_similarity: sqrt(max(|x|^2, eps))
    floor = math.sqrt(EPS[c.dtype])
    return E.ntxent(c.inputs["embeddings"], c.inputs["labels"], temperature=c.params["temperature"],
                    norm_floor=floor)


def _ranking_inputs(data, params):
    shp = S.shape(data, min_dims=1, max_dims=3, min_side=1, max_side=5)
    out = {"logits": S.reals(data, shp, "logits", -10.0, 10.0),
           "labels": S.reals(data, shp, "labels", 0.0, 3.0) if S.flag(data, "graded_labels")
           else S.binary_labels(data, shp, "labels")}
    if S.flag(data, "use_weights"):
        out["weights"] = S.reals(data, shp, "weights", 0.0, 3.0)
    if S.flag(data, "use_where"):
        from hypothesis.extra import numpy as hnp
        where = data.draw(hnp.arrays(bool, shp, elements=st.booleans()), label="where")
        out["__params__"] = {"where": where}
    return out


def _ranking_call(ns, params):
    params = dict(params)
    name = params.pop("reduce_fn")
    reduce_fn = None if name is None else getattr(ns.jnp, name)

    def loss(logits, labels, weights=None):
        return ns.optax.losses.ranking_softmax_loss(logits, labels, weights=weights, reduce_fn=reduce_fn, **params)
    return loss


def _ranking_oracle(c):
    return Rk.ranking_softmax(c.inputs["logits"], c.inputs["labels"], where=c.params.get("where"),
                              weights=c.inputs.get("weights"), reduce_fn=c.params["reduce_fn"])


def _masked_item_weight(c, dtype) -> bool:
    where = c.params.get("where")
    return where is not None and "weights" in c.inputs and not bool(np.all(where))


MASKED_WEIGHT_NAN = Expected(
    "the gradient with respect to weights is NaN at items where= masks out: their logits become -inf, "
    "log_softmax is -inf there, and the backward of labels * weights multiplies the zero cotangent by -inf "
    "(verified with jax.vjp in float64: where=[True, False], weights=[1., 1.] gives d/dweights [x, nan]; the "
    "loss does not depend on a masked item's weight, so its derivative is 0)",
    "https://github.com/google-deepmind/optax/blob/main/optax/losses/_ranking.py",
    property="gradient", code="N003", when=_masked_item_weight)

SPECS += [
    optax_spec("triplet_margin_loss", args=OPTAX_TRIPLET,
               space={"axis": [-1, 0], "norm_degree": [2, 4, 1, 3], "margin": MARGIN, "eps": [1e-6, 1e-3]},
               inputs=_optax_triplet_inputs, oracle=_optax_triplet_oracle(), exact=_optax_triplet_oracle(exact=True),
               deviation=Deviation("eps is added to the sum of powers inside the root, (sum |d|^p + eps)^(1/p): "
                                   "identical embeddings are eps^(1/p) apart", OPTAX_DOCS),
               expected=(ODD_NORM_DEGREE, TRIPLET_SUBNORMAL_FLUSHED), family="embedding",
               reference="embedding.triplet_margin(eps_root=eps)", lower_bound=0.0, unbatched=True,
               batch_layout=layouts.reduced_axes(("anchors", "positives", "negatives")),
               notes="optax has no swap parameter"),
    optax_spec("ntxent", args=(Arg("embeddings"), Arg("labels", kind="int", differentiable=False)),
               space={"temperature": st.one_of(st.just(0.07), st.floats(0.05, 2.0))}, inputs=_ntxent_inputs,
               oracle=_ntxent_oracle, family="embedding",
               reference="embedding.ntxent(norm_floor=sqrt(finfo(dtype).eps))", pools_batch=True,
               notes="without a positive pair the mean over pairs is 0/0 = NaN (undefined)"),
    dataclasses.replace(
        optax_spec("ranking_softmax_loss", args=(Arg("logits"), Arg("labels"), Arg("weights")),
                   space={"reduce_fn": ["mean", "sum", None]}, inputs=_ranking_inputs, oracle=_ranking_oracle,
                   expected=(MASKED_WEIGHT_NAN,), family="ranking", reference="ranking.ranking_softmax",
                   batch_layout=layouts.reduced_axes(("logits", "labels", "weights")),
                   notes="reduce_fn is drawn by name and bound to jnp.mean / jnp.sum / None in the call; "
                         "where= is a parameter, weights= a differentiable input"),
        call=_ranking_call),
]
