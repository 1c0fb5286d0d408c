"""Value agreement: the framework's loss equals the oracle's on the same (dtype-rounded) inputs."""
from __future__ import annotations

import numpy as np

from ..tolerance import VALUE_BOUND, value_error
from .common import Finding, Measurement, evaluate, n_terms, round_overflow, rounded, within_declared_precision
from .explain import explain_value

NAME = "value"


def check(spec, case, dtype, runtime) -> Measurement:
    case = rounded(case, dtype, runtime.name)
    ev = evaluate(spec, runtime, case, dtype)
    ref = spec.oracle(case)
    bound = VALUE_BOUND[dtype](n_terms(case))
    if ev.value.shape != np.shape(ref.value):
        raise Finding("X002", f"returned shape {ev.value.shape}, the documented result has shape "
                      f"{np.shape(ref.value)}", case=case)
    err = value_error(ev.value, round_overflow(ref.value, dtype, ev.value), ref.scale, dtype)
    worst = float(np.nanmax(err)) if np.any(~np.isnan(err)) else 0.0
    precision = None
    if worst > bound:
        def measure(c, d):
            r = spec.oracle(c)
            return float(np.nanmax(value_error(ev.value, r.value, r.scale, d)))

        precision = within_declared_precision(spec, runtime, dtype, case, measure,
                                              lambda d: VALUE_BOUND[d](n_terms(case)))
        if precision is None:
            raise explain_value(spec, case, ev.value, ref, dtype, worst, bound)
    m = Measurement(worst, bound, precision=precision)
    if spec.exact is not None:
        ex = spec.exact(case)
        dev = value_error(ref.value, ex.value, np.maximum(ref.scale, ex.scale), dtype)
        finite = np.isfinite(np.asarray(ex.value))
        if np.any(finite):
            m.deviation = float(np.nanmax(np.where(finite, dev, np.nan)))
            m.deviation_abs = float(np.nanmax(np.where(finite, np.abs(ref.value - ex.value), np.nan)))
    return m
