"""The JAX engine's inputs: NumPy arrays into its compiled programs, jax arrays everywhere else.

A compiled program takes NumPy inputs (jit puts them on the default device for a few microseconds,
where ``device_put`` took about 37 us per array); where the runtime's device is not the default
one, and for a loss that runs outside a program, the inputs are ``device_put`` as before.
"""
import numpy as np
import pytest

pytest.importorskip("jax")

from losscheck import catalog
from losscheck.catalog.spec import Arg, Case
from losscheck.frameworks import get_runtime
from losscheck.frameworks.jax_engine import JaxEngine
from losscheck.strategies import cases

SPECS = ["optax.losses.softmax_cross_entropy", "optax.losses.huber_loss", "optax.losses.ctc_loss",
         "optax.losses.sigmoid_focal_loss", "optax.losses.hinge_loss"]


def _drawn(spec, n=4):
    from hypothesis import HealthCheck, given, settings

    out = []

    @settings(max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(cases(spec.draw))
    def collect(case):
        out.append(case)
    collect()
    return out


@pytest.mark.parametrize("spec_id", SPECS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_and_device_inputs_give_the_same_bits(spec_id, dtype):
    spec = catalog.get(spec_id)
    runtime = get_runtime("jax")
    host, put = JaxEngine(), JaxEngine()
    assert host._host_inputs
    put._host_inputs = False
    for case in _drawn(spec):
        results = []
        for want_grad in (True, False):
            a, b = (engine.evaluate(spec.call, runtime.namespace, spec.args, case, dtype, None, want_grad)
                    for engine in (host, put))
            np.testing.assert_array_equal(a.value, b.value)
            assert a.grads.keys() == b.grads.keys()
            for name in a.grads:
                np.testing.assert_array_equal(a.grads[name], b.grads[name])


def _control_flow_loss(seen):
    def build(ns, params):
        def loss(x, y):
            seen.append(type(y).__name__)
            if float(ns.jnp.sum(y)) > 0:      # Python control flow on a value: not traceable
                return ns.jnp.sum((x - y) ** 2)
            return ns.jnp.sum(ns.jnp.abs(x - y))
        return loss
    return build


def test_an_untraceable_loss_runs_eagerly_on_jax_arrays():
    seen = []
    engine = JaxEngine()
    case = Case(inputs={"x": np.array([1.0, 2.0]), "y": np.array([0.5, 0.0])})
    args = [Arg("x"), Arg("y", differentiable=False)]
    ev = engine.evaluate(_control_flow_loss(seen), get_runtime("jax").namespace, args, case, "float64")
    assert float(ev.value) == pytest.approx(0.25 + 4.0)
    np.testing.assert_allclose(ev.grads["x"], [1.0, 4.0])
    # traced under jit first (a tracer), then run eagerly: its constant input is a jax array
    assert seen[-1] == "ArrayImpl" and "ndarray" not in seen


def test_an_array_parameter_reaches_the_compiled_program():
    def build(ns, params):
        w = params["weights"]
        return lambda x: ns.jnp.sum(w * x ** 2)
    engine = JaxEngine()
    case = Case(inputs={"x": np.array([1.0, -2.0])}, params={"weights": np.array([3.0, 0.5])})
    ev = engine.evaluate(build, get_runtime("jax").namespace, [Arg("x")], case, "float32")
    assert float(ev.value) == 5.0
    np.testing.assert_array_equal(ev.grads["x"], [6.0, -2.0])
    assert len(engine._programs) == 1
