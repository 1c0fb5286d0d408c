"""``losscheck selftest``: run the planted-bug corpus (:mod:`losscheck.mutants`) and measure
losscheck's own error rates.

For each mutant, the buggy loss and its correct twin are checked the same way (``via="check"``:
the property battery against the reference's oracle; ``via="audit"``: the audit of one loss, in
this process). Figures:

* detection: the buggy loss produced at least one ``fail`` or ``warn`` finding;
* right family: one of its findings has the mutant's code family (V G B A N D P X);
* twin alarms: ``fail``/``warn`` findings on the correct twins (must be 0);
* errors: losscheck itself failed (a harness error row, a check that crashed): never a detection.

Targets (exit 1 below them): detection >= 98%, right family >= 90%, no alarm on a twin, no error.
"""
from __future__ import annotations

import fnmatch
import time
import types
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .mutants import FRAMEWORKS, Mutant

TARGET_DETECTION = 0.98
TARGET_RIGHT_FAMILY = 0.90
FINDING_STATUSES = ("fail", "warn")
RUNTIME_OF = {"torch": "torch", "jax": "jax"}


@dataclass
class Run:
    """What checking one loss (buggy or twin) found."""
    findings: list[dict] = field(default_factory=list)   # {code, status, where, message}
    errors: list[str] = field(default_factory=list)       # losscheck's own failures
    duration_s: float = 0.0

    @property
    def codes(self) -> list[str]:
        return sorted({f["code"] for f in self.findings if f["code"]})

    @property
    def families(self) -> set[str]:
        return {c[0] for c in self.codes}


@dataclass
class Outcome:
    mutant: Mutant
    bug: Run
    twin: Run

    @property
    def detected(self) -> bool:
        return bool(self.bug.findings)

    @property
    def right_family(self) -> bool:
        return self.mutant.family in self.bug.families

    def row(self) -> dict:
        m = self.mutant
        return {"name": m.name, "framework": m.framework, "family": m.family, "via": m.via, "bug": m.bug,
                "reference": m.reference, "detected": self.detected, "right_family": self.right_family,
                "codes": self.bug.codes, "findings": self.bug.findings, "errors": self.bug.errors,
                "twin_alarms": self.twin.findings, "twin_errors": self.twin.errors,
                "duration_s": round(self.bug.duration_s + self.twin.duration_s, 3)}


# ---- checking one loss -----------------------------------------------------------------------------

def check_loss(m: Mutant, fn: Callable, *, examples: int, seed: int, dtypes: tuple[str, ...]) -> Run:
    """``fn`` (the mutant's buggy loss or its twin) checked as the mutant says."""
    started = time.perf_counter()
    run = Run()
    try:
        if m.via == "check":
            _by_check(m, fn, run, examples, seed, dtypes)
        else:
            _by_audit(m, fn, run, examples, seed)
    except Exception as exc:  # noqa: BLE001 - a harness failure is measured, never a detection
        run.errors.append(f"{type(exc).__name__}: {exc}"[:300])
    run.duration_s = time.perf_counter() - started
    return run


def _by_check(m: Mutant, fn: Callable, run: Run, examples: int, seed: int, dtypes: tuple[str, ...]) -> None:
    from .userloss import check_callable

    rows = check_callable(fn, m.reference, properties=m.properties, dtypes=dtypes, examples=examples, seed=seed,
                          name=m.name, framework=m.framework, params=dict(m.params), inputs=m.inputs)
    for r in rows:
        where = f"{r['property']}[{r['dtype']}]"
        if r["status"] in FINDING_STATUSES:
            run.findings.append({"code": r["code"], "status": r["status"], "where": where,
                                 "message": r["message"][:300], "seed": r["seed"], "check_seed": r["check_seed"]})
        elif r["status"] in ("error", "xpass"):
            run.errors.append(f"{where}: {r['status']}: {r['message'][:300]}")


def audit_subject(fn: Callable, name: str, framework: str):
    """``fn`` as the audit's worker resolves a loss found in a file (module globals, signature,
    captured constants, ``@losscheck.declare``), without a file."""
    import inspect
    import sys

    from .audit.worker import resolve

    globs = vars(sys.modules[fn.__module__]) if inspect.isclass(fn) else getattr(fn, "__globals__", {})
    module = types.ModuleType(f"losscheck_mutant_{name}")
    module.__dict__.update(globs)
    module.__dict__[name] = fn
    candidate = {"name": name, "line": 1, "kind": "class" if inspect.isclass(fn) else "function",
                 "locate": {"global": name}, "notes": []}
    subject = resolve(candidate, module, {"jax": "jax"}.get(framework, framework), [framework])
    if isinstance(subject, str):
        raise RuntimeError(f"cannot audit {name}: {subject}")
    return subject


def _by_audit(m: Mutant, fn: Callable, run: Run, examples: int, seed: int) -> None:
    from .audit.checks import Options, audit_subject as audit_one

    name = getattr(fn, "__name__", m.name.rpartition(".")[2])
    subject = audit_subject(fn, name, m.framework)
    entry = audit_one(subject, Options(reference=m.reference, inputs=m.audit_inputs, examples=examples, seed=seed))
    for c in entry["checks"]:
        if c["status"] in FINDING_STATUSES:
            run.findings.append({"code": c["code"], "status": c["status"], "where": c["check"],
                                 "message": c["message"][:300]})
        elif c["status"] == "skip" and c["message"].startswith("losscheck error"):
            run.errors.append(f"{c['check']}: {c['message'][:300]}")


# ---- the corpus ---------------------------------------------------------------------------------------

def corpus(frameworks: Iterable[str] | None = None, select: Iterable[str] | None = None) -> list[Mutant]:
    from .frameworks import installed
    from .mutants import load

    runtime = {"torch": "torch", "keras": "keras-tensorflow", "jax": "jax"}
    out = []
    for fw in frameworks or FRAMEWORKS:
        if not installed(runtime[fw]):
            continue
        out += load(fw)
    if select:
        pats = list(select)
        out = [m for m in out if any(fnmatch.fnmatchcase(m.name, p) for p in pats)]
    return out


def run(mutants: list[Mutant], *, examples: int = 5, seed: int = 0, dtypes: tuple[str, ...] = ("float64",),
        on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    import numpy as np

    outcomes = []
    with np.errstate(all="ignore"):
        for m in mutants:
            o = Outcome(m, check_loss(m, m.buggy, examples=examples, seed=seed, dtypes=dtypes),
                        check_loss(m, m.correct, examples=examples, seed=seed, dtypes=dtypes))
            outcomes.append(o)
            if on_outcome is not None:
                on_outcome(o)
    return outcomes


# ---- figures ------------------------------------------------------------------------------------------

def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def summary(outcomes: list[Outcome]) -> dict:
    """Rates overall, per framework and per family; the targets and whether they are met."""
    def figures(group: list[Outcome]) -> dict:
        n = len(group)
        det = sum(o.detected for o in group)
        right = sum(o.right_family for o in group)
        return {"mutants": n, "detected": det, "right_family": right,
                "detection_rate": _rate(det, n), "right_family_rate": _rate(right, n),
                "twin_alarms": sum(bool(o.twin.findings) for o in group),
                "errors": sum(bool(o.bug.errors or o.twin.errors) for o in group)}

    total = figures(outcomes)
    by_framework = {fw: figures([o for o in outcomes if o.mutant.framework == fw])
                    for fw in FRAMEWORKS if any(o.mutant.framework == fw for o in outcomes)}
    by_family = {f: figures([o for o in outcomes if o.mutant.family == f])
                 for f in "VGBANDPX" if any(o.mutant.family == f for o in outcomes)}
    met = {"detection": total["detection_rate"] is not None and total["detection_rate"] >= TARGET_DETECTION,
           "right_family": total["right_family_rate"] is not None
           and total["right_family_rate"] >= TARGET_RIGHT_FAMILY,
           "twin_alarms": total["twin_alarms"] == 0, "errors": total["errors"] == 0}
    return {**total, "by_framework": by_framework, "by_family": by_family,
            "targets": {"detection": TARGET_DETECTION, "right_family": TARGET_RIGHT_FAMILY, "twin_alarms": 0,
                        "errors": 0},
            "met": met, "passed": all(met.values())}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def text(outcomes: list[Outcome], s: dict) -> str:
    """The terminal report: per-family and per-framework tables, then every miss and alarm."""
    from .diagnoses import FAMILIES

    lines = [f"{'family':<34} {'mutants':>7} {'detected':>9} {'right family':>13} {'twin alarms':>12}"]
    for f, g in s["by_family"].items():
        lines.append(f"{f + ' ' + FAMILIES[f]:<34} {g['mutants']:>7} {_pct(g['detection_rate']):>9} "
                     f"{_pct(g['right_family_rate']):>13} {g['twin_alarms']:>12}")
    lines.append("")
    lines.append(f"{'framework':<34} {'mutants':>7} {'detected':>9} {'right family':>13} {'twin alarms':>12}")
    for fw, g in s["by_framework"].items():
        lines.append(f"{fw:<34} {g['mutants']:>7} {_pct(g['detection_rate']):>9} "
                     f"{_pct(g['right_family_rate']):>13} {g['twin_alarms']:>12}")
    lines.append("")
    for o in outcomes:
        m = o.mutant
        if not o.detected:
            lines.append(f"MISSED {m.name} [{m.family}, {m.via}]: {m.bug}")
        elif not o.right_family:
            lines.append(f"WRONG FAMILY {m.name} [{m.family}, {m.via}]: found {', '.join(o.bug.codes)}: {m.bug}")
        for f in o.twin.findings:
            lines.append(f"TWIN ALARM {m.name} [{f['where']}] {f['status']} {f['code']}: {f['message'][:200]}")
        for e in o.bug.errors + o.twin.errors:
            lines.append(f"ERROR {m.name}: {e[:200]}")
    t = s["targets"]
    lines.append(f"detection {_pct(s['detection_rate'])} ({s['detected']}/{s['mutants']}, target >= "
                 f"{100 * t['detection']:.0f}%), right family {_pct(s['right_family_rate'])} ({s['right_family']}/"
                 f"{s['mutants']}, target >= {100 * t['right_family']:.0f}%), twin alarms {s['twin_alarms']} "
                 f"(target 0), errors {s['errors']}: {'PASS' if s['passed'] else 'BELOW TARGET'}")
    return "\n".join(lines) + "\n"


def document(outcomes: list[Outcome], s: dict, *, examples: int, seed: int, dtypes: tuple[str, ...],
             command: list[str]) -> dict:
    from . import __version__

    return {"kind": "selftest", "losscheck": __version__, "command": command, "examples": examples, "seed": seed,
            "dtypes": list(dtypes), "versions": _versions(), "summary": s,
            "mutants": [o.row() for o in outcomes]}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("numpy", "hypothesis", "torch", "tensorflow", "tensorflow-cpu", "keras", "jax", "optax"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# ---- the command --------------------------------------------------------------------------------------

def main(args, argv: list[str] | None = None) -> int:
    """``losscheck selftest``: 0 targets met, 1 below a target, 2 could not run."""
    import json
    import os
    import sys

    from .cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

    if args.examples < 1:
        print(f"losscheck selftest: error: --examples must be at least 1, got {args.examples}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    mutants = corpus(args.framework, args.select)
    if not mutants:
        print("losscheck selftest: error: no mutant selected (frameworks not installed, or --select matches none)",
              file=sys.stderr)
        return EXIT_USAGE
    dtypes = tuple(args.dtype or ("float64",))

    def line(o: Outcome) -> None:
        if not args.quiet:
            mark = "ok  " if o.right_family and not o.twin.findings else ("MISS" if not o.detected else "FLAG")
            print(f"{mark} {o.mutant.name:<42} {o.mutant.family} -> {', '.join(o.bug.codes) or 'nothing'}"
                  f"{'; twin: ' + ', '.join(sorted({f['code'] for f in o.twin.findings})) if o.twin.findings else ''}",
                  flush=True)

    outcomes = run(mutants, examples=args.examples, seed=args.seed, dtypes=dtypes, on_outcome=line)
    s = summary(outcomes)
    sys.stdout.write(text(outcomes, s))
    if args.json:
        from .report.json_report import write_atomic

        doc = document(outcomes, s, examples=args.examples, seed=args.seed, dtypes=dtypes,
                       command=["losscheck", *(argv if argv is not None else sys.argv[1:])])
        write_atomic(args.json, json.dumps(doc, indent=1, default=str, allow_nan=True))
        print(f"wrote {args.json}")
    return EXIT_OK if s["passed"] else EXIT_FINDINGS
