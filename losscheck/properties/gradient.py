"""Gradient agreement: the framework's autodiff gradient equals the oracle's analytic gradient,
for every differentiable input, away from the oracle's non-differentiable points."""
from __future__ import annotations

import numpy as np

from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, kink_rtol, kinks_where_finite, value_error
from .common import (Finding, Measurement, cotangent_for, evaluate, grad_shapes, n_terms, overflows, rounded,
                     within_declared_precision)
from .explain import explain_gradient

NAME = "gradient"


def check(spec, case, dtype, runtime) -> Measurement:
    case = rounded(case, dtype, runtime.name)
    ref = spec.oracle(case)
    cot = cotangent_for(np.shape(ref.value))
    ev = evaluate(spec, runtime, case, dtype, cotangent=cot, want_grad=True)
    g_ref, mags = ref.grad(cot), ref.grad_magnitude(cot)
    shapes = grad_shapes(spec, case)
    kinks = ref.kinks(kink_rtol(dtype), shapes)
    bound = GRAD_BOUND[dtype](n_terms(case))
    # Where the exact loss is undefined (NaN) so is its gradient: a framework's NaN there is no finding.
    undefined = bool(np.any(np.isnan(np.asarray(ref.value))))
    worst, precision = 0.0, None
    for arg in spec.grad_args:
        if arg.name not in case.inputs or arg.oracle_name not in g_ref:
            continue
        r, m = g_ref[arg.oracle_name], mags[arg.oracle_name]
        skip = kinks.get(arg.oracle_name)
        g = ev.grads.get(arg.name)
        if g is None or not ev.is_tensor:
            live = np.abs(r) > 0 if skip is None else (np.abs(r) > 0) & ~skip
            if np.any(live):
                how = (f"the loss returned {ev.output_type}, not a tensor" if not ev.is_tensor
                       else "autodiff found no path from the loss to it")
                raise Finding("G002", f"no gradient reaches {arg.name!r}: {how}", case=case,
                              details={"input": arg.name})
            continue
        if g.shape != np.shape(r):
            raise Finding("X002", f"gradient of {arg.name!r} has shape {g.shape}, input has {np.shape(r)}", case=case)
        skip = kinks_where_finite(skip, g)
        if undefined:
            skip = ~np.isfinite(g) if skip is None else (skip | ~np.isfinite(g))
        overflow = overflows(r, dtype)   # the dtype's infinity is the correctly rounded answer there
        if overflow is not None:
            skip = overflow if skip is None else (skip | overflow)
        err = grad_error(g, r, m, dtype, skip)
        if err > bound:
            def measure(c, d, arg=arg, g=g, skip=skip):
                low = spec.oracle(c)
                gl, ml = low.grad(cot)[arg.oracle_name], low.grad_magnitude(cot)[arg.oracle_name]
                # a kink within the lower dtype's rounding is one the lower-precision computation may cross
                near = kinks_where_finite(low.kinks(kink_rtol(d), shapes).get(arg.oracle_name), g)
                both = skip if near is None else (near if skip is None else skip | near)
                return grad_error(g, gl, ml, d, both)

            excused = within_declared_precision(spec, runtime, dtype, case, measure,
                                                lambda d: GRAD_BOUND[d](n_terms(case)))
            if excused is None:
                raise explain_gradient(spec, case, arg, g, r, m, skip, dtype, err, bound,
                                       _value_ok(ev, ref, case, dtype))
            precision = excused
        worst = max(worst, err)
    return Measurement(worst, bound, precision=precision)


def _value_ok(ev, ref, case, dtype) -> bool:
    """Whether the value agrees (a failing gradient of a right value is a broken backward, G006)."""
    return ev.value.shape == np.shape(ref.value) and bool(
        np.all(~(value_error(ev.value, ref.value, ref.scale, dtype) > VALUE_BOUND[dtype](n_terms(case)))))
