"""Multi-class / multi-label margin losses (torch) and overlap losses for segmentation (Keras, optax).

* torch ``MultiMarginLoss``, ``MultiLabelMarginLoss``, ``MultiLabelSoftMarginLoss`` and their
  functional twins: inputs ``(N, C)`` or unbatched ``(C,)``; the per-sample loss is an average over
  the classes, then the reduction over the batch (reference/multimargin.py).
* Keras ``Dice``/``dice`` and ``Tversky``/``tversky`` (sums over ``axis``; None sums everything,
  batch included) and optax ``dice_loss``, ``binary_dice_loss``, ``multiclass_generalized_dice_loss``
  (reference/segmentation.py).

Probabilities are drawn with exact 0s and 1s, masks with empty foregrounds (all-zero targets).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import strategies as S
from ..reference import multimargin as MM
from ..reference import segmentation as SG
from ..reference._core import sigmoid, softmax
from ..tolerance import round_to
from .build import TORCH_REDUCTIONS, keras_twins, optax_spec, torch_twins
from . import layouts
from .spec import Arg, Deviation, Expected
from .when import any_flushed

TORCH_DOCS = "https://pytorch.org/docs/stable/generated/torch.nn.{}.html"
KERAS_SRC = "https://github.com/keras-team/keras/blob/master/keras/src/losses/losses.py"
OPTAX_SRC = "https://github.com/google-deepmind/optax/blob/main/optax/losses/_segmentation.py"
KERAS_EPSILON = 1e-7  # keras.config.epsilon(), added to the denominators
UNIT = st.one_of(st.sampled_from([0.5, 0.0, 1.0]), st.floats(0.0, 1.0))
SMOOTH = st.one_of(st.sampled_from([1.0, 1e-3]), st.floats(1e-3, 2.0))


def _red(case):
    return case.params.get("reduction", "mean")


# ---- torch inputs --------------------------------------------------------------------------------

def _rows(data):
    """``(C,)`` unbatched or ``(N, C)``: N <= 4, C <= 5."""
    c = S.classes(data, lo=1)
    if S.choice(data, ["batched", "unbatched"], "layout") == "unbatched":
        return (c,)
    return (S.batch_size(data, hi=4), c)


def _scores(data, shp, label="input"):
    """Scores, moderate or large; rounded to integers sometimes (ties and margins exactly 0: kinks)."""
    hi = S.choice(data, [8.0, 60.0], f"{label}_range")
    x = S.reals(data, shp, label, -hi, hi)
    return np.round(x) if S.flag(data, f"{label}_integral") else x


def _class_weight(data, c, out, label="weight"):
    if S.flag(data, f"use_{label}"):
        w = data.draw(hnp.arrays(np.float64, (c,), elements=st.one_of(st.just(0.0), st.floats(1e-3, 4.0))),
                      label=label)
        out.setdefault("__params__", {})[label] = w
    return out


def _multi_margin_inputs(data, params):
    shp = _rows(data)
    out = {"input": _scores(data, shp), "target": S.indices(data, shp[:-1], shp[-1], "target")}
    return _class_weight(data, shp[-1], out)


def _padded_targets(data, shp):
    """Class indices padded with -1: a prefix of classes (repeats allowed, possibly empty or all C),
    a -1, then anything (ignored)."""
    c = shp[-1]
    classes = S.indices(data, shp, c, "target_classes")
    ends = data.draw(hnp.arrays(np.int64, shp[:-1], elements=st.integers(0, c)), label="prefix_length")
    tail = S.indices(data, shp, c, "after_end", extra=(-1,))
    j = np.arange(c)
    end = np.expand_dims(ends, -1)
    return np.where(j < end, classes, np.where(j == end, -1, tail)).astype(np.int64)


def _multilabel_margin_inputs(data, params):
    shp = _rows(data)
    return {"input": _scores(data, shp), "target": _padded_targets(data, shp)}


def _multilabel_soft_inputs(data, params):
    shp = _rows(data)
    y = S.probabilities(data, shp, "target") if S.flag(data, "soft_labels") else S.binary_labels(data, shp, "target")
    return _class_weight(data, shp[-1], {"input": _scores(data, shp), "target": y})


# ---- torch oracles ---------------------------------------------------------------------------------

def _multi_margin(c):
    return MM.multi_margin(c.inputs["input"], c.inputs["target"], p=c.params["p"], margin=c.params["margin"],
                           weight=c.params.get("weight"), reduction=_red(c))


def _multilabel_margin(c):
    return MM.multilabel_margin(c.inputs["input"], c.inputs["target"], reduction=_red(c))


def _multilabel_soft(c):
    return MM.multilabel_soft_margin(c.inputs["input"], c.inputs["target"], weight=c.params.get("weight"),
                                     reduction=_red(c))


INT_TARGET = (Arg("input"), Arg("target", kind="int", differentiable=False))

#: (N, C) rows of scores and targets, or one unbatched (C,) row; the class weight is per class
ROWS = layouts.leading({"input": 2, "target": 2})

TORCH_SPECS = [
    *torch_twins(
        "MultiMarginLoss", "multi_margin_loss", args=INT_TARGET,
        space={"reduction": TORCH_REDUCTIONS, "p": [1, 2],
               "margin": st.one_of(st.sampled_from([1.0, 0.0, 0.5]), st.floats(0.0, 4.0))},
        inputs=_multi_margin_inputs, oracle=_multi_margin, unbatched=True, lower_bound=0.0, family="multimargin",
        batch_layout=layouts.leading({"input": 2}, axes={"target": 0}),
        reference="multimargin.multi_margin"),
    *torch_twins(
        "MultiLabelMarginLoss", "multilabel_margin_loss", args=INT_TARGET, space={"reduction": TORCH_REDUCTIONS},
        inputs=_multilabel_margin_inputs, oracle=_multilabel_margin, unbatched=True, lower_bound=0.0, family="multimargin",
        batch_layout=ROWS,
        reference="multimargin.multilabel_margin",
        notes="targets: class indices, only the prefix before the first -1 counts"),
    *torch_twins(
        "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", args=(Arg("input"), Arg("target")),
        space={"reduction": TORCH_REDUCTIONS}, inputs=_multilabel_soft_inputs, oracle=_multilabel_soft,
        unbatched=True, swappable=("input", "target"), lower_bound=0.0, family="multimargin", batch_layout=ROWS,
        reference="multimargin.multilabel_soft_margin"),
]


# ---- Keras -------------------------------------------------------------------------------------------

#: axis -> the fewest dimensions it needs
KERAS_AXES = {None: 1, -1: 1, 1: 2, (1, 2): 3, (1, 2, 3): 4}


def _probabilities(data, shp, label):
    """Probabilities with exact 0s and 1s about as likely as interior values."""
    elements = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    return data.draw(hnp.arrays(np.float64, shp, elements=elements), label=label)


def _masks(data, shp, label):
    """0/1 masks, sometimes all zero (an empty foreground), or soft targets."""
    form = S.choice(data, ["mask", "empty", "soft"], f"{label}_form")
    if form == "empty":
        return np.zeros(shp)
    return S.binary_labels(data, shp, label) if form == "mask" else S.probabilities(data, shp, label)


def _side(data, label, lo=1, hi=4):
    return data.draw(st.integers(lo, hi), label=label)


def _keras_inputs(data, params):
    rank = max(KERAS_AXES[params["axis"]], _side(data, "rank", 1, 4))
    shp = [S.batch_size(data, hi=4)] + [_side(data, f"dim{k}") for k in range(1, rank)]
    while int(np.prod(shp)) > S.SIZE_BUDGET:
        k = int(np.argmax(shp))
        shp[k] //= 2
    shp = tuple(shp)
    return {"y_true": _masks(data, shp, "y_true"), "y_pred": _probabilities(data, shp, "y_pred")}


def _keras_eps(case, exact):
    return 0.0 if exact else float(round_to(case.dtype, KERAS_EPSILON))


def _keras_dice(exact=False):
    def oracle(case, reduce_kw):
        return SG.dice(case.inputs["y_pred"], case.inputs["y_true"], epsilon=_keras_eps(case, exact),
                       axis=case.params["axis"], **reduce_kw)
    return oracle


def _keras_tversky(exact=False):
    def oracle(case, reduce_kw):
        p = case.params
        return SG.tversky(case.inputs["y_pred"], case.inputs["y_true"], alpha=p["alpha"], beta=p["beta"],
                          epsilon=_keras_eps(case, exact), axis=p["axis"], **reduce_kw)
    return oracle


KERAS_EPS_DEVIATION = Deviation(
    "1e-7 (keras.config.epsilon()) is added to the denominator: an empty target and prediction give loss 1 "
    "where the documented formula is 0/0", KERAS_SRC)

TVERSKY_SWAPPED = Expected(
    "Keras 3.15 applies alpha to the false negatives and beta to the false positives, the reverse of its "
    "docstring (and of Salehi et al. 2017): tversky() sets inputs = y_true, targets = y_pred, so its fp = "
    "sum((1 - y_pred) y_true). Verified on TensorFlow in float64 over 150 random cases: Keras equals the "
    "reference with alpha and beta exchanged to 2e-16 (values and both gradients); e.g. y_true=[1, 0], "
    "y_pred=[0, 1], alpha=1, beta=0 gives 0 (documented: 1). Fixed upstream by keras-team/keras#23333",
    "https://github.com/keras-team/keras/pull/23333",
    when=lambda case, dtype: case.params["alpha"] != case.params["beta"])

def _subnormal_input(case, dtype) -> bool:
    return any_flushed(case.inputs.values(), dtype)


SUBNORMAL_FLUSHED = tuple(
    Expected(f"{what} flushes subnormal inputs to zero, so the gradient with respect to the other argument "
             "loses their contribution (a normal number once divided by the 1e-7 denominator). Verified on "
             "TensorFlow in float64: dice(y_true=[0.], y_pred=[1.1125369292536007e-308]) has d/dy_true = 0, the "
             "derivative is -2.2e-301; tf.constant([1.1125369292536007e-308], tf.float64) * 1e10 is 0",
             link, property="gradient", runtime=rt, when=_subnormal_input)
    for rt, what, link in (("keras-tensorflow", "TensorFlow on CPU (denormals-are-zero)",
                            "https://github.com/tensorflow/tensorflow/issues/11902"),
                           ("keras-jax", "XLA on CPU", "https://github.com/jax-ml/jax/issues/16200")))

KERAS_ARGS = dict(y_true="targets", y_pred="predictions")

KERAS_SPECS = [
    *keras_twins("Dice", "dice", space={"axis": list(KERAS_AXES)}, inputs=_keras_inputs, oracle=_keras_dice(),
                 exact=_keras_dice(exact=True), deviation=KERAS_EPS_DEVIATION, expected=SUBNORMAL_FLUSHED,
                 pools_batch=True,
                 family="segmentation", reference="segmentation.dice(epsilon=1e-7)", **KERAS_ARGS,
                 notes="axis=None sums every axis, the batch included, into one scalar"),
    *keras_twins("Tversky", "tversky", space={"alpha": UNIT, "beta": UNIT, "axis": list(KERAS_AXES)},
                 inputs=_keras_inputs, oracle=_keras_tversky(), exact=_keras_tversky(exact=True),
                 deviation=KERAS_EPS_DEVIATION, expected=(TVERSKY_SWAPPED, *SUBNORMAL_FLUSHED), pools_batch=True,
                 family="segmentation", reference="segmentation.tversky(epsilon=1e-7)", **KERAS_ARGS,
                 notes="axis=None sums every axis, the batch included, into one scalar"),
]


# ---- optax -------------------------------------------------------------------------------------------

#: axis -> the fewest dimensions it needs (the class axis, the last, is never summed)
OPTAX_AXES = {None: 1, (): 1, 0: 2, 1: 3, (0, 1): 3, (1, 2): 4, -2: 2}


def _optax_shape(data, min_dims, c_lo=1):
    """``(N, spatial..., C)``: N <= 4, up to two spatial sides <= 4, C <= 5, within the size budget."""
    c = S.classes(data, lo=c_lo)
    rank = max(min_dims, _side(data, "rank", 1, 4))
    shp = ([S.batch_size(data, hi=4)] if rank > 1 else []) + [_side(data, f"dim{k}") for k in range(1, rank - 1)]
    while c * int(np.prod(shp)) > S.SIZE_BUDGET:
        k = int(np.argmax(shp))
        shp[k] //= 2
    return tuple(shp) + (c,)


def _logits(data, shp, label="predictions"):
    hi = S.choice(data, [8.0, 30.0], f"{label}_range")
    return S.reals(data, shp, label, -hi, hi)


def _class_probabilities(data, shp, label):
    """Rows on the simplex along the last axis: one-hot (exact 0 and 1) or drawn."""
    if S.flag(data, f"{label}_one_hot"):
        return S.one_hot_rows(data, shp, label)
    return S.simplex(data, shp, label)


def _class_targets(data, shp, label="targets"):
    """One-hot rows (classes absent from the batch: empty foregrounds), soft rows, or 0/1 masks (multi-label,
    possibly all zero)."""
    form = S.choice(data, ["one_hot", "soft", "mask", "empty"], f"{label}_form")
    if form == "one_hot":
        return S.one_hot_rows(data, shp, label)
    if form == "soft":
        return S.simplex(data, shp, label)
    return S.binary_labels(data, shp, label) if form == "mask" else np.zeros(shp)


def _dice_inputs(data, params):
    shp = _optax_shape(data, OPTAX_AXES[params["axis"]])
    x = _logits(data, shp) if params["apply_softmax"] else _class_probabilities(data, shp, "predictions")
    out = {"predictions": x, "targets": _class_targets(data, shp)}
    if shp[-1] == 1:   # optax appends the class axis to the argument one dimension short
        layout = S.choice(data, ["same", "predictions_squeezed", "targets_squeezed"], "binary_layout")
        if layout != "same":
            key = layout.split("_")[0]
            out[key] = out[key][..., 0]
    return _class_weight(data, shp[-1], out, "class_weights")


def _binary_inputs(data, params):
    shp = S.shape(data, min_dims=1, max_dims=3, max_side=4)
    x = _logits(data, shp) if params["apply_sigmoid"] else _probabilities(data, shp, "predictions")
    return {"predictions": x, "targets": _masks(data, shp, "targets")}


def _generalized_inputs(data, params):
    shp = _optax_shape(data, 1)
    x = _logits(data, shp) if params["apply_softmax"] else _class_probabilities(data, shp, "predictions")
    return {"predictions": x, "targets": _class_targets(data, shp)}


def _dice_loss(c):
    p = c.params
    return SG.dice_loss(c.inputs["predictions"], c.inputs["targets"], class_weights=p.get("class_weights"),
                        smooth=p["smooth"], alpha=p["alpha"], beta=p["beta"], apply_softmax=p["apply_softmax"],
                        class_reduction=p["reduction"], ignore_background=p["ignore_background"], axis=p["axis"])


def _binary_dice(c):
    return SG.binary_dice_loss(c.inputs["predictions"], c.inputs["targets"], smooth=c.params["smooth"],
                               apply_sigmoid=c.params["apply_sigmoid"])


def _generalized(exact=False):
    def oracle(c):
        p = c.params
        return SG.generalized_dice_loss(c.inputs["predictions"], c.inputs["targets"], smooth=p["smooth"],
                                        apply_softmax=p["apply_softmax"], ignore_background=p["ignore_background"],
                                        weight_epsilon=0.0 if exact else 1e-7)
    return oracle


def _not_all_one(case, dtype) -> bool:
    """``apply_sigmoid=False`` with predictions that are not all (within optax's allclose) 1."""
    x = np.asarray(case.inputs["predictions"])
    return not case.params["apply_sigmoid"] and not np.allclose(x, 1.0, rtol=1e-5)


BINARY_NO_SIGMOID_RAISES = Expected(
    "binary_dice_loss(apply_sigmoid=False) passes apply_softmax=False on to dice_loss, which requires the class "
    "rows to sum to 1; binary predictions have a class axis of 1, so every probability but 1 is rejected. "
    "Verified: binary_dice_loss(jnp.array([[0.3, 0.6]]), jnp.array([[0., 1.]]), apply_sigmoid=False) raises "
    "ValueError 'When apply_softmax=False, predictions must be valid probability distributions that sum to 1 "
    "along the class axis' (under jax.vjp formatting that message fails first: TypeError 'unsupported format string "
    "passed to LinearizeTracer.__format__'); with predictions [[1., 1.]] it returns 0.2, the documented loss",
    OPTAX_SRC, code="X001", when=_not_all_one)

OPTAX_ARGS = (Arg("predictions"), Arg("targets"))


def _validated(case, dtype) -> bool:
    """Without the activation optax validates the predictions with a Python ``if``."""
    return not case.params.get("apply_softmax", case.params.get("apply_sigmoid", True))


VALIDATION_UNJITTABLE = Expected(
    "with apply_softmax=False (binary_dice_loss: apply_sigmoid=False) optax checks that the rows sum to 1 with a "
    "Python `if not jnp.allclose(...)`, which jax.jit cannot trace, so these losses cannot run in a jitted "
    "training step without the activation. Measured (optax 0.2.8, jax 0.10.2): dice_loss([[0.5, 0.5]], "
    "[[1., 0.]], apply_softmax=False) is 0.1714 eagerly and raises TracerBoolConversionError under jax.jit; "
    "with apply_softmax=True jit gives 0.1714", OPTAX_SRC, property="compiled", code="X010", when=_validated)


def _activation_flushed(case, dtype) -> bool:
    """optax's activation (``apply_softmax``/``apply_sigmoid``) makes a non-zero subnormal number of the
    tested dtype: the sigmoid where the class axis is 1 (binary_dice_loss always), else the softmax's
    ``exp(x - max)`` or a probability. XLA on CPU flushes it to 0."""
    p = case.params
    if not p.get("apply_softmax", p.get("apply_sigmoid", False)):
        return False
    x, t = (np.asarray(case.inputs[k], dtype=np.float64) for k in ("predictions", "targets"))
    with np.errstate(all="ignore"):
        if "apply_sigmoid" in p or x.ndim < t.ndim or x.ndim == 0 or x.shape[-1] == 1:
            values = sigmoid(x)
        else:
            e = np.exp(x - np.max(x, axis=-1, keepdims=True))
            values = np.concatenate([e.ravel(), softmax(x, axis=-1).ravel()])
    return any_flushed([values], dtype)


ACTIVATION_FLUSHED = Expected(
    "XLA on CPU flushes subnormal results to zero: where the sigmoid/softmax of a large negative logit is "
    "subnormal it becomes 0, and so does its derivative, although the gradient it feeds is a normal number "
    "(the Dice loss divides by a small smooth). Verified (jax 0.10.2, CPU, float32): jax.nn.sigmoid(-88.) is 0 "
    "(exact 6.05e-39); jax.grad of binary_dice_loss(predictions=[-88.], targets=[0.], smooth=1e-3) is [0.], "
    "the derivative is 500 exp(-88) = 3.03e-36 (at -87 jax gives 8.23e-36, the derivative); the same in float64 "
    "(jnp.float64(1e-160) * 1e-160 is 0 under jit)",
    "https://github.com/jax-ml/jax/issues/16200", property="gradient", runtime="jax", when=_activation_flushed)


def _weight_flushed(case, dtype) -> bool:
    """A non-zero ``alpha`` or ``beta`` below the smallest normal number of the tested dtype."""
    return any_flushed((case.params.get("alpha", 0.0), case.params.get("beta", 0.0)), dtype)


WEIGHT_FLUSHED = Expected(
    "XLA on CPU flushes a subnormal alpha or beta to zero, and with it the part of the "
    "gradient that the false positives (false negatives) carry. Measured in the soak (seed 16, float64): "
    "dice_loss(predictions=[1.], targets=[0.], smooth=1e-3, alpha=2.2e-309, beta=0.5, apply_softmax=False) "
    "has d/dpredictions [0.] (eager and jit), the derivative is smooth alpha / (alpha + smooth)^2 = 2.2e-306; "
    "at alpha=2.2e-308 (normal) optax gives 2.2e-305, the derivative",
    "https://github.com/jax-ml/jax/issues/16200", property="gradient", runtime="jax", when=_weight_flushed)


def _zero_sum_row(case, dtype) -> bool:
    """apply_softmax=False with a row of the predictions summing to 0 along their last axis, as optax
    checks them: after a class axis is added to predictions one rank below the targets (optax
    _segmentation.py; targets one rank below are extended instead, which leaves the predictions'
    rows as they are: (2, 3, 1) against (2, 3) sums each single element)."""
    p, t = np.asarray(case.inputs["predictions"]), np.asarray(case.inputs["targets"])
    if p.ndim == t.ndim - 1:
        p = p[..., None]
    return not case.params["apply_softmax"] and bool(np.any(np.isclose(np.sum(p, axis=-1), 0.0)))


OPTAX_SPECS = [
    optax_spec("dice_loss", args=OPTAX_ARGS,
               space={"smooth": SMOOTH, "alpha": UNIT, "beta": UNIT, "apply_softmax": [True, False],
                      "reduction": ["mean", "sum", "none"], "ignore_background": [False, True],
                      "axis": list(OPTAX_AXES)},
               inputs=_dice_inputs, oracle=_dice_loss, pools_batch=True, family="segmentation",
               batch_layout=layouts.leading({"predictions": 2, "targets": 2}),  # (C,): no batch axis
               expected=(ACTIVATION_FLUSHED, WEIGHT_FLUSHED, VALIDATION_UNJITTABLE,
                         Expected("with apply_softmax=False optax validates its input and raises ValueError on "
                                  "rows that are not distributions (a zero-sum row, drawn by the numerics "
                                  "property); measured in the soak: predictions [0, 0] raise 'predictions must "
                                  "be valid probability distributions that sum to 1'", OPTAX_SRC, code="X001",
                                  when=_zero_sum_row),),
               reference="segmentation.dice_loss",
               notes="reduction is over the classes; axis=None sums the spatial axes (all but the first and last)"),
    optax_spec("binary_dice_loss", args=OPTAX_ARGS, space={"smooth": SMOOTH, "apply_sigmoid": [True, False]},
               inputs=_binary_inputs, oracle=_binary_dice, expected=(BINARY_NO_SIGMOID_RAISES, ACTIVATION_FLUSHED, VALIDATION_UNJITTABLE),
               # one sample per leading entry, reduced over the rest: a 1-D input is one sample
               batch_layout=layouts.leading({"predictions": 2, "targets": 2}),
               family="segmentation", reference="segmentation.binary_dice_loss"),
    optax_spec("multiclass_generalized_dice_loss", args=OPTAX_ARGS,
               space={"smooth": SMOOTH, "apply_softmax": [True, False], "ignore_background": [False, True]},
               inputs=_generalized_inputs, oracle=_generalized(), exact=_generalized(exact=True),
               expected=(ACTIVATION_FLUSHED, VALIDATION_UNJITTABLE,
                         Expected("with apply_softmax=False optax validates its input and raises ValueError on "
                                  "rows that are not distributions (a zero-sum row, drawn by the numerics property)",
                                  OPTAX_SRC, code="X001",
                                  when=lambda c, d: not c.params["apply_softmax"] and bool(np.any(np.isclose(
                                      np.sum(np.asarray(c.inputs["predictions"]), axis=-1), 0.0)))),),
               deviation=Deviation("the class weights are 1 / (f^2 + 1e-7) for the class frequencies f (then "
                                   "normalised), not Sudre et al.'s 1 / f^2, which is infinite for a class absent "
                                   "from the targets", OPTAX_SRC),
               pools_batch=True, batch_layout=layouts.leading({"predictions": 2, "targets": 2}),
               family="segmentation", reference="segmentation.generalized_dice_loss",
               notes="the class weights depend on the targets and are differentiated"),
]

SPECS = [*TORCH_SPECS, *KERAS_SPECS, *OPTAX_SPECS]
