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
