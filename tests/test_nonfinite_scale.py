"""A non-finite scale or gradient magnitude must not make an error NaN or infinite.

An element saturated by an infinite input (softplus(-inf) = 0 exactly) has a finite value with an
infinite scale; 0 * inf in a magnitude is NaN. Summed by a reduction, that made the reduced scale
inf or NaN: value_error then read the reduced value as exact, and a correct float32 torch
SoftMarginLoss measured 1.5e30 eps. In grad_error, a NaN largest magnitude made the normwise error
NaN (a pass for any gradient) and an infinite one made it 0.
"""
import math

import numpy as np
import pytest

from losscheck.reference import _core
from losscheck.tolerance import EPS, VALUE_BOUND, grad_error, value_error


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_reduction_scale_ignores_a_finite_term_with_a_non_finite_scale(reduction, bad):
    terms = np.array([0.0, 0.5543552, 2.0])
    value, scale, _ = _core.reduce(terms, np.array([bad, 0.6, 2.5]), reduction)
    assert math.isfinite(float(scale))
    expected = 3.1 if reduction == "sum" else 3.1 / 3
    assert float(scale) == pytest.approx(expected)


def test_non_finite_term_keeps_its_non_finite_scale():
    value, scale, _ = _core.reduce(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), "sum")
    assert value == np.inf and scale == np.inf


def test_torch_soft_margin_mean_over_an_infinite_input_is_within_float32_bounds():
    torch = pytest.importorskip("torch")
    from losscheck.reference import embedding
    x = np.array([-np.inf, 0.3])
    y = np.array([-1.0, 1.0])
    ref = embedding.soft_margin(x, y, reduction="mean")
    got = torch.nn.functional.soft_margin_loss(torch.tensor(x, dtype=torch.float32),
                                               torch.tensor(y, dtype=torch.float32))
    assert math.isfinite(float(ref.scale))
    assert value_error(float(got), ref.value, ref.scale, "float32") <= VALUE_BOUND["float32"](2)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_grad_error_detects_a_wrong_element_beside_a_non_finite_magnitude(bad):
    expected = np.array([0.0, 0.25, -0.5])
    magnitude = np.array([bad, 0.25, 0.5])
    wrong = expected + np.array([0.0, 0.0, 0.01])
    err = grad_error(wrong, expected, magnitude, "float64")
    assert err == pytest.approx(0.01 / (EPS["float64"] * 0.5))
    assert grad_error(expected, expected, magnitude, "float64") == 0.0


def test_grad_error_with_skip_also_ignores_a_non_finite_magnitude():
    expected = np.array([0.0, 0.25, -0.5, 7.0])
    magnitude = np.array([np.nan, 0.25, 0.5, 7.0])
    wrong = expected + np.array([0.0, 0.0, 0.01, 3.0])
    err = grad_error(wrong, expected, magnitude, "float64", skip=np.array([False, False, False, True]))
    assert err == pytest.approx(0.01 / (EPS["float64"] * 0.5))
