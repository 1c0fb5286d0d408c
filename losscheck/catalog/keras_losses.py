"""keras.losses (Keras 3): each class with its function twin, on every Keras backend."""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

from ..reference import regression as R
from . import layouts
from .build import keras_twins
from .inputs import cosine_axis, pair
from .spec import Deviation, Expected, Precision
from .when import squared_norm_underflows, subnormal_difference

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()
DOCS = "https://keras.io/api/losses/regression_losses/"
YT_YP = pair("y_true", "y_pred")


def _per_sample(fn, **fixed):
    """Oracle for a Keras regression loss: elementwise terms, mean over the last axis, reduction."""
    def oracle(case, reduce_kw):
        kw = {k: case.params[k] for k in ("delta",) if k in case.params}
        return fn(case.inputs["y_pred"], case.inputs["y_true"], axis=-1, **fixed, **kw, **reduce_kw)
    return oracle


#: TensorFlow and XLA on CPU flush subnormal results to zero; MAPE divides the difference by a
#: floor of 1e-7, which lifts a flushed subnormal difference back into the normal range.
SUBNORMAL_DIFFERENCE_FLUSHED = Expected(
    "a float32 difference y_true - y_pred in the subnormal range is flushed to zero on the CPU "
    "(flush-to-zero), then divided by the 1e-7 floor: the framework's 0 against the oracle's ~1e-36",
    "https://github.com/jax-ml/jax/discussions/21932", dtype="float32", property="value",
    when=subnormal_difference("y_true", "y_pred"))


SPECS = [
    *keras_twins("MeanSquaredError", "mean_squared_error", space={}, inputs=YT_YP,
                 oracle=_per_sample(R.squared_error), lower_bound=0.0, family="regression", reference="regression.squared_error"),
    *keras_twins("MeanAbsoluteError", "mean_absolute_error", space={}, inputs=YT_YP,
                 oracle=_per_sample(R.absolute_error), lower_bound=0.0, family="regression", reference="regression.absolute_error"),
    *keras_twins("MeanAbsolutePercentageError", "mean_absolute_percentage_error", space={}, inputs=YT_YP,
                 oracle=_per_sample(R.mape, epsilon=KERAS_EPSILON), exact=_per_sample(R.mape),
                 deviation=Deviation("|y_true| is floored at 1e-7 in the denominator", DOCS),
                 expected=(SUBNORMAL_DIFFERENCE_FLUSHED,),
                 swappable=("y_true", "y_pred"), lower_bound=0.0, family="regression", reference="regression.mape"),
    *keras_twins("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", space={},
                 inputs=pair("y_true", "y_pred", "log_pos", "log_pos"),
                 oracle=_per_sample(R.msle, epsilon=KERAS_EPSILON), exact=_per_sample(R.msle),
                 deviation=Deviation("inputs are clipped below at 1e-7 before log(x + 1)", DOCS),
                 lower_bound=0.0, family="regression", reference="regression.msle"),
    *keras_twins("Huber", "huber", space={"delta": st.floats(0.05, 4.0)}, inputs=YT_YP,
                 oracle=_per_sample(R.huber), lower_bound=0.0, family="regression", reference="regression.huber"),
    *keras_twins("LogCosh", "log_cosh", space={}, inputs=YT_YP, oracle=_per_sample(R.log_cosh),
                 precision=(Precision("float64", "float32",
                                      "log(2) is computed as ops.log(2.0) of a Python float, which the TensorFlow "
                                      "backend evaluates in float32 before casting: a 1.9e-9 error in float64",
                                      "https://github.com/keras-team/keras/blob/master/keras/src/losses/losses.py",
                                      runtimes=("keras-tensorflow",)),),
                 lower_bound=0.0, family="regression", reference="regression.log_cosh"),
    *keras_twins("Poisson", "poisson", space={}, inputs=pair("y_true", "y_pred", "count", "nonnegative"),
                 oracle=_per_sample(R.poisson, epsilon=KERAS_EPSILON), exact=_per_sample(R.poisson),
                 deviation=Deviation("log(y_pred + 1e-7) replaces log(y_pred)", DOCS),
                 swappable=("y_true", "y_pred"), family="regression", reference="regression.poisson"),
]


def _cosine(norm_floor):
    def oracle(case, reduce_kw):
        return R.cosine_similarity(case.inputs["y_pred"], case.inputs["y_true"], axis=case.params.get("axis", -1),
                                   norm_floor=norm_floor, negate=True, **reduce_kw)
    return oracle


def _cosine_inputs(data, params):
    """y_true and y_pred of one shape, rank 1 to 3, and the axis drawn for their rank: Keras passes
    ``axis`` on to ops.sum (in normalize, then the dot product), so it takes what optax's does (an int,
    a tuple of ints in any order and either sign, None, (); checked on all three backends)."""
    out = YT_YP(data, params)
    extra = cosine_axis(data, np.ndim(out["y_true"]))
    if extra:
        out["__params__"] = extra
    return out


ZERO_VECTOR_NAN_GRAD = Expected.on(
    ("keras-jax", "keras-torch"),
    "normalize() computes x * minimum(rsqrt(sum(x^2)), 1/epsilon); where sum(x^2) is 0 (a zero "
    "vector, or one so small that x^2 underflows) rsqrt is inf, and where it is so small that "
    "rsqrt's derivative -s^-1.5/2 overflows, the unused branch of minimum contributes inf * 0 = NaN "
    "to the gradient (the TensorFlow backend's gradient is finite)",
    "https://github.com/keras-team/keras/blob/master/keras/src/ops/nn.py",
    property="gradient", code="N003", when=squared_norm_underflows("y_true", "y_pred", rsqrt_grad=True))

_COSINE_NOTES = ("axis is drawn with the inputs (their rank bounds it): left out (-1), an int, a tuple of axes "
                 "(any order, either sign), None or (); the docstring names one axis, but Keras hands axis to "
                 "ops.sum, which takes them all. The per-sample losses (sample_weight's shape) are the input's "
                 "shape without the reduced axes: axis=0 makes the batch the second input axis; None (or every "
                 "axis) gives one 0-d loss, which Keras' reduction returns as it is: loss * sample_weight, even "
                 "under 'mean_with_sample_weight'")


def _drawn_axis(spec):
    """The spec, its parameter listing naming the axis drawn with the inputs."""
    doc = ", ".join(filter(None, (spec.params_doc, "axis=<int|omitted|tuple|None|()>")))
    return dataclasses.replace(spec, params_doc=doc, notes=_COSINE_NOTES)


SPECS += map(_drawn_axis, keras_twins(
    "CosineSimilarity", "cosine_similarity", space={}, inputs=_cosine_inputs, expected=ZERO_VECTOR_NAN_GRAD,
    oracle=_cosine(KERAS_EPSILON), exact=_cosine(0.0),
    deviation=Deviation("norms are floored at 1e-7: a zero vector gives 0, where the exact cosine is undefined", DOCS),
    # one loss per vector along the drawn axis: the batch is the first input axis not reduced, the
    # first axis of the per-sample losses (sample_weight); None or every axis leaves no batch
    batch_layout=layouts.reduced_axes(("y_true", "y_pred"), ("sample_weight",)),
    family="regression", reference="regression.cosine_similarity"))


# ---- probabilistic and margin losses ---------------------------------------------------------------
# Oracles read ``case.runtime`` and ``case.dtype`` (set by the properties) where Keras' semantics
# depend on them: the clip bounds are 1e-7 and 1 - 1e-7 rounded to the tested dtype, and the order of
# clipping and renormalising (sparse CE) or whether the bce is clipped at all (binary focal CE with
# logits) depends on the backend. An empty runtime (a case outside a check) reads as keras-jax.

from .keras_classification import SPECS as _CLASSIFICATION  # noqa: E402

SPECS += _CLASSIFICATION
