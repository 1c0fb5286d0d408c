"""losscheck's benchmark suite (issue 8), one command:

    .venv/bin/python benchmarks/run.py [--quick] [--output BENCHMARKS.json]

Sections, each measured side by side in one process (the harness overhead in one process per
runtime, as Keras needs):

1. ``gradient``: one example's gradient check at a fixed shape by losscheck (float64 and float32)
   vs torch.autograd.gradcheck (slow and fast mode), jax.test_util.check_grads and
   tf.test.compute_gradient, with each checker's verdict on a planted one-element gradient error;
2. ``overhead``: runner.run_check (value+gradient, float64+float32) over K examples vs bare
   framework forward+backward calls on the inputs hypothesis drew;
3. ``import``: ``import losscheck`` time;
4. ``wall``: wall times of ``losscheck check --all`` (cold and warm XLA cache), ``losscheck nightly``
   and ``losscheck audit`` on each seed example file, each a fresh process (about 15 minutes on the
   2-core machine; ``--sections import,overhead,gradient`` leaves it out).

Prints Markdown tables (medians, ratios, the issue's targets and whether they are met) and writes
every figure to ``--output`` as JSON. ``--quick`` runs every piece on tiny shapes and few examples
(a smoke run: its times mean nothing). Every framework runs on ``--threads`` threads (default 1,
as in the runner's one-worker-per-core pools; see threads.py); the ``wall`` section's commands run
as a user runs them, on every core.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:   # run as a script: the repository root holds the benchmarks package
    sys.path.insert(0, ROOT)

from benchmarks import machine, tables, threads  # noqa: E402

SECTIONS = ("import", "overhead", "gradient", "wall")
#: (catalog entry, runtime) of the harness-overhead section: one per framework family
OVERHEAD_ENTRIES = (("torch.nn.CrossEntropyLoss", "torch"),
                    ("keras.losses.CategoricalCrossentropy", "keras-tensorflow"),
                    ("optax.losses.softmax_cross_entropy", "jax"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, few examples: a smoke run")
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--cases", default="", help="gradient cases to run, by name (default: all)")
    parser.add_argument("--checkers", default="", help="gradient checkers to run, comma-separated (default: all)")
    parser.add_argument("--runtimes", default="", help="overhead runtimes to run (default: torch, keras-tensorflow, jax)")
    parser.add_argument("--examples", type=int, help="K, examples per check in the overhead section (default 50; quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per framework (default 1, one per worker as the runner runs; 0: framework defaults)")
    parser.add_argument("--import-runs", type=int, help="runs of each import command (default 10; quick 3)")
    parser.add_argument("--wall-examples", type=int, help="examples per check of the wall section's check --all "
                                                          "(default 50; quick 1, torch only)")
    parser.add_argument("--nightly-examples", type=int, help="examples per check of its nightly (default 5: the "
                                                             "demo's; quick 1, torch only)")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the cProfiles (of losscheck's gradient check where it is slower than a fast "
                             "checker, of the harness where it is above 3x the bare calls)")
    args = parser.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; expected a subset of {SECTIONS}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_import(args) -> dict:
    from benchmarks import import_time

    runs = args.import_runs or (3 if args.quick else 10)
    log(f"import: {runs} runs of each command")
    return import_time.measure(runs)


def run_overhead(args) -> list[dict]:
    from benchmarks import overhead

    examples = args.examples or (3 if args.quick else 50)
    wanted = [r for r in args.runtimes.split(",") if r]
    entries = [(s, r) for s, r in OVERHEAD_ENTRIES if not wanted or r in wanted]
    plan = [(s, r, args.threads) for s, r in entries]
    if args.threads > 0 and not args.quick and any(r == "torch" for _, r in entries):
        plan.append(("torch.nn.CrossEntropyLoss", "torch", 0))   # the cost of torch's default thread pool
    rows = []
    for spec, runtime, n in plan:
        log(f"overhead: {spec} on {runtime}, {examples} examples per check, threads {n or 'default'}")
        try:
            row = overhead.run_subprocess(spec, runtime, examples, runs=2 if args.quick else 3, threads=n)
            if n == args.threads and max(row["ratio_first"], row["ratio_warm"]) > 3 and not args.no_profile:
                log(f"overhead: {spec} on {runtime} above 3x: profiling")
                row["profile"] = overhead.profile_subprocess(spec, runtime, examples, threads=n)
        except Exception as exc:  # noqa: BLE001 - one runtime failing must not lose the others
            row = {"spec": spec, "runtime": runtime, "threads": n, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            log(row["error"])
        rows.append(row)
    return rows


def run_wall(args) -> list[dict]:
    from benchmarks import wall

    return wall.measure(quick=args.quick, examples=args.wall_examples, nightly_examples=args.nightly_examples,
                        env=USER_ENV, log=log)


def run_gradient(args) -> list[dict]:
    from benchmarks import gradient_bench, gradient_cases

    checkers = tuple(c for c in args.checkers.split(",") if c) or gradient_bench.CHECKERS
    unknown = set(checkers) - set(gradient_bench.CHECKERS)
    if unknown:
        raise SystemExit(f"unknown checkers {sorted(unknown)}; expected some of {gradient_bench.CHECKERS}")
    gradient_bench.prepare_frameworks(checkers)
    threads.apply(args.threads, tensorflow="tf.test.compute_gradient" in checkers)
    wanted = [c for c in args.cases.split(",") if c]
    cases = [c for c in gradient_cases.all_cases(quick=args.quick) if not wanted or c.name in wanted]
    if not cases:
        raise SystemExit(f"no gradient case named {wanted}")
    results = []
    for case in cases:
        log(f"gradient: {case.name} {case.shape}")
        result = gradient_bench.bench_case(case, checkers=checkers, repeats=3 if args.quick else 15,
                                           budget_s=1.0 if args.quick else 20.0, log=log).as_dict()
        ratios = tables.gradient_ratios(result)
        slower = [k for k in ("fast_over_losscheck_both", "check_grads_over_losscheck_both")
                  if ratios[k] is not None and ratios[k] < 1]
        if slower and not args.no_profile:
            log(f"gradient: losscheck slower than {slower} on {case.name}: profiling")
            result["profile_float64"] = gradient_bench.profile_losscheck(case, "float64", top=15,
                                                                         runs=3 if args.quick else 20)
        results.append(result)
    return results


#: the environment before this script pins the frameworks' threads: the wall section's commands
#: run as a user's shell would start them
USER_ENV = dict(os.environ)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.update(threads.env(args.threads))   # before JAX loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.perf_counter()
    command = ["python", *sys.argv] if argv is None else ["python", "benchmarks/run.py", *argv]
    doc = {"schema": "losscheck-benchmarks/1", "command": shlex.join(command),
           "machine": machine.describe(ROOT), "settings": {"quick": args.quick, "threads": args.threads,
                                                           "sections": args.sections}}
    runners = {"import": run_import, "overhead": run_overhead, "gradient": run_gradient, "wall": run_wall}
    for section in SECTIONS:
        if section in args.sections:
            doc[section] = runners[section](args)
    doc["settings"]["thread_settings_main_process"] = threads.in_process()
    doc["load_average_end"] = machine.load_average()
    doc["wall_s"] = time.perf_counter() - started
    if args.output:
        with open(args.output, "w") as f:
            json.dump(doc, f, indent=2, default=str)
    print(tables.render(doc))
    profiles = [(f"losscheck's float64 gradient check: {c['case']}", c.get("profile_float64"))
                for c in doc.get("gradient", [])]
    profiles += [(f"harness: {r['spec']} on {r['runtime']}", r.get("profile")) for r in doc.get("overhead", [])]
    for title, text in profiles:
        if text:
            print(f"### cProfile of {title}\n\n```text\n{text.strip()}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
