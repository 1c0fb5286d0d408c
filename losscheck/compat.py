"""Activation/loss compatibility: what each common last activation does to a loss.

For a classification or divergence loss that expects logits, probabilities or log-probabilities,
feed it ``activation(z)`` for raw scores ``z`` and measure, on the real framework:

* the value floor: the lowest loss reachable by making ``z`` confidently right (a softmax before a
  logits cross-entropy can never reach 0);
* the gradient attenuation: |d loss / d z| with this activation over |d loss / d z| with the
  correct one, at ordinary scores;
* whether the minimiser is still right: confidently right scores must score lower than confidently
  wrong ones;
* whether the value is defined at all (a tanh output is not a probability: log of a negative number).

The verdict is ``ok`` for the documented pairing, ``warn`` when training still moves the right way
but slower or towards a floor above the correct one, ``wrong`` when the minimiser is wrong or the
value is undefined.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("none", "sigmoid", "softmax", "log_softmax", "relu", "tanh")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activate(name: str, z: np.ndarray) -> np.ndarray:
    return {"none": lambda: z, "sigmoid": lambda: _sigmoid(z), "softmax": lambda: _softmax(z),
            "log_softmax": lambda: np.log(_softmax(z)), "relu": lambda: np.maximum(z, 0.0),
            "tanh": lambda: np.tanh(z)}[name]()


def activation_vjp(name: str, z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d<g, activation(z)>/dz."""
    if name == "none":
        return g
    if name == "sigmoid":
        s = _sigmoid(z)
        return g * s * (1 - s)
    if name == "softmax":
        p = _softmax(z)
        return p * (g - np.sum(g * p, axis=-1, keepdims=True))
    if name == "log_softmax":
        p = _softmax(z)
        return g - p * np.sum(g, axis=-1, keepdims=True)
    if name == "relu":
        return g * (z > 0)
    return g * (1 - np.tanh(z) ** 2)


@dataclass(frozen=True)
class Pairing:
    """How a catalog spec is fed: which argument gets ``activation(z)``, the activation its
    documentation asks for (given the params), and how to build targets from class indices."""
    pred: str
    expects: str                      # the correct activation: none (logits) | sigmoid | softmax | log_softmax
    targets: dict                     # {argument: function(labels, C) -> array}; labels are class
                                      # indices (N,), or a 0/1 matrix (N, C) when ``binary``
    params: dict
    binary: bool = False              # one score per output (sigmoid losses) rather than a class axis


FLOOR_TOL = 1e-3        # loss units: floors closer than this are the same floor
SAME_GRADIENT = 0.1     # |log10 attenuation| below this is the same gradient scale


@dataclass
class Effect:
    activation: str
    verdict: str        # ok | warn | wrong
    floor: float        # lowest loss reached by confidently right scores with this activation
    correct_floor: float
    attenuation: float  # |grad| ratio against the correct pairing at ordinary scores
    minimiser_right: bool
    unbounded: bool = False
    note: str = ""

    def describe(self) -> str:
        if self.verdict == "ok":
            return "documented pairing" if not self.note else self.note
        parts = []
        if self.note:
            parts.append(self.note)
        elif not np.isfinite(self.floor):
            parts.append("undefined (NaN/Inf)")
        elif self.unbounded:
            parts.append("unbounded below: the loss decreases without limit")
        else:
            if abs(self.floor - self.correct_floor) > FLOOR_TOL:
                parts.append(f"floor {self.floor:.3g} (correct {self.correct_floor:.3g})")
            if np.isfinite(self.attenuation) and abs(np.log10(max(self.attenuation, 1e-300))) > SAME_GRADIENT:
                parts.append(f"gradient x{self.attenuation:.2g}")
        if not self.minimiser_right and np.isfinite(self.floor):
            parts.append("minimiser wrong")
        return ", ".join(parts)


def _loss_and_grad(spec, runtime, pairing, z, labels, dtype="float64"):
    """Mean loss of activation(z) through the framework and its gradient w.r.t. z, for each activation."""
    from .catalog.spec import Case
    from .properties.common import Finding, evaluate

    c = z.shape[-1]
    out = {}
    for act in ACTIVATIONS:
        x = activate(act, z)
        inputs = {pairing.pred: x, **{k: f(labels, c) for k, f in pairing.targets.items()}}
        case = Case(inputs, dict(pairing.params), dtype=dtype, runtime=runtime.name)
        try:
            ev = evaluate(spec, runtime, case, dtype, cotangent=None, want_grad=True)
        except Finding as f:  # the framework rejects this input outright
            out[act] = (np.nan, None, f"rejected: {f.message[:80]}")
            continue
        value = float(np.mean(ev.value))
        g = ev.grads.get(pairing.pred)
        if g is not None and np.ndim(ev.value):
            g = g / np.size(ev.value)
        out[act] = (value, None if g is None else activation_vjp(act, z, g), "")
    return out


def analyse(spec, runtime, pairing: Pairing, *, classes=4, samples=8, seed=0) -> list[Effect]:
    rng = np.random.default_rng(seed)
    if pairing.binary:
        # multi-label targets: several positives per row, as sigmoid losses are used
        labels = (rng.random((samples, classes)) < 0.5).astype(np.float64)
        labels[:, 0], labels[:, 1] = 1.0, 0.0
        onehot = labels
    else:
        labels = rng.integers(0, classes, size=samples)
        onehot = np.eye(classes)[labels]
    signs = 2 * onehot - 1
    typical = _loss_and_grad(spec, runtime, pairing, rng.normal(size=(samples, classes)), labels)
    right_at, wrong_at = {}, {}
    for scale in (1.0, 3.0, 10.0, 30.0):
        target = scale * (signs if pairing.binary else onehot)
        right_at[scale] = _loss_and_grad(spec, runtime, pairing, target, labels)
        wrong_at[scale] = _loss_and_grad(spec, runtime, pairing, -target, labels)
    ref_grad = typical[pairing.expects][1]
    correct_floor = min(right_at[s][pairing.expects][0] for s in right_at)
    effects = []
    for a in ACTIVATIONS:
        value, g, note = typical[a]
        rights = [right_at[s][a][0] for s in right_at]
        floor = min(rights) if all(np.isfinite(rights)) else np.nan
        # a proper loss has saturated by scores of 10 (exp(-10) = 5e-5): still falling from 10 to 30 means
        # it decreases without limit as the scores grow
        unbounded = bool(np.isfinite(floor) and rights[-1] < rights[-2] - FLOOR_TOL)
        r, w = right_at[10.0][a][0], wrong_at[10.0][a][0]
        minimiser_right = bool(np.isfinite(r) and np.isfinite(w) and r < w)
        atten = np.nan if g is None or ref_grad is None else float(
            np.linalg.norm(g) / max(np.linalg.norm(ref_grad), 1e-300))
        same = (np.isfinite(floor) and abs(floor - correct_floor) <= FLOOR_TOL and minimiser_right
                and np.isfinite(atten) and abs(np.log10(max(atten, 1e-300))) <= SAME_GRADIENT)
        if a == pairing.expects:
            verdict = "ok"
        elif same:
            verdict, note = "ok", "equivalent: same optimum and gradient scale"
        elif not np.isfinite(value) or not np.isfinite(floor) or not minimiser_right or unbounded:
            verdict = "wrong"
        else:
            verdict = "warn"
        effects.append(Effect(a, verdict, floor, correct_floor, atten, minimiser_right, unbounded, note))
    return effects



def effect_code(e: Effect) -> str:
    """The diagnosis code of a non-documented pairing's effect ('' for ok)."""
    if e.verdict == "wrong":
        return "A004"
    if e.verdict == "warn":
        return "A002" if abs(e.floor - e.correct_floor) > FLOOR_TOL else "A003"
    return ""


def check_spec(spec, runtime, variants) -> dict:
    """Analyse every documented parameter setting of ``spec``; returns the row fields: status
    (``fail`` with A001 when the documented pairing itself does not train), message, and the
    table under ``compat``."""
    table, broken = [], []
    for params, pairing in variants:
        pairing = Pairing(pairing.pred, pairing.expects, pairing.targets, {**params, **pairing.params},
                          pairing.binary)
        effects = analyse(spec, runtime, pairing)
        documented = next(e for e in effects if e.activation == pairing.expects)
        problem = ("an undefined loss" if not np.isfinite(documented.floor) else
                   "a loss unbounded below" if documented.unbounded else
                   "a wrong minimiser" if not documented.minimiser_right else "")
        if problem:
            broken.append(f"{params or 'defaults'}: the documented {pairing.expects!r} input gives {problem}")
        table.append({"params": params, "argument": pairing.pred, "expects": pairing.expects,
                      "effects": [{"activation": e.activation, "verdict": e.verdict, "code": effect_code(e),
                                   "floor": _num(e.floor), "correct_floor": _num(e.correct_floor),
                                   "attenuation": _num(e.attenuation), "minimiser_right": e.minimiser_right,
                                   "effect": e.describe()} for e in effects]})
    worst = [f"{e['activation']}: {e['effect']}" for t in table for e in t["effects"] if e["verdict"] == "wrong"]
    if broken:
        return {"status": "fail", "code": "A001", "message": "; ".join(broken), "compat": table}
    n_warn = sum(e["verdict"] == "warn" for t in table for e in t["effects"])
    return {"status": "pass", "code": "", "compat": table,
            "message": f"documented pairing trains; {n_warn} activations degrade it, {len(worst)} break it"}


def _num(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def markdown(rows) -> str:
    """The compatibility table: loss (and setting) x activation -> verdict and measured effect."""
    head = "| loss | setting | " + " | ".join(ACTIVATIONS) + " |"
    lines = [head, "|" + " --- |" * (len(ACTIVATIONS) + 2)]
    for r in rows:
        for t in r.get("compat") or ():
            setting = ", ".join(f"{k}={v}" for k, v in t["params"].items()) or "default"
            cells = []
            for e in t["effects"]:
                mark = {"ok": "ok", "warn": "warn", "wrong": "**wrong**"}[e["verdict"]]
                text = "documented" if e["activation"] == t["expects"] else e["effect"]
                cells.append(f"{mark}: {text}".replace("|", "\\|"))
            lines.append(f"| `{r['id']}` | {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
