"""Which public losses the installed frameworks export, and which of them the catalog covers.

Enumeration is by introspection, so a framework upgrade that adds a loss shows up as uncovered:
* torch: every ``torch.nn`` class whose name ends in ``Loss`` (and ``AdaptiveLogSoftmaxWithLoss``), and
  every ``torch.nn.functional`` function that is one of their functional twins;
* keras: every public ``keras.losses.Loss`` subclass and every public loss function in ``keras.losses``;
* optax: every public callable in ``optax.losses``.

Each framework is enumerated in a subprocess (Keras with the jax backend, which imports fastest), so
calling this never loads a framework into the caller.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

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
print(json.dumps(sorted(out)))
'''

FRAMEWORKS = ("torch", "keras", "optax")


@dataclass(frozen=True)
class Coverage:
    framework: str
    exported: tuple[str, ...]
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    error: str = ""


def exported(framework: str) -> list[str]:
    env = {"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    import os

    out = subprocess.run([sys.executable, "-c", _ENUMERATE, framework], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "enumeration failed")
    return json.loads(out.stdout)


def coverage(frameworks=FRAMEWORKS) -> list[Coverage]:
    from . import catalog

    ids = {s.id for s in catalog.all_specs()}
    rows = []
    for fw in frameworks:
        try:
            names = exported(fw)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            rows.append(Coverage(fw, (), (), (), error=str(exc)))
            continue
        rows.append(Coverage(fw, tuple(names), tuple(n for n in names if n in ids),
                             tuple(n for n in names if n not in ids)))
    return rows
