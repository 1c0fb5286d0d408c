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
from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping

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


def spec_for(fn: Callable, reference: str | LossSpec, *, name: str | None = None, framework: str | None = None,
             params: Mapping[str, Any] | None = None, inputs: Mapping[str, str] | None = None,
             context: Mapping[str, str] | None = None, factory_kwargs: Mapping[str, Any] | None = None) -> LossSpec:
    """A LossSpec that checks ``fn`` against ``reference``'s oracle with pinned hyper-parameters.

    ``context`` ({constructor argument: reference parameter}) makes ``fn`` a class (or factory) that
    takes context tensors (a mask, per-sample weights, an adjacency matrix): each evaluation builds
    ``fn(**{arg: tensor of that parameter}, **factory_kwargs)`` from the drawn case and calls it."""
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

    def draw(data) -> Case:
        case = base_draw(data)
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

    wrap = getattr(ref.call, "wrap", None)  # the reference's own input adaptation (torch index targets)
    if wrap is not None and runtime == ref.runtimes[0]:
        call = wrap(call)
    return replace(ref, id=name or _name(fn), framework=framework, args=args, draw=draw, call=call,
                   runtimes=(runtime,), expected=(), precision=(),
                   swappable=ref.swappable if ref.swappable and set(ref.swappable) <= taken else None,
                   pair=ref.pair if ref.pair and set(ref.pair) <= taken else None,
                   params_doc=", ".join(f"{k}={v!r}" for k, v in pinned.items()),
                   notes=f"user loss checked against {reference}")


def check_callable(fn: Callable, reference: str | LossSpec, *, properties: Iterable[str] = ("value", "gradient"),
                   dtypes: Iterable[str] = ("float64", "float32"), examples: int = 50, seed: int = 0,
                   device: str = "cpu", name: str | None = None, framework: str | None = None,
                   params: Mapping[str, Any] | None = None, inputs: Mapping[str, str] | None = None,
                   context: Mapping[str, str] | None = None,
                   factory_kwargs: Mapping[str, Any] | None = None) -> list[dict]:
    """Run ``properties`` x ``dtypes`` on ``fn`` in this process; one result row per check."""
    from .properties import NAMES
    from .runner import Task, run_check

    spec = spec_for(fn, reference, name=name, framework=framework, params=params, inputs=inputs,
                    context=context, factory_kwargs=factory_kwargs)
    bad = [p for p in properties if p not in NAMES]
    if bad:
        raise UsageError(f"unknown property {bad[0]!r}; expected one of {', '.join(NAMES)}")
    from .properties import compiled

    rows = []
    for prop in properties:
        n = min(examples, compiled.EXAMPLES) if prop == compiled.NAME else examples
        for dtype in dtypes:
            rows.append(run_check(spec, Task(spec.id, spec.runtimes[0], prop, dtype, device), examples=n, seed=seed))
    return rows
