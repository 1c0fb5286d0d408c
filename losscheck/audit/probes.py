"""The checks that need no reference: they compare the user's loss with itself.

* gradient: autodiff against float64 central finite differences along a random direction (two
  evaluations per input, whatever its size), and against large steps where autodiff says zero or
  nothing (an integer cast, ``.item()``, ``.detach()``, a NumPy round trip): G001/G002/G003;
* batch: tiling the batch (mean: unchanged, B002 otherwise; sum: B007), per-sample independence
  (B003), a batch of one (B004);
* broadcasting: the same samples as (N,) and as (N, 1), and constants the loss holds that only
  fit some widths (B005);
* context tensors built as integers (D002) and left on the CPU (D003);
* compiled as training runs it (``jax.jit``; Keras' ``fit()`` on TensorFlow): raising there, or
  computing another value than eagerly (X010);
* extreme inputs: NaN/Inf value or gradient (N001/N003);
* time against the batch size (P001).

Each check returns a dict ``{check, code, status, message, details}`` (see :func:`result`).
"""
from __future__ import annotations

import errno
import math
import os
import sysconfig
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..properties.compiled import TRAINED_BY, fix_for
from ..tolerance import round_to
from .evaluate import Evaluator, Output
from .infer import Plan, build, extremes

#: relative agreement expected of two evaluations of the same mathematics, per dtype
SAME = {"float64": 1e-9, "float32": 2e-4}
FD_TOL = {"float64": 1e-5, "float32": 3e-2}
#: time per pair of samples above which quadratic time is Python-level work, not tensor arithmetic
PYTHON_PAIR_S = 2e-7


def result(check: str, status: str, message: str, code: str = "", details: dict | None = None) -> dict:
    return {"check": check, "code": code, "status": status, "message": message, "details": details or {}, "repro": ""}


class OutputLimit(BaseException):
    """The loss printed past the sandbox's output limit (a write failed with EFBIG): the audit of
    this loss stops; the worker reports X006. A BaseException so no probe mistakes it for the loss's
    own error."""


class LossError(Exception):
    """The user's loss raised (as opposed to losscheck itself): ``original`` is its exception."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original

    @property
    def memory(self) -> bool:
        text = str(self.original).lower()
        return isinstance(self.original, MemoryError) or "can't allocate memory" in text or "out of memory" in text


def _short(exc: BaseException) -> str:
    exc = exc.original if isinstance(exc, LossError) else exc
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240]}" if text else type(exc).__name__


@dataclass
class Probe:
    """A user's loss with its inferred inputs, evaluated in one framework and dtype."""
    make: Callable[..., Callable]
    plan: Plan
    evaluator: Evaluator
    dtype: str
    dims: dict[str, int]
    seed: int
    captured: dict[str, dict] = field(default_factory=dict)   # constants the loss holds: {name: shape, dtype}
    last_inputs: dict[str, np.ndarray] | None = None

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def inputs(self, rng, **dims) -> dict[str, np.ndarray]:
        arrays = build(self.plan, {**self.dims, **dims}, rng)
        return {k: self.round(v) for k, v in arrays.items()}

    def round(self, x: np.ndarray) -> np.ndarray:
        return round_to(self.dtype, x) if np.issubdtype(np.asarray(x).dtype, np.floating) else x

    def call(self, arrays: dict[str, np.ndarray], *, want_grad: bool = True, integer_context: bool = False,
             context_device: str | None = None, cotangent=None, compiled: tuple[str, ...] | None = None) -> Output:
        self.last_inputs = arrays
        args = [(t.name, arrays[t.name], t.differentiable) for t in self.plan.call]
        ctx = {t.name: arrays[t.name] for t in self.plan.ctor}
        ctx.update(self.plan.scalars)
        with np.errstate(all="ignore"):
            try:
                return self.evaluator.run(self.make, args, ctx, self.dtype, want_grad=want_grad, cotangent=cotangent,
                                          integer_context=integer_context, context_device=context_device,
                                          compiled=compiled)
            except OSError as exc:
                if exc.errno == errno.EFBIG:
                    raise OutputLimit(str(exc)) from exc
                raise LossError(exc) from exc
            except Exception as exc:  # the loss (or its framework) raised
                raise LossError(exc) from exc

    def value(self, arrays, **kw) -> np.ndarray:
        return self.call(arrays, want_grad=False, **kw).value

    @property
    def diff_names(self) -> list[str]:
        return [t.name for t in self.plan.call if t.differentiable]


def close(a, b, dtype: str, scale: float | None = None) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    s = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), scale or 0.0, 1e-300)
    with np.errstate(invalid="ignore"):
        return bool(np.all((np.abs(a - b) <= SAME[dtype] * s) | ((a == b) & np.isfinite(a))))


def _fmt(x) -> str:
    x = np.asarray(x)
    return f"{float(x.reshape(-1)[0]):.6g}" if x.size == 1 else np.array2string(x, precision=4, threshold=6)


# ---- gradient ---------------------------------------------------------------------------------------

def gradient(p: Probe, cases: int = 3) -> dict:
    """Autodiff against finite differences of the loss itself along random directions."""
    names = p.diff_names
    if not names:
        return result("gradient", "skip", "no floating-point argument to differentiate")
    worst = 0.0
    for k in range(cases):
        rng = p.rng(100 + k)
        x = p.inputs(rng)
        base = p.call(x)
        v0 = np.asarray(base.value, np.float64)
        if not np.all(np.isfinite(v0)):
            continue
        cot = rng.normal(size=np.shape(v0)) if np.ndim(v0) else None
        if cot is not None:
            base = p.call(x, cotangent=cot)

        def f(arrays):
            out = p.value(arrays)
            return float(np.sum(out * (1.0 if cot is None else cot)))

        for name in names:
            g = base.grads.get(name)
            d = rng.normal(size=np.shape(x[name]))
            d /= max(np.linalg.norm(d), 1e-300)
            scale = max(float(np.max(np.abs(x[name]))), 1.0)
            if g is None or not np.any(g):
                # a flat or cut gradient: does the loss change at all when this input moves?
                big = f({**x, name: x[name] + 0.25 * scale * d}) - f(x)
                big2 = f({**x, name: x[name] - 0.25 * scale * d}) - f(x)
                moves = max(abs(big), abs(big2)) > 64 * SAME[p.dtype] * max(abs(f(x)), 1e-30)
                if not moves:
                    continue
                why = base.note or ("the loss returned " + base.type_name if not base.is_tensor else
                                    "autodiff found no path from the loss to it")
                if g is None:
                    return result("gradient", "fail", f"no gradient reaches {name!r} although the loss changes with it "
                                  f"(by {max(abs(big), abs(big2)):.3g} for a step of {0.25 * scale:.3g}): {why} "
                                  "(.item(), .detach(), .numpy(), an integer cast, or a non-tensor return)",
                                  "G002", {"input": name, "change": max(abs(big), abs(big2))})
                return result("gradient", "fail", f"the gradient of {name!r} is exactly zero although the loss changes "
                              f"with it (by {max(abs(big), abs(big2)):.3g} for a step of {0.25 * scale:.3g}): rounding, "
                              "an argmax or an integer cast makes it piecewise constant", "G003", {"input": name})
            fd, err_est = _directional(f, x, name, d, scale, p.dtype)
            ad = float(np.sum(g * d))
            denom = max(abs(fd), abs(ad), 1e-12 * max(abs(f(x)), 1.0) / scale)
            err = abs(ad - fd) / denom
            if err > max(FD_TOL[p.dtype], 10 * err_est / denom):
                code = "G001"
                if abs(fd) > 0 and abs(ad / fd + 1) < 0.05:
                    code = "G004"
                elif abs(fd) > 0 and 0 < abs(ad / fd) and abs(math.log10(abs(ad / fd))) > 0.05:
                    code = "G005" if _scaled(f, x, name, g, scale, rng, p.dtype, ad / fd) else "G001"
                return result("gradient", "fail", f"the gradient of {name!r} disagrees with finite differences of the "
                              f"loss itself: directional derivative {ad:.6g} by autodiff, {fd:.6g} by central "
                              f"differences (relative error {err:.2g})", code,
                              {"input": name, "autodiff": ad, "finite_differences": fd, "relative_error": err})
            worst = max(worst, err)
    return result("gradient", "pass", f"autodiff agrees with central finite differences of the loss "
                  f"({', '.join(names)}; worst relative error {worst:.2g} over {cases} inputs)",
                  details={"relative_error": worst})


def _directional(f, x, name, d, scale, dtype) -> tuple[float, float]:
    """Central difference along ``d`` with Richardson extrapolation; (estimate, error estimate)."""
    h = (1e-4 if dtype == "float64" else 3e-2) * scale

    def central(step):
        return (f({**x, name: x[name] + step * d}) - f({**x, name: x[name] - step * d})) / (2 * step)

    d1, d2 = central(h), central(h / 2)
    return (4 * d2 - d1) / 3, abs(d2 - d1)


def _scaled(f, x, name, g, scale, rng, dtype, c) -> bool:
    """The gradient is c times the true one along a second direction too."""
    d = rng.normal(size=np.shape(x[name]))
    d /= max(np.linalg.norm(d), 1e-300)
    fd, _ = _directional(f, x, name, d, scale, dtype)
    return abs(fd) > 0 and abs(float(np.sum(g * d)) / fd - c) < 0.05 * abs(c)


# ---- batch ------------------------------------------------------------------------------------------

def _tile(p: Probe, arrays, k: int = 2) -> dict:
    out = {}
    for t in p.plan.tensors:
        x = arrays[t.name]
        if t.domain == "adjacency":
            out[t.name] = np.kron(np.eye(k), x)
        elif t.shape and t.shape[0] == "N":
            out[t.name] = np.concatenate([x] * k, axis=0)
        else:
            out[t.name] = x
    return out


def batch(p: Probe) -> list[dict]:
    out = []
    rng = p.rng(200)
    x = p.inputs(rng)
    base = p.value(x)
    n = p.dims["N"]
    if p.plan.pools_batch:
        out.append(result("batch", "skip", "the samples interact by design (an adjacency matrix, or embeddings "
                          "compared with each other): tiling and per-sample independence do not apply"))
    else:
        tiled = p.value(_tile(p, x))
        if np.ndim(base) == 0 and np.ndim(tiled) == 0:
            if close(tiled, base, p.dtype):
                out.append(result("batch", "pass", "a mean over the batch: tiling the batch twice leaves it unchanged",
                                  details={"reduction": "mean"}))
            elif close(tiled, 2 * base, p.dtype):
                out.append(result("batch", "warn", f"a sum over the samples: tiling the batch twice doubles the loss "
                                  f"({_fmt(base)} -> {_fmt(tiled)}), so the gradient scale and the effective learning "
                                  "rate grow with the batch size; divide by the batch size (mean) unless that is "
                                  "intended", "B007", {"reduction": "sum", "value": float(base), "tiled": float(tiled)}))
            else:
                out.append(result("batch", "fail", f"the loss depends on the batch size: tiling the batch twice changed "
                                  f"it from {_fmt(base)} to {_fmt(tiled)}, neither a mean (unchanged) nor a sum "
                                  "(doubled)", "B002", {"value": float(base), "tiled": float(tiled)}))
        elif np.ndim(base) >= 1 and np.shape(base)[0] == n:
            want = np.concatenate([base, base], axis=0)
            if close(tiled, want, p.dtype):
                out.append(result("batch", "pass", "one value per sample: tiling the batch tiles the output",
                                  details={"reduction": "none"}))
            else:
                out.append(result("batch", "fail", f"the per-sample output does not follow the batch: tiling the batch "
                                  f"gave shape {np.shape(tiled)} / values {_fmt(tiled)}, not the tiled "
                                  f"{_fmt(want)}", "B003"))
        out.append(independence(p, x, base))
    out.append(batch_of_one(p))
    return out


def _resample_row0(p: Probe, x, rng) -> dict:
    fresh = p.inputs(rng)
    out = dict(x)
    for t in p.plan.call:
        if t.role in ("prediction", "target", "embeddings", "other") and t.shape and t.shape[0] == "N":
            arr = np.array(x[t.name], copy=True)
            arr[0] = fresh[t.name][0]
            out[t.name] = arr
    return out


def independence(p: Probe, x, base) -> dict:
    """Changing sample 0 must leave every other sample's gradient (or per-sample value) alone."""
    if p.dims["N"] < 2:
        return result("independence", "skip", "a single sample")
    changed = _resample_row0(p, x, p.rng(201))
    if np.ndim(base) >= 1:
        other = p.value(changed)
        if np.shape(other) == np.shape(base) and not close(other[1:], base[1:], p.dtype):
            return result("independence", "fail", "samples are not independent: changing sample 0 changed the "
                          f"losses of other samples ({_fmt(base[1:])} -> {_fmt(other[1:])})", "B003")
        return result("independence", "pass", "changing one sample changes only its own loss")
    g0, g1 = p.call(x).grads, p.call(changed).grads
    for name in p.diff_names:
        a, b = g0.get(name), g1.get(name)
        if a is None or b is None or np.ndim(a) == 0:
            continue
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
        if not np.allclose(a[1:], b[1:], rtol=0, atol=SAME[p.dtype] * scale * 10):
            i = int(np.argmax(np.max(np.abs(a[1:] - b[1:]).reshape(len(a) - 1, -1), axis=1))) + 1
            return result("independence", "fail", f"samples are not independent: changing sample 0 changed the "
                          f"gradient of {name!r} for sample {i} (the loss mixes samples: a statistic over the batch, "
                          f"or a broadcast between samples)", "B003", {"input": name, "sample": i})
    return result("independence", "pass", "changing one sample leaves the other samples' gradients unchanged")


def batch_of_one(p: Probe) -> dict:
    x = p.inputs(p.rng(202), N=1)
    try:
        out = p.call(x)
    except LossError as exc:
        return result("batch_of_one", "fail", f"a batch of one sample raises {_short(exc)}", "B004",
                      {"inputs": _shapes(x), "_arrays": x})
    if not np.all(np.isfinite(out.value)):
        return result("batch_of_one", "fail", f"a batch of one sample gives {_fmt(out.value)}", "B004",
                      {"inputs": _shapes(x), "_arrays": x})
    bad = [n for n, g in out.grads.items() if g is not None and not np.all(np.isfinite(g))]
    if bad:
        return result("batch_of_one", "fail", f"a batch of one sample gives a non-finite gradient for {bad[0]!r}",
                      "B004")
    return result("batch_of_one", "pass", f"a batch of one sample gives {_fmt(out.value)}")


def _shapes(arrays) -> dict:
    return {k: list(np.shape(v)) for k, v in arrays.items()}


# ---- broadcasting ----------------------------------------------------------------------------------

def broadcast(p: Probe) -> dict:
    """(N,) against (N, 1) for the same samples, and constants that only fit some widths."""
    if not p.plan.elementwise:
        return result("broadcast", "skip", "prediction and target are not compared element by element")
    pred = p.plan.by_role("prediction")[0]
    rng = p.rng(300)
    x = p.inputs(rng, D=1, C=1)
    col = {t.name: x[t.name] for t in p.plan.tensors}
    flat = {k: (v.reshape(-1) if k in _row_args(p) else v) for k, v in col.items()}
    flat.update({t.name: x[t.name].reshape(-1) for t in p.plan.tensors if t.domain == "mask"})
    findings = []
    details: dict[str, Any] = {}
    try:
        v_col = p.value(col)
    except LossError as exc:
        v_col, details["(N, 1)"] = None, _short(exc)
    try:
        v_flat = p.value(flat)
    except LossError as exc:
        v_flat, details["(N,)"] = None, _short(exc)
    if v_col is not None and v_flat is not None and np.size(v_col) == np.size(v_flat) \
            and not close(np.ravel(v_col), np.ravel(v_flat), p.dtype):
        findings.append(f"the same samples as {pred.name} of shape (N,) and of shape (N, 1) give different losses "
                        f"({_fmt(v_flat)} vs {_fmt(v_col)}): with (N,) inputs a per-sample tensor of shape (N, 1) "
                        "inside the loss broadcasts against them to (N, N)")
    widths = {}
    for d in (1, 2, 3, 5):
        try:
            widths[d] = bool(np.all(np.isfinite(p.value(p.inputs(rng, D=d, C=d)))))
        except LossError as exc:
            widths[d] = False
            details[f"D={d}"] = _short(exc)
    details["works_for_widths"] = [d for d, ok in widths.items() if ok]
    for name, info in p.captured.items():
        shape = tuple(info.get("shape") or ())
        if len(shape) == 1 and shape[0] > 1 and widths.get(1) and not widths.get(3 if shape[0] != 3 else 5):
            bad = 3 if shape[0] != 3 else 5
            findings.append(f"the constant {name} of shape ({shape[0]},) is broadcast against the last axis of "
                            f"{pred.name}: with 1 column it silently broadcasts (N, 1) to (N, {shape[0]}), counting "
                            f"each sample once per weight; with {bad} columns it raises; it only fits "
                            f"{shape[0]} columns")
    if findings:
        return result("broadcast", "fail", "; ".join(findings), "B005", details)
    note = "" if widths.get(1) else f" ((N, 1) raises: {details.get('D=1', '')})"
    return result("broadcast", "pass", "the same samples as (N,) and as (N, 1) give the same loss" + note, details=details)


def _row_args(p: Probe) -> set[str]:
    return {t.name for t in p.plan.tensors if t.shape and t.shape[0] == "N" and t.domain != "adjacency"}


# ---- context tensors ---------------------------------------------------------------------------------

def integer_context(p: Probe) -> dict:
    """Context tensors as users build them from Python integers: int64 (torch), int32 (TF)."""
    ctx = [t for t in p.plan.tensors if t.role == "context"]
    if not ctx:
        return result("context_dtype", "skip", "no context tensor")
    rng = p.rng(400)
    x = p.inputs(rng)
    for t in ctx:
        if t.domain in ("sample_weights", "class_weights", "kernel"):
            x[t.name] = rng.integers(1, 4, np.shape(x[t.name])).astype(np.float64)
    ref = p.value(x)
    ints = {**x, **{t.name: x[t.name].astype(np.int64) for t in ctx if t.where == "call"}}
    names = ", ".join(t.name for t in ctx)
    try:
        got = p.value(ints, integer_context=True)
    except LossError as exc:
        return result("context_dtype", "fail", f"with an integer {names} (as torch.tensor / tf.constant build it from "
                      f"Python integers) the loss raises {_short(exc)}; convert it to float where the loss stores it",
                      "D002", {"context": names})
    if not close(got, ref, "float32" if p.dtype == "float32" else "float64"):
        return result("context_dtype", "fail", f"with an integer {names} the loss computes {_fmt(got)}, with the same "
                      f"values as floats {_fmt(ref)}: integer arithmetic inside the loss", "D002", {"context": names})
    return result("context_dtype", "pass", f"an integer {names} gives the same loss as a float one")


def device(p: Probe, device: str) -> dict:
    """Context tensors created on the CPU, the module moved with .to(device), inputs on the device."""
    ctor = p.plan.ctor
    if not ctor:
        return result("context_device", "skip", "no constructor context tensor")
    if p.evaluator.framework != "torch":
        return result("context_device", "skip", "checked for torch modules only")
    from .evaluate import Evaluator

    x = p.inputs(p.rng(500))
    make = p.make

    def moved(**ctx):
        loss = make(**ctx)
        return loss.to(device) if hasattr(loss, "to") else loss

    # the inputs on the device, as a training step gives them; only the context is built on the CPU
    q = Probe(moved, p.plan, Evaluator("torch", device), p.dtype, p.dims, p.seed)
    try:
        q.value(x, context_device="cpu")
    except LossError as exc:
        return result("context_device", "fail", f"context built on the CPU, the loss moved with .to({device!r}), inputs "
                      f"on {device}: {_short(exc)}; register the context with self.register_buffer so .to() moves it",
                      "D003")
    return result("context_device", "pass", f"context tensors follow the loss to {device}")


# ---- compiled as training runs it ------------------------------------------------------------------------

def compiled(p: Probe) -> dict:
    """The loss compiled as training compiles it (``Evaluator.compiler``) against the loss run eagerly,
    on the same inputs: raising there, or another value or gradient, is X010."""
    how = p.evaluator.compiler
    if how is None:
        return result("compiled", "skip", "torch trains with eager calls (torch.compile runs what it cannot trace "
                                          "eagerly): nothing to compare")
    x = p.inputs(p.rng(700))
    eager, p.evaluator.eager = p.evaluator.eager, True
    try:
        ref = p.call(x)
    finally:
        p.evaluator.eager = eager
    if not ref.is_tensor:
        return result("compiled", "skip", f"the loss returns {ref.type_name}, not a tensor")
    batch = tuple(t.name for t in p.plan.call if t.shape[:1] == ("N",))
    try:
        got = p.call(x, compiled=batch)
    except LossError as exc:
        return result("compiled", "fail", f"raises under {how}{_user_frame(exc.original)}, as {TRAINED_BY[how]} runs "
                      f"it: {_short(exc)}"
                      f"{fix_for(exc.original)}", "X010",
                      {"compiler": how, "traceback": traceback_text(exc.original), "_arrays": x})
    tol = "float32" if p.dtype == "float32" else "float64"
    if not close(got.value, ref.value, tol):
        return result("compiled", "fail", f"computes {_fmt(got.value)} under {how} and {_fmt(ref.value)} eagerly on "
                      "the same inputs: it depends on how it is run (Python that runs once, when the loss is traced, "
                      "is frozen into the program: random numbers, counters, values read with float() or NumPy; "
                      "Keras on TensorFlow takes the logits behind a softmax op only in graph mode)", "X010",
                      {"compiler": how, "compiled": np.asarray(got.value).tolist(),
                       "eager": np.asarray(ref.value).tolist(), "_arrays": x})
    for name, g in ref.grads.items():
        h = got.grads.get(name)
        if g is not None and h is not None and not close(h, g, tol):
            return result("compiled", "fail", f"the gradient for {name!r} under {how} differs from the eager one on "
                          f"the same inputs ({_fmt(h)} vs {_fmt(g)})", "X010", {"compiler": how, "_arrays": x})
    return result("compiled", "pass", f"value and gradient under {how}, as {TRAINED_BY[how]} runs it, equal the eager "
                                      "ones")


def _user_frame(exc: BaseException) -> str:
    """`` at line N (`code`)`` of the deepest frame outside losscheck, the installed packages and the
    standard library: the user's line that raised."""
    dirs = tuple(os.path.join(d, "") for d in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                sysconfig.get_paths()["stdlib"]))
    packages = tuple(f"{os.sep}{d}{os.sep}" for d in ("site-packages", "dist-packages"))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(dirs) and not any(k in f.filename for k in packages)]
    if not frames:
        return ""
    f = frames[-1]
    return f" at {os.path.basename(f.filename)} line {f.lineno} (`{(f.line or '').strip()[:80]}`)"


def traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:]


# ---- numerics -------------------------------------------------------------------------------------------

def numerics(p: Probe) -> dict:
    cases = extremes(p.plan, p.dims, p.rng(600))
    if not cases:
        return result("numerics", "skip", "no extreme inputs known for these input domains")
    for what, arrays in cases:
        arrays = {k: p.round(v) for k, v in arrays.items()}
        try:
            out = p.call(arrays)
        except LossError as exc:
            return result("numerics", "fail", f"raises on {what}: {_short(exc)}", "X001",
                          {"inputs": what, "_arrays": arrays})
        if not np.all(np.isfinite(out.value)):
            return result("numerics", "fail", f"the loss is {_fmt(out.value)} on {what}, where it should be finite",
                          "N001", {"inputs": what, "value": _fmt(out.value), "_arrays": arrays})
        for name, g in out.grads.items():
            if g is not None and not np.all(np.isfinite(g)):
                return result("numerics", "fail", f"the gradient of {name!r} is not finite on {what} (the loss is "
                              f"{_fmt(out.value)})", "N003", {"inputs": what, "input": name, "_arrays": arrays})
    return result("numerics", "pass", "finite value and gradient on " + "; ".join(w for w, _ in cases))


# ---- time against the batch size -------------------------------------------------------------------------

OP_SIZES = (4, 8, 16)


def scaling(p: Probe, budget_s: float = 5.0, vectorised: str | None = None) -> dict:
    """How the loss's cost grows with the batch size N: from the number of operations one call
    records (deterministic, no timing noise) when the loss can be traced, else from timing."""
    counts = {}
    for n in OP_SIZES:
        x = p.inputs(p.rng(700 + n), N=n)
        args = [(t.name, x[t.name], t.differentiable) for t in p.plan.call]
        ctx = {**{t.name: x[t.name] for t in p.plan.ctor}, **p.plan.scalars}
        with np.errstate(all="ignore"):
            c = p.evaluator.count_ops(p.make, args, ctx, p.dtype)
        if c is None:
            return timed_scaling(p, budget_s, vectorised)
        counts[n] = c
    # growth of the increments: a fixed part (setup, the reduction) cancels out
    a, b, c = (counts[n] for n in OP_SIZES)
    k = math.log(max(c - b, 1) / max(b - a, 1)) / math.log(OP_SIZES[2] / OP_SIZES[1]) if c > b else 0.0
    what = {"torch": "autograd nodes", "jax": "jaxpr operations", "tensorflow": "graph operations"}[p.evaluator.framework]
    details = {"operations": {str(n): c for n, c in counts.items()}, "exponent": round(k, 2), "counted": what}
    text = ", ".join(f"{c} at N={n}" for n, c in counts.items())
    if k > 1.5:
        msg = f"one call records {text} {what}: they grow as N^{k:.2f}, a Python loop over pairs of samples"
        if p.evaluator.framework != "jax":   # eager JAX compiles each indexing op anew: timing it says little
            n = OP_SIZES[0]
            x = p.inputs(p.rng(799), N=n)
            t0 = time.perf_counter()
            p.call(x)
            spent = time.perf_counter() - t0
            details["seconds"] = {str(n): spent}
            msg += f" ({1e3 * spent:.1f} ms per call at N={n}, about {spent * (1024 / n) ** k:.3g} s at N=1024)"
        else:
            msg += " (under jax.jit it unrolls: compile time grows the same way)"
        if vectorised:
            msg += "; vectorised equivalent:\n" + vectorised
            details["vectorised"] = vectorised
        return result("scaling", "fail", msg, "P001", details)
    return result("scaling", "pass", f"one call records {text} {what} (grows as N^{k:.2f})", details=details)


def timed_scaling(p: Probe, budget_s: float = 5.0, vectorised: str | None = None) -> dict:
    """Time the value and gradient at N = 4, 16, 64, 256, 1024 until a call takes 0.1 s; report the exponent.
    (Few sizes: JAX compiles every primitive again for each new shape.)"""
    def measure(n: int, runs: int) -> float:
        x = p.inputs(p.rng(700 + n), N=n)
        best = math.inf
        for i in range(runs):
            t0 = time.perf_counter()
            p.call(x)
            best = min(best, time.perf_counter() - t0)
            if i >= 1 and best > 0.05:   # slow: two runs are enough to rule out a one-off stall
                break
        return best

    times: dict[int, float] = {}
    start = time.perf_counter()
    eager, p.evaluator.eager = p.evaluator.eager, True   # JAX: time the loss as it runs in Python
    try:
        return _scaling(p, measure, times, start, budget_s, vectorised)
    finally:
        p.evaluator.eager = eager


def _scaling(p: Probe, measure, times, start, budget_s, vectorised) -> dict:
    n = 4
    while n <= 1024 and time.perf_counter() - start < budget_s:
        measure(n, 1) if p.evaluator.framework == "jax" else None   # compile outside the timing
        times[n] = measure(n, 3)
        if times[n] > 0.1:
            break
        n *= 4
    ns = sorted(times)
    details = {"seconds": {str(k): round(v, 6) for k, v in times.items()}}
    if len(ns) < 2:
        return result("scaling", "skip", "too slow to time at two batch sizes", details=details)

    def fit():
        last = ns[-3:]   # least squares on the largest sizes: the smallest are fixed overhead
        return float(np.polyfit(np.log(last), np.log([max(times[m], 1e-9) for m in last]), 1)[0])

    def quadratic(k):
        # Tensor code over an (N, N) matrix is quadratic too, at nanoseconds per pair; a Python loop
        # costs microseconds per pair.
        return k > 1.5 and times[ns[-1]] > 0.02 and times[ns[-1]] / ns[-1] ** 2 > PYTHON_PAIR_S

    k = fit()
    if quadratic(k):   # confirm on a second timing of the largest sizes (a stall on a shared machine)
        for m in ns[-3:]:
            times[m] = min(times[m], measure(m, 2))
        k = fit()
    a, b = ns[-2], ns[-1]
    per_pair = times[b] / b ** 2
    details.update(exponent=round(k, 2), seconds_per_pair=per_pair,
                   seconds={str(m): round(v, 6) for m, v in times.items()})
    if quadratic(k):
        msg = (f"time grows as N^{k:.2f}: {1e3 * times[a]:.1f} ms at N={a}, {1e3 * times[b]:.1f} ms at N={b}, "
               f"{1e6 * per_pair:.2g} µs per pair of samples (a Python loop over pairs of samples); at N=1024 it "
               f"would take about {times[b] * (1024 / b) ** k:.3g} s per call")
        if vectorised:
            msg += "; vectorised equivalent:\n" + vectorised
            details["vectorised"] = vectorised
        return result("scaling", "fail", msg, "P001", details)
    return result("scaling", "pass", f"time grows as N^{k:.2f} up to N={b} ({1e3 * times[b]:.2g} ms)", details=details)
