"""optax.losses functions (no reduction: one value per element or per sample)."""
from __future__ import annotations

import math

from hypothesis import strategies as st

from ..reference import regression as R
from .build import optax_spec
from .inputs import pair
from .spec import Arg, Expected
from .when import squared_norm_underflows
from .. import strategies as S

PT = (Arg("predictions"), Arg("targets"))
P_T = pair("predictions", "targets")


def _ref(fn, **fixed):
    return lambda c: fn(c.inputs["predictions"], c.inputs["targets"], **fixed,
                        **{k: v for k, v in c.params.items()})


def _cosine_inputs(data, params):
    shp = S.shape(data, min_dims=1, max_dims=3)
    out = {"predictions": S.reals(data, shp, "predictions"), "targets": S.reals(data, shp, "targets")}
    if S.flag(data, "use_where"):
        out["__params__"] = {"where": S.mask(data, shp[-1:], "where")}
    return out


def _cosine_ref(fn):
    def oracle(c):
        eps = c.params.get("epsilon", 0.0)
        return fn(c.inputs["predictions"], c.inputs["targets"], norm_floor=math.sqrt(eps),
                  where=c.params.get("where"))
    return oracle


UNDERFLOW_NAN = tuple(
    Expected("with epsilon=0 (the default) the norm is sqrt(sum(x^2)): a zero vector, or one whose squares "
             "underflow, gives 0/0 = NaN in the value and the gradient although the cosine of a nonzero vector "
             "is defined; pass epsilon > 0",
             "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.cosine_similarity",
             property=prop, code=code,
             when=lambda c, dtype: c.params.get("epsilon", 0.0) == 0.0
             and squared_norm_underflows("predictions", "targets")(c, dtype))
    for prop, code in (("value", "N001"), ("gradient", "N003")))

SPECS = [
    optax_spec("squared_error", args=PT, space={}, inputs=P_T, oracle=_ref(R.squared_error),
               family="regression", reference="regression.squared_error"),
    optax_spec("l2_loss", args=PT, space={}, inputs=P_T, oracle=_ref(R.squared_error, half=True),
               family="regression", reference="regression.squared_error(half=True)"),
    optax_spec("huber_loss", args=PT, space={"delta": st.floats(0.05, 4.0)}, inputs=P_T, oracle=_ref(R.huber),
               family="regression", reference="regression.huber"),
    optax_spec("log_cosh", args=PT, space={}, inputs=P_T, oracle=_ref(R.log_cosh),
               family="regression", reference="regression.log_cosh"),
    optax_spec("cosine_similarity", args=PT, space={"epsilon": [0.0, 1e-12, 1e-6]}, inputs=_cosine_inputs,
               oracle=_cosine_ref(R.cosine_similarity), expected=UNDERFLOW_NAN, family="regression",
               reference="regression.cosine_similarity"),
    optax_spec("cosine_distance", args=PT, space={"epsilon": [0.0, 1e-12, 1e-6]}, inputs=_cosine_inputs,
               oracle=_cosine_ref(R.cosine_distance), expected=UNDERFLOW_NAN, family="regression",
               reference="regression.cosine_distance"),
]
