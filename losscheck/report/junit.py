"""JUnit XML: one testcase per check, one testsuite per runtime.

``classname`` is ``<runtime>.<loss id>``, ``name`` is ``<property>[<dtype>]`` (``[<dtype>-<device>]``
off the CPU). fail and xpass are ``<failure>``, error is ``<error>``, skip is ``<skipped>``; pass,
warn, deviation and xfail pass, the last three with a ``<system-out>`` note saying what was measured
or which known behaviour was matched.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from .table import RUNTIME_ORDER, ResultTable, _index, failure_facts


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _safe(text) -> str:
    """Text without the characters XML 1.0 cannot hold (a loss's message may contain anything)."""
    return _NOT_XML.sub("?", str(text))


def case_name(row: dict) -> str:
    where = row["dtype"] if row.get("device", "cpu") == "cpu" else f"{row['dtype']}-{row['device']}"
    return f"{row['property']}[{where}]"


def _details(row: dict) -> str:
    lines = [f"{row.get('code') or ''} {row.get('message') or ''}".strip()]
    for key, label, value in failure_facts(row):
        lines.append(f"error {value[0]} eps, bound {value[1]} eps" if key == "error_eps" else f"{label}: {value}")
    if row.get("repro_script"):
        lines.append(f"reproducer script: {row['repro_script']}")
    if row.get("change"):
        lines.append(f"since the previous run: {row['change']}")
    return _safe("\n".join(line for line in lines if line))


def _testcase(row: dict) -> ET.Element:
    case = ET.Element("testcase", classname=_safe(f"{row['runtime']}.{row['id']}"), name=_safe(case_name(row)),
                      time=f"{float(row.get('duration_s') or 0.0):.4f}")
    status, message = row["status"], _safe(f"{row.get('code') or ''} {row.get('message') or ''}".strip())
    if status in ("fail", "xpass"):
        kind = "xpass" if status == "xpass" else (row.get("code") or "fail")
        ET.SubElement(case, "failure", message=message[:500] or status, type=kind).text = _details(row)
    elif status == "error":
        ET.SubElement(case, "error", message=message[:500] or "harness error", type="error").text = (
            _details(row) + ("\n" + _safe(row["traceback"]) if row.get("traceback") else ""))
    elif status == "skip":
        ET.SubElement(case, "skipped", message=_safe(row.get("reason") or "skipped")[:500])
    elif status in ("deviation", "xfail", "warn"):
        note = {"deviation": "passed: known deviation (documented framework semantics)",
                "xfail": "passed: expected failure (known framework behaviour)",
                "warn": "passed with a warning"}[status]
        ET.SubElement(case, "system-out").text = f"{note}\n{_details(row)}"
    return case


def render(table: ResultTable) -> str:
    """The JUnit XML document for ``table``."""
    rows = table.rows()
    root = ET.Element("testsuites", name="losscheck")
    totals: Counter = Counter()
    by_runtime: dict[str, list[dict]] = {}
    for r in rows:
        by_runtime.setdefault(r["runtime"], []).append(r)
    for runtime in sorted(by_runtime, key=lambda rt: (_index(RUNTIME_ORDER, rt), rt)):
        group = by_runtime[runtime]
        counts = Counter(r["status"] for r in group)
        stats = {"tests": len(group), "failures": counts["fail"] + counts["xpass"], "errors": counts["error"],
                 "skipped": counts["skip"]}
        totals.update(stats)
        suite = ET.SubElement(root, "testsuite", name=f"losscheck.{runtime}",
                              time=f"{sum(float(r.get('duration_s') or 0.0) for r in group):.3f}",
                              **{k: str(v) for k, v in stats.items()})
        if table.meta.get("created"):
            suite.set("timestamp", str(table.meta["created"]))
        for r in group:
            suite.append(_testcase(r))
    for k in ("tests", "failures", "errors", "skipped"):
        root.set(k, str(totals[k]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
