"""The audit's report: one JSON document (:data:`SCHEMA`), its text rendering and a self-contained
HTML page. The document is written atomically and always, even when the audit could not finish."""
from __future__ import annotations

import datetime as _dt
import html
import json
from collections import Counter

SCHEMA_VERSION = 1
STATUSES = ("pass", "fail", "warn", "skip")

_CHECK = {
    "type": "object",
    "required": ["check", "code", "status", "message", "details", "repro"],
    "properties": {
        "check": {"type": "string"}, "code": {"type": "string"}, "status": {"enum": list(STATUSES)},
        "message": {"type": "string"}, "details": {"type": "object"}, "repro": {"type": "string"},
    },
}
_LOSS = {
    "type": "object",
    "required": ["name", "file", "line", "kind", "framework", "inputs", "context", "reference", "status", "checks"],
    "properties": {
        "name": {"type": "string"}, "file": {"type": "string"}, "line": {"type": "integer"},
        "kind": {"type": "string"}, "framework": {"type": "string"},
        "inputs": {"type": "object"}, "context": {"type": "array", "items": {"type": "string"}},
        "reference": {"type": ["object", "null"]}, "status": {"enum": list(STATUSES)},
        "checks": {"type": "array", "items": _CHECK},
    },
}
#: JSON Schema (draft 2020-12) of the audit document
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "losscheck audit report",
    "type": "object",
    "required": ["schema_version", "kind", "losscheck", "created", "command", "options", "files", "losses", "summary"],
    "properties": {
        "schema_version": {"enum": [SCHEMA_VERSION]},
        "kind": {"enum": ["audit"]},
        "losscheck": {"type": "string"},
        "created": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}},
        "options": {"type": "object"},
        "files": {"type": "array", "items": {
            "type": "object", "required": ["path", "status", "reason"],
            "properties": {"path": {"type": "string"}, "status": {"enum": ["audited", "error", "no losses"]},
                           "reason": {"type": "string"}}}},
        "losses": {"type": "array", "items": _LOSS},
        "summary": {"type": "object", "required": ["losses", "statuses", "codes", "exit_code", "could_not_audit"],
                    "properties": {"losses": {"type": "integer"}, "statuses": {"type": "object"},
                                   "codes": {"type": "object"}, "exit_code": {"enum": [0, 1, 2]},
                                   "could_not_audit": {"type": "array", "items": {"type": "string"}}}},
    },
}


def validate(doc, schema=SCHEMA, where: str = "$") -> list[str]:
    """Errors of ``doc`` against the subset of JSON Schema used in :data:`SCHEMA` (type, enum,
    required, properties, items)."""
    errors = []
    types = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
             "boolean": bool, "null": type(None)}
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(doc, types[t]) and not (t in ("integer", "number") and isinstance(doc, bool))
                 for t in wanted)
        if not ok:
            return [f"{where}: expected {' or '.join(wanted)}, got {type(doc).__name__}"]
    if "enum" in schema and doc not in schema["enum"]:
        errors.append(f"{where}: {doc!r} not in {schema['enum']}")
    if isinstance(doc, dict):
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", []) if k not in doc]
        for k, sub in schema.get("properties", {}).items():
            if k in doc:
                errors += validate(doc[k], sub, f"{where}.{k}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            errors += validate(item, schema["items"], f"{where}[{i}]")
    return errors


def document(*, command, options, files, losses, versions, exit_code, could_not_audit, duration_s) -> dict:
    from .. import __version__
    from ..report.json_report import commit_info, machine_info

    statuses = Counter(e["status"] for e in losses)
    codes = Counter(ch["code"] for e in losses for ch in e["checks"]
                    if ch["status"] in ("fail", "warn") and ch["code"])
    return {
        "schema_version": SCHEMA_VERSION, "kind": "audit", "losscheck": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command), "options": options, "machine": machine_info(), "versions": versions,
        "git": commit_info(), "files": files, "losses": losses,
        "summary": {"losses": len(losses), "statuses": dict(statuses), "codes": dict(sorted(codes.items())),
                    "exit_code": exit_code, "could_not_audit": list(could_not_audit), "duration_s": duration_s},
    }


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, default=str, allow_nan=True)


# ---- text --------------------------------------------------------------------------------------------

MARK = {"fail": "FAIL", "warn": "WARN", "pass": "pass", "skip": "skip"}


def text(doc: dict, verbose: bool = False, errors: bool = True) -> str:
    out = []
    for e in doc["losses"]:
        out.append(f"{e['file']}:{e['line']} {e['name']} [{e['kind']}, {e['framework'] or '?'}] {MARK[e['status']].upper()}")
        if e["inputs"]:
            out.append("  inputs: " + ", ".join(f"{k} {v['domain']} {v['shape']} ({v['source']})"
                                                for k, v in e["inputs"].items()))
        for c in e["context"]:
            out.append(f"  context: {c}")
        for n in e.get("notes") or []:
            out.append(f"  note: {n}")
        quiet = []
        for ch in e["checks"]:
            if ch["status"] in ("fail", "warn") or verbose or ch["check"] in ("reference", "output") or (
                    ch["status"] == "skip" and ch["check"] in ("discover", "inputs", "reference", "oracle", "audit")):
                head = f"  {MARK[ch['status']]} {ch['code'] + ' ' if ch['code'] else ''}{ch['check']}: "
                lines = ch["message"].splitlines() or [""]
                out.append(head + lines[0])
                out += ["      " + ln for ln in lines[1:]]
                if ch["status"] in ("fail", "warn") and ch.get("repro"):
                    out.append(f"      reproduce: {ch['repro']}")
            else:
                quiet.append(f"{ch['check']} {ch['status']}")
        if quiet:
            out.append("  " + ", ".join(quiet))
    s = doc["summary"]
    for reason in s["could_not_audit"] if errors else ():
        out.append(f"could not audit: {reason}")
    codes = ", ".join(f"{k} x{v}" for k, v in s["codes"].items())
    st = s["statuses"]
    out.append(f"{s['losses']} losses: {st.get('pass', 0)} pass, {st.get('fail', 0)} fail, {st.get('warn', 0)} warn, "
               f"{st.get('skip', 0)} skipped" + (f"; findings: {codes}" if codes else "")
               + f" ({s.get('duration_s', 0):.1f} s)")
    return "\n".join(out) + "\n"


# ---- html ----------------------------------------------------------------------------------------------

_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}
.fail{color:#b00020}.warn{color:#a06000}.pass{color:#1b7f2a}.skip{color:#777}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;margin:0;font-size:12px}h2{margin-top:1.6em}"""


def to_html(doc: dict) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>losscheck audit</title>"
             f"<style>{_STYLE}</style></head><body><h1>losscheck audit</h1>",
             f"<p>{esc(' '.join(doc['command']))}<br>{esc(doc['created'])}, losscheck {esc(doc['losscheck'])}</p>"]
    s = doc["summary"]
    parts.append("<p>" + ", ".join(f"<span class='{k}'>{v} {k}</span>" for k, v in s["statuses"].items()) + "</p>")
    for reason in s["could_not_audit"]:
        parts.append(f"<p class='fail'>could not audit: {esc(reason)}</p>")
    for e in doc["losses"]:
        parts.append(f"<h2 class='{e['status']}'>{esc(e['name'])} <small>{esc(e['file'])}:{e['line']} "
                     f"({esc(e['kind'])}, {esc(e['framework'])}) {e['status'].upper()}</small></h2>")
        if e["inputs"]:
            parts.append("<p>inputs: " + esc(", ".join(f"{k} {v['domain']} {v['shape']}"
                                                       for k, v in e["inputs"].items())) + "</p>")
        for c in e["context"] + (e.get("notes") or []):
            parts.append(f"<p>{esc(c)}</p>")
        parts.append("<table><tr><th>check</th><th>status</th><th>code</th><th>message</th></tr>")
        for ch in e["checks"]:
            extra = f"<br><code>{esc(ch['repro'])}</code>" if ch.get("repro") else ""
            script = ch["details"].get("script")
            if script:
                extra += f"<details><summary>reproducer script</summary><pre>{esc(script)}</pre></details>"
            parts.append(f"<tr><td>{esc(ch['check'])}</td><td class='{ch['status']}'>{ch['status']}</td>"
                         f"<td>{esc(ch['code'])}</td><td><pre>{esc(ch['message'])}</pre>{extra}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
