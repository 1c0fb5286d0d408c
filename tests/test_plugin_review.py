"""The pytest plugin's review defects (helper-plugin-review): reproducer snippets that run (class-index
targets, lambdas, partials), compat on a user's loss, the fixture's arguments validated as the
options are, replay commands from the invocation directory, the report directory replaced as a set,
and pytest-xdist workers that crash.

One user project (``proj/``, with its own ini file, so it is the rootdir) is run once from its parent
directory in a subprocess; the tests read that run's output and report. Runs that import torch are
subprocesses, as in tests/test_pytest_plugin.py.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

LOSSES = '''
import torch
import torch.nn.functional as F


def sum_mse(input, target):
    return ((input - target) ** 2).sum()


def sum_ce(input, target):
    return F.cross_entropy(input, target, reduction="sum")


def sum_nll(input, target):
    return F.nll_loss(input, target, reduction="sum")


def softmax_ce(input, target):
    return F.cross_entropy(torch.softmax(input, dim=-1), target)


def good_ce(input, target):
    return F.cross_entropy(input, target)


def scaled_mse(input, target, k):
    return k * ((input - target) ** 2).mean()
'''

TESTS = '''
import functools

import torch

from mylosses import good_ce, scaled_mse, softmax_ce, sum_ce, sum_mse, sum_nll

ONE = dict(properties=["value"], dtypes=["float64"])
BOUND_LAMBDA = lambda input, target: ((input - target) ** 2).sum()


def test_sum_mse(losscheck):
    losscheck(sum_mse, reference="torch.nn.MSELoss", **ONE)


def test_sum_ce(losscheck):
    losscheck(sum_ce, reference="torch.nn.CrossEntropyLoss", **ONE)


def test_sum_ce_gradient(losscheck):
    losscheck(sum_ce, reference="torch.nn.CrossEntropyLoss", properties=["gradient"], dtypes=["float64"], examples=10)


def test_sum_nll(losscheck):
    losscheck(sum_nll, reference="torch.nn.NLLLoss", **ONE)


def test_lambda(losscheck):
    losscheck(lambda input, target: ((input - target) ** 2).sum(), reference="torch.nn.MSELoss", **ONE)


def test_bound_lambda(losscheck):
    losscheck(BOUND_LAMBDA, reference="torch.nn.MSELoss", **ONE)


def test_partial(losscheck):
    losscheck(functools.partial(scaled_mse, k=3.0), reference="torch.nn.MSELoss", **ONE)


def test_partial_of_a_tensor(losscheck):
    losscheck(functools.partial(scaled_mse, k=torch.tensor(3.0)), reference="torch.nn.MSELoss", **ONE)


def test_compat_softmax(losscheck):
    losscheck(softmax_ce, reference="torch.nn.CrossEntropyLoss", properties=["compat"])


def test_compat_good(losscheck):
    losscheck(good_ce, reference="torch.nn.CrossEntropyLoss", properties=["compat"])


def test_bad_dtypes(losscheck):
    losscheck(sum_mse, reference="torch.nn.MSELoss", dtypes=["float8"])


def test_bad_devices(losscheck):
    losscheck(sum_mse, reference="torch.nn.MSELoss", devices=["tpu"])


def test_negative_examples(losscheck):
    losscheck(sum_mse, reference="torch.nn.MSELoss", examples=-5)


def test_zero_examples(losscheck):
    losscheck(sum_mse, reference="torch.nn.MSELoss", examples=0)
'''

PYTHON = sys.executable


def needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def _pytest(args, cwd, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The user project, run once from its parent directory with a report directory that holds a
    previous run's files (a stale reproducer among them)."""
    needs("torch")
    parent = tmp_path_factory.mktemp("review")
    proj = parent / "proj"
    proj.mkdir()
    (proj / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (proj / "mylosses.py").write_text(LOSSES)
    (proj / "test_review.py").write_text(TESTS)
    out = parent / "out"
    (out / "repro").mkdir(parents=True)
    (out / "repro" / "stale-from-an-earlier-run.py").write_text("raise SystemExit(1)\n")
    result = _pytest(["proj/test_review.py", "--losscheck-examples", "3", "--losscheck-report", "out"], cwd=parent)
    doc = json.loads((out / "report.json").read_text())
    return parent, proj, result.stdout + result.stderr, doc


def _snippet(output: str, test: str) -> tuple[str, str]:
    """(the replay command, the snippet) printed under ``test``'s failure."""
    section = output.split(f"_ {test} _", 1)[1]
    block = re.search(r"E {7}reproduce:\n((?:E {11}.*\n)+)", section).group(1)
    lines = [line[12:] for line in block.splitlines()]
    return lines[0], "\n".join(lines[1:])


def _rows(doc: dict, test: str) -> list[dict]:
    return [r for r in doc["results"] if r["nodeid"].endswith("::" + test)]


RUN_SNIPPETS = '''
import contextlib, io, json, sys
out = {}
for name, code in json.load(sys.stdin).items():
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, name, "exec"), {"__name__": "__main__"})
        out[name] = ["ok", buf.getvalue()]
    except BaseException as exc:
        out[name] = [type(exc).__name__ + ": " + str(exc), buf.getvalue()]
print(json.dumps(out))
'''


def test_snippets_build_what_the_loss_received_and_run(project):
    """Class indices reach CrossEntropyLoss and NLLLoss as int64: the snippet builds them so and
    prints the value the check measured; lambdas and partials give code that runs, or a comment
    asking for the loss where it cannot be imported."""
    parent, proj, output, doc = project
    tests = ["test_sum_ce", "test_sum_ce_gradient", "test_sum_nll", "test_lambda", "test_bound_lambda",
             "test_partial", "test_partial_of_a_tensor"]
    snippets = {t: _snippet(output, t)[1] for t in tests}
    assert "target = torch.tensor([0, 0], dtype=torch.int64)" in snippets["test_sum_ce"], snippets["test_sum_ce"]
    assert "dtype=torch.int64)" in snippets["test_sum_nll"]
    assert "from test_review import BOUND_LAMBDA" in snippets["test_bound_lambda"]
    assert "loss_fn = partial(scaled_mse, k=3.0)" in snippets["test_partial"]
    for unbound in ("test_lambda", "test_partial_of_a_tensor"):
        assert "# loss_fn = ...  <- supply the loss here" in snippets[unbound]
    ran = subprocess.run([PYTHON, "-c", RUN_SNIPPETS], input=json.dumps(snippets), cwd=proj, capture_output=True,
                         text=True, timeout=120, check=True)
    results = json.loads(ran.stdout)
    for test in ("test_sum_ce", "test_sum_ce_gradient", "test_sum_nll", "test_bound_lambda", "test_partial"):
        status, printed = results[test]
        assert status == "ok", (test, status, snippets[test])
        row = next(r for r in _rows(doc, test) if r["status"] == "fail")
        measured = re.search(r"framework ([-0-9.e]+)", row["message"])
        if measured:   # the snippet reproduces the value the check measured
            value = float(re.search(r"tensor\(([-0-9.e]+)", printed).group(1))
            assert value == pytest.approx(float(measured.group(1)), rel=1e-3), (test, printed, row["message"])
    for test in ("test_lambda", "test_partial_of_a_tensor"):   # valid code, waiting for the loss
        assert results[test][0] == "NameError: name 'loss_fn' is not defined", results[test]


def test_compat_on_a_user_loss_uses_the_references_pairing(project):
    parent, proj, output, doc = project
    softmax, good = _rows(doc, "test_compat_softmax"), _rows(doc, "test_compat_good")
    # one deterministic float64 analysis per loss (as nightly runs compat), not one per dtype
    assert [(r["property"], r["dtype"], r["status"], r["code"]) for r in softmax] == \
        [("compat", "float64", "warn", "A002")], softmax
    assert "behaves as torch.nn.CrossEntropyLoss fed softmax(scores): floor" in softmax[0]["message"]
    assert [(r["status"], r["code"]) for r in good] == [("pass", "")], good
    assert "takes no activated scores" not in output


@pytest.mark.parametrize("test, message", [
    ("test_bad_dtypes", "losscheck(dtypes=...): unknown value 'float8'; expected float64, float32, float16, bfloat16"),
    ("test_bad_devices", "losscheck(devices=...): unknown device 'tpu'; expected cpu, cuda or cuda:N"),
    ("test_negative_examples", "losscheck(examples=...) must be an integer >= 1, got '-5'"),
    ("test_zero_examples", "losscheck(examples=...) must be an integer >= 1, got '0'"),
])
def test_fixture_arguments_are_validated_as_the_options_are(project, test, message):
    parent, proj, output, doc = project
    section = output.split(f"_ {test} _", 1)[1].split("\n_", 1)[0]
    assert f"E       losscheck.pytest_support.LosscheckFailure: {message}\n" in section, section
    assert not _rows(doc, test)


def test_replay_command_works_from_the_invocation_directory(project):
    parent, proj, output, doc = project
    command, _ = _snippet(output, "test_sum_mse")
    assert command == "pytest proj/test_review.py::test_sum_mse --losscheck-seed 0 --losscheck-examples 3"
    assert all(r["repro"] == command for r in _rows(doc, "test_sum_mse") if r["status"] == "fail")
    replay = _pytest(command.split()[1:], cwd=parent)
    assert replay.returncode == 1 and "1 failed" in replay.stdout, replay.stdout[-2000:]


def test_report_directory_is_replaced_as_a_set(project):
    parent, proj, output, doc = project
    assert not (parent / "out" / "repro" / "stale-from-an-earlier-run.py").exists()
    assert (parent / "out" / "repro").is_dir()


def test_collect_only_writes_no_report(pytester):
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    out = pytester.path / "out"
    out.mkdir()
    (out / "report.json").write_text("the previous report")
    result = pytester.runpytest_inprocess("-p", "no:asyncio", "--collect-only", "--losscheck-report", "out")
    assert result.ret == 0
    assert (out / "report.json").read_text() == "the previous report"
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


CRASHING = '''
import ctypes

import pytest


def mse(input, target):
    return ((input - target) ** 2).mean()


@pytest.mark.parametrize("i", range(3))
def test_good(losscheck, i):
    losscheck(mse, reference="torch.nn.MSELoss", name=f"mse_{i}", properties=["value"], dtypes=["float64"])


def test_zz_crash():
    ctypes.string_at(0)
'''


def test_xdist_worker_crash_keeps_the_finished_rows_and_is_reported(pytester):
    """The rows of the tests a worker finished reach the controller with their reports; the worker
    that went down is named in the summary and recorded in the report."""
    needs("torch")
    needs("xdist")
    pytester.makepyfile(test_crashing=CRASHING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", "--losscheck-examples", "3",
                                           "--losscheck-report", "out")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "3 checks in 3 tests: 3 passed (seed 0*",
        "xdist worker gw0 went down while running test_crashing.py::test_zz_crash (*): any losscheck checks of "
        "that test are missing from these results; the report lists it under selection.workers_down"])
    doc = json.loads((pytester.path / "out" / "report.json").read_text())
    assert sorted(r["id"] for r in doc["results"]) == ["mse_0", "mse_1", "mse_2"]
    (down,) = doc["selection"]["workers_down"]
    assert (down["worker"], down["test"]) == ("gw0", "test_crashing.py::test_zz_crash")
