"""The `compiled` property (X010): a loss compiled as a training step compiles it against the same loss
run eagerly. JAX and torch run in this process; Keras on TensorFlow in a subprocess (its backend is
fixed per process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from losscheck.frameworks import installed
from losscheck.runner import Task, run_check
from losscheck.userloss import spec_for

ROOT = Path(__file__).resolve().parents[1]


def _compiled(fn, reference: str, dtype: str = "float64") -> dict:
    spec = spec_for(fn, reference)
    return run_check(spec, Task(spec.id, spec.runtimes[0], "compiled", dtype), examples=3, seed=0)


@pytest.mark.skipif(not installed("jax"), reason="JAX/optax is not installed")
def test_jax_python_if_is_x010_its_jnp_where_twin_passes_and_frozen_state_is_x010():
    import jax.numpy as jnp

    def branchy(predictions, targets):
        if jnp.any(predictions > 1e30):
            return jnp.zeros_like(predictions)
        return (predictions - targets) ** 2

    def where(predictions, targets):
        return jnp.where(predictions > 1e30, 0.0, (predictions - targets) ** 2)

    calls = []

    def scheduled(predictions, targets):   # a Python-side schedule: jit reads len(calls) once, when tracing
        calls.append(1)
        return (predictions - targets) ** 2 * (1.0 + len(calls) % 2)

    row = _compiled(branchy, "optax.losses.squared_error")
    assert (row["status"], row["code"]) == ("fail", "X010")
    assert "TracerBoolConversionError" in row["message"] and "jnp.where or jax.lax.cond" in row["message"]
    assert _compiled(where, "optax.losses.squared_error")["status"] == "pass"
    frozen = _compiled(scheduled, "optax.losses.squared_error")
    assert (frozen["status"], frozen["code"]) == ("fail", "X010") and frozen["message"].startswith("computes")


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_torch_is_skipped_with_the_reason():
    def mse(input, target):
        return ((input - target) ** 2).mean()

    row = _compiled(mse, "torch.nn.MSELoss")
    assert row["status"] == "skip" and "eager" in row["reason"]


@pytest.mark.slow
@pytest.mark.skipif(not installed("keras-tensorflow"), reason="TensorFlow/Keras is not installed")
def test_keras_losses_compile_in_a_fit_like_tf_function(tmp_path):
    """Keras' own losses pass with the batch axis of unknown size (what fit() gives them)."""
    out = tmp_path / "compiled.json"
    proc = subprocess.run([sys.executable, "-m", "losscheck.cli", "check", "keras.losses.MeanSquaredError",
                           "keras.losses.CategoricalCrossentropy", "--runtime", "keras-tensorflow", "--property",
                           "compiled", "--examples", "3", "-q", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"pass"}


@pytest.mark.skipif(not installed("jax"), reason="JAX/optax is not installed")
def test_optax_dice_without_the_activation_cannot_be_jitted_and_is_recorded():
    """optax validates apply_softmax=False inputs with a Python if: X010, recorded for the three Dice losses."""
    import jax
    import jax.numpy as jnp
    import optax

    from losscheck import catalog

    p, t = jnp.array([[0.5, 0.5]]), jnp.array([[1.0, 0.0]])
    assert float(optax.losses.dice_loss(p, t, apply_softmax=False)[0]) == pytest.approx(0.171428, abs=1e-6)
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.jit(lambda p, t: optax.losses.dice_loss(p, t, apply_softmax=False))(p, t)
    assert float(jax.jit(optax.losses.dice_loss)(p, t)[0]) == pytest.approx(0.171428, abs=1e-6)
    # binary_dice_loss(apply_sigmoid=False) also raises eagerly on most inputs (recorded X001)
    for name, codes in (("dice_loss", {"X010"}), ("multiclass_generalized_dice_loss", {"X010"}),
                        ("binary_dice_loss", {"X010", "X001"})):
        spec = catalog.get(f"optax.losses.{name}")
        row = run_check(spec, Task(spec.id, "jax", "compiled", "float64"), examples=5, seed=0)
        assert row["status"] == "xfail" and row["code"] in codes, (name, row["status"], row["message"])


def test_value_and_gradient_records_cover_the_compiled_property_only_for_the_code_they_name():
    from losscheck.catalog.spec import Expected

    raises = Expected("the eager call raises", property="gradient", code="X001")
    broad = Expected("a gradient that is off", property="gradient")
    assert raises.matches("compiled", "float32", "jax", code="X001")
    assert not broad.matches("compiled", "float32", "jax", code="X010")
    assert not Expected("x", property="value", code="X010").matches("compiled", "float64", "jax", code="X010")


def test_the_audit_names_the_users_line_not_losschecks_or_a_packages():
    """The deepest frame outside losscheck, the standard library and installed packages, even in a
    directory whose name starts like losscheck's own."""
    import os

    import losscheck
    from losscheck.audit.probes import _user_frame

    beside = os.path.dirname(os.path.abspath(losscheck.__file__)) + "_examples"   # not created: a name only
    namespace: dict = {}
    exec(compile("def loss(x):\n    return int('not a number')\n", os.path.join(beside, "user_loss.py"), "exec"),
         namespace)
    with pytest.raises(ValueError) as raised:
        namespace["loss"](1)
    assert _user_frame(raised.value).startswith(" at user_loss.py line 2 ")


@pytest.mark.parametrize("other, code", [([-0.5, 0.5], None), ([0.5, 0.25], "X010")])
def test_compiled_and_eager_may_pick_different_one_sided_derivatives_at_a_kink(monkeypatch, other, code):
    """|x - y| at x == y: the compiled program may round to the other side of a kink, both derivatives
    right (keras.losses.circle's d = max(1 - x.x, 0) at a unit-norm self-pair, float32 tf.function vs
    eager); off the kink they must agree. NumPy stubs stand in for the framework."""
    from types import SimpleNamespace

    import numpy as np

    from losscheck import catalog
    from losscheck.catalog.spec import Case
    from losscheck.frameworks.base import Evaluation
    from losscheck.properties import compiled
    from losscheck.properties.common import Finding

    spec = catalog.get("torch.nn.L1Loss")
    case = Case({"input": np.array([1.0, 2.0]), "target": np.array([1.0, 0.0])}, {"reduction": "mean"})

    def run(g):
        return Evaluation(np.array(0.5), {"input": np.array(g), "target": -np.array(g)}, "Array")

    runtime = SimpleNamespace(name="jax", compiler="jax.jit", evaluate=lambda *a, **k: run(other))
    monkeypatch.setattr(compiled, "evaluate", lambda *a, **k: run([0.5, 0.5]))
    if code is None:
        compiled.check(spec, case, "float32", runtime)
    else:
        with pytest.raises(Finding) as found:
            compiled.check(spec, case, "float32", runtime)
        assert found.value.code == code
