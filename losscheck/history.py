"""Run history: every nightly run and its results, in an embedded SQLite database or on a
PostgreSQL server (``History.open("postgresql://...")``, through psycopg).

Two tables (plain SQL: the same statements run on SQLite, PostgreSQL and any DB-API driver, see
:class:`History`):

* ``runs(id, created, finished, versions, machine, git_commit, seed, examples, shard, command)``:
  one row per run; ``finished`` stays NULL until the run completed, so a run killed half-way is
  recognisable and never used as "the previous run";
* ``results(run_id, spec_id, runtime, property, dtype, device, status, code, error_eps, bound_eps,
  deviation_eps)``: one row per check, inserted as each check finishes (one short transaction each),
  so a killed run leaves every earlier run intact and its own results so far.

Several processes (the shards of one night) may write the same database at once: SQLite runs in
WAL mode with a busy timeout, and every write is a short ``BEGIN IMMEDIATE`` transaction; on
PostgreSQL every write is a short transaction, and creating the schema holds an advisory lock
(concurrent ``CREATE TABLE IF NOT EXISTS`` can otherwise collide in PostgreSQL's catalog).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

#: the columns that identify one check across runs
KEY = ("id", "runtime", "property", "dtype", "device")
_KEY_COLUMNS = ("spec_id", "runtime", "property", "dtype", "device")
#: statuses that count as failing (as in :data:`losscheck.runner.FAILING`)
FAILING = ("fail", "xpass", "error")
#: a deviation whose size changed by more than this factor is reported
DEVIATION_FACTOR = 2.0
#: how many earlier finished runs are searched for a check's previous result (covers many shards)
LOOKBACK_RUNS = 64

#: a PostgreSQL URL (libpq's two schemes) rather than an SQLite path
POSTGRES_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
#: the key of the advisory lock taken while the schema is created on PostgreSQL ("lsscheck")
_SCHEMA_LOCK = 0x6C7373636865636B

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        id VARCHAR(32) PRIMARY KEY,
        created VARCHAR(40) NOT NULL,
        finished VARCHAR(40),
        versions TEXT NOT NULL,
        machine TEXT NOT NULL,
        git_commit VARCHAR(64),
        seed BIGINT NOT NULL,
        examples INTEGER NOT NULL,
        shard VARCHAR(32),
        command TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS results (
        run_id VARCHAR(32) NOT NULL REFERENCES runs(id),
        spec_id VARCHAR(200) NOT NULL,
        runtime VARCHAR(40) NOT NULL,
        property VARCHAR(40) NOT NULL,
        dtype VARCHAR(20) NOT NULL,
        device VARCHAR(20) NOT NULL,
        status VARCHAR(20) NOT NULL,
        code VARCHAR(10),
        error_eps DOUBLE PRECISION,
        bound_eps DOUBLE PRECISION,
        deviation_eps DOUBLE PRECISION,
        PRIMARY KEY (run_id, spec_id, runtime, property, dtype, device)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created)",
)


def key_of(row: dict) -> tuple[str, ...]:
    """(id, runtime, property, dtype, device) of a result row."""
    return tuple(str(row[k]) for k in KEY)


def key_dict(key: tuple) -> dict:
    return dict(zip(KEY, key))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _enter_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch a new database to WAL. The switch needs the file to itself, and SQLite answers
    "database is locked" at once, without its busy timeout, when another process is opening the
    same new file (the shards of a night starting together): retry until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1:***@", url, flags=re.IGNORECASE)


def _finite(x) -> float | None:
    """SQL has no NaN/Inf on every server: store them as NULL (the status says what happened)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class Changes:
    """What changed since the previous result of each check (keys are :data:`KEY` tuples)."""
    previous_runs: list[str] = field(default_factory=list)
    new_failures: list[tuple] = field(default_factory=list)
    new_passes: list[tuple] = field(default_factory=list)
    deviation_changes: list[dict] = field(default_factory=list)   # key, before, after (eps)
    first_seen: int = 0   # checks with no earlier result

    def to_json(self) -> dict:
        return {"previous_runs": self.previous_runs,
                "new_failures": [key_dict(k) for k in self.new_failures],
                "new_passes": [key_dict(k) for k in self.new_passes],
                "deviation_changes": self.deviation_changes,
                "first_seen": self.first_seen}


def compare(rows: Iterable[dict], previous: dict[tuple, dict]) -> Changes:
    """Classify ``rows`` against ``previous`` (key -> {status, deviation_eps}).

    New failure: failing now, and not failing in its previous result (or no previous result).
    New pass: status ``pass`` now, failing in its previous result. Deviation change: both sizes
    known and their ratio beyond :data:`DEVIATION_FACTOR` either way.
    """
    out = Changes()
    for row in rows:
        key = key_of(row)
        before = previous.get(key)
        failing = row["status"] in FAILING
        if before is None:
            out.first_seen += 1
            if failing:
                out.new_failures.append(key)
            continue
        was_failing = before["status"] in FAILING
        if failing and not was_failing:
            out.new_failures.append(key)
        elif row["status"] == "pass" and was_failing:
            out.new_passes.append(key)
        old, new = _finite(before.get("deviation_eps")), _finite(row.get("deviation_eps"))
        if old and new and max(old / new, new / old) > DEVIATION_FACTOR:
            out.deviation_changes.append({**key_dict(key), "before": old, "after": new})
    return out


class HistoryError(Exception):
    """The history database could not be opened (one line, fit for a usage error)."""


class History:
    """The history database. ``History.open(target)`` takes an SQLite path or a PostgreSQL URL
    (``postgresql://user@host:5432/db``; needs ``psycopg``). Any other DB-API 2 connection works
    through ``History(connect, paramstyle=...)``, since the statements are plain SQL: each write is
    one transaction ended by the connection's ``commit()`` (``rollback()`` on an error), and each
    read ends its transaction too. Only SQLite gets WAL and ``BEGIN IMMEDIATE``, only PostgreSQL the
    schema's advisory lock.
    """

    def __init__(self, connect: Callable[[], Any], *, paramstyle: str = "qmark", sqlite: bool = False,
                 postgres: bool = False):
        self._connect = connect
        self._paramstyle = paramstyle
        self._sqlite = sqlite
        self._lock = threading.Lock()   # one connection, written from the runner's threads
        self._conn = connect()
        lock = [f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"] if postgres else []
        self._write([*lock, *SCHEMA])

    @classmethod
    def open(cls, target: str, *, timeout: float = 60.0) -> "History":
        """The history at ``target``: a PostgreSQL URL, or else an SQLite file (created with its
        directory). Raises :class:`HistoryError` when it cannot be opened."""
        if POSTGRES_URL.match(target):
            return cls._open_postgres(target, timeout)
        directory = os.path.dirname(os.path.abspath(target))

        def connect():
            conn = sqlite3.connect(target, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _enter_wal(conn, timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        try:
            os.makedirs(directory, exist_ok=True)
            return cls(connect, sqlite=True)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the history database {target}: {exc}") from exc

    @classmethod
    def _open_postgres(cls, url: str, timeout: float) -> "History":
        shown = redact(url)
        try:
            import psycopg
        except ImportError:
            raise HistoryError(f"cannot open the history database {shown}: PostgreSQL needs psycopg "
                               "(pip install 'losscheck[postgres]')") from None
        try:
            return cls(lambda: psycopg.connect(url, connect_timeout=max(1, int(timeout))), paramstyle="format",
                       postgres=True)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HistoryError(f"cannot open the history database {shown}: {first}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- plumbing ------------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._paramstyle in ("format", "pyformat") else statement

    def _write(self, statements: Iterable, params: Iterable = ()) -> None:
        """Run (statement, params) pairs (or bare statements) in one transaction."""
        params = list(params)
        with self._lock:
            cur = self._conn.cursor()
            if self._sqlite:   # autocommit connection: the transaction is explicit
                cur.execute("BEGIN IMMEDIATE")
            try:
                for i, statement in enumerate(statements):
                    cur.execute(self._sql(statement), params[i] if i < len(params) else ())
                if self._sqlite:
                    cur.execute("COMMIT")
                else:
                    self._conn.commit()
            except BaseException:
                if self._sqlite:
                    cur.execute("ROLLBACK")
                else:
                    self._conn.rollback()
                raise

    def _query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(statement), params)
                return cur.fetchall()
            finally:
                if not self._sqlite:   # end the read's transaction: no session left idle in one
                    self._conn.rollback()

    # ---- writing a run ---------------------------------------------------------------------------

    def begin_run(self, *, seed: int, examples: int, versions: dict | None = None, machine: dict | None = None,
                  git_commit: str | None = None, shard: str | None = None, command: list[str] | None = None,
                  created: str | None = None) -> str:
        """Record a new (unfinished) run; returns its id."""
        run_id = uuid.uuid4().hex
        self._write(["INSERT INTO runs (id, created, finished, versions, machine, git_commit, seed, examples, "
                     "shard, command) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)"],
                    [(run_id, created or _now(), json.dumps(versions or {}, sort_keys=True),
                      json.dumps(machine or {}, sort_keys=True), git_commit, int(seed), int(examples), shard,
                      json.dumps(command) if command is not None else None)])
        return run_id

    def add_results(self, run_id: str, rows: Iterable[dict]) -> None:
        """Append result rows of ``run_id`` (one transaction)."""
        rows = list(rows)
        if not rows:
            return
        insert = ("INSERT INTO results (run_id, spec_id, runtime, property, dtype, device, status, code, "
                  "error_eps, bound_eps, deviation_eps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self._write([insert] * len(rows),
                    [(run_id, *key_of(r), r["status"], r.get("code") or "", _finite(r.get("error_eps")),
                      _finite(r.get("bound_eps")), _finite(r.get("deviation_eps"))) for r in rows])

    def finish_run(self, run_id: str, *, versions: dict | None = None) -> None:
        if versions is None:
            self._write(["UPDATE runs SET finished = ? WHERE id = ?"], [(_now(), run_id)])
        else:
            self._write(["UPDATE runs SET finished = ?, versions = ? WHERE id = ?"],
                        [(_now(), json.dumps(versions, sort_keys=True), run_id)])

    # ---- reading ---------------------------------------------------------------------------------

    def runs(self, *, finished_only: bool = True) -> list[dict]:
        """Every run, oldest first."""
        where = "WHERE finished IS NOT NULL " if finished_only else ""
        cols = ("id", "created", "finished", "versions", "machine", "git_commit", "seed", "examples", "shard",
                "command")
        out = []
        for values in self._query(f"SELECT {', '.join(cols)} FROM runs {where}ORDER BY created, id"):
            run = dict(zip(cols, values))
            run["versions"], run["machine"] = json.loads(run["versions"]), json.loads(run["machine"])
            run["command"] = json.loads(run["command"]) if run["command"] else None
            out.append(run)
        return out

    def results(self, run_id: str) -> list[dict]:
        cols = (*_KEY_COLUMNS, "status", "code", "error_eps", "bound_eps", "deviation_eps")
        rows = self._query(f"SELECT {', '.join(cols)} FROM results WHERE run_id = ? "
                           "ORDER BY spec_id, runtime, property, dtype, device", (run_id,))
        return [{("id" if c == "spec_id" else c): v for c, v in zip(cols, r)} for r in rows]

    def previous_results(self, run_id: str, keys: Iterable[tuple]) -> tuple[dict[tuple, dict], list[str]]:
        """The latest earlier result of each key, from finished runs created before ``run_id``
        (searching back :data:`LOOKBACK_RUNS` runs); returns (key -> result, run ids consulted)."""
        wanted = set(keys)
        created = self._query("SELECT created FROM runs WHERE id = ?", (run_id,))
        if not created:
            raise KeyError(f"no run {run_id!r} in the history")
        earlier = self._query("SELECT id FROM runs WHERE finished IS NOT NULL AND id <> ? AND created <= ? "
                              "ORDER BY created DESC, id DESC LIMIT ?", (run_id, created[0][0], LOOKBACK_RUNS))
        found: dict[tuple, dict] = {}
        used = []
        for (rid,) in earlier:
            if len(found) == len(wanted):
                break
            hit = False
            for r in self.results(rid):
                k = key_of(r)
                if k in wanted and k not in found:
                    found[k], hit = r, True
            if hit:
                used.append(rid)
        return found, used

    def changes(self, run_id: str, rows: list[dict]) -> Changes:
        previous, used = self.previous_results(run_id, [key_of(r) for r in rows])
        out = compare(rows, previous)
        out.previous_runs = used
        return out

    def trend(self, limit: int = 60) -> list[dict]:
        """Status counts of the last ``limit`` finished runs, oldest first:
        [{run_id, created, shard, git_commit, counts: {status: n}}]."""
        runs = self._query("SELECT id, created, shard, git_commit FROM runs WHERE finished IS NOT NULL "
                           "ORDER BY created DESC, id DESC LIMIT ?", (int(limit),))
        out = []
        for rid, created, shard, commit in reversed(runs):
            counts = dict(self._query("SELECT status, COUNT(*) FROM results WHERE run_id = ? GROUP BY status",
                                      (rid,)))
            out.append({"run_id": rid, "created": created, "shard": shard, "git_commit": commit,
                        "counts": {k: int(v) for k, v in counts.items()}})
        return out

    def integrity_ok(self) -> bool:
        """SQLite's own consistency check (True for other databases, which keep their own)."""
        if not self._sqlite:
            return True
        return self._query("PRAGMA integrity_check") == [("ok",)]
