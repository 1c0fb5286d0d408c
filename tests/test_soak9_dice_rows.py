"""Soak seed 9: optax ``dice_loss``'s expectation for zero-sum prediction rows raised a harness error
on predictions (2, 3, 1) against targets (2, 3) (it broadcast the two; optax extends the targets and
sums the predictions' own last axis). The scope now reads the rows as optax does."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.segmentation import _zero_sum_row
from losscheck.catalog.spec import Case


def _case(predictions, targets, apply_softmax=False):
    return Case({"predictions": np.asarray(predictions, dtype=np.float64),
                 "targets": np.asarray(targets, dtype=np.float64)}, {"apply_softmax": apply_softmax})


@pytest.mark.parametrize("predictions, targets, zero", [
    (np.zeros((2, 3, 1)), np.ones((2, 3)), True),                      # the soak's shapes: one rank above
    (np.ones((2, 3, 1)), np.ones((2, 3)), False),
    (np.array([0.0, 1.0]), np.array([[1.0], [0.0]]), True),            # one rank below: a class axis added
    (np.array([[0.0, 0.0], [0.5, 0.5]]), np.array([[1.0, 0.0], [0.0, 1.0]]), True),
    (np.array([[0.3, 0.7], [0.5, 0.5]]), np.array([[1.0, 0.0], [0.0, 1.0]]), False),
])
def test_zero_sum_rows_are_read_as_optax_reads_them(predictions, targets, zero):
    assert _zero_sum_row(_case(predictions, targets), "float32") is zero
    assert _zero_sum_row(_case(predictions, targets, apply_softmax=True), "float32") is False


def test_optax_raises_on_the_soak_case_and_the_expectation_covers_it():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    case = _case(np.zeros((2, 3, 1)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="valid probability distributions"):
        optax.losses.dice_loss(jax.numpy.zeros((2, 3, 1)), jax.numpy.ones((2, 3)), apply_softmax=False)
    spec = get("optax.losses.dice_loss")
    assert spec.expected_for("numerics", "float32", "jax", case, "X001") is not None
