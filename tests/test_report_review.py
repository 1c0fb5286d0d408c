"""Report writers, from a review: reproducers replay the gradients that the batch and device checks
compute (and the device check's two runs and its CPU comparison); every writer survives a lone
surrogate in a loss's message; JUnit names the pytest test of a plugin row."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from functools import partial

import pytest

from losscheck.report import console, json_report, junit, markdown, repro
from losscheck.report.table import ResultTable
from tests.test_reports import _row, planted_spec, run_script, synthetic_document

# ---- planted losses (module level: a reproducer copies their source) -------------------------------------


def _broken_backward(grad):
    raise RuntimeError("the backward pass is broken")


def backward_raises(ns, params):
    """The value is right; computing its gradient raises (a custom JVP/backward rule that fails)."""
    def loss(input, target):
        if input.requires_grad:
            input.register_hook(_broken_backward)
        return ((input - target) ** 2).mean()
    return loss


def noisy(ns, params):
    """Two identical calls differ (a nondeterministic kernel)."""
    torch = ns.torch

    def loss(input, target):
        return ((input - target) ** 2).mean() + 1e-3 * torch.rand((), dtype=input.dtype)
    return loss


def coupled(ns, params):
    """The value is the mean, but every sample's gradient depends on sample 0's first element."""
    def loss(input, target):
        first = input.reshape(-1)[:1].detach()
        extra = (input * first).sum()
        return ((input - target) ** 2).mean() + extra - extra.detach()
    return loss


def batch_scaled(ns, params):
    """Per-sample losses that grow with the batch size; the oracle below documents the same."""
    def loss(input, target):
        return (input - target) ** 2 * (input.shape[0] if input.ndim else 1)
    return loss


def batch_scaled_oracle(c):
    import numpy as np

    from losscheck.reference import regression as R

    x = c.inputs["input"]
    s = np.sqrt(np.shape(x)[0] if np.ndim(x) else 1)
    return R.squared_error(x * s, c.inputs["target"] * s, reduction="none")


_CALLS = []


def third_call_differs(ns, params):
    """The first two calls (the checked device, twice) agree; the third (the CPU) does not."""
    def loss(input, target):
        _CALLS.append(1)
        value = ((input - target) ** 2).mean()
        return value + 1.0 if len(_CALLS) >= 3 else value
    return loss


def with_call(call, **changes):
    from losscheck.catalog.spec import LossSpec

    spec = planted_spec()
    return LossSpec(**{**spec.__dict__, "call": partial(call), **changes})


def correct_mse():
    from losscheck.catalog.spec import LossSpec

    return LossSpec(**{**planted_spec().__dict__, "call": lambda ns, p: ns.torch.nn.MSELoss()})


def failing_row(spec, prop):
    from losscheck.runner import Task, run_check

    row = run_check(spec, Task(spec.id, "torch", prop, "float64"), examples=20, seed=0)
    assert row["status"] == "fail" and row["input"] is not None, row
    return row


def run_reproducer(row, spec, tmp_path, name="repro.py"):
    path = tmp_path / name
    path.write_text(repro.script(row, spec))
    return run_script(path, tmp_path)


# ---- 1. reproducers compute the gradients their check computes -------------------------------------------

def test_device_reproducer_replays_a_gradient_that_raises(tmp_path):
    pytest.importorskip("torch")
    spec = with_call(backward_raises)
    row = failing_row(spec, "device")
    assert row["code"] == "X001" and "backward pass is broken" in row["message"]
    out = run_reproducer(row, spec, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "backward pass is broken" in out.stdout and "REPRODUCED" in out.stdout
    fixed = run_reproducer(row, correct_mse(), tmp_path, "fixed.py")   # the same script, the bug fixed
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "agree bit for bit" in fixed.stdout and "not reproduced" in fixed.stdout


def test_device_reproducer_replays_two_runs_that_differ(tmp_path):
    pytest.importorskip("torch")
    spec = with_call(noisy)
    row = failing_row(spec, "device")
    assert row["code"] == "D005", row
    out = run_reproducer(row, spec, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "two identical runs on cpu differ" in out.stdout


def test_device_reproducer_compares_with_the_cpu_off_the_cpu(tmp_path):
    """The GPU half, on a CPU-only machine: torch's "cpu:0" is a device other than "cpu" to the
    script, so it runs the loss twice there and once on "cpu", and compares."""
    pytest.importorskip("torch")
    row = failing_row(with_call(backward_raises), "device")
    row = {**row, "device": "cpu:0", "code": "D006", "message": "cpu:0 and cpu disagree"}
    out = run_reproducer(row, with_call(third_call_differs), tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "framework value on cpu:" in out.stdout and "REPRODUCED" in out.stdout
    agree = run_reproducer(row, correct_mse(), tmp_path, "agree.py")
    assert agree.returncode == 0, agree.stdout + agree.stderr
    assert "framework gradient d/dinput on cpu:0:" in agree.stdout


def test_batch_reproducer_replays_sample_independence(tmp_path):
    pytest.importorskip("torch")
    spec = with_call(coupled, pair=("input", "target"))
    row = failing_row(spec, "batch")
    assert row["code"] == "B003" and "not independent" in row["message"], row
    out = run_reproducer(row, spec, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sample 0 replaced by sample 1" in out.stdout
    fixed = run_reproducer(row, correct_mse(), tmp_path, "fixed.py")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_batch_reproducer_replays_tiling_against_the_frameworks_own_value(tmp_path):
    """The oracle documents what the framework does, and both break the per-sample rule: the
    check compares the repeated batch with the framework's own value, and so must the script."""
    pytest.importorskip("torch")
    spec = with_call(batch_scaled, pair=("input", "target"), oracle=batch_scaled_oracle)
    row = failing_row(spec, "batch")
    assert row["code"] == "B003" and "did not tile" in row["message"], row
    out = run_reproducer(row, spec, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "must give the per-sample losses repeated" in out.stdout


def test_every_property_that_computes_a_gradient_gets_its_inputs_in_the_script():
    pytest.importorskip("torch")
    spec = planted_spec()
    base = dict(status="xfail", code="X001", input={"input": [0.0, 1.0], "target": [0.0, 0.5]},
                shape={"input": [2], "target": [2]}, params={})
    for prop in ("value", "gradient", "numerics", "batch", "device"):
        text = repro.script(_row(spec.id, "torch", prop, "float64", **base), spec)
        diff = "['input', 'target']" if prop in repro.WITH_GRADIENTS else "[]"
        assert f"DIFF_ARGS = {diff}" in text, prop
    for prop in repro.NOT_REPLAYED:
        assert not repro.wanted(_row(spec.id, "torch", prop, "float64", **base)), prop


# ---- 2. a lone surrogate in a message -------------------------------------------------------------------

SURROGATES = "bad bytes \udcff\udc80 and a lone \ud800"


def surrogate_document() -> dict:
    doc = synthetic_document()
    for r in doc["results"]:
        if r["status"] in ("fail", "error", "xfail", "warn"):
            r["message"] = f"{r['message']} {SURROGATES}"
            r["reason"] = SURROGATES if r.get("reason") else r.get("reason")
    return doc


def test_every_report_file_is_written_when_a_message_holds_a_lone_surrogate(tmp_path):
    from losscheck import nightly

    problems = nightly.write_report_set(str(tmp_path), surrogate_document())
    assert problems == []
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".")) == [
        "junit.xml", "report.html", "report.json", "repro", "summary.md"]
    for name in ("report.html", "junit.xml", "summary.md"):
        text = (tmp_path / name).read_text(encoding="utf-8")        # strict UTF-8
        assert "\\udcff" in text, name                               # escaped, not dropped
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert int(root.get("failures")) == 2
    assert json.loads((tmp_path / "report.json").read_text())["results"][5]["message"].endswith(SURROGATES)


def test_renderers_and_write_atomic_survive_any_str(tmp_path):
    table = ResultTable.from_document(surrogate_document())
    xml = junit.render(table)
    xml.encode("utf-8")                              # the document itself is valid UTF-8 and XML
    ET.fromstring(xml.split("\n", 1)[1])
    json_report.write_atomic(str(tmp_path / "summary.md"), markdown.render(table))
    assert "\\ud800" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_a_reproducer_of_a_message_with_a_lone_surrogate_is_writable(tmp_path):
    pytest.importorskip("torch")
    spec = planted_spec()
    row = _row(spec.id, "torch", "value", "float64", "fail", code="V002", message=SURROGATES + " and a NUL \x00",
               input={"input": [0.0, 1.0], "target": [0.0, 0.0]}, shape={"input": [2], "target": [2]}, params={},
               reason=SURROGATES)
    text = repro.script(row, spec)
    path = tmp_path / "repro.py"
    path.write_text(text, encoding="utf-8")          # strict: raised UnicodeEncodeError before
    out = run_script(path, tmp_path)
    assert out.returncode == 1 and "REPRODUCED" in out.stdout, out.stdout + out.stderr


def test_the_terminal_summary_prints_a_lone_surrogate(tmp_path):
    from rich.console import Console

    with open(tmp_path / "out.txt", "w", encoding="utf-8") as f:   # strict, as a UTF-8 terminal is
        console.print_summary(surrogate_document()["results"], Console(file=f, width=160))
    assert "\\udcff" in (tmp_path / "out.txt").read_text(encoding="utf-8")


def test_the_nightly_summary_prints_a_new_failure_with_a_lone_surrogate(tmp_path):
    import subprocess
    import sys

    doc = tmp_path / "doc.json"
    doc.write_text(json_report.dumps(surrogate_document()), encoding="utf-8")
    code = ("import json, sys; from losscheck import nightly; "
            f"doc = json.loads(open({str(doc)!r}, encoding='utf-8').read()); "
            "sys.exit(nightly._finish(doc, 'out', [], strict=False))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert out.returncode == 1, out.stderr.decode()   # failures and no history: new failures, no traceback
    assert b"\\udcff" in out.stdout and b"NEW FAIL" in out.stdout


# ---- 3. JUnit: the pytest test of a plugin row --------------------------------------------------------------

def plugin_rows() -> list[dict]:
    rows = []
    for nodeid, status in (("test_dup.py::test_huber_deltas[0.5]", "pass"),
                           ("test_dup.py::test_huber_deltas[1.0]", "fail")):
        for prop in ("value", "gradient"):
            rows.append(_row("good_huber", "torch", prop, "float64", status, nodeid=nodeid,
                             code="V001" if status == "fail" else ""))
    rows.append(_row("good_huber", "torch", "value", "float32", "pass",
                     nodeid="tests/unit/test_x.py::TestLoss::test_in_class[a/b::c-1.5]"))
    return rows


def test_junit_names_the_pytest_test_of_a_plugin_row():
    rows = plugin_rows()
    root = ET.fromstring(junit.render(ResultTable.from_rows(rows)).split("\n", 1)[1])
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert len(cases) == len(rows)                                          # no two alike
    assert cases[("test_dup", "test_huber_deltas[0.5]::torch.good_huber::value[float64]")].find("failure") is None
    assert cases[("test_dup", "test_huber_deltas[1.0]::torch.good_huber::value[float64]")].find("failure") is not None
    # pytest's junitxml address: the path dotted, classes joined, the parameters kept whole
    assert ("tests.unit.test_x.TestLoss", "test_in_class[a/b::c-1.5]::torch.good_huber::value[float32]") in cases


def test_junit_keeps_the_check_names_of_catalog_rows_next_to_plugin_rows():
    rows = plugin_rows() + [_row("torch.nn.MSELoss", "torch", "value", "float32", "pass", device="cuda")]
    root = ET.fromstring(junit.render(ResultTable.from_rows(rows)).split("\n", 1)[1])
    names = {(c.get("classname"), c.get("name")) for c in root.iter("testcase")}
    assert ("torch.torch.nn.MSELoss", "value[float32-cuda]") in names
