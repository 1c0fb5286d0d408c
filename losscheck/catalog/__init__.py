"""The catalog: one :class:`~.spec.LossSpec` per documented framework loss.

Specs live in one module per framework namespace for the core families (torch_nn, keras_losses,
optax_losses) and one module per family across frameworks for the rest; ``LOSSCHECK_CATALOG`` adds importable modules
of one's own (each defining ``SPECS``). Loading the catalog imports NumPy, hypothesis and the
oracle, never a framework.
"""
from __future__ import annotations

import difflib
import importlib
import os
from functools import lru_cache

from .spec import Arg, Case, Deviation, Expected, LossSpec, Precision

MODULES = ("torch_nn", "keras_losses", "optax_losses", "structured", "embedding", "sequence", "segmentation")
#: Extra importable modules defining ``SPECS`` (comma-separated), e.g. a team's own losses.
EXTRA_ENV = "LOSSCHECK_CATALOG"


def module_names() -> list[str]:
    extra = [m.strip() for m in os.environ.get(EXTRA_ENV, "").split(",") if m.strip()]
    return [f"{__name__}.{m}" for m in MODULES] + extra


@lru_cache(maxsize=1)
def _registry() -> dict[str, LossSpec]:
    from .half import with_half_expectations   # imports the Keras module's constants: only with the specs

    out: dict[str, LossSpec] = {}
    for name in module_names():
        for spec in importlib.import_module(name).SPECS:
            if spec.id in out:
                raise ValueError(f"duplicate spec id {spec.id!r}")
            out[spec.id] = with_half_expectations(spec)
    return out


def all_specs() -> list[LossSpec]:
    return list(_registry().values())


def get(spec_id: str) -> LossSpec:
    try:
        return _registry()[spec_id]
    except KeyError:
        raise KeyError(unknown_id_message(spec_id)) from None


def unknown_id_message(spec_id: str) -> str:
    ids = list(_registry())
    close = difflib.get_close_matches(spec_id, ids, n=3, cutoff=0.5)
    if not close:
        tail = spec_id.rsplit(".", 1)[-1].lower()
        close = [i for i in ids if tail and tail in i.lower()][:3]
    hint = f"; closest: {', '.join(close)}" if close else ""
    return f"unknown loss id {spec_id!r}{hint}"


__all__ = ["Arg", "Case", "Deviation", "Expected", "LossSpec", "Precision", "all_specs", "get", "missing_api",
           "unknown_id_message"]


def missing_api(spec_id: str, namespace) -> str | None:
    """Why the installed framework cannot run the built-in spec ``spec_id`` (a release without that
    loss, e.g. ``torch.nn.LinearCrossEntropyLoss`` before torch 2.13), or None. Built-in ids are the
    losses' public dotted names; other specs (``LOSSCHECK_CATALOG``'s, planted ones) are not looked up."""
    root, *path = spec_id.split(".")
    if root not in ("torch", "keras", "optax") or spec_id not in _builtin_ids():
        return None
    module = obj = getattr(namespace, root)
    for part in path:
        if not hasattr(obj, part):
            return f"{root} {getattr(module, '__version__', '')} has no {spec_id}"
        obj = getattr(obj, part)
    return None


@lru_cache(maxsize=1)
def _builtin_ids() -> frozenset[str]:
    return frozenset(spec.id for m in MODULES for spec in importlib.import_module(f"{__name__}.{m}").SPECS)
