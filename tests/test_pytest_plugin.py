"""The pytest plugin (issue 6): a user project's test suite with the plugin loaded from its entry point.

The runs that import torch go through ``runpytest_subprocess`` (a fresh interpreter, as a user's CI
would run it) with 3 examples per check; option parsing and the plugin's helpers are tested in-process.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from losscheck import pytest_messages, pytest_plugin
from losscheck.pytest_support import marker_arguments
from losscheck.report import json_report

pytest_plugins = ["pytester"]

USER_LOSSES = '''
import pytest
import torch


def good_mse(input, target):
    return ((input - target) ** 2).mean()


def buggy_mse(input, target):
    return ((input - target) ** 2).sum()


def test_good(losscheck):
    losscheck(good_mse, reference="torch.nn.MSELoss")


def test_buggy(losscheck):
    losscheck(buggy_mse, reference="torch.nn.MSELoss")
'''

MARKED_LOSSES = '''
import pytest
import torch


def huber(input, target):
    return torch.nn.functional.huber_loss(input, target, delta=0.5)


def huber_default_delta(input, target):
    return torch.nn.functional.huber_loss(input, target)


@pytest.mark.losscheck(reference="torch.nn.HuberLoss", delta=0.5, properties=["value"], dtypes=["float64"])
@pytest.mark.parametrize("loss", [huber, huber_default_delta])
def test_returned(loss):
    return loss


@pytest.mark.losscheck("torch.nn.HuberLoss", delta=0.5, dtypes=["float64"])
def test_fixture_takes_the_marker(losscheck):
    rows = losscheck(huber)
    assert [(r["property"], r["params"]) for r in rows] == [("value", None), ("gradient", None)]
'''

ASYNC_LOSSES = '''
import asyncio

import pytest
import torch


def good_mse(input, target):
    return ((input - target) ** 2).mean()


def buggy_mse(input, target):
    return ((input - target) ** 2).sum()


MSE = dict(reference="torch.nn.MSELoss", properties=["value"], dtypes=["float64"])


@pytest.mark.asyncio
@pytest.mark.losscheck(**MSE)
@pytest.mark.parametrize("loss", [good_mse, buggy_mse])
async def test_asyncio_returned(loss):
    await asyncio.sleep(0)
    return loss


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.losscheck(**MSE)
async def test_anyio_returned():
    await asyncio.sleep(0)
    return buggy_mse


@pytest.mark.asyncio
@pytest.mark.losscheck(**MSE)
async def test_asyncio_fixture(losscheck):
    losscheck(good_mse)


@pytest.mark.asyncio
@pytest.mark.losscheck(**MSE)
async def test_asyncio_body_raises():
    raise RuntimeError("the data loader broke")
'''

PLANTED_CATALOG = '''
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, Expected, LossSpec
from losscheck.reference import regression as R


def mse_sum(ns, params):
    return lambda input, target: ((input - target) ** 2).sum()


def spec(loss_id, expected=()):
    return LossSpec(id=loss_id, framework="torch", family="regression", reference="-",
                    args=(Arg("input", "predictions"), Arg("target", "targets")), draw=drawer({}, pair("input", "target")),
                    call=mse_sum, expected=expected,
                    oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction="mean"))


SPECS = [spec("planted.mse_sum"),
         spec("planted.mse_sum_known", (Expected("sums where the docs say mean", "https://example.org/1"),))]
'''

CATALOG_TESTS = '''
from losscheck import parametrize_catalog


@parametrize_catalog(["torch.nn.MSELoss", "planted.mse_sum", "planted.mse_sum_known"], properties=["value"],
                     dtypes=["float64"])
def test_pinned(losscheck_case):
    pass
'''

SMALL = ("-p", "no:cacheprovider", "--losscheck-examples", "3")
#: the in-process sessions have no ini file, where pytest-asyncio would warn that its loop scope is unset
IN_PROCESS = ("-p", "no:asyncio")


def needs(module: str) -> None:
    """Skip without ``module``, without importing it here (the user projects import it, in subprocesses)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def _report(path) -> dict:
    return json.loads(path.read_text())


def _results(doc: dict) -> list[dict]:
    """The report's rows without what differs between two runs of the same checks (timings)."""
    return [{k: v for k, v in r.items() if k != "duration_s"} for r in doc["results"]]


def _failure_block(output: str, test: str) -> str:
    """The assertion message pytest printed for ``test``'s failure (its ``E`` lines)."""
    section = output.split(f"_ {test} _", 1)[1]
    return "\n".join(line for line in section.splitlines() if line.startswith("E "))


# ---- a user project in a subprocess -----------------------------------------------------------------

def test_correct_loss_passes_and_buggy_loss_fails_with_a_readable_message(pytester):
    needs("torch")
    pytester.makepyfile(test_user_losses=USER_LOSSES)
    result = pytester.runpytest_subprocess(*SMALL, "--losscheck-report", "out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "losscheck: seed 0, replay with --losscheck-seed 0; profile ci, 3 examples per check*",
        "E * losscheck: buggy_mse against torch.nn.MSELoss: 4 of 4 checks failed (seed 0)",
        "E * FAIL value float64 on torch/cpu: V002 reduction is sum, not mean; error 4,503,599,627,370,496 eps, "
        "bound * eps",
        "E *     cause: reduction is sum, not mean: the value is * x the oracle*",
        "E *     smallest input: input=[[]0.0*], target=[[]*]",
        "E *     parameters: reduction='mean'",
        "E * FAIL gradient float64 on torch/cpu: G005 gradient off by a constant factor; error * eps, bound * eps",
        "E *     pytest test_user_losses.py::test_buggy --losscheck-seed 0 --losscheck-examples 3",
        "E *     from test_user_losses import buggy_mse",
        "E *     input = torch.tensor([[]*], dtype=torch.float64)",
        "E *     loss = buggy_mse(input=input, target=target)",
        "*= losscheck =*",
        "8 checks in 2 tests: 4 passed, 4 failed (seed 0; replay with --losscheck-seed 0)",
        "FAILED test_user_losses.py::test_buggy: buggy_mse [[]torch, value, float64, cpu[]] V002 reduction is sum*",
    ])
    assert "test_good" not in result.stdout.str().split("= losscheck =")[1]  # the correct loss has no finding
    doc = _report(pytester.path / "out" / "report.json")
    assert doc["schema_version"] == json_report.SCHEMA_VERSION and doc["seed"] == 0 and doc["examples"] == 3
    assert {p.name for p in (pytester.path / "out").iterdir()} == {"report.json", "report.html", "junit.xml",
                                                                   "summary.md", "repro"}
    assert not any((pytester.path / "out" / "repro").iterdir())   # no catalog failure: no script
    assert "torch" in doc["versions"]
    by_test = {}
    for r in doc["results"]:
        by_test.setdefault(r["nodeid"], set()).add(r["status"])
    assert by_test == {"test_user_losses.py::test_buggy": {"fail"}, "test_user_losses.py::test_good": {"pass"}}
    assert all(r["repro"].startswith("pytest test_user_losses.py::test_buggy --losscheck-seed 0")
               for r in doc["results"] if r["status"] == "fail")


JAX_LOSSES = '''
import jax.numpy as jnp


def squared(predictions, targets):
    return (predictions - targets) ** 2


def branchy_squared(predictions, targets):
    if jnp.any(jnp.isnan(predictions)):
        return jnp.full_like(predictions, jnp.nan)
    return (predictions - targets) ** 2


def test_jittable(losscheck):
    losscheck(squared, reference="optax.losses.squared_error")


def test_not_jittable(losscheck):
    losscheck(branchy_squared, reference="optax.losses.squared_error")
'''


def test_a_jax_loss_that_jit_cannot_trace_fails_the_test_with_x010(pytester):
    """Eagerly its value and gradient are right; the compiled check (on by default for JAX) fails."""
    needs("jax")
    pytester.makepyfile(test_jax_losses=JAX_LOSSES)
    result = pytester.runpytest_subprocess(*SMALL, "--losscheck-report", "out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E * FAIL compiled float64 on jax/cpu: X010 fails when compiled as training runs it*",
                                 "*TracerBoolConversionError*use jnp.where or jax.lax.cond*"])
    rows = _report(pytester.path / "out" / "report.json")["results"]
    got = {(r["nodeid"].split("::")[1], r["property"], r["status"]) for r in rows}
    assert ("test_not_jittable", "compiled", "fail") in got and ("test_not_jittable", "value", "pass") in got
    assert {s for t, p, s in got if t == "test_jittable"} == {"pass"} and ("test_jittable", "compiled", "pass") in got


KERAS_LOSSES = '''
from keras import ops


def guarded_mse(y_true, y_pred):
    if ops.any(ops.isnan(y_pred)):
        raise ValueError("NaN predictions")
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def test_fails_in_fit(losscheck):
    losscheck(guarded_mse, reference="keras.losses.mean_squared_error", dtypes=["float32"])
'''


@pytest.mark.slow
def test_a_keras_loss_that_fails_in_fit_fails_the_test_with_x010_and_a_fit_like_snippet(pytester):
    needs("tensorflow")
    pytester.makepyfile(test_keras_losses=KERAS_LOSSES)
    result = pytester.runpytest_subprocess(*SMALL)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E * FAIL compiled float32 on keras-tensorflow/cpu: X010 fails when compiled as training runs it*",
        "*OperatorNotAllowedInGraphError*use tf.where or tf.cond*",
        "E *loss = tf.function(lambda y_true, y_pred: guarded_mse(y_true=y_true, y_pred=y_pred), autograph=False, "
        "input_signature=[[]tf.TensorSpec([[]None, *y_true.shape[[]1:[]][]], y_true.dtype)*"])
    assert "FAIL value" not in result.stdout.str() and "FAIL gradient" not in result.stdout.str()


KERAS_LOSS_OBJECTS = '''
import keras
from keras import ops

class MyMSE(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

def test_default_dtype(losscheck):
    losscheck(MyMSE(), reference="keras.losses.MeanSquaredError", properties=["value"])

def test_float64_dtype(losscheck):
    losscheck(MyMSE(dtype="float64"), reference="keras.losses.MeanSquaredError", properties=["value"])
'''


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_a_keras_loss_object_made_in_float32_is_d001_with_what_to_do(pytester, monkeypatch, backend):
    """A Keras Loss object computes in the dtype it was built with (float32 unless floatx was float64 then):
    on TensorFlow that is the user's to fix (dtype='float64'); on jax and torch Keras' reduction computes
    float64 losses in float32 whatever the object's dtype: a deviation, as for the catalog's own losses."""
    needs("tensorflow" if backend == "tensorflow" else "torch")
    monkeypatch.setenv("KERAS_BACKEND", backend)
    pytester.makepyfile(test_keras_objects=KERAS_LOSS_OBJECTS)
    result = pytester.runpytest_subprocess(*SMALL)
    if backend == "tensorflow":
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["E * FAIL value float64 on keras-tensorflow/cpu: D001 computed at lower precision*",
                                     "E *cause: float64 inputs computed in float32: the value is right to float32's "
                                     "precision*build it with dtype='float64'*"])
    else:
        result.assert_outcomes(passed=2)
        assert "2 deviations" in result.stdout.str()


def test_marker_checks_the_returned_loss_with_its_parameters(pytester):
    needs("torch")
    pytester.makepyfile(test_marked=MARKED_LOSSES)
    result = pytester.runpytest_subprocess(*SMALL)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_returned?huber_default_delta? _*",
        "losscheck: huber_default_delta against torch.nn.HuberLoss: 1 of 1 checks failed (seed 0)",
        "FAIL value float64 on torch/cpu: V001 value disagrees with the reference; error * eps, bound * eps",
        "    parameters: *delta=0.5*",  # the marker's delta pinned the oracle's
        "    loss = huber_default_delta(input=input, target=target)",
        "4 checks in 3 tests: 3 passed, 1 failed (seed 0; replay with --losscheck-seed 0)",
    ])
    assert "test_returned[huber]" not in result.stdout.str().split("short test summary info")[1]


def test_marked_async_tests_check_the_loss_their_coroutine_returns(pytester):
    """pytest-asyncio and anyio run the body and drop what it returns; the plugin keeps it."""
    needs("torch")
    pytest.importorskip("pytest_asyncio")
    pytest.importorskip("anyio")
    pytester.makepyfile(test_async=ASYNC_LOSSES)
    result = pytester.runpytest_subprocess(*SMALL)
    result.assert_outcomes(passed=2, failed=3)
    out = result.stdout.str()
    for failed in ("test_asyncio_returned[buggy_mse]", "test_anyio_returned"):
        title = failed.replace("[", "?").replace("]", "?")
        result.stdout.fnmatch_lines([f"*_ {title} _*",
                                     "losscheck: buggy_mse against torch.nn.MSELoss: 1 of 1 checks failed (seed 0)",
                                     "FAIL value float64 on torch/cpu: V002 reduction is sum, not mean*"])
    result.stdout.fnmatch_lines(["*RuntimeError: the data loader broke*"])
    assert "returned NoneType" not in out
    # without an async plugin, pytest's own verdict on an async test (no losscheck message)
    plain = pytester.runpytest_subprocess(*SMALL, "-p", "no:asyncio", "-p", "no:anyio", "-k", "body_raises")
    plain.assert_outcomes(failed=1)
    plain.stdout.fnmatch_lines(["*async def functions are not natively supported*"])
    assert "losscheck" not in plain.stdout.str().split("short test summary info")[-1]


def test_catalog_cases_pin_the_frameworks_behaviour(pytester, monkeypatch):
    """A failure fails its test; a scoped expected failure passes with a note; an unknown id is a
    collection error naming the closest ids."""
    needs("torch")
    pytester.makepyfile(planted_catalog=PLANTED_CATALOG, test_catalog=CATALOG_TESTS)
    monkeypatch.setenv("LOSSCHECK_CATALOG", "planted_catalog")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess(*SMALL, "-v", "--losscheck-report", "out")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_pinned?torch.nn.MSELoss-torch-value-float64? PASSED*",
        "*test_pinned?planted.mse_sum-torch-value-float64? FAILED*",
        "*test_pinned?planted.mse_sum_known-torch-value-float64? PASSED*",
        "*    losscheck check planted.mse_sum --runtime torch --property value --dtype float64 --seed 0 --examples 3",
        "3 checks in 3 tests: 1 passed, 1 failed, 1 expected failures (seed 0*",
        "XFAIL test_catalog.py::test_pinned?planted.mse_sum_known-torch-value-float64?: planted.mse_sum_known "
        "[[]torch, value, float64, cpu[]] V002 expected: sums where the docs say mean (https://example.org/1)",
    ])
    written = {str(p.relative_to(pytester.path / "out")) for p in (pytester.path / "out").rglob("*") if p.is_file()}
    assert written == {"report.json", "report.html", "junit.xml", "summary.md",  # the CLI's report set
                       "repro/planted.mse_sum-torch-value-float64-cpu.py",
                       "repro/planted.mse_sum_known-torch-value-float64-cpu.py"}


def test_options_and_ini_settings_take_effect(pytester):
    """The ini twins set the examples, dtypes, profile and report directory; the command line wins."""
    needs("torch")
    pytester.makepyfile(test_user_losses=USER_LOSSES)
    pytester.makeini("[pytest]\nlosscheck_examples = 2\nlosscheck_dtype = float32\nlosscheck_profile = nightly\n"
                     "losscheck_report = ini_reports\nlosscheck_device = cpu,cuda\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--losscheck-seed", "7", "-k", "good")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["losscheck: seed 7, replay with --losscheck-seed 7; profile nightly, 2 examples per "
                                 "check, dtypes float32, devices cpu,cuda, report */ini_reports"])
    doc = _report(pytester.path / "ini_reports" / "report.json")
    assert (doc["seed"], doc["examples"]) == (7, 2)
    assert {(r["dtype"], r["seed"]) for r in doc["results"]} == {("float32", 7)}
    assert all(r["examples"] <= 2 for r in doc["results"])
    on_gpu = {r["status"] for r in doc["results"] if r["device"] == "cuda"}
    assert {r["status"] for r in doc["results"] if r["device"] == "cpu"} == {"pass"}
    assert on_gpu == ({"pass"} if json_report.gpu_names() else {"skip"})  # no GPU: skipped, with the reason
    assert all(r["reason"] == "no cuda device for torch on this machine"
               for r in doc["results"] if r["status"] == "skip")


def test_xdist_merges_workers_into_the_serial_report(pytester):
    needs("torch")
    needs("xdist")
    pytester.makepyfile(test_user_losses=USER_LOSSES)
    serial = pytester.runpytest_subprocess(*SMALL, "--losscheck-report", "serial")
    parallel = pytester.runpytest_subprocess(*SMALL, "--losscheck-report", "parallel", "-n", "2")
    serial.assert_outcomes(passed=1, failed=1)
    parallel.assert_outcomes(passed=1, failed=1)
    assert "2 workers" in parallel.stdout.str()
    one, two = _report(pytester.path / "serial" / "report.json"), _report(pytester.path / "parallel" / "report.json")
    assert len(one["results"]) == 8 and _results(one) == _results(two)
    assert one["versions"] == two["versions"]

    def summary(result):
        return result.stdout.str().split("= losscheck =")[1].split("wrote")[0].strip().splitlines()[1:]
    assert summary(serial) == summary(parallel)


def test_the_printed_seed_replays_the_same_failure(pytester):
    """A nightly run draws a fresh seed; the reproducer it prints gives the same failure."""
    needs("torch")
    pytester.makepyfile(test_user_losses=USER_LOSSES)
    first = pytester.runpytest_subprocess(*SMALL, "--losscheck-profile", "nightly", "--losscheck-report", "first")
    first.assert_outcomes(passed=1, failed=1)
    seed = int(re.search(r"losscheck: seed (\d+) \(fresh for this run\)", first.stdout.str()).group(1))
    command = re.search(r"E\s+(pytest test_user_losses.py::test_buggy .*)", first.stdout.str()).group(1)
    assert command == f"pytest test_user_losses.py::test_buggy --losscheck-seed {seed} --losscheck-examples 3"
    replay = pytester.runpytest_subprocess("-p", "no:cacheprovider", *command.split()[1:],
                                           "--losscheck-report", "replay")
    replay.assert_outcomes(failed=1)
    assert f"losscheck: seed {seed}, replay" in replay.stdout.str()
    assert _failure_block(replay.stdout.str(), "test_buggy") == _failure_block(first.stdout.str(), "test_buggy")
    failing = [r for r in _results(_report(pytester.path / "first" / "report.json")) if r["status"] == "fail"]
    assert failing == _results(_report(pytester.path / "replay" / "report.json"))


def test_users_hypothesis_tests_and_example_database_keep_working(pytester, monkeypatch):
    """The checks use no example database; a user's own @given test still saves and replays its
    failing example in .hypothesis/examples with the plugin loaded."""
    needs("torch")
    from hypothesis._settings import _CI_VARS
    for name in _CI_VARS:  # under CI Hypothesis loads its "ci" profile, which has no database
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_user_losses=USER_LOSSES, test_property='''
from hypothesis import given, settings, strategies as st

@settings(max_examples=200)
@given(st.integers(0, 10_000))
def test_user_property(x):
    assert x < 1000
''')
    losscheck_only = pytester.runpytest_subprocess(*SMALL, "-k", "buggy")
    losscheck_only.assert_outcomes(failed=1)
    database = pytester.path / ".hypothesis" / "examples"
    assert not database.exists() or not any(database.iterdir())
    user = pytester.runpytest_subprocess(*SMALL, "-k", "user_property")
    user.assert_outcomes(failed=1)
    user.stdout.fnmatch_lines(["E * test_user_property(", "E *x=1000,"])  # the shrunk failing example
    assert any(database.iterdir())  # saved for the next run to replay first


# ---- in-process: option validation, helpers, import weight ---------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--losscheck-profile", "weekly"], "unknown profile 'weekly'; expected ci, nightly"),
    (["--losscheck-examples", "0"], "--losscheck-examples must be an integer >= 1, got '0'"),
    (["--losscheck-dtype", "float8"], "unknown value 'float8'"),
    (["--losscheck-device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    result = pytester.runpytest_inprocess(*IN_PROCESS, "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_command_line_wins_over_the_ini_file(pytester):
    pytester.makeini("[pytest]\nlosscheck_examples = 2\nlosscheck_device = cuda\nlosscheck_profile = nightly\n")
    result = pytester.runpytest_inprocess(*IN_PROCESS, "--collect-only", "--losscheck-examples", "4",
                                          "--losscheck-dtype", "float64,bfloat16")
    result.stdout.fnmatch_lines(["losscheck: seed * (fresh for this run), replay with --losscheck-seed *; "
                                 "profile nightly, 4 examples per check, dtypes float64,bfloat16, devices cuda"])


def test_dtype_names_match_the_tolerance_model():
    from losscheck.tolerance import DTYPES

    assert pytest_plugin.DTYPES == DTYPES


def test_plugin_module_imports_nothing_heavy():
    code = "import losscheck.pytest_plugin, sys; print(' '.join(sys.modules))"
    loaded = {m.split(".")[0] for m in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                      check=True).stdout.split()}
    heavy = {"numpy", "hypothesis", "pandas", "rich", "torch", "tensorflow", "keras", "jax", "optax"}
    assert not loaded & heavy, loaded & heavy


def test_inputs_become_python_literals_that_evaluate_back():
    value = [[0.5, float("inf")], [-float("inf"), 1e-300]]
    assert eval(pytest_messages.literal(value)) == value
    assert pytest_messages.literal([1, 2]) == "[1, 2]"
    assert "float('nan')" in pytest_messages.literal([float("nan")])


def test_reproducer_calls_the_loss_the_way_the_check_did():
    def keras_style(y_true, y_pred):
        return y_pred

    def positional(a, b):
        return a

    assert pytest_messages.call_expression(keras_style, ["input", "target"], None) == \
        "keras_style(y_pred=input, y_true=target)"
    assert pytest_messages.call_expression(positional, ["input", "target"], None) == "positional(input, target)"
    assert pytest_messages.call_expression(positional, ["input", "target"], {"b": "input", "a": "target"}) == \
        "positional(b=input, a=target)"


def test_marker_arguments_merge_closest_first(pytester):
    module = pytester.getmodulecol('''
import pytest
pytestmark = pytest.mark.losscheck(reference="torch.nn.HuberLoss", delta=2.0, examples=5)

@pytest.mark.losscheck(delta=0.5, params={"reduction": "sum"}, dtypes=["float32"])
def test_func():
    pass
''', configargs=IN_PROCESS)
    (item,) = pytester.genitems([module])
    assert marker_arguments(item) == {"reference": "torch.nn.HuberLoss", "examples": 5, "dtypes": ["float32"],
                                      "params": {"delta": 0.5, "reduction": "sum"}}


def test_parametrize_catalog_rejects_unknown_ids_and_empty_selections():
    from losscheck import parametrize_catalog

    with pytest.raises(ValueError, match="unknown loss id 'torch.nn.MSELosss'; closest: torch.nn.MSELoss"):
        parametrize_catalog(["torch.nn.MSELosss"])
    with pytest.raises(ValueError, match="select no catalog check"):
        parametrize_catalog(["torch.nn.MSELoss"], framework="keras")
