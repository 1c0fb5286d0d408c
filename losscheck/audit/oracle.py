"""The oracle checks of a loss with a reference: against a reference given by ``--reference`` or
``@losscheck.declare``, the catalog's properties on the reference's own input space (hypothesis,
shrinking to the smallest failing input); against one identified by value, value and gradient on
the loss's own input domains, where the identification holds."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..userloss import mean_spec
from .identify import Identification
from .infer import Plan
from .probes import Probe, result

if TYPE_CHECKING:
    from .checks import Options, Subject

#: oracle properties for a reference given by --reference or declare(), and for one identified by
#: value (its extreme inputs test the catalog's clipping conventions, which a user's loss need not share)
ORACLE_PROPERTIES = {"given": ("value", "gradient", "numerics", "batch"), "match": ("value", "gradient")}


def jsonable(params: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in params.items()}


def factory_for_oracle(s: Subject, plan: Plan) -> Callable:
    """``make(**context)``: the constructor context and scalars build the loss; call-time context
    arguments are bound by keyword. Its signature is the loss's other call parameters, which
    :func:`losscheck.userloss.spec_for` binds to the reference's arguments."""
    import functools

    ctor = {t.name for t in plan.ctor} | set(plan.scalars)
    call_ctx = [t.name for t in plan.call if t.role == "context"]

    def make(**kw):
        loss = s.make(**{k: v for k, v in kw.items() if k in ctor})
        bound = {k: v for k, v in kw.items() if k in call_ctx}
        return functools.partial(loss, **bound) if bound else loss

    make.__signature__ = inspect.Signature([inspect.Parameter(t.name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                            for t in plan.call if t.role != "context"])
    return make


def oracle_checks(s: Subject, opts: Options, probe: Probe, ident: Identification) -> list[dict]:
    from ..userloss import UsageError, check_callable, reference_spec

    ref = reference_spec(ident.spec_id)
    if ident.reduce == "mean":
        ref = mean_spec(ref)
    if ident.kind != "given":
        return [_oracle_on_plan(s, opts, probe, ident, ref, dtype)
                for dtype in (("float64", "float32") if probe.dtype == "float64" else ("float32",))]
    params = {k: v for k, v in ident.params.items() if k in getattr(ref.draw, "space", {}) or k in ref.draw.fixed}
    # a given reference in every dtype the loss runs in; an identified one in float32, the training dtype
    dtypes = ("float64", "float32") if probe.dtype == "float64" and ident.kind == "given" else ("float32",)
    rows = []
    for device in opts.devices:
        if device != "cpu" and not probe.evaluator.cuda_available():
            continue   # the context_device check says so
        try:
            rows += check_callable(factory_for_oracle(s, probe.plan), ref, properties=ORACLE_PROPERTIES[ident.kind],
                                   dtypes=dtypes, examples=opts.examples, seed=opts.seed, device=device,
                                   name=s.candidate["name"], framework=s.framework, params=params,
                                   inputs=_user_to_ref(ident.mapping), context=ident.context,
                                   factory_kwargs=probe.plan.scalars)
        except UsageError as exc:
            return [result("oracle", "skip", f"cannot bind it to {ident.spec_id}: {exc}")]
    out = []
    for r in rows:
        status = {"pass": "pass", "deviation": "pass", "fail": "fail", "warn": "warn", "skip": "skip", "error": "skip",
                  "xfail": "fail", "xpass": "pass"}[r["status"]]
        msg = r["message"] or ({"pass": f"agrees with {ident.spec_id} within {r['bound_eps'] or 0:.0f} eps "
                                f"(worst {r['error_eps'] or 0:.2g} eps, {r['examples']} examples)"}.get(status, r["reason"]))
        if r["status"] == "error":
            msg = "losscheck error: " + msg
        details = {k: r[k] for k in ("dtype", "error_eps", "bound_eps", "input", "params", "shape") if r.get(k) is not None}
        details["property"] = r["property"]
        where = r["dtype"] if r["device"] == "cpu" else f"{r['dtype']}, {r['device']}"
        out.append({"check": f"oracle_{r['property']}[{where}]", "code": r["code"], "status": status, "message": msg,
                    "details": details, "repro": opts.repro if status in ("fail", "warn") else ""})
    return out


def _oracle_on_plan(s: Subject, opts: Options, probe: Probe, ident: Identification, spec, dtype: str) -> dict:
    """Value and gradient against the identified reference's oracle, on ``opts.examples`` random
    inputs from the loss's own input domains (where the identification holds; the reference's own
    input space may be wider: class probabilities for targets, ignore_index...)."""
    import dataclasses

    from ..catalog.spec import Case
    from ..properties.common import cotangent_for
    from ..properties.explain import explain_gradient, explain_value
    from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, kink_rtol, kinks_where_finite, value_error

    p = dataclasses.replace(probe, dtype=dtype)
    args = {a.name: a for a in spec.args}
    name = f"oracle[{dtype}]"
    worst_v = worst_g = 0.0
    for i in range(opts.examples):
        x = p.inputs(p.rng(900 + i), N=(4, 3)[i % 2])   # few shapes: JAX compiles once per shape
        case = Case({ident.mapping[u]: x[u] for u in ident.mapping},
                    {**ident.params, **{prm: x[u] for u, prm in ident.context.items()}}, dtype=dtype,
                    runtime=spec.runtimes[0])
        with np.errstate(all="ignore"):
            ref = spec.oracle(case)
        if not np.all(np.isfinite(ref.value)):
            continue
        cot = cotangent_for(np.shape(ref.value)) if np.ndim(ref.value) else None
        out = p.call(x, cotangent=cot)
        n = max(int(np.size(v)) for v in x.values())
        vb, gb = VALUE_BOUND[dtype](n), GRAD_BOUND[dtype](n)
        if np.shape(out.value) != np.shape(ref.value):
            return result(name, "fail", f"returns shape {np.shape(out.value)} where {ident.title} returns "
                          f"{np.shape(ref.value)} (N={case.shape})", "X002", {"inputs": jsonable(x)})
        err = float(np.nanmax(value_error(out.value, ref.value, ref.scale, dtype), initial=0.0))
        if err > vb:
            f = explain_value(spec, case, out.value, ref, dtype, err, vb)
            return result(name, "fail", f"against {ident.title}: {f.message}", f.code,
                          {"error_eps": err, "bound_eps": vb, "inputs": jsonable(x), "_arrays": x})
        worst_v = max(worst_v, err)
        g_ref, mags = ref.grad(cot), ref.grad_magnitude(cot)
        shapes = {args[a].oracle_name: np.shape(x[u]) for u, a in ident.mapping.items()}
        kinks = ref.kinks(kink_rtol(dtype), shapes)
        for u, a in ident.mapping.items():
            arg, g = args[a], out.grads.get(u)
            if not arg.wants_grad or arg.oracle_name not in g_ref or u not in out.grads:
                continue
            r, m = g_ref[arg.oracle_name], mags[arg.oracle_name]
            if g is None:
                if np.any(r != 0):
                    return result(name, "fail", f"no gradient reaches {u!r}, where {ident.title}'s is not zero",
                                  "G002", {"input": u})
                continue
            skip = kinks_where_finite(kinks.get(arg.oracle_name), g)
            gerr = grad_error(g, r, m, dtype, skip)
            if gerr > gb:
                f = explain_gradient(spec, case, arg, g, r, m, skip, dtype, gerr, gb, True)
                return result(name, "fail", f"against {ident.title}: {f.message}".replace(repr(a), repr(u)),
                              f.code, {"error_eps": gerr, "bound_eps": gb, "inputs": jsonable(x), "_arrays": x})
            worst_g = max(worst_g, gerr)
    return result(name, "pass", f"value and gradient agree with {ident.title} on {opts.examples} inputs "
                  f"(worst {worst_v:.2g} and {worst_g:.2g} eps)", details={"value_eps": worst_v, "grad_eps": worst_g})


def _user_to_ref(mapping: dict) -> dict | None:
    return dict(mapping) if mapping else None
