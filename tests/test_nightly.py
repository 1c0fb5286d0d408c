"""`losscheck nightly`, `merge` and `report`: sharding, end to end on a tiny selection, merging shards
(written concurrently into one history) into the unsharded report, and a nightly killed mid-run."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from losscheck import catalog, cli, nightly, runner
from losscheck.history import History

PLANTED = '''
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.reference import regression as R


def mse_sum(ns, params):
    return lambda input, target: ((input - target) ** 2).sum()


SPECS = [LossSpec(id="planted.mse_sum", framework="torch", family="planted", reference="regression.squared_error",
                  args=(Arg("input", "predictions"), Arg("target", "targets")),
                  draw=drawer({}, pair("input", "target")), call=mse_sum, oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"]))]
'''


def losscheck(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losscheck.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def planted_env(tmp_path) -> dict:
    (tmp_path / "planted_catalog.py").write_text(PLANTED)
    return {**os.environ, "PYTHONPATH": str(tmp_path), "LOSSCHECK_CATALOG": "planted_catalog"}


def comparable(rows):
    return [{k: v for k, v in r.items() if k != "duration_s"} for r in rows]


# ---- sharding ------------------------------------------------------------------------------------------

def test_shards_partition_every_task_exactly_and_stably():
    tasks = runner.plan(catalog.all_specs(), properties=nightly.PROPERTIES, dtypes=nightly.DTYPES)
    tasks += runner.plan(catalog.all_specs()[:10], properties=["value"], dtypes=["float32"], device="cuda")
    assert len(set(tasks)) == len(tasks) > 1000
    for n in (1, 2, 3, 7):
        shards = [nightly.in_shard(tasks, i, n) for i in range(1, n + 1)]
        assert sum(len(s) for s in shards) == len(tasks)                    # disjoint ...
        assert set().union(*map(set, shards)) == set(tasks)                # ... and complete
        assert min(len(s) for s in shards) > 0.8 * len(tasks) / n          # a hash spreads them evenly
        shuffled = random.Random(n).sample(tasks, len(tasks))
        assert [set(nightly.in_shard(shuffled, i, n)) for i in range(1, n + 1)] == list(map(set, shards))
        assert set(nightly.in_shard(tasks[: len(tasks) // 2], 1, n)) <= set(shards[0])   # independent of the list


@pytest.mark.parametrize("shard", ["0/3", "4/3", "x", "1/0"])
def test_a_bad_shard_is_a_usage_error(shard, capsys):
    assert cli.main(["nightly", "--ids", "torch.nn.MSELoss", "--shard", shard, "--no-history"]) == 2
    assert "--shard" in capsys.readouterr().err


# ---- end to end -----------------------------------------------------------------------------------------

def test_nightly_shards_merge_into_the_unsharded_report(tmp_path, capsys):
    """One unsharded nightly and its three shards, run at the same time (the shards writing one
    history database); `merge` of the shards equals the unsharded report row for row."""
    pytest.importorskip("torch")
    env = planted_env(tmp_path)
    shared_db = tmp_path / "shards.sqlite"
    History.open(str(shared_db)).close()
    base = ["nightly", "--ids", "planted.mse_sum", "torch.nn.MSELoss", "torch.nn.L1Loss", "--property", "value",
            "--property", "gradient", "--examples", "2", "-q", "-j", "1"]
    runs = {name: subprocess.Popen([sys.executable, "-m", "losscheck.cli", *map(str, base), "--output",
                                    tmp_path / name, *map(str, extra)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
            for name, extra in (("all", ["--history", tmp_path / "all.sqlite"]),
                                *((f"s{i}", ["--shard", f"{i}/3", "--history", shared_db]) for i in (1, 2, 3)))}
    outputs = {name: proc.communicate(timeout=300)[0] for name, proc in runs.items()}
    docs = {}
    for name, proc in runs.items():
        docs[name] = json.loads((tmp_path / name / "report.json").read_text())
        failing = any(r["status"] == "fail" for r in docs[name]["results"])
        assert proc.returncode == (1 if failing else 0), f"{name}: {outputs[name]}"   # first night: failures are new

    whole = docs["all"]
    assert whole["schema_version"] == 2 and len(whole["results"]) == 3 * 2 * 2
    assert "NEW FAIL planted.mse_sum" in outputs["all"]
    for name in nightly.REPORT_FILES:
        assert (tmp_path / "all" / name).stat().st_size > 0
    failing = [r for r in whole["results"] if r["status"] == "fail"]
    assert {r["id"] for r in failing} == {"planted.mse_sum"}
    assert sorted(os.listdir(tmp_path / "all" / "repro")) == sorted(Path(r["repro_script"]).name for r in failing)

    merged = losscheck("merge", tmp_path / "merged", *(tmp_path / f"s{i}" for i in (1, 2, 3)), env=env)
    assert merged.returncode == 1, merged.stdout + merged.stderr      # the planted failure is new in its shard
    combined = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert comparable(combined["results"]) == comparable(whole["results"])      # row for row
    assert combined["summary"] == whole["summary"]
    assert sorted(combined["selection"]["merged"]) == ["1/3", "2/3", "3/3"]
    for name in nightly.REPORT_FILES:
        assert (tmp_path / "merged" / name).exists()
    assert sorted(os.listdir(tmp_path / "merged" / "repro")) == sorted(os.listdir(tmp_path / "all" / "repro"))

    # three shards wrote one database at the same time: nothing lost
    with History.open(str(shared_db)) as h:
        finished = h.runs()
        assert h.integrity_ok() and sorted(r["shard"] for r in finished) == ["1/3", "2/3", "3/3"]
        for run in finished:
            shard = f"s{run['shard'][0]}"
            assert len(h.results(run["id"])) == len(docs[shard]["results"]) > 0

    # shards of different runs are refused
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "s2", other)
    doc = json.loads((other / "report.json").read_text())
    doc["seed"] = 7
    (other / "report.json").write_text(json.dumps(doc))
    assert cli.main(["merge", str(tmp_path / "bad"), str(tmp_path / "s1"), str(other)]) == 2
    assert "different seed (0 vs 7)" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert cli.main(["merge", str(tmp_path / "bad"), str(tmp_path / "s1"), str(tmp_path / "s1")]) == 2
    assert "overlapping shards" in capsys.readouterr().err


def test_nightly_exits_1_only_on_new_failures(tmp_path, monkeypatch, capsys):
    """The nightly's own logic over four nights, with the checks' outcomes given (runner.run replaced)."""
    outcome: dict[str, str] = {}

    def fake_run(tasks, *, examples, seed, jobs=None, on_row=None, timeout=None):
        rows = []
        for t in tasks:
            row = runner.skipped_row(catalog.get(t.spec_id), t, seed, "")
            row.update(status=outcome.get(t.spec_id, "pass"), reason="")
            if row["status"] == "fail":
                row.update(code="V001", message="value disagrees", error_eps=1e9, bound_eps=80.0)
            rows.append(row)
            on_row(row)
        return rows, {"torch": "2.13.0+cpu"}

    monkeypatch.setattr(runner, "run", fake_run)
    args = ["nightly", "--ids", "torch.nn.MSELoss", "torch.nn.L1Loss", "--property", "value", "--dtype", "float64",
            "-q", "--output", str(tmp_path / "out"), "--history", str(tmp_path / "history.sqlite")]

    def night(**statuses):
        outcome.clear()
        outcome.update({f"torch.nn.{k}": v for k, v in statuses.items()})
        code = cli.main(args + (["--strict"] if statuses.pop("strict", False) else []))
        return code, json.loads((tmp_path / "out" / "report.json").read_text())

    code, doc = night(MSELoss="fail")
    assert code == 1 and doc["changes"]["first_seen"] == 2 and len(doc["changes"]["new_failures"]) == 1
    code, doc = night(MSELoss="fail")                                   # still failing: not new
    assert code == 0 and doc["changes"]["new_failures"] == [] and doc["changes"]["previous_runs"]
    assert "Nothing changed." in (tmp_path / "out" / "summary.md").read_text()
    assert night(MSELoss="fail", strict=True)[0] == 1                   # --strict: any failure
    code, doc = night(L1Loss="fail")                                    # MSELoss fixed, L1Loss broke
    assert code == 1
    assert [k["id"] for k in doc["changes"]["new_failures"]] == ["torch.nn.L1Loss"]
    assert [k["id"] for k in doc["changes"]["new_passes"]] == ["torch.nn.MSELoss"]
    assert [sum(t["counts"].values()) for t in doc["trend"]] == [2, 2, 2, 2]
    assert "NEW FAIL torch.nn.L1Loss" in capsys.readouterr().out
    outcome.update({"torch.nn.L1Loss": "fail"})
    assert cli.main(args + ["--no-history"]) == 1                       # without a history every failure is new


def test_a_crashing_runner_still_gets_a_report(tmp_path, monkeypatch):
    def crash(tasks, *, examples, seed, jobs=None, on_row=None, timeout=None):
        row = runner.skipped_row(catalog.get(tasks[0].spec_id), tasks[0], seed, "")
        on_row({**row, "status": "pass"})
        raise RuntimeError("worker pool broke")

    monkeypatch.setattr(runner, "run", crash)
    db = tmp_path / "history.sqlite"
    code = cli.main(["nightly", "--ids", "torch.nn.MSELoss", "--property", "value", "-q", "--output",
                     str(tmp_path / "out"), "--history", str(db)])
    assert code == 1
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["status"] for r in doc["results"]] == ["pass", "error"]
    assert "the runner failed: RuntimeError: worker pool broke" in doc["results"][1]["message"]
    with History.open(str(db)) as h:
        (run,) = h.runs()
        assert {r["dtype"]: r["status"] for r in h.results(run["id"])} == {"float64": "pass", "float32": "error"}


def test_report_rerenders_from_json(tmp_path, capsys):
    from tests.test_reports import synthetic_document

    src = tmp_path / "report.json"
    src.write_text(json.dumps(synthetic_document()))
    assert cli.main(["report", str(src), "--html", str(tmp_path / "r.html"), "--markdown", str(tmp_path / "s.md"),
                     "--junit", str(tmp_path / "j.xml")]) == 0
    assert "<section id=\"heatmap\">" in (tmp_path / "r.html").read_text()
    assert (tmp_path / "j.xml").read_text().startswith("<?xml") and "## Failures" in (tmp_path / "s.md").read_text()
    assert cli.main(["report", str(src)]) == 2
    assert "nothing to write" in capsys.readouterr().err


# ---- a nightly killed mid-run ---------------------------------------------------------------------------------

def test_killing_a_nightly_leaves_the_history_readable_and_earlier_runs_intact(tmp_path):
    pytest.importorskip("torch")
    db = tmp_path / "history.sqlite"
    from tests.test_history import _night

    with History.open(str(db)) as h:
        earlier = []
        for statuses in ({"a": "pass", "b": "fail"}, {"a": "pass", "b": "pass", "c": "xfail"}):
            run = h.begin_run(seed=0, examples=2)
            h.add_results(run, _night(statuses))
            h.finish_run(run)
            earlier.append((run, h.results(run)))
    ids = [s.id for s in catalog.all_specs() if s.framework == "torch"][:12]
    proc = subprocess.Popen([sys.executable, "-m", "losscheck.cli", "nightly", "--ids", *ids, "--property", "value",
                             "--property", "gradient", "--examples", "20", "-q", "-j", "1", "--history", str(db),
                             "--output", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with sqlite3.connect(str(db), timeout=30) as conn:
                (n,) = conn.execute("SELECT COUNT(*) FROM results r JOIN runs u ON r.run_id = u.id "
                                    "WHERE u.finished IS NULL").fetchone()
            if n >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the nightly finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)     # the nightly and its worker processes, mid-run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    with History.open(str(db)) as h:
        assert h.integrity_ok()
        assert [(r["id"], h.results(r["id"])) for r in h.runs()] == earlier
        (killed,) = [r for r in h.runs(finished_only=False) if r["finished"] is None]
        assert 3 <= len(h.results(killed["id"])) < len(ids) * 2 * 2
        assert [t["run_id"] for t in h.trend()] == [run for run, _ in earlier]   # the killed run is not in the trend
    assert not (tmp_path / "out" / "report.json").exists()
