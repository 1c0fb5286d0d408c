"""Markdown summary for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY and the like): status
counts, what is new since the previous run (when the history was used), and a table of failures."""
from __future__ import annotations

from .table import ResultTable, STATUS_ORDER

#: failures listed in full; the rest are counted (a job summary has a size limit)
MAX_FAILURES = 200


def cell(text, limit: int = 160) -> str:
    """A table cell: one line, pipes escaped, HTML-looking text made inert, cut at ``limit``."""
    text = " ".join(str("" if text is None else text).split())
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _eps(x) -> str:
    if x is None:
        return ""
    try:
        return f"{float(x):,.3g}"
    except (TypeError, ValueError):
        return str(x)


def _key(k: dict) -> str:
    return f"`{cell(k['id'])}` [{cell(k['runtime'])}, {cell(k['property'])}, {cell(k['dtype'])}, {cell(k['device'])}]"


def render(table: ResultTable) -> str:
    meta = table.meta
    counts = table.status_counts()
    failures = table.failures()
    lines = ["# losscheck nightly", ""]
    versions = ", ".join(f"{k} {v}" for k, v in sorted((meta.get("versions") or {}).items()))
    lines.append(f"{len(table)} checks, seed {meta.get('seed')}, {meta.get('examples')} examples per check"
                 + (f"; {cell(versions, 400)}" if versions else ""))
    selection = meta.get("selection") or {}
    if selection.get("shard"):
        lines[-1] += f"; shard {cell(selection['shard'])}"
    lines += ["", "| status | checks |", "| --- | ---: |"]
    lines += [f"| {s} | {counts[s]} |" for s in STATUS_ORDER if s in counts]
    lines.append(f"| **total** | **{sum(counts.values())}** |")

    changes = table.changes()
    if meta.get("changes") is not None:
        new_fail, new_pass = changes.get("new_failures", []), changes.get("new_passes", [])
        dev = changes.get("deviation_changes", [])
        lines += ["", "## New since the previous run", ""]
        first = changes.get("first_seen", 0)
        if not changes.get("previous_runs"):
            lines.append(f"No earlier results in the history: all {first} checks are seen for the first time, "
                         "so every failure counts as new.")
        elif not (new_fail or new_pass or dev):
            lines.append("Nothing changed." + (f" ({first} checks had no earlier result.)" if first else ""))
        lines += [f"* **new failure** {_key(k)}" for k in new_fail]
        lines += [f"* new pass {_key(k)}" for k in new_pass]
        lines += [f"* deviation changed {_key(d)}: {_eps(d['before'])} -> {_eps(d['after'])} eps" for d in dev]

    lines += ["", f"## Failures ({len(failures)})", ""]
    if failures:
        lines += ["| loss | runtime | property | dtype | device | status | code | error / bound (eps) | message "
                  "| new |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in failures[:MAX_FAILURES]:
            err = f"{_eps(r.get('error_eps'))} / {_eps(r.get('bound_eps'))}" if r.get("error_eps") is not None else ""
            lines.append(f"| `{cell(r['id'])}` | {cell(r['runtime'])} | {cell(r['property'])} | {cell(r['dtype'])} | "
                         f"{cell(r['device'])} | {r['status']} | {cell(r.get('code'))} | {err} | "
                         f"{cell(r.get('message'))} | {'yes' if r.get('change') == 'new failure' else ''} |")
        if len(failures) > MAX_FAILURES:
            lines.append(f"\n... and {len(failures) - MAX_FAILURES} more (see report.json / report.html)")
    else:
        lines.append("No failures.")
    known = len(table.known_deviations())
    if known:
        lines += ["", f"{known} checks matched known framework behaviour (deviation / expected failure): "
                      "see report.html for each with its explanation."]
    return "\n".join(lines) + "\n"
