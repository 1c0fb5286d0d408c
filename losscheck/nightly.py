"""`losscheck nightly`, `losscheck merge` and `losscheck report`.

``nightly`` checks the whole catalog with every property on every installed runtime and every
device present (cpu; cuda where torch, JAX or TensorFlow sees a GPU), appends each result to the
history database as it arrives, compares with the previous results, and writes the report set
(report.json, report.html, junit.xml, summary.md, repro/) into the output directory. ``--shard I/N``
keeps the checks whose stable hash falls in shard I of N; ``merge`` combines shard outputs into one
report set; ``report`` re-renders a report set (or single files) from a report.json.

Exit codes: 0 no new failure; 1 a check fails that did not fail in its previous result (any
failure with ``--strict``); 2 could not run (bad usage, incompatible shards, a report that could
not be written) with a one-line reason.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

#: the properties a nightly runs: all but ``compiled`` (framework losses compile by construction, and each
#: example would compile a program; ``check --property compiled`` and the plugin run it)
PROPERTIES = ("value", "gradient", "batch", "numerics", "rank_mismatch", "compat", "device")
DTYPES = ("float64", "float32")
#: the compat analysis is a deterministic float64 measurement: one per loss, runtime and device
COMPAT_DTYPE = "float64"
REPORT_FILES = ("report.json", "report.html", "junit.xml", "summary.md")
DEFAULT_HISTORY = os.path.join("reports", "history.sqlite")
REPRO_DIR = "repro"
#: engine -> the runtimes that compute with it (what a GPU seen by that engine runs)
ENGINE_RUNTIMES = {"torch": ("torch", "keras-torch"), "jax": ("jax", "keras-jax"),
                   "tensorflow": ("keras-tensorflow",)}
_GPU_PROBES = {
    "torch": "import torch; print(torch.cuda.is_available())",
    "jax": "import jax; print(any(d.platform == 'gpu' for d in jax.devices()))",
    "tensorflow": "import tensorflow as tf; print(bool(tf.config.list_physical_devices('GPU')))",
}
EXIT_OK, EXIT_NEW_FAILURES, EXIT_USAGE = 0, 1, 2


def _usage(message: str) -> Exception:
    from .cli import UsageError

    return UsageError(message)


# ---- command line -------------------------------------------------------------------------------

def add_parsers(sub) -> None:
    """Add the nightly, merge and report subcommands to ``losscheck``'s subparsers."""
    from .tolerance import DTYPES as ALL_DTYPES

    nt = sub.add_parser("nightly", help="the whole catalog, every property, runtime and device; reports + history")
    nt.add_argument("--examples", type=int, default=20, help="hypothesis examples per check (default 20)")
    nt.add_argument("--seed", type=int, default=0, help="base seed; every check derives its own from it")
    nt.add_argument("--output", "-o", default="reports", metavar="DIR", help="report directory (default reports/)")
    nt.add_argument("--shard", metavar="I/N", help="run shard I of N (a stable hash of each check's key)")
    nt.add_argument("--jobs", "-j", type=int, default=None, help="worker processes, shared among the Keras backends' pools by estimated cost (default: CPUs)")
    nt.add_argument("--history", metavar="PATH|URL", default=DEFAULT_HISTORY,
                    help=f"history database: an SQLite file (default {DEFAULT_HISTORY}, whatever --output is) "
                         "or a postgresql:// URL")
    nt.add_argument("--no-history", action="store_true", help="do not read or append to a history database")
    nt.add_argument("--strict", action="store_true", help="exit 1 on any failure, not only on new ones")
    nt.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    nt.add_argument("--timeout", type=float, default=None, metavar="S",
                    help="stop after S seconds: checks still pending are reported as errors")
    # narrowing the run (tests, quick looks); a nightly normally leaves them out
    nt.add_argument("--ids", nargs="+", metavar="ID", help="only these catalog ids")
    nt.add_argument("--framework", choices=["torch", "keras", "optax"], action="append", help="only this framework")
    nt.add_argument("--runtime", action="append", help="only this runtime (repeatable)")
    nt.add_argument("--property", action="append", choices=PROPERTIES, help="only this property (repeatable)")
    nt.add_argument("--dtype", action="append", choices=list(ALL_DTYPES), help="dtypes (default float64, float32)")
    nt.add_argument("--device", action="append", choices=["cpu", "cuda"],
                    help="only this device (default: every device present)")

    mg = sub.add_parser("merge", help="combine shard outputs of `losscheck nightly` into one report set")
    mg.add_argument("output", metavar="OUT_DIR")
    mg.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="shard output directories (or their report.json)")
    mg.add_argument("--strict", action="store_true", help="exit 1 on any failure, not only on new ones")

    rp = sub.add_parser("report", help="render reports from a report.json")
    rp.add_argument("json", metavar="JSON")
    rp.add_argument("--output", "-o", metavar="DIR", help="write the whole report set into DIR")
    rp.add_argument("--html", metavar="PATH")
    rp.add_argument("--junit", metavar="PATH")
    rp.add_argument("--markdown", metavar="PATH")
    rp.add_argument("--repro", metavar="DIR", help="write the reproducer scripts into DIR")


def main(args) -> int:
    if args.command == "nightly":
        return cmd_nightly(args)
    if args.command == "merge":
        return cmd_merge(args)
    return cmd_report(args)


# ---- planning -----------------------------------------------------------------------------------

def parse_shard(text: str | None) -> tuple[int, int]:
    """'2/5' -> (2, 5); None -> (1, 1)."""
    if not text:
        return 1, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise _usage(f"--shard must look like I/N (e.g. 2/5), got {text!r}") from None
    if not 1 <= i <= n:
        raise _usage(f"--shard {text}: I must be between 1 and N")
    return i, n


def task_key(task) -> str:
    return "|".join((task.spec_id, task.runtime, task.property, task.dtype, task.device))


def shard_of(task, n: int) -> int:
    """The shard (1..n) of ``task``: a stable hash of its key, independent of the task list."""
    digest = hashlib.sha256(task_key(task).encode()).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def in_shard(tasks, i: int, n: int) -> list:
    return [t for t in tasks if shard_of(t, n) == i]


def gpu_engines() -> set[str]:
    """Engines (torch, jax, tensorflow) that see a GPU here. Each is asked in a subprocess (the
    frameworks stay out of this process), and only when nvidia-smi lists a GPU."""
    from .frameworks import installed
    from .report.json_report import gpu_names

    if not gpu_names():
        return set()
    found = set()
    probe_runtime = {"torch": "torch", "jax": "jax", "tensorflow": "keras-tensorflow"}
    for engine, code in _GPU_PROBES.items():
        if not installed(probe_runtime[engine]):
            continue
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        except (OSError, subprocess.SubprocessError):
            continue
        if out.stdout.strip().endswith("True"):
            found.add(engine)
    return found


@dataclass
class Selection:
    properties: list[str]
    dtypes: list[str]
    runtimes: list[str]
    devices: list[str]
    shard: str | None
    ids: list[str] | None = None
    frameworks: list[str] | None = None
    not_installed: list[str] | None = None


def plan_tasks(args) -> tuple[list, Selection]:
    """Every (spec, runtime, property, dtype, device) of the nightly, after the narrowing options."""
    from . import catalog, runner
    from .frameworks import RUNTIMES, installed

    if args.examples < 1:
        raise _usage(f"--examples must be at least 1, got {args.examples}")
    specs = catalog.all_specs()
    if args.ids:
        try:
            specs = [catalog.get(i) for i in args.ids]
        except KeyError as exc:
            raise _usage(exc.args[0]) from None
    if args.framework:
        specs = [s for s in specs if s.framework in args.framework]
    bad = set(args.runtime or ()) - set(RUNTIMES)
    if bad:
        raise _usage(f"unknown runtime {sorted(bad)[0]!r}; expected one of {', '.join(RUNTIMES)}")
    wanted = [r for r in RUNTIMES if not args.runtime or r in args.runtime]
    runtimes = [r for r in wanted if installed(r)]
    properties = list(args.property or PROPERTIES)
    dtypes = list(args.dtype or DTYPES)
    devices = ["cpu"]
    engines = gpu_engines() if args.device is None or "cuda" in args.device else set()
    if engines:
        devices.append("cuda")
    if args.device:
        devices = [d for d in devices if d in args.device]
    tasks = []
    for device in devices:
        on_device = runtimes if device == "cpu" else [r for e in engines for r in ENGINE_RUNTIMES[e] if r in runtimes]
        for t in runner.plan(specs, properties=properties, dtypes=dtypes, runtimes=set(on_device), device=device):
            if t.property == "compat" and t.dtype != COMPAT_DTYPE:
                continue
            tasks.append(t)
    i, n = parse_shard(args.shard)
    selection = Selection(properties, dtypes, runtimes, devices, args.shard, list(args.ids) if args.ids else None,
                          list(args.framework) if args.framework else None,
                          [r for r in wanted if r not in runtimes] or None)
    return in_shard(tasks, i, n), selection


# ---- nightly ---------------------------------------------------------------------------------------

def cmd_nightly(args) -> int:
    from . import runner
    from .report import console, json_report
    from .report.table import sort_rows

    tasks, selection = plan_tasks(args)
    if not tasks:
        raise _usage("nothing to check: the filters (or this shard) leave no check")
    _check_output(args.output)
    history_path = None if args.no_history else args.history
    command = ["losscheck", *sys.argv[1:]]
    machine, git = json_report.machine_info(), json_report.commit_info()
    history = run_id = None
    if history_path:
        from .history import History, HistoryError

        try:
            history = History.open(history_path)
        except HistoryError as exc:
            raise _usage(str(exc)) from None
        run_id = history.begin_run(seed=args.seed, examples=args.examples, machine=machine,
                                   git_commit=git.get("commit"), shard=args.shard, command=command)
    seen: list[dict] = []
    warned = []

    def on_row(row):
        seen.append(row)
        progress.advance(row)
        if history is not None:
            try:
                history.add_results(run_id, [row])
            except Exception as exc:  # noqa: BLE001 - the run goes on; the report says what was lost
                if not warned:
                    warned.append(exc)
                    print(f"losscheck: warning: history write failed: {exc}", file=sys.stderr)

    started = time.perf_counter()
    versions: dict = {}
    with console.Progress(len(tasks), enabled=not args.quiet) as progress, runner.stop_on_signals() as signals:
        try:
            rows, versions = runner.run(tasks, examples=args.examples, seed=args.seed, jobs=args.jobs,
                                        on_row=on_row, timeout=args.timeout)
        except Exception as exc:  # noqa: BLE001 - a harness crash still gets a report
            rows = _with_missing(seen, tasks, args, f"nightly: the runner failed: {type(exc).__name__}: {exc}")
            if history is not None:
                history.add_results(run_id, rows[len(seen):])
    rows = sort_rows(rows)
    changes = trend = None
    if history is not None:
        changes = history.changes(run_id, rows).to_json()
        if not signals:   # an interrupted run stays unfinished: no later run compares with it
            history.finish_run(run_id, versions=versions)
        trend = history.trend()
        history.close()
    doc = json_report.document(rows, versions=versions, seed=args.seed, examples=args.examples, command=command,
                               selection=asdict(selection), changes=changes, trend=trend, machine=machine, git=git)
    problems = write_report_set(args.output, doc)
    elapsed = time.perf_counter() - started
    code = _finish(doc, args.output, problems, strict=args.strict, elapsed=elapsed)
    if signals:
        print(f"losscheck: interrupted ({signals[0]}): the report holds the checks that finished; the others are "
              "skip rows", file=sys.stderr)
        from .signals import exit_status

        return exit_status(signals[0])
    return code


def _with_missing(rows: list[dict], tasks, args, message: str) -> list[dict]:
    """``rows`` plus an error row for every task that produced none."""
    from . import catalog, runner

    done = {(r["id"], r["runtime"], r["property"], r["dtype"], r["device"]) for r in rows}
    out = list(rows)
    for t in tasks:
        if (t.spec_id, t.runtime, t.property, t.dtype, t.device) not in done:
            row = runner.skipped_row(catalog.get(t.spec_id), t, args.seed, "")
            row.update(status="error", message=message[:500])
            out.append(row)
    return out


def new_failures(doc: dict) -> list[dict]:
    """Failing rows that did not fail in their previous result (every failing row without history)."""
    from .history import FAILING, key_of

    failing = [r for r in doc["results"] if r["status"] in FAILING]
    if doc.get("changes") is None:
        return failing
    new = {tuple(k[c] for c in ("id", "runtime", "property", "dtype", "device"))
           for k in doc["changes"].get("new_failures", [])}
    return [r for r in failing if key_of(r) in new]


def _finish(doc: dict, output: str, problems: list[str], *, strict: bool, elapsed: float | None = None) -> int:
    from .history import FAILING

    counts = doc["summary"]
    failing = [r for r in doc["results"] if r["status"] in FAILING]
    new = new_failures(doc)
    took = f" in {elapsed:.0f} s" if elapsed is not None else ""
    print(f"{len(doc['results'])} checks{took}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    from .report.console import printable

    for r in new[:50]:   # a loss's message may hold what the terminal cannot encode
        print(printable(f"NEW {r['status'].upper()} {r['id']} [{r['runtime']}, {r['property']}, {r['dtype']}, "
                        f"{r['device']}] {r.get('code') or ''} {r.get('message') or ''}"[:300]))
    if len(new) > 50:
        print(f"... and {len(new) - 50} more new failures")
    print(f"{len(failing)} failing, {len(new)} new since the previous run; reports in {output}/")
    for p in problems:
        print(f"losscheck: error: {p}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    return EXIT_NEW_FAILURES if (failing if strict else new) else EXIT_OK


# ---- writing the report set -----------------------------------------------------------------------

def _check_output(output: str) -> None:
    """Refuse, before any check runs, a report directory that cannot be written (a nightly found that
    out only after its last check). ``merge`` and ``report`` do no long work first: they need none."""
    from .report.json_report import unwritable

    why = unwritable(os.path.join(output, "report.json"))
    if why:
        raise _usage(f"--output {output}: {why}")


def write_report_set(output: str, doc: dict, *, only: dict[str, str] | None = None, repro_dir: str | None = None,
                     specs: dict | None = None) -> list[str]:
    """Write report.json, report.html, junit.xml, summary.md and repro/ into ``output``.

    Each file is rendered in memory and then replaced atomically (a reader sees the old file or
    the new one); the JSON goes first, and a renderer that fails costs only its own file. ``only``
    maps format names (json, html, junit, markdown) to explicit paths instead; ``specs`` (id ->
    LossSpec) supplies reproducers' specs that are not in the catalog. Returns the problems (empty
    when everything was written).
    """
    from .report import html, json_report, junit, markdown, repro
    from .report.table import ResultTable

    problems = []
    scripts, skipped = repro.scripts(doc["results"], specs)
    for name, why in skipped.items():  # the row still shows its `losscheck check` replay command
        print(f"losscheck: warning: no reproducer {name}: {why}", file=sys.stderr)
    for row in doc["results"]:
        name = repro.filename(row)
        if name in scripts:
            row["repro_script"] = f"{REPRO_DIR}/{name}"
    table = ResultTable.from_document(doc)
    renderers = {"json": ("report.json", lambda: json_report.dumps(doc)),
                 "html": ("report.html", lambda: html.render(table, scripts, title=_title(doc))),
                 "junit": ("junit.xml", lambda: junit.render(table)),
                 "markdown": ("summary.md", lambda: markdown.render(table))}
    targets = only if only is not None else {k: os.path.join(output, f) for k, (f, _) in renderers.items()}
    for kind, path in targets.items():
        try:
            json_report.write_atomic(path, renderers[kind][1]())
        except Exception as exc:  # noqa: BLE001 - the other formats are still written
            problems.append(f"{path} not written: {type(exc).__name__}: {exc}")
    directory = repro_dir if repro_dir is not None else (None if only is not None else os.path.join(output, REPRO_DIR))
    if directory:
        try:
            replace_dir(directory, scripts)
        except OSError as exc:
            problems.append(f"{directory} not written: {exc}")
    return problems


def _title(doc: dict) -> str:
    shard = (doc.get("selection") or {}).get("shard")
    return f"losscheck nightly {str(doc.get('created', ''))[:10]}" + (f" (shard {shard})" if shard else "")


def replace_dir(path: str, files: dict[str, str]) -> None:
    """Make ``path`` a directory holding exactly ``files``: written into a temporary sibling,
    then swapped in by renames (the old directory is removed afterwards)."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)}-")
    try:
        os.chmod(tmp, 0o755)
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(os.path.join(tmp, name), 0o755)
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(path)}-")
            os.rename(path, os.path.join(old, "x"))
        os.rename(tmp, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---- merge and report ------------------------------------------------------------------------------

def _load_shard(path: str) -> dict:
    from .report import json_report

    file = os.path.join(path, "report.json") if os.path.isdir(path) else path
    try:
        return json_report.load(file)
    except FileNotFoundError:
        raise _usage(f"{file}: no such report (is {path} a nightly output directory?)") from None
    except ValueError as exc:
        raise _usage(str(exc)) from None


def merge_documents(docs: list[dict], names: list[str]) -> dict:
    """One document from shard documents; UsageError when they cannot belong to one run."""
    from .report import json_report
    from .report.table import KEY, sort_rows

    first = docs[0]
    for doc, name in zip(docs[1:], names[1:]):
        for field in ("seed", "examples", "losscheck"):
            if doc.get(field) != first.get(field):
                raise _usage(f"cannot merge {names[0]} and {name}: different {field} "
                             f"({first.get(field)!r} vs {doc.get(field)!r})")
        a, b = first.get("versions") or {}, doc.get("versions") or {}
        differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        if differ:
            k = differ[0]
            raise _usage(f"cannot merge {names[0]} and {name}: different versions of {k} ({a[k]} vs {b[k]})")
    rows, seen = [], {}
    for doc, name in zip(docs, names):
        for r in doc["results"]:
            key = tuple(r[k] for k in KEY)
            if key in seen:
                raise _usage(f"cannot merge: {name} and {seen[key]} both hold {' '.join(map(str, key))} "
                             "(overlapping shards)")
            seen[key] = name
            rows.append(r)
    versions: dict = {}
    for doc in docs:
        versions.update(doc.get("versions") or {})
    changes = None
    if all(d.get("changes") is not None for d in docs):
        changes = {"previous_runs": sorted({r for d in docs for r in d["changes"].get("previous_runs", [])}),
                   "new_failures": [k for d in docs for k in d["changes"].get("new_failures", [])],
                   "new_passes": [k for d in docs for k in d["changes"].get("new_passes", [])],
                   "deviation_changes": [k for d in docs for k in d["changes"].get("deviation_changes", [])],
                   "first_seen": sum(d["changes"].get("first_seen", 0) for d in docs)}
    latest = max(docs, key=lambda d: str(d.get("created", "")))
    selections = [d.get("selection") or {} for d in docs]
    selection = dict(selections[0])
    selection["shard"] = None
    selection["merged"] = [s.get("shard") for s in selections]
    for key in ("devices", "runtimes"):
        selection[key] = sorted({x for s in selections for x in (s.get(key) or [])})
    machine = dict(first.get("machine") or {})
    machine["shards"] = [d.get("machine") for d in docs]
    return json_report.document(sort_rows(rows), versions=versions, seed=first.get("seed"),
                                examples=first.get("examples"), command=first.get("command"), selection=selection,
                                changes=changes, trend=latest.get("trend"), machine=machine, git=first.get("git"))


def cmd_merge(args) -> int:
    docs = [_load_shard(p) for p in args.shards]
    doc = merge_documents(docs, list(args.shards))
    problems = write_report_set(args.output, doc)
    return _finish(doc, args.output, problems, strict=args.strict)


def cmd_report(args) -> int:
    doc = _load_shard(args.json)
    if args.output:
        problems = write_report_set(args.output, doc)
    else:
        only = {k: v for k, v in (("html", args.html), ("junit", args.junit), ("markdown", args.markdown)) if v}
        if not only and not args.repro:
            raise _usage("nothing to write: give --output DIR or at least one of --html, --junit, --markdown, --repro")
        problems = write_report_set("", doc, only=only, repro_dir=args.repro)
    for p in problems:
        print(f"losscheck: error: {p}", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK

