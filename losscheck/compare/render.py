"""`losscheck compare` output: text for the terminal, Markdown for a README or job summary.

Both show, per loss group, the implementations and how each was called, then the pairs aggregated
by (implementation, implementation, verdict) across runtimes and dtypes
(:func:`losscheck.report.table.aggregate_pairs`): disagreements first, each with its cause and its
smallest example. The JSON document (:func:`losscheck.compare.run`) holds every pair in full.
"""
from __future__ import annotations

import json

from ..report.markdown import cell
from ..report.table import aggregate_pairs


#: verdicts printed one line per pair, their explanations once per group (they repeat across pairs)
COMPACT = ("documented precision", "input conversion")


def _eps(x) -> str:
    return "" if x is None else f"{float(x):,.3g}"


def _short(x, limit: int = 400) -> str:
    text = json.dumps(x, default=str)
    return text if len(text) <= limit else text[:limit] + " ..."


def _runtimes(pairs: list[str], shown: int = 3) -> str:
    """'torch vs jax; torch vs keras-jax; +4 more': the runtime pairs of an aggregated row."""
    more = f"; +{len(pairs) - shown} more" if len(pairs) > shown else ""
    return "; ".join(pairs[:shown]) + more


def _header(doc: dict) -> list[str]:
    c = doc["comparison"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted((doc.get("versions") or {}).items()))
    return [f"{len(c['groups'])} losses, {c['examples']} examples per pair, seed {c['seed']}, "
            f"dtypes {', '.join(c['dtypes'])}" + (f"; {versions}" if versions else "")]


def _member_line(m: dict) -> str:
    how = m["setting"] + ("" if m.get("reduced") in (True, None) else "; compared through the mean of its values")
    conv = "" if m["conversion"] == "the canonical inputs as drawn" else f"; {m['conversion']}"
    return f"{m['name']} on {', '.join(m['runtimes']) or 'no runtime'} ({how}{conv})"


def text(doc: dict) -> str:
    c = doc["comparison"]
    rows = aggregate_pairs(c["pairs"])
    lines = ["losscheck compare: " + _header(doc)[0], ""]
    for g in c["groups"]:
        verdicts = ", ".join(f"{v} {k}" for k, v in g["verdicts"].items())
        lines.append(f"== {g['title']} [{g['key']}]: {g['pairs']} pairs ({verdicts or 'none'})")
        lines += [f"   {_member_line(m)}" for m in g["members"]]
        if g.get("domain"):
            lines.append(f"   inputs drawn with {g['domain']}")
        lines += [f"   not comparable: {x['member']}: {x['reason']}" for x in g["excluded"]]
        lines += [f"   not evaluated: {x['spec']} [{x['runtime']}, {x['dtype']}]: {x['status']} {x['reason']}"
                  for x in g["unavailable"]]
        compact: dict[str, list[str]] = {}
        for r in (r for r in rows if r["group"] == g["key"] and r["verdict"] != "agree"):
            head = (f"   {r['verdict'].upper()}: {r['a']} vs {r['b']} [{_runtimes(r['runtimes'])}; "
                    f"{', '.join(r['dtypes'])}]")
            sizes = (f"{r['disagree']} of {r['examples']} examples; value up to {_eps(r['value_eps'])} eps "
                     f"(bound {_eps(r['value_bound'])}), gradient up to {_eps(r['gradient_eps'])} eps "
                     f"(bound {_eps(r['gradient_bound'])})")
            if r["verdict"] in COMPACT:     # many pairs, one explanation each: the explanations come once, below
                lines.append(f"{head}: {sizes}")
                compact.setdefault(r["verdict"], [])
                if r["detail"] not in compact[r["verdict"]]:
                    compact[r["verdict"]].append(r["detail"])
                continue
            lines += [head, f"      {sizes}", f"      cause ({r['kind']}): {r['detail']}"]
            ex = r.get("example") or {}
            if ex:
                lines.append(f"      smallest input: {_short(ex.get('inputs'))}"
                             + (f" params {_short(ex['params'])}" if ex.get("params") else ""))
                if r["kind"] == "value":
                    lines.append(f"      values: {ex.get('a')} vs {ex.get('b')} (their oracles: "
                                 f"{ex.get('a_oracle')} vs {ex.get('b_oracle')})")
        for verdict, details in compact.items():
            lines += [f"   {verdict}: {d}" for d in details]
        lines.append("")
    for x in c["not_comparable"]:
        lines.append(f"not comparable: {x['id']}: {x['reason']}")
    for e in c["errors"]:
        lines.append(f"ERROR {e}")
    summary = ", ".join(f"{v} {k}" for k, v in c["summary"].items())
    lines.append(f"pairs: {summary or 'none'}; unexplained disagreements: {c['unexplained']}")
    return "\n".join(lines) + "\n"


def markdown(doc: dict) -> str:
    c = doc["comparison"]
    rows = aggregate_pairs(c["pairs"])
    lines = ["## Cross-framework consistency matrix (`losscheck compare`)", "", _header(doc)[0], ""]
    summary = ", ".join(f"{v} {k}" for k, v in c["summary"].items())
    lines += [f"Pairs by verdict: {summary or 'none'}; unexplained disagreements: {c['unexplained']}.", ""]
    for g in c["groups"]:
        lines += [f"### {cell(g['title'])} (`{cell(g['key'])}`)", ""]
        lines += [f"- `{cell(m['name'])}`: {cell(_member_line(m).split(' on ', 1)[1], 400)}" for m in g["members"]]
        lines += [f"- not comparable: `{cell(x['member'])}`: {cell(x['reason'], 300)}" for x in g["excluded"]]
        lines += ["", "| implementation | implementation | runtimes | dtypes | verdict | disagreeing | value eps "
                  "(bound) | gradient eps (bound) | cause |", "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["group"] == g["key"]):
            lines.append(f"| `{cell(r['a'])}` | `{cell(r['b'])}` | {cell(_runtimes(r['runtimes']), 200)} | "
                         f"{cell(', '.join(r['dtypes']))} | {cell(r['verdict'])} | {r['disagree']}/{r['examples']} | "
                         f"{_eps(r['value_eps'])} ({_eps(r['value_bound'])}) | "
                         f"{_eps(r['gradient_eps'])} ({_eps(r['gradient_bound'])}) | {cell(r['detail'], 300)} |")
        lines.append("")
    if c["not_comparable"]:
        lines += [f"- not comparable: `{cell(x['id'])}`: {cell(x['reason'], 300)}" for x in c["not_comparable"]]
        lines.append("")
    return "\n".join(lines)
