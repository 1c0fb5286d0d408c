"""Input generators shared by catalog modules: ``fn(data, params) -> {arg name: array}``."""
from __future__ import annotations

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
