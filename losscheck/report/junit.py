"""JUnit XML: one testcase per check, one testsuite per runtime.

``classname`` is ``<runtime>.<loss id>``, ``name`` is ``<property>[<dtype>]`` (``[<dtype>-<device>]``
off the CPU). A row from the pytest plugin (it carries its test's ``nodeid``) is named after its
test as pytest's own junit.xml names it (``tests/test_losses.py::TestX::test_huber[0.5]``: classname
``tests.test_losses.TestX``), the check appended to the test's name:
``test_huber[0.5]::<runtime>.<loss id>::<property>[<dtype>]``; one loss checked by several tests (or
parametrizations) so gets one testcase per test.

fail and xpass are ``<failure>``, error is ``<error>``, skip is ``<skipped>``; pass, warn, deviation
and xfail pass, the last three with a ``<system-out>`` note saying what was measured or which known
behaviour was matched.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from .table import RUNTIME_ORDER, ResultTable, _index, failure_facts


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _safe(text) -> str:
    """Text without the characters XML 1.0 cannot hold (a loss's message may contain anything):
    control characters become ``?``, lone surrogates (undecodable bytes) their ``\\udcff`` escape."""
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))
    return _NOT_XML.sub("?", text)


def case_name(row: dict) -> str:
    where = row["dtype"] if row.get("device", "cpu") == "cpu" else f"{row['dtype']}-{row['device']}"
    return f"{row['property']}[{where}]"


def pytest_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a pytest test as pytest's junitxml writes them: the file path dotted
    without ``.py``, then any classes; the function with its parameters (``[0.5]`` stays whole)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def testcase_address(row: dict) -> tuple[str, str]:
    """(classname, name) of the row's testcase: the check's (``runtime.id``, ``property[dtype]``),
    or, for a pytest plugin row, its test's address with the check appended to the name."""
    check = f"{row['runtime']}.{row['id']}"
    nodeid = row.get("nodeid")
    if not isinstance(nodeid, str) or not nodeid:
        return check, case_name(row)
    classname, test = pytest_address(nodeid)
    return classname, f"{test}::{check}::{case_name(row)}"


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
    classname, name = testcase_address(row)
    case = ET.Element("testcase", classname=_safe(classname), name=_safe(name),
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
        # a plugin run's checks grouped by test, as pytest lists them (catalog rows have no nodeid)
        for r in sorted(group, key=lambda r: r.get("nodeid") or ""):
            suite.append(_testcase(r))
    for k in ("tests", "failures", "errors", "skipped"):
        root.set(k, str(totals[k]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
