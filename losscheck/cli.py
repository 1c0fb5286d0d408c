"""`losscheck ...`: the command line.

Exit codes: 0 every check passed (deviations and expected failures included), 1 at least one
failure, 2 could not run (bad usage, unknown id) with a one-line reason.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    from .properties import NAMES
    from .tolerance import DTYPES

    p = argparse.ArgumentParser(prog="losscheck", description="Prove loss functions right, or show how they are wrong.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list the catalog of framework losses")
    ls.add_argument("--framework", choices=["torch", "keras", "optax"])
    ls.add_argument("--family")
    what = ls.add_mutually_exclusive_group()
    what.add_argument("--known", action="store_true",
                      help="print the recorded deviations, expected failures and declared precision as Markdown")
    what.add_argument("--coverage", action="store_true",
                      help="compare the catalog with the losses the installed frameworks export, and "
                           "the specs' draws with those losses' parameters")

    sub.add_parser("codes", help="print the diagnosis codes as a Markdown table")

    cp = sub.add_parser("compat", help="activation/loss compatibility table (loss x last activation)")
    cp.add_argument("ids", nargs="*", metavar="ID", help="catalog ids (default: every loss with a documented activation)")
    cp.add_argument("--framework", choices=["torch", "keras", "optax"])
    cp.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    cp.add_argument("--json", metavar="PATH", help="write the rows, with every measured effect, as JSON")
    cp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    ck = sub.add_parser("check", help="check catalog losses against the float64 oracle")
    ck.add_argument("ids", nargs="*", metavar="ID", help="catalog ids (see `losscheck list`)")
    ck.add_argument("--all", action="store_true", help="check the whole catalog")
    ck.add_argument("--framework", choices=["torch", "keras", "optax"])
    ck.add_argument("--keras-backend", choices=["tensorflow", "jax", "torch"], action="append",
                    help="restrict Keras checks to this backend (repeatable)")
    ck.add_argument("--runtime", action="append", help="restrict to a runtime (repeatable): torch, jax, keras-jax, ...")
    ck.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtypes to test (default float64, float32)")
    ck.add_argument("--property", action="append", choices=list(NAMES),
                    help="properties (default value and gradient; also batch, numerics, rank_mismatch, compat, device, "
                         "compiled)")
    ck.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where the losses run (default cpu); a runtime whose framework sees no GPU is skipped")
    ck.add_argument("--examples", type=int, default=50, help="hypothesis examples per check (default 50)")
    ck.add_argument("--seed", type=int, default=0, help="base seed; every check derives its own from it")
    ck.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: CPU count)")
    ck.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ck.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    cm = sub.add_parser("compare", help="cross-framework matrix: the same inputs through every implementation of a loss")
    cm.add_argument("ids", nargs="*", metavar="ID",
                    help="catalog ids (default: every loss two or more frameworks implement; one id: it against "
                         "every other implementation of its loss)")
    cm.add_argument("--examples", type=int, default=20, help="examples per loss (default 20)")
    cm.add_argument("--seed", type=int, default=0)
    cm.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtypes (default float64, float32)")
    cm.add_argument("--runtime", action="append", help="only this runtime (repeatable): torch, jax, keras-jax, ...")
    cm.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    cm.add_argument("--output", "-o", metavar="PATH", help="write to PATH instead of standard output")
    cm.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: CPU count)")
    cm.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    from .nightly import add_parsers as add_nightly_parsers

    add_nightly_parsers(sub)  # nightly, merge, report

    from .audit.cli import add_parser as add_audit_parser

    add_audit_parser(sub)  # audit

    st = sub.add_parser("selftest", help="run the planted-bug corpus and print losscheck's own error rates")
    st.add_argument("--framework", action="append", choices=["torch", "keras", "jax"],
                    help="corpus of this framework only (repeatable; default every installed one)")
    st.add_argument("--select", action="append", metavar="GLOB", help="mutants whose name matches (repeatable)")
    st.add_argument("--examples", type=int, default=5, help="hypothesis examples per check (default 5)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtypes of the checks (default float64)")
    st.add_argument("--json", metavar="PATH", help="write every mutant's findings and the rates as JSON")
    st.add_argument("--quiet", "-q", action="store_true", help="no line per mutant")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "codes":
            return cmd_codes(args)
        if args.command == "compat":
            return cmd_compat(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "audit":
            from .audit.cli import run as cmd_audit

            return cmd_audit(args, argv)
        if args.command == "selftest":
            from .selftest import main as cmd_selftest

            return cmd_selftest(args, argv)
        if args.command in ("nightly", "merge", "report"):
            from . import nightly

            return nightly.main(args)
        return cmd_check(args)
    except UsageError as exc:
        print(f"losscheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("losscheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`losscheck list | head`): no traceback, and none at exit when Python
        # flushes stdout again; 141 is what a shell reports for a process SIGPIPE ended
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def cmd_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import catalog

    if args.coverage:
        return cmd_coverage(args)
    if args.known:
        from .known import markdown

        print(markdown(_listed(catalog.all_specs(), args)), end="")
        return EXIT_OK

    table = Table(title="losscheck catalog", show_lines=False)
    for col in ("id", "framework", "family", "reference", "runtimes", "parameters"):
        table.add_column(col, overflow="fold")
    n = 0
    for s in _listed(catalog.all_specs(), args):
        table.add_row(s.id, s.framework, s.family, s.reference, ", ".join(s.runtimes), s.params_doc)
        n += 1
    Console(width=200).print(table)
    print(f"{n} specs")
    return EXIT_OK


def _listed(specs, args):
    return [s for s in specs if (not args.framework or s.framework == args.framework)
            and (not args.family or s.family == args.family)]


def cmd_coverage(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .coverage import FRAMEWORKS, coverage

    rows = coverage([args.framework] if args.framework else FRAMEWORKS)
    table = Table(title="catalog coverage of the installed frameworks' public losses and their parameters")
    for col in ("framework", "exported", "covered", "missing", "parameters never drawn"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.framework, str(len(r.exported)) if not r.error else f"unavailable: {r.error}",
                      str(len(r.covered)), "\n".join(r.missing) or "-",
                      "\n".join(f"{loss}: {', '.join(ps)}" for loss, ps in r.undrawn) or "-")
    Console(width=160).print(table)
    return EXIT_FINDINGS if any(r.missing or r.undrawn for r in rows) else EXIT_OK


def cmd_compat(args) -> int:
    """One analysis per loss, on its first runtime (the measured effects are the loss's, not the backend's)."""
    from . import catalog, runner
    from .catalog.pairings import PAIRINGS
    from .compat import markdown
    from .report import console, json_report

    try:
        specs = [catalog.get(i) for i in args.ids] if args.ids else \
            [s for s in catalog.all_specs() if s.id in PAIRINGS]
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    specs = [s for s in specs if not args.framework or s.framework == args.framework]
    tasks = [runner.Task(s.id, s.runtimes[0], "compat", "float64") for s in specs]
    if not tasks:
        raise UsageError("nothing to analyse: the filters exclude every loss with a documented activation")
    with console.Progress(len(tasks), enabled=not args.quiet) as progress:
        rows, versions = runner.run(tasks, examples=1, seed=0, on_row=progress.advance)
    rows.sort(key=lambda r: [s.id for s in specs].index(r["id"]))
    table = markdown(rows)
    print(table, end="")
    for r in rows:
        if r["status"] in runner.FAILING:
            print(f"{r['status'].upper()} {r['id']} {r['code']} {r['message']}")
    if args.markdown:
        json_report.write_atomic(args.markdown, table)
    if args.json:
        json_report.write(args.json, rows, versions=versions, seed=0, examples=1,
                          command=["losscheck", *sys.argv[1:]])
    return EXIT_FINDINGS if any(r["status"] in runner.FAILING for r in rows) else EXIT_OK


def cmd_compare(args) -> int:
    """Exit 0: every pair agrees or differs for a documented reason; 1: an unexplained disagreement."""
    from . import compare
    from .compare import render
    from .frameworks import RUNTIMES
    from .report import console, json_report

    if args.examples < 1:
        raise UsageError(f"--examples must be at least 1, got {args.examples}")
    bad = set(args.runtime or ()) - set(RUNTIMES)
    if bad:
        raise UsageError(f"unknown runtime {sorted(bad)[0]!r}; expected one of {', '.join(RUNTIMES)}")
    dtypes, runtimes = tuple(args.dtype or compare.DTYPES), set(args.runtime or ()) or None
    try:
        groups, _ = compare.selection(args.ids or None)
        with console.Progress(len(compare.plan(groups, dtypes, runtimes)), enabled=not args.quiet) as progress:
            doc = compare.run(args.ids or None, examples=args.examples, seed=args.seed, dtypes=dtypes,
                              runtimes=runtimes, jobs=args.jobs, on_row=progress.advance,
                              command=["losscheck", *sys.argv[1:]])
    except (KeyError, ValueError) as exc:
        raise UsageError(exc.args[0]) from None
    out = {"json": lambda d: json.dumps(d, indent=1, default=str) + "\n", "markdown": render.markdown,
           "text": render.text}[args.format](doc)
    if args.output:
        json_report.write_atomic(args.output, out)
        print(f"wrote {args.output}")
    else:
        print(out, end="")
    return compare.exit_code(doc)


def cmd_codes(args) -> int:
    from .diagnoses import codes_markdown

    print(codes_markdown())
    return EXIT_OK


def _select(args):
    from . import catalog
    from .frameworks import KERAS_BACKEND_OF

    if args.all == bool(args.ids):
        raise UsageError("give catalog ids or --all (not both)")
    if args.examples < 1:
        raise UsageError(f"--examples must be at least 1, got {args.examples}")
    specs = catalog.all_specs() if args.all else []
    for i in args.ids:
        try:
            specs.append(catalog.get(i))
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
    if args.framework:
        specs = [s for s in specs if s.framework == args.framework]
    runtimes = set(args.runtime or [])
    if args.keras_backend:
        keras = {f"keras-{b}" for b in args.keras_backend}
        runtimes = (runtimes & keras) if runtimes else keras | {"torch", "jax"}
    bad = runtimes - {"torch", "jax", *KERAS_BACKEND_OF}
    if bad:
        raise UsageError(f"unknown runtime {sorted(bad)[0]!r}; expected torch, jax, keras-tensorflow, keras-jax, keras-torch")
    return specs, runtimes or None


def _on_a_gpu(tasks, seed):
    """(the tasks whose framework sees a GPU here, skip rows for the others)."""
    from . import catalog, runner
    from .frameworks import ENGINE_OF
    from .nightly import gpu_engines

    engines = gpu_engines()
    keep = [t for t in tasks if ENGINE_OF[t.runtime] in engines]
    skipped = [runner.skipped_row(catalog.get(t.spec_id), t, seed, f"no cuda device for {t.runtime} on this machine")
               for t in tasks if ENGINE_OF[t.runtime] not in engines]
    return keep, skipped


def cmd_check(args) -> int:
    from . import runner
    from .properties import DEFAULT
    from .report import console, json_report

    specs, runtimes = _select(args)
    tasks = runner.plan(specs, properties=args.property or list(DEFAULT),
                        dtypes=args.dtype or ["float64", "float32"], runtimes=runtimes, device=args.device)
    if not tasks:
        raise UsageError("nothing to check: the filters exclude every catalog entry")
    if args.json:
        why = json_report.unwritable(args.json)
        if why:
            raise UsageError(f"--json {args.json}: {why}")
    tasks, no_gpu = _on_a_gpu(tasks, args.seed) if args.device != "cpu" else (tasks, [])
    with console.Progress(len(tasks) + len(no_gpu), enabled=not args.quiet) as progress, \
            runner.stop_on_signals() as signals:
        for row in no_gpu:
            progress.advance(row)
        rows, versions = runner.run(tasks, examples=args.examples, seed=args.seed, jobs=args.jobs,
                                    on_row=progress.advance)
    rows = no_gpu + rows
    console.print_summary(rows)
    code = EXIT_FINDINGS if any(r["status"] in runner.FAILING for r in rows) else EXIT_OK
    if args.json:
        try:
            json_report.write(args.json, rows, versions=versions, seed=args.seed, examples=args.examples,
                              command=["losscheck", *sys.argv[1:]])
            print(f"wrote {args.json}")
        except OSError as exc:
            print(f"losscheck: error: --json {args.json}: cannot write the report: {exc.strerror or exc}",
                  file=sys.stderr)
            code = EXIT_USAGE
    if signals:
        from .signals import exit_status

        print(f"losscheck: interrupted ({signals[0]}): the checks not finished are skip rows", file=sys.stderr)
        return exit_status(signals[0])
    return code


if __name__ == "__main__":
    from losscheck.cli import main as _main  # `python -m losscheck.cli`: the one UsageError class losscheck raises

    sys.exit(_main())
