"""Checking a user's own loss callable against a catalog reference.

``check_callable(my_loss, reference="torch.nn.MSELoss")`` turns the user's function into a
:class:`~losscheck.catalog.spec.LossSpec` derived from the reference's: the same input domains and
oracle, the user's callable in place of the framework's, and the reference's hyper-parameters pinned
to what the user's loss implements (by default the referenced API's documented defaults, read from
its signature: ``nn.MSELoss()`` means ``reduction="mean"``). Then the usual properties run on it
in this process. Used by the pytest plugin and by ``losscheck audit``.
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, replace
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .catalog.spec import Arg, Case, LossSpec

#: parameter names users give to predictions and to targets, by role
PREDICTION_NAMES = frozenset({
    "input", "inputs", "y_pred", "ypred", "pred", "preds", "prediction", "predictions", "output", "outputs", "out",
    "logits", "logit", "scores", "score", "log_probs", "logprobs", "probs", "probabilities", "y_hat", "yhat", "x",
    "predicted", "predicted_values", "estimate", "estimates", "log_predictions", "y_prob", "y_logits"})
TARGET_NAMES = frozenset({"target", "targets", "y_true", "ytrue", "y", "label", "labels", "truth", "ground_truth",
                          "gt", "true", "real_values", "actual", "expected", "y_target"})
FRAMEWORK_RUNTIME = {"torch": "torch", "jax": "jax", "optax": "jax", "keras": None, "tensorflow": "keras-tensorflow"}


class UsageError(ValueError):
    """A user's call that cannot be checked as asked (unknown reference, unbindable argument)."""


def role_of(name: str) -> str | None:
    n = name.lower()
    if n in PREDICTION_NAMES:
        return "prediction"
    if n in TARGET_NAMES:
        return "target"
    return None


def detect_framework(fn: Callable) -> str | None:
    """The framework a callable uses, from the modules its code refers to (torch, keras, tensorflow,
    jax/optax); None when nothing tells."""
    fn = inspect.unwrap(getattr(fn, "func", fn))
    target = fn.forward if hasattr(fn, "forward") else (fn.call if hasattr(fn, "call") else fn)
    code = getattr(target, "__code__", None)
    glob = getattr(target, "__globals__", {}) or {}
    names = set(code.co_names) if code else set()
    found = set()
    for name in (names if code else set(glob)):
        mod = glob.get(name)
        root = getattr(mod, "__name__", "") if inspect.ismodule(mod) else getattr(mod, "__module__", "") or ""
        root = root.split(".")[0]
        if root in ("torch", "keras", "tensorflow", "jax", "optax"):
            found.add(root)
    mro = [c.__module__.split(".")[0] for c in type(fn).__mro__] if not inspect.isroutine(fn) else []
    found.update(m for m in mro if m in ("torch", "keras"))
    for fw in ("keras", "torch", "tensorflow", "optax", "jax"):
        if fw in found:
            return fw
    return None


def runtime_for(framework: str) -> str:
    if framework not in FRAMEWORK_RUNTIME:
        raise UsageError(f"unknown framework {framework!r}; expected torch, keras, tensorflow or jax")
    rt = FRAMEWORK_RUNTIME[framework]
    if rt is None:
        import os
        import sys

        backend = (sys.modules["keras"].config.backend() if "keras" in sys.modules
                   else os.environ.get("KERAS_BACKEND", "tensorflow"))
        rt = f"keras-{backend}"
    return rt


def documented_defaults(reference: str) -> dict[str, Any]:
    """Keyword defaults of the referenced API (class constructor or function), by introspection."""
    module, _, name = reference.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return {}
    try:
        sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in sig.parameters.values()
            if p.default is not inspect.Parameter.empty and p.kind != p.VAR_KEYWORD}


def reference_spec(reference: str) -> LossSpec:
    """The LossSpec of a catalog id, or of a ``custom.*`` id (the seeds' own losses,
    ``losscheck/catalog/custom.py``, not in the catalog's registry)."""
    from . import catalog
    from .catalog import custom

    try:
        return custom.get(reference) if custom.is_custom(reference) else catalog.get(reference)
    except KeyError:
        raise UsageError(f"unknown reference {reference!r}; see `losscheck list` for catalog ids "
                         f"(and {', '.join(s.id for s in custom.SPECS)})") from None


def call_target(fn: Callable) -> Callable:
    """What is called on each evaluation: ``forward`` of a torch module, ``call`` of a Keras loss
    (its ``__call__`` reduces), else ``fn`` itself; for a class, the unbound method (self dropped)."""
    import functools

    if inspect.isclass(fn):
        for name in ("forward", "call", "__call__"):
            method = inspect.getattr_static(fn, name, None)
            if method is not None and inspect.isfunction(method):
                return functools.partial(method, None)
        return fn
    return fn


def _bind(fn: Callable, ref: LossSpec, inputs: Mapping[str, str] | None) -> tuple[tuple[Arg, ...], dict[str, str]]:
    """The reference arguments the user's callable takes, and {reference arg: user keyword}.

    ``inputs`` maps the user's parameter names to the reference's argument names explicitly; without
    it, parameters are matched by role (prediction / target names) and otherwise by position."""
    forward = getattr(fn, "forward", None)
    if not inspect.isroutine(fn) and not inspect.isclass(fn) and callable(forward):
        fn = forward  # a torch module instance: __call__ is (*args, **kwargs), forward has the names
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    user = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is inspect.Parameter.empty] if sig else []
    optional = {p.name for p in sig.parameters.values() if p.default is not inspect.Parameter.empty} if sig else set()
    ref_names = [a.name for a in ref.args]
    if inputs:
        unknown = set(inputs.values()) - set(ref_names)
        if unknown:
            raise UsageError(f"inputs= maps onto {sorted(unknown)}, not arguments of {ref.id} ({', '.join(ref_names)})")
        mapping = {r: u for u, r in inputs.items()}
    else:
        mapping = {}
        ref_roles = {role_of(a): a for a in ref_names if role_of(a)}
        user_roles = {role_of(p.name): p.name for p in user if role_of(p.name)}
        if len(ref_roles) == 2 and len(user_roles) == 2:
            mapping = {ref_roles[r]: user_roles[r] for r in ("prediction", "target")}
    required = [a for a in ref.args if a.name in mapping or a.name in (ref.swappable or ()) or a.name in (ref.pair or ())]
    if not mapping and sig is not None:
        if len(user) > len(ref.args):
            raise UsageError(f"{_name(fn)} takes {len(user)} required arguments "
                             f"({', '.join(p.name for p in user)}); {ref.id} provides {len(ref.args)} "
                             f"({', '.join(ref_names)}): pass inputs= to bind them")
        positional = ref.args[:max(len(user), 1)]
        extra = [a for a in ref.args[len(positional):] if a.name in optional]
        return tuple(positional) + tuple(extra), {a.name: a.name for a in extra}
    if not mapping:
        return tuple(ref.args), {}
    kept = tuple(a for a in ref.args if a.name in mapping or (a.name in optional))
    return kept or tuple(required), {a.name: mapping.get(a.name, a.name) for a in kept}


def _name(fn) -> str:
    fn = getattr(fn, "func", fn)
    return getattr(fn, "__qualname__", None) or type(fn).__name__


@dataclass(frozen=True)
class CheckedAgainst:
    """What a user's loss is checked against: the reference's spec and the parameters pinned (the
    ``checked_against`` attribute of a :func:`spec_for` spec's ``call``, whose id is the user's name)."""
    reference: LossSpec
    params: Mapping[str, Any]


def checked_against(spec: LossSpec) -> CheckedAgainst | None:
    """The reference of a user's loss spec (:func:`spec_for`); None for a catalog spec."""
    return getattr(spec.call, "checked_against", None)


def _input_wrap(ref: LossSpec, runtime: str):
    """The reference's own input adaptation (torch's class-index targets cast to int64), applied to
    a user's loss run on the reference's runtime; None where there is none."""
    wrap = getattr(ref.call, "wrap", None)
    return wrap if wrap is not None and runtime == ref.runtimes[0] else None


def spec_for(fn: Callable, reference: str | LossSpec, *, name: str | None = None, framework: str | None = None,
             params: Mapping[str, Any] | None = None, inputs: Mapping[str, str] | None = None,
             context: Mapping[str, str] | None = None, factory_kwargs: Mapping[str, Any] | None = None,
             ranks: Mapping[str, int] | None = None, where: Callable[[dict], bool] | None = None) -> LossSpec:
    """A LossSpec that checks ``fn`` against ``reference``'s oracle with pinned hyper-parameters.

    ``context`` ({constructor argument: reference parameter}) makes ``fn`` a class (or factory) that
    takes context tensors (a mask, per-sample weights, an adjacency matrix): each evaluation builds
    ``fn(**{arg: tensor of that parameter}, **factory_kwargs)`` from the drawn case and calls it.
    ``ranks`` ({argument, the user's name or the reference's: number of dimensions}) keeps only the
    reference's draws of those ranks: a loss written for (N, C) logits is not fed torch's unbatched
    (C,) or (N, C, d1) forms of ``CrossEntropyLoss``. ``where(inputs)`` ({reference argument: NumPy
    array} -> bool) keeps only the draws it accepts (``lambda x: (x["target"] != -100).all()``)."""
    ref = reference if isinstance(reference, LossSpec) else reference_spec(reference)
    reference = ref.id if isinstance(reference, LossSpec) else reference  # a derived spec (an averaged oracle)
    framework = framework or detect_framework(fn) or ref.framework
    runtime = runtime_for(framework)
    args, keywords = _bind(call_target(fn) if context is not None else fn, ref, inputs)
    space = getattr(ref.draw, "space", None)
    if space is None:
        raise UsageError(f"{reference} draws its inputs in a way that cannot pin parameters")
    from .catalog import custom

    defaults = {} if custom.is_custom(reference) else documented_defaults(reference)
    pinned = {k: defaults[k] for k in space if k in defaults}
    unknown = set(params or {}) - set(space) - set(ref.draw.fixed)
    if unknown:
        raise UsageError(f"{reference} has no parameter {sorted(unknown)[0]!r}; its parameters: "
                         f"{', '.join(space) or 'none'}")
    pinned.update(params or {})
    from .catalog.build import drawer

    base_draw = drawer({k: v for k, v in space.items() if k not in pinned}, ref.draw.inputs,
                       fixed={**ref.draw.fixed, **pinned})
    taken = {a.name for a in args}

    want = _wanted_ranks(ranks, ref, reference, args, keywords, base_draw)
    if where is not None and not any(where(dict(c.inputs)) and all(np.ndim(c.inputs[a]) == r for a, r in want.items()
                                                                   if a in c.inputs) for c in _sampled(base_draw)):
        raise UsageError(f"where= accepts none of {reference}'s first 40 draws" + (f" of ranks {ranks}" if want else "")
                         + "; it receives {argument: NumPy array} with the reference's argument names "
                         f"({', '.join(a.name for a in ref.args)})")

    def draw(data) -> Case:
        case = base_draw(data)
        if (want and any(np.ndim(case.inputs[a]) != r for a, r in want.items() if a in case.inputs)) or (
                where is not None and not where(dict(case.inputs))):
            from hypothesis import reject

            reject()
        # parameters the reference's inputs draw (class weights, pos_weight) are the user loss's
        # documented defaults too, unless given: nn.BCELoss() has no weight
        drawn = {k: defaults[k] for k in case.params if k in defaults and k not in space}
        return replace(case, inputs={k: v for k, v in case.inputs.items() if k in taken},
                       params={**case.params, **drawn, **pinned})

    def call(ns, _params):
        loss = fn
        if context is not None:
            missing = set(context.values()) - set(_params)
            if missing:
                raise UsageError(f"{reference} draws no parameter {sorted(missing)[0]!r} to build the context from")
            loss = fn(**{arg: _params[p] for arg, p in context.items()}, **(factory_kwargs or {}))
        if not keywords:
            return loss
        return lambda *xs, **kw: loss(**{keywords.get(a.name, a.name): x for a, x in zip(args, xs)},
                                      **{keywords.get(k, k): v for k, v in kw.items()})

    wrap = _input_wrap(ref, runtime)
    if wrap is not None:
        call = wrap(call)
    call.checked_against = CheckedAgainst(ref, dict(pinned))  # the compat property reads the reference's pairing
    return replace(ref, id=name or _name(fn), framework=framework, args=args, draw=draw, call=call,
                   runtimes=(runtime,), expected=(), precision=_keras_precision(fn, runtime),
                   swappable=ref.swappable if ref.swappable and set(ref.swappable) <= taken else None,
                   pair=ref.pair if ref.pair and set(ref.pair) <= taken else None,
                   params_doc=", ".join(f"{k}={v!r}" for k, v in pinned.items()),
                   notes=f"user loss checked against {reference}")


def _keras_precision(fn, runtime: str) -> tuple:
    """A Keras loss object (instance or class) reduces in ``Loss.__call__``, which on the jax and torch
    backends computes float64 losses in float32 whatever the object's dtype: Keras' own behaviour
    (the catalog's KERAS_FLOAT64_IN_FLOAT32), a deviation of the user's loss as of the reference's."""
    from .catalog.build import KERAS_FLOAT64_IN_FLOAT32 as p

    cls = fn if inspect.isclass(fn) else type(fn)
    keras_loss = any(c.__module__.startswith("keras") and c.__name__ == "Loss" for c in cls.__mro__)
    return (p,) if keras_loss and runtime in p.runtimes else ()


def _wanted_ranks(ranks, ref: LossSpec, reference: str, args, keywords: Mapping[str, str], draw) -> dict[str, int]:
    """``ranks`` as {reference argument: rank}, checked against what the reference draws."""
    if not ranks:
        return {}
    by_user = {keywords.get(a.name, a.name): a.name for a in args}
    out = {}
    for name, rank in ranks.items():
        arg = by_user.get(name, name if name in {a.name for a in args} else None)
        if arg is None:
            raise UsageError(f"ranks= names {name!r}, not an argument of the loss as bound to {reference} "
                             f"({', '.join(by_user)})")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise UsageError(f"ranks={{{name!r}: {rank!r}}}: a rank is a number of dimensions (0, 1, 2, ...)")
        out[arg] = rank
    drawn = drawn_ranks(draw)
    for arg, rank in out.items():
        if rank not in drawn.get(arg, ()):
            shown = ", ".join(map(str, sorted(drawn.get(arg, ())))) or "none"
            raise UsageError(f"{reference} draws {arg} of rank {shown}; ranks= asks for {rank}")
    return out


def _sampled(draw, examples: int = 40) -> list[Case]:
    from .strategies import sample

    return sample(draw, examples)


def drawn_ranks(draw, examples: int = 40) -> dict[str, Counter]:
    """{argument: how often each rank comes up} over ``examples`` derandomised cases of a draw."""
    out: dict[str, Counter] = {}
    for case in _sampled(draw, examples):
        for k, v in case.inputs.items():
            out.setdefault(k, Counter())[int(np.ndim(v))] += 1
    return out


def rank_hint(row: dict, fn: Callable, fn_name: str, reference: str, inputs: Mapping[str, str] | None = None,
              retry: Callable[[dict], list[str]] | None = None, given: Mapping[str, int] | None = None) -> str:
    """For a user loss that raised (X001) on inputs of ranks the reference draws beside others: the
    ``ranks=`` to pass (``given``, the ranks already passed, kept); "" when there is none.

    The candidates are the rank combinations the reference draws, nearest first. ``retry(ranks)``
    gives the X001 messages of a short check with those ranks: a suggestion after which the loss raises
    the same error is not made (a module holding a (3,) weight raises on every width but 3, whatever
    the rank)."""
    if row.get("code") != "X001" or not isinstance(row.get("input"), dict):
        return ""
    ref = reference_spec(reference)
    keywords = _bind(fn, ref, inputs)[1]
    by_user = {keywords.get(a, a): a for a in row["input"]}
    pinned = {by_user.get(k, k): r for k, r in (given or {}).items()}
    failing = {a: int(np.ndim(v)) for a, v in row["input"].items()}
    combos = Counter(tuple((a, int(np.ndim(c.inputs[a]))) for a in failing if a in c.inputs)
                     for c in _sampled(ref.draw))
    varying = sorted({a for combo in combos for a, r in combo if a not in pinned and r != failing[a]})
    tried = 0
    # nearest to the failing ranks first (an unbatched (C,) input's fix is (N, C), not (N, C, d1, d2))
    order = sorted(combos, key=lambda c: (sum(abs(r - failing[a]) for a, r in c), [r for _, r in c]))
    for combo in order:
        ranks = dict(combo)
        if any(ranks.get(a, r) != r for a, r in pinned.items()) or all(ranks[a] == failing[a] for a in varying):
            continue
        suggestion = {keywords.get(a, a): ranks[a] for a in sorted(set(varying) | set(pinned)) if a in ranks}
        tried += 1
        if retry is not None and _same_error(row["message"], retry(suggestion)):
            if tried >= 3:
                return ""
            continue
        drawn = "; ".join(f"{keywords.get(a, a)} with {_listed(sorted({r for c in combos for b, r in c if b == a}))}"
                          for a in varying)
        this = ", ".join(f"{keywords.get(a, a)} {failing[a]}" for a in varying)
        return (f"{reference} draws {drawn} dimensions; this input has {this}. If {fn_name} takes only some of "
                f"them, pass ranks={suggestion!r}")
    return ""


def _listed(values: list[int]) -> str:
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}" if len(values) > 1 else str(values[0])


def _same_error(message: str, others: list[str]) -> bool:
    """Whether one of ``others`` is ``message``'s error, numbers aside (sizes differ between draws)."""
    def key(m):
        return re.sub(r"\d+", "#", m.split(" (")[0])
    return any(key(m) == key(message) for m in others)


def mean_spec(spec):
    """``spec`` with its oracle averaged over its output (what ``jnp.mean(optax_loss(...))`` computes):
    the reference of a user's loss that averages an unreduced framework loss."""
    from .reference._core import Result

    def oracle(case):
        r = spec.oracle(case)
        shape, n = np.shape(r.value), max(int(np.size(r.value)), 1)

        def spread(g):
            return np.broadcast_to(np.asarray(g, np.float64) / n, shape)

        return Result(np.mean(r.value), np.mean(r.scale), lambda g: r.vjp(spread(g)), r.kink_gap,
                      None if r.grad_scale is None else (lambda g: r.grad_scale(spread(g))))

    return replace(spec, oracle=oracle, exact=None, batch_axes={}, pair=None, notes=f"mean of {spec.id}")


def check_callable(fn: Callable, reference: str | LossSpec, *, properties: Iterable[str] = ("value", "gradient"),
                   dtypes: Iterable[str] = ("float64", "float32"), examples: int = 50, seed: int = 0,
                   device: str = "cpu", name: str | None = None, framework: str | None = None,
                   params: Mapping[str, Any] | None = None, inputs: Mapping[str, str] | None = None,
                   context: Mapping[str, str] | None = None,
                   factory_kwargs: Mapping[str, Any] | None = None, ranks: Mapping[str, int] | None = None,
                   where: Callable[[dict], bool] | None = None) -> list[dict]:
    """Run ``properties`` x ``dtypes`` on ``fn`` in this process; one result row per check."""
    from .properties import NAMES
    from .runner import Task, run_check

    spec = spec_for(fn, reference, name=name, framework=framework, params=params, inputs=inputs,
                    context=context, factory_kwargs=factory_kwargs, ranks=ranks, where=where)
    bad = [p for p in properties if p not in NAMES]
    if bad:
        raise UsageError(f"unknown property {bad[0]!r}; expected one of {', '.join(NAMES)}")
    from .properties import compiled

    rows, dtypes = [], list(dtypes)
    for prop in properties:
        n = min(examples, compiled.EXAMPLES) if prop == compiled.NAME else examples
        # the compat analysis is deterministic and computed in float64: one row, as nightly runs it
        for dtype in dtypes if prop != "compat" else (["float64"] if "float64" in dtypes else dtypes[:1]):
            rows.append(run_check(spec, Task(spec.id, spec.runtimes[0], prop, dtype, device), examples=n, seed=seed))
    return rows


# ---- what the check hands the loss (the plugin's reproducer snippet) -------------------------------

class _Received(Exception):
    def __init__(self, tensors):
        super().__init__("received")
        self.tensors = tensors


def received_inputs(fn: Callable, reference: str | LossSpec, inputs: Mapping[str, Any], dtype: str, *,
                    want_grad: bool, device: str = "cpu", framework: str | None = None,
                    params: Mapping[str, Any] | None = None,
                    bind: Mapping[str, str] | None = None) -> dict[str, tuple[str, bool]]:
    """{reference argument: (dtype name, requires grad)} of the tensors a check hands ``fn`` when it
    evaluates ``inputs`` (a result row's ``input``) in ``dtype``: the arguments' kinds converted by
    the runtime's engine, then the reference's own input adaptation (torch's class-index targets
    arrive as int64). Found by evaluating a stand-in for ``fn`` that records its arguments."""
    import numpy as np

    from .frameworks import get_runtime

    spec = spec_for(fn, reference, framework=framework, params=params, inputs=bind)
    ref = checked_against(spec).reference
    names = [a.name for a in spec.args]

    def record(*xs, **kw):
        raise _Received({**dict(zip(names, xs)), **kw})

    def build(ns, _params):
        return record

    wrap = _input_wrap(ref, spec.runtimes[0])
    case = Case({k: np.asarray(v) for k, v in inputs.items() if k in names}, {}, dtype=dtype,
                runtime=spec.runtimes[0])
    try:
        get_runtime(spec.runtimes[0], device).evaluate(wrap(build) if wrap else build, spec.args, case, dtype,
                                                       want_grad=want_grad)
    except _Received as got:
        return {k: (_dtype_name(x), bool(getattr(x, "requires_grad", False))) for k, x in got.tensors.items()}
    return {}


def _dtype_name(x) -> str:
    d = x.dtype
    return getattr(d, "name", None) or str(d).rpartition(".")[2]   # torch.int64 has no name


# ---- the compat property of a user's loss --------------------------------------------------------

#: score scales of the compat comparison: confidently right (+) and wrong (-) scores of these sizes
COMPAT_SCALES = (1.0, 3.0, 10.0, 30.0)


def check_compat(spec: LossSpec, runtime, variants) -> dict:
    """The activation/loss compatibility of a user's loss (a :func:`spec_for` spec) fed the input
    form its reference documents: does it train as the reference does? Its values at ordinary,
    confidently right and confidently wrong scores are compared with the reference's fed each common
    activation of those scores: a softmax inside the user's loss before a logits loss behaves as the
    reference fed softmax(scores), and gets that pairing's verdict (A002: a floor under the loss).
    Returns the row fields."""
    import numpy as np

    from .compat import ACTIVATIONS, FLOOR_TOL, Pairing, analyse, effect_code
    from .frameworks import get_runtime

    against = checked_against(spec)
    ref, pinned = against.reference, against.params
    # the documented setting the user's loss implements (from_logits, log_target...: its pinned parameters)
    shown, pairing = max(variants, key=lambda v: sum(pinned.get(k, x) == x for k, x in v[0].items()))
    if pairing.pred not in {a.name for a in spec.args}:
        return {"status": "skip", "reason": f"the loss does not take {ref.id}'s argument {pairing.pred!r}"}
    pairing = Pairing(pairing.pred, pairing.expects, pairing.targets, {**shown, **pairing.params, **pinned},
                      pairing.binary)
    ref_runtime = runtime if runtime.name in ref.runtimes else get_runtime(ref.runtimes[0], "cpu")
    points = _compat_points(pairing)
    mine = _compat_values(spec, runtime, pairing, points, pairing.expects)
    form = {"none": "raw scores (logits)", "sigmoid": "sigmoid probabilities", "softmax": "softmax probabilities",
            "log_softmax": "log-probabilities"}.get(pairing.expects, pairing.expects)
    setting = f" ({', '.join(f'{k}={v!r}' for k, v in shown.items())})" if len(variants) > 1 and shown else ""
    head = f"{spec.id} fed {form}, as {ref.id}{setting} documents,"
    matches = []
    for act in (pairing.expects, *(a for a in ACTIVATIONS if a != pairing.expects)):
        if np.allclose(mine, _compat_values(ref, ref_runtime, pairing, points, act), rtol=1e-6, atol=1e-9,
                       equal_nan=True):
            matches.append(act)
            break
    if matches == [pairing.expects]:
        return {"status": "pass", "code": "", "message": f"{head} behaves as {ref.id} does"}
    effects = {e.activation: e for e in analyse(ref, ref_runtime, pairing)}
    if matches:
        effect = effects[matches[0]]
        return {"status": {"ok": "pass", "warn": "warn", "wrong": "fail"}[effect.verdict], "code": effect_code(effect),
                "message": f"{head} behaves as {ref.id} fed {matches[0]}(scores): {effect.describe()}"}
    # no common activation explains it: what training needs, a defined loss, the right minimiser, the floor
    keys = list(points)
    right = mine[[k.startswith("right") for k in keys]]
    wrong = mine[[k.startswith("wrong") for k in keys]]
    if not np.all(np.isfinite(mine)) or not np.all(right < wrong):
        return {"status": "fail", "code": "A001", "message": f"{head} is undefined or prefers confidently wrong scores"}
    floor, correct = float(right.min()), effects[pairing.expects].floor
    if abs(floor - correct) > FLOOR_TOL:
        return {"status": "warn", "code": "A002",
                "message": f"{head} stays above {floor:.3g} where {ref.id} reaches {correct:.3g}"}
    return {"status": "pass", "code": "", "message": f"{head} reaches {ref.id}'s floor and prefers the right scores "
                                                     "(how else it differs: the value and gradient checks)"}


def _compat_values(spec, runtime, pairing, points, activation):
    """The loss's mean value (NaN where it raises) at each of ``points``, fed ``activation(scores)``."""
    import numpy as np

    from .compat import activate
    from .properties.common import Finding, evaluate

    out = []
    for z, labels in points.values():
        inputs = {pairing.pred: activate(activation, z),
                  **{k: f(labels, z.shape[-1]) for k, f in pairing.targets.items()}}
        case = Case(inputs, dict(pairing.params), dtype="float64", runtime=runtime.name)
        try:
            out.append(float(np.mean(evaluate(spec, runtime, case, "float64", want_grad=False).value)))
        except Finding:
            out.append(np.nan)
    return np.array(out)


def _compat_points(pairing, *, classes: int = 4, samples: int = 8, seed: int = 0) -> dict[str, tuple]:
    """Scores (and their class labels) as the compat analysis draws them: ordinary scores, and
    confidently right and wrong ones at each of :data:`COMPAT_SCALES`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if pairing.binary:
        labels = (rng.random((samples, classes)) < 0.5).astype(np.float64)
        labels[:, 0], labels[:, 1] = 1.0, 0.0
        signs = 2 * labels - 1
    else:
        labels = rng.integers(0, classes, size=samples)
        signs = np.eye(classes)[labels]
    points = {"ordinary": (rng.normal(size=(samples, classes)), labels)}
    for scale in COMPAT_SCALES:
        points[f"right {scale}"] = (scale * signs, labels)
        points[f"wrong {scale}"] = (-scale * signs, labels)
    return points
