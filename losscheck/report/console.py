"""Terminal output: a progress bar while checks run, then a summary and the failures in detail."""
from __future__ import annotations

import json
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

STYLE = {"pass": "green", "warn": "yellow", "deviation": "yellow", "xfail": "cyan", "skip": "dim", "fail": "bold red",
         "xpass": "magenta", "error": "bold red"}


class Progress:
    """Progress bar with an ETA, advanced once per finished check (thread-safe)."""

    def __init__(self, total: int, enabled: bool = True):
        self.enabled = enabled
        self._bar = RichProgress(TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[last]}"), console=Console(stderr=True),
                                 transient=True, disable=not enabled)
        self._task = self._bar.add_task("checks", total=total, last="")
        self.failures = 0

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def advance(self, row: dict) -> None:
        if row["status"] in ("fail", "error", "xpass"):
            self.failures += 1
        self._bar.update(self._task, advance=1, last=f"{row['id']} [{row['runtime']}] failures: {self.failures}")


def printable(text) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates: a loss's exception message can carry
    undecodable bytes) as backslash escapes, so that printing it cannot fail."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _printable_row(row: dict) -> dict:
    return {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}


def _short(x, limit=300) -> str:
    text = json.dumps(x, default=str)
    return text if len(text) <= limit else text[:limit] + " ..."


def print_summary(rows: list[dict], console: Console | None = None) -> None:
    console = console or Console(width=160)
    rows = [_printable_row(r) for r in rows]
    counts = Counter(r["status"] for r in rows)
    table = Table(title="losscheck: results by loss and runtime")
    table.add_column("loss")
    table.add_column("runtime")
    for status in ("pass", "warn", "deviation", "xfail", "fail", "xpass", "error", "skip"):
        if counts.get(status):
            table.add_column(status, justify="right", style=STYLE[status])
    groups: dict[tuple, Counter] = {}
    for r in rows:
        groups.setdefault((r["id"], r["runtime"]), Counter())[r["status"]] += 1
    shown = [s for s in ("pass", "warn", "deviation", "xfail", "fail", "xpass", "error", "skip") if counts.get(s)]
    for (lid, rt), c in groups.items():
        table.add_row(lid, rt, *[str(c.get(s, "")) for s in shown])
    console.print(table)

    for r in rows:
        if r["status"] == "warn":
            where = escape(f"{r['id']} [{r['runtime']}, {r['property']}, {r['dtype']}] {r['code']} {r['message']}")
            console.print(f"[yellow]WARN[/] {where}", highlight=False)
        if r["status"] in ("fail", "error", "xpass"):
            where = escape(f"{r['id']} [{r['runtime']}, {r['property']}, {r['dtype']}] {r['code']} {r['message']}")
            console.print(f"[{STYLE[r['status']]}]{r['status'].upper()}[/] {where}", highlight=False)
            if r.get("params") is not None:
                console.print(f"    params: {escape(_short(r['params']))}", highlight=False)
            if r.get("input") is not None:
                console.print(f"    smallest input: {escape(_short(r['input']))}", highlight=False)
            if r.get("reason"):
                console.print(f"    expected failure: {escape(r['reason'])}", highlight=False)
            if r.get("repro"):
                console.print(f"    reproduce: {r['repro']}", highlight=False)
    deviations = [r for r in rows if r["status"] == "deviation"]
    if deviations:
        console.print(f"[yellow]{len(deviations)} known deviations[/] (documented framework semantics that differ "
                      "from the exact loss; see the JSON report for inputs and sizes)", highlight=False)
    console.print(" ".join(f"{s}: {counts[s]}" for s in STYLE if counts.get(s)) or "no checks", highlight=False)
