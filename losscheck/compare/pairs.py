"""Pairwise agreement of implementations on common inputs, and the cause of each disagreement.

Two implementations agree on an example when their values (the mean of what each returns) differ
by at most the sum of their error bounds -- ``2 x VALUE_BOUND`` in eps units of the tolerance model
(losscheck/tolerance.py), with the larger of the two oracles' scales -- and likewise their
gradients with respect to each canonical input (normwise, away from either oracle's kinks). A
disagreement is explained by evaluating each spec's oracle under its own semantics on its own
inputs (:mod:`.worker` records them), in this order:

1. ``implementation bug``: one of them disagrees with its own oracle (its value or gradient check
   fails on these inputs) and no expected failure of its spec covers it; it is named;
2. ``known issue``: one of them fails its own check inside a scoped expected failure of its spec;
3. ``input conversion``: they take different forms of the inputs (probabilities vs logits), and the
   exact losses at the two converted inputs already differ beyond the bound: the forms cannot
   represent the same point in this dtype (sigmoid(40) is 1 in float32);
4. ``reduction differs``: the two oracles differ by a factor equal to a product of the input's axis
   sizes: the implementations normalise by different counts;
5. ``documented semantics differ``: each agrees with its own oracle and the oracles differ (Keras
   clips probabilities to [1e-7, 1 - 1e-7], torch clamps each log at -100);
6. ``documented precision``: a spec declares that this runtime computes the dtype at a lower
   precision (Keras reduces float64 in float32 on its jax and torch backends);
7. otherwise the difference is within what both own checks allow: ``agree``.

Only ``implementation bug`` is unexplained (exit 1 of ``losscheck compare``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, value_error
from . import convert

CAUSES = ("implementation bug", "known issue", "reduction differs", "documented semantics differ",
          "input conversion", "documented precision", "agree")
UNEXPLAINED = ("implementation bug",)
SEVERITY = {c: len(CAUSES) - i for i, c in enumerate(CAUSES)}


def worst(causes) -> str:
    causes = list(causes)
    return max(causes, key=lambda c: SEVERITY.get(c, 0)) if causes else "agree"


# ---- errors in eps units -------------------------------------------------------------------------

def scalar_error(x, y, scale, dtype: str) -> float:
    """|x - y| in eps units of ``dtype`` at ``scale``; NaN against NaN is no error, NaN against a
    number is infinite."""
    x, y = float(x), float(y)
    if math.isnan(x) or math.isnan(y):
        return 0.0 if math.isnan(x) and math.isnan(y) else math.inf
    s = float(scale) if scale is not None and math.isfinite(float(scale)) else 0.0
    return float(value_error(x, y, s, dtype))


def array_error(ga, gb, mag, dtype: str, skip=None) -> float:
    """Symmetric normwise gradient error (grad_error ignores NaN on its expected side)."""
    if ga is None and gb is None:
        return 0.0
    if ga is None or gb is None:
        return math.inf
    ga, gb = np.asarray(ga, dtype=np.float64), np.asarray(gb, dtype=np.float64)
    if ga.shape != gb.shape:
        return math.inf
    with np.errstate(all="ignore"):
        nan_a, nan_b = np.isnan(ga), np.isnan(gb)
        keep = np.ones(ga.shape, bool) if skip is None else ~np.asarray(skip, bool)
        if np.any((nan_a != nan_b) & keep):
            return math.inf
        m = np.asarray(mag, dtype=np.float64)
        return max(grad_error(ga, gb, m, dtype, skip), grad_error(gb, ga, m, dtype, skip))


def _maximum(a, b):
    if a is None or b is None:
        return a if b is None else b
    with np.errstate(invalid="ignore"):
        return np.fmax(np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64)))


def _union(a, b):
    if a is None or b is None:
        return None if a is None and b is None else np.asarray(a if b is None else b, bool)
    return np.asarray(a, bool) | np.asarray(b, bool)


def axis_factor(x: float, y: float, dims: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
    """(factor, axes) when ``x / y`` or ``y / x`` is a product of the sizes of ``axes`` (> 1)."""
    if not (math.isfinite(x) and math.isfinite(y)) or x == 0 or y == 0:
        return None
    r = abs(x / y)
    for k in range(1, len(dims) + 1):
        for axes in itertools.combinations(range(len(dims)), k):
            c = int(np.prod([dims[a] for a in axes]))
            if c > 1 and (abs(r - c) <= 1e-6 * c or abs(1 / r - c) <= 1e-6 * c):
                return c, axes
    return None


def _joined(names, notes, key, sep="; ") -> str:
    return sep.join(f"{n}: {x[key]}" for n, x in zip(names, notes))


def relation(x: float, y: float, dims: tuple[int, ...]):
    """"sign" when ``x = -y`` (nonzero), else :func:`axis_factor`."""
    if math.isfinite(x) and math.isfinite(y) and x != 0 and abs(x + y) <= 1e-9 * abs(x):
        return "sign"
    return axis_factor(x, y, dims)


# ---- one example ---------------------------------------------------------------------------------

@dataclass
class Measured:
    """One example's comparison of two implementations, in eps units: ``err`` between them,
    ``d_oracle`` between their oracles, ``d_exact`` between their exact-mathematics variants,
    ``devs`` of each oracle from its own exact variant, and how the oracles relate (``factor``:
    "sign", (factor, axes) or None)."""
    err: float
    bound: float
    d_oracle: float = 0.0
    d_exact: float = 0.0
    devs: tuple[float, float] = (0.0, 0.0)
    factor: Any = None


def _semantics(names, notes, m: Measured) -> str:
    parts = []
    for n, x, d in zip(names, notes, m.devs):
        if d > m.bound:
            parts.append(f"{n}: {x['semantics']}; {d:,.3g} eps from the exact loss here")
        else:
            parts.append(f"{n}: {x['semantics']}; equal to its exact variant here")
    return " | ".join(parts)


def classify(kind: str, a: dict, b: dict, m: Measured, converted: bool, names: tuple[str, str],
             notes: tuple[dict, dict]) -> tuple[str, str]:
    """(cause, detail) of one example's ``kind`` ("value" or "gradient") comparison.

    ``notes``: per implementation, ``semantics`` (its documented deviation from the exact loss) and
    ``conversion`` (how it takes the canonical inputs)."""
    if m.err <= m.bound:
        return "agree", ""
    own = [(n, r["own"][kind]) for n, r in zip(names, (a, b))]
    bad = [(n, o) for n, o in own if o["status"] == "fail"]
    if bad:
        return "implementation bug", "; ".join(
            f"{n} disagrees with its own oracle: {o['code']} {o['message']}" for n, o in bad)
    raised = [(n, r["error"]) for n, r in zip(names, (a, b)) if "error" in r]
    known = [(n, o) for n, o in own if o["status"] == "expected"]
    if known:
        return "known issue", "; ".join(f"{n}: expected failure {o['code']}: {o['reason']}" for n, o in known)
    if raised:
        return "implementation bug", "; ".join(f"{n} raised {e}" for n, e in raised)
    if converted and m.d_exact > m.bound:
        return "input conversion", (
            f"the two take different forms of the inputs; the exact losses at the two converted inputs differ "
            f"by {m.d_exact:,.3g} eps here ({_joined(names, notes, 'conversion')})")
    if m.d_oracle > m.bound:
        if m.factor == "sign":
            return "documented semantics differ", (
                "each agrees with its own oracle; the documented results have opposite signs (one is the negative "
                "of the other). " + _semantics(names, notes, m))
        if m.factor is not None:
            c, axes = m.factor
            return "reduction differs", (f"each agrees with its own oracle; the documented results differ by a factor "
                                         f"of {c} (the size of axis {', '.join(map(str, axes))} of the inputs): the "
                                         "two normalise by different counts")
        return "documented semantics differ", (
            f"each agrees with its own oracle; the documented results differ by {m.d_oracle:,.3g} eps here. "
            + _semantics(names, notes, m))
    low = [(n, o) for n, o in own if o["status"] == "precision"]
    if low:
        return "documented precision", "; ".join(f"{n} computes at {o['effective']} precision: {o['reason']}"
                                                 for n, o in low)
    return "agree", ""


def _value(a, b, dtype, dims, names, converted, notes):
    bound = 2 * VALUE_BOUND[dtype](max(a["n_terms"], b["n_terms"]))
    if "error" in a or "error" in b:
        m = Measured(0.0 if "error" in a and "error" in b else math.inf, bound)
    else:
        oa, ob, ea, eb = a["oracle"], b["oracle"], a["exact"], b["exact"]
        scale = max(oa["scale"], ob["scale"])
        m = Measured(scalar_error(a["value"], b["value"], scale, dtype), bound,
                     scalar_error(oa["value"], ob["value"], scale, dtype),
                     scalar_error(ea["value"], eb["value"], max(ea["scale"], eb["scale"]), dtype),
                     tuple(scalar_error(o["value"], e["value"], max(o["scale"], e["scale"]), dtype)
                           for o, e in ((oa, ea), (ob, eb))),
                     relation(oa["value"], ob["value"], dims))
    return (m.err, bound, *classify("value", a, b, m, converted, names, notes))


def _role_error(x, y, role, dtype, skip):
    return array_error(x["grads"].get(role), y["grads"].get(role),
                       _maximum(x["mags"].get(role), y["mags"].get(role)), dtype, skip)


def _gradient(a, b, roles, dtype, dims, names, converted, notes):
    if not roles:
        return None
    bound = 2 * GRAD_BOUND[dtype](max(a["n_terms"], b["n_terms"]))
    if "error" in a or "error" in b:
        m = Measured(0.0 if "error" in a and "error" in b else math.inf, bound)
    else:
        m = Measured(0.0, bound, devs=(0.0, 0.0))
        oa, ob, ea, eb = a["oracle"], b["oracle"], a["exact"], b["exact"]
        sums = [0.0, 0.0]
        for role in roles:
            skip = _union(oa["kinks"].get(role), ob["kinks"].get(role))
            mag = _maximum(oa["mags"].get(role), ob["mags"].get(role))
            m.err = max(m.err, array_error(a["grads"].get(role), b["grads"].get(role), mag, dtype, skip))
            m.d_oracle = max(m.d_oracle, _role_error(oa, ob, role, dtype, skip))
            m.d_exact = max(m.d_exact, _role_error(ea, eb, role, dtype, skip))
            m.devs = (max(m.devs[0], _role_error(oa, ea, role, dtype, oa["kinks"].get(role))),
                      max(m.devs[1], _role_error(ob, eb, role, dtype, ob["kinks"].get(role))))
            for i, g in enumerate((oa["grads"].get(role), ob["grads"].get(role))):
                if g is not None:
                    sums[i] += float(np.nansum(np.abs(np.asarray(g, dtype=np.float64))))
        m.factor = axis_factor(sums[0], sums[1], dims)
        if m.factor is None and relation(oa["value"], ob["value"], dims) == "sign":
            m.factor = "sign"
    return (m.err, bound, *classify("gradient", a, b, m, converted, names, notes))


def _example(canonical, kind, a, b, err, roles=None) -> dict:
    from ..runner import to_jsonable

    out = {"index": canonical.index, "inputs": to_jsonable(canonical.roles), "params": to_jsonable(canonical.shared),
           "error_eps": err}
    if kind == "value":
        out.update(a=a.get("value", a.get("error")), b=b.get("value", b.get("error")),
                   a_oracle=a["oracle"]["value"], b_oracle=b["oracle"]["value"])
    else:
        out.update(role=roles, a=a.get("grads"), b=b.get("grads"))
    return out


def compare_pair(group, impl_a, impl_b, ra: list, rb: list, cases, dtype: str,
                 notes: dict[str, dict]) -> dict:
    """One pair of implementations (``impl = (member name, runtime)``) over every example;
    ``notes``: member name -> {"semantics", "conversion"} for the explanations."""
    ma, mb = group.member(impl_a[0]), group.member(impl_b[0])
    names = (f"{impl_a[0]} [{impl_a[1]}]", f"{impl_b[0]} [{impl_b[1]}]")
    converted = any(ma.chain(r) != mb.chain(r) and not (convert.is_exact(ma.chain(r)) and convert.is_exact(mb.chain(r)))
                    for r in group.roles)
    dims = tuple(np.shape(cases[0].roles[group.roles[0]])) if cases else ()
    pair_notes = (notes[impl_a[0]], notes[impl_b[0]])
    per_kind: dict[str, dict] = {"value": _summary(), "gradient": _summary()}
    compared_roles: set[str] = set()
    for c, a, b in zip(cases, ra, rb):
        dims = tuple(np.shape(c.roles[group.roles[0]]))
        roles = sorted(set(a["oracle"]["grads"]) & set(b["oracle"]["grads"]))
        compared_roles.update(roles)
        results = {"value": _value(a, b, dtype, dims, names, converted, pair_notes),
                   "gradient": _gradient(a, b, roles, dtype, dims, names, converted, pair_notes)}
        for kind, res in results.items():
            if res is None:
                continue
            err, bound, cause, detail = res
            s = per_kind[kind]
            s["n"] += 1
            s["max_error_eps"] = max(s["max_error_eps"], err)
            s["bound_eps"] = max(s["bound_eps"], bound)
            s["causes"][cause] = s["causes"].get(cause, 0) + 1
            if cause != "agree":
                f = s["findings"].setdefault(cause, {"kind": kind, "cause": cause, "count": 0, "max_error_eps": 0.0})
                f["count"] += 1
                f["max_error_eps"] = max(f["max_error_eps"], err)
                key = (c.size, c.magnitude(), c.index)
                if "key" not in f or key < f["key"]:
                    f.update(key=key, detail=detail, example=_example(c, kind, a, b, err, roles))
    findings = []
    for kind in ("value", "gradient"):
        for f in per_kind[kind]["findings"].values():
            f.pop("key", None)
            findings.append(f)
    findings.sort(key=lambda f: (-SEVERITY[f["cause"]], f["kind"]))
    out = {"group": group.key, "dtype": dtype, "a": {"member": impl_a[0], "runtime": impl_a[1]},
           "b": {"member": impl_b[0], "runtime": impl_b[1]}, "examples": len(cases),
           "verdict": worst(f["cause"] for f in findings), "findings": findings}
    for kind in ("value", "gradient"):
        s = per_kind[kind]
        out[kind] = None if not s["n"] else {
            "examples": s["n"], "max_error_eps": s["max_error_eps"], "bound_eps": s["bound_eps"],
            "agree": s["causes"].get("agree", 0), "causes": dict(sorted(s["causes"].items(),
                                                                         key=lambda kv: -SEVERITY[kv[0]]))}
    if out["gradient"] is not None:
        out["gradient"]["roles"] = sorted(compared_roles)
    return out


def _summary() -> dict[str, Any]:
    return {"n": 0, "max_error_eps": 0.0, "bound_eps": 0.0, "causes": {}, "findings": {}}


def compare_group(group, cases, results: dict, dtypes, notes: dict[str, dict]) -> list[dict]:
    """Every pair of implementations of ``group`` with results, per dtype.

    ``results``: (member name, runtime, dtype) -> the worker's per-example dicts, in case order.
    """
    from ..report.table import RUNTIME_ORDER

    order = {m.name: i for i, m in enumerate(group.members)}
    pairs = []
    for dtype in dtypes:
        impls = sorted({(m, rt) for (m, rt, d) in results if d == dtype},
                       key=lambda x: (order.get(x[0], 99), RUNTIME_ORDER.index(x[1]) if x[1] in RUNTIME_ORDER else 9))
        for ia, ib in itertools.combinations(impls, 2):
            pairs.append(compare_pair(group, ia, ib, results[(*ia, dtype)], results[(*ib, dtype)], cases, dtype,
                                      notes))
    return pairs
