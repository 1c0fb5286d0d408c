"""`losscheck list` and `losscheck check`: output, JSON report, exit codes."""
import json
import os
import subprocess
import sys

import pytest


def losscheck(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "losscheck.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_list_shows_every_framework():
    out = losscheck("list")
    assert out.returncode == 0
    for name in ("torch.nn.MSELoss", "keras.losses.Huber", "optax.losses.l2_loss"):
        assert name in out.stdout


def test_unknown_id_is_a_one_line_error_with_the_closest_matches():
    out = losscheck("check", "torch.nn.MSELos")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "unknown loss id 'torch.nn.MSELos'" in out.stderr and "torch.nn.MSELoss" in out.stderr


@pytest.mark.parametrize("args", [[], ["--all", "torch.nn.MSELoss"], ["torch.nn.MSELoss", "--examples", "0"],
                                  ["torch.nn.MSELoss", "--runtime", "cuda-torch"]])
def test_bad_usage_exits_2(args):
    out = losscheck("check", *args)
    assert out.returncode == 2, out.stderr
    assert "losscheck: error:" in out.stderr


@pytest.mark.parametrize("where", ["/proc/losscheck/r.json", "{dir}"])
def test_an_unwritable_json_path_exits_2_in_one_line_before_any_check(tmp_path, where):
    out = losscheck("check", "torch.nn.MSELoss", "--examples", "2", "-q", "--json", where.format(dir=tmp_path))
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("losscheck: error: --json ") and not out.stdout


def test_an_unwritable_report_directory_exits_2_in_one_line_before_any_check(tmp_path):
    """A nightly found an unwritable --output only after its last check: now before the first."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    out_dir = str(blocker / "reports")   # under a regular file: no directory can be made there
    out = losscheck("nightly", "--framework", "torch", "--examples", "1", "--no-history", "--output", out_dir, "-q")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith(f"losscheck: error: --output {out_dir}: cannot write in") and not out.stdout


def test_check_writes_a_versioned_json_report(tmp_path):
    pytest.importorskip("torch")
    report = tmp_path / "r.json"
    out = losscheck("check", "torch.nn.MSELoss", "torch.nn.functional.l1_loss", "--examples", "5", "-q",
                    "--json", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(report.read_text())
    assert doc["schema_version"] == 2 and doc["versions"]["torch"].startswith("2.")
    assert {r["id"] for r in doc["results"]} == {"torch.nn.MSELoss", "torch.nn.functional.l1_loss"}
    assert {r["status"] for r in doc["results"]} == {"pass"}
    assert len(doc["results"]) == 2 * 2 * 2  # properties x dtypes


def test_failures_exit_1_and_print_the_smallest_input(tmp_path):
    """A planted sum-for-mean bug registered as a catalog module fails with V002 and a repro line."""
    pytest.importorskip("torch")
    plugin = tmp_path / "planted_catalog.py"
    plugin.write_text(
        "from losscheck.catalog.spec import Arg, LossSpec\n"
        "from losscheck.catalog.build import drawer\n"
        "from losscheck.catalog.inputs import pair\n"
        "from losscheck.reference import regression as R\n"
        "SPECS = [LossSpec(id='planted.mse_sum', framework='torch', family='regression', reference='-',\n"
        "    args=(Arg('input', 'predictions'), Arg('target', 'targets')), draw=drawer({}, pair('input', 'target')),\n"
        "    call=lambda ns, p: (lambda input, target: ((input - target) ** 2).sum()),\n"
        "    oracle=lambda c: R.squared_error(c.inputs['input'], c.inputs['target'], reduction='mean'))]\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOSSCHECK_CATALOG": "planted_catalog"}
    out = subprocess.run([sys.executable, "-m", "losscheck.cli", "check", "planted.mse_sum", "--examples", "20", "-q",
                          "--property", "value", "--dtype", "float64"], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "V002" in out.stdout and "smallest input" in out.stdout and "reproduce: losscheck check" in out.stdout


def test_a_check_that_kills_its_worker_is_reported_and_the_run_goes_on(tmp_path):
    """A loss that segfaults its process (as a framework bug does) breaks the stdlib process pool; the
    runner reruns the checks it took down, isolates the one that kills its process, and reports only it."""
    pytest.importorskip("torch")
    (tmp_path / "planted_crash.py").write_text(
        "import ctypes\n"
        "from losscheck.catalog.spec import Arg, LossSpec\n"
        "from losscheck.catalog.build import drawer\n"
        "from losscheck.catalog.inputs import pair\n"
        "from losscheck.reference import regression as R\n"
        "def spec(i, crash):\n"
        "    def call(ns, p):\n"
        "        def loss(input, target):\n"
        "            if crash:\n"
        "                ctypes.string_at(0)  # a segmentation fault\n"
        "            return ((input - target) ** 2).mean()\n"
        "        return loss\n"
        "    return LossSpec(id=f'planted.mse_{i}', framework='torch', family='regression', reference='-',\n"
        "        args=(Arg('input', 'predictions'), Arg('target', 'targets')), draw=drawer({}, pair('input', 'target')),\n"
        "        call=call, oracle=lambda c: R.squared_error(c.inputs['input'], c.inputs['target'], reduction='mean'))\n"
        "SPECS = [spec(i, crash=(i == 2)) for i in range(5)]\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOSSCHECK_CATALOG": "planted_crash"}
    report = tmp_path / "r.json"
    ids = [f"planted.mse_{i}" for i in range(5)]
    out = subprocess.run([sys.executable, "-m", "losscheck.cli", "check", *ids, "--examples", "3", "-q", "-j", "2",
                          "--property", "value", "--dtype", "float64", "--json", str(report)],
                         capture_output=True, text=True, timeout=600, env=env)
    rows = {r["id"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["planted.mse_2"]["status"] == "error" and "died" in rows["planted.mse_2"]["message"]
    assert all(rows[i]["status"] == "pass" for i in ids if i != "planted.mse_2"), rows
    assert out.returncode == 1


@pytest.mark.parametrize("module", ["losscheck.cli", "losscheck"])
def test_a_reader_that_goes_away_gets_no_traceback(module):
    """`losscheck list | head -1`; `python -m losscheck` is the command too. The pipe holds one page,
    so the listing (tens of kB) cannot fit in it before the reader closes its end."""
    import fcntl

    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", module, "list"], stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        reader.readline()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""
