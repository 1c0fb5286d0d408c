"""What float16 and bfloat16 do to the catalog's losses: recorded, scoped expected failures.

Half precision is opt-in (``--dtype float16 --dtype bfloat16``). Where a framework's loss is NaN,
Inf or otherwise wrong in half precision at inputs where the exact result is representable (mostly
D004), because one of its constants underflows or an intermediate overflows, and the cause is
located, the failure is recorded here with the mechanism as its scope (a predicate on the drawn,
rounded inputs), so a half-precision run reports it as ``xfail`` with its reason and still fails on
anything outside that scope. Each failure was measured (the smallest input of a whole-catalog half
run, README "Half precision"); the operation named as its cause is read from the framework's source,
and isolated by hand only where the reason says "measured". The table is keyed by spec id and
applied when the catalog loads (:func:`with_half_expectations`); each spec's own module keeps its
float64/float32 expectations.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..reference._core import sigmoid
from ..reference.embedding import circle
from ..reference.segmentation import optax_dice_probabilities
from ..reference.sequence import keras_ctc
from ..tolerance import COTANGENT_MAX, EPS, HALF, MAX, TINY, round_to
from .keras_losses import KERAS_EPSILON
from .sequence import KERAS_LATTICE
from .spec import Expected
from .when import flushed

GENERALIZED_DICE_EPSILON = 1e-7   # optax/losses/_segmentation.py
KERAS_SRC = "https://github.com/keras-team/keras/blob/master/keras/src/losses/losses.py"
TORCH_LOSS_SRC = "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Loss.cpp"
OPTAX_SRC = "https://github.com/google-deepmind/optax/tree/main/optax/losses"


def _f(case, name):
    return np.asarray(case.inputs[name], dtype=np.float64)


def _eps(dtype):
    return float(round_to(dtype, KERAS_EPSILON))


# ---- predicates: when(case, dtype) -------------------------------------------------------------

def _quotient_backward_leaves_range(x, y, dtype, runtime, factor=1.0):
    """Where the backward of x / y leaves the dtype's range though the exact derivatives, g / y and
    g x / y^2, may not; g is the gradient reaching the quotient, ``factor`` times losscheck's cotangent
    (up to 1.5). torch and TensorFlow form g ((x / y) / y): inf where the intermediate (x / y) / y or
    the product passes the largest number; jax forms (g x) integer_pow(y, -2) = (g x) / (y * y) in the
    dtype, so inf for |y| below about 1/256 in float16 and 0, a dropped term, above about 256."""
    x, y, top = np.abs(round_to(dtype, x)), np.abs(round_to(dtype, y)), MAX[dtype]
    g = COTANGENT_MAX * np.abs(factor)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if runtime in ("jax", "keras-jax"):
            inv = round_to(dtype, 1 / round_to(dtype, y * y))
            return (g / y > top) | (inv > top) | (inv == 0) | (g * x * inv > top)
        q = round_to(dtype, round_to(dtype, x / y) / y)
        return (g / y > top) | (q > top) | (g * q > top)


def _cosine_of_vanishing_norms(*pairs, product_in_dtype=False):
    """A cosine between two vectors (along the case's ``axis``, the last axis when it has none; within
    ``where`` when given) whose squared norm, or the
    product of the two norms, rounds to 0 in the dtype: the epsilons guarding the division (1e-8 in
    torch, 1e-12 in Keras and optax) are 0 in float16 as well, so the cosine is 0/0.
    ``product_in_dtype``: the loss forms |a|^2 |b|^2 in the dtype before its square root (torch's
    cosine_embedding_loss), which rounds to 0 first."""
    def squared_norm(case, dtype, name):
        sq = round_to(dtype, _f(case, name) ** 2)
        where = case.params.get("where")
        if where is not None:
            sq = np.where(np.broadcast_to(np.asarray(where, bool), sq.shape), sq, 0.0)
        return round_to(dtype, np.sum(sq, axis=case.params.get("axis", -1)))

    def when(case, dtype):
        with np.errstate(under="ignore", over="ignore"):
            for a, b in pairs:
                sa, sb = squared_norm(case, dtype, a), squared_norm(case, dtype, b)
                product = round_to(dtype, sa * sb) if product_in_dtype else round_to(dtype, np.sqrt(sa * sb))
                if np.any(sa == 0) or np.any(sb == 0) or np.any(product == 0):
                    return True
        return False
    return when


def _subnormal_norms(*names, squared=False):
    """A non-zero vector (along the case's ``axis``, the last axis when it has none) whose norm, or
    with ``squared`` its squared norm, is below the dtype's smallest normal number: it is rounded to the
    subnormal grid (steps of 6e-8 in float16), coarsely, and the vector divided by it is off by that
    rounding."""
    def when(case, dtype):
        for k in names:
            sq = np.sum(_f(case, k) ** 2, axis=case.params.get("axis", -1))
            size = sq if squared else np.sqrt(sq)
            if np.any((size > 0) & (size < TINY[dtype])):
                return True
        return False
    return when


def _keras_subnormal_weighted_terms(case, dtype):
    """'mean_with_sample_weight' with every non-zero sample weight below the smallest normal number:
    each loss * weight is a subnormal, rounded coarsely, and the weighted mean is a ratio of them."""
    if case.params.get("reduction") != "mean_with_sample_weight" or "sample_weight" not in case.inputs:
        return False
    w = np.abs(_f(case, "sample_weight"))
    w = w[w > 0]
    return bool(w.size) and float(np.max(w)) < TINY[dtype]


def _jax_sigmoid(x, dtype):
    """sigmoid as jax forms it, 1 / (1 + exp(-x)), each step rounded to ``dtype``."""
    with np.errstate(over="ignore"):
        return round_to(dtype, 1.0 / round_to(dtype, 1.0 + round_to(dtype, np.exp(-x))))


def _keras_probability_saturates(case, dtype):
    """Keras clips probabilities to [eps, 1 - eps], and 1 - 1e-7 is 1 in half precision, so a
    probability that is 0 or 1 in the dtype reaches log(0). From logits, the sigmoid is 1 when
    1 + exp(-x) rounds to 1 (jax computes it in the dtype, x >= 8 in float16, >= 6 in bfloat16) or
    the exact sigmoid rounds to 1 (torch, x >= 9 in float16)."""
    x = _f(case, "y_pred")
    if case.params.get("from_logits"):
        p = np.concatenate([np.ravel(round_to(dtype, sigmoid(x))), np.ravel(_jax_sigmoid(x, dtype))])
    else:
        p = x
    return bool(np.any((p == 0) | (p == 1)))


def _keras_jax_sigmoid_is_0(case, dtype):
    """From logits on jax: sigmoid, formed as 1 / (1 + exp(-x)) in the dtype, is 0 somewhere (exp(-x)
    past the dtype's largest number, or a quotient XLA flushes)."""
    if not case.params.get("from_logits"):
        return False
    return bool(np.any(flushed(_jax_sigmoid(_f(case, "y_pred"), dtype), dtype) == 0))


def _keras_kl_ratio_leaves_range(case, dtype):
    """Keras' KL divergence clips both arguments to [1e-7, 1] and takes log(y_true / y_pred): the
    ratio passes the dtype's largest number (value inf) or its reciprocal does (the log's derivative,
    gradient NaN) when one side sits at the clip bound."""
    eps = _eps(dtype)
    ratio = np.clip(_f(case, "y_true"), eps, 1) / np.clip(_f(case, "y_pred"), eps, 1)
    return bool(np.any((ratio > MAX[dtype]) | (ratio < 1 / MAX[dtype])))


def _keras_overlap_denominator_tiny(case, dtype):
    """Dice divides by sum(y_true) + sum(y_pred) + eps, Tversky by intersection + alpha fp + beta fn +
    eps; below 2^-12 that denominator's square underflows (the quotient's derivative is 0/0) or its
    reciprocal passes float16's largest number (times a zero input: NaN)."""
    t, p = _f(case, "y_true"), _f(case, "y_pred")
    axis = case.params.get("axis")
    if "alpha" in case.params:
        den = (np.sum(t * p, axis=axis) + case.params["alpha"] * np.sum((1 - p) * t, axis=axis)
               + case.params["beta"] * np.sum(p * (1 - t), axis=axis))
    else:
        den = np.sum(t, axis=axis) + np.sum(p, axis=axis)
    den = den + _eps(dtype)
    return bool(np.any(den < 2.0 ** -12) or
                (case.runtime == "keras-jax" and np.any(_quotient_backward_leaves_range(0.0, den, dtype, "jax"))))


def _keras_kl_quotient_backward_leaves_range(case, dtype):
    """The backward of Keras' y_true / y_pred (both clipped to [1e-7, 1]) at a small y_pred."""
    eps = _eps(dtype)
    t, p = np.clip(_f(case, "y_true"), eps, 1), np.clip(_f(case, "y_pred"), eps, 1)
    # the gradient reaching the ratio r is that of y_true log(r): y_true / r = y_pred
    return bool(np.any(_quotient_backward_leaves_range(t, p, dtype, case.runtime, factor=p)))


def _keras_percentage_quotient_backward_leaves_range(case, dtype):
    """The backward of MAPE's 100 (y_true - y_pred) / max(|y_true|, eps) at a small y_true."""
    t = _f(case, "y_true")
    return bool(np.any(_quotient_backward_leaves_range(
        t - _f(case, "y_pred"), np.maximum(np.abs(t), _eps(dtype)), dtype, case.runtime, factor=100.0)))


def _optax_norm_quotient_backward_leaves_range(case, dtype):
    """optax's cosine_similarity divides each vector by its norm sqrt(max(sum(x^2), epsilon))."""
    where = case.params.get("where")
    for name in ("predictions", "targets"):
        x = round_to(dtype, _f(case, name))
        sq = round_to(dtype, x * x)
        if where is not None:
            sq = np.where(np.broadcast_to(np.asarray(where, bool), sq.shape), sq, 0.0)
        floor = round_to(dtype, case.params.get("epsilon", 0.0))
        total = np.sum(sq, axis=case.params.get("axis", -1), keepdims=True)   # the drawn axis, -1 by default
        norm = round_to(dtype, np.sqrt(np.maximum(round_to(dtype, total), floor)))
        if np.any(_quotient_backward_leaves_range(x, norm, dtype, "jax") & (norm > 0)):
            return True
    return False


def _keras_percentage_overflows(case, dtype):
    """MAPE is 100 |y_true - y_pred| / max(|y_true|, eps): past the dtype's largest number when
    y_true is near 0 (then times a zero sample weight: NaN where the exact weighted loss is 0)."""
    t, p = _f(case, "y_true"), _f(case, "y_pred")
    return bool(np.any(100 * np.abs(t - p) / np.maximum(np.abs(t), _eps(dtype)) > MAX[dtype]))


def _keras_poisson_reciprocal_overflows(case, dtype):
    """Poisson is y_pred - y_true log(y_pred + eps); the log's derivative 1 / (y_pred + eps) passes
    the dtype's largest number for y_pred below about 1.5e-5 in float16 (times y_true = 0: NaN)."""
    return bool(np.any(1 / (_f(case, "y_pred") + _eps(dtype)) > MAX[dtype]))


def _keras_weight_sum_reciprocal_overflows(case, dtype):
    """The 'mean_with_sample_weight' reduction divides by the sum of the sample weights; its
    reciprocal in the backward pass passes float16's largest number for sums below 1/65504."""
    if case.params.get("reduction") != "mean_with_sample_weight" or "sample_weight" not in case.inputs:
        return False
    total = float(np.sum(_f(case, "sample_weight")))
    return 0 < total < 1 / MAX[dtype]


def _torch_triplet_cosine_of_vanishing_norms(case, dtype):
    return (case.params.get("distance_function") == "cosine"
            and _cosine_of_vanishing_norms(("anchor", "positive"), ("anchor", "negative"))(case, dtype))


def _torch_probability_at_0_or_1(case, dtype):
    """torch's binary_cross_entropy backward divides by max((1 - x) x, 1e-12), and 1e-12 is 0 in
    float16: at x = 0 or 1 that is a division by 0."""
    x = _f(case, "input")
    return bool(np.any((x == 0) | (x == 1)))


def _torch_logits_bce_element_overflows(case, dtype):
    """binary_cross_entropy_with_logits computes each element's (1 - y) x - l log_sigmoid(x), with
    l = 1 + (pos_weight - 1) y, times weight, in the dtype, and reduces afterwards."""
    x, y = _f(case, "input"), _f(case, "target")
    pos_weight, weight = case.params.get("pos_weight"), case.params.get("weight")
    lw = 1.0 if pos_weight is None else 1 + (np.asarray(pos_weight, dtype=np.float64) - 1) * y
    with np.errstate(over="ignore"):
        term = lw * np.logaddexp(0.0, -x)       # -l log_sigmoid(x)
        loss = ((1 - y) * x + term) * (1.0 if weight is None else np.asarray(weight, dtype=np.float64))
    return bool(np.any(np.abs(term) > MAX[dtype]) or np.any(np.abs(loss) > MAX[dtype]))


def _torch_linear_logits_overflow(case, dtype):
    """linear_cross_entropy forms the logits input @ linear_weight^T (+ linear_bias) in the dtype: a
    product or a logit past float16's 65504 is inf, and log_softmax of it NaN. (Any product of the
    largest input and weight magnitudes past 65504 counts: a slight over-approximation.)"""
    x, w = _f(case, "input"), _f(case, "linear_weight")
    with np.errstate(over="ignore", invalid="ignore"):
        logits = np.tensordot(x, w, axes=([-1], [-1]))
        if "linear_bias" in case.inputs:
            logits = logits + _f(case, "linear_bias")
        products = np.max(np.abs(x), initial=0.0) * np.max(np.abs(w), initial=0.0)
    return bool(products > MAX[dtype] or np.any(np.abs(logits) > MAX[dtype]))


def _torch_poisson_log_of_0(case, dtype):
    """poisson_nll_loss(log_input=False) takes log(input + eps) with eps = 1e-8, which is 0 in
    float16: log(0) at input 0 (times target 0: NaN)."""
    return not case.params.get("log_input", True) and bool(np.any(_f(case, "input") == 0))


def _optax_dice_denominator_tiny(case, dtype):
    """optax dice_loss divides by d = I + alpha (P - I) + beta (T - I) + smooth per class; its
    derivative goes through cotangent / d^2, past float16's 65504 for d below sqrt(1.5 / 65504) =
    0.0048 (losscheck's cotangents are at most 1.5), and the inf terms of d's derivative with respect
    to I (1 - alpha - beta of them) cancel to NaN."""
    p = case.params
    x, t = optax_dice_probabilities(case.inputs["predictions"], case.inputs["targets"],
                                    apply_softmax=p.get("apply_softmax", p.get("apply_sigmoid", False)),
                                    binary="apply_sigmoid" in p)
    axis = case.params.get("axis")
    axis = tuple(range(1, x.ndim - 1)) if axis is None else axis
    i, ps, ts = (np.sum(a, axis=axis) for a in (x * t, x, t))
    a, b = case.params.get("alpha", 0.5), case.params.get("beta", 0.5)
    den = i + a * (ps - i) + b * (ts - i) + case.params.get("smooth", 1.0)
    return bool(np.any(den < np.sqrt(COTANGENT_MAX / MAX[dtype])))


def _generalized_dice_weights(case, dtype):
    """(frequency^2 + 1e-7, the class weights 1 / that) of multiclass_generalized_dice_loss, in the dtype."""
    t = _f(case, "targets")
    den = round_to(dtype, np.sum(t, axis=tuple(range(t.ndim - 1))) ** 2 + GENERALIZED_DICE_EPSILON)
    with np.errstate(divide="ignore"):
        return den, round_to(dtype, 1 / den)


def _optax_class_weight_overflows(case, dtype):
    """multiclass_generalized_dice_loss weighs each class by w = 1 / (frequency^2 + 1e-7): for a class
    (nearly) absent from the targets w is past float16's 65504 (and 1e-7 is subnormal, which XLA on the
    CPU flushes to 0), so the normalised weights are inf / inf."""
    return bool(np.any(_generalized_dice_weights(case, dtype)[1] > MAX[dtype]))


def _optax_class_weight_derivative_leaves_range(case, dtype):
    """The derivatives of the class weights w = 1 / (frequency^2 + 1e-7) and of their normalisation by
    their sum s go through 1 / y^2 of each divisor y, in the dtype."""
    den, weights = _generalized_dice_weights(case, dtype)
    return bool(np.any(_quotient_backward_leaves_range(1.0, den, dtype, "jax"))
                or np.any(_quotient_backward_leaves_range(weights, np.sum(weights), dtype, "jax")))


def _optax_ntxent_term_flushed(case, dtype):
    """ntxent takes, per row i, log(exp(c_ij - M_i) + sum over negatives k of exp(c_ik - M_i)), c the
    cosines / temperature and M_i the row's largest: a term below float16's smallest normal number
    2^-14 (c more than about 9.7 below M_i) is flushed to 0 by XLA on the CPU."""
    if dtype != "float16":
        return False
    x, lab = _f(case, "embeddings"), np.asarray(case.inputs["labels"])
    # optax's cosine_similarity: x / sqrt(max(|x|^2, eps)), eps = finfo(dtype).eps
    u = x / np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), EPS[dtype]))
    c = (u @ u.T) / case.params["temperature"]
    for i in range(len(lab)):
        others = np.arange(len(lab)) != i
        if others.any() and np.any(np.exp(c[i, others] - c[i, others].max()) < TINY[dtype]):
            return True
    return False


def _optax_rows_off_the_simplex(case, dtype):
    """apply_softmax=False rows whose rounded probabilities do not sum to 1 within optax's rtol 1e-5."""
    if case.params.get("apply_softmax", True):
        return False
    return not np.allclose(np.sum(_f(case, "predictions"), axis=-1), 1.0, rtol=1e-5)


def _torch_gaussian_quotient_overflows(case, dtype):
    """gaussian_nll_loss computes (input - target)^2 / max(var, eps) and, backward, 1 / max(var, eps):
    past float16's 65504 for a small variance (eps = 1e-6 is the floor)."""
    d2 = (_f(case, "input") - _f(case, "target")) ** 2
    v = np.maximum(_f(case, "var"), case.params.get("eps", 1e-6))
    if v.ndim == d2.ndim - 1:   # torch unsqueezes a var with one dimension fewer (one variance per row)
        v = v[..., None]
    return bool(np.any((1 / v > MAX[dtype]) | (d2 / v > MAX[dtype])))


def _keras_y_true_below_epsilon(case, dtype):
    return bool(np.any(np.abs(_f(case, "y_true")) < _eps(dtype)))


def _keras_ctc_penalty_overflows(case, dtype):
    """Where no alignment exists Keras-jax's CTC costs about 1e5 per missing transition (optax's
    log_epsilon): a per-sample loss past the dtype's largest number is inf once cast to floatx."""
    per_sample = keras_ctc(_f(case, "y_true").astype(np.int64), _f(case, "y_pred"),
                           **KERAS_LATTICE[case.runtime]).value
    return bool(np.any(np.asarray(per_sample) > MAX[dtype]))


def _keras_circle_loss_rounds_to_0(case, dtype):
    """A per-sample Circle loss, positive, below float16's smallest subnormal number under a reduction
    that averages: Keras masks the losses with "loss > 0", so the sample leaves the mean."""
    p = case.params
    if p.get("reduction") not in ("mean", "sum_over_batch_size", "mean_with_sample_weight"):
        return False
    per_sample = np.asarray(circle(_f(case, "y_true"), _f(case, "y_pred"), gamma=p["gamma"], margin=p["margin"],
                                   remove_diagonal=p["remove_diagonal"]).value)
    return bool(np.any((per_sample > 0) & (round_to(dtype, per_sample) == 0)))


def _keras_list_alpha_leaves_float16(case, dtype):
    """A list alpha with a nonzero element outside float16's normal range (6.1e-5 to 65504)."""
    a = case.params.get("alpha")
    if not isinstance(a, (list, tuple)):
        return False
    a = np.abs(np.asarray(a, dtype=np.float64))
    a = a[a != 0]
    return bool(np.any((a < TINY["float16"]) | (a > MAX["float16"])))


def _uses_sparsemax(case, dtype):
    return case.params.get("max_fun", "sparsemax") == "sparsemax"


# ---- the table ---------------------------------------------------------------------------------

def _recorded(reason, link, when, *, code="D004", dtypes=HALF, prop=None, runtimes=(None,)):
    """The expectation for each of ``dtypes`` (and ``runtimes``: None is every runtime of the spec)."""
    return tuple(Expected(reason, link, property=prop, dtype=d, runtime=rt, code=code, when=when)
                 for d in dtypes for rt in runtimes)


_KERAS_COSINE = _recorded(
    "cosine similarity of a zero vector: l2_normalize's epsilon 1e-12 is 0 in float16, so the "
    "normalisation is 0/0 (Keras' value is NaN on every backend; jax and torch are NaN there in float32 "
    "too, for the gradient)", KERAS_SRC, _cosine_of_vanishing_norms(("y_true", "y_pred")),
    dtypes=("float16",))
_KERAS_COSINE_SUBNORMAL = _recorded(
    "l2_normalize divides by sqrt(sum(x^2)); where that sum is below float16's smallest normal (6.1e-5) it "
    "is rounded to the subnormal grid (steps of 6e-8), so the normalised vector, and with it the value and "
    "gradient, are off by up to half a step. Measured (keras-jax, half run seed 11): y_true [2.0e-4, 2.0e-4] "
    "(squares 4.06e-8, each rounded to 5.96e-8), y_pred [-1, 1]: d/dy_pred 0.8255x the oracle's, the ratio "
    "sqrt(8.13e-8 / 1.19e-7)", KERAS_SRC, _subnormal_norms("y_true", "y_pred", squared=True), code=None,
    dtypes=("float16",))
_KERAS_SUBNORMAL_WEIGHTS = _recorded(
    "the 'mean_with_sample_weight' reduction is sum(loss * w) / sum(w); with every weight below float16's "
    "smallest normal (6.1e-5) each loss * w is a subnormal rounded to steps of 6e-8, so the ratio is off "
    "by up to half a step of the numerator. Measured (keras-tensorflow, half run seed 11): "
    "CategoricalCrossentropy of y_true [[1, 0]], y_pred [[0.5, 0.5]], sample_weight [5.96e-8]: 1.0 "
    "(0.693 * 5.96e-8 = 4.1e-8 rounds to 5.96e-8), exact log 2 = 0.693",
    "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py", _keras_subnormal_weighted_terms,
    code=None, dtypes=("float16",))
_KERAS_BINARY = _recorded(
    "Keras clips probabilities to [1e-7, 1 - 1e-7]; in float16 and bfloat16 the upper bound rounds to "
    "1, so a probability of 1 (given, or a sigmoid that rounds to 1) reaches log(0)",
    KERAS_SRC, _keras_probability_saturates)
_KERAS_JAX_FOCAL_SIGMOID = _recorded(
    "jax forms sigmoid as 1 / (1 + exp(-x)) in the dtype, so below x = -11.1 in float16 (exp(-x) past "
    "65504) and about -88 in bfloat16 (a quotient XLA flushes) it is 0; Keras' binary focal CE takes that "
    "sigmoid and clips it at 1e-7 (1.19e-7 in float16), so the loss at y_true 1 is 15.945 instead of about "
    "-x. Measured on keras-jax, float16: binary_focal_crossentropy(y_true=[1], y_pred=[-12], gamma=0, "
    "from_logits=True) is 15.945 (exact 12.000006), d/dy_pred NaN (the D004 above); at -11, 11.0 and -1 "
    "(half run seed 3)", KERAS_SRC, _keras_jax_sigmoid_is_0, code=None, prop="value", runtimes=("keras-jax",))
_KERAS_KL = _recorded(
    "Keras' KL divergence takes log(clip(y_true) / clip(y_pred)) with clip bound 1e-7: the ratio or "
    "its reciprocal passes float16's 65504 where one side is at the bound",
    KERAS_SRC, _keras_kl_ratio_leaves_range, dtypes=("float16",))
_KERAS_OVERLAP = _recorded(
    "Dice and Tversky divide by a sum of the inputs plus epsilon (1e-7): on near-empty inputs the "
    "gradient's 1/denominator or denominator^2 leaves float16's range (NaN at all-zero inputs, where "
    "the exact gradient is finite); on keras-jax from a denominator below 1/256, where the backward's "
    "1 / (d * d) is inf (measured: y_true [0], y_pred [0.0039]: NaN on keras-jax, -2 on keras-torch and "
    "keras-tensorflow, the exact d/dy_true)", KERAS_SRC, _keras_overlap_denominator_tiny,
    dtypes=("float16",), prop="gradient")
_KERAS_KL_BACKWARD = _recorded(
    "the backward of Keras' y_true / y_pred forms y_true / y_pred^2, as (y_true / y_pred) / y_pred on torch "
    "and TensorFlow (inf past 65504) and through 1 / (y_pred * y_pred) on jax (inf for y_pred below 1/256): "
    "d/dy_pred is -inf where the exact -y_true / y_pred is representable (measured: y_true [0.5, 0.5], "
    "y_pred [0.003, 0.997]: -inf on keras-jax, -166.6 on torch and TensorFlow; y_pred [0.001, 0.999]: -inf "
    "on all three, exactly -500)", KERAS_SRC, _keras_kl_quotient_backward_leaves_range,
    dtypes=("float16",), prop="gradient")
_KERAS_MAPE_BACKWARD = _recorded(
    "the backward of MAPE's 100 (y_true - y_pred) / max(|y_true|, 1e-7) forms 100 / y_true and "
    "100 |y_true - y_pred| / y_true^2, past 65504 for |y_true| below about 0.002 (on jax through "
    "1 / (y_true * y_true), inf below 1/256), where their difference, the exact d/dy_true, is representable "
    "(measured: y_true 0.003, y_pred 0: -inf on keras-jax, 32 on torch and TensorFlow, exactly 0; y_true "
    "0.0003: NaN on all three)", KERAS_SRC, _keras_percentage_quotient_backward_leaves_range,
    dtypes=("float16",), prop="gradient")
_KERAS_MAPE = _recorded(
    "MAPE's 100 |y_true - y_pred| / max(|y_true|, 1e-7) passes float16's 65504 near y_true = 0; a zero "
    "sample weight then gives 0 * inf = NaN", KERAS_SRC, _keras_percentage_overflows,
    dtypes=("float16",))
_KERAS_POISSON = _recorded(
    "Poisson's log(y_pred + 1e-7) has the derivative 1 / (y_pred + 1e-7), past float16's 65504 for "
    "y_pred below 1.5e-5; times y_true = 0 it is NaN", KERAS_SRC, _keras_poisson_reciprocal_overflows,
    dtypes=("float16",), prop="gradient") + _recorded(
    "on jax and torch, float16's y_true / (y_pred + 1e-7) is evaluated with the epsilon unrounded "
    "(1e-7 instead of float16's 1.19e-7): for y_pred below 1.5e-5 the gradient is that of the other "
    "epsilon (measured: 0.84x the oracle's at y_true 2^-8, y_pred 0, the ratio 1e-7 / 1.19e-7)",
    KERAS_SRC, _keras_poisson_reciprocal_overflows, code=None, dtypes=("float16",), prop="gradient",
    runtimes=("keras-jax", "keras-torch"))
_KERAS_WEIGHT_SUM = _recorded(
    "the 'mean_with_sample_weight' reduction divides by the sum of the sample weights; for sums below "
    "1/65504 its backward's reciprocal is inf in float16 (times a zero difference: NaN)",
    "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py",
    _keras_weight_sum_reciprocal_overflows, dtypes=("float16",), prop="gradient")
_OPTAX_COSINE = _recorded(
    "cosine of a zero vector: the epsilon guarding the norms (1e-12 drawn here, 0 by default) is 0 in "
    "float16, so the cosine is 0/0", OPTAX_SRC + "/_regression.py",
    _cosine_of_vanishing_norms(("predictions", "targets")), dtypes=("float16",))
_OPTAX_COSINE_BACKWARD = _recorded(
    "cosine_similarity divides each vector by its norm; jax's backward of that division goes through "
    "1 / (norm * norm) in float16: inf for a norm below 1/256, 0 (a dropped term) above 256, where the "
    "exact gradient is representable (measured: predictions [0.003, 0], targets [1, 1]: NaN, float32 "
    "[2.4e-5, 235.7])", OPTAX_SRC + "/_regression.py", _optax_norm_quotient_backward_leaves_range,
    dtypes=("float16",), prop="gradient")
_TORCH_COSINE_EMBEDDING = _recorded(
    "cosine_embedding_loss adds EPSILON = 1e-12 to each squared norm, and 1e-12 is 0 in float16: a zero "
    "vector gives 0/0, and so does the product of the two squared norms where it rounds to 0 (measured: "
    "input1 [[0.015625]], input2 [[0.0078125]], target -1, margin 0: inf in float16, 1 in float32; half "
    "run seed 9)", TORCH_LOSS_SRC, _cosine_of_vanishing_norms(("input1", "input2"), product_in_dtype=True),
    dtypes=("float16",)) + _recorded(
    "cosine_embedding_loss adds EPSILON = 1e-12 to each squared norm, and 1e-12 is 0 in float16: where a "
    "squared norm underflows but the dot product does not, the cosine is +-inf, and for target -1 "
    "clamp_min(cos - margin, 0) turns -inf into 0, the loss of the exact cosine -1 rather than that of the "
    "documented one with EPSILON (measured: input1 [[1]], input2 [[-1.19e-7]], margin -1: 0, documented "
    "0.88)", TORCH_LOSS_SRC, _cosine_of_vanishing_norms(("input1", "input2")), code="V005",
    dtypes=("float16",), prop="value")
_TORCH_TRIPLET_COSINE = _recorded(
    "the cosine distance's eps (1e-8) is 0 in float16: a zero vector gives 0/0", TORCH_LOSS_SRC,
    _torch_triplet_cosine_of_vanishing_norms, dtypes=("float16",)) + sum((_recorded(
    "the cosine distance's eps (1e-8) is 0 in float16: a zero vector gives a NaN distance, and the "
    "margin's clamp_min passes no gradient to the other pair, so that row's gradient is exactly 0: G003 "
    "when it is the only row (measured: anchor [[0.03125, 0.03125]], positive [[0, 0]], negative [[0, 1]], "
    "margin 1: loss NaN, d/dnegative [0, 0]; float32 [0.707, 0]), G001 beside other rows (anchor "
    "[[0.03125, 0.03125]] twice, positive [[1, 0], [0, 0]], negative [[1, 0], [1, 0]]: d/dnegative "
    "[[0, 0.354], [0, 0]]; float32 [[0, 0.354], [0, 0.354]])", TORCH_LOSS_SRC,
    _torch_triplet_cosine_of_vanishing_norms, code=code, dtypes=("float16",), prop="gradient")
    for code in ("G003", "G001")), ()) + _recorded(
    "cosine_similarity divides each vector by its norm; a norm below float16's smallest normal (6.1e-5) is "
    "rounded to the subnormal grid (steps of 6e-8), so the normalised vectors are off by up to half a step "
    "and the cosine can leave [-1, 1]. Measured (half run seed 11): anchor = positive = [[-5.96e-8, "
    "-5.96e-8]] (norm 8.4e-8, rounded to 5.96e-8), negative [[-1, -1]], margin 1: cos(anchor, positive) 2.0, "
    "cos(anchor, negative) 1.414, loss 0.414; float32 1.0, the exact value", TORCH_LOSS_SRC,
    lambda case, dtype: (case.params.get("distance_function") == "cosine"
                         and _subnormal_norms("anchor", "positive", "negative")(case, dtype)),
    code=None, dtypes=("float16",))
_TORCH_BCE = _recorded(
    "binary_cross_entropy's backward divides by max((1 - x) x, 1e-12), and 1e-12 is 0 in float16",
    TORCH_LOSS_SRC, _torch_probability_at_0_or_1, dtypes=("float16",), prop="gradient")
_TORCH_LOGITS_BCE = _recorded(
    "binary_cross_entropy_with_logits computes each element's loss, pos_weight and weight applied, in "
    "float16 before reducing: an element past 65504 is inf (times a zero weight, NaN) where the mean is "
    "representable (measured: input [[-8192, -8192]], target 1, weight [[4, 0]], pos_weight 2: elements "
    "[inf, 0], mean inf, exactly 32768; pos_weight 8, weight [[1, 0]]: NaN)", TORCH_LOSS_SRC,
    _torch_logits_bce_element_overflows, dtypes=("float16",), prop="value")
_TORCH_LINEAR_CE = _recorded(
    "linear_cross_entropy forms the logits in float16 (chunked or not): past 65504 they are inf and the loss "
    "NaN where it is finite (measured: input [[-1e4, -1e4]], linear_weight all -1e4, target 0: logits 2e8, "
    "loss NaN, exactly log 2 = 0.6931)", "https://github.com/pytorch/pytorch/blob/main/torch/nn/functional.py",
    _torch_linear_logits_overflow, code=None, dtypes=("float16",))
_TORCH_POISSON = _recorded(
    "poisson_nll_loss(log_input=False) adds eps = 1e-8 inside the log, and 1e-8 is 0 in float16: log(0) "
    "at input 0", TORCH_LOSS_SRC, _torch_poisson_log_of_0, dtypes=("float16",))
_KERAS_MAPE_SCALE = _recorded(
    "with y_true below the epsilon MAPE is 100 w |y_pred| / epsilon: the frameworks evaluate it with the "
    "epsilon unrounded (1e-7, not float16's 1.19e-7: measured 0.84x the oracle's gradient at w = 1e-5 on "
    "TensorFlow; on torch a value disagreeing there, V007 at y_pred 1e-5, not isolated), and jax and torch gave 0.59x "
    "gradients at subnormal sample weights (w = 2^-24, 2^-23; their path not isolated)",
    KERAS_SRC, _keras_y_true_below_epsilon, code=None, dtypes=("float16",))
_TORCH_GAUSSIAN = _recorded(
    "gaussian_nll_loss divides by max(var, eps = 1e-6): the quotient (input - target)^2 / var or the "
    "backward's 1 / var passes float16's 65504 for small variances, where the exact loss is representable",
    "https://github.com/pytorch/pytorch/blob/main/torch/nn/functional.py", _torch_gaussian_quotient_overflows,
    dtypes=("float16",))
_OPTAX_SIMPLEX = _recorded(
    "with apply_softmax=False optax requires rows summing to 1 within rtol 1e-5; rounding a distribution to "
    "float16 or bfloat16 breaks that (three 1/3 in bfloat16 sum to 1.002), so it raises ValueError, and "
    "under jax.grad formatting that message fails first (TypeError: unsupported format string passed to "
    "LinearizeTracer.__format__)", OPTAX_SRC + "/_segmentation.py", _optax_rows_off_the_simplex,
    code="X001")
_OPTAX_DICE = _recorded(
    "dice_loss's derivative goes through cotangent / d^2 of each class's denominator d; for d below about "
    "0.0048 (a small `smooth` on a class with little prediction and no target) that is inf in float16 and "
    "the terms of the denominator's derivative cancel to inf - inf = NaN (measured: smooth 0.001 gives "
    "NaN, 0.005 gives 50; binary_dice_loss at logit -5, target 0, smooth 0.001: finite with cotangent 1, "
    "NaN with 1.42)",
    OPTAX_SRC + "/_segmentation.py", _optax_dice_denominator_tiny, dtypes=("float16",), prop="gradient")
_OPTAX_GENERALIZED_DICE = _recorded(
    "the class weights 1 / (frequency^2 + 1e-7) are inf in float16 for a class absent from the targets, "
    "and normalising them divides inf by inf: eagerly the value and gradient are NaN; compiled, XLA "
    "gives a value of 0 and a zero gradient (measured at targets [0]; float32 gives 0.2 and 0.08)",
    OPTAX_SRC + "/_segmentation.py", _optax_class_weight_overflows, code=None, dtypes=("float16",)) + _recorded(
    "the derivatives of the class weights' two divisions (by frequency^2 + 1e-7, and by the weights' sum "
    "s) go through jax's integer_pow(y, -2), 1 / (y * y) in float16: inf for y below 1/256, so d/dtargets "
    "is -inf or NaN for a class frequency below about 1/16 (measured: zero logits, targets [0.0588, "
    "0.2354 x 4]: -inf, float32 0.371), and 0 for y above 256, which drops a term: a frequency of 16 or "
    "more, or s above 256 (measured: targets [0.07, 0.2354 x 4], s = 276: -2.10, float32 0.345; [0.08, "
    "...], s = 228: 0.316 and 0.317)",
    "https://github.com/jax-ml/jax/blob/main/jax/_src/lax/lax.py", _optax_class_weight_derivative_leaves_range,
    code=None, dtypes=("float16",), prop="gradient")
_OPTAX_NTXENT = _recorded(
    "ntxent takes log(exp(shifted match) + sum of exp(shifted negatives)) per row: terms more than about "
    "9.7 (in cosine / temperature) below the row's largest are below float16's smallest normal number and "
    "flushed to 0, so where all of a row's terms are the log is -inf (measured: embeddings [[1], [-1], "
    "[-1]], one label: value -inf and NaN gradient at temperature 0.07 and 0.1, 0 at 0.5 and in bfloat16 "
    "and float32), and where some are the gradient can be NaN (measured: [[0, -1], [1, 1], [1, 1]], "
    "labels [0, 1, 1], temperature 0.07; finite in float32; its path through the compiled backward not "
    "isolated)",
    OPTAX_SRC + "/_self_supervised.py", _optax_ntxent_term_flushed, dtypes=("float16",))
_KERAS_CTC_PENALTY = _recorded(
    "where the labels need more frames than there are, Keras-jax's CTC (optax's lattice, log_epsilon -1e5) "
    "costs about 1e5 per missing transition, computed in float32 and cast to floatx: past float16's 65504 "
    "the per-sample loss is inf, so the weighted loss is inf, or NaN at a zero sample weight, where the exact "
    "weighted loss is representable (measured: y_true [[1, 1, 0, 0]], y_pred zeros (1, 1, 2): 99999.3 in "
    "float32, inf in float16, NaN at sample_weight 0)",
    "https://github.com/keras-team/keras/blob/master/keras/src/backend/jax/nn.py", _keras_ctc_penalty_overflows,
    dtypes=("float16",), runtimes=("keras-jax",))
_KERAS_CIRCLE_MASK = _recorded(
    "circle() marks its per-sample losses with the mask loss > 0 and the class's averaging reductions divide "
    "by the samples left in it; a positive loss below float16's smallest subnormal number (5.96e-8) is 0 "
    "there, so its sample leaves the mean (measured on TensorFlow: y_true [0, 1], y_pred [[0], [0.955]], "
    "gamma 91, margin 0.4, remove_diagonal False, sample_weight [2.09, 0.49]: per-sample losses [61.85, "
    "4.6e-13] in float32, [61.88, 0] in float16; the 'mean' is 129.25 in float16, 64.57 in float32 and "
    "exactly)", KERAS_SRC, _keras_circle_loss_rounds_to_0, code=None, dtypes=("float16",))
_OPTAX_SPARSEMAX = _recorded(
    "sparsemax's custom JVP rule returns a tangent in the input's half dtype for a primal computed in "
    "float32 (float64 with x64): jax raises 'Custom JVP rule must produce primal and tangent outputs with "
    "corresponding shapes and dtypes'. Verified with and without jax_enable_x64",
    OPTAX_SRC + "/_fenchel_young.py", _uses_sparsemax, code="X001", prop="gradient")

_KERAS_TORCH_LIST_ALPHA = _recorded(
    "with floatx 'bfloat16', Keras resolves a weak (Python) float to float16: result_type takes the precision "
    "from floatx()[-2:], '16' (keras/src/backend/common/dtypes.py), and the torch backend's convert_to_tensor "
    "of a list uses it, so a list alpha becomes a float16 tensor, where an element below 6.1e-5 loses "
    "precision or is 0 and one past 65504 is inf (jax and TensorFlow convert the list to float32). Measured: "
    "keras.ops.convert_to_tensor([0.0, 1e-28]) under floatx 'bfloat16' is float16 [0, 0] on torch; "
    "categorical_focal_crossentropy(y_true=[1, 0], y_pred=[0.5, 0.5], gamma=0, alpha=[0, 1.0e-28]) has "
    "d/dy_true [0, 0] where the exact one is [0, 7.0e-29] (half run seed 5, bfloat16, G003)",
    "https://github.com/keras-team/keras/issues/23712", _keras_list_alpha_leaves_float16, code=None,
    dtypes=("bfloat16",), runtimes=("keras-torch",))

TABLE: dict[str, tuple[Expected, ...]] = {
    **{f"keras.losses.{n}": _KERAS_COSINE + _KERAS_COSINE_SUBNORMAL for n in ("CosineSimilarity",
                                                                               "cosine_similarity")},
    **{f"keras.losses.{n}": _KERAS_BINARY for n in ("BinaryCrossentropy", "binary_crossentropy")},
    **{f"keras.losses.{n}": _KERAS_BINARY + _KERAS_JAX_FOCAL_SIGMOID for n in ("BinaryFocalCrossentropy",
                                                                               "binary_focal_crossentropy")},
    **{f"keras.losses.{n}": _KERAS_KL + _KERAS_KL_BACKWARD for n in ("KLDivergence", "kl_divergence")},
    **{f"keras.losses.{n}": _KERAS_OVERLAP for n in ("Dice", "dice", "Tversky", "tversky")},
    **{f"keras.losses.{n}": _KERAS_MAPE + _KERAS_MAPE_SCALE + _KERAS_MAPE_BACKWARD
       for n in ("MeanAbsolutePercentageError", "mean_absolute_percentage_error")},
    **{f"keras.losses.{n}": _KERAS_POISSON for n in ("Poisson", "poisson")},
    **{f"optax.losses.{n}": _OPTAX_COSINE + _OPTAX_COSINE_BACKWARD for n in ("cosine_similarity", "cosine_distance")},
    **{f"torch.nn.{n}": _TORCH_COSINE_EMBEDDING for n in ("CosineEmbeddingLoss", "functional.cosine_embedding_loss")},
    **{f"torch.nn.{n}": _TORCH_TRIPLET_COSINE for n in ("TripletMarginWithDistanceLoss",
                                                         "functional.triplet_margin_with_distance_loss")},
    **{f"torch.nn.{n}": _TORCH_BCE for n in ("BCELoss", "functional.binary_cross_entropy")},
    **{f"torch.nn.{n}": _TORCH_LOGITS_BCE for n in ("BCEWithLogitsLoss", "functional.binary_cross_entropy_with_logits")},
    **{f"torch.nn.{n}": _TORCH_POISSON for n in ("PoissonNLLLoss", "functional.poisson_nll_loss")},
    **{f"torch.nn.{n}": _TORCH_LINEAR_CE for n in ("LinearCrossEntropyLoss", "functional.linear_cross_entropy")},
    "optax.losses.dice_loss": _OPTAX_DICE + _OPTAX_SIMPLEX,
    "optax.losses.binary_dice_loss": _OPTAX_DICE,
    "optax.losses.multiclass_generalized_dice_loss": _OPTAX_GENERALIZED_DICE + _OPTAX_DICE + _OPTAX_SIMPLEX,
    **{f"torch.nn.{n}": _TORCH_GAUSSIAN for n in ("GaussianNLLLoss", "functional.gaussian_nll_loss")},
    "optax.losses.ntxent": _OPTAX_NTXENT,
    "keras.losses.CTC": _KERAS_CTC_PENALTY,
    "keras.losses.Circle": _KERAS_CIRCLE_MASK,
    **{f"keras.losses.{n}": _KERAS_TORCH_LIST_ALPHA for n in ("CategoricalFocalCrossentropy",
                                                             "categorical_focal_crossentropy")},
    **{f"optax.losses.{n}": _OPTAX_SPARSEMAX for n in ("multiclass_sparsemax_loss", "make_fenchel_young_loss")},
}


def with_half_expectations(spec):
    """``spec`` with its half-precision expectations appended (Keras losses taking sample weights also
    get the sample-weight reduction's)."""
    extra = TABLE.get(spec.id, ())
    if spec.framework == "keras" and any(a.name == "sample_weight" for a in spec.args):
        extra = extra + _KERAS_WEIGHT_SUM + _KERAS_SUBNORMAL_WEIGHTS
    return replace(spec, expected=tuple(spec.expected) + extra) if extra else spec
