"""Structured-prediction and output-layer losses across frameworks: optax's sparsemax and
Fenchel-Young losses and ``smooth_labels``, Keras' generalized cross-entropy, and torch's losses
that own their output layer (``AdaptiveLogSoftmaxWithLoss``, ``LinearCrossEntropyLoss``).

The torch modules create their own weights; the specs draw those weights and put them into the
module with ``torch.func.functional_call``, so the oracle sees the same weights and the weights'
gradients are checked too.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import strategies as S
from ..reference import classification as C
from ..reference import structured as T
from .build import TORCH_REDUCTIONS, drawer, describe, draw_params, keras_twins, optax_spec
from . import layouts
from .spec import Arg, Case, Expected, LossSpec

OPTAX_DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"
INT = dict(kind="int")


# ---- optax --------------------------------------------------------------------------------------

def _scores(data, label="scores", lo_dims=1):
    shp = S.shape(data, min_dims=lo_dims, max_dims=3, max_side=5)
    return shp, S.reals(data, shp, label, -S.choice(data, [3.0, 30.0], f"{label}_range"),
                        S.choice(data, [3.0, 30.0], f"{label}_range_hi"))


def _sparsemax_inputs(data, params):
    shp, x = _scores(data, "logits")
    return {"logits": x, "labels": S.binary_labels(data, shp, "labels").astype(np.int64)}


def _multiclass_inputs(data, params):
    n, c = S.batch_size(data, hi=5), S.classes(data)
    return {"scores": S.reals(data, (n, c), "scores", -5.0, 5.0), "labels": S.indices(data, (n,), c, "labels")}


def _fy_inputs(data, params):
    shp, z = _scores(data, "scores")
    y = S.simplex(data, shp, "targets") if S.flag(data, "targets_on_simplex") else S.reals(data, shp, "targets")
    return {"scores": z, "targets": y}


def _gini_max(ns, z):
    p = ns.optax.projections.projection_simplex(z)
    return p @ z - 0.5 * p @ p + 0.5


def _fenchel_young(ns, params):
    max_fun = {"logsumexp": lambda: ns.jax.nn.logsumexp, "max": lambda: ns.jnp.max,
               "sparsemax": lambda: partial(_gini_max, ns)}[params["max_fun"]]()
    return ns.optax.losses.make_fenchel_young_loss(max_fun)


def _smooth_inputs(data, params):
    shp = S.shape(data, min_dims=1, max_dims=3, max_side=5)
    y = S.one_hot_rows(data, shp, "labels") if S.flag(data, "one_hot") else S.simplex(data, shp, "labels")
    out = {"labels": y}
    if S.flag(data, "use_where"):
        # every slice along ``axis`` keeps at least one class: optax divides by their count
        axis = params["axis"]
        moved = np.moveaxis(np.empty(shp), axis, -1).shape
        out["__params__"] = {"where": np.moveaxis(S.mask(data, moved, "where"), -1, axis)}
    return out


SIMPLEX_F32_X64 = Expected(
    "optax.projections.projection_simplex (sparsemax) returns float64 for float32 input when jax_enable_x64 is on "
    "(its `s = 1` scale promotes), and its custom JVP then returns a float32 tangent for a float64 primal, which "
    "JAX rejects. Verified (jax 0.10.2, optax 0.2.8): with x64 on, jax.grad of projection_simplex(float32[2])[0] "
    "raises TypeError 'Custom JVP rule must produce primal and tangent outputs with corresponding shapes and "
    "dtypes'; with x64 off it returns [0.5, -0.5]",
    "https://github.com/google-deepmind/optax/blob/main/optax/projections/_projections.py",
    property="gradient", dtype="float32", code="X001")

def _smooth_layout(case):
    """smooth_labels returns the labels' shape: its batch must be the leading axis (class axis last)."""
    out = layouts.reduced_axes(("labels",))(case)
    if isinstance(out, dict) and out.get("labels"):
        return "with the class axis first the smoothed labels' batch axis is not the leading one"
    return out


OPTAX = [
    optax_spec("sparsemax_loss", args=(Arg("logits"), Arg("labels", **INT)), space={}, inputs=_sparsemax_inputs,
               batch_layout=layouts.reduced_axes(("logits", "labels")), unbatched=True,
               oracle=lambda c: T.sparsemax_loss(c.inputs["logits"], c.inputs["labels"]),
               family="structured", reference="structured.sparsemax_loss", lower_bound=0.0),
    optax_spec("multiclass_sparsemax_loss", args=(Arg("scores"), Arg("labels", **INT)), space={},
               batch_layout=layouts.reduced_axes(("scores",), ("labels",)),  # vmaps over the batch: needs one
               inputs=_multiclass_inputs,
               oracle=lambda c: T.multiclass_sparsemax_loss(c.inputs["scores"], c.inputs["labels"]),
               expected=(SIMPLEX_F32_X64,), family="structured", reference="structured.multiclass_sparsemax_loss",
               lower_bound=0.0),
    LossSpec(id="optax.losses.make_fenchel_young_loss", framework="optax", family="structured",
             reference="structured.fenchel_young_loss", args=(Arg("scores"), Arg("targets")),
             batch_layout=layouts.reduced_axes(("scores", "targets")), unbatched=True,
             draw=drawer({"max_fun": T.MAX_FUNCTIONS}, _fy_inputs), call=_fenchel_young,
             oracle=lambda c: T.fenchel_young_loss(c.inputs["scores"], c.inputs["targets"],
                                                   max_fun=c.params["max_fun"]),
             params_doc="max_fun=jax.nn.logsumexp|jnp.max|sparsemax's Gini max (optax.projections)",
             expected=(dataclasses.replace(SIMPLEX_F32_X64, when=lambda c, dtype: c.params["max_fun"] == "sparsemax"),),
             notes="the loss built by the factory from three max functions"),
    optax_spec("smooth_labels", args=(Arg("labels"),), space={"alpha": st.floats(0.0, 1.0), "axis": [-1, 0]},
               batch_layout=_smooth_layout, unbatched=True,
               inputs=_smooth_inputs,
               oracle=lambda c: T.smooth_labels(c.inputs["labels"], c.params["alpha"], axis=c.params["axis"],
                                                where=c.params.get("where")),
               family="structured", reference="structured.smooth_labels"),
]


# ---- keras --------------------------------------------------------------------------------------

def _gce_inputs(data, params):
    n, c = S.batch_size(data), S.classes(data)
    # p_y = 0 makes the loss's gradient -p_y^(q-1) infinite: keep the label's probability positive
    return {"y_true": S.indices(data, (n,), c, "y_true"), "y_pred": S.simplex(data, (n, c), "y_pred", floor=1e-3)}


def _gce(case, reduce_kw):
    return C.categorical_generalized_cross_entropy(case.inputs["y_true"], case.inputs["y_pred"],
                                                   q=case.params["q"], **reduce_kw)


def _int_y_true(spec):
    return LossSpec(**{**spec.__dict__, "args": tuple(Arg("y_true", kind="int") if a.name == "y_true"
                                                      else a for a in spec.args)})


KERAS = [_int_y_true(s) for s in keras_twins(
    "CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy",
    space={"q": st.one_of(st.just(0.5), st.floats(0.01, 0.99))}, inputs=_gce_inputs, oracle=_gce,
    y_true="y_true", y_pred="y_pred",
    family="classification", reference="classification.categorical_generalized_cross_entropy", lower_bound=0.0,
    batch_layout=layouts.KERAS_SPARSE)]


# ---- torch: losses that own their output layer ---------------------------------------------------

ADAPTIVE_TAILS = 2
ADAPTIVE_ARGS = (Arg("input"), Arg("target", **INT), Arg("head_weight"), Arg("head_bias"),
                 *(Arg(f"tail_{i}_{part}") for i in range(ADAPTIVE_TAILS) for part in ("proj", "out")))


def _adaptive_layout(params, d):
    """(head rows, [(proj shape, out shape) per tail]) of AdaptiveLogSoftmaxWithLoss(d, ...)."""
    cutoffs = list(params["cutoffs"]) + [params["n_classes"]]
    tails = []
    for i in range(len(cutoffs) - 1):
        hidden = int(d // (params["div_value"] ** (i + 1)))
        tails.append(((hidden, d), (cutoffs[i + 1] - cutoffs[i], hidden)))
    return cutoffs[0] + len(tails), tails


def _adaptive_inputs(data, params):
    d = S.choice(data, [4, 6, 8], "in_features")
    head_rows, tails = _adaptive_layout(params, d)
    unbatched = S.flag(data, "unbatched")
    n = S.batch_size(data, hi=5)
    out = {"input": S.reals(data, (d,) if unbatched else (n, d), "input", -2.0, 2.0),
           "target": S.indices(data, () if unbatched else (n,), params["n_classes"], "target"),
           "head_weight": S.reals(data, (head_rows, d), "head_weight", -1.0, 1.0)}
    if params["head_bias"]:
        out["head_bias"] = S.reals(data, (head_rows,), "head_bias", -1.0, 1.0)
    for i, (proj, outw) in enumerate(tails):
        out[f"tail_{i}_proj"] = S.reals(data, proj, f"tail_{i}_proj", -1.0, 1.0)
        out[f"tail_{i}_out"] = S.reals(data, outw, f"tail_{i}_out", -1.0, 1.0)
    return out


def _adaptive_call(ns, params):
    torch = ns.torch
    module_kw = {k: params[k] for k in ("n_classes", "cutoffs", "div_value", "head_bias")}

    def loss(input, target, head_weight, head_bias=None, tail_0_proj=None, tail_0_out=None, tail_1_proj=None,
             tail_1_out=None):
        tails = {"tail_0_proj": tail_0_proj, "tail_0_out": tail_0_out, "tail_1_proj": tail_1_proj,
                 "tail_1_out": tail_1_out}
        m = torch.nn.AdaptiveLogSoftmaxWithLoss(input.shape[-1], **module_kw, device="meta")
        weights = {"head.weight": head_weight, **({"head.bias": head_bias} if head_bias is not None else {})}
        for i in range(len(m.tail)):
            weights[f"tail.{i}.0.weight"] = tails[f"tail_{i}_proj"]
            weights[f"tail.{i}.1.weight"] = tails[f"tail_{i}_out"]
        out = torch.func.functional_call(m, weights, (input, target))
        return getattr(out, params["output"])
    return loss


def _adaptive_oracle(c):
    x = c.inputs
    _, tails = _adaptive_layout(c.params, np.shape(x["input"])[-1])
    return T.adaptive_log_softmax(
        x["input"], x["target"], x["head_weight"], head_bias=x.get("head_bias"),
        tails=[(x[f"tail_{i}_proj"], x[f"tail_{i}_out"]) for i in range(len(tails))],
        cutoffs=list(c.params["cutoffs"]) + [c.params["n_classes"]], output=c.params["output"])


ADAPTIVE_SPACE = {"n_classes": [6, 7], "cutoffs": [(2,), (2, 4), (3, 5)], "div_value": [1.0, 2.0],
                  "head_bias": [False, True], "output": ["loss", "output"]}

LINEAR_CE_ARGS = (Arg("input"), Arg("linear_weight"), Arg("target", **INT), Arg("linear_bias"))


def _linear_ce_inputs(data, params):
    d, c = S.choice(data, [2, 3, 4], "in_features"), S.classes(data, hi=4)
    # with options, torch chunks only a 2-D linear_weight (out_features == ()): draw it 3 times in 4
    chunked = params.get("options") is not None
    out_features = S.choice(data, [(), (), (), (2,)] if chunked else [(), (2,)], "out_features")
    # torch requires a batch dimension for K-dimensional outputs
    unbatched = not out_features and (S.choice(data, [False, False, False, True], "unbatched") if chunked
                                      else S.flag(data, "unbatched"))
    # with options, 2 to 6 rows: several chunks (hypothesis' smallest batch, one row, makes one)
    lead = () if unbatched else (S.batch_size(data, lo=2, hi=6) if chunked else S.batch_size(data, hi=4),)
    ignore = -100 if params["ignore_index"] is None else params["ignore_index"]
    out = {"input": S.reals(data, lead + (d,), "input", -2.0, 2.0),
           "linear_weight": S.reals(data, (c, *out_features, d), "linear_weight", -2.0, 2.0),
           "target": S.indices(data, lead + out_features, c, "target", extra=(ignore,))}
    if S.flag(data, "bias"):
        out["linear_bias"] = S.reals(data, (c, *out_features), "linear_bias", -1.0, 1.0)
    if S.flag(data, "use_weight"):
        # zero or at least 1e-3: weights near the smallest normal number overflow a weighted mean's division
        weight = data.draw(hnp.arrays(np.float64, (c,), elements=st.one_of(st.just(0.0), st.floats(1e-3, 4.0))),
                           label="weight")
        out["__params__"] = {"weight": weight}
    return out


def _linear_ce_oracle(c):
    x = c.inputs
    return T.linear_cross_entropy(x["input"], x["linear_weight"], x["target"], linear_bias=x.get("linear_bias"),
                                  weight=c.params.get("weight"), ignore_index=c.params["ignore_index"],
                                  label_smoothing=c.params["label_smoothing"], reduction=c.params["reduction"])


def _lce_options(torch, options, dtype):
    """``torch.nn.LinearCrossEntropyOptions`` from the drawn ``options`` ((field, value) pairs, plain
    data), or None (the reference path). torch accepts as ``acc_dtype`` only the input's ``dtype``, or
    float32 for float16/bfloat16 input (``_ChunkContext.build`` raises on any other pair), so it is
    drawn by what it means: None, "same" (the input's dtype, explicitly) or "float32_if_half"
    (float32 for half input, mixed precision; the input's dtype otherwise)."""
    if options is None:
        return None
    kw = dict(options)
    acc = kw.pop("acc_dtype", None)
    if acc is not None:
        half = dtype in (torch.float16, torch.bfloat16)
        kw["acc_dtype"] = torch.float32 if acc == "float32_if_half" and half else dtype
    return torch.nn.LinearCrossEntropyOptions(**kw)


def _linear_ce_functional(ns, params):
    kw = {k: v for k, v in params.items() if k != "options"}

    def loss(input, linear_weight, target, linear_bias=None):
        options = _lce_options(ns.torch, params.get("options"), input.dtype)
        return ns.F.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias, options=options, **kw)
    return loss


def _linear_ce_module(ns, params):
    torch = ns.torch
    kw = {k: v for k, v in params.items() if k != "options"}

    def loss(input, linear_weight, target, linear_bias=None):
        c, *out_features, d = linear_weight.shape
        m = torch.nn.LinearCrossEntropyLoss(d, c, out_features=tuple(out_features), bias=linear_bias is not None,
                                            device="meta", options=_lce_options(torch, params.get("options"),
                                                                                input.dtype), **kw)
        weights = {"linear.weight": linear_weight.reshape(-1, d)}
        if linear_bias is not None:
            weights["linear.bias"] = linear_bias.reshape(-1)
        return torch.func.functional_call(m, weights, (input, target))
    return loss


#: LinearCrossEntropyOptions' documented choices (torch/nn/modules/linear_cross_entropy_options.py).
#: chunking_method "aspect_ratio:N" takes any N >= 1; at the drawn sizes (N <= 6 rows with options,
#: C <= 4 classes, d >= 2 features) "aspect_ratio" makes one or two chunks, ":2" and ":4" up to N, and
#: "auto" is "aspect_ratio:2" on CPU in float32/float64 (_AUTO_FALLBACK). batch_chunk_size goes only
#: with chunking_method None or "auto" (with another method torch raises ValueError where they differ).
LCE_CHUNKING = ("auto", None, "aspect_ratio", "aspect_ratio:2", "aspect_ratio:4")
LCE_ACC_POLICIES = ("auto", "accurate", "balanced", "compact")
LCE_ACC_DTYPES = (None, "same", "float32_if_half")


@st.composite
def _lce_options_draw(draw):
    """None (the reference path) a third of the time, else LinearCrossEntropyOptions' fields as
    (field, value) pairs: plain data for reports and reproducer scripts; the spec's call builds the
    object."""
    if not draw(st.sampled_from((False, True, True))):
        return None
    method = draw(st.sampled_from(LCE_CHUNKING))
    size = draw(st.sampled_from([None, 1, 2, 3])) if method in (None, "auto") else None
    return (("allow_retain_graph", draw(st.booleans())), ("batch_chunk_size", size), ("chunking_method", method),
            ("acc_policy", draw(st.sampled_from(LCE_ACC_POLICIES))), ("acc_dtype", draw(st.sampled_from(LCE_ACC_DTYPES))))


LCE_OPTIONS = _lce_options_draw()
LCE_SMOOTHING = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


LINEAR_CE_SPACE = {"options": LCE_OPTIONS, "reduction": TORCH_REDUCTIONS, "ignore_index": [None, 0, 1],
                   "label_smoothing": LCE_SMOOTHING}


def _linear_ce_draw(data) -> Case:
    """``drawer(LINEAR_CE_SPACE, _linear_ce_inputs)``, except that with ``options`` drawn
    label_smoothing is 0 more often: torch takes the chunked path only without smoothing (with it,
    it warns and falls back to the reference path, which is checked too)."""
    params = {"options": data.draw(LCE_OPTIONS, label="options")}
    smoothing = LCE_SMOOTHING if params["options"] is None else st.one_of(st.just(0.0), st.just(0.0), LCE_SMOOTHING)
    rest = {k: v for k, v in LINEAR_CE_SPACE.items() if k != "options"}
    params.update(draw_params(data, {**rest, "label_smoothing": smoothing}))
    arrays = dict(_linear_ce_inputs(data, params))
    params.update(arrays.pop("__params__", {}))
    return Case(arrays, params)


_linear_ce_draw.space, _linear_ce_draw.inputs, _linear_ce_draw.fixed = LINEAR_CE_SPACE, _linear_ce_inputs, {}

LINEAR_CE_DOC = (describe({k: v for k, v in LINEAR_CE_SPACE.items() if k not in ("options", "label_smoothing")})
                 + ", label_smoothing=0.0|1.0|[0, 1] (0.0 more often with options), options=None|"
                 "LinearCrossEntropyOptions(allow_retain_graph=False|True, chunking_method="
                 + "|".join(map(str, LCE_CHUNKING)) + ", batch_chunk_size=None|1|2|3 (with chunking_method None|auto), "
                 "acc_policy=" + "|".join(LCE_ACC_POLICIES) + ", acc_dtype=None|same (the input's dtype)|"
                 "float32_if_half)")

#: LinearCrossEntropyLoss' constructor arguments that the drawn tensors fix: the module is built in
#: the spec's call from linear_weight's (C, *out_features, in_features) shape and linear_bias
LINEAR_CE_MODULE_SHAPES = {
    "in_features": "linear_weight.shape[-1] (and input's last axis)",
    "num_classes": "linear_weight.shape[0]",
    "out_features": "linear_weight.shape[1:-1]: () or (2,) as drawn",
    "bias": "True exactly when the draw gives a linear_bias input (half the examples), which is put into "
            "the module's linear.bias with torch.func.functional_call",
}

#: (N, in_features) input rows with (N, ...) targets, or one unbatched (in_features,) row; the
#: layer's weights are shared by every sample
INPUT_ROWS = layouts.leading({"input": 2}, axes={"target": 0})



def _linear_layout(case):
    """INPUT_ROWS; torch accepts an unbatched input only with a 2-D linear_weight (no d1, ..., dk)."""
    if np.ndim(case.inputs["input"]) < 2 and np.ndim(case.inputs["linear_weight"]) > 2:
        return "a K-dimensional linear_weight requires a batched input"
    return INPUT_ROWS(case)


TORCH = [
    LossSpec(id="torch.nn.AdaptiveLogSoftmaxWithLoss", framework="torch", family="structured",
             reference="structured.adaptive_log_softmax", args=ADAPTIVE_ARGS,
             draw=drawer(ADAPTIVE_SPACE, _adaptive_inputs), call=_adaptive_call, oracle=_adaptive_oracle,
             params_doc=describe(ADAPTIVE_SPACE), batch_layout=INPUT_ROWS, unbatched=True,
             params_not_drawn={"in_features": "the drawn input's last axis (4, 6 or 8)"},
             notes="weights drawn and put into the module with torch.func.functional_call; "
                   "output='loss' checks .loss, output='output' the target log-probabilities"),
    *(LossSpec(id=spec_id, framework="torch", family="classification", reference="structured.linear_cross_entropy",
               args=LINEAR_CE_ARGS, draw=_linear_ce_draw, call=call,
               oracle=_linear_ce_oracle, params_doc=LINEAR_CE_DOC, batch_layout=_linear_layout,
               unbatched=True, lower_bound=0.0, params_not_drawn=not_drawn)
      for spec_id, call, not_drawn in (("torch.nn.LinearCrossEntropyLoss", _linear_ce_module, LINEAR_CE_MODULE_SHAPES),
                                       ("torch.nn.functional.linear_cross_entropy", _linear_ce_functional, {}))),
]

SPECS = [*OPTAX, *KERAS, *TORCH]
