"""Which catalog loss a user's loss is: its values on shared random inputs against every catalog
oracle of the same framework (and the seeds' ``custom.*`` losses) whose arguments fit.

An exact match ("equals torch.nn.HuberLoss(delta=1.0) to 2 eps on 3 inputs") makes that spec the
loss's reference for the oracle checks. Without one, the closest relation found is reported: a
constant factor, the batch size or element count (a sum where the reference means), a constant
offset (a penalty term that does not depend on the inputs), swapped arguments, or an activation
applied before the reference (a double softmax).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..catalog.spec import Case
from ..tolerance import EPS, VALUE_BOUND, value_error
from .infer import Plan, role_of_name

#: the user's framework -> catalog frameworks whose losses it is compared with
FAMILY = {"torch": ("torch",), "keras": ("keras",), "tensorflow": ("keras",), "jax": ("optax",)}
#: discrete parameters that change a loss's semantics: their other values are tried too
SEMANTIC = ("reduction", "from_logits", "log_target")
SKIP_VALUES = (None, "mean_with_sample_weight")
OPTIONAL_ARGS = ("sample_weight", "weight", "mask", "where")


@dataclass
class Sample:
    """One shared input: arrays by the user's argument names (call and context), and what the
    user's loss returned on them."""
    arrays: dict[str, np.ndarray]
    value: np.ndarray
    n: int


@dataclass
class Identification:
    kind: str = "none"                 # match | near | none
    spec_id: str = ""
    params: dict = field(default_factory=dict)
    mapping: dict = field(default_factory=dict)    # user argument -> spec argument
    context: dict = field(default_factory=dict)    # user context argument -> spec parameter
    error_eps: float = 0.0
    relation: dict = field(default_factory=dict)
    message: str = ""
    also: list[str] = field(default_factory=list)
    reduce: str = ""                   # "mean": the user's loss averages the reference's per-sample values

    @property
    def title(self) -> str:
        t = spec_title(self.spec_id, self.params)
        return f"the mean of {t}" if self.reduce == "mean" else t


def spec_title(spec_id: str, params: dict) -> str:
    shown = {k: v for k, v in params.items() if not isinstance(v, np.ndarray)}
    return f"{spec_id}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


@functools.lru_cache(maxsize=None)
def _defaults(spec_id: str) -> dict:
    from ..userloss import documented_defaults

    return {} if spec_id.startswith("custom.") else documented_defaults(spec_id)


def candidates(framework: str) -> list:
    from .. import catalog
    from ..catalog import custom

    fams = FAMILY.get(framework, ())
    return [s for s in catalog.all_specs() if s.framework in fams] + list(custom.SPECS)


def param_variants(spec, hints: dict | None = None) -> list[dict]:
    """The documented defaults first (with ``hints``, the hyper-parameters the user's code binds,
    such as ``functools.partial(huber, delta=2.0)``, in their place), then each other value of the
    semantic parameters."""
    space = getattr(spec.draw, "space", None)
    if space is None:
        return []
    base = dict(getattr(spec.draw, "fixed", {}))
    defaults = _defaults(spec.id)
    for k, choices in space.items():
        if k in defaults:
            base[k] = defaults[k]
        elif isinstance(choices, (list, tuple)) and choices:
            base[k] = choices[0]
        else:
            return []
    bound = {k: v for k, v in (hints or {}).items() if k in space or k in base}
    base = {**base, **bound}
    out = [base]
    for k in SEMANTIC:
        choices = space.get(k)
        if isinstance(choices, (list, tuple)):
            out += [{**base, k: v} for v in choices if v != base.get(k) and v not in SKIP_VALUES]
    return out


def _roles(names) -> dict[str, str | None]:
    return {n: role_of_name(n) for n in names}


def mapping_for(spec, plan: Plan) -> tuple[dict, dict] | None:
    """({user arg: spec arg}, {user context arg: spec param}) or None when the arguments do not fit."""
    from ..catalog.custom import CONTEXT

    spec_args = [a.name for a in spec.args if a.name not in OPTIONAL_ARGS]
    user = [t for t in plan.call if t.role != "context"]
    if len(spec_args) != len(user):
        return None
    ctx_roles = CONTEXT.get(spec.id, {})
    user_ctx = [t for t in plan.tensors if t.role == "context"]
    if sorted(t.domain for t in user_ctx) != sorted(ctx_roles.values()):
        return None
    context = {}
    for t in user_ctx:
        param = next(p for p, r in ctx_roles.items() if r == t.domain and p not in context.values())
        context[t.name] = param
    sroles = _roles(spec_args)
    mapping = {}
    for t in user:
        match = [a for a in spec_args if sroles[a] == t.role and a not in mapping.values()]
        if len(match) != 1:
            break
        mapping[t.name] = match[0]
    if len(mapping) != len(user):   # positional when the roles do not decide it
        mapping = {t.name: a for t, a in zip(user, spec_args)}
    return mapping, context


def _oracle(spec, params, mapping, context, arrays, dtype, transform=None, swap=False):
    inputs = {mapping[u]: arrays[u] for u in mapping}
    if swap:
        a, b = list(mapping.values())[:2]
        inputs[a], inputs[b] = inputs[b], inputs[a]
    if transform is not None:
        pred = next((s for u, s in mapping.items() if role_of_name(s) == "prediction"), None)
        if pred is None:
            return None
        inputs[pred] = transform(inputs[pred])
    case = Case(inputs, {**params, **{p: arrays[u] for u, p in context.items()}}, dtype=dtype,
                runtime=spec.runtimes[0])
    try:
        with np.errstate(all="ignore"):
            r = spec.oracle(case)
            return np.asarray(r.value, np.float64), np.asarray(r.scale, np.float64)
    except Exception:  # noqa: BLE001 - inputs outside this oracle's domain
        return None


def _agree(samples, refs, dtype) -> float | None:
    """The largest error in eps when every sample agrees within the bound, else None."""
    worst = 0.0
    for s, ref in zip(samples, refs):
        if ref is None or np.shape(ref[0]) != np.shape(s.value) or not np.all(np.isfinite(ref[0])):
            return None
        n = max(int(np.size(a)) for a in s.arrays.values())
        err = value_error(s.value, ref[0], ref[1], dtype)
        if not np.all(err <= VALUE_BOUND[dtype](n)):
            return None
        worst = max(worst, float(np.max(err, initial=0.0)))
    return worst


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


TRANSFORMS = {"softmax": _softmax, "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
              "log_softmax": lambda z: np.log(_softmax(z))}


def identify(samples: list[Sample], plan: Plan, framework: str, dtype: str,
             hints: dict | None = None) -> Identification:
    """Compare the user's values on ``samples`` with every fitting catalog oracle."""
    from ..catalog.pairings import for_spec

    exact, near = [], []
    for spec in candidates(framework):
        fit = mapping_for(spec, plan)
        if fit is None:
            continue
        mapping, context = fit
        for i, params in enumerate(param_variants(spec, hints)):
            refs = [_oracle(spec, params, mapping, context, s.arrays, dtype) for s in samples]
            reduce = ""
            if _averaged(samples, refs):
                refs, reduce = [(np.mean(r[0]), np.mean(r[1])) for r in refs], "mean"
            err = _agree(samples, refs, dtype)
            ident = dict(spec_id=spec.id, params=params, mapping=mapping, context=context, reduce=reduce)
            if err is not None:
                exact.append((i, Identification("match", error_eps=err, **ident)))
                break
            if not exact:
                rel = _relation(samples, refs, dtype)
                if rel is None and spec.swappable:
                    swapped = _maybe_mean([_oracle(spec, params, mapping, context, s.arrays, dtype, swap=True)
                                           for s in samples], reduce)
                    if _agree(samples, swapped, dtype) is not None:
                        rel = {"swapped": True}
                if rel is None and for_spec(spec.id):
                    for act, f in TRANSFORMS.items():
                        moved = _maybe_mean([_oracle(spec, params, mapping, context, s.arrays, dtype, transform=f)
                                             for s in samples], reduce)
                        if _agree(samples, moved, dtype) is not None:
                            rel = {"activation": act}
                            break
                if rel is not None:
                    near.append(Identification("near", relation=rel, **ident))
    if exact:
        exact.sort(key=lambda x: x[0])
        best = exact[0][1]
        best.also = [e.title for _, e in exact[1:4]]
        best.message = (f"equals {best.title} to {best.error_eps:.2g} eps on {len(samples)} random inputs"
                        + _mapping_text(best.mapping))
        return best
    if near:
        order = {"activation": 0, "swapped": 1, "factor": 2, "batch": 2, "elements": 2, "offset": 3}
        near.sort(key=lambda n: order[next(iter(n.relation))])
        best = near[0]
        best.message = f"no catalog loss matches; closest: {best.title}, {describe_relation(best.relation)}"
        return best
    return Identification(message=f"no {' or '.join(FAMILY.get(framework, ()))} catalog loss (nor a seed's custom "
                                  f"loss) matches its values on {len(samples)} random inputs")


def _averaged(samples, refs) -> bool:
    """The user returns a scalar where the reference returns per-sample values (optax losses)."""
    return all(r is not None and np.ndim(r[0]) >= 1 and np.ndim(s.value) == 0 for s, r in zip(samples, refs))


def _maybe_mean(refs, reduce):
    if reduce != "mean":
        return refs
    return [None if r is None else (np.mean(r[0]), np.mean(r[1])) for r in refs]


def _mapping_text(mapping: dict) -> str:
    moved = {u: s for u, s in mapping.items() if u != s}
    return "" if not moved else " (" + ", ".join(f"{u} as {s}" for u, s in moved.items()) + ")"


def _relation(samples, refs, dtype) -> dict | None:
    """How the user's values relate to a reference's that they do not equal: a constant factor
    (the batch size, the element count), or a constant offset; whichever fits, far better than
    the identity does."""
    us, vs, ns, sizes = [], [], [], []
    for s, ref in zip(samples, refs):
        if ref is None or np.shape(ref[0]) != np.shape(s.value):
            return None
        u, v = np.ravel(s.value), np.ravel(ref[0])
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))) or np.any(np.abs(v) < 1e-12):
            return None
        us.append(u)
        vs.append(v)
        ns.append(s.n)
        sizes.append(max(int(np.size(a)) for a in s.arrays.values()))
    u, v = np.concatenate(us), np.concatenate(vs)
    if u.size < 2 or np.unique(np.round(v, 12)).size < 2:
        return None   # one value cannot tell a factor from an offset
    tol = 1e3 * EPS[dtype]
    scale = float(np.max(np.abs(u)))
    identity = float(np.max(np.abs(u - v))) / scale

    def fits(residual: float) -> bool:
        return residual <= tol and residual < 1e-3 * identity

    per_sample = [np.full(len(a), k, float) for a, k in zip(us, ns)]
    per_size = [np.full(len(a), k, float) for a, k in zip(us, sizes)]
    if len(set(ns)) > 1 and fits(float(np.max(np.abs(u - np.concatenate(per_sample) * v))) / scale):
        return {"batch": True}
    if len(set(sizes)) > 1 and fits(float(np.max(np.abs(u - np.concatenate(per_size) * v))) / scale):
        return {"elements": True}
    r = float(np.dot(u, v) / np.dot(v, v))
    c = float(np.mean(u - v))
    factor = float(np.max(np.abs(u - r * v))) / scale
    offset = float(np.max(np.abs(u - v - c))) / scale
    if fits(offset) and offset <= factor:
        return {"offset": c}
    if fits(factor):
        return {"factor": r}
    return None


def describe_relation(rel: dict) -> str:
    if "batch" in rel:
        return "times the batch size N: a sum over the samples where it takes the mean"
    if "elements" in rel:
        return "times the number of elements: a sum where it takes the mean"
    if "factor" in rel:
        return f"times a constant {rel['factor']:.6g}"
    if "offset" in rel:
        return (f"plus a constant {rel['offset']:.6g} that does not depend on the inputs "
                "(a penalty on weights, or a constant term)")
    if "swapped" in rel:
        return "with the prediction and the target swapped"
    if "activation" in rel:
        return f"applied to {rel['activation']}(prediction): the loss applies {rel['activation']} itself first"
    return ""
