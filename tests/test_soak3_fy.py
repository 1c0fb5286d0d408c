"""Soak alarm (seed 3) on optax ``make_fenchel_young_loss`` with sparsemax's Gini max, pinned.

The numerics property at scores [-1e4, -1e4, -1e4], targets [-88, -88, -88] reported G006: the gradient
p - y was 96 eps off. optax's projection_simplex returns p = 1/3 exactly there (its 1/k + (z - mean)
subtracts equal numbers exactly); the oracle's tau = (sum(z) - 1) / k rounded at 1e4 * eps and gave
p = 1/3 + 6.1e-13. The oracle now projects z - max(z), exact to a few eps however large |z|; and the
spec's scales count optax's own rounding of p at |z| + |tau| for scores that are not all equal.
"""
from fractions import Fraction

import numpy as np
import pytest

from losscheck.reference.structured import fenchel_young_loss, projection_simplex
from losscheck.tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, value_error

EPS = np.finfo(np.float64).eps


def _exact_projection(z):
    """Sparsemax of one row in rational arithmetic: (p, tau) as Fractions."""
    zf = [Fraction(float(v)) for v in z]
    css, tau = Fraction(0), None
    for k, u in enumerate(sorted(zf, reverse=True), start=1):
        css += u
        if u - (css - 1) / k > 0:
            tau = (css - 1) / k
    return [max(v - tau, Fraction(0)) for v in zf], tau


def _optax_projection(z):
    """optax.projections._projection_unit_simplex's formula (optax 0.2.8), in float64 NumPy."""
    u = np.sort(z)[::-1]
    css = np.cumsum(u)
    ind = np.arange(1, z.size + 1)
    k = np.count_nonzero(1.0 / ind + (u - css / ind) > 0)
    return np.maximum(1.0 / k + (z - css[k - 1] / k), 0.0)


def test_alarm_case_gradient_is_exact():
    z, y = np.full(3, -1e4), np.full(3, -88.0)
    p, tau = projection_simplex(z)
    assert np.array_equal(p, np.full(3, 1.0 / 3.0))
    g = fenchel_young_loss(z, y, max_fun="sparsemax").grad()["scores"]
    assert np.array_equal(g, np.full(3, 1.0 / 3.0 + 88.0))


@pytest.mark.parametrize("seed", range(6))
def test_projection_exact_to_a_few_eps_at_large_scores(seed):
    rng = np.random.default_rng(seed)
    big = 10.0 ** (seed % 6)
    z = rng.choice([-1.0, 1.0]) * big + rng.uniform(-1.5, 1.5, 2 + seed % 4)
    p, _ = projection_simplex(z)
    exact = np.array([float(v) for v in _exact_projection(z)[0]])
    assert np.max(np.abs(p - exact)) <= 4 * EPS


@pytest.mark.parametrize("z", [[-99998.91063938744, -99998.85607848178],
                               [1e5 + 0.3040111126069, 1e5 + 0.7268615447072, 1e5 - 0.087024039395],
                               [-1e4, -1e4, -1e4]])
def test_scales_cover_optax_rounding_of_p(z):
    z = np.asarray(z)
    y = np.linspace(-3.0, 3.0, z.size)
    ref = fenchel_young_loss(z, y, max_fun="sparsemax")
    q = _optax_projection(z)
    got_value = q @ z - 0.5 * q @ q + 0.5 - y @ z
    assert value_error(got_value, ref.value, ref.scale, "float64") <= VALUE_BOUND["float64"](1)
    mag = ref.grad_magnitude()["scores"]
    assert grad_error(q - y, ref.grad()["scores"], mag, "float64") <= GRAD_BOUND["float64"](1)


def test_first_example_is_far_outside_the_old_scales():
    """Without the |z| + |tau| terms the first case is ~1,000-2,000 eps off: the terms are needed."""
    z = np.array([-99998.91063938744, -99998.85607848178])
    y = np.zeros(2)
    p, tau = _exact_projection(z)
    exact_value = float(sum(a * Fraction(float(b)) for a, b in zip(p, z)) - sum(a * a for a in p) / 2
                        + Fraction(1, 2))
    q = _optax_projection(z)
    old_scale = np.sum(np.abs(q * z)) + 0.5 * np.sum(q * q) + 0.5
    assert abs(q @ z - 0.5 * q @ q + 0.5 - exact_value) / (EPS * old_scale) > 1000
    exact_p = np.array([float(v) for v in p])
    assert np.max(np.abs(q - exact_p)) / (EPS * np.max(np.abs(exact_p))) > 1000
