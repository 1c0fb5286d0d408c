"""Numerics at extreme inputs: the value and gradient checks, on cases drawn in the strategies'
extreme mode (the runner draws this property's cases there), plus the loss's lower bound.

Findings: N001 NaN/Inf value where the exact loss is finite, N002 a value below the loss's
mathematical lower bound, N003 NaN/Inf gradient where the oracle's is finite, G003 a gradient that
is exactly zero where the oracle's is not, and any value/gradient disagreement at these inputs.

At infinite inputs (-inf logits, +inf residuals) the oracle gives the loss's limit, which IEEE
arithmetic in a framework often cannot (0 * inf is NaN): a disagreement there is reported as a
warning with its code, measured but not failing; at finite extremes it fails.
"""
from __future__ import annotations

import numpy as np

from ..tolerance import EPS
from . import gradient, value
from .common import Finding, Measurement, evaluate, rounded
from .explain import below_lower_bound

NAME = "numerics"


def check(spec, case, dtype, runtime) -> Measurement:
    try:
        return _check(spec, case, dtype, runtime)
    except Finding as f:
        if not _has_non_finite(case) or f.details.get("warn"):
            raise
        raise Finding(f.code, f"at non-finite inputs (the oracle gives the limit): {f.message}", error=f.error,
                      bound=f.bound, case=f.case or case, details={**f.details, "warn": True}) from None


def _has_non_finite(case) -> bool:
    """Infinite inputs, or NaN ones that a spec's input construction made from them (normalising an
    infinite embedding)."""
    return any(np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()
               for v in case.inputs.values())


def _check(spec, case, dtype, runtime) -> Measurement:
    m = value.check(spec, case, dtype, runtime)
    if spec.lower_bound is not None:
        c = rounded(case, dtype, runtime.name)
        got = np.asarray(evaluate(spec, runtime, c, dtype).value)
        ref = spec.oracle(c)
        p = spec.precision_for(dtype, runtime.name)   # Keras' float64 reduced in float32: its rounding
        below = below_lower_bound(spec, c, got, ref.scale, m.bound * EPS[p.effective if p is not None else dtype])
        if below is not None:
            raise below
    g = gradient.check(spec, case, dtype, runtime)
    return Measurement(max(m.error, g.error), max(m.bound, g.bound), m.deviation, m.deviation_abs,
                       precision=m.precision or g.precision)
