"""`losscheck compare`: the cross-framework consistency matrix.

For each mathematical loss that several implementations compute (:mod:`.groups`), one set of
inputs is drawn per example (:mod:`.cases`), mapped onto every implementation's arguments
(:mod:`.convert`), and evaluated -- value and gradient, float64 and float32 -- by every
implementation on every runtime it runs on, in the runner's process pools (one per Keras backend:
the runner dispatches ``compare:<group>`` tasks to :mod:`.worker`). Every pair of implementations
is then judged in eps units of the tolerance model, and each disagreement is given a cause by
evaluating each spec's oracle under its own semantics (:mod:`.pairs`).

:func:`run` returns the comparison document (a report document, schema 2, with no check rows and
the comparison under ``"comparison"``; ``losscheck report`` renders its pairwise table in the HTML
report's cross-framework matrix); :mod:`.render` prints it as text or Markdown.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable

from . import convert
from .groups import SEMANTICS, Group, default_groups, get, select
from .pairs import CAUSES, UNEXPLAINED, compare_group, worst
from .worker import PREFIX

DTYPES = ("float64", "float32")


def plan(groups: Iterable[Group], dtypes=DTYPES, runtimes=None) -> list:
    """One runner task per group x spec x runtime x dtype (the worker evaluates every member of
    that spec in the group)."""
    from .. import catalog
    from ..runner import Task

    tasks = []
    for g in groups:
        for spec_id in g.spec_ids():
            for rt in catalog.get(spec_id).runtimes:
                if runtimes and rt not in runtimes:
                    continue
                tasks.extend(Task(spec_id, rt, PREFIX + g.key, d) for d in dtypes)
    return tasks


def selection(ids: list[str] | None) -> tuple[list[Group], list[dict]]:
    """(groups to compare, ids that cannot be compared with a reason) for ``ids`` (None: every group
    spanning two or more frameworks). KeyError for an unknown id, ValueError when nothing is left."""
    if ids:
        groups, not_comparable = select(list(ids))
    else:
        groups, not_comparable = default_groups(), []
    if not groups:
        reasons = "; ".join(f"{x['id']}: {x['reason']}" for x in not_comparable)
        raise ValueError(f"nothing to compare: {reasons or 'no group of two or more implementations'}")
    return groups, not_comparable


def notes(group: Group) -> dict[str, dict]:
    """member name -> how it is called (``setting``, ``conversion``) and its documented semantics."""
    from .. import catalog

    out = {}
    for m in group.members:
        spec = catalog.get(m.spec_id)
        sem = "; ".join(x for x in (SEMANTICS.get((group.key, m.framework)),
                                    spec.deviation.summary if spec.deviation else None) if x) or "the exact loss"
        conv = "; ".join(f"{role}: {convert.describe(m.chain(role))}" for role in group.roles if m.chain(role))
        params = {**m.params, **{k: "<drawn>" for k in group.shared}}
        out[m.name] = {"semantics": f"{sem} ({spec.reference})",
                       "conversion": conv or "the canonical inputs as drawn",
                       "setting": ", ".join(f"{k}={v!r}" for k, v in params.items()) or "no parameters"}
    return out


def run(ids: list[str] | None = None, *, examples: int = 20, seed: int = 0, dtypes=DTYPES, runtimes=None,
        jobs: int | None = None, on_row: Callable[[dict], None] | None = None, command=None,
        timeout: float | None = None) -> dict:
    """Compare ``ids`` (None: every group spanning two or more frameworks) -> the document.

    Raises KeyError for an unknown id and ValueError when nothing can be compared."""
    from .. import runner
    from ..report import json_report
    from .cases import CASES_ENV, draw, save

    groups, not_comparable = selection(ids)
    tasks = plan(groups, dtypes, runtimes)
    if not tasks:
        raise ValueError("nothing to compare: the runtime filter excludes every implementation")
    drawn = {g.key: draw(get(g.key), examples, seed) for g in groups}
    with tempfile.TemporaryDirectory(prefix="losscheck-compare-") as tmp:
        for key, cases in drawn.items():
            save(tmp, key, cases)
        previous = os.environ.get(CASES_ENV)
        os.environ[CASES_ENV] = tmp     # inherited by the runner's worker processes
        try:
            rows, versions = runner.run(tasks, examples=examples, seed=seed, jobs=jobs, on_row=on_row,
                                        timeout=timeout)
        finally:
            if previous is None:
                os.environ.pop(CASES_ENV, None)
            else:
                os.environ[CASES_ENV] = previous
    by_group: dict[str, list[dict]] = {}
    for r in rows:
        by_group.setdefault(r["property"][len(PREFIX):], []).append(r)
    out_groups, all_pairs, errors = [], [], []
    for g in groups:
        results, unavailable, failed = _collect(g, by_group.get(g.key, []), drawn[g.key])
        errors += failed
        member_notes = notes(g)
        pairs = compare_group(g, drawn[g.key], results, dtypes, member_notes)
        all_pairs.extend(pairs)
        out_groups.append(_group_entry(g, len(drawn[g.key]), results, unavailable, member_notes, pairs))
    summary: dict[str, int] = {}
    for p in all_pairs:
        summary[p["verdict"]] = summary.get(p["verdict"], 0) + 1
    unexplained = sum(1 for p in all_pairs if p["verdict"] in UNEXPLAINED)
    doc = json_report.document([], versions=versions, seed=seed, examples=examples, command=command,
                               selection={"ids": list(ids or []), "dtypes": list(dtypes),
                                          "runtimes": sorted(runtimes) if runtimes else None})
    doc["comparison"] = {
        "dtypes": list(dtypes), "examples": examples, "seed": seed, "groups": out_groups, "pairs": all_pairs,
        "not_comparable": not_comparable, "errors": errors,
        "summary": dict(sorted(summary.items(), key=lambda kv: CAUSES.index(kv[0]))),
        "unexplained": unexplained, "verdict": worst(p["verdict"] for p in all_pairs)}
    return doc


def _collect(group: Group, rows: list[dict], cases) -> tuple[dict, list[dict], list[str]]:
    """The workers' rows of one group -> ((member, runtime, dtype) -> per-example results, the
    implementations not evaluated, harness errors)."""
    from .cases import digest

    names = {m.name for m in group.members}
    results, unavailable, errors = {}, [], []
    for r in rows:
        payload = r.get("compare")
        if r["status"] in ("skip", "error") or payload is None:
            unavailable.append({"spec": r["id"], "runtime": r["runtime"], "dtype": r["dtype"],
                                "status": r["status"], "reason": r.get("reason") or r.get("message", "")})
            if r["status"] == "error":
                errors.append(f"{r['id']} [{r['runtime']}, {r['dtype']}]: {r.get('message', '')}")
            continue
        if payload["digest"] != digest(cases):
            raise RuntimeError(f"the examples drawn for {group.key} differ between processes "
                               f"({payload['digest']} != {digest(cases)})")
        for name, per_case in payload["results"].items():
            if name in names:
                results[(name, r["runtime"], r["dtype"])] = per_case
    return results, unavailable, errors


def _group_entry(g: Group, examples: int, results: dict, unavailable: list, member_notes: dict, pairs) -> dict:
    verdicts: dict[str, int] = {}
    for p in pairs:
        verdicts[p["verdict"]] = verdicts.get(p["verdict"], 0) + 1
    return {
        "key": g.key, "title": g.title, "anchor": g.anchor, "roles": list(g.roles), "shared": list(g.shared),
        "domain": g.domain[1] if g.domain else None, "examples": examples,
        "members": [{"name": m.name, "spec": m.spec_id, "framework": m.framework,
                     "runtimes": sorted({rt for (n, rt, _) in results if n == m.name}),
                     "reduced": _reduced(results, m.name), **member_notes[m.name]} for m in g.members],
        "excluded": [{"member": n, "reason": why} for n, why in g.excluded],
        "unavailable": unavailable, "pairs": len(pairs),
        "verdicts": dict(sorted(verdicts.items(), key=lambda kv: CAUSES.index(kv[0])))}


def _reduced(results, name) -> bool | None:
    """True when the member returns one value (False: per-element or per-sample values, compared
    through their mean); None when it was not evaluated."""
    for (m, _, _), per_case in results.items():
        if m == name and per_case:
            return all(r.get("outputs", 1) <= 1 for r in per_case)
    return None


def exit_code(doc: dict) -> int:
    """0: every pair agrees or differs for a documented reason; 1: an unexplained disagreement or
    an implementation that could not be evaluated."""
    c = doc["comparison"]
    return 1 if c["unexplained"] or c["errors"] else 0


__all__ = ["CAUSES", "DTYPES", "exit_code", "notes", "plan", "run", "selection"]
