"""optax.losses cross-entropies, focal loss, KL divergences and margin losses (appended to
``optax_losses.SPECS``). optax/losses/_classification.py; none of these reduces.

``axis`` may be an int, a tuple of axes (the classes are then the flattened axes, in the order
given) or None (every axis). ``where`` is drawn of the logits' shape or, where optax documents it
(``softmax_cross_entropy`` and its integer-label form), of the shape without the class axes: optax
inserts them, masking whole rows. ``poly_loss_cross_entropy`` does not: it passes ``where`` to
``jax.nn.softmax`` as it is, which fails to broadcast or broadcasts it wrongly (not documented
either way, so not drawn).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import strategies as S
from ..reference import classification as C
from ..reference import divergence as D
from ..reference import margin as M
from ..tolerance import MAX
from . import layouts
from .build import optax_spec
from .spec import Arg, Deviation, Expected
from .when import any_flushed, flushed

DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"
SRC = "https://github.com/google-deepmind/optax/blob/main/optax/losses/_classification.py"

#: class axes: an int, tuples (in and out of order), None (softmax and KL losses only)
AXES = [-1, 0, 1, (0, 1), (-1, 0), (2, 0)]
GAMMA = st.one_of(st.sampled_from([0.0, 1.0, 2.0]), st.floats(0.0, 5.0))
ALPHA = st.one_of(st.sampled_from([None, 0.25]), st.floats(0.0, 1.0))
EPSILON = st.one_of(st.sampled_from([2.0, -1.0, 0.0]), st.floats(-1.0, 4.0))

LOGITS = (Arg("logits"), Arg("labels"))
INT_LABELS = (Arg("logits"), Arg("labels", kind="int"))


# ---- axes and shapes ---------------------------------------------------------------------------

def _min_ndim(axis) -> int:
    """The fewest dimensions in which ``axis`` names distinct, valid axes."""
    axes = () if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return next(nd for nd in range(1, 8) if all(-nd <= a < nd for a in axes)
                and len({a % nd for a in axes}) == len(axes))


def _axes(axis, ndim) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def _rest(shp, axes):
    return tuple(n for i, n in enumerate(shp) if i not in axes)


def _shape(data, axis, max_dims=3):
    lo = _min_ndim(axis)
    return S.shape(data, min_dims=lo, max_dims=max(lo, max_dims), max_side=5)


def _one_hot(idx, shp, axes):
    """One-hot labels of ``shp`` for flat class indices ``idx`` into the class ``axes`` (optax's
    layout: batch axes in order, then the class axes flattened in the order given)."""
    rest = [i for i in range(len(shp)) if i not in axes]
    n = int(np.prod([shp[a] for a in axes]))
    oh = (np.asarray(idx)[..., None] == np.arange(n)).astype(np.float64)
    oh = oh.reshape(tuple(shp[i] for i in rest) + tuple(shp[a] for a in axes))
    return np.transpose(oh, np.argsort(rest + list(axes)))


def _logits(data, shp, label="logits"):
    """Moderate or large logits (float32 exp overflows beyond 88)."""
    hi = S.choice(data, [8.0, 60.0, 1000.0], f"{label}_range")
    return S.reals(data, shp, label, -hi, hi)


def _where(data, shp, axes, rows_allowed=True):
    """None, a mask of ``shp``, or (for int/tuple class axes) a mask of the batch shape."""
    form = S.choice(data, ["none", "full", "rows"] if rows_allowed else ["none", "full"], "where_form")
    if form == "full":
        return data.draw(hnp.arrays(bool, shp), label="where")
    if form == "rows":
        return data.draw(hnp.arrays(bool, _rest(shp, axes)), label="where")
    return None


def _neg_inf(data, x, y, label="neg_inf_at"):
    """-inf logits at some of the classes whose label is 0 (0 log 0 = 0 keeps the loss finite)."""
    if not S.flag(data, "neg_inf_logits"):
        return x
    at = data.draw(hnp.arrays(bool, np.shape(x)), label=label)
    return np.where(at & (np.asarray(y) == 0), -np.inf, x)


# ---- inputs ------------------------------------------------------------------------------------

def _sigmoid_inputs(data, params):
    shp = S.shape(data, min_dims=0)
    soft = S.flag(data, "soft_labels")
    y = S.probabilities(data, shp, "labels") if soft else S.binary_labels(data, shp, "labels")
    return {"logits": _logits(data, shp), "labels": y}


def _softmax_inputs(rows=True):
    """``rows``: ``where`` may have the batch shape (softmax_cross_entropy inserts the class axes;
    poly_loss_cross_entropy does not: its softmax broadcasts ``where`` against the logits as is)."""
    def inputs(data, params):
        axis = params.get("axis", -1)
        shp = _shape(data, axis)
        axes = _axes(axis, len(shp))
        if S.flag(data, "soft_labels"):
            y = S.simplex(data, shp, "labels", axis=axes)
        else:
            n = int(np.prod([shp[a] for a in axes]))
            y = _one_hot(S.indices(data, _rest(shp, axes), n, "labels"), shp, axes)
        x = _logits(data, shp)
        out = {"logits": _neg_inf(data, x, y), "labels": y}
        where = _where(data, shp, axes, rows_allowed=rows and axis is not None)
        if where is not None:
            out["__params__"] = {"where": where}
        return out
    return inputs


def _safe_inputs(data, params):
    shp = S.shape(data)
    y = S.simplex(data, shp, "labels") if S.flag(data, "soft_labels") else S.one_hot_rows(data, shp, "labels")
    return {"logits": _neg_inf(data, _logits(data, shp), y), "labels": y}


def _integer_inputs(data, params):
    axis = params["axis"]
    shp = _shape(data, axis)
    axes = _axes(axis, len(shp))
    n = int(np.prod([shp[a] for a in axes]))
    labels = S.indices(data, _rest(shp, axes), n, "labels")
    x = _logits(data, shp)
    # -inf only away from the label's class: the loss stays finite
    onehot = _one_hot(labels, shp, axes)
    x = _neg_inf(data, x, 1.0 - onehot)
    out = {"logits": x, "labels": labels}
    where = _where(data, shp, axes)
    if where is not None and where.shape == shp and S.flag(data, "where_excludes_labels"):
        where = where & (onehot == 0)     # optax's quirk: the label's logit still counts
    if where is not None:
        out["__params__"] = {"where": where}
    return out


def _kl_inputs(second, domain):
    """``log_predictions`` and ``second`` (targets in ``domain``), with axis and where."""
    def inputs(data, params):
        axis = params["axis"]
        shp = _shape(data, axis)
        if S.flag(data, "normalized"):
            lq = np.log(S.simplex(data, shp, "log_predictions", floor=1e-3))
        else:
            lq = S.reals(data, shp, "log_predictions", -8.0, 2.0)
        out = {"log_predictions": lq, second: domain(data, shp, second)}
        form = S.choice(data, ["none", "full", "last"], "where_form")
        if form != "none":
            out["__params__"] = {"where": data.draw(hnp.arrays(bool, shp if form == "full" else shp[-1:]),
                                                    label="where")}
        return out
    return inputs


def _probabilities(data, shp, label):
    return S.simplex(data, shp, label) if S.flag(data, "normalized_targets") else S.probabilities(data, shp, label)


def _log_targets(data, shp, label):
    if S.flag(data, "normalized_targets"):
        return np.log(S.simplex(data, shp, label, floor=1e-3))
    return S.reals(data, shp, label, -8.0, 1.0)


def _nonnegative(data, shp, label):
    return S.reals(data, shp, label, 0.0, 8.0)


def _sign_inputs(data, params):
    shp = S.shape(data, min_dims=0)
    return {"predictor_outputs": S.reals(data, shp, "predictor_outputs"), "targets": S.sign_labels(data, shp, "targets")}


def _multiclass_inputs(data, params):
    c = S.classes(data)
    batch = tuple(data.draw(st.lists(st.integers(1, 4), max_size=2), label="batch_shape"))
    while batch and c * int(np.prod(batch)) > S.SIZE_BUDGET:
        batch = batch[:-1]
    scores = S.reals(data, batch + (c,), "scores")
    if S.flag(data, "tied_scores"):   # ties of the maximum (kinks: value only)
        scores = np.round(scores)
    return {"scores": scores, "labels": S.indices(data, batch, c, "labels")}


# ---- oracles -----------------------------------------------------------------------------------

def _where_of(case):
    return case.params.get("where")


def _axis_of(case):
    """optax's ``axis=None`` is every axis: the reference takes the tuple."""
    axis = case.params.get("axis", -1)
    return _axes(None, np.ndim(case.inputs["logits"])) if axis is None else axis


def _softmax_ce(case):
    return C.softmax_cross_entropy(case.inputs["logits"], case.inputs["labels"], axis=_axis_of(case),
                                   where=_where_of(case))


def _poly(case):
    return C.poly_loss_cross_entropy(case.inputs["logits"], case.inputs["labels"], epsilon=case.params["epsilon"],
                                     axis=_axis_of(case), where=_where_of(case))


def _integer_ce(case):
    return C.softmax_cross_entropy_with_integer_labels(case.inputs["logits"], case.inputs["labels"],
                                                       axis=case.params["axis"], where=_where_of(case))


def _integer_ce_as_dense(case):
    """The one-hot twin, ``softmax_cross_entropy(logits, one_hot(labels), axis, where)``: a label
    outside ``where`` leaves the sum (0 for that row)."""
    x = case.inputs["logits"]
    axis = case.params["axis"]
    y = _one_hot(case.inputs["labels"], np.shape(x), _axes(axis, np.ndim(x)))
    return C.softmax_cross_entropy(x, y, axis=axis, where=_where_of(case))


def _kl(fn, second):
    def oracle(case):
        axis = case.params["axis"]
        return fn(case.inputs["log_predictions"], case.inputs[second], axis=axis, where=_where_of(case))
    return oracle


# ---- expected failures -------------------------------------------------------------------------

def _masks_a_class(case, dtype):
    where = _where_of(case)
    return where is not None and not np.all(where)


MASKED_LABEL_GRAD_NAN = Expected(
    "the gradient with respect to labels is NaN at every class outside `where`: log_softmax(logits, where=...) is "
    "-inf there, and the masked sum's backward multiplies its zero cotangent by it (0 * -inf); those labels do not "
    "enter the loss, so the derivative is 0. Verified: logits [[1, 2, 3]], where [[T, F, T]] gives d/dlabels "
    "[2.127, nan, 0.127] (value and logits gradient agree with the reference)",
    SRC, property="gradient", code="N003", when=_masks_a_class)


def _has_neg_inf(case, dtype):
    return bool(np.any(np.isneginf(case.inputs["logits"])))


NEG_INF_NAN = Expected(
    "a -inf logit whose label is 0 makes the value NaN (labels * log_softmax is 0 * -inf; optax documents that "
    "safe_softmax_cross_entropy, not this function, follows 0 log 0 = 0 there). The gradient is right: "
    "logits [[-inf, 2, 3]], labels [[0, .3, .7]] give value NaN, d/dlogits [0, -0.0311, 0.0311]",
    DOCS + "#optax.losses.safe_softmax_cross_entropy", property="value", code="N001", when=_has_neg_inf)


def _hard_label_with_focus(case, dtype):
    y = flushed(case.inputs["labels"], dtype)   # XLA on CPU flushes subnormal labels to 0
    return case.params["gamma"] != 0 and bool(np.any((y == 0) | (y == 1)))


FOCAL_HARD_LABEL_GRAD = Expected(
    "the gradient with respect to labels is wrong at labels exactly 0 or 1 (gamma != 0): log(1 - p_t) is "
    "jax.scipy.special.logsumexp([log_sigmoid(x), log_sigmoid(-x)], b=[1 - y, y]), which replaces a by -inf where "
    "b == 0 (jax/_src/ops/special.py), so d/db is lost there and with it the sigmoid(-x) (y = 0) or sigmoid(x) "
    "(y = 1) part of d(1 - p_t)/dy. Verified (jax 0.10.2, optax 0.2.8): x = -2, y = 0, gamma = 2 gives 0.02481, "
    "the derivative is 0.05146 (central differences of optax's own value agree); gamma = 0 is right",
    "https://github.com/jax-ml/jax/blob/main/jax/_src/ops/special.py",
    property="gradient", when=_hard_label_with_focus)



def _subnormal_label_with_focus(case, dtype):
    y = np.asarray(case.inputs["labels"])
    return case.params["gamma"] != 0 and bool(np.any(flushed(y, dtype) != y))


FOCAL_CPU_FLUSHED_LABEL = Expected(
    "the CPU and a GPU disagree on d/dlabels at a subnormal label (gamma != 0): XLA on the CPU flushes the "
    "label to 0, where the gradient has the logsumexp defect recorded for labels exactly 0; XLA on the GPU "
    "keeps float64 subnormals and gives the exact derivative. Measured (H100, jax 0.11.2, optax 0.2.8, "
    "nightly --device cuda --examples 10, seed 0): logits 0, labels 2.2e-309, gamma 1 give d/dlabels -0.3466 "
    "on the CPU (as at labels 0) against the exact 0",
    "https://github.com/jax-ml/jax/discussions/21932", property="device", code="D006", runtime="jax",
    when=_subnormal_label_with_focus)


def _masked_overflow(arg):
    def when(case, dtype):
        where = _where_of(case)
        if where is None or np.all(where):
            return False
        x, w = np.broadcast_arrays(np.asarray(case.inputs[arg]), np.asarray(where, dtype=bool))
        return bool(np.any(~w & (x > np.log(MAX[dtype]))))
    return when


MASKED_OVERFLOW_GRAD_NAN, MASKED_TARGET_OVERFLOW_GRAD_NAN = (Expected(
    "the gradient is NaN at an element outside `where` whose exp(" + arg + ") overflows: jnp.sum(..., where=) "
    "masks the value but its backward multiplies the zero cotangent by the overflowed inf (0 * inf, the jnp.where "
    "gradient trap); the masked element does not enter the loss, so its derivative is 0. Verified (jax 0.10.2, "
    "optax 0.2.8, float64, where [F, T]): generalized_kl_divergence(log_predictions [1000, 0.5], targets [0, 0.3]) "
    "is 0.8375 (right) with gradients [nan, 1.3487] / [nan, -1.7040]; kl_divergence_with_log_targets("
    "[-1e4, -0.5], log_targets [1000, -1.2]) is -0.2108 (right) with gradients [nan, -0.3012] / [nan, 0.0904]",
    "https://docs.jax.dev/en/latest/faq.html#gradients-contain-nan-where-using-where",
    code="N003", when=_masked_overflow(arg)) for arg in ("log_predictions", "log_targets"))

def _subnormal_targets(case, dtype):
    t = np.asarray(case.inputs["targets"])
    return bool(np.any(flushed(t, dtype) != t))


KL_SUBNORMAL_TARGET = Expected(
    "XLA on CPU reads subnormal inputs as 0 (float64 ones too): a target below the dtype's smallest normal "
    "contributes 0 instead of t (log t - log_predictions), and its gradient t -> log t + 1 - log_predictions "
    "is NaN. Measured (jax 0.10.2, optax 0.2.8, float64, soak seed 11): log_predictions [[0]], targets "
    "[[1.11e-308]] give 0 (exact -7.889e-306) and d/dtargets NaN (exact -708.09); targets [[3e-308]] (normal) "
    "are right",
    "https://github.com/jax-ml/jax/discussions/21932", when=_subnormal_targets)



def _masked_zero_target(case, dtype):
    where = _where_of(case)
    if where is None or np.all(where):
        return False
    t, w = np.broadcast_arrays(flushed(case.inputs["targets"], dtype), np.asarray(where, dtype=bool))
    return bool(np.any(~w & (t == 0)))


KL_MASKED_ZERO_TARGET = Expected(
    "d/dtargets is NaN at a target of 0 (or a subnormal one, which XLA on CPU reads as 0) outside `where`: "
    "t log t's derivative log t + 1 is -inf there, and the masked sum's backward multiplies its zero cotangent "
    "by it (the jnp.where gradient trap); the masked element does not enter the loss, so its derivative is 0. "
    "Measured (jax 0.10.2, optax 0.2.8, float64): log_predictions [0, -0.5], targets [0, 0.3], where [F, T] "
    "give d/dtargets [nan, 0.2960] (kl_divergence) and [nan, -0.7040] (generalized_kl_divergence), values right. "
    "Hidden until 2026-11-25 by the kink window at t = 0, which skipped NaN too",
    "https://docs.jax.dev/en/latest/faq.html#gradients-contain-nan-where-using-where",
    property="gradient", code="N003", when=_masked_zero_target)

GENERALIZED_KL_SUBNORMAL_TARGET = Expected(
    "XLA on CPU reads subnormal inputs as 0 (float64 ones too): d/dtargets at a target below the dtype's "
    "smallest normal, log t - log_predictions, is NaN. Measured (jax 0.10.2, optax 0.2.8, float64): "
    "generalized_kl_divergence(log_predictions [0], targets [2.2e-309]) gives 1.0 (right within rounding) and "
    "d/dtargets NaN (exact -710.7)",
    "https://github.com/jax-ml/jax/discussions/21932", property="gradient", code="N003", when=_subnormal_targets)


def _focal_value_flushes(case, dtype):
    if dtype not in ("float32", "float64"):
        return False
    r = C.sigmoid_focal_loss(case.inputs["logits"], case.inputs["labels"], alpha=case.params["alpha"],
                             gamma=case.params["gamma"])
    # at a finite logit the exact loss is positive: a value below the smallest normal (0 included,
    # where even the oracle underflows) is one that flushes or underflows in optax's product
    v, x = np.broadcast_arrays(np.abs(np.asarray(r.value)), np.asarray(case.inputs["logits"]))
    return bool(np.any(np.isfinite(x) & (v < np.finfo(dtype).tiny)))


FOCAL_FLUSHED_VALUE = Expected(
    "where the loss's value is below the dtype's smallest normal, optax returns 0 (XLA on CPU flushes "
    "subnormals to zero, float64 ones too; further down the product ce * focal_weight underflows) and loses "
    "with it the term ce * focal_weight * gamma * dlog(1 - p_t)/dlabels of the gradient, an underflowed factor "
    "times a huge one (1 / (1 - p_t)). Measured (jax 0.10.2, optax 0.2.8): float32, logits -1e4, labels 1e-12, "
    "gamma 3 give value 0 (exact 1.0e-44) and d/dlabels 1.0e-32 (exact 4.0e-32); float64 (soak seed 10), "
    "logits -355, labels 3.2e-278, gamma 1 give value 0 (exact 4.48e-309) and d/dlabels 2.3751e-152 (exact "
    "2.3818e-152, mpmath at 600 digits)",
    "https://github.com/jax-ml/jax/discussions/21932", property="gradient", when=_focal_value_flushes)


def _focal_alpha_flushed(case, dtype) -> bool:
    """A non-zero ``alpha`` below the tested dtype's smallest normal number."""
    alpha = case.params.get("alpha")
    return alpha is not None and any_flushed((alpha,), dtype)


FOCAL_ALPHA_FLUSHED = Expected(
    "XLA on CPU flushes a subnormal alpha to zero, so the positive labels' term alpha * ce * (1 - p_t)^gamma "
    "is 0. Measured (jax 0.10.2, optax 0.2.8, losscheck check seed 22): float64, logits [-145], labels [1], "
    "alpha 1.1125e-308, gamma 0 give 0 (eager and jit), exact 1.6132e-306; alpha 2.3e-308 (normal) gives "
    "3.335e-306, the exact value; float32, logits [-20], alpha 1e-39 gives 0, exact 2e-38",
    "https://github.com/jax-ml/jax/issues/16200", property="value", runtime="jax", when=_focal_alpha_flushed)


# ---- specs -------------------------------------------------------------------------------------

SPECS = [
    optax_spec("sigmoid_binary_cross_entropy", args=LOGITS, space={}, inputs=_sigmoid_inputs,
               oracle=lambda c: C.binary_cross_entropy_with_logits(c.inputs["logits"], c.inputs["labels"]),
               lower_bound=0.0, family="classification", reference="classification.binary_cross_entropy_with_logits"),
    optax_spec("softmax_cross_entropy", args=LOGITS, space={"axis": AXES + [None]}, inputs=_softmax_inputs(),
               oracle=_softmax_ce, expected=(MASKED_LABEL_GRAD_NAN, NEG_INF_NAN),
               lower_bound=0.0, family="classification", reference="classification.softmax_cross_entropy"),
    optax_spec("softmax_cross_entropy_with_integer_labels", args=INT_LABELS, space={"axis": AXES},
               inputs=_integer_inputs, oracle=_integer_ce, exact=_integer_ce_as_dense,
               deviation=Deviation(
                   "the label's logit is taken from the unmasked logits: where `where` excludes a row's label "
                   "class the loss is logsumexp(logits over where) - logits[label], which can be negative; the "
                   "one-hot twin softmax_cross_entropy gives 0 for such a row", SRC),
               family="classification", reference="classification.softmax_cross_entropy_with_integer_labels"),
    optax_spec("safe_softmax_cross_entropy", args=LOGITS, space={}, inputs=_safe_inputs,
               oracle=lambda c: C.safe_softmax_cross_entropy(c.inputs["logits"], c.inputs["labels"]),
               lower_bound=0.0, family="classification", reference="classification.safe_softmax_cross_entropy"),
    optax_spec("poly_loss_cross_entropy", args=LOGITS, space={"epsilon": EPSILON, "axis": AXES + [None]},
               inputs=_softmax_inputs(rows=False), oracle=_poly, expected=(MASKED_LABEL_GRAD_NAN, NEG_INF_NAN),
               family="classification", reference="classification.poly_loss_cross_entropy"),
    optax_spec("sigmoid_focal_loss", args=LOGITS, space={"alpha": ALPHA, "gamma": GAMMA}, inputs=_sigmoid_inputs,
               oracle=lambda c: C.sigmoid_focal_loss(c.inputs["logits"], c.inputs["labels"], alpha=c.params["alpha"],
                                                     gamma=c.params["gamma"]),
               expected=(FOCAL_HARD_LABEL_GRAD, FOCAL_FLUSHED_VALUE, FOCAL_ALPHA_FLUSHED, FOCAL_CPU_FLUSHED_LABEL), lower_bound=0.0, family="classification",
               reference="classification.sigmoid_focal_loss"),
    optax_spec("kl_divergence", args=(Arg("log_predictions"), Arg("targets")), space={"axis": AXES + [None]},
               inputs=_kl_inputs("targets", _probabilities), oracle=_kl(D.kl_divergence, "targets"),
               expected=(KL_SUBNORMAL_TARGET, KL_MASKED_ZERO_TARGET), family="divergence",
               reference="divergence.kl_divergence"),
    optax_spec("kl_divergence_with_log_targets", args=(Arg("log_predictions"), Arg("log_targets")),
               space={"axis": AXES + [None]}, inputs=_kl_inputs("log_targets", _log_targets),
               oracle=_kl(D.kl_divergence_with_log_targets, "log_targets"),
               swappable=("log_predictions", "log_targets"),
               expected=(MASKED_TARGET_OVERFLOW_GRAD_NAN, Expected("XLA on CPU flushes subnormal results to zero: exp(log_targets) below the "
                                  "smallest normal float32 (log_targets < -87.3) is 0, so its term is 0",
                                  "https://github.com/jax-ml/jax/discussions/21932", dtype="float32",
                                  when=lambda c, d: bool(np.any(np.exp(np.asarray(c.inputs["log_targets"]))
                                                                < np.finfo(np.float32).tiny))),),
               family="divergence", reference="divergence.kl_divergence_with_log_targets"),
    *(optax_spec(name, args=(Arg("log_predictions"), Arg("targets")), space={"axis": AXES + [None]},
                 inputs=_kl_inputs("targets", _nonnegative), oracle=_kl(D.generalized_kl_divergence, "targets"),
                 expected=(MASKED_OVERFLOW_GRAD_NAN, KL_MASKED_ZERO_TARGET, GENERALIZED_KL_SUBNORMAL_TARGET),
                 family="divergence", reference="divergence.generalized_kl_divergence",
                 notes="" if name == "generalized_kl_divergence" else
                 "deprecated alias of generalized_kl_divergence (warns)")
      for name in ("generalized_kl_divergence", "convex_kl_divergence")),
    optax_spec("hinge_loss", args=(Arg("predictor_outputs", "predictions"), Arg("targets")), space={},
               inputs=_sign_inputs, oracle=lambda c: M.hinge(c.inputs["predictor_outputs"], c.inputs["targets"]),
               lower_bound=0.0, family="margin", reference="margin.hinge"),
    optax_spec("perceptron_loss", args=(Arg("predictor_outputs", "predictions"), Arg("targets")), space={},
               inputs=_sign_inputs,
               oracle=lambda c: M.perceptron(c.inputs["predictor_outputs"], c.inputs["targets"]),
               lower_bound=0.0, family="margin", reference="margin.perceptron"),
    optax_spec("multiclass_hinge_loss", args=(Arg("scores"), Arg("labels", kind="int")), space={},
               inputs=_multiclass_inputs,
               oracle=lambda c: M.multiclass_hinge(c.inputs["scores"], c.inputs["labels"]),
               lower_bound=0.0, family="margin", reference="margin.multiclass_hinge"),
    optax_spec("multiclass_perceptron_loss", args=(Arg("scores"), Arg("labels", kind="int")), space={},
               inputs=_multiclass_inputs,
               oracle=lambda c: M.multiclass_perceptron(c.inputs["scores"], c.inputs["labels"]),
               family="margin", reference="margin.multiclass_perceptron"),
]

# ---- batch layouts: optax losses are unreduced, one loss per entry of the axes they do not reduce ----

_ELEMENTWISE = dict(default=())
LAYOUTS = {
    "sigmoid_binary_cross_entropy": layouts.reduced_axes(("logits", "labels"), **_ELEMENTWISE),
    "sigmoid_focal_loss": layouts.reduced_axes(("logits", "labels"), **_ELEMENTWISE),
    "hinge_loss": layouts.reduced_axes(("predictor_outputs", "targets"), **_ELEMENTWISE),
    "perceptron_loss": layouts.reduced_axes(("predictor_outputs", "targets"), **_ELEMENTWISE),
    # softmax_cross_entropy inserts the class axes into a `where` of the batch shape; poly_loss does not
    "softmax_cross_entropy": layouts.reduced_axes(("logits", "labels"), where_rest=True),
    "poly_loss_cross_entropy": layouts.reduced_axes(("logits", "labels")),
    "safe_softmax_cross_entropy": layouts.reduced_axes(("logits", "labels")),
    "softmax_cross_entropy_with_integer_labels": layouts.reduced_axes(("logits",), ("labels",), where_rest=True),
    "kl_divergence": layouts.reduced_axes(("log_predictions", "targets")),
    "kl_divergence_with_log_targets": layouts.reduced_axes(("log_predictions", "log_targets")),
    "generalized_kl_divergence": layouts.reduced_axes(("log_predictions", "targets")),
    "convex_kl_divergence": layouts.reduced_axes(("log_predictions", "targets")),
    "multiclass_hinge_loss": layouts.reduced_axes(("scores",), ("labels",)),
    "multiclass_perceptron_loss": layouts.reduced_axes(("scores",), ("labels",)),
}
SPECS = [dataclasses.replace(s, batch_layout=LAYOUTS[s.id.rsplit(".", 1)[1]], unbatched=True) for s in SPECS]
