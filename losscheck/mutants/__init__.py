"""The planted-bug corpus of ``losscheck selftest``: buggy losses written the way people write
them, one module per framework (:mod:`.torch_mutants`, :mod:`.keras_mutants`, :mod:`.jax_mutants`),
each a list ``MUTANTS`` of :class:`~.record.Mutant` records with the code family the bug must
produce and a correct twin that must raise no alarm. ``tests/mutants`` re-exports this package.

Importing this package imports no framework; :func:`load` imports one corpus module (and its
framework).
"""
from __future__ import annotations

import importlib

from .record import CHECK_PROPERTIES, Mutant

FRAMEWORKS = ("torch", "keras", "jax")
_MODULES = {"torch": "torch_mutants", "keras": "keras_mutants", "jax": "jax_mutants"}


def load(framework: str) -> list[Mutant]:
    """The corpus of one framework (imports it; Keras on the TensorFlow backend unless
    ``KERAS_BACKEND`` says otherwise)."""
    if framework not in _MODULES:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    if framework == "keras":
        import os

        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    module = importlib.import_module(f"{__name__}.{_MODULES[framework]}")
    return list(module.MUTANTS)


__all__ = ["CHECK_PROPERTIES", "FRAMEWORKS", "Mutant", "load"]
