"""The device property: determinism of two identical runs (everywhere), CPU-vs-GPU agreement (on a
CUDA machine; those tests carry the ``gpu`` marker and skip cleanly without one)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.reference import regression as R
from losscheck.runner import Task, run_check

torch = pytest.importorskip("torch")


def _mse(noisy: bool):
    def call(ns, params):
        def loss(input, target):
            out = ((input - target) ** 2).mean()
            # a racy reduction's last-bit jitter, as atomics on a GPU give
            return out * (1 + float(np.random.default_rng().integers(0, 2)) * 2.0 ** -40) if noisy else out
        return loss
    return LossSpec(id=f"planted.mse_{'noisy' if noisy else 'steady'}", framework="torch", family="regression",
                    reference="-", args=(Arg("input", "predictions"), Arg("target", "targets")),
                    draw=drawer({}, pair("input", "target")), call=call,
                    oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction="mean"))


def test_a_nondeterministic_loss_is_d005():
    row = run_check(_mse(noisy=True), Task("planted", "torch", "device", "float64"), examples=30, seed=0)
    assert (row["status"], row["code"]) == ("fail", "D005"), row["message"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_nondeterministic_loss_is_d005_whether_or_not_the_replay_differs_too(seed):
    row = run_check(_mse(noisy=True), Task("planted", "torch", "device", "float64"), examples=30, seed=seed)
    assert (row["status"], row["code"]) == ("fail", "D005"), row["message"]


def test_a_value_failure_that_does_not_replay_is_d005_not_an_exception():
    calls = []

    def call(ns, params):
        def loss(input, target):
            calls.append(1)
            out = ((input - target) ** 2).mean()
            return out + 1 if len(calls) == 1 else out  # wrong once, then right: only a replay can tell
        return loss

    spec = dataclasses.replace(_mse(noisy=False), call=call)
    row = run_check(spec, Task("planted", "torch", "value", "float64"), examples=10, seed=0)
    assert (row["status"], row["code"]) == ("fail", "D005"), row["message"]
    assert "did not reproduce" in row["message"] and "V00" in row["message"]


def test_a_deterministic_loss_passes_on_cpu():
    row = run_check(_mse(noisy=False), Task("planted", "torch", "device", "float64"), examples=30, seed=0)
    assert row["status"] == "pass", row["message"]


def _cuda() -> bool:
    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("loss", ["torch.nn.MSELoss", "torch.nn.CrossEntropyLoss", "torch.nn.BCEWithLogitsLoss",
                                  "torch.nn.CTCLoss"])
@pytest.mark.parametrize("prop", ["value", "gradient", "device"])
def test_torch_on_cuda_agrees_with_the_oracle_and_the_cpu(loss, prop):
    row = run_check(catalog.get(loss), Task(loss, "torch", prop, "float32", "cuda"), examples=20, seed=0)
    assert row["status"] in ("pass", "deviation", "xfail"), (row["code"], row["message"])


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("loss", ["optax.losses.softmax_cross_entropy", "optax.losses.l2_loss"])
@pytest.mark.parametrize("prop", ["value", "gradient", "device"])
def test_jax_on_cuda_agrees_with_the_oracle_and_the_cpu(loss, prop):
    pytest.importorskip("optax")
    row = run_check(catalog.get(loss), Task(loss, "jax", prop, "float32", "cuda"), examples=20, seed=0)
    assert row["status"] in ("pass", "deviation", "xfail"), (row["code"], row["message"])


def test_a_raising_call_expected_in_gradient_is_expected_in_device_but_not_nondeterminism():
    from losscheck.catalog.spec import Expected

    raises = Expected("the gradient raises", "https://example.org", property="gradient", code="X001")
    wrong = Expected("the gradient is off", "https://example.org", property="gradient")
    assert raises.matches("device", "float32", "jax", code="X001")
    assert not wrong.matches("device", "float32", "jax", code="D005")
    assert wrong.matches("numerics", "float32", "jax", code="G001")
