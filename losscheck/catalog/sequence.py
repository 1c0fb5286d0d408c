"""CTC losses of torch, Keras and optax, against reference/sequence.py.

Draws are small (T <= 8 frames, C <= 5 classes, S <= 4 labels, N <= 3 sequences) and include
label rows of repeated labels, empty label sequences and alignments that do not fit (the labels,
with a blank between repeats, need more frames than there are): there the exact loss is infinite
and each framework does its own thing, which the oracle models (``lattice`` / ``log_epsilon`` in
the reference's module doc): torch gives inf (0 with ``zero_infinity``), Keras-torch inf, optax
and Keras-jax about 1e5 per missing transition (``log_epsilon=-1e5``), Keras-TensorFlow about
707 per penalty (``log(1e-307)`` in float32), with a gradient that is not the derivative of that
value.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
from hypothesis import strategies as st

from .. import strategies as S
from ..reference import sequence as Q
from .build import TORCH_REDUCTIONS, keras_twins, optax_spec, torch_twins
from . import layouts
from .spec import Arg, Deviation, Expected, Precision

MAX_T, MAX_C, MAX_S, MAX_N = 8, 5, 4, 3
TORCH_SRC = "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/LossCTC.cpp"
KERAS_SRC = "https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py"
OPTAX_SRC = "https://github.com/google-deepmind/optax/blob/main/optax/losses/_classification.py"


def _sizes(data):
    """Padded sizes from a few values: the drawn input and label lengths vary the effective sizes
    within one shape, and every new shape is a new (slow) compilation of the CTC lattice in XLA."""
    t = S.choice(data, [1, 4, MAX_T], "T")
    c = S.choice(data, [2, MAX_C], "C")
    s = S.choice(data, [1, MAX_S], "S")
    n = S.choice(data, [1, MAX_N], "N")
    return t, c, s, n


def _label_rows(data, n, s, c, blank, label="labels"):
    """(n, s) labels that are not ``blank``; often a repeated label (which needs a blank between)."""
    classes = [k for k in range(c) if k != blank]
    rows = data.draw(st.lists(st.lists(st.sampled_from(classes), min_size=s, max_size=s), min_size=n, max_size=n),
                     label=label)
    return np.array(rows, dtype=np.int64).reshape(n, s)


def _log_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


# ---- torch -------------------------------------------------------------------------------------

def _torch_inputs(data, params):
    t, c, s, n = _sizes(data)
    blank = S.choice(data, sorted({0, c - 1, c // 2}), "blank")
    lab = _label_rows(data, n, s, c, blank, "targets")
    il = np.array(data.draw(st.lists(st.integers(0, t), min_size=n, max_size=n), label="input_lengths"))
    tl = np.array(data.draw(st.lists(st.integers(0, s), min_size=n, max_size=n), label="target_lengths"))
    # log_softmax outputs, as torch documents; the rows are rounded to the tested dtype afterwards
    lp = _log_softmax(S.reals(data, (t, n, c), "logits", -6.0, 6.0))
    form = S.choice(data, ["padded", "concatenated", "unbatched"], "targets_form")
    targets = lab
    if form == "concatenated":   # un-padded, 1-D, sum(target_lengths) long (possibly empty)
        targets = np.concatenate([lab[b, : tl[b]] for b in range(n)]).astype(np.int64)
    elif form == "unbatched":    # (T, C) log-probs; 1-D targets are the concatenated form
        lp, targets, il, tl = lp[:, 0], lab[0, : tl[0]], il[0], tl[0]
    return {"log_probs": lp, "targets": targets, "input_lengths": il, "target_lengths": tl,
            "__params__": {"blank": blank}}


def _torch_oracle(c):
    i = c.inputs
    return Q.torch_ctc_loss(i["log_probs"], i["targets"], i["input_lengths"], i["target_lengths"],
                            blank=c.params["blank"], reduction=c.params.get("reduction", "mean"),
                            zero_infinity=c.params["zero_infinity"], log_softmax_grad=True)


_TORCH_BATCHED = layouts.leading({"log_probs": 3, "targets": 2, "input_lengths": 1, "target_lengths": 1},
                                 axes={"log_probs": 1})


def _torch_layout(case):
    """(T, N, C) log-probs with padded (N, S) targets; unbatched (T, C) takes 1-D targets in the
    concatenated form, so a padded row is unbatched only where it is all label (length S)."""
    out = _TORCH_BATCHED(case)
    t, tl = case.inputs["targets"], case.inputs["target_lengths"]
    if out is None and np.ndim(t) == 1 and np.size(t) != int(tl):
        return f"unbatched 1-D targets are concatenated: {np.size(t)} labels against target_length {int(tl)}"
    return out


SPECS = [
    *torch_twins(
        "CTCLoss", "ctc_loss",
        args=(Arg("log_probs"), Arg("targets", kind="int"), Arg("input_lengths", kind="int"),
              Arg("target_lengths", kind="int")),
        space={"reduction": TORCH_REDUCTIONS, "zero_infinity": [False, True]},
        inputs=_torch_inputs, oracle=_torch_oracle, family="sequence", reference="sequence.torch_ctc_loss",
        lower_bound=0.0, unbatched=True,
        # (T, N, C) log-probs; concatenated 1-D targets beside them do not tile (skipped), unbatched
        # (T, C) with (S,) targets and 0-d lengths is the documented unbatched form
        batch_layout=_torch_layout,
        notes=("Gradient convention (verified in float64 to 0.6 eps): torch's CTC backward returns "
               "exp(log_probs) * G - posterior * G, the gradient w.r.t. logits of loss(log_softmax(logits)) "
               "at logits = log_probs, not the derivative -posterior * G; the oracle binds "
               "log_softmax_grad=True. Behind a log_softmax (as documented) the gradient reaching the logits "
               "is exact. CPU CTC is float32/float64 only ('ctc_loss_cpu' not implemented for 'Half' and "
               "'BFloat16'). " + TORCH_SRC)),
]


# ---- Keras -------------------------------------------------------------------------------------

#: The backends agree where an alignment exists; where none does each writes log 0 its own way.
KERAS_LATTICE = {
    "keras-torch": dict(lattice="graves"),
    "keras-jax": dict(lattice="optax", log_epsilon=-1e5),
    "keras-tensorflow": dict(lattice="tensorflow", log_epsilon=Q.TF_LOG_0),
}


def _keras_inputs(data, params):
    t, c, s, n = _sizes(data)
    lab = _label_rows(data, n, s, c, 0, "labels")
    lens = np.array(data.draw(st.lists(st.integers(0, s), min_size=n, max_size=n), label="label_lengths"))
    y_true = np.where(np.arange(s)[None, :] < lens[:, None], lab, 0)   # right-padded with the mask index 0
    return {"y_true": y_true, "y_pred": S.reals(data, (n, t, c), "y_pred", -6.0, 6.0)}


def _keras_oracle(c, reduce_kw):
    kw = KERAS_LATTICE.get(c.runtime, dict(lattice="graves"))
    return Q.keras_ctc(c.inputs["y_true"], c.inputs["y_pred"], **kw, **reduce_kw)


def _weight_underflows_in_float32(c, dtype) -> bool:
    sw = c.inputs.get("sample_weight")
    if sw is None or c.params.get("reduction") != "mean_with_sample_weight":
        return False
    if c.runtime not in ("keras-tensorflow", "keras-jax"):
        return False
    sw = np.asarray(sw, dtype=np.float64)
    return bool(np.any((sw != 0) & (np.abs(sw) < np.finfo(np.float32).tiny)))


#: Not a framework bug: on TensorFlow and jax (x64 enabled) only the CTC runs in float32; the loss
#: is then weighted and divided by the float64 sample weights in float64. The float32 re-measure
#: of TF_FLOAT32 / KERAS_FLOAT64_IN_FLOAT32 rounds the whole case, weights included, to float32,
#: where a weight below float32's smallest normal becomes 0 and mean_with_sample_weight gives 0.
TF_TINY_WEIGHTS = Expected(
    "harness limitation, not a framework bug: on TensorFlow and jax only the CTC runs in float32 (keras.losses.ctc "
    "returns float32 for float64 logits on jax); the float64 sample weights are applied in float64, but the "
    "Precision re-measure rounds them to float32 too, where weights below 1.2e-38 become 0 and "
    "mean_with_sample_weight divides by 0. Verified: CTC(reduction='mean_with_sample_weight')(y_true=[[0]], "
    "y_pred=zeros((1, 1, 2)) float64, sample_weight=[1e-50]) gives float32(log 2) = 0.69314718 on TF and on "
    "jax with x64, as it should",
    KERAS_SRC, property="value", dtype="float64", code="V001", when=_weight_underflows_in_float32)


def _int_labels(spec):
    args = tuple(Arg("y_true", kind="int") if a.name == "y_true" else a for a in spec.args)
    return dataclasses.replace(spec, args=args)


TF_FLOAT32 = Precision(
    "float64", "float32",
    "Keras' TensorFlow ctc_loss casts float64 logits to float32 (tf.nn.ctc_loss rejects float64) and "
    "the result back", KERAS_SRC, runtimes=("keras-tensorflow",))

SPECS += [_int_labels(s) for s in keras_twins(
    "CTC", "ctc", space={}, inputs=_keras_inputs, oracle=_keras_oracle, family="sequence",
    reference="sequence.keras_ctc", y_true="y_true", y_pred="y_pred", precision=(TF_FLOAT32,),
    lower_bound=0.0, expected=(TF_TINY_WEIGHTS,),
    batch_layout=layouts.leading({"y_true": 2, "y_pred": 3, "sample_weight": 1}),
    notes=("Blank is 0; a row's label length is its count of non-zero labels; all frames are used. Where "
           "no alignment exists: keras-torch inf (NaN gradient), keras-jax optax's log_epsilon=-1e5 "
           "recursion, keras-tensorflow tf.nn.ctc_loss dense with log_0 = float32(log(1e-307)) in the "
           "initial/final weights; there TF's likelihood starts at the start state alone while its "
           "gradient's forward pass starts from all states (log_0 off the start), so the gradient is not "
           "the derivative of the value (both modelled, verified to 0.6 float32 eps)."))]


# ---- optax -------------------------------------------------------------------------------------

OPTAX_ARGS = (Arg("logits"), Arg("logit_paddings", differentiable=False), Arg("labels", kind="int"),
              Arg("label_paddings", differentiable=False))
LOG_EPS = Deviation("log 0 is approximated by log_epsilon (default -1e5): an impossible alignment costs about "
                    "|log_epsilon| per missing transition instead of inf, and penalised paths add "
                    "exp(log_epsilon)-sized terms to possible ones", OPTAX_SRC)


def _optax_inputs(data, params):
    t, c, s, n = _sizes(data)
    blank = S.choice(data, sorted({0, c - 1, c // 2}), "blank_id")
    lab = _label_rows(data, n, s, c, blank, "labels")
    lens = np.array(data.draw(st.lists(st.integers(0, s), min_size=n, max_size=n), label="label_lengths"))
    label_paddings = (np.arange(s)[None, :] >= lens[:, None]).astype(np.float64)   # right-padded (documented)
    logit_paddings = S.binary_labels(data, (n, t), "logit_paddings")   # any pattern: padded frames are skipped
    return {"logits": S.reals(data, (n, t, c), "logits", -6.0, 6.0), "logit_paddings": logit_paddings,
            "labels": lab, "label_paddings": label_paddings, "__params__": {"blank_id": blank}}


def _optax_oracle(fn, exact=False):
    def oracle(c):
        i = c.inputs
        eps = None if exact else c.params.get("log_epsilon", -1e5)
        return fn(i["logits"], i["logit_paddings"], i["labels"], i["label_paddings"],
                  blank_id=c.params["blank_id"], log_epsilon=eps)
    return oracle


def _forward_probs_call(ns, params):
    """The three outputs, flattened and concatenated: one array the harness can check."""
    fn = partial(ns.optax.losses.ctc_loss_with_forward_probs, **params)

    def call(*args, **kw):
        return ns.jnp.concatenate([a.ravel() for a in fn(*args, **kw)])
    return call


def _optax_lower_bound(c):
    """Per sequence, -log((1 + 2 N e)(1 + e)^T) with e = exp(log_epsilon), N the label columns and T
    the unpadded frames: optax's finite log 0 makes its loss go below 0 (0 when e underflows).

    Why: optax starts the 2N states other than phi[0] at weight e, and for each frame's symbol a
    state's weight reaches the next states at most (1 + e) times (blank from emit[n] both through
    the free epsilon move and the e-penalised direct blank, and likewise a repeated label's
    penalised skip), so the forward weight is at most (1 + 2 N e)(1 + e)^T times the probability
    of the frames' symbols, which sums to 1. Verified: optax.losses.ctc_loss(logits [[[-1000,
    -1e4]]], [[0.]], labels [[0]], [[0.]], blank_id=1, log_epsilon=-20) = -log1p(e^-20) =
    -2.06e-9; over 20,000 random cases (log_epsilon 0, -1, -5, -20) the loss reached at most
    0.63 of this bound."""
    e = np.exp(float(c.params.get("log_epsilon", -1e5)))
    n = np.shape(c.inputs["labels"])[1]
    frames = np.sum(np.asarray(c.inputs["logit_paddings"]) == 0, axis=1)
    return -(np.log1p(2 * n * e) + frames * np.log1p(e))


OPTAX_SPACE = {"log_epsilon": [-1e5, -20.0]}
OPTAX_LAYOUT = layouts.leading({"logits": 3, "logit_paddings": 2, "labels": 2, "label_paddings": 2})

SPECS += [
    optax_spec("ctc_loss", args=OPTAX_ARGS, space=OPTAX_SPACE, inputs=_optax_inputs,
               oracle=_optax_oracle(Q.optax_ctc_loss), exact=_optax_oracle(Q.optax_ctc_loss, exact=True),
               deviation=LOG_EPS, family="sequence", reference="sequence.optax_ctc_loss",
               lower_bound=_optax_lower_bound,
               batch_layout=OPTAX_LAYOUT),
    dataclasses.replace(
        optax_spec("ctc_loss_with_forward_probs", args=OPTAX_ARGS, space=OPTAX_SPACE, inputs=_optax_inputs,
                   oracle=_optax_oracle(Q.optax_ctc_loss_with_forward_probs), family="sequence",
                   reference="sequence.optax_ctc_loss_with_forward_probs",
                   batch_layout=lambda case: "the checked output concatenates the per-sample losses with the "
                                             "forward probabilities (T, B, N): it has no single batch axis",
                   notes="checked as concatenate([loss, logalpha_blank.ravel(), logalpha_nonblank.ravel()])"),
        call=_forward_probs_call),
]
