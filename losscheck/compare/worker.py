"""One comparison task in a runner worker: every member of one spec in one group, on one runtime
and dtype, evaluated on the group's common examples.

The runner dispatches a :class:`~losscheck.runner.Task` whose property is ``compare:<group key>``
here (``runner.run_check``), inside the process pool of the runtime's Keras backend. For every
example the worker records, in float64 and already mapped back to the canonical inputs:

* ``value``: the mean of what the implementation returns (a reduced loss is its own mean), and
  ``grads``: the gradient of that mean for every canonical role whose conversion is differentiable;
* ``oracle`` / ``exact``: the same from the spec's oracle (its framework's documented semantics)
  and from its exact-mathematics variant, with their error scales and kink masks;
* ``own``: the verdict of the spec's own value and gradient checks (``properties.value`` and
  ``properties.gradient``) on the same inputs: ``ok``, ``precision`` (a declared lower precision
  excuses it), ``expected`` (a scoped expected failure of the spec covers it) or ``fail``.
"""
from __future__ import annotations

import time
import traceback

import numpy as np

from . import convert
from .cases import Canonical, digest, load, member_case
from .groups import Member, get

PREFIX = "compare:"


def _mean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        return float(np.mean(x)) if x.size else float("nan")


def _list(x):
    return None if x is None else np.asarray(x, dtype=np.float64).tolist()


def _own(check, spec, case, dtype, runtime, prop) -> dict:
    """The spec's own property check on ``case``: did the implementation match its own oracle?"""
    from ..properties.common import Finding

    try:
        with np.errstate(all="ignore"):
            m = check(spec, case, dtype, runtime)
    except Finding as f:
        expected = spec.expected_for(prop, dtype, runtime.name, f.case or case, f.code)
        if expected is not None:
            return {"status": "expected", "code": f.code, "reason": expected.reason, "link": expected.link}
        return {"status": "fail", "code": f.code, "message": f.message[:400]}
    if m.precision is not None:
        return {"status": "precision", "effective": str(m.precision.effective), "reason": m.precision.reason}
    return {"status": "ok"}


def _result_parts(result, n: int, member: Member, spec, stages, shapes, dtype) -> dict:
    """Mean value, scale and canonical-role gradients of an oracle :class:`Result`."""
    from ..tolerance import kink_rtol

    out = {"value": _mean(result.value), "scale": _mean(result.scale), "grads": {}, "mags": {}, "kinks": {}}
    grads, mags = result.grad(), result.grad_magnitude()
    kinks = result.kinks(kink_rtol(dtype), shapes)
    for role, arg in member.bind.items():
        a = next(x for x in spec.args if x.name == arg)
        chain = member.chain(role)
        if not a.wants_grad or not convert.differentiable(chain) or a.oracle_name not in grads:
            continue
        out["grads"][role] = _list(convert.pull(chain, stages[role], np.asarray(grads[a.oracle_name]) / n))
        out["mags"][role] = _list(convert.pull(chain, stages[role], np.asarray(mags[a.oracle_name]) / n, "abs"))
        if a.oracle_name in kinks:
            mask = convert.pull(chain, stages[role], kinks[a.oracle_name], "mask")
            out["kinks"][role] = None if mask is None else np.asarray(mask, dtype=bool).tolist()
    return out


def evaluate_member(member: Member, spec, runtime, dtype: str, canonical: Canonical) -> dict:
    """Everything the pairwise comparison needs about one member on one example (JSON-ready)."""
    from ..properties import gradient as gradient_property
    from ..properties import value as value_property
    from ..properties.common import n_terms, rounded

    case, stages = member_case(member, canonical)
    rc = rounded(case, dtype, runtime.name)
    out: dict = {"n_terms": n_terms(rc)}
    with np.errstate(all="ignore"):
        ref = spec.oracle(rc)
        exact = spec.exact(rc) if spec.exact is not None else ref
    n = max(int(np.size(ref.value)), 1)
    out["outputs"] = int(np.size(ref.value))
    shapes = {a.oracle_name: np.shape(rc.inputs[a.name]) for a in spec.grad_args if a.name in rc.inputs}
    out["oracle"] = _result_parts(ref, n, member, spec, stages, shapes, dtype)
    out["exact"] = _result_parts(exact, n, member, spec, stages, shapes, dtype)
    out["own"] = {"value": _own(value_property.check, spec, case, dtype, runtime, "value"),
                  "gradient": _own(gradient_property.check, spec, case, dtype, runtime, "gradient")}
    try:
        ev = runtime.evaluate(spec.call, spec.args, rc, dtype, None, True)
    except Exception as exc:  # noqa: BLE001 - the loss raised on these inputs: recorded, not fatal
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        out["error"] = f"{type(exc).__name__}: {msg}"
        return out
    if ev.value.shape != np.shape(ref.value):
        out["error"] = f"returned shape {ev.value.shape}, the documented result has shape {np.shape(ref.value)}"
        return out
    out["value"] = _mean(ev.value)
    out["grads"] = {}
    for role in out["oracle"]["grads"]:
        g = ev.grads.get(member.bind[role])
        out["grads"][role] = None if g is None else _list(
            convert.pull(member.chain(role), stages[role], np.asarray(g) / n))
    return out


def run_task(spec, task, runtime, row: dict, *, examples: int, seed: int, started: float) -> dict:
    """The runner's row for one ``compare:<group>`` task; ``row["compare"]`` carries the results."""
    try:
        group = get(task.property[len(PREFIX):])
        members = [m for m in group.members if m.spec_id == spec.id]
        cases = load(group, examples, seed)
        results = {m.name: [evaluate_member(m, spec, runtime, task.dtype, c) for c in cases] for m in members}
    except Exception as exc:  # noqa: BLE001 - a harness error, reported in the row
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row.update(status="error", message=(f"harness error: {type(exc).__name__}: {exc} "
                                            f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})")[:500],
                   traceback=traceback.format_exc()[-4000:])
    else:
        own = [r["own"][p] for rs in results.values() for r in rs for p in ("value", "gradient")]
        fails = [o for o in own if o["status"] == "fail"]
        row.update(examples=len(cases), compare={"group": group.key, "digest": digest(cases), "results": results},
                   status="fail" if fails else "pass",
                   code=fails[0]["code"] if fails else "", message=fails[0]["message"] if fails else "")
    row["duration_s"] = round(time.perf_counter() - started, 4)
    return row
