"""Smoke tests of the benchmark suite (benchmarks/run.py and its pieces) on tiny shapes, so that it
does not rot. They check that every piece runs and what it reports about correctness (the checks
pass on the correct losses, the planted gradient error is flagged where it must be); they never
assert a timing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gradient_bench, gradient_cases, import_time, overhead, tables

ROOT = Path(__file__).resolve().parents[1]
TORCH_CHECKERS = ("losscheck float64", "losscheck float32", "gradcheck(fast_mode=False)", "gradcheck(fast_mode=True)")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """As the benchmarks run (benchmarks/threads.py): on a loaded 2-core machine torch's default
    thread pool makes each tiny CTC call take milliseconds. Restored afterwards."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def quick_cases():
    pytest.importorskip("torch")
    return {c.name: c for c in gradient_cases.all_cases(quick=True)}


def test_quick_cases_are_tiny_and_cover_the_issue(quick_cases):
    assert set(quick_cases) == {"CrossEntropyLoss", "MSELoss", "CTCLoss", "custom.importance_weighted_mse"}
    assert all(c.elements <= 100 for c in quick_cases.values())
    full = {c.name: c.elements for c in gradient_cases.all_cases(quick=False)}
    assert full["CrossEntropyLoss"] == 256 * 100 and full["CTCLoss"] == 50 * 16 * 20


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "CTCLoss", "custom.importance_weighted_mse"])
def test_torch_checkers_pass_the_correct_loss_and_flag_the_planted_error(quick_cases, name):
    result = gradient_bench.bench_case(quick_cases[name], checkers=TORCH_CHECKERS, repeats=1, budget_s=0.1,
                                       log=lambda _: None).as_dict()
    by_name = {c["checker"]: c for c in result["checkers"]}
    assert set(by_name) == set(TORCH_CHECKERS)
    for checker in TORCH_CHECKERS:
        assert by_name[checker]["clean_passed"], (checker, by_name[checker]["clean_message"])
        assert by_name[checker]["timing"]["median_s"] > 0
    # losscheck flags a sign flip of one gradient element with a G code in both dtypes, and the
    # full-Jacobian gradcheck finds it on a tiny input
    for checker in ("losscheck float64", "losscheck float32", "gradcheck(fast_mode=False)"):
        assert by_name[checker]["detected"], (checker, by_name[checker]["detected_message"])
    assert by_name["losscheck float64"]["detected_message"].startswith("Finding: G")
    json.dumps(result)   # what run.py writes


def test_ctc_bare_loss_fails_gradcheck_because_of_torch_gradient_convention(quick_cases):
    assert gradient_bench.raw_gradcheck(quick_cases["CTCLoss"]).startswith("fails")


def test_planted_torch_wrapper_changes_exactly_one_gradient_element(quick_cases):
    import torch

    from benchmarks.planted import torch_planted

    case = quick_cases["MSELoss"]
    xs = [torch.tensor(a, requires_grad=True) for a in case.diff_arrays()]
    loss = case.torch_loss()
    index = gradient_bench.planted_index(case)
    good = torch.autograd.grad(loss(*xs), xs)
    bad = torch.autograd.grad(torch_planted(loss, index)(*xs), xs)
    assert torch.equal(loss(*xs), torch_planted(loss, index)(*xs))
    changed = (good[0] != bad[0]).flatten().nonzero().flatten().tolist()
    assert changed == [index] and bad[0].flatten()[index] == -good[0].flatten()[index]
    assert torch.equal(good[1], bad[1])


def test_ratios_and_tables_from_a_result_document():
    def checker(name, median, passed=True, detected=True):
        return {"checker": name, "timing": {"first_s": median, "runs_s": [median], "median_s": median, "runs": 1},
                "clean_passed": passed, "clean_message": "", "detected": detected, "detected_message": "",
                "planted_s": median}

    case = {"case": "CrossEntropyLoss", "shape": "(2, 3)", "elements": 6, "planted_index": 0, "raw_gradcheck": "",
            "checkers": [checker("losscheck float64", 0.002), checker("losscheck float32", 0.002),
                         checker("gradcheck(fast_mode=False)", 0.4), checker("gradcheck(fast_mode=True)", 0.002,
                                                                             detected=False),
                         checker("jax check_grads", 0.008), checker("tf.test.compute_gradient", 1.0, passed=False)]}
    ratios = tables.gradient_ratios(case)
    assert ratios["slow_over_losscheck_f64"] == pytest.approx(200)
    assert ratios["fast_over_losscheck_both"] == pytest.approx(0.5)
    assert ratios["check_grads_over_losscheck_both"] == pytest.approx(2)
    assert ratios["compute_gradient_over_losscheck_f64"] is None   # it failed on the correct loss
    text = tables.ratio_table([case])
    assert "200.0x met" in text and "0.5x **not met**" in text
    assert "planted: **no**" in tables.gradient_table([case])
    assert "fails on the correct loss" in tables.gradient_table([case])


def test_overhead_records_the_drawn_inputs_and_times_bare_calls():
    pytest.importorskip("torch")
    from losscheck import catalog

    spec = catalog.get("torch.nn.MSELoss")
    seconds, cases, rows = overhead.run_harness(spec, "torch", examples=2, seed=0)
    assert [(r["property"], r["dtype"]) for r in rows] == [
        ("value", "float64"), ("gradient", "float64"), ("value", "float32"), ("gradient", "float32")]
    assert all(r["status"] == "pass" for r in rows)
    assert len(cases) >= sum(r["examples"] for r in rows) and {d for _, d in cases} == {"float64", "float32"}
    calls = overhead.prepare_bare_calls(spec, "torch", cases)
    assert len(calls) == len(cases)
    first, warm = overhead.run_bare(calls, passes=2)
    assert seconds > 0 and first > 0 and warm > 0
    checked: list = []
    overhead.run_harness(spec, "torch", examples=2, seed=0, checked=checked)
    assert {(p, d) for p, _, d in checked} == {(p, d) for p in ("value", "gradient") for d in ("float64", "float32")}
    drawn_s, drawn = overhead.time_draws(spec, "torch", examples=2, seed=0)
    assert drawn >= len(checked) / 2 and drawn_s > 0
    assert overhead.time_checks(spec, "torch", checked, passes=1) > 0


def test_import_time_loads_no_framework():
    result = import_time.measure(runs=1)
    assert result["frameworks_loaded"] == []
    assert result["importtime_top"][0]["module"] == "losscheck"
    assert "import losscheck" in tables.import_table(result)


@pytest.mark.frameworks
def test_run_py_quick_end_to_end(tmp_path):
    """The one command, on a subset small enough for CI: every section, JSON and Markdown out."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(out), "--runtimes", "torch",
         "--cases", "MSELoss", "--checkers", "losscheck float64,jax check_grads,tf.test.compute_gradient",
         "--import-runs", "1", "--no-profile"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["settings"]["quick"] and doc["machine"]["cores"]
    assert [r["runtime"] for r in doc["overhead"]] == ["torch"] and "error" not in doc["overhead"][0]
    assert all(doc["overhead"][0][k] > 0 for k in ("draw_ms_per_case", "one_integer_draw_ms_per_case",
                                                   "check_ms_per_case"))
    (case,) = doc["gradient"]
    assert {c["checker"]: (c["clean_passed"], c["detected"]) for c in case["checkers"]} == {
        "losscheck float64": (True, True), "jax check_grads": (True, True), "tf.test.compute_gradient": (True, True)}
    wall = {r["name"]: r for r in doc["wall"]}
    assert wall["check --all (cold XLA cache)"]["exit"] == 0 and wall["check --all (cold XLA cache)"]["checks"] > 0
    assert wall["nightly"]["exit"] == 0 and wall["nightly"]["checks"] > 0
    assert any(name.startswith("audit ") and r["exit"] in (0, 1) for name, r in wall.items())
    for heading in ("## Gradient verification of one example", "## Harness overhead", "hypothesis draw alone",
                    "## import losscheck", "## Wall times from a cold start"):
        assert heading in done.stdout
