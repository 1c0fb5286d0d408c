"""A declared lower precision also moves the kinks (soak alarm, seed 19: keras.losses.circle,
keras-torch, gradient, float64, G001 at 1.8e12 eps). Keras runs that float64 loss in float32 on torch;
rows 0 and 1 of the drawn embeddings are 4e-14 (relative) from the circle's hinge, far outside
float64's kink tolerance but well inside float32's, and the float32 computation landed on the other
side. The precision re-measure now skips the kinks within the effective dtype's tolerance; a wrong
gradient away from them is still G001. NumPy only: a stub stands in for the framework."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case
from losscheck.frameworks.base import Evaluation
from losscheck.properties import PROPERTIES
from losscheck.properties.common import Finding

SPEC = get("keras.losses.circle")
Y_PRED = np.array([[0.0, 0.5, 0.5, 0.5, 0.5],
                   [4.999999999999375e-07] + [0.49999999999993755] * 4,
                   [0.4472135954999579] * 5])
CASE = Case({"y_true": np.array([0, 1, 1]), "y_pred": Y_PRED}, {"gamma": 80.0, "margin": 0.4, "remove_diagonal": True})


class _Stub:
    """The oracle's value and gradient, with ``rows`` of the gradient scaled by 1.5."""
    name = "keras-torch"

    def __init__(self, rows):
        self.rows = rows

    def evaluate(self, call, args, case, dtype, cotangent, want_grad):
        ref = SPEC.oracle(case)
        g = np.array(ref.grad(cotangent)["embeddings"])
        g[self.rows] *= 1.5
        return Evaluation(np.asarray(ref.value, dtype=np.float64), {"y_pred": g}, "Tensor")


def test_rows_at_the_float32_kink_are_left_to_the_declared_precision():
    m = PROPERTIES["gradient"](SPEC, CASE, "float64", _Stub([0, 1]))
    assert m.precision is not None and m.precision.effective == "float32"


def test_a_wrong_row_away_from_the_kink_is_still_caught():
    with pytest.raises(Finding) as found:
        PROPERTIES["gradient"](SPEC, CASE, "float64", _Stub([2]))
    assert found.value.code.startswith("G")


def test_the_kink_is_outside_float64s_tolerance():
    """Without a declared precision the same rows are checked: jax and TensorFlow compute in float64."""
    with pytest.raises(Finding):
        PROPERTIES["gradient"](SPEC, CASE, "float64", type("S", (_Stub,), {"name": "keras-tensorflow"})([0, 1]))
