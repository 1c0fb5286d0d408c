"""The run history on SQLite and on PostgreSQL (a throwaway pgserver server): change detection,
unfinished runs, one transaction per write, several shards creating and writing one database at
once, `nightly --history URL`, and the one-line errors of a history that cannot be opened."""
from __future__ import annotations

import json
import multiprocessing
import sqlite3
import sys
import threading

import pytest

from losscheck import catalog, cli, runner
from losscheck.history import History, HistoryError, compare, key_of, redact
from tests.test_reports import _row


def _night(statuses: dict[str, str], deviation: float | None = None) -> list[dict]:
    rows = [_row(i, "torch", "value", "float64", s) for i, s in statuses.items()]
    if deviation is not None:
        rows.append(_row("dev", "torch", "value", "float64", "deviation", deviation_eps=deviation))
    return rows


def test_history_marks_new_failures_passes_and_deviation_changes(history_target):
    with History.open(history_target) as h:
        first = h.begin_run(seed=0, examples=5, versions={"torch": "2.13"})
        h.add_results(first, _night({"a": "pass", "b": "fail", "c": "pass", "d": "error"}, deviation=100.0))
        h.finish_run(first)
        changes = h.changes(first, _night({"a": "pass", "b": "fail", "c": "pass", "d": "error"}, deviation=100.0))
        assert changes.previous_runs == [] and changes.first_seen == 5
        assert sorted(k[0] for k in changes.new_failures) == ["b", "d"]   # no earlier result: new

        killed = h.begin_run(seed=0, examples=5)       # never finished: must not count as the previous run
        h.add_results(killed, _night({"a": "fail", "b": "pass", "c": "fail", "d": "pass"}))

        second = h.begin_run(seed=0, examples=5)
        rows = _night({"a": "fail", "b": "pass", "c": "pass", "d": "error", "e": "fail"}, deviation=350.0)
        h.add_results(second, rows)
        changes = h.changes(second, rows)
        h.finish_run(second)
        assert changes.previous_runs == [first]
        assert sorted(k[0] for k in changes.new_failures) == ["a", "e"]   # d failed before; e is new
        assert [k[0] for k in changes.new_passes] == ["b"]
        assert [(d["id"], d["before"], d["after"]) for d in changes.deviation_changes] == [("dev", 100.0, 350.0)]
        trend = h.trend()
        assert [t["run_id"] for t in trend] == [first, second]
        assert trend[1]["counts"] == {"pass": 2, "fail": 2, "error": 1, "deviation": 1}
        assert [r["id"] for r in h.runs()] == [first, second]
        assert h.runs()[0]["versions"] == {"torch": "2.13"}
        assert len(h.runs(finished_only=False)) == 3 and h.integrity_ok()
    with History.open(history_target) as h:           # a second connection reads what the first wrote
        assert [len(h.results(r["id"])) for r in h.runs()] == [5, 6]


def test_deviation_within_2x_is_not_a_change():
    prev = {key_of(r): r for r in _night({}, deviation=100.0)}
    assert compare(_night({}, deviation=190.0), prev).deviation_changes == []
    assert len(compare(_night({}, deviation=40.0), prev).deviation_changes) == 1


def test_a_failed_write_leaves_nothing_behind_and_the_history_usable(history_target):
    with History.open(history_target) as h:
        run = h.begin_run(seed=0, examples=1)
        h.add_results(run, _night({"a": "pass"}))
        twice = _night({"b": "pass", "c": "fail"}) + _night({"b": "fail"})   # b twice: a primary-key violation
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            h.add_results(run, twice)
        assert [r["id"] for r in h.results(run)] == ["a"]        # neither c nor the first b was kept
        h.add_results(run, _night({"c": "fail"}))                 # the connection still works
        h.finish_run(run)
        assert [r["id"] for r in h.results(run)] == ["a", "c"]


def _write_many(target: str, label: str, n: int, start) -> None:
    start.wait(60)
    with History.open(target) as h:     # every process creates the schema: none exists yet
        run = h.begin_run(seed=0, examples=1, shard=label)
        for i in range(n):
            h.add_results(run, [_row(f"{label}.{i}", "torch", "value", "float64", "pass")])
        h.finish_run(run)


def test_shards_creating_and_writing_one_history_at_once_lose_nothing(history_target):
    ctx = multiprocessing.get_context("spawn")
    labels = ("1/4", "2/4", "3/4", "4/4")
    start = ctx.Barrier(len(labels))
    procs = [ctx.Process(target=_write_many, args=(history_target, label, 60, start)) for label in labels]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    with History.open(history_target) as h:
        runs = h.runs()
        assert sorted(r["shard"] for r in runs) == list(labels)
        assert [len(h.results(r["id"])) for r in runs] == [60] * len(labels)
        assert h.integrity_ok()


def test_a_new_sqlite_history_opens_while_another_shard_creates_its_tables(tmp_path):
    """Switching a new file to WAL while another connection holds its write lock fails at once
    ("database is locked": SQLite skips its busy timeout there); the open waits for the lock."""
    path = str(tmp_path / "history.sqlite")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other (x)")
    other.execute("BEGIN IMMEDIATE")              # as a shard creating the schema holds it
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with History.open(path) as h:
            run = h.begin_run(seed=0, examples=1)
            h.finish_run(run)
            assert [r["id"] for r in h.runs()] == [run]
    finally:
        release.join()
        other.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_nightly_keeps_its_history_in_the_database_it_is_given(history_target, tmp_path, monkeypatch, capsys):
    """Two nights through `losscheck nightly --history` (the checks' outcomes given: runner.run
    replaced): the second finds the first and exits 1 on its new failure only."""
    outcome: dict[str, str] = {}

    def fake_run(tasks, *, examples, seed, jobs=None, on_row=None, timeout=None):
        rows = []
        for t in tasks:
            row = runner.skipped_row(catalog.get(t.spec_id), t, seed, "")
            row.update(status=outcome.get(t.spec_id, "pass"), reason="")
            rows.append(row)
            on_row(row)
        return rows, {"torch": "2.13.0+cpu"}

    monkeypatch.setattr(runner, "run", fake_run)
    args = ["nightly", "--ids", "torch.nn.MSELoss", "torch.nn.L1Loss", "--property", "value", "--dtype", "float64",
            "-q", "--output", str(tmp_path / "out"), "--history", history_target]
    assert cli.main(args) == 0
    outcome["torch.nn.L1Loss"] = "fail"
    assert cli.main(args) == 1
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [k["id"] for k in doc["changes"]["new_failures"]] == ["torch.nn.L1Loss"]
    assert len(doc["changes"]["previous_runs"]) == 1 and len(doc["trend"]) == 2
    with History.open(history_target) as h:
        assert [r["versions"] for r in h.runs()] == [{"torch": "2.13.0+cpu"}] * 2


def test_a_history_that_cannot_be_opened_is_a_one_line_usage_error(tmp_path, capsys):
    pytest.importorskip("psycopg")
    url = "postgresql://ci:s3cret@127.0.0.1:1/nightly"        # nothing listens on port 1
    code = cli.main(["nightly", "--ids", "torch.nn.MSELoss", "--property", "value", "-q",
                     "--output", str(tmp_path / "out"), "--history", url])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("losscheck: error: cannot open the history database "
                          "postgresql://ci:***@127.0.0.1:1/nightly: ")
    assert "s3cret" not in err
    (tmp_path / "file").write_text("")
    code = cli.main(["nightly", "--ids", "torch.nn.MSELoss", "--property", "value", "-q",
                     "--output", str(tmp_path / "out"), "--history", str(tmp_path / "file" / "history.sqlite")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "file/history.sqlite" in err


def test_without_psycopg_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)     # import psycopg raises ImportError
    with pytest.raises(HistoryError, match=r"needs psycopg \(pip install 'losscheck\[postgres\]'\)"):
        History.open("postgres://db.example/nightly")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://ci:s3cret@db:5432/n", "postgresql://ci:***@db:5432/n"),
    ("postgresql://ci@db/n", "postgresql://ci@db/n"),
    ("postgresql://postgres:@/n?host=/tmp/x", "postgresql://postgres:***@/n?host=/tmp/x"),
])
def test_messages_never_show_a_password(url, shown):
    assert redact(url) == shown
