"""Report formats from one set of synthetic rows (every status, a compat row, hostile strings), atomic
writing, and a reproducer script executed for a real failure (the history: test_history.py)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import partial

import pytest

from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.report import html, json_report, junit, markdown, repro
from losscheck.report.table import ResultTable

HOSTILE = '<script>alert("x")</script><img src="http://example.com/x.png">'


def _row(id_, runtime, prop, dtype, status, **kw) -> dict:
    row = {"id": id_, "framework": kw.pop("framework", runtime.split("-")[0] if runtime != "jax" else "optax"),
           "runtime": runtime, "family": "regression", "reference": kw.pop("reference", "regression.squared_error"),
           "property": prop, "dtype": dtype, "device": kw.pop("device", "cpu"), "status": status, "code": "",
           "message": "", "error_eps": None, "bound_eps": None, "deviation_eps": None, "deviation_abs": None,
           "examples": 5, "seed": 0, "check_seed": 1, "input": None, "params": None, "shape": None, "reason": "",
           "repro": "", "duration_s": 0.01}
    row.update(kw)
    return row


COMPAT_TABLE = [{"params": {"ignore_index": -100}, "argument": "input", "expects": "none", "effects": [
    {"activation": "none", "verdict": "ok", "code": "", "floor": 0.0, "correct_floor": 0.0, "attenuation": 1.0,
     "minimiser_right": True, "effect": "documented pairing"},
    {"activation": "softmax", "verdict": "warn", "code": "A002", "floor": 0.744, "correct_floor": 0.0,
     "attenuation": 0.25, "minimiser_right": True, "effect": "floor 0.744 (correct 0), gradient x0.25"},
    {"activation": "tanh", "verdict": "wrong", "code": "A004", "floor": None, "correct_floor": 0.0,
     "attenuation": None, "minimiser_right": False, "effect": "undefined (NaN/Inf)"}]}]


def synthetic_rows() -> list[dict]:
    return [
        _row("torch.nn.MSELoss", "torch", "value", "float64", "pass", error_eps=0.5, bound_eps=80.0),
        _row("torch.nn.MSELoss", "torch", "gradient", "float32", "pass", error_eps=1.5, bound_eps=80.0),
        _row("torch.nn.MSELoss", "torch", "value", "float32", "pass", error_eps=2.0, bound_eps=80.0,
             device="cuda"),
        _row("torch.nn.MSELoss", "torch", "value", "float32", "pass", error_eps=0.25, bound_eps=80.0),
        _row("keras.losses.MeanSquaredError", "keras-jax", "value", "float64", "pass", error_eps=3.0, bound_eps=80.0,
             framework="keras"),
        _row("planted.mse_sum", "torch", "value", "float64", "fail", code="V002",
             message=f"reduction is sum, not mean {HOSTILE}", error_eps=4.5e15, bound_eps=72.0,
             input={"input": [0.0, 1.0], "target": [0.0, 0.0]}, params={"note": HOSTILE},
             shape={"input": [2], "target": [2]}, repro="losscheck check planted.mse_sum --runtime torch"),
        _row("torch.nn.L1Loss", "torch", "gradient", "float64", "error", message="harness error: KeyError: 'x'",
             traceback="Traceback (most recent call last):\n  KeyError: 'x'"),
        _row("keras.losses.BinaryCrossentropy", "keras-tensorflow", "value", "float32", "deviation", code="V010",
             message="matches its documented semantics (clips probabilities)", deviation_eps=3.2e5,
             deviation_abs=1e-7, framework="keras", reference="classification.binary_cross_entropy(clip_eps=1e-7)",
             reason="https://keras.io/api/losses/probabilistic_losses/"),
        _row("torch.nn.SoftMarginLoss", "torch", "numerics", "float32", "xfail", code="N001",
             message="non-finite loss", error_eps=math.inf, bound_eps=86.0, input={"input": [1e4], "target": [-1.0]},
             reason="soft_margin_loss overflows (https://github.com/pytorch/pytorch/blob/main/x.cpp)"),
        _row("optax.losses.l2_loss", "jax", "gradient", "float64", "xpass", reason="stale expectation",
             message="expected to fail but passed: the expectation is stale"),
        _row("torch.nn.MSELoss", "torch", "rank_mismatch", "float64", "warn", code="B005",
             message="shape mismatch is broadcast, not rejected"),
        _row("torch.nn.MSELoss", "torch", "compat", "float64", "skip", reason="takes no activated scores"),
        _row("torch.nn.CrossEntropyLoss", "torch", "compat", "float64", "pass",
             reference="classification.cross_entropy", message="documented pairing trains", compat=COMPAT_TABLE),
    ]


STATUS_COUNTS = {"pass": 6, "fail": 1, "error": 1, "deviation": 1, "xfail": 1, "xpass": 1, "warn": 1, "skip": 1}


def synthetic_document(**meta) -> dict:
    return json_report.document(synthetic_rows(), versions={"torch": "2.13.0+cpu", "keras": "3.15.1", "jax": "0.10.2"},
                                seed=0, examples=5, command=["losscheck", "nightly"], **meta)


@pytest.fixture
def table() -> ResultTable:
    return ResultTable.from_document(synthetic_document())


# ---- the result model ---------------------------------------------------------------------------------

def test_table_counts_heatmap_and_sections(table):
    assert table.status_counts() == {s: STATUS_COUNTS[s] for s in table.status_counts()}
    assert sum(table.status_counts().values()) == len(synthetic_rows())
    heat = table.heatmap()
    assert heat.loc["torch.nn.MSELoss", "torch"] == "warn"        # worst of pass, warn, skip
    assert heat.loc["planted.mse_sum", "torch"] == "fail"
    assert heat.loc["torch.nn.MSELoss", "keras-jax"] == ""        # never ran there
    assert "pass 4" in table.heatmap_detail().loc["torch.nn.MSELoss", "torch"]
    dist = table.error_distributions()
    assert sorted(dist["float32"]["value"]) == [0.25, 2.0]       # inf (xfail) is not a measured error
    assert [r["id"] for r in table.failures()] == ["optax.losses.l2_loss", "planted.mse_sum", "torch.nn.L1Loss"]
    known = {r["id"]: r["link"] for r in table.known_deviations()}
    assert known["torch.nn.SoftMarginLoss"] == "https://github.com/pytorch/pytorch/blob/main/x.cpp"
    matrix = table.cross_framework()
    assert list(matrix.index) == ["regression.squared_error"]     # checked on torch and keras-jax
    assert matrix.loc["regression.squared_error", "torch"] == "error"   # worst of pass, fail, error
    pairs = table.device_pairs()
    assert len(pairs) == 1 and pairs.iloc[0]["error_gpu"] == 2.0 and pairs.iloc[0]["error_cpu"] == 0.25
    assert [r["id"] for r in table.compat_rows()] == ["torch.nn.CrossEntropyLoss"]
    assert set(table.frame["versions"][table.frame["runtime"] == "keras-jax"]) == {"keras 3.15.1, jax 0.10.2"}


def test_json_document_is_schema_2_and_loads_back(tmp_path):
    doc = synthetic_document()
    path = tmp_path / "report.json"
    json_report.write_atomic(str(path), json_report.dumps(doc))
    back = json_report.load(str(path))
    assert back["schema_version"] == 2 and back["summary"] == STATUS_COUNTS
    for key in ("losscheck", "created", "command", "seed", "examples", "machine", "versions", "git", "selection",
                "summary", "changes", "trend", "results"):
        assert key in back
    assert "gpus" in back["machine"] and len(back["results"]) == len(synthetic_rows())
    assert math.isinf(back["results"][8]["error_eps"])
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({"schema_version": 1, "results": synthetic_rows()[:2], "seed": 0}))
    upgraded = json_report.load(str(old))
    assert upgraded["schema_version"] == 2 and upgraded["changes"] is None and upgraded["summary"] == {"pass": 2}
    (tmp_path / "other.json").write_text('{"schema_version": 9, "results": []}')
    with pytest.raises(ValueError, match="not a losscheck report"):
        json_report.load(str(tmp_path / "other.json"))


# ---- JUnit and Markdown ----------------------------------------------------------------------------------

def test_junit_parses_and_its_counts_match(table):
    root = ET.fromstring(junit.render(table).split("\n", 1)[1])
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(synthetic_rows()) == int(root.get("tests"))
    assert int(root.get("failures")) == 2 and int(root.get("errors")) == 1 and int(root.get("skipped")) == 1
    assert len(root.findall(".//failure")) == 2 and len(root.findall(".//error")) == 1
    assert sum(int(s.get("tests")) for s in root.findall("testsuite")) == len(cases)
    by_name = {(c.get("classname"), c.get("name")): c for c in cases}
    fail = by_name[("torch.planted.mse_sum", "value[float64]")]
    assert fail.find("failure").get("type") == "V002" and "smallest input" in fail.find("failure").text
    assert ("torch.torch.nn.MSELoss", "value[float32-cuda]") in by_name
    for key in (("keras-tensorflow.keras.losses.BinaryCrossentropy", "value[float32]"),
                ("torch.torch.nn.SoftMarginLoss", "numerics[float32]")):
        case = by_name[key]
        assert case.find("failure") is None and case.find("error") is None
        assert "passed: " in case.find("system-out").text


def test_markdown_counts_failures_and_changes(table):
    text = markdown.render(table)
    for status, n in STATUS_COUNTS.items():
        assert f"| {status} | {n} |" in text
    assert f"| **total** | **{len(synthetic_rows())}** |" in text
    assert "## Failures (3)" in text
    failure_lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(failure_lines) == 3
    assert "<script>" not in text and "New since" not in text     # no history: no change section
    changes = {"previous_runs": ["abc"], "new_failures": [{"id": "planted.mse_sum", "runtime": "torch",
                                                          "property": "value", "dtype": "float64", "device": "cpu"}],
               "new_passes": [], "deviation_changes": [], "first_seen": 0}
    text = markdown.render(ResultTable.from_document(synthetic_document(changes=changes)))
    assert "## New since the previous run" in text and "**new failure** `planted.mse_sum`" in text
    planted = next(line for line in text.splitlines() if line.startswith("| `planted.mse_sum`"))
    assert planted.endswith("| yes |")


# ---- HTML ---------------------------------------------------------------------------------------------

SECTION_IDS = ("summary", "heatmap", "errors", "devices", "matrix", "compat", "deviations", "failures", "trend")


def test_html_is_self_contained_escaped_and_has_every_section(table):
    page = html.render(table, {"planted.mse_sum-torch-value-float64-cpu.py": "print('x < y')\n"})
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert 'src="http' not in page and "<link" not in page and "@import" not in page
    assert page.count("<script>") == 1                    # only the report's own inline script
    assert "<svg" in page                                  # the plots are inline SVG
    assert "No GPU in this run" not in page               # a cuda row exists: the scatter is drawn
    assert 'aria-label="devices"' in page
    assert 'href="https://keras.io/api/losses/probabilistic_losses/"' in page
    assert "<b>ok</b> documented" in page and "floor 0.744" in page and "<b>wrong</b>" in page   # compat table


def test_html_says_when_no_gpu_ran_and_draws_the_trend():
    rows = [r for r in synthetic_rows() if r["device"] == "cpu"]
    trend = [{"run_id": "a", "created": "2026-11-20T00:00:00", "shard": None, "git_commit": "1" * 40,
              "counts": {"pass": 5, "fail": 2}},
             {"run_id": "b", "created": "2026-11-21T00:00:00", "shard": None, "git_commit": "2" * 40,
              "counts": {"pass": 6, "fail": 1}}]
    doc = json_report.document(rows, seed=0, examples=5, trend=trend)
    page = html.render(ResultTable.from_document(doc))
    assert "No GPU in this run" in page
    assert 'aria-label="trend"' in page and "2026-11-21T00:00:00" in page


# ---- atomic writing -----------------------------------------------------------------------------------------

def test_a_renderer_that_raises_leaves_no_partial_file(tmp_path, monkeypatch):
    from losscheck import nightly

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous night")

    def broken(*args, **kwargs):
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(html, "render", broken)
    problems = nightly.write_report_set(str(out), synthetic_document())
    assert len(problems) == 1 and "report.html" in problems[0] and "renderer bug" in problems[0]
    assert (out / "report.html").read_text() == "previous night"           # the old file, untouched
    assert json.loads((out / "report.json").read_text())["schema_version"] == 2   # the others are written
    assert (out / "junit.xml").exists() and (out / "summary.md").exists()
    assert not [p for p in os.listdir(out) if p.startswith(".tmp-")]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        json_report.write_atomic(str(path), "new" * 1000)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


# ---- reproducers -------------------------------------------------------------------------------------------

def mse_sum(ns, params):
    """A planted bug: sum where the documented reduction is a mean."""
    return lambda input, target: ((input - target) ** 2).sum()


def planted_spec() -> LossSpec:
    from losscheck.reference import regression as R

    return LossSpec(id="planted.mse_sum", framework="torch", family="planted", reference="regression.squared_error",
                    args=(Arg("input", "predictions"), Arg("target", "targets")),
                    draw=drawer({}, pair("input", "target")), call=partial(mse_sum),
                    oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction="mean"))


def run_script(path, tmp_path) -> subprocess.CompletedProcess:
    """Run a reproducer where importing losscheck fails (a shadowing module comes first on the path)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir(exist_ok=True)
    (shadow / "losscheck.py").write_text("raise ImportError('a reproducer must not need losscheck')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=str(tmp_path))


def test_reproducer_of_a_real_torch_failure_prints_both_values(tmp_path):
    pytest.importorskip("torch")
    from losscheck.runner import Task, run_check

    spec = planted_spec()
    row = run_check(spec, Task(spec.id, "torch", "gradient", "float64"), examples=20, seed=0)
    assert row["status"] == "fail" and row["input"] is not None
    text = repro.script(row, spec)
    assert "import losscheck" not in text and "from losscheck" not in text
    path = tmp_path / repro.filename(row)
    path.write_text(text)
    out = run_script(path, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "framework value:" in out.stdout and "expected  value:" in out.stdout
    assert "framework gradient d/dinput:" in out.stdout and "expected  gradient d/dinput:" in out.stdout
    assert "REPRODUCED" in out.stdout
    # the numbers printed are the framework's and the oracle's on the smallest input
    x = {k: __import__("numpy").asarray(v) for k, v in row["input"].items()}
    expected = float(((x["input"] - x["target"]) ** 2).mean())
    line = next(line for line in out.stdout.splitlines() if line.startswith("expected  value:"))
    assert math.isclose(float(line.split("array(")[1].rstrip(")")), expected, rel_tol=1e-12)


def test_reproducer_says_when_the_framework_agrees(tmp_path):
    """A fixed bug: the script for the failing row, run against a correct loss, exits 0."""
    pytest.importorskip("torch")
    from losscheck.runner import Task, run_check

    spec = planted_spec()
    row = run_check(spec, Task(spec.id, "torch", "value", "float64"), examples=20, seed=0)
    fixed = LossSpec(**{**spec.__dict__, "call": lambda ns, p: ns.torch.nn.MSELoss()})
    path = tmp_path / "fixed.py"
    path.write_text(repro.script(row, fixed))
    out = run_script(path, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not reproduced" in out.stdout


def test_every_catalog_call_copies_into_a_script():
    from losscheck import catalog

    for spec in catalog.all_specs():
        source = repro.call_source(spec)
        compile(source, spec.id, "exec")
        assert "losscheck" not in source, spec.id
