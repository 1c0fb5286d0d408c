"""The oracle: NumPy float64 references for documented losses (installed as ``losscheck.reference``).

One module per loss family; every function returns a :class:`~._core.Result` carrying the value,
its error scale, the analytic gradient (as a VJP) and the non-differentiable points. This package
imports nothing but NumPy and the standard library.
"""
from ._core import REDUCTIONS, Result, reduce

__all__ = ["REDUCTIONS", "Result", "reduce"]
