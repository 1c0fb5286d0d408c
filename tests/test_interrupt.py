"""Stopping a run: `nightly` and `check` answer SIGINT (Ctrl-C, sent to the whole process group) and
SIGTERM by killing their workers and writing the report of what finished, the rest as skip rows, with
the shell's exit status for the signal (130, 143); the history run stays unfinished."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from losscheck import catalog, runner
from losscheck.frameworks import installed

ROOT = Path(__file__).resolve().parents[1]
needs_torch = pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
#: enough examples that no check finishes before the signal
IDS = ["torch.nn.MSELoss", "torch.nn.L1Loss"]
SLOW = ["--examples", "20000", "--runtime", "torch", "--property", "value", "--property", "gradient", "--jobs", "2"]


@needs_torch
def test_stop_ends_the_run_with_a_skip_row_for_every_check_not_finished():
    tasks = runner.plan([catalog.get("torch.nn.MSELoss"), catalog.get("torch.nn.L1Loss")],
                        properties=["value", "gradient"], dtypes=["float64"], runtimes=["torch"])
    timer = threading.Timer(8.0, runner.stop, args=("stopped by the test",))
    timer.start()
    started = time.monotonic()
    try:
        rows, _ = runner.run(tasks, examples=20000, seed=0, jobs=2)
    finally:
        timer.cancel()
        runner._STOPPED.clear()
    assert time.monotonic() - started < 40
    assert len(rows) == len(tasks)
    skipped = [r for r in rows if r["status"] == "skip"]
    assert skipped and all(r["reason"] == "not run: stopped by the test" for r in skipped)
    assert not [r for r in rows if r["status"] == "error"]
    import multiprocessing

    time.sleep(0.5)
    assert multiprocessing.active_children() == []


def _session_processes(sid: int) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":   # the session id; a zombie holds nothing
            found.append(int(pid))
    return found


@needs_torch
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the workers")
@pytest.mark.parametrize("command, sig", [("nightly", signal.SIGINT), ("nightly", signal.SIGTERM),
                                          ("check", signal.SIGTERM)], ids=lambda v: getattr(v, "name", v))
def test_a_signal_writes_the_report_of_what_finished_and_leaves_no_worker(tmp_path, command, sig):
    out = tmp_path / "out"
    if command == "nightly":
        args = ["nightly", *SLOW, "--ids", *IDS, "--output", out, "--history", tmp_path / "h.sqlite", "-q"]
        report = out / "report.json"
    else:
        args = ["check", *IDS, *SLOW, "--json", tmp_path / "check.json", "-q"]
        report = tmp_path / "check.json"
    proc = subprocess.Popen([sys.executable, "-m", "losscheck.cli", *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        time.sleep(8)   # the workers have started (and imported torch) by then
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, sig)   # as Ctrl-C or `timeout` signal the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted ({sig.name})" in err
    doc = json.loads(report.read_text())
    reasons = {r["reason"] for r in doc["results"] if r["status"] == "skip"}
    assert f"not run: the run was interrupted ({sig.name}) before this check finished" in reasons
    assert not [r for r in doc["results"] if r["status"] == "error"]
    time.sleep(0.5)
    assert _session_processes(proc.pid) == [], "workers outlived the run"
    if command == "nightly":
        with sqlite3.connect(tmp_path / "h.sqlite") as db:
            tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
            assert "runs" in tables
            assert [row[0] for row in db.execute("select finished from runs")] == [None]
