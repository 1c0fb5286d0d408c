"""Keras on torch, float32, 'mean_with_sample_weight' with a subnormal-sized sample weight is a recorded
expectation (soak alarm, seed 6: keras.losses.CTC, keras-torch, batch, float32, B004: 1.0 for log 2 at
sample_weight 1.4e-45), scoped to that runtime, dtype, reduction and weight size only."""
import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.build import KERAS_TORCH_SUBNORMAL_WEIGHT
from losscheck.catalog.spec import Case


def _case(weight, reduction="mean_with_sample_weight"):
    return Case({"y_true": np.array([[0]]), "y_pred": np.zeros((1, 1, 2)), "sample_weight": np.array([weight])},
                {"reduction": reduction})


@pytest.mark.parametrize("spec_id", ["keras.losses.CTC", "keras.losses.MeanSquaredError"])
def test_the_soak_case_is_expected_on_keras_torch_in_float32(spec_id):
    spec = catalog.get(spec_id)
    for prop, code in (("batch", "B004"), ("value", "V001"), ("gradient", "G001")):
        got = spec.expected_for(prop, "float32", "keras-torch", _case(1.4e-45), code)
        assert got is KERAS_TORCH_SUBNORMAL_WEIGHT


@pytest.mark.parametrize("runtime, dtype, weight, reduction", [
    ("keras-torch", "float32", 0.5, "mean_with_sample_weight"),        # an ordinary weight
    ("keras-torch", "float32", 1e-20, "mean_with_sample_weight"),      # small, products still normal
    ("keras-torch", "float64", 1.4e-45, "mean_with_sample_weight"),    # float64 keeps it normal
    ("keras-torch", "float32", 1.4e-45, "sum"),                       # no division by the weight sum
    ("torch", "float32", 1.4e-45, "mean_with_sample_weight"),         # not Keras
])
def test_it_covers_nothing_else(runtime, dtype, weight, reduction):
    assert not KERAS_TORCH_SUBNORMAL_WEIGHT.matches("batch", dtype, runtime, _case(weight, reduction), "B004")
