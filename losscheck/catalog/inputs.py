"""Input generators shared by catalog modules: ``fn(data, params) -> {arg name: array}``."""
from __future__ import annotations

from hypothesis import strategies as st

from .. import strategies as S

DOMAINS = {
    "real": lambda data, shp, label: S.reals(data, shp, label),
    "positive": lambda data, shp, label: S.positives(data, shp, label),
    "nonnegative": lambda data, shp, label: S.reals(data, shp, label, 0.0, 8.0),
    "count": lambda data, shp, label: S.reals(data, shp, label, 0.0, 10.0),
    "unit": lambda data, shp, label: S.probabilities(data, shp, label),
    "binary": lambda data, shp, label: S.binary_labels(data, shp, label),
    "sign": lambda data, shp, label: S.sign_labels(data, shp, label),
    "log_pos": lambda data, shp, label: S.reals(data, shp, label, -0.99, 8.0),
}


def pair(first: str, second: str, first_domain: str = "real", second_domain: str = "real",
         min_dims: int = 1, max_dims: int = 3):
    """Two same-shape arrays named ``first`` and ``second``."""
    def inputs(data, params):
        shp = S.shape(data, min_dims=min_dims, max_dims=max_dims)
        return {first: DOMAINS[first_domain](data, shp, first), second: DOMAINS[second_domain](data, shp, second)}
    return inputs


#: A vector ``axis`` as optax's cosine losses and Keras' ``CosineSimilarity``/``cosine_similarity`` take
#: it (an int, a tuple of ints or None; -1 by default): an int (-1 first: examples shrink to the
#: documented default, written out), left out (the default), a tuple, None (the whole array one
#: vector), () (no axis: every element its own one-element vector). Hypothesis draws the first option
#: about half of the time; measured over 300 draws: int 50 % (-1 in half of them), left out 17 %,
#: tuple 15 %, () 10 %, None 8 %
COSINE_AXIS_FORMS = ("int", "default", "tuple", "none", "empty", "tuple", "default")


def cosine_axis(data, ndim: int) -> dict:
    """{"axis": a drawn axis} for an input of rank ``ndim``, {} for the default: any int in
    [-ndim, ndim), or a tuple of distinct axes in any order, each written positive or negative (one
    axis: the one-element tuple; all: the vectors of None)."""
    form = S.choice(data, COSINE_AXIS_FORMS, "axis_form")
    if form == "default":
        return {}
    if form in ("none", "empty"):
        return {"axis": None if form == "none" else ()}
    if form == "int":
        return {"axis": S.choice(data, tuple(range(-1, -ndim - 1, -1)) + tuple(range(ndim)), "axis")}
    axes = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True), label="axes")
    negative = data.draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)), label="axes_negative")
    return {"axis": tuple(a - ndim if neg else a for a, neg in zip(axes, negative))}
