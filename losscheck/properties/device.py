"""Devices: two identical runs give identical results (determinism), and on a GPU the value and
gradient agree with the same loss on the CPU within the dtype's bound.

Findings: D005 two identical runs differ (a nondeterministic kernel: atomics in a reduction or a
scatter), D006 the GPU's result disagrees with the CPU's. On a CPU-only machine the determinism
half runs; the cross-device half needs ``device="cuda"``.
"""
from __future__ import annotations

import numpy as np

from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, kink_rtol, kinks_where_finite, value_error
from .common import Finding, Measurement, cotangent_for, evaluate, grad_shapes, n_terms, rounded

NAME = "device"


def _differs(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape != b.shape or not np.array_equal(a, b, equal_nan=True)


def check(spec, case, dtype, runtime) -> Measurement:
    case = rounded(case, dtype, runtime.name)
    ref = spec.oracle(case)
    cot = cotangent_for(np.shape(ref.value))
    first = evaluate(spec, runtime, case, dtype, cotangent=cot, want_grad=True)
    second = evaluate(spec, runtime, case, dtype, cotangent=cot, want_grad=True)
    where = f"on {runtime.name}/{runtime.device}"
    if _differs(first.value, second.value):
        raise Finding("D005", f"two identical runs {where} differ: value {first.value} then {second.value}",
                      case=case)
    for name, g in first.grads.items():
        if g is not None and _differs(g, second.grads.get(name)):
            raise Finding("D005", f"two identical runs {where} give different gradients of {name!r}", case=case,
                          details={"input": name})
    if runtime.device == "cpu":
        return Measurement(0.0, 0.0)

    from ..frameworks import get_runtime

    cpu = evaluate(spec, get_runtime(runtime.name, "cpu"), case, dtype, cotangent=cot, want_grad=True)
    # a framework that computes ``dtype`` inputs at a lower declared precision (Keras: float64 in
    # float32) does so on both devices: their results differ by that precision's rounding
    declared = spec.precision_for(dtype, runtime.name)
    judge = declared.effective if declared is not None else dtype
    terms = n_terms(case)
    bound = VALUE_BOUND[dtype](terms)
    err = float(np.nanmax(value_error(first.value, cpu.value, ref.scale, dtype), initial=0.0))
    judged = float(np.nanmax(value_error(first.value, cpu.value, ref.scale, judge), initial=0.0))
    if judged > VALUE_BOUND[judge](terms):
        raise Finding("D006", f"{runtime.device} and cpu disagree: value {first.value} vs {cpu.value}; "
                      f"{_error(judged, VALUE_BOUND[judge](terms), declared, dtype)}", error=err, bound=bound, case=case)
    mags = ref.grad_magnitude(cot)
    # at a kink every one-sided derivative is right, and devices may pick different ones
    shapes = grad_shapes(spec, case)
    kinks = ref.kinks(kink_rtol(judge), shapes)
    worst = err
    gbound = GRAD_BOUND[dtype](terms)
    for arg in spec.grad_args:
        g, c = first.grads.get(arg.name), cpu.grads.get(arg.name)
        if g is None or c is None or arg.oracle_name not in mags:
            continue
        skip = kinks_where_finite(kinks.get(arg.oracle_name), g, c)
        gerr = grad_error(g, c, mags[arg.oracle_name], dtype, skip)
        judged = grad_error(g, c, mags[arg.oracle_name], judge, skip)
        if judged > GRAD_BOUND[judge](terms):
            raise Finding("D006", f"{runtime.device} and cpu disagree on the gradient of {arg.name!r}; "
                          f"{_error(judged, GRAD_BOUND[judge](terms), declared, dtype)}", error=gerr, bound=gbound,
                          case=case, details={"input": arg.name})
        worst = max(worst, gerr)
    bound = max(bound, gbound)
    return Measurement(worst, bound, precision=declared if worst > bound else None)


def _error(err: float, bound: float, declared, dtype: str) -> str:
    if declared is None:
        return f"error {err:,.0f} eps, bound {bound:,.0f} eps"
    return (f"error {err:,.0f} {declared.effective} eps, bound {bound:,.0f} (judged at the declared "
            f"{declared.effective} precision of {dtype} inputs)")
