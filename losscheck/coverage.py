"""Which public losses the installed frameworks export, which of them the catalog covers, and which
of their parameters its specs never vary.

Enumeration is by introspection, so a framework upgrade that adds a loss shows up as uncovered:
* torch: every ``torch.nn`` class whose name ends in ``Loss`` (and ``AdaptiveLogSoftmaxWithLoss``), and
  every ``torch.nn.functional`` function that is one of their functional twins;
* keras: every public ``keras.losses.Loss`` subclass and every public loss function in ``keras.losses``;
* optax: every public callable in ``optax.losses``.

A spec covers a parameter of its loss (a constructor or function parameter, by name) when its draw
varies it, as an input or a parameter, over :data:`PARAMETER_EXAMPLES` examples (hypothesis
derandomised: the same examples every time): drawn as an input, given in some examples and left at
its default in others, or given two different values. A parameter drawn with one value only is not
covered (an ``axis`` always -1 checks one layout). It is also covered when the spec says in
``params_not_drawn`` how it is set instead; :data:`NOT_DRAWN` gives the reasons that hold for every
loss of a framework. A framework upgrade that adds a parameter (torch 2.13's ``weight`` of
``mse_loss``) shows up as not drawn.

Each framework is enumerated in a subprocess (Keras with the jax backend, which imports fastest), so
calling this never loads a framework into the caller.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

_ENUMERATE = r'''
import inspect, json, sys
which = sys.argv[1]
out = []
if which == "torch":
    import torch.nn as nn, torch.nn.functional as F
    classes = [n for n in dir(nn) if inspect.isclass(getattr(nn, n)) and (n.endswith("Loss") or n.endswith("WithLoss"))]
    out += [f"torch.nn.{n}" for n in classes]
    losses = [n for n in dir(F) if not n.startswith("_") and inspect.isfunction(getattr(F, n))
              and (n.endswith("_loss") or n in ("cross_entropy", "binary_cross_entropy",
                   "binary_cross_entropy_with_logits", "kl_div", "linear_cross_entropy"))]
    out += [f"torch.nn.functional.{n}" for n in losses]
elif which == "keras":
    import keras, keras.losses as L
    for n in dir(L):
        obj = getattr(L, n)
        if n.startswith("_") or n in ("Loss", "get", "serialize", "deserialize"):
            continue
        if inspect.isclass(obj) and issubclass(obj, L.Loss) or inspect.isfunction(obj):
            out.append(f"keras.losses.{n}")
elif which == "optax":
    import optax.losses as L
    out += [f"optax.losses.{n}" for n in dir(L) if not n.startswith("_") and callable(getattr(L, n))]

def params(name):
    module, _, attr = name.rpartition(".")
    obj = getattr(sys.modules[module], attr)
    try:
        sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values() if p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

print(json.dumps({n: params(n) for n in sorted(out)}))
'''

FRAMEWORKS = ("torch", "keras", "optax")
#: examples drawn per spec to see which parameters its draw names
PARAMETER_EXAMPLES = 30
#: parameters no spec of a framework draws, and why
NOT_DRAWN = {
    "torch": {"size_average": "deprecated alias of reduction (torch maps it onto reduction, with a warning)",
              "reduce": "deprecated alias of reduction (torch maps it onto reduction, with a warning)",
              "device": "factory argument: the loss's parameters are made on the checked device",
              "dtype": "factory argument: the loss's parameters are made in the checked dtype"},
    "keras": {"name": "the loss's name, a label",
              "dtype": "the loss computes in keras.config.floatx(), which each check sets to the checked "
                       "dtype: the same policy a dtype argument sets"},
}


@dataclass(frozen=True)
class Coverage:
    framework: str
    exported: tuple[str, ...]
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    error: str = ""
    #: (covered loss, its parameters that no draw names and nothing declares), where there are any
    undrawn: tuple[tuple[str, tuple[str, ...]], ...] = ()


def exported_parameters(framework: str) -> dict[str, list[str] | None]:
    """{public loss: its parameter names (None where it has no signature)}, in a subprocess."""
    env = {"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    import os

    out = subprocess.run([sys.executable, "-c", _ENUMERATE, framework], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "enumeration failed")
    return json.loads(out.stdout)


def exported(framework: str) -> list[str]:
    return sorted(exported_parameters(framework))


def varied_names(spec, examples: int = PARAMETER_EXAMPLES) -> set[str]:
    """The input and parameter names the spec's draw varies over ``examples`` derandomised examples:
    given in some and left out (at the default) in others, or given with two different values.
    Inputs count as varied whenever they are drawn (their values are hypothesis' arrays)."""
    from .strategies import sample

    cases = sample(spec.draw, examples)
    varied = {name for case in cases for name in case.inputs}
    values: dict[str, list] = {}
    for case in cases:
        for name, value in case.params.items():
            values.setdefault(name, []).append(value)
    for name, seen in values.items():
        first = seen[0]
        if len(seen) < len(cases) or any(not _same(first, v) for v in seen[1:]):
            varied.add(name)
    return varied


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b, equal_nan=True))
    return type(a) is type(b) and repr(a) == repr(b)


def undrawn(spec, parameters) -> tuple[str, ...]:
    """The parameters of ``spec``'s loss that its draw does not vary (never names, or always with one
    value) and nothing declares; a declaration naming a parameter the loss does not have raises (it
    went stale)."""
    declared = dict(spec.params_not_drawn)
    stale = sorted(set(declared) - set(parameters))
    if stale:
        raise ValueError(f"{spec.id}: params_not_drawn names {', '.join(stale)}, which the installed "
                         "framework's loss does not take")
    declared.update(NOT_DRAWN.get(spec.framework, {}))
    left = [p for p in parameters if p not in declared]
    if not left:
        return ()
    varied = varied_names(spec)
    return tuple(p for p in left if p not in varied)


def coverage(frameworks=FRAMEWORKS) -> list[Coverage]:
    """One row per framework, with the covered losses' undrawn parameters."""
    from . import catalog

    specs = {s.id: s for s in catalog.all_specs()}
    rows = []
    for fw in frameworks:
        try:
            found = exported_parameters(fw)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            rows.append(Coverage(fw, (), (), (), error=str(exc)))
            continue
        names = sorted(found)
        covered = tuple(n for n in names if n in specs)
        gaps = []
        for n in covered:
            left = undrawn(specs[n], found[n] or ())
            if left:
                gaps.append((n, left))
        rows.append(Coverage(fw, tuple(names), covered, tuple(n for n in names if n not in specs),
                             undrawn=tuple(gaps)))
    return rows
