"""The planted-bug corpus lives in the package :mod:`losscheck.mutants` (so that ``losscheck selftest``
ships with it); this re-exports it under the tests/mutants/ name of the design's layout."""
from losscheck.mutants import CHECK_PROPERTIES, FRAMEWORKS, Mutant, load

__all__ = ["CHECK_PROPERTIES", "FRAMEWORKS", "Mutant", "load"]
