"""What runs for each loss (inside the sandbox): choose its inputs by probing, identify it against
the catalog (or take the reference given by ``--reference`` or ``declare``), run the oracle
properties when there is a reference, always run the reference-free probes, and add the checks
read off the file's source. Returns the loss's entry of the audit report.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import probes, static
from .evaluate import Evaluator
from .identify import Identification, Sample, identify, mapping_for
from .infer import DEFAULT_DIMS, InputsError, Plan, describe_context, parse_inputs, plans, scalar_defaults, unbuildable
from .oracle import jsonable, oracle_checks
from .probes import Probe, result

STATUS_RANK = {"fail": 3, "warn": 2, "pass": 1, "skip": 0}
#: what a loss that returns no value at all most likely does wrong, by the type it returns
NOT_A_VALUE = {"NoneType": "a missing return statement", "coroutine": "an async def: training calls it without await",
               "generator": "a yield where a return is meant", "async_generator": "an async def with a yield",
               "list": "a list where the loss tensor itself is meant", "tuple": "a tuple where the loss tensor itself "
               "is meant", "str": "text where the loss tensor is meant"}


@dataclass
class Options:
    reference: str | None = None
    inputs: str | None = None
    framework: str = "auto"
    devices: tuple[str, ...] = ("cpu",)
    examples: int = 10
    seed: int = 0
    file: str = ""
    repro: str = ""                 # the audit command that reproduces this loss's findings


@dataclass
class Subject:
    """A loss resolved in the sandbox."""
    candidate: dict                  # discover.Candidate as JSON
    framework: str
    make: Callable[..., Callable]    # make(**constructor context and scalars) -> the callable
    params: list[str]                # required call parameters, in order
    ctor_params: list[str] = field(default_factory=list)
    captured: dict[str, dict] = field(default_factory=dict)
    declared: dict | None = None
    doc: str = ""
    annotations: dict = field(default_factory=dict)
    locate: str = ""                 # Python expression giving the object from the module (for scripts)
    hints: dict = field(default_factory=dict)   # hyper-parameters the code binds (partial keywords)
    keywords: list[str] = field(default_factory=list)   # params passed by keyword (keyword-only, **kwargs)


def entry_for(c: dict, framework: str | None) -> dict:
    return {"name": c["name"], "file": "", "line": c["line"], "kind": c["kind"], "framework": framework or "",
            "inputs": {}, "context": [], "reference": None, "notes": list(c.get("notes") or []),
            "status": "pass", "checks": [], "duration_s": 0.0}


def finish(entry: dict, started: float) -> dict:
    statuses = [ch["status"] for ch in entry["checks"]] or ["skip"]
    entry["status"] = max(statuses, key=lambda s: STATUS_RANK[s])
    if entry["status"] == "skip" and any(s == "pass" for s in statuses):
        entry["status"] = "pass"
    entry["duration_s"] = round(time.perf_counter() - started, 3)
    return entry


# ---- framework losses named in the file ---------------------------------------------------------------

def audit_builtin(c: dict, opts: Options) -> dict:
    """``criterion = nn.CrossEntropyLoss()``, ``compile(loss="mse")``: the catalog checks the loss
    itself; here, how the file uses it."""
    from .. import catalog

    started = time.perf_counter()
    fid = c["builtin"]
    fw = {"torch": "torch", "keras": "keras", "optax": "jax"}[fid.split(".")[0]]
    entry = entry_for(c, fw)
    try:
        spec = catalog.get(fid)
    except KeyError as exc:
        entry["checks"].append(result("catalog", "skip", f"{exc.args[0]}: not checked"))
        return finish(entry, started)
    params = {k: v for k, v in (c.get("builtin_params") or {}).items() if v is not None}
    entry["reference"] = {"id": fid, "params": params, "how": "a framework loss named in the file"}
    entry["checks"].append(result("catalog", "pass", f"a framework loss: `losscheck check {fid}` checks its value and "
                                  f"gradient against the oracle; here, only how the file uses it"))
    order = ["target", "prediction"] if fid.startswith("keras.") else ["prediction", "target"]
    entry["checks"] += static.call_sites(c.get("call_sites") or [], order, fid, lambda: _oracle_symmetric(spec, params))
    entry["checks"] += static.pairing(fid, params, c.get("models") or [])
    return finish(entry, started)


def _oracle_symmetric(spec, params) -> bool | None:
    """Whether swapping the first two arguments leaves the oracle's value unchanged (same-shape reals)."""
    from ..catalog.spec import Case
    from .identify import param_variants

    variants = param_variants(spec)
    if not variants:
        return None
    p = {**variants[0], **params}
    a, b = [x.name for x in spec.args[:2]]
    rng = np.random.default_rng(0)
    try:
        with np.errstate(all="ignore"):
            for _ in range(3):
                x, y = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0.1, 0.9, (4, 3))
                v1 = spec.oracle(Case({a: x, b: y}, p)).value
                v2 = spec.oracle(Case({a: y, b: x}, p)).value
                if not np.allclose(v1, v2, rtol=1e-12, atol=0):
                    return False
    except Exception:  # noqa: BLE001
        return None
    return True


# ---- user losses -------------------------------------------------------------------------------------------

def audit_subject(s: Subject, opts: Options) -> dict:
    started = time.perf_counter()
    entry = entry_for(s.candidate, s.framework)
    evaluator = None
    try:
        evaluator = Evaluator(s.framework, "cpu")
        _audit(s, opts, entry, evaluator)
    except Exception as exc:  # noqa: BLE001 - a losscheck bug must not hide the other losses' results
        entry["checks"].append(result("audit", "skip", f"losscheck error while auditing: {probes._short(exc)}",
                                      details={"traceback": traceback.format_exc()[-3000:]}))
    if evaluator is not None:
        entry["checks"] += side_effects(evaluator, entry["checks"], opts)
    return finish(entry, started)


def side_effects(evaluator: Evaluator, checks: list[dict], opts: Options) -> list[dict]:
    """X008/X009 for an input the loss wrote into or a framework setting it changed, on any call of
    the audit (the evaluator restored the settings after each); none when a check already reports
    the code (the oracle checks raise them too)."""
    reported = {c["code"] for c in checks if c["status"] in ("fail", "warn")}
    return [result("execution", "fail", h.message, h.code, {**h.details}) | {"repro": opts.repro}
            for code, h in sorted(evaluator.side_effects.items()) if code not in reported]


def _override(s: Subject, opts: Options) -> tuple[dict | None, str]:
    text = opts.inputs or (s.declared or {}).get("inputs")
    if not text:
        return None, ""
    return parse_inputs(text), "--inputs" if opts.inputs else "declare"


def _choose(s: Subject, candidates: list[Plan], evaluator: Evaluator, opts: Options):
    """The first (plan, dtype) the loss accepts with a finite value; else what went wrong."""
    dims = dict(DEFAULT_DIMS)
    widths = [info["shape"][0] for info in s.captured.values() if len(info.get("shape") or ()) == 1
              and info["shape"][0] > 1]
    if widths:  # a captured per-column constant: start from the width it fits
        dims["D"] = dims["C"] = widths[0]
    tried, nonfinite = [], None
    for plan in candidates:
        plan.scalars = scalar_defaults(s.ctor_params)
        for dtype in ("float64", "float32"):
            probe = Probe(s.make, plan, evaluator, dtype, dims, opts.seed, s.captured)
            try:
                out = probe.call(probe.inputs(probe.rng(1)))
            except probes.LossError as exc:  # the loss rejected this hypothesis
                tried.append(f"{plan.label} [{dtype}]: {probes._short(exc)}")
                continue
            if not out.numeric:   # None, a str, a coroutine...: it took these inputs; what it returns is the finding
                return probe, out, tried
            if not np.all(np.isfinite(out.value)):
                nonfinite = nonfinite or (probe, out)
                tried.append(f"{plan.label} [{dtype}]: value {probes._fmt(out.value)}")
                break
            if dtype == "float64" and out.dtype == "float32":
                probe.dtype = "float32"   # it computes in float32 whatever it is given
            return probe, out, tried
    if nonfinite is not None:
        return nonfinite[0], nonfinite[1], tried
    return None, None, tried


def _audit(s: Subject, opts: Options, entry: dict, evaluator: Evaluator) -> None:
    c = s.candidate
    override, source = _override(s, opts)
    missing = unbuildable(s.ctor_params, override)
    if missing:
        entry["checks"].append(result("inputs", "skip", f"the constructor needs {', '.join(missing)}, which is not a "
                                      "context tensor or a known hyper-parameter: instantiate the loss in the file "
                                      f"(e.g. loss_fn = {c['name']}(...)) or declare its inputs"))
        return
    s = _bind_call_scalars(s, entry, override)
    try:
        hypotheses = plans(s.params, [p for p in s.ctor_params if p not in scalar_defaults(s.ctor_params)],
                           doc=s.doc, annotations=s.annotations, override=override, override_source=source,
                           framework=s.framework, body_losses=c.get("body_losses"))
    except InputsError as exc:
        entry["checks"].append(result("inputs", "skip", f"{exc}"))
        return
    probe, out, tried = _choose(s, hypotheses, evaluator, opts)
    if probe is None:
        entry["checks"].append(_raised_everywhere(s, tried))
        return
    plan = probe.plan
    entry["inputs"] = plan.describe()
    if not out.numeric:   # no value to check anything on: X005 alone
        entry["checks"].append(_output_check(s, probe, out))
        return
    if not np.all(np.isfinite(out.value)):
        entry["checks"].append(result("inputs", "fail", f"the loss is {probes._fmt(out.value)} on ordinary inputs "
                                      f"({plan.label}), and every other input hypothesis raises: "
                                      f"{'; '.join(tried[-2:])}", "N001", {"tried": tried}))
        return
    entry["checks"] += _named_logits(plan)
    lead = (plan.by_role("prediction") or plan.by_role("embeddings") or plan.call)[0].name
    entry["context"] = [describe_context(t, probe.dims, lead) for t in plan.tensors if t.role == "context"]
    if plan.scalars:
        entry["context"].append("constructor arguments: " + ", ".join(f"{k}={v!r}" for k, v in plan.scalars.items()))
    entry["dtype"] = probe.dtype
    if s.captured:
        entry["notes"].append("holds constant tensors: " + ", ".join(
            f"{k} {tuple(v['shape'])} {v['dtype']}" for k, v in s.captured.items()))
    entry["checks"].append(_output_check(s, probe, out))
    if not out.is_tensor:
        entry["checks"].append(result("gradient", "fail", f"the loss returns {out.type_name}, not a tensor: no gradient "
                                      "can flow back to the model", "G002"))
    ident = _reference(s, opts, probe, entry)
    if ident is not None and out.is_tensor and np.all(np.isfinite(out.value)):
        _run(entry, lambda: oracle_checks(s, opts, probe, ident), probe)
    if out.is_tensor:
        _run(entry, lambda: [probes.gradient(probe)], probe)
        _run(entry, lambda: [probes.compiled(probe)], probe)
    _run(entry, lambda: probes.batch(probe), probe)
    _run(entry, lambda: [probes.broadcast(probe)], probe)
    _run(entry, lambda: [probes.integer_context(probe)], probe)
    for dev in opts.devices:
        if dev != "cpu":
            _run(entry, lambda dev=dev: [_device(probe, dev)], probe)
    _run(entry, lambda: [probes.numerics(probe)], probe)
    vectorised = None
    if ident is not None and ident.spec_id:
        from ..catalog.custom import VECTORISED

        vectorised = VECTORISED.get(ident.spec_id, {}).get(s.framework)
    _run(entry, lambda: [probes.scaling(probe, vectorised=vectorised)], probe)
    expected = [t.role for t in plan.call[:2]]
    entry["checks"] += static.call_sites(c.get("call_sites") or [], expected, c["name"],
                                         lambda: _user_symmetric(probe))
    if ident is not None and ident.spec_id and c.get("models"):
        entry["checks"] += static.pairing(ident.spec_id, ident.params, c["models"])
    elif c.get("models") and c.get("body_losses") and plan.by_role("prediction") and plan.by_role("target"):
        entry["checks"] += static.through_body(c["name"], c["body_losses"], plan.by_role("prediction")[0].name,
                                               plan.by_role("target")[0].name, c["models"])
    for ch in entry["checks"]:
        arrays = ch["details"].pop("_arrays", None)
        if ch["status"] in ("fail", "warn") and not ch.get("repro"):
            ch["repro"] = opts.repro
            if arrays is not None:
                from .repro import script

                ch["details"]["script"] = script(s, probe, arrays, ch)


def _run(entry, fn, probe: Probe) -> None:
    """Append the checks ``fn()`` returns; an exception from the loss is an X001 finding with the
    inputs of the call that raised (the probe's last call)."""
    try:
        entry["checks"] += fn()
    except probes.LossError as exc:  # the loss raised inside a probe: a finding about the loss
        entry["checks"].append(_raised(exc, probe))
    except Exception as exc:  # noqa: BLE001 - losscheck's own bug: say so, never blame the loss
        entry["checks"].append(result("audit", "skip", f"losscheck error in a check: {probes._short(exc)}",
                                      details={"traceback": traceback.format_exc()[-3000:]}))


def _raised(exc, probe: Probe) -> dict:
    """The finding for a loss that raised inside a probe (X007 when it ran out of memory)."""
    code, what = ("X007", "ran out of memory") if exc.memory else ("X001", "raised")
    return result("execution", "fail", f"{what}: {probes._short(exc)}", code,
                  {"traceback": probes.traceback_text(exc.original), "_arrays": probe.last_inputs})


def _device(probe: Probe, dev: str) -> dict:
    if not probe.evaluator.cuda_available():
        return result("context_device", "skip", f"--device {dev}: no CUDA device is visible to {probe.evaluator.framework}")
    return probes.device(probe, dev)


def _bind_call_scalars(s: Subject, entry: dict, override) -> Subject:
    """Call parameters without a default that name a hyper-parameter (``delta``, ``margin``...) get a
    plausible value bound by keyword, and are no longer tensor inputs."""
    import dataclasses
    import functools

    from .infer import SCALARS, role_of_name

    bound = {p: SCALARS[p.lower()] for p in s.params
             if p.lower() in SCALARS and not role_of_name(p) and p not in (override or {})}
    if not bound:
        return s
    make = s.make
    entry["context"].append("called with " + ", ".join(f"{k}={v!r}" for k, v in bound.items()))
    return dataclasses.replace(s, params=[p for p in s.params if p not in bound], hints={**bound, **s.hints},
                               make=lambda **kw: functools.partial(make(**kw), **bound))


def _named_logits(plan: Plan) -> list[dict]:
    """An argument named logits that the loss only accepts as probabilities: a missing softmax."""
    out = []
    for t in plan.by_role("prediction"):
        if "logit" in t.name.lower() and t.domain in ("probs", "unit") and t.source != "--inputs":
            out.append(result("activation", "fail", f"{t.name!r} is named logits, but the loss is NaN or raises on "
                              f"raw scores and is finite only on probabilities ({t.domain}): it applies no "
                              "softmax/sigmoid (a missing activation, or a misnamed argument)", "A004",
                              {"argument": t.name}))
    return out


def _raised_everywhere(s: Subject, tried: list[str]) -> dict:
    ints = {k: v for k, v in s.captured.items() if "int" in str(v.get("dtype"))}
    text = "; ".join(tried[-4:])
    if any(w in text for w in ("MemoryError", "can't allocate memory", "out of memory")):
        return result("inputs", "fail", f"runs out of memory on every input tried: {tried[0]}", "X007",
                      {"tried": tried})
    if ints and any(w in text.lower() for w in ("int", "long", "dtype", "expected")):
        names = ", ".join(f"{k} ({v['dtype']})" for k, v in ints.items())
        return result("inputs", "fail", f"raises on every input tried because of the integer constant {names}: "
                      f"{text}; build it as floats (tf.constant([...], dtype=tf.float32) / torch.tensor(..., "
                      "dtype=torch.float32))", "D002", {"tried": tried})
    return result("inputs", "fail", f"raises on every input tried ({len(tried)} hypotheses); last: {text}. If it "
                  "takes other inputs, say so with --inputs or @losscheck.declare(inputs=...)", "X001",
                  {"tried": tried})


def _output_check(s: Subject, probe: Probe, out) -> dict:
    n = probe.dims["N"]
    shape = np.shape(out.value)
    if not out.numeric:
        why = NOT_A_VALUE.get(out.type_name, "no loss value to train on")
        return result("output", "fail", f"returns {out.type_name}, not a {s.framework} tensor: {why}; nothing else "
                      "can be checked", "X005", {"type": out.type_name})
    if not out.is_tensor:
        return result("output", "fail", f"returns {out.type_name} ({probes._fmt(out.value)}), not a "
                      f"{s.framework} tensor: the value is cut from autodiff", "X005", {"type": out.type_name})
    if shape == ():
        return result("output", "pass", f"returns a scalar {out.dtype} tensor", details={"shape": []})
    keras = s.framework in ("keras", "tensorflow")
    lead = np.shape(probe.last_inputs[(probe.plan.by_role("prediction") or probe.plan.call)[0].name]) \
        if probe.last_inputs else ()
    if shape == (n,) or (keras and shape[0] == n):
        how = ("Keras reduces it in compile/fit with its sum_over_batch_size reduction, i.e. the mean"
               if keras else "reduce it (.mean()) before backward()")
        return result("output", "pass", f"returns one value per sample (shape {shape}): {how}",
                      details={"shape": list(shape)})
    if shape == lead:
        return result("output", "pass", f"returns one value per element (shape {shape}, reduction 'none'): reduce "
                      "it before backward()", details={"shape": list(shape)})
    return result("output", "fail", f"returns shape {shape} for a batch of {n}: neither a scalar nor one value per "
                  "sample", "X002", {"shape": list(shape)})


def _samples(probe: Probe, k: int = 3) -> list[Sample]:
    out = []
    for i, (n, d) in enumerate([(3, probe.dims["D"]), (5, probe.dims["D"]), (4, probe.dims["D"] + 1)][:k]):
        dims = {"N": n, "D": d, "C": d} if not probe.captured else {"N": n}
        x = probe.inputs(probe.rng(10 + i), **dims)
        try:
            v = probe.value(x)
        except probes.LossError:  # another width is not accepted (a constant of fixed width)
            x = probe.inputs(probe.rng(10 + i), N=n)
            v = probe.value(x)
        out.append(Sample(x, np.asarray(v, np.float64), n))
    return out


def _reference(s: Subject, opts: Options, probe: Probe, entry: dict) -> Identification | None:
    """The reference to check against: given (--reference, declare) or identified by value."""
    given = opts.reference or (s.declared or {}).get("reference")
    if given:
        from ..userloss import UsageError, reference_spec

        try:
            spec = reference_spec(given)
        except UsageError as exc:
            entry["checks"].append(result("reference", "skip", str(exc)))
            return None
        fit = mapping_for(spec, probe.plan)
        how = "--reference" if opts.reference else "@losscheck.declare"
        if fit is None:
            entry["checks"].append(result("reference", "skip", f"{given} ({how}) takes "
                                          f"{', '.join(a.name for a in spec.args)}; the loss's inputs "
                                          f"({', '.join(t.name for t in probe.plan.tensors)}) do not map onto them: "
                                          "pass --inputs"))
            return None
        params = {**(s.declared or {}).get("params", {})} if not opts.reference else {}
        ident = Identification("given", spec_id=spec.id, params=params, mapping=fit[0], context=fit[1])
        ident.reduce = _averages(probe, spec, ident)
        entry["reference"] = {"id": spec.id, "how": how, "params": params, "reduce": ident.reduce}
        entry["checks"].append(result("reference", "pass", f"checked against {ident.title} ({how})"))
        return ident
    try:
        samples = _samples(probe)
    except probes.LossError as exc:  # it raises on the identification inputs too: a finding, not a harness error
        entry["checks"].append(_raised(exc, probe))
        return None
    if not all(np.all(np.isfinite(x.value)) for x in samples):
        entry["checks"].append(result("reference", "skip", "not identified: the loss is not finite on random inputs"))
        return None
    ident = identify(samples, probe.plan, s.framework, probe.dtype, s.hints)
    if ident.kind == "match":
        entry["reference"] = {"id": ident.spec_id, "how": "identified by value", "params": jsonable(ident.params),
                              "reduce": ident.reduce}
        entry["checks"].append(result("reference", "pass", ident.message,
                                      details={"error_eps": ident.error_eps, "also": ident.also}))
        return ident
    if ident.kind == "near":
        status, code = "pass", ""
        if "swapped" in ident.relation:
            status, code = "fail", "V004"
        elif "activation" in ident.relation:
            status, code = _activation_verdict(ident)
        entry["checks"].append(result("reference", status, ident.message, code,
                                      {"closest": ident.spec_id, "relation": ident.relation}))
        return None
    entry["checks"].append(result("reference", "pass", ident.message + ": reference-free checks only"))
    return None


def _averages(probe: Probe, spec, ident: Identification) -> str:
    """"mean" when the loss returns a scalar where the reference returns one value per sample or
    element (optax losses are unreduced; ``jnp.mean(optax.losses.x(...))`` is the usual loss)."""
    from .identify import _oracle, param_variants

    x = probe.inputs(probe.rng(5))
    variants = param_variants(spec)
    ref = _oracle(spec, {**(variants[0] if variants else {}), **ident.params}, ident.mapping, ident.context, x,
                  probe.dtype)
    try:
        mine = probe.value(x)
    except probes.LossError:
        return ""
    return "mean" if ref is not None and np.ndim(ref[0]) >= 1 and np.ndim(mine) == 0 else ""


def _activation_verdict(ident: Identification) -> tuple[str, str]:
    """A softmax/sigmoid the loss applies itself before a catalog loss: measured by losscheck.compat."""
    from ..catalog.pairings import for_spec

    act = ident.relation["activation"]
    variants = for_spec(ident.spec_id)
    chosen = next((pr for pv, pr in variants if all(ident.params.get(k, v) == v for k, v in pv.items())), None)
    if chosen is None or chosen.expects == act:
        return "pass", ""
    effect = static._measure(ident.spec_id, {k: ident.params[k] for k in ident.params if k in
                                             dict(variants[0][0])}, chosen, act)
    if effect is None:
        return "warn", "A003"
    from ..compat import effect_code

    ident.message += f" ({chosen.expects} expected: {effect.describe()})"
    return {"ok": "pass", "warn": "warn", "wrong": "fail"}[effect.verdict], effect_code(effect)


def _user_symmetric(probe: Probe) -> bool | None:
    if not probe.plan.elementwise:
        return False
    pred, target = probe.plan.by_role("prediction")[0].name, probe.plan.by_role("target")[0].name
    x = probe.inputs(probe.rng(800))
    try:
        a = probe.value(x)
        b = probe.value({**x, pred: x[target], target: x[pred]})
    except probes.LossError:
        return None
    return probes.close(a, b, probe.dtype)
