"""optax.losses functions (no reduction: one value per element or per sample)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import strategies as st

from ..reference import regression as R
from ..reference._core import rel_gap
from . import layouts
from .build import optax_spec
from .inputs import COSINE_AXIS_FORMS, cosine_axis, pair  # noqa: F401 (COSINE_AXIS_FORMS: re-exported)
from ..tolerance import kink_rtol, round_to
from .spec import Arg, Expected
from .when import any_flushed, flushed, squared_norm_underflows
from .. import strategies as S

PT = (Arg("predictions"), Arg("targets"))
P_T = pair("predictions", "targets")


def _ref(fn, **fixed):
    return lambda c: fn(c.inputs["predictions"], c.inputs["targets"], **fixed,
                        **{k: v for k, v in c.params.items()})


def _cosine_inputs(data, params):
    """Inputs of rank 1 to 3, the axis drawn for their rank, and ``where`` (broadcast from the last
    axis, or of the full shape) in half of the cases."""
    shp = S.shape(data, min_dims=1, max_dims=3)
    out = {"predictions": S.reals(data, shp, "predictions"), "targets": S.reals(data, shp, "targets")}
    extra = cosine_axis(data, len(shp))   # optax's axis: an int, a tuple of ints or None; -1 by default
    if S.flag(data, "use_where"):
        extra["where"] = S.mask(data, shp if S.flag(data, "where_full_shape") else shp[-1:], "where")
    if extra:
        out["__params__"] = extra
    return out


def _cosine_ref(fn):
    def oracle(c):
        eps = c.params.get("epsilon", 0.0)
        return fn(c.inputs["predictions"], c.inputs["targets"], norm_floor=math.sqrt(eps),
                  axis=c.params.get("axis", -1), where=c.params.get("where"))
    return oracle


def _squared_norm_flushes(c, dtype) -> bool:
    """squared_norm_underflows, with XLA's flushing: a sum of squares below the smallest normal
    number (x = 4.8e-155 in float64: x^2 is subnormal) is 0 too. The vectors are along the drawn
    ``axis`` (-1 when left out)."""
    where = c.params.get("where")
    with np.errstate(under="ignore"):
        for k in ("predictions", "targets"):
            x = flushed(np.asarray(c.inputs[k]), dtype)
            sq = flushed(np.square(x), dtype)
            if where is not None:
                sq = np.where(np.broadcast_to(np.asarray(where, bool), sq.shape), sq, 0.0)
            if np.any(flushed(np.sum(sq, axis=c.params.get("axis", -1)), dtype) == 0):
                return True
    return squared_norm_underflows("predictions", "targets")(c, dtype)


UNDERFLOW_NAN = tuple(
    Expected("with epsilon=0 (the default) the norm is sqrt(sum(x^2)): a zero vector, or one whose squares "
             "underflow (XLA flushes subnormal results to zero: [4.8e-155] has norm 0 in float64), gives 0/0 = NaN "
             "or x/0 = inf in the value and the gradient although the cosine of a nonzero vector is defined; "
             "pass epsilon > 0",
             "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.cosine_similarity",
             property=prop, code=code,
             when=lambda c, dtype: c.params.get("epsilon", 0.0) == 0.0 and _squared_norm_flushes(c, dtype))
    for prop, code in (("value", "N001"), ("gradient", "N003")))

SUBNORMAL_INPUT = Expected(
    "XLA on CPU flushes subnormal inputs to zero (float32 1.28e-39 * 1e6 gives 0): the gradient "
    "t / max(|t|, sqrt(epsilon))^2 of a subnormal t, a normal number (1.28e-33 with epsilon=1e-6), comes out 0",
    "https://github.com/jax-ml/jax/issues/16200", property="gradient", runtime="jax",
    when=lambda c, dtype: any_flushed(c.inputs.values(), dtype))

HUBER_CANCELLATION = Expected(
    "optax writes huber_loss as 0.5 q^2 + delta (|e| - q) with q = min(|e|, delta); autodiff gives "
    "d/de = (q - delta + delta) sign(e) (jax.make_jaxpr of the gradient), so the quadratic region's gradient "
    "carries a rounding error of about eps * delta: 138 float64 eps of the gradient at e = -0.0039, delta = 2 "
    "(optax -0.005549748017203093, exact -0.005549748017202923); relative accuracy is lost as |e| / delta -> 0",
    "https://github.com/google-deepmind/optax/blob/main/optax/losses/_regression.py",
    property="gradient", when=lambda c, dtype: _huber_compared_inside(c, dtype))


def _huber_compared_inside(case, dtype) -> bool:
    """Every |e| the gradient check compares is well inside delta: the normwise error is then about
    delta / max|e| gradient-eps. Elements in the kink window of |e| = delta are not compared."""
    e = np.abs(np.asarray(case.inputs["predictions"]) - np.asarray(case.inputs["targets"]))
    compared = rel_gap(e, case.params["delta"]) > kink_rtol(dtype)
    return bool(np.all(e[compared] < case.params["delta"] / 4))


def _huber_gradient_cancels(case, dtype) -> bool:
    """Some error e != 0 inside delta whose gradient (|e| - delta + delta) sign(e) rounds to exactly 0 in
    the tested dtype (|e| below about eps * delta / 2)."""
    p, t = (round_to(dtype, case.inputs[k]) for k in ("predictions", "targets"))
    e = round_to(dtype, p - t)
    delta = float(round_to(dtype, case.params["delta"]))
    q = np.minimum(np.abs(e), delta)
    return bool(np.any((e != 0) & (round_to(dtype, round_to(dtype, q - delta) + delta) == 0)))


HUBER_GRADIENT_ZERO = Expected(
    "the same cancellation taken to its end: where |e| is below about eps * delta / 2, q - delta + delta is "
    "exactly 0 and so is the gradient, whatever the error. Measured in the soak (seed 16, float64, jit and "
    "eager alike): huber_loss(predictions=[3.03e-140, 3.03e-140], targets=[0., 1.], delta=1.) has d/dpredictions "
    "[0., -1.] for a summed loss; the derivative is [3.03e-140, -1.]",
    "https://github.com/google-deepmind/optax/blob/main/optax/losses/_regression.py",
    property="gradient", code="G003", when=_huber_gradient_cancels)

def _cosine_spec(name, **kw):
    """optax_spec, its parameter listing naming the axis drawn with the inputs."""
    spec = optax_spec(name, **kw)
    return dataclasses.replace(spec, params_doc=spec.params_doc + ", axis=<int|omitted|tuple|None|()>")


_COSINE_NOTES = ("axis is drawn with the inputs (their rank bounds it): left out (-1), an int, a tuple of axes "
                 "(any order, either sign), None or (); where= broadcasts from the last axis or has the full shape")

SPECS = [
    optax_spec("squared_error", args=PT, space={}, inputs=P_T, oracle=_ref(R.squared_error),
               lower_bound=0.0, family="regression", reference="regression.squared_error"),
    optax_spec("l2_loss", args=PT, space={}, inputs=P_T, oracle=_ref(R.squared_error, half=True),
               lower_bound=0.0, family="regression", reference="regression.squared_error(half=True)"),
    # the exact-zero record first: it names the code, the cancellation record covers any
    optax_spec("huber_loss", args=PT, space={"delta": st.floats(0.05, 4.0)}, inputs=P_T, oracle=_ref(R.huber),
               expected=(HUBER_GRADIENT_ZERO, HUBER_CANCELLATION), lower_bound=0.0, family="regression",
               reference="regression.huber"),
    optax_spec("log_cosh", args=PT, space={}, inputs=P_T, oracle=_ref(R.log_cosh),
               lower_bound=0.0, family="regression", reference="regression.log_cosh"),
    _cosine_spec("cosine_similarity", args=PT, space={"epsilon": [0.0, 1e-12, 1e-6]}, inputs=_cosine_inputs,
               oracle=_cosine_ref(R.cosine_similarity), expected=(*UNDERFLOW_NAN, SUBNORMAL_INPUT), family="regression",
               reference="regression.cosine_similarity", notes=_COSINE_NOTES),
    _cosine_spec("cosine_distance", args=PT, space={"epsilon": [0.0, 1e-12, 1e-6]}, inputs=_cosine_inputs,
               oracle=_cosine_ref(R.cosine_distance), expected=(*UNDERFLOW_NAN, SUBNORMAL_INPUT), family="regression",
               reference="regression.cosine_distance", notes=_COSINE_NOTES),
]

# ---- classification, divergence and margin losses -------------------------------------------------

from .optax_classification import SPECS as _CLASSIFICATION  # noqa: E402

SPECS += _CLASSIFICATION

# ---- batch layouts: elementwise, or one loss per vector along the drawn axis (cosine) ---------------
# (reduced_axes reads the drawn axis, -1 when left out: the batch is the first axis not reduced; None
# and a tuple of every axis leave no batch; () reduces nothing)

_LAYOUTS = {"cosine_similarity": layouts.reduced_axes(("predictions", "targets")),
            "cosine_distance": layouts.reduced_axes(("predictions", "targets"))}
SPECS = [dataclasses.replace(s, unbatched=True, batch_layout=_LAYOUTS.get(
    s.id.rsplit(".", 1)[1], layouts.reduced_axes(("predictions", "targets"), default=()))) if s.batch_layout is None
    else s for s in SPECS]
