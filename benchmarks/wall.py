"""Section ``wall`` (issue 8, item 3): wall times of the command-line entry points from a cold
start, each a fresh ``losscheck`` process using the machine's cores as it does by default:

- ``losscheck check --all --examples K`` with an empty JAX compilation cache (cold), then again with
  the cache that run filled (warm: a nightly machine that keeps ``~/.cache/losscheck/jax``);
- ``losscheck nightly --examples K`` (every property, float64 and float32) into a scratch directory,
  without history;
- ``losscheck audit FILE`` for each seed example file in ``examples/``, then ``audit examples/``.

Every command's exit status and summary counts are recorded beside its time: a wall time of a run
that failed is not a wall time of the product.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _losscheck() -> list[str]:
    return [sys.executable, "-m", "losscheck.cli"]


def timed(name: str, args: list[str], env: dict, timeout_s: float, scratch: Path | None = None) -> dict:
    """Run ``losscheck args``; its wall time, exit status and the tail of its output (``scratch``
    shown as ``<tmp>`` in the command)."""
    started = time.perf_counter()
    try:
        done = subprocess.run([*_losscheck(), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        rc, out = done.returncode, (done.stdout + done.stderr)
    except subprocess.TimeoutExpired as exc:
        rc, out = None, f"timed out after {timeout_s:.0f} s: {exc}"
    shown = " ".join(args) if scratch is None else " ".join(args).replace(str(scratch), "<tmp>")
    return {"name": name, "command": "losscheck " + shown, "wall_s": time.perf_counter() - started,
            "exit": rc, "tail": out.strip().splitlines()[-3:]}


def _counts(report: Path) -> dict:
    """Statuses of a ``--json`` report's rows, and the summed check time per runtime."""
    doc = json.loads(report.read_text())
    rows = doc.get("results", doc) if isinstance(doc, dict) else doc
    per_runtime = collections.defaultdict(float)
    for r in rows:
        per_runtime[r["runtime"]] += r.get("duration_s") or 0.0
    return {"checks": len(rows), "statuses": dict(collections.Counter(r["status"] for r in rows)),
            "check_seconds_by_runtime": {k: round(v, 1) for k, v in sorted(per_runtime.items())}}


def measure(quick: bool = False, examples: int | None = None, nightly_examples: int | None = None,
            timeout_s: float = 3600, env: dict | None = None, log=print) -> list[dict]:
    """The rows of the section; ``quick``: torch only, one example, one audit file (a smoke run).
    ``env``: the commands' environment (default this process's)."""
    k = examples or (1 if quick else 50)
    nk = nightly_examples or (1 if quick else 5)
    narrow = ["--framework", "torch"] if quick else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**(os.environ if env is None else env), "LOSSCHECK_JAX_CACHE_DIR": str(tmp / "jax-cache")}
        for temperature in ("cold", "warm"):
            report = tmp / f"check-{temperature}.json"
            log(f"wall: losscheck check --all --examples {k} ({temperature} XLA cache)")
            row = timed(f"check --all ({temperature} XLA cache)",
                        ["check", "--all", *narrow, "--examples", str(k), "-q",
                         "--json", str(report)], env, timeout_s, tmp)
            if report.exists():
                row.update(_counts(report))
            rows.append(row)
        log(f"wall: losscheck nightly --examples {nk}")
        row = timed("nightly", ["nightly", *narrow, "--examples", str(nk), "--output", str(tmp / "nightly"),
                                "--no-history", "-q"], env, timeout_s, tmp)
        if (tmp / "nightly" / "report.json").exists():
            row.update(_counts(tmp / "nightly" / "report.json"))
        rows.append(row)
        files = sorted(p for p in (ROOT / "examples").glob("*.py"))[: 1 if quick else None]
        for path in files:
            log(f"wall: losscheck audit {path.name}")
            rows.append(timed(f"audit {path.name}", ["audit", str(path.relative_to(ROOT)), "--output",
                                                     str(tmp / f"audit-{path.stem}.json")], env, timeout_s, tmp))
        if not quick:
            log("wall: losscheck audit examples/")
            rows.append(timed("audit examples/", ["audit", "examples", "--output", str(tmp / "audit.json")],
                              env, timeout_s, tmp))
    return rows
