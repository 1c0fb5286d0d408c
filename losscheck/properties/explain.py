"""Turn a disagreement into a cause in plain words, with a stable diagnosis code.

Each explanation is tested against the measured numbers, never guessed: "reduction is sum, not
mean" is reported only when the framework's value equals the oracle's times the number of averaged
terms, within the same tolerance as a pass.
"""
from __future__ import annotations

import numpy as np

from ..tolerance import EPS, GRAD_BOUND, VALUE_BOUND, grad_error, value_error
from .common import HALF, Finding, n_terms, rounded


#: the finite range of the half-precision dtypes, as a cause names it
_RANGE = {"float16": "float16 spans 6e-8 (subnormal) to 65504", "bfloat16": "bfloat16 spans 9e-41 to 3.4e38 "
          "with 8 significant bits"}


def _fmt(x) -> str:
    x = np.asarray(x)
    if x.size == 1:
        return f"{x.reshape(()).item():.9g}"
    return np.array2string(x, precision=6, threshold=8)


def _fmt_pair(actual, expected) -> tuple[str, str]:
    """Both values with enough digits to tell them apart (up to 17): "8.00033541" twice reads as a
    false alarm when they differ in the 13th digit."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.size != 1 or e.size != 1:
        return _fmt(a), _fmt(e)
    a, e = a.reshape(()).item(), e.reshape(()).item()
    for digits in (9, 12, 15, 17):
        sa, se = f"{a:.{digits}g}", f"{e:.{digits}g}"
        if sa != se:
            break
    return sa, se


def _close(actual, expected, scale, dtype, bound) -> bool:
    err = value_error(actual, expected, scale, dtype)
    return bool(np.all(~(err > bound)))


def _counts(case) -> list[int]:
    """Candidate sizes a wrong reduction would multiply or divide by."""
    out = set()
    for v in case.inputs.values():
        shp = np.shape(v)
        if shp:
            out.update({int(np.prod(shp)), int(shp[0]), int(shp[-1]), int(np.prod(shp[:-1]) or 1)})
    return sorted(k for k in out if k > 1)


def below_lower_bound(spec, case, actual, scale, slack_per_scale: float, expected=None) -> Finding | None:
    """N002 where the loss is below the spec's mathematical lower bound by more than
    ``slack_per_scale * max(scale, 1)`` (its rounding allowance), else None. Given the oracle's
    ``expected`` value, a loss that is minus the oracle's is named as such (a dropped sign)."""
    if spec.lower_bound is None:
        return None
    actual = np.asarray(actual, dtype=np.float64)
    lb = spec.lower_bound(case) if callable(spec.lower_bound) else spec.lower_bound
    slack = slack_per_scale * np.maximum(np.asarray(scale, dtype=np.float64), 1.0)
    with np.errstate(invalid="ignore"):
        below = np.isfinite(actual) & (actual < lb - slack)
    if not np.any(below):
        return None
    got = np.broadcast_to(actual, below.shape)[below]
    lb_at = float(np.broadcast_to(lb, below.shape)[below][np.argmin(got)])
    message = f"loss {float(np.min(got)):.9g} is below its lower bound {lb_at:.9g}"
    if expected is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            negated = bool(np.all(np.abs(actual + np.asarray(expected)) <= slack))
        if negated and np.any(np.asarray(expected) != 0):
            message += ": the value is minus the oracle's (a dropped sign, e.g. the log-likelihood returned as the loss)"
    return Finding("N002", message, case=case)


def explain_value(spec, case, actual, ref, dtype, error, bound) -> Finding:
    expected, scale = np.asarray(ref.value), np.asarray(ref.scale)
    actual = np.asarray(actual)
    shown, oracle = _fmt_pair(actual, expected)
    base = f"framework {shown}, oracle {oracle}; error {error:,.0f} eps, bound {bound:,.0f} eps"
    kw = dict(error=error, bound=bound, case=case)

    if np.any(np.isfinite(expected) & ~np.isfinite(actual)):
        if dtype in HALF:
            return Finding("D004", f"non-finite loss in {dtype} where the exact value is representable "
                           f"({_RANGE[dtype]}): a constant underflows or an intermediate overflows; {base}", **kw)
        return Finding("N001", f"non-finite loss where the exact loss is finite: {base}", **kw)
    # before the value-level causes: none of them makes a loss negative, a dropped sign does
    below = below_lower_bound(spec, case, actual, scale, bound * EPS[dtype], expected=expected)
    if below is not None:
        return Finding(below.code, f"{below.message}; {base}", **kw)

    finite = np.isfinite(expected) & np.isfinite(actual) & (np.abs(expected) > 0)
    if finite.any():
        ratio = actual[finite] / expected[finite]
        r = float(np.median(ratio))
        if np.allclose(ratio, r, rtol=1e3 * EPS[dtype], atol=0) and abs(r - 1) > 1e-6:
            for k in _counts(case):
                if _close(actual, expected * k, scale * k, dtype, bound):
                    return Finding("V002", f"reduction is sum, not mean: the value is {k} x the oracle "
                                   f"(the number of averaged terms), so the loss grows with the batch size; {base}",
                                   details={"factor": k}, **kw)
                if _close(actual, expected / k, scale / k, dtype, bound):
                    return Finding("V003", f"reduction is mean, not sum: the value is the oracle / {k}; {base}",
                                   details={"factor": 1.0 / k}, **kw)

    if spec.swappable:
        a, b = spec.swappable
        try:
            swapped = spec.oracle(case.with_inputs(**{a: case.inputs[b], b: case.inputs[a]}))
        except Exception:  # the swapped inputs may be outside the oracle's domain
            swapped = None
        if swapped is not None and np.shape(swapped.value) == actual.shape and _close(
                actual, swapped.value, np.maximum(swapped.scale, scale), dtype, bound):
            return Finding("V004", f"arguments swapped: the value equals the oracle with {a!r} and {b!r} "
                           f"exchanged; {base}", **kw)

    if spec.exact is not None:
        ex = spec.exact(case)
        # an exact loss undefined (NaN) where the framework's value is not matches nothing: torch
        # huber_loss's weighted mean (0 for all weights 0) against the weighted mean's 0/0
        undefined = bool(np.any(np.isnan(np.asarray(ex.value)) & ~np.isnan(actual)))
        if not undefined and _close(actual, ex.value, np.maximum(ex.scale, scale), dtype, bound):
            what = spec.deviation.summary if spec.deviation else "the documented clipping"
            return Finding("V005", f"matches the exact mathematics but not its documented semantics ({what}); "
                           f"{base}", **kw)
        # The documented semantics and the exact loss differ on this very case (the clipping acts
        # here) and the framework matches neither: it clips, but not as documented.
        clipping_acts = not _close(expected, ex.value, np.maximum(ex.scale, scale), dtype, bound)
        if clipping_acts:
            return Finding("V007", f"disagrees where the documented clipping acts ({'' if not spec.deviation else spec.deviation.summary + '; '}"
                           f"the value matches neither it nor the exact loss): a different epsilon or clamp; {base}",
                           **kw)

    # A constant factor is evidence only when at least two different outputs share it.
    if finite.sum() >= 2 and np.unique(expected[finite]).size >= 2:
        ratio = actual[finite] / expected[finite]
        r = float(np.median(ratio))
        if np.allclose(ratio, r, rtol=1e3 * EPS[dtype], atol=0) and abs(r - 1) > 1e-3:
            return Finding("V006", f"value is {r:.6g} x the oracle on every output; {base}",
                           details={"factor": r}, **kw)
    if dtype == "float64" and _float32_numbers(actual):
        low = _float32_value_error(spec, case, actual)
        if low is not None:
            return Finding("D001", f"float64 inputs computed in float32: the value is right to float32's precision "
                           f"({low}){_why_float32(case)}; {base}", **kw)
    return Finding("V001", f"value disagrees with the oracle: {base}", **kw)


def _float32_numbers(x) -> bool:
    """Every finite element of ``x`` is a float32 number: what a float64 result computed in float32
    and widened back is (a float64 computation lands there about once in 2^29)."""
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    return finite.size > 0 and bool(np.all(finite.astype(np.float32).astype(np.float64) == finite))


def _eps_text(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _float32_value_error(spec, case, actual) -> str | None:
    """"error E float32 eps, bound B" when ``actual`` is right for the loss computed in float32 (on
    the case rounded to float32, or on the case as given: a float32 computation with float64
    weights); None when it is not."""
    bound = VALUE_BOUND["float32"](n_terms(case))
    for c in (rounded(case, "float32", case.runtime), case):
        try:
            low = spec.oracle(c)
        except Exception:  # noqa: BLE001 - the rounded case may leave the oracle's domain
            continue
        if np.shape(low.value) != np.shape(actual):
            continue
        err = value_error(actual, low.value, low.scale, "float32")
        worst = float(np.max(err)) if np.size(err) else 0.0
        if worst <= bound:
            return f"error {_eps_text(worst)} float32 eps, bound {bound:,.0f}"
    return None


def _why_float32(case) -> str:
    runtime = str(case.runtime or "")
    if runtime == "keras-tensorflow":
        return ("; a Keras loss object computes in its own dtype, fixed when it is constructed (float32 unless "
                "floatx was float64 then): build it with dtype='float64' to check or train it in float64")
    if runtime.startswith("keras"):
        return ("; Keras on jax and torch promotes float64 with float32 to float32 (BIT64_TO_BIT32_DTYPE): a "
                "float32 constant or a Keras loss object's reduction brings the float64 inputs down")
    return "; a cast to float32 inside the loss (.float(), tf.cast, astype) or a float32 intermediate"


def explain_gradient(spec, case, arg, g, r, mags, skip, dtype, error, bound, value_ok) -> Finding:
    keep = np.ones(np.shape(r), bool) if skip is None else ~np.asarray(skip, bool)
    keep &= np.isfinite(r)
    name = arg.name
    base = f"error {error:,.0f} eps, bound {bound:,.0f} eps"
    kw = dict(error=error, bound=bound, case=case, details={"input": name})
    if np.any(keep & ~np.isfinite(g)):
        if dtype in HALF:
            return Finding("D004", f"non-finite gradient for {name!r} in {dtype} where the exact one is "
                           f"representable ({_RANGE[dtype]}): a constant underflows or an intermediate "
                           f"overflows; {base}", **kw)
        return Finding("N003", f"non-finite gradient for {name!r} where the oracle's is finite; {base}", **kw)
    live = keep & (np.abs(r) > 0)
    if live.any() and np.all(g[keep] == 0):
        return Finding("G003", f"gradient of {name!r} is exactly zero where the oracle's is not; {base}", **kw)
    tol = bound * EPS[dtype] * max(float(np.max(mags[keep])) if keep.any() else 0.0, 1e-300)
    agree = np.abs(g - r) <= tol
    flipped = np.abs(g + r) <= tol
    wrong = keep & ~agree
    if wrong.any() and np.all(flipped[wrong]):
        k = int(wrong.sum())
        idx = [tuple(int(i) for i in ix) for ix in np.argwhere(wrong)[:3]]
        return Finding("G004", f"gradient of {name!r} has the wrong sign in {k} of {int(keep.sum())} elements "
                       f"(first at {idx}); the rest agree; {base}", **kw)
    if live.any():  # shrunk examples are often a single live element: its ratio still says "scaled"
        ratio = g[live] / r[live]
        c = float(np.median(ratio))
        if abs(c - 1) > 1e-3 and np.allclose(g[keep], c * r[keep], rtol=0, atol=tol * max(1.0, abs(c))):
            return Finding("G005", f"gradient of {name!r} is {c:.6g} x the oracle's; {base}", **kw)
    if dtype == "float64" and case is not None and _float32_numbers(g[keep]):
        bound32 = GRAD_BOUND["float32"](n_terms(case))
        err32 = grad_error(g, r, mags, "float32", skip)
        if err32 <= bound32:
            return Finding("D001", f"float64 inputs computed in float32: the gradient of {name!r} is right to "
                           f"float32's precision (error {_eps_text(err32)} float32 eps, bound {bound32:,.0f})"
                           f"{_why_float32(case)}; {base}", **kw)
    if value_ok:
        return Finding("G006", f"the value agrees but the gradient of {name!r} does not: the backward is not the "
                       f"derivative of the forward; {base}", **kw)
    return Finding("G001", f"gradient of {name!r} disagrees with the oracle; {base}", **kw)

