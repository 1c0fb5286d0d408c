"""A check that breaks its worker's GPU context (a device-side assert is sticky: every later CUDA call
of the process fails with it) costs one row, not every check the worker runs after it. The engines'
probe (``context_error``) is planted here, so the CPU machine exercises the runner's recovery."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

PLANTED = '''
import os
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.frameworks.torch_engine import TorchEngine
from losscheck.reference import regression as R

BROKEN = []
TorchEngine.context_error = lambda self: "AcceleratorError: CUDA error: device-side assert triggered" if BROKEN else ""

def spec(i, breaks):
    def call(ns, p):
        def loss(input, target):
            if breaks:
                BROKEN.append(1)
            if BROKEN:   # the assert, and what a broken context does to every later call
                raise RuntimeError("CUDA error: device-side assert triggered")
            return ((input - target) ** 2).mean()
        return loss
    return LossSpec(id=f"planted.ctx_{i}", framework="torch", family="regression", reference="-",
        args=(Arg("input", "predictions"), Arg("target", "targets")), draw=drawer({}, pair("input", "target")),
        call=call, oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction="mean"))

BREAKING = {int(i) for i in os.environ.get("PLANTED_BREAKING", "").split(",") if i}
SPECS = [spec(i, breaks=i in BREAKING) for i in range(6)]
'''


def _check(tmp_path, breaking: str) -> dict:
    (tmp_path / "planted_context.py").write_text(PLANTED)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOSSCHECK_CATALOG": "planted_context",
           "PLANTED_BREAKING": breaking}
    report = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "losscheck.cli", "check", *[f"planted.ctx_{i}" for i in range(6)],
                    "--examples", "2", "-q", "-j", "1", "--property", "value", "--dtype", "float64",
                    "--json", str(report)], capture_output=True, text=True, timeout=600, env=env)
    return {r["id"]: r for r in json.loads(report.read_text())["results"]}


def test_the_check_that_breaks_the_context_is_the_only_failure(tmp_path):
    rows = _check(tmp_path, "0")
    assert (rows["planted.ctx_0"]["status"], rows["planted.ctx_0"]["code"]) == ("fail", "X001")
    assert "device-side assert" in rows["planted.ctx_0"]["message"]
    assert {rows[f"planted.ctx_{i}"]["status"] for i in range(1, 6)} == {"pass"}, rows


def test_a_context_that_keeps_breaking_stops_after_the_restart_limit(tmp_path):
    from losscheck.runner import MAX_CONTEXT_RESTARTS

    rows = _check(tmp_path, "0,1,2,3,4,5")
    failed = [r for r in rows.values() if r["status"] == "fail"]
    given_up = [r for r in rows.values() if r["status"] == "error"]
    assert len(failed) == MAX_CONTEXT_RESTARTS + 1 and len(given_up) == 6 - len(failed)
    assert all("broke the GPU context" in r["message"] for r in given_up), given_up
