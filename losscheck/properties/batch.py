"""Batch handling: how a loss treats the batch dimension.

For each drawn case (with the batch dimension of every argument at ``spec.batch_axis``):

* tiling the batch k times leaves a mean-reduced loss unchanged, multiplies a sum by k and tiles
  a per-sample output (which of the three applies is read off the oracle: the documented reduction);
* changing one sample's differentiable inputs leaves every other sample's gradient unchanged (unless
  the spec declares that the loss pools the batch by design);
* a batch of one agrees with the oracle, and so does an input without the batch dimension where the
  framework documents it.

``rank_mismatch`` (a property of its own) measures what a loss does with a (N, 1) prediction against
a (N,) target and the reverse: raise, align, or silently broadcast to (N, N).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..catalog.spec import Case
from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, kink_rtol, value_error
from .common import Finding, Measurement, cotangent_for, evaluate, grad_shapes, n_terms, rounded
from .explain import explain_value

NAME = "batch"
TILES = 2


def declares_layout(spec) -> bool:
    return spec.pair is not None or bool(spec.batch_axes) or spec.pools_batch or spec.batch_layout is not None


def batch_axes(spec, case):
    """{argument or array parameter: its batch axis} for this case; None where the case is drawn
    without a batch dimension; a string (why) where the spec cannot say where its batch is."""
    if spec.batch_layout is not None:
        return spec.batch_layout(case)
    out = {}
    for a in spec.args:
        x = case.inputs.get(a.name)
        ax = spec.batch_axis(a.name)
        if x is not None and np.ndim(x) > ax:
            out[a.name] = ax
    return out


def _arrays(case) -> dict:
    return {**{k: v for k, v in case.params.items() if isinstance(v, np.ndarray)}, **case.inputs}


def _with_arrays(case, arrays) -> Case:
    return replace(case, inputs={**case.inputs, **{k: v for k, v in arrays.items() if k in case.inputs}},
                   params={**case.params, **{k: v for k, v in arrays.items() if k not in case.inputs}})


def batch_sizes(spec, case) -> dict[str, int]:
    """{argument: size of its batch axis} for the inputs (and array parameters) that have one."""
    axes = batch_axes(spec, case)
    if not isinstance(axes, Mapping):
        return {}
    arrays = _arrays(case)
    return {n: np.shape(arrays[n])[ax] for n, ax in axes.items()}


def tile(spec, case, k: int) -> Case:
    """The case with every batched input repeated k times along its batch axis."""
    axes, arrays = batch_axes(spec, case), _arrays(case)
    return _with_arrays(case, {n: np.concatenate([arrays[n]] * k, axis=ax) for n, ax in axes.items()})


def take(spec, case, index) -> Case:
    """The case restricted to the samples ``index`` (a slice keeps the batch axis)."""
    axes, arrays = batch_axes(spec, case), _arrays(case)
    return _with_arrays(case, {n: np.take(arrays[n], np.arange(np.shape(arrays[n])[ax])[index], axis=ax)
                               for n, ax in axes.items()})


def unbatch(spec, case) -> Case:
    """A batch of one without its batch axis."""
    axes, arrays = batch_axes(spec, case), _arrays(case)
    return _with_arrays(case, {n: np.asarray(np.take(arrays[n], 0, axis=ax)) for n, ax in axes.items()})


def documented_kind(spec, case, tiled) -> str:
    """'none', 'mean', 'sum' or 'other', read off the oracle on the case and its tiling."""
    v1, v2 = np.asarray(spec.oracle(case).value), np.asarray(spec.oracle(tiled).value)
    if v2.shape != v1.shape:
        return "none"
    if v1.ndim:
        return "other"
    # relative only: a loss of 1e-304 (subnormal inputs) is no reason to call a sum a mean
    if np.allclose(v2, v1, rtol=1e-9, atol=0.0, equal_nan=True):
        return "mean"
    if np.allclose(v2, TILES * v1, rtol=1e-9, atol=0.0):
        return "sum"
    return "other"


def check(spec, case, dtype, runtime) -> Measurement:
    if not declares_layout(spec):
        # class axes, unbatched (C,) inputs and broadcast weights make the batch axis ambiguous: a spec
        # must say where its batch is before this property can judge it
        return Measurement(0.0, 0.0, extra={"skipped": "the spec does not declare its batch layout"})
    case = rounded(case, dtype, runtime.name)
    axes = batch_axes(spec, case)
    if axes is None:  # checked as the unbatched form of a batch of one (below)
        return Measurement(0.0, 0.0, extra={"skipped": "drawn without a batch dimension"})
    if isinstance(axes, str):
        return Measurement(0.0, 0.0, extra={"skipped": axes})
    sizes = batch_sizes(spec, case)
    if not sizes or len(set(sizes.values())) != 1:
        return Measurement(0.0, 0.0, extra={"skipped": "inputs do not share a batch dimension"})
    n = next(iter(sizes.values()))
    # a declared lower internal precision (Keras' float64 reduced in float32) is judged in its eps
    p = spec.precision_for(dtype, runtime.name)
    judged = p.effective if p is not None else dtype
    bound = VALUE_BOUND[judged](n_terms(case) * TILES)
    ref = spec.oracle(case)
    base = evaluate(spec, runtime, case, dtype)
    worst = 0.0

    tiled = tile(spec, case, TILES)
    # a loss that pools the batch (pairs, contrastive terms) changes when the batch repeats: by design
    kind = "other" if spec.pools_batch else documented_kind(spec, case, tiled)
    if kind != "other":
        got = evaluate(spec, runtime, tiled, dtype).value
        want = {"mean": base.value, "sum": TILES * base.value,
                "none": np.concatenate([base.value] * TILES, axis=0) if base.value.ndim else base.value}[kind]
        scale = {"mean": ref.scale, "sum": TILES * ref.scale,
                 "none": np.concatenate([ref.scale] * TILES, axis=0) if np.ndim(ref.scale) else ref.scale}[kind]
        if np.shape(got) != np.shape(want):
            raise Finding("B003", f"tiling the batch {TILES} times gave an output of shape {np.shape(got)}, "
                          f"not {np.shape(want)}: the per-sample output does not follow the batch", case=case)
        err = float(np.nanmax(value_error(got, want, scale, judged), initial=0.0))
        if err > bound:
            code, what = {"mean": ("B002", "changed a mean-reduced loss"),
                          "sum": ("B006", f"did not multiply a sum-reduced loss by {TILES}"),
                          "none": ("B003", "did not tile the per-sample losses")}[kind]
            raise Finding(code, f"tiling the batch {TILES} times {what}: {float(np.ravel(got)[0]):.9g} vs "
                          f"{float(np.ravel(want)[0]):.9g}; error {err:,.0f} eps, bound {bound:,.0f} eps",
                          error=err, bound=bound, case=case)
        worst = max(worst, err)

    if n >= 2 and not spec.pools_batch and spec.grad_args:
        worst = max(worst, _independence(spec, case, dtype, runtime, bound))

    one = take(spec, case, slice(0, 1))
    got1 = evaluate(spec, runtime, one, dtype).value
    ref1 = spec.oracle(one)
    err1 = float(np.nanmax(value_error(got1, ref1.value, ref1.scale, judged), initial=0.0)) \
        if np.shape(got1) == np.shape(ref1.value) else np.inf
    if err1 > bound:
        _raise_known_value_behaviour(spec, runtime, one, got1, ref1, dtype, err1, bound)
        raise Finding("B004", f"a batch of one sample disagrees with the oracle: {got1} vs {ref1.value}",
                      error=err1, bound=bound, case=one)
    flat = unbatch(spec, one) if spec.unbatched else None
    # a spec with a layout checks the input without its batch axis only where it reads as unbatched:
    # torch's (1, C, d1) without its batch axis is a batch of C samples, not one
    if flat is not None and (spec.batch_layout is None or spec.batch_layout(flat) is None):
        refu = spec.oracle(flat)
        gotu = evaluate(spec, runtime, flat, dtype).value
        erru = float(np.nanmax(value_error(gotu, refu.value, refu.scale, judged), initial=0.0)) \
            if np.shape(gotu) == np.shape(refu.value) else np.inf
        if erru > bound:
            _raise_known_value_behaviour(spec, runtime, flat, gotu, refu, dtype, erru, bound)
            raise Finding("B004", f"an input without the batch dimension (documented) disagrees with the oracle: "
                          f"{gotu} vs {refu.value}", error=erru, bound=bound, case=flat)
    return Measurement(worst, bound, extra={"kind": kind})


def _raise_known_value_behaviour(spec, runtime, case, got, ref, dtype, err, bound) -> None:
    """A batch of one (or an unbatched input) is a value check on a smaller case: where the spec records
    the disagreement as a known value behaviour (NaN at -inf logits, optax's epsilon=0 cosine), raise
    the value finding, which that expectation covers, instead of a batch finding."""
    if np.shape(got) != np.shape(ref.value):
        f = Finding("X002", f"returned shape {np.shape(got)}, the documented result has shape "
                    f"{np.shape(ref.value)}", case=case)
    else:
        f = explain_value(spec, case, got, ref, dtype, err, bound)
    if spec.expected_for("value", dtype, runtime.name, case, f.code) is not None:
        raise f


def _independence(spec, case, dtype, runtime, bound) -> float:
    """Replace sample 0's differentiable inputs by sample 1's: other samples' gradients must not move."""
    swapped = {}
    axes = batch_axes(spec, case)
    ref = spec.oracle(case)
    cot = cotangent_for(np.shape(ref.value))
    mags = ref.grad_magnitude(cot)
    for a in spec.grad_args:
        # an argument the oracle does not differentiate in this case (torch's class-index targets, drawn
        # as floats) is a label: changing it may move a mean's divisor (ignore_index, class weights)
        if a.name in axes and a.name in case.inputs and (not mags or a.oracle_name in mags):
            x = np.array(case.inputs[a.name], copy=True)
            ax = axes[a.name]
            idx0 = [slice(None)] * x.ndim
            idx1 = list(idx0)
            idx0[ax], idx1[ax] = 0, 1
            x[tuple(idx0)] = x[tuple(idx1)]
            swapped[a.name] = x
    if not swapped or all(np.array_equal(v, case.inputs[k]) for k, v in swapped.items()):
        return 0.0
    other = case.with_inputs(**swapped)
    g0 = evaluate(spec, runtime, case, dtype, cotangent=cot, want_grad=True).grads
    g1 = evaluate(spec, runtime, other, dtype, cotangent=cot, want_grad=True).grads
    shapes = grad_shapes(spec, case)
    kinks = ref.kinks(kink_rtol(dtype), shapes)
    kinks_other = spec.oracle(other).kinks(kink_rtol(dtype), shapes)
    gbound = GRAD_BOUND[dtype](n_terms(case))
    worst = 0.0
    for a in spec.grad_args:
        if a.name not in swapped or g0.get(a.name) is None or g1.get(a.name) is None:
            continue
        ax = axes[a.name]
        rest = lambda g: np.delete(np.asarray(g), 0, axis=ax)  # noqa: E731
        mag = mags.get(a.oracle_name, np.abs(g0[a.name]))
        skip = kinks.get(a.oracle_name)
        skip2 = kinks_other.get(a.oracle_name)
        mask = None
        if skip is not None or skip2 is not None:
            mask = rest(np.zeros(np.shape(g0[a.name]), bool) | (skip if skip is not None else False)
                        | (skip2 if skip2 is not None else False))
        err = grad_error(rest(g1[a.name]), rest(g0[a.name]), rest(mag), dtype, mask)
        if err > gbound:
            raise Finding("B003", f"samples are not independent: changing sample 0 of {a.name!r} changed the "
                          f"gradient of the other samples; error {err:,.0f} eps, bound {gbound:,.0f} eps",
                          error=err, bound=gbound, case=case, details={"input": a.name})
        worst = max(worst, err)
    return worst


# ---- (N, 1) against (N,) ------------------------------------------------------------------------

RANK_MISMATCH = "rank_mismatch"


def rank_mismatch(spec, case, dtype, runtime) -> Measurement:
    """What the loss does with prediction (N, 1) and target (N,), and the reverse.

    Raising or aligning the two is safe; broadcasting them to (N, N) silently computes a different
    loss, reported as B005 (a warning, with whether the framework itself warned)."""
    case = rounded(case, dtype, runtime.name)
    if spec.pair is None:
        return Measurement(0.0, 0.0, extra={"skipped": "no element-wise prediction/target pair"})
    pred, target = spec.pair
    p = np.reshape(case.inputs[pred], (np.shape(case.inputs[pred])[0], -1))[:, :1]
    t = np.reshape(case.inputs[target], (np.shape(case.inputs[target])[0], -1))[:, 0]
    if p.shape[0] < 2:
        return Measurement(0.0, 0.0, extra={"skipped": "needs at least two samples"})
    # array parameters of the prediction's shape (torch's element-wise weight=, which must keep the input's
    # size) follow the prediction; left as drawn, the loss would raise for the weight, not the mismatch
    pshape = np.shape(case.inputs[pred])
    follow = {k: np.reshape(v, (pshape[0], -1))[:, :1] for k, v in case.params.items()
              if isinstance(v, np.ndarray) and np.shape(v) == pshape}

    def shaped(c, column: bool):
        return replace(c, params={**c.params, **{k: v if column else v[:, 0] for k, v in follow.items()}})

    outcomes = []
    for label, pp, tt in ((f"{pred} (N, 1) vs {target} (N,)", p, t), (f"{pred} (N,) vs {target} (N, 1)", p[:, 0], t[:, None])):
        trial = shaped(case.with_inputs(**{pred: pp, target: tt}), pp.ndim == 2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                got = evaluate(spec, runtime, trial, dtype).value
            except Finding as f:
                outcomes.append((label, "raises", f.message.split(":")[0]))
                continue
        warned = any(issubclass(w.category, UserWarning) for w in caught)
        aligned = (shaped(case.with_inputs(**{pred: p, target: t[:, None]}), True),
                   shaped(case.with_inputs(**{pred: p[:, 0], target: t}), False))
        verdict = _closest(spec, got, dtype, aligned=aligned, broadcast=trial)
        outcomes.append((label, verdict, "with a warning" if warned else "silently"))
    broadcast = [o for o in outcomes if o[1] == "broadcasts to (N, N)"]
    text = "; ".join(f"{lbl}: {v} {how}".strip() for lbl, v, how in outcomes)
    if broadcast:
        raise Finding("B005", f"shape mismatch is broadcast, not rejected: {text}", case=case,
                      details={"outcomes": outcomes, "warn": True})
    return Measurement(0.0, 0.0, extra={"outcomes": outcomes, "observed": text})


def _closest(spec, got, dtype, *, aligned, broadcast) -> str:
    for verdict, trial in (*(("aligns them", a) for a in aligned), ("broadcasts to (N, N)", broadcast)):
        try:
            ref = spec.oracle(trial)
        except Exception:  # the oracle follows NumPy broadcasting; some losses reject the shapes
            continue
        if np.shape(ref.value) == np.shape(got):
            err = value_error(got, ref.value, ref.scale, dtype)
            if np.all(~(err > VALUE_BOUND[dtype](n_terms(trial)))):
                return verdict
    return "returns something else"
