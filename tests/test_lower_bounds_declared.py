"""Every lower bound a spec declares holds for its oracle on the cases its draw makes, in the normal
and the extreme mode: a wrong bound would make the numerics check (N002) fail correct losses."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed

from losscheck import catalog, strategies
from losscheck.tolerance import EPS, VALUE_BOUND

BOUNDED = [s for s in catalog.all_specs() if s.lower_bound is not None]


def _drawn(spec, extreme: bool, examples: int = 60) -> list:
    cases = []

    @hseed(0)
    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.cases(spec.draw))
    def collect(case):
        cases.append(case)

    with strategies.extreme() if extreme else contextlib.nullcontext():
        collect()
    return cases


@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
@pytest.mark.parametrize("spec", BOUNDED, ids=lambda s: s.id)
def test_the_oracle_respects_the_declared_lower_bound(spec, extreme):
    checked = 0
    with np.errstate(all="ignore"):
        for case in _drawn(spec, extreme):
            ref = spec.oracle(case)
            value = np.asarray(ref.value, dtype=np.float64)
            lb = spec.lower_bound(case) if callable(spec.lower_bound) else spec.lower_bound
            slack = VALUE_BOUND["float64"](1) * EPS["float64"] * np.maximum(np.asarray(ref.scale), 1.0)
            below = np.isfinite(value) & (value < lb - slack)
            assert not below.any(), (spec.id, case, value[below] if value.ndim else value)
            checked += int(np.isfinite(value).any())
    assert checked > 0


def test_the_classification_losses_with_probability_labels_declare_their_bound():
    """Cross-entropies of probability labels (and focal variants, with non-negative weights) are >= 0."""
    ids = {s.id for s in BOUNDED}
    for spec_id in ("torch.nn.BCELoss", "torch.nn.CrossEntropyLoss", "keras.losses.BinaryCrossentropy",
                    "keras.losses.CategoricalCrossentropy", "keras.losses.SparseCategoricalCrossentropy",
                    "optax.losses.sigmoid_binary_cross_entropy", "optax.losses.softmax_cross_entropy"):
        assert spec_id in ids, spec_id
