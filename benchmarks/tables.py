"""Markdown tables of the benchmark results (the JSON document :mod:`run` writes)."""
from __future__ import annotations

from benchmarks.timing import human

CHECKER_COLUMNS = ("losscheck float64", "losscheck float32", "gradcheck(fast_mode=False)",
                   "gradcheck(fast_mode=True)", "jax check_grads", "tf.test.compute_gradient")
SHORT = {"losscheck float64": "losscheck f64", "losscheck float32": "losscheck f32",
         "gradcheck(fast_mode=False)": "gradcheck slow", "gradcheck(fast_mode=True)": "gradcheck fast",
         "jax check_grads": "check_grads", "tf.test.compute_gradient": "compute_gradient"}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _checker(case: dict, name: str) -> dict | None:
    return next((c for c in case["checkers"] if c["checker"] == name), None)


def median_s(case: dict, name: str) -> float | None:
    c = _checker(case, name)
    return None if c is None or c["timing"] is None or not c["clean_passed"] else c["timing"]["median_s"]


def losscheck_both_s(case: dict) -> float | None:
    a, b = median_s(case, "losscheck float64"), median_s(case, "losscheck float32")
    return None if a is None or b is None else a + b


def _cell(c: dict | None) -> str:
    if c is None:
        return "not run"
    if c["timing"] is None:
        return c["clean_message"][:60] or "could not run"
    t = c["timing"]
    runs = f"{t['runs']} runs" if t["runs"] > 1 else "1 run"
    verdict = "" if c["clean_passed"] else " **fails on the correct loss**"
    found = {True: "yes", False: "**no**", None: "n/a"}[c["detected"]]
    return f"{human(t['median_s'])} ({runs}){verdict}; planted: {found}"


def gradient_table(cases: list[dict]) -> str:
    header = ["case", "shape", "elements", *(SHORT[n] for n in CHECKER_COLUMNS)]
    rows = [[c["case"], c["shape"], f"{c['elements']:,}", *(_cell(_checker(c, n)) for n in CHECKER_COLUMNS)]
            for c in cases]
    return _table(header, rows)


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def _fmt_ratio(r: float | None, target: float) -> str:
    if r is None:
        return "n/a"
    return f"{r:,.1f}x {'met' if r >= target else '**not met**'}"


def gradient_ratios(case: dict) -> dict:
    """Targets of issue 8: gradcheck slow / losscheck f64 >= 100; gradcheck fast and check_grads
    over losscheck f64+f32 (float32 covered too) >= 1."""
    f64, both = median_s(case, "losscheck float64"), losscheck_both_s(case)
    return {"slow_over_losscheck_f64": _ratio(median_s(case, "gradcheck(fast_mode=False)"), f64),
            "fast_over_losscheck_both": _ratio(median_s(case, "gradcheck(fast_mode=True)"), both),
            "check_grads_over_losscheck_both": _ratio(median_s(case, "jax check_grads"), both),
            "compute_gradient_over_losscheck_f64": _ratio(median_s(case, "tf.test.compute_gradient"), f64)}


def ratio_table(cases: list[dict]) -> str:
    header = ["case", "gradcheck slow / losscheck f64 (target >= 100x)",
              "gradcheck fast / losscheck f64+f32 (target >= 1x)", "check_grads / losscheck f64+f32 (target >= 1x)",
              "compute_gradient / losscheck f64 (no target)"]
    rows = []
    for c in cases:
        r = gradient_ratios(c)
        rows.append([c["case"], _fmt_ratio(r["slow_over_losscheck_f64"], 100),
                     _fmt_ratio(r["fast_over_losscheck_both"], 1), _fmt_ratio(r["check_grads_over_losscheck_both"], 1),
                     "n/a" if r["compute_gradient_over_losscheck_f64"] is None
                     else f"{r['compute_gradient_over_losscheck_f64']:,.1f}x"])
    return _table(header, rows)


def first_call_notes(cases: list[dict]) -> str:
    """check_grads' first call includes jax.jit's compilations; the table shows later calls."""
    parts = []
    for c in cases:
        chk = _checker(c, "jax check_grads")
        if chk and chk["timing"]:
            parts.append(f"{c['case']} {human(chk['timing']['first_s'])}")
    return "check_grads first call (compilation included): " + ", ".join(parts) if parts else ""


def overhead_table(rows: list[dict]) -> str:
    header = ["runtime", "catalog entry", "threads", "examples (value+gradient, f64+f32)", "harness first run",
              "harness warm", "bare first pass", "bare warm", "ratio first", "ratio warm", "target <= 3x (first / warm)"]
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["runtime"], r["spec"], str(r.get("threads", "")), r["error"][:80], *[""] * 7])
            continue
        out.append([r["runtime"], r["spec"], str(r["threads"] or "default"), str(r["cases"]), human(r["harness_first_s"]),
                    human(r["harness_warm_s"]), human(r["bare_first_pass_s"]), human(r["bare_warm_pass_s"]),
                    f"{r['ratio_first']:,.1f}x", f"{r['ratio_warm']:,.1f}x",
                    " / ".join("met" if x <= 3 else "**not met**" for x in (r["ratio_first"], r["ratio_warm"]))])
    return _table(header, out)


def overhead_parts_table(rows: list[dict]) -> str:
    """Per drawn example (warm): the harness, hypothesis generating it alone, hypothesis generating an
    example of one integer (its floor), the properties checking it alone, and the bare call; the last
    column is the ratio the check alone would have."""
    header = ["runtime", "catalog entry", "harness per example", "hypothesis draw alone",
              "hypothesis drawing one integer", "check alone", "bare call", "check alone / bare call"]
    out = [[r["runtime"], r["spec"], human(r["harness_warm_ms_per_case"] / 1e3), human(r["draw_ms_per_case"] / 1e3),
            human(r["one_integer_draw_ms_per_case"] / 1e3 if "one_integer_draw_ms_per_case" in r else None),
            human(r["check_ms_per_case"] / 1e3), human(r["bare_warm_ms_per_case"] / 1e3),
            f"{r['check_ms_per_case'] / r['bare_warm_ms_per_case']:,.1f}x"]
           for r in rows if "error" not in r and "draw_ms_per_case" in r]
    return _table(header, out) if out else ""


def wall_table(rows: list[dict]) -> str:
    header = ["command", "wall", "exit", "checks", "statuses", "check time by runtime (summed over workers)"]
    out = []
    for r in rows:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.get("statuses", {}).items()))
        per = ", ".join(f"{k} {v:,.0f} s" for k, v in r.get("check_seconds_by_runtime", {}).items())
        out.append([f"`{r['command']}`", human(r["wall_s"]), "timed out" if r["exit"] is None else str(r["exit"]),
                    str(r.get("checks", "")), statuses, per])
    return _table(header, out)


def import_table(result: dict) -> str:
    header = ["python -c pass", "python -c 'import losscheck'", "import losscheck", "target < 0.3 s",
              "frameworks loaded"]
    row = [human(result["python_pass_s"]), human(result["import_losscheck_s"]), human(result["import_s"]),
           "met" if result["import_s"] < 0.3 else "**not met**", ", ".join(result["frameworks_loaded"]) or "none"]
    return _table(header, [row])


def machine_lines(doc: dict) -> str:
    m = doc["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return "\n".join([f"- command: `{doc['command']}`", f"- date: {m['date']}; commit {m['commit']}",
                      f"- machine: {m['cpu']}, {m['cores']} cores ({m['platform']}); load average "
                      f"(1, 5, 15 min) at the start {m['load_average_1_5_15min']}, at the end {doc.get('load_average_end')}",
                      f"- versions: {versions}",
                      f"- framework threads: {doc['settings']['threads'] or 'framework defaults'}"])


def render(doc: dict) -> str:
    parts = ["## Machine", machine_lines(doc)]
    if doc.get("gradient"):
        parts += ["## Gradient verification of one example",
                  "Median time per check; `planted`: did the checker flag the planted one-element gradient error.",
                  gradient_table(doc["gradient"]), ratio_table(doc["gradient"]), first_call_notes(doc["gradient"])]
        raw = [f"{c['case']}: {c['raw_gradcheck']}" for c in doc["gradient"] if c.get("raw_gradcheck")]
        if raw:
            parts.append("gradcheck(fast_mode=True) on the bare torch loss (no log_softmax in front): " + "; ".join(raw))
    if doc.get("overhead"):
        parts += ["## Harness overhead", overhead_table(doc["overhead"]),
                  "Where a drawn example's warm time goes:", overhead_parts_table(doc["overhead"])]
    if doc.get("import"):
        parts += ["## import losscheck", import_table(doc["import"])]
    if doc.get("wall"):
        parts += ["## Wall times from a cold start", "Each command a fresh process on every core; "
                  "`audit` exits 1 when it finds a bug (the seeds have them).", wall_table(doc["wall"])]
    return "\n\n".join(p for p in parts if p) + "\n"
