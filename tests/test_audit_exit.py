"""`losscheck audit` exit codes and the report when the audit is stopped: bad options exit 2 with a
report still written; an audit that checked nothing, or ignored what the command line asked for,
is not a pass; SIGTERM and SIGINT end it promptly with what finished; a worker that dies is not
blamed on memory unless memory killed it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from losscheck.audit import report
from losscheck.frameworks import installed

ROOT = Path(__file__).resolve().parents[1]
needs_torch = pytest.mark.skipif(not installed("torch"), reason="torch is not installed")

GOOD = """
import torch

def good_loss(pred, target):
    return ((pred - target) ** 2).mean()
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def command(*args) -> list[str]:
    return [sys.executable, "-m", "losscheck.cli", "audit", *map(str, args)]


def audit(cwd: Path, *args, timeout: float = 300) -> tuple[int, dict, list[str]]:
    """Run the audit with a JSON report; (exit code, report, stderr lines)."""
    out = cwd / "report.json"
    proc = subprocess.run(command(*args, "--output", out), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    doc = json.loads(out.read_text())
    assert report.validate(doc) == [], report.validate(doc)
    return proc.returncode, doc, proc.stderr.strip().splitlines()


@pytest.mark.parametrize("option, words", [
    (["--seed", "-1"], "bad option --seed -1: must be at least 0"),
    (["--timeout", "inf"], "bad option --timeout inf: must be a number of seconds"),
    (["--timeout", "1e12"], "bad option --timeout 1e+12"),
    (["--memory", "10000000000000"], "bad option --memory 10000000000000: must be from 256"),
    (["--output", "{dir}"], "it is a directory"),
    (["--output", "/proc/losscheck/r.json"], "bad option --output /proc/losscheck/r.json: cannot write in"),
])
def test_a_bad_option_exits_2_in_one_line_and_the_other_report_is_written(tmp_path, option, words):
    path = write(tmp_path, "good.py", GOOD)
    option = [o.format(dir=tmp_path) for o in option]
    code, doc, err = audit(tmp_path, path, *option)
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert doc["summary"]["exit_code"] == 2 and words in doc["summary"]["could_not_audit"][0]


@needs_torch
def test_select_across_a_directory_needs_the_name_in_one_file_only(tmp_path):
    (tmp_path / "pkg").mkdir()
    write(tmp_path / "pkg", "a.py", GOOD)
    write(tmp_path / "pkg", "b.py", GOOD.replace("good_loss", "other_loss"))
    write(tmp_path / "pkg", "util.py", "x = 1\n")
    code, doc, err = audit(tmp_path, tmp_path / "pkg", "--select", "good_loss", "--examples", "2")
    assert code == 0 and not err, err
    assert [e["name"] for e in doc["losses"]] == ["good_loss"] and doc["losses"][0]["status"] == "pass"
    code, doc, err = audit(tmp_path, tmp_path / "pkg", "--select", "missing_loss")
    assert code == 2 and err and all("no loss named missing_loss" in line for line in err), err


@needs_torch
@pytest.mark.parametrize("extra, words", [
    ([], "no loss could be checked (my_loss: no framework found"),
    (["--framework", "torch", "--inputs", "x=reals(N),y=reals(N)"], "--inputs does not fit it"),
    (["--framework", "torch", "--reference", "custom.graph_cosine_loss"],
     "--reference custom.graph_cosine_loss not checked"),
])
def test_an_audit_that_did_not_do_what_was_asked_is_not_a_pass(tmp_path, extra, words):
    write(tmp_path, "helper.py", "import torch\n\ndef base(p, t):\n    return ((p - t) ** 2).mean()\n")
    path = write(tmp_path, "user.py", "from helper import base\n\ndef my_loss(pred, target):\n"
                                      "    return base(pred, target)\n")
    code, doc, err = audit(tmp_path, path, "--examples", "2", *extra)
    assert code == 2 and any(words in line for line in err), err
    assert doc["summary"]["exit_code"] == 2


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (the audit's workers inherit the CLI's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(directory):
                found.append(int(pid))
        except OSError:
            pass
    return found


@needs_torch
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the worker")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_ends_the_audit_promptly_with_what_finished(tmp_path, sig):
    mark = tmp_path / "sleeping"
    path = write(tmp_path, "slow.py", GOOD + f"""

def slow_loss(pred, target):
    import time
    open({str(mark)!r}, "w").close()
    time.sleep(1000)
    return ((pred - target) ** 2).mean()
""")
    out = tmp_path / "report.json"
    proc = subprocess.Popen(command(path, "--examples", "2", "--timeout", "300", "--output", out), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 240
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "slow_loss never started"
            time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
        assert time.monotonic() - sent < 10
    finally:
        proc.kill()
    doc = json.loads(out.read_text())
    assert proc.returncode == 2 and f"interrupted ({sig.name})" in stderr
    assert [(e["name"], e["status"]) for e in doc["losses"]] == [("good_loss", "pass")]
    assert doc["files"][0]["status"] == "error" and "interrupted after 1 of 2" in doc["files"][0]["reason"]
    time.sleep(0.5)
    assert _processes_in(tmp_path) == [], "the worker outlived the audit"


@needs_torch
def test_a_worker_that_exits_is_not_blamed_on_memory_and_its_files_are_removed(tmp_path):
    spot = tmp_path / "tmpdir.txt"
    path = write(tmp_path, "closing.py", GOOD + f"""

def tmp_loss(pred, target):
    import tempfile
    with open({str(spot)!r}, "w") as f:
        f.write(tempfile.mkdtemp())
    return ((pred - target) ** 2).mean()


def close_loss(pred, target):
    import sys
    sys.stdout.close()
    return ((pred - target) ** 2).mean()
""")
    code, doc, err = audit(tmp_path, path, "--examples", "2")
    closed = next(e for e in doc["losses"] if e["name"] == "close_loss")
    execution = [c for c in closed["checks"] if c["check"] == "execution"]
    assert execution and execution[0]["code"] == "X004", closed["checks"]
    assert "I/O operation on closed file" in execution[0]["message"]
    assert "out-of-memory" not in execution[0]["message"]
    # the worker's temporary directory (TensorFlow leaves autograph files there) is gone
    made = Path(spot.read_text())
    assert made.parent.name.startswith("losscheck-audit-tmp-") and not made.parent.exists()
    # every finding carries the command that audits its loss again
    assert all(c["repro"].startswith("losscheck audit ") for e in doc["losses"] for c in e["checks"]
               if c["status"] in ("fail", "warn"))
