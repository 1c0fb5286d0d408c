"""The device property: determinism of two identical runs (everywhere), CPU-vs-GPU agreement (on a
CUDA machine; those tests carry the ``gpu`` marker and skip cleanly without one)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, Case, LossSpec
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


def test_compat_on_a_gpu_is_skipped_with_the_reason():
    """Its out-of-domain inputs (logits to BCELoss) stop torch's CUDA kernels with device-side asserts,
    which break the worker's CUDA context: the first GPU nightly lost 380 checks to one."""
    row = run_check(catalog.get("torch.nn.BCELoss"), Task("torch.nn.BCELoss", "torch", "compat", "float64", "cuda"),
                    examples=1, seed=0)
    assert row["status"] == "skip" and "runs on the CPU" in row["reason"], row


def test_a_loss_the_installed_framework_lacks_is_skipped_not_an_error():
    """torch 2.11 has no LinearCrossEntropyLoss: the first GPU nightly (torch 2.11.0+cu130) reported
    X001 AttributeError for it; it is a skip that names the version."""
    from types import SimpleNamespace

    from losscheck.catalog import missing_api

    old_torch = SimpleNamespace(__version__="2.11.0", nn=SimpleNamespace(MSELoss=object,
                                                                         functional=SimpleNamespace()))
    ns = SimpleNamespace(torch=old_torch)
    assert missing_api("torch.nn.LinearCrossEntropyLoss", ns) == "torch 2.11.0 has no torch.nn.LinearCrossEntropyLoss"
    assert missing_api("torch.nn.functional.linear_cross_entropy", ns) is not None
    assert missing_api("torch.nn.MSELoss", ns) is None
    assert missing_api("planted.mse_sum", ns) is None
    assert missing_api("torch.huber_delta", ns) is None   # a selftest mutant's id, not an API path


def _check_cli(tmp_path, *args) -> list[dict]:
    import json
    import subprocess
    import sys

    report = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "losscheck.cli", "check", *args, "-q", "--json", str(report)],
                   capture_output=True, text=True, timeout=600)
    return json.loads(report.read_text())["results"]


def test_check_on_cuda_runs_there_or_says_why_not(tmp_path):
    from losscheck.report.json_report import gpu_names

    rows = _check_cli(tmp_path, "torch.nn.MSELoss", "--device", "cuda", "--property", "value", "--dtype", "float32",
                      "--examples", "5")
    assert [r["device"] for r in rows] == ["cuda"]
    if gpu_names() and _cuda():
        assert rows[0]["status"] == "pass", rows
    else:
        assert (rows[0]["status"], rows[0]["reason"]) == ("skip", "no cuda device for torch on this machine")


def test_a_gpu_rows_repro_command_names_the_device():
    from losscheck.runner import repro_command

    assert "--device cuda " in repro_command(Task("torch.nn.MSELoss", "torch", "device", "float32", "cuda"), 0, 5)
    assert "--device" not in repro_command(Task("torch.nn.MSELoss", "torch", "device", "float32"), 0, 5)


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("runtime", ["keras-torch", "keras-jax"])
def test_keras_on_a_gpu_machine_compares_with_its_cpu_run(tmp_path, runtime):
    """Keras makes its constants on its default device (the GPU here): the CPU half of the device
    property must run Keras on the CPU, or torch raises 'Expected all tensors to be on the same
    device' (the first GPU nightly: keras.losses.categorical_hinge and six more)."""
    from losscheck.frameworks import installed

    if not installed(runtime):
        pytest.skip(f"{runtime} is not installed")
    rows = _check_cli(tmp_path, "keras.losses.categorical_hinge", "keras.losses.squared_hinge", "--runtime", runtime,
                      "--device", "cuda", "--property", "device", "--examples", "10")
    assert rows, "no result rows"
    assert {r["status"] for r in rows} <= {"pass", "deviation", "xfail"}, [(r["id"], r["message"]) for r in rows]


@pytest.mark.parametrize("other, code", [([0.0, 0.5], None), ([0.5, 0.25], "D006")])
def test_devices_may_pick_different_one_sided_derivatives_at_a_kink(monkeypatch, other, code):
    """|x - y| at x == y: the GPU and CPU may take different one-sided derivatives, both right (the
    first GPU runs: Hinge, CosineEmbeddingLoss and four more at their kinks); off the kink they must agree."""
    from types import SimpleNamespace

    from losscheck.frameworks.base import Evaluation
    from losscheck.properties import device
    from losscheck.properties.common import Finding

    spec = catalog.get("torch.nn.L1Loss")
    case = Case({"input": np.array([1.0, 2.0]), "target": np.array([1.0, 0.0])}, {"reduction": "mean"})
    gpu = SimpleNamespace(name="torch", device="cuda")

    def evaluate(spec, runtime, case, dtype, cotangent=None, want_grad=True):
        g = np.array([0.5, 0.5]) if runtime is gpu else np.array(other)
        return Evaluation(np.array(1.0), {"input": g, "target": -g}, "torch.Tensor")

    monkeypatch.setattr(device, "evaluate", evaluate)
    if code is None:
        device.check(spec, case, "float32", gpu)
    else:
        with pytest.raises(Finding) as found:
            device.check(spec, case, "float32", gpu)
        assert found.value.code == code


@pytest.mark.parametrize("relative, code", [(2.0 ** -23, None), (1e-3, "D006")])
def test_a_declared_lower_precision_judges_the_devices_at_that_precision(monkeypatch, relative, code):
    """Keras computes float64 inputs in float32 on torch and JAX (a recorded D001 deviation), on both
    devices: their results differ by float32 rounding (the first GPU nightly: 24 keras-torch D006 rows,
    e.g. CTC 1.3132617 vs 1.3132616), which is no device finding; a difference beyond it is."""
    from types import SimpleNamespace

    from losscheck.frameworks.base import Evaluation
    from losscheck.properties import device
    from losscheck.properties.common import Finding

    spec = catalog.get("keras.losses.MeanSquaredError")
    assert spec.precision_for("float64", "keras-torch").effective == "float32"
    case = Case({"y_true": np.array([[0.25, 1.0]]), "y_pred": np.array([[1.5, -0.5]])},
                {"reduction": "sum_over_batch_size"})
    value = float(spec.oracle(case).value)
    gpu = SimpleNamespace(name="keras-torch", device="cuda")

    def evaluate(spec, runtime, case, dtype, cotangent=None, want_grad=True):
        v = value * (1 + relative) if runtime is gpu else value
        return Evaluation(np.array(v), {}, "torch.Tensor")

    monkeypatch.setattr(device, "evaluate", evaluate)
    if code is None:
        m = device.check(spec, case, "float64", gpu)
        assert m.precision is not None and m.error > m.bound   # reported as the D001 deviation
    else:
        with pytest.raises(Finding) as found:
            device.check(spec, case, "float64", gpu)
        assert found.value.code == code and "declared float32 precision" in found.value.message


def test_device_error_is_the_first_line_of_what_the_probe_raises():
    from losscheck.frameworks.base import device_error

    def broken():
        raise RuntimeError("CUDA error: device-side assert triggered\nCUDA kernel errors might be reported later")

    assert device_error(lambda: None) == ""
    assert device_error(broken) == "RuntimeError: CUDA error: device-side assert triggered"
