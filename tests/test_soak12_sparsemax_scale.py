"""Soak seed 12: optax ``multiclass_sparsemax_loss``'s compiled gradient at scores [[0, -1000, 0, 0,
-1000]], label 1, cotangent 1.4207 was 2.3e-13 off the exact one (721 eps of the old scale, bound 85): optax's
backward takes the projection's VJP of dL/dp = z - z_y - p on the support, v - mean(v), which cancels
1000 - 1/3 against itself. The gradient scale now counts |v| + mean |v| there."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case
from losscheck.properties.common import cotangent_for
from losscheck.tolerance import GRAD_BOUND, grad_error

SCORES = np.array([[0.0, -1000.0, 0.0, 0.0, -1000.0]])
COTANGENT = cotangent_for((1,))   # the gradient property's: 1.4207354924039484


def _optax_gradient(scores, labels, cotangent):
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)   # as losscheck's JAX engine sets it
    def grad(z, c):   # compiled, as losscheck's engine runs it: eager, this case comes out exact
        return jax.vjp(lambda z: optax.losses.multiclass_sparsemax_loss(z, jax.numpy.asarray(labels)), z)[1](c)[0]
    return np.asarray(jax.jit(grad)(jax.numpy.asarray(scores), jax.numpy.asarray(cotangent)))


def test_the_soak_case_is_rounding_within_the_scale():
    case = Case({"scores": SCORES, "labels": np.array([1])}, {})
    ref = get("optax.losses.multiclass_sparsemax_loss").oracle(case)
    exact = COTANGENT[:, None] * np.array([[1 / 3, -1.0, 1 / 3, 1 / 3, 0.0]])
    np.testing.assert_allclose(ref.grad(COTANGENT)["scores"], exact, rtol=1e-15)
    g = _optax_gradient(SCORES, [1], COTANGENT)
    assert np.max(np.abs(g - exact)) > 1e-13          # optax's own rounding, not the oracle's
    err = grad_error(g, exact, ref.grad_magnitude(COTANGENT)["scores"], "float64")
    assert err < GRAD_BOUND["float64"](1)             # 721 eps against a bound of 85 on the old scale


def test_the_scale_grows_with_the_support_s_distance_to_the_label_only():
    near = Case({"scores": np.array([[0.0, -0.5, 0.0]]), "labels": np.array([1])}, {})
    far = Case({"scores": np.array([[0.0, -1000.0, 0.0]]), "labels": np.array([1])}, {})
    spec = get("optax.losses.multiclass_sparsemax_loss")
    m_near, m_far = (spec.oracle(c).grad_magnitude()["scores"] for c in (near, far))
    assert m_far[0, 0] > 1000 > 10 > m_near[0, 0]
    assert m_far[0, 1] == m_near[0, 1] == 1.0          # the label, outside the support: onehot only
