"""torch.nn classification and divergence losses (appended to ``torch_nn.SPECS``): BCELoss,
BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss, KLDivLoss and their functional twins."""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

from .. import strategies as S
from ..reference import classification as C
from ..reference import divergence as D
from ..reference._core import log_softmax
from .build import TORCH_REDUCTIONS, torch_twins
from .layouts import leading
from .spec import Arg, Deviation, Expected

DOCS = "https://pytorch.org/docs/stable/generated/torch.nn.{}.html"
RED = {"reduction": TORCH_REDUCTIONS}
SWAP = ("input", "target")
SMOOTHING = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
#: torch's C++ kernel holds the 1e-12 floor of BCE's backward as a float32 constant (classification.py)
BCE_GRAD_FLOOR = float(np.float32(1e-12))


def _red(case):
    return case.params.get("reduction", "mean")


# ---- inputs ------------------------------------------------------------------------------------------

def _broadcastable(data, shp, label):
    """A shape that broadcasts to ``shp`` without enlarging it: leading axes may be dropped, the
    others kept or set to 1 (torch expands ``weight``/``pos_weight`` to the target's shape)."""
    drop = data.draw(st.integers(0, len(shp)), label=f"{label}_dropped_axes")
    keep = data.draw(st.lists(st.booleans(), min_size=len(shp) - drop, max_size=len(shp) - drop),
                     label=f"{label}_kept_axes")
    return tuple(n if k else 1 for n, k in zip(shp[drop:], keep))


_WEIGHT = st.one_of(st.just(0.0), st.floats(1e-3, 4.0))


def _weight_values(data, shp, label):
    """Weights in {0} and [1e-3, 4]: zero drops a term; weights near the smallest normal number only
    move a mean's denominator to the edge of overflow."""
    return S.array(data, shp, _WEIGHT, label)


def _weights(data, shp, label, out):
    """Optionally a weight of a shape broadcastable to ``shp``, into ``out["__params__"]``."""
    if S.flag(data, f"use_{label}"):
        out.setdefault("__params__", {})[label] = _weight_values(data, _broadcastable(data, shp, label), label)
    return out


def _logits(data, shp, label, ranges=(8.0, 60.0)):
    hi = S.choice(data, ranges, f"{label}_range")
    return S.reals(data, shp, label, -hi, hi)


_PROBABILITY = st.one_of(st.sampled_from([0.0, 1.0, 1e-50, 1.0 - 2.0 ** -53]), st.floats(0.0, 1.0))


def _probabilities(data, shp, label):
    """Probabilities with exactly 0 and 1 often, and values whose log is below torch's -100 clamp."""
    return S.array(data, shp, _PROBABILITY, label)


def _soft_or_hard(data, shp, label):
    return S.probabilities(data, shp, label) if S.flag(data, "soft_labels") else S.binary_labels(data, shp, label)


def _bce_inputs(data, params):
    shp = S.shape(data)
    out = {"input": _probabilities(data, shp, "input"), "target": _soft_or_hard(data, shp, "target")}
    return _weights(data, shp, "weight", out)


def _bce_logits_inputs(data, params):
    shp = S.shape(data)
    out = {"input": _logits(data, shp, "input", (8.0, 60.0, 1e4)), "target": _soft_or_hard(data, shp, "target")}
    return _weights(data, shp, "pos_weight", _weights(data, shp, "weight", out))


def _torch_class_shape(data):
    """``(C,)`` unbatched, ``(N, C)`` or ``(N, C, d1, ..., dk)``, within the size budget."""
    c = S.classes(data)
    layout = S.choice(data, ["unbatched", "batched", "k_dim"], "layout")
    if layout == "unbatched":
        return (c,)
    n = S.batch_size(data, hi=4)
    if layout == "batched":
        return (n, c)
    extra = list(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2), label="d1_dk"))
    while len(extra) > 1 and n * c * int(np.prod(extra)) > S.SIZE_BUDGET:
        extra.pop()
    return (n, c, *extra)


def _index_target(data, shp, ignore_index, label="target"):
    """Class indices for an input of ``shp`` (class dim 1, or 0 unbatched), some or all ignored."""
    cdim = 0 if len(shp) == 1 else 1
    tshape = shp[:cdim] + shp[cdim + 1:]
    if data.draw(st.sampled_from([False, False, False, True]), label="all_ignored"):
        return np.full(tshape, ignore_index, dtype=np.int64)
    return S.indices(data, tshape, shp[cdim], label, extra=(ignore_index,))


def _class_weight(data, c, out):
    if S.flag(data, "use_weight"):
        out.setdefault("__params__", {})["weight"] = _weight_values(data, (c,), "weight")
    return out


def _ce_inputs(data, params):
    shp = _torch_class_shape(data)
    cdim = 0 if len(shp) == 1 else 1
    x = _logits(data, shp, "input")
    # torch rejects ignore_index >= 0 with probability targets
    if params["ignore_index"] < 0 and S.choice(data, ["indices", "probabilities"], "target_form") == "probabilities":
        if S.flag(data, "one_hot"):
            idx = S.indices(data, shp[:cdim] + shp[cdim + 1:], shp[cdim], "target")
            t = (np.expand_dims(idx, cdim) == np.arange(shp[cdim]).reshape((-1,) + (1,) * (len(shp) - cdim - 1))
                 ).astype(np.float64)
        else:
            t = S.simplex(data, shp, "target", axis=cdim)
    else:
        # class indices travel as exact small integers in a float array: see _index_targets
        t = _index_target(data, shp, params["ignore_index"]).astype(np.float64)
    return _class_weight(data, shp[cdim], {"input": x, "target": t})


def _nll_inputs(data, params):
    shp = _torch_class_shape(data)
    cdim = 0 if len(shp) == 1 else 1
    logp = np.moveaxis(log_softmax(np.moveaxis(_logits(data, shp, "logits"), cdim, -1)), -1, cdim)
    out = {"input": logp, "target": _index_target(data, shp, params["ignore_index"])}
    return _class_weight(data, shp[cdim], out)


def _log_probs(data, shp, label):
    """Log-probabilities: normalised along the last axis, or any values in [-12, 0]."""
    if S.flag(data, f"{label}_normalized"):
        return log_softmax(_logits(data, shp, f"{label}_logits"))
    return S.reals(data, shp, label, -12.0, 0.0)


def _kl_inputs(data, params):
    shp = S.shape(data)
    if params["log_target"]:
        t = _log_probs(data, shp, "target")
    elif S.flag(data, "target_normalized"):
        t = S.simplex(data, shp, "target")
    else:
        t = S.probabilities(data, shp, "target")
    return {"input": _log_probs(data, shp, "input"), "target": t}


# ---- index targets of CrossEntropyLoss -----------------------------------------------------------------
# One spec covers both target forms, but an Arg has one kind: the target is declared float (so that
# probability targets are differentiated) and class indices, drawn as exact small integers, are cast
# to int64 by the call when the target has one dimension fewer than the input (torch's own rule).

def _is_index(x, t) -> bool:
    return np.ndim(t) == np.ndim(x) - 1


def _index_targets(build):
    def call(ns, params):
        fn = build(ns, params)

        def loss(input, target):
            return fn(input, target.detach().long() if target.dim() == input.dim() - 1 else target)
        return loss
    call.wrap = _index_targets  # a user's loss checked against this spec gets the same target cast
    return call


def _with_index_targets(specs):
    return [dataclasses.replace(s, call=_index_targets(s.call)) for s in specs]


# ---- oracles -----------------------------------------------------------------------------------------

def _bce(exact=False):
    clamp = {} if exact else {"log_clamp": -100.0, "grad_floor": BCE_GRAD_FLOOR}
    return lambda c: C.binary_cross_entropy(c.inputs["input"], c.inputs["target"], weight=c.params.get("weight"),
                                            reduction=_red(c), **clamp)


def _bce_logits(c):
    return C.binary_cross_entropy_with_logits(c.inputs["input"], c.inputs["target"], weight=c.params.get("weight"),
                                              pos_weight=c.params.get("pos_weight"), reduction=_red(c))


def _ce(c):
    x, t = c.inputs["input"], c.inputs["target"]
    if _is_index(x, t):
        t = np.asarray(t).astype(np.int64)
    return C.cross_entropy(x, t, weight=c.params.get("weight"), ignore_index=c.params["ignore_index"],
                           label_smoothing=c.params["label_smoothing"], reduction=_red(c))


def _nll(c):
    return C.nll_loss(c.inputs["input"], c.inputs["target"], weight=c.params.get("weight"),
                      ignore_index=c.params["ignore_index"], reduction=_red(c))


def _kl(exact=False):
    def oracle(c):
        red = _red(c)
        if exact and red == "mean":
            red = "batchmean"  # the KL divergence per sample, averaged: what torch's docs say 'mean' is not
        return D.kl_div(c.inputs["input"], c.inputs["target"], log_target=c.params["log_target"], reduction=red)
    return oracle


def _subnormal_difference(case, dtype) -> bool:
    """``input - target`` nonzero and below twice the dtype's smallest normal number."""
    d = np.abs(np.asarray(case.inputs["input"]) - np.asarray(case.inputs["target"]))
    return bool(np.any((d > 0) & (d < 2.0 * np.finfo(dtype).tiny)))


BCE_SUBNORMAL_NUMERATOR = Expected(
    "torch's backward computes grad_output * (input - target) in the input's dtype before dividing by "
    "max(input (1 - input), 1e-12): where that product is subnormal it keeps a few bits, and the division "
    "amplifies the rounding by 1e12 far above the smallest normal number (verified in float32: input=1.4e-45, "
    "target=0, grad_output=1.42 gives 1.40e-33, the derivative is 1.99e-33)",
    "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Loss.cpp",
    property="gradient", when=_subnormal_difference)


def _log_weight_cancels(case, dtype) -> bool:
    """``1 + (pos_weight - 1) * target`` below 1/32: a small pos_weight at a target near 1."""
    pw = case.params.get("pos_weight")
    if pw is None:
        return False
    y = np.asarray(case.inputs["target"])
    return bool(np.any(1.0 + (np.asarray(pw) - 1.0) * y < 2.0 ** -5))


POS_WEIGHT_ROUNDING = Expected(
    "torch's backward is (pos_weight * target + 1 - target) * sigmoid(x) - pos_weight * target: rounding "
    "pos_weight * target + 1 drops a small pos_weight at target 1, an absolute error of eps * sigmoid(x) that is "
    "1/pos_weight times the gradient (verified in float64: pos_weight=1e-20, x=0, target=1 gives -1e-20, the "
    "derivative is -5e-21; at pos_weight=1e-3 the error is 165 eps). The oracle's gradient scale counts |lw| "
    "sigmoid(x), not the rounding of lw itself (its value scale does count it): an error-model gap in "
    "reference.classification, reported, not a torch bug beyond its formula's rounding",
    "https://github.com/pytorch/pytorch/blob/main/torch/csrc/autograd/FunctionsManual.cpp",
    property="gradient", when=_log_weight_cancels)


# ---- batch layouts ---------------------------------------------------------------------------------
#: weight and pos_weight broadcast against the input: per sample where they keep its batch axis
ELEMENTWISE = leading({"input": 1, "target": 1}, follow={"weight": "input", "pos_weight": "input"})
#: (N, C, d1, ...) with a target (N, d1, ...) or of the input's shape; (C,) with a 0-d or (C,) target
#: is unbatched, so the class axis of an unbatched input is never tiled
CLASS_DIM_1 = leading({"input": 2}, axes={"target": 0})

# ---- specs -------------------------------------------------------------------------------------------

SPECS = [
    *torch_twins(
        "BCELoss", "binary_cross_entropy", args=(Arg("input", "probs"), Arg("target", "labels")), space=RED,
        inputs=_bce_inputs, oracle=_bce(), exact=_bce(exact=True), expected=(BCE_SUBNORMAL_NUMERATOR,),
        deviation=Deviation("each log is clamped at >= -100, so p = 0 or 1 gives a finite loss (100 per unit of "
                            "the mismatched label); the backward is hand-written, (p - y) / max(p (1 - p), 1e-12) "
                            "for the input and the unclamped log((1 - p) / p) for the target", DOCS.format("BCELoss")),
        swappable=SWAP, family="classification", batch_layout=ELEMENTWISE, unbatched=True, lower_bound=0.0,
        reference="classification.binary_cross_entropy(log_clamp=-100, grad_floor=float32(1e-12))"),
    *torch_twins(
        "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
        args=(Arg("input", "logits"), Arg("target", "labels")), space=RED, inputs=_bce_logits_inputs,
        oracle=_bce_logits, expected=(POS_WEIGHT_ROUNDING,), swappable=SWAP, family="classification",
        batch_layout=ELEMENTWISE, unbatched=True, lower_bound=0.0,
        reference="classification.binary_cross_entropy_with_logits"),
    *_with_index_targets(torch_twins(
        "CrossEntropyLoss", "cross_entropy", args=(Arg("input"), Arg("target")),
        space={**RED, "ignore_index": [-100, -1, 0, 2], "label_smoothing": SMOOTHING},
        inputs=_ce_inputs, oracle=_ce, family="classification", reference="classification.cross_entropy",
        batch_layout=CLASS_DIM_1, unbatched=True, lower_bound=0.0,
        notes="class-index targets are drawn as integral floats and cast to int64 by the call when the target has "
              "one dimension fewer than the input; probability targets are differentiated")),
    *torch_twins(
        "NLLLoss", "nll_loss", args=(Arg("input"), Arg("target", kind="int", differentiable=False)),
        space={**RED, "ignore_index": [-100, 0, 2]}, inputs=_nll_inputs, oracle=_nll,
        batch_layout=CLASS_DIM_1, unbatched=True,
        family="classification", reference="classification.nll_loss"),
    *torch_twins(
        "KLDivLoss", "kl_div", args=(Arg("input"), Arg("target")),
        space={"reduction": (*TORCH_REDUCTIONS, "batchmean"), "log_target": [False, True]},
        inputs=_kl_inputs, oracle=_kl(), exact=_kl(exact=True),
        deviation=Deviation("reduction='mean' divides the summed divergence by the number of elements, not by the "
                            "batch size, so it is not the KL divergence; torch documents this and recommends "
                            "'batchmean'", DOCS.format("KLDivLoss")),
        swappable=SWAP, family="divergence", reference="divergence.kl_div",
        batch_layout=leading({"input": 1, "target": 1}), unbatched=True),
]
