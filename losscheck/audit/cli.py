"""``losscheck audit PATH [PATH ...]``: check the losses in a user's own files.

Exit codes: 0 every check passed, 1 at least one finding (a ``fail`` or ``warn`` check), 2 could
not audit (a path missing, a syntax or import error in the file, no loss found, a bad option), with
a one-line reason naming the file and line. The report (``--output``) is written atomically and
always, even when user code crashes or hangs.
"""
from __future__ import annotations

import argparse
import fnmatch
import math
import os
import shlex
import sys
import threading
import time

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT = 0, 1, 2
FORMATS = ("text", "json", "html")
MAX_TIMEOUT = 7 * 24 * 3600.0       # seconds; faulthandler's timer overflows far beyond this
MAX_MEMORY_MB = 2 ** 24             # 16 TiB: RLIMIT_AS in bytes must fit the platform's rlim_t


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("audit", help="check the losses defined in your own Python files",
                       description="Find the losses in PATH (files or directories) and check each one in a "
                                   "sandboxed subprocess: value against the catalog when a reference is given or "
                                   "identified, gradient, batch handling, broadcasting, numerics, context tensors, "
                                   "scaling with the batch, and how the file calls them.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories (searched recursively)")
    p.add_argument("--select", action="append", metavar="NAME",
                   help="audit only these losses (name, alias or glob; repeatable)")
    p.add_argument("--reference", metavar="ID", help="catalog id the loss must equal (e.g. torch.nn.HuberLoss or "
                                                      "custom.graph_cosine_loss); disagreement is a failure")
    p.add_argument("--framework", default="auto", choices=["auto", "torch", "keras", "tensorflow", "jax"])
    p.add_argument("--inputs", metavar="SPEC", help="the loss's inputs, e.g. 'y_pred=probs(N,C),y_true=onehot(N,C)'"
                                                    " or 'pred=reals(N),target=reals(N)'")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"])
    p.add_argument("--examples", type=int, default=10, help="hypothesis examples per oracle check (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed per loss, and for the file's module-level code (default 60)")
    p.add_argument("--memory", type=int, default=8192, metavar="MB", help="memory limit of the sandbox (default 8192)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="files audited at the same time (default 1)")
    p.add_argument("--format", choices=FORMATS,
                   help="report format (default: text on stdout; for --output files, from each file's extension: "
                        ".json, .html, anything else text)")
    p.add_argument("--output", metavar="PATH", action="append",
                   help="write the report there; repeatable (one audit, several formats); the text summary goes "
                        "to stdout")
    p.add_argument("--verbose", "-v", action="store_true", help="list every check, not only findings")
    return p


def _format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".json": "json", ".html": "html", ".htm": "html"}.get(ext, "text")


class CannotAudit(Exception):
    """One line: why a path cannot be audited."""


def _files(path: str) -> list[str]:
    if os.path.isdir(path):
        out = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            out += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
        return out
    if not os.path.exists(path):
        raise CannotAudit(f"{path}: no such file or directory")
    return [path]


def _selected(candidates, select) -> list:
    if not select:
        return candidates
    return [c for c in candidates if any(fnmatch.fnmatchcase(n, pat) for pat in select
                                         for n in [c.name, *c.aliases])]


def _repro(args, display: str, name: str) -> str:
    cmd = ["losscheck", "audit", display, "--select", name, "--seed", str(args.seed), "--examples", str(args.examples)]
    if args.reference:
        cmd += ["--reference", args.reference]
    if args.inputs:
        cmd += ["--inputs", args.inputs]
    if args.framework != "auto":
        cmd += ["--framework", args.framework]
    if args.device != "cpu":
        cmd += ["--device", args.device]
    return " ".join(shlex.quote(c) for c in cmd)


def _validate(args) -> None:
    if args.examples < 1:
        raise CannotAudit(f"bad option --examples {args.examples}: must be at least 1")
    if args.seed < 0:
        raise CannotAudit(f"bad option --seed {args.seed}: must be at least 0")
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT):
        raise CannotAudit(f"bad option --timeout {args.timeout:g}: must be a number of seconds above 0 and at most "
                          f"{MAX_TIMEOUT:g}")
    if not 256 <= args.memory <= MAX_MEMORY_MB:
        raise CannotAudit(f"bad option --memory {args.memory}: must be from 256 to {MAX_MEMORY_MB} MB")
    if args.jobs < 1:
        raise CannotAudit(f"bad option --jobs {args.jobs}: must be at least 1")
    from ..report.json_report import unwritable

    for path in args.output or []:
        why = unwritable(path)
        if why:
            raise CannotAudit(f"bad option --output {path}: {why}")
    if args.inputs:
        from .infer import InputsError, parse_inputs

        try:
            parse_inputs(args.inputs)
        except InputsError as exc:
            raise CannotAudit(f"bad option --inputs: {exc}") from None
    if args.reference:
        from ..userloss import UsageError, reference_spec

        try:
            reference_spec(args.reference)
        except UsageError as exc:
            raise CannotAudit(f"bad option --reference: {exc}") from None


def _fill_repro(entry: dict, command: str) -> None:
    """Every finding carries the command that audits its loss again (the worker sets most)."""
    for ch in entry["checks"]:
        if ch["status"] in ("fail", "warn") and not ch.get("repro"):
            ch["repro"] = command


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _not_done(args, entries: list[dict]) -> list[str]:
    """What the command line asked for and the audit could not do, one line each: a ``--reference``
    or ``--inputs`` that did not apply to a loss, and no loss checked at all (every one skipped)."""
    out = []
    for e in entries:
        where = f"{e['file']}:{e['line']}: {e['name']}"
        for ch in e["checks"]:
            if ch["status"] != "skip":
                continue
            if args.reference and ch["check"] in ("reference", "oracle"):
                out.append(f"{where}: --reference {args.reference} not checked: {_first_line(ch['message'])}")
            elif args.inputs and ch["check"] == "inputs":
                out.append(f"{where}: --inputs does not fit it ({_first_line(ch['message'])}); --select the losses "
                           "it describes")
    if entries and all(e["status"] == "skip" for e in entries):
        why = "; ".join(f"{e['name']}: {_first_line(next((c['message'] for c in e['checks']), 'skipped'))}"
                        for e in entries[:3])
        out.append(f"no loss could be checked ({why}{'; ...' if len(entries) > 3 else ''})")
    return out


def run(args, argv: list[str] | None = None) -> int:
    from . import report
    from .discover import AuditSyntaxError, discover
    from ..signals import stop_on_signals
    from .sandbox import Limits, audit_file, interrupt, reset_interrupt

    started = time.perf_counter()
    command = ["losscheck", *(argv if argv is not None else sys.argv[1:])]
    files, entries, could_not, versions = [], [], [], {}
    options = {"reference": args.reference, "inputs": args.inputs, "framework": args.framework,
               "devices": {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"]}[args.device],
               "examples": args.examples, "seed": args.seed}
    limits = Limits(timeout=args.timeout, memory_mb=args.memory, cuda=args.device != "cpu")
    exit_code = EXIT_CANNOT
    lock = threading.Lock()
    reset_interrupt()
    # a signal kills the workers (each audit_file returns what finished) and the audit reports that
    with stop_on_signals(lambda why: interrupt()) as signals:
        try:
            _validate(args)
            work = []     # (file row, path, discovered file, chosen candidates)
            misses = []   # files with losses, none of them selected: an error only if no file has one
            for path in args.paths:
                try:
                    paths = _files(path)
                except CannotAudit as exc:
                    could_not.append(str(exc))
                    files.append({"path": path, "status": "error", "reason": str(exc)})
                    continue
                explicit = not os.path.isdir(path)
                for f in paths:
                    row = {"path": f, "status": "audited", "reason": "", "losses": 0}
                    files.append(row)
                    try:
                        info = discover(f)
                    except AuditSyntaxError as exc:
                        row.update(status="error", reason=str(exc))
                        could_not.append(str(exc))
                        continue
                    chosen = _selected(info.candidates, args.select)
                    if chosen:
                        work.append((row, f, info, chosen))
                    elif args.select and info.candidates:
                        names = ", ".join(c.name for c in info.candidates)
                        why = f"{f}:1: no loss named {', '.join(args.select)} (found: {names})"
                        row.update(status="no losses", reason=why)
                        misses.append(why)
                    else:
                        why = (f"{f}:1: no loss found (no function or class taking a prediction and a target, no "
                               "model.compile(loss=...), no nn.XLoss() assignment); name it *loss* or use "
                               "@losscheck.declare")
                        row.update(status="error" if explicit and not args.select else "no losses", reason=why)
                        if explicit and not args.select:
                            could_not.append(why)
            if args.select and not work:
                could_not += misses or [f"{', '.join(args.paths)}: no loss named {', '.join(args.select)}"]

            def audit_one(item):
                row, f, info, chosen = item
                t0 = time.perf_counter()
                repro = {c.name: _repro(args, f, c.name) for c in chosen}
                outcome = audit_file(f, f, info.frameworks, [c.to_json() for c in info.candidates],
                                     [c.name for c in chosen], options, limits, repro)
                for e in outcome.entries:
                    e["file"] = f
                    _fill_repro(e, repro.get(e["name"], ""))
                row.update(losses=len(outcome.entries), duration_s=round(time.perf_counter() - t0, 2),
                           restarts=outcome.restarts)
                if outcome.error:
                    row.update(status="error", reason=outcome.error)
                elif outcome.interrupted:
                    row.update(status="error", reason=f"{f}: interrupted after {len(outcome.entries)} of "
                                                      f"{len(chosen)} losses")
                with lock:   # kept as each file ends: an interrupted audit still reports what finished
                    entries.extend(outcome.entries)
                    versions.update(outcome.versions)
                    if outcome.error:
                        could_not.append(outcome.error)

            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=args.jobs) as pool:   # each file is its own sandboxed process
                for future in [pool.submit(audit_one, w) for w in work]:
                    future.result()
            if not work and not could_not:
                could_not.append(f"{', '.join(args.paths)}: no loss found in any file")
            could_not += _not_done(args, entries)
            if signals:
                could_not.append(f"interrupted ({signals[0]}): the report holds the {len(entries)} losses audited "
                                 "before")
            findings = any(e["status"] in ("fail", "warn") for e in entries)
            exit_code = EXIT_CANNOT if could_not else (EXIT_FINDINGS if findings else EXIT_OK)
        except CannotAudit as exc:
            could_not.append(str(exc))
        except KeyboardInterrupt:   # a second Ctrl-C
            could_not.append(f"interrupted (KeyboardInterrupt): the report holds the {len(entries)} losses audited "
                             "before")
        finally:
            doc = report.document(command=command, options=options, files=files, losses=entries, versions=versions,
                                  exit_code=exit_code, could_not_audit=could_not,
                                  duration_s=round(time.perf_counter() - started, 2))
            renderers = {"json": report.dumps, "html": report.to_html, "text": report.text}
            written = []
            if args.output:
                from ..report.json_report import write_atomic

                for path in args.output:
                    if any(r.startswith(f"bad option --output {path}:") for r in could_not):
                        continue
                    try:
                        write_atomic(path, renderers[args.format or _format_of(path)](doc))
                        written.append(path)
                    except OSError as exc:
                        could_not.append(f"--output {path}: cannot write the report: {exc.strerror or exc}")
                        exit_code = EXIT_CANNOT
    if args.output:
        sys.stdout.write(report.text(doc, args.verbose, errors=False))
        for path in written:
            print(f"wrote {path}")
    elif args.format in ("json", "html"):
        sys.stdout.write(renderers[args.format](doc) + ("\n" if args.format == "json" else ""))
    else:
        sys.stdout.write(report.text(doc, args.verbose, errors=False))
    for reason in could_not:
        print(f"losscheck audit: error: {reason}", file=sys.stderr)
    return exit_code
