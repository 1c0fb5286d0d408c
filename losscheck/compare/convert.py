"""Input-form conversions between implementations of one mathematical loss.

A comparison draws one canonical input set per example (in the forms of the group's anchor spec)
and maps it onto every implementation's arguments. Where an implementation takes another form of
the same quantity -- probabilities where the canonical input is logits, class indices as one-hot
rows, the class axis second (torch) instead of last -- its argument is a chain of the conversions
below applied to the canonical array, in float64, before the framework rounds it to the tested dtype.

Each conversion ``f`` maps the canonical array ``x`` (with every canonical role at hand in
``roles``, e.g. the number of classes for ``one_hot``) to the implementation's input. Where the
conversion is differentiable, ``pullback(x, g)`` maps a gradient ``g`` with respect to ``f(x)`` back
to the canonical ``x`` (the chain rule: ``J_f(x)^T g``), and ``pullback_abs`` does the same for the
magnitudes of the gradient's summands (``|J_f|^T |g|``, the scale of the error model); ``mask``
maps a mask of non-differentiable points back (an element is near a kink if any element it feeds
is). Conversions without a pullback (``one_hot``, ``float``) leave that role's gradient uncompared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..reference._core import log_softmax, sigmoid, softmax


@dataclass(frozen=True)
class Conversion:
    name: str
    doc: str
    forward: Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]
    pullback: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    pullback_abs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    mask: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    exact: bool = False     # a permutation or an exact cast: the converted input is the same point


def _elementwise_mask(x, m):
    return np.asarray(m, dtype=bool)


def _row_mask(x, m):
    return np.broadcast_to(np.any(np.asarray(m, dtype=bool), axis=-1, keepdims=True), np.shape(x))


def _sigmoid_pullback(x, g):
    s = sigmoid(x)
    return np.asarray(g, dtype=np.float64) * s * sigmoid(-np.asarray(x, dtype=np.float64))


def _softmax_pullback(x, g):
    s, g = softmax(x), np.asarray(g, dtype=np.float64)
    return s * (g - np.sum(g * s, axis=-1, keepdims=True))


def _softmax_pullback_abs(x, g):
    s, g = softmax(x), np.abs(np.asarray(g, dtype=np.float64))
    return s * (g + np.sum(g * s, axis=-1, keepdims=True))


def _log_softmax_pullback(x, g):
    g = np.asarray(g, dtype=np.float64)
    return g - softmax(x) * np.sum(g, axis=-1, keepdims=True)


def _log_softmax_pullback_abs(x, g):
    g = np.abs(np.asarray(g, dtype=np.float64))
    return g + softmax(x) * np.sum(g, axis=-1, keepdims=True)


def _exp_pullback(x, g):
    with np.errstate(over="ignore"):
        return np.asarray(g, dtype=np.float64) * np.exp(np.asarray(x, dtype=np.float64))


def _class_second(x, roles):
    """torch's layout: ``(N, d1, ..., C) -> (N, C, d1, ...)``; 1-D and 2-D arrays are unchanged."""
    x = np.asarray(x)
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def _class_second_back(x, g):
    g = np.asarray(g)
    return np.moveaxis(g, 1, -1) if g.ndim > 2 else g


def _one_hot(x, roles):
    """Class indices -> one-hot float rows; the number of classes is the prediction's last axis."""
    c = int(np.shape(roles["prediction"])[-1])
    return (np.asarray(x)[..., None] == np.arange(c)).astype(np.float64)


CONVERSIONS: dict[str, Conversion] = {c.name: c for c in (
    Conversion("sigmoid", "probabilities = sigmoid(logits)", lambda x, r: sigmoid(x),
               _sigmoid_pullback, _sigmoid_pullback, _elementwise_mask),
    Conversion("softmax", "probabilities = softmax(logits) along the last axis", lambda x, r: softmax(x),
               _softmax_pullback, _softmax_pullback_abs, _row_mask),
    Conversion("log_softmax", "log-probabilities = log_softmax(logits) along the last axis",
               lambda x, r: log_softmax(x), _log_softmax_pullback, _log_softmax_pullback_abs, _row_mask),
    Conversion("exp", "probabilities = exp(log-probabilities)",
               lambda x, r: np.exp(np.asarray(x, dtype=np.float64)), _exp_pullback, _exp_pullback, _elementwise_mask),
    Conversion("class_second", "class axis moved from last to second (torch's (N, C, d1, ...) layout)",
               _class_second, _class_second_back, _class_second_back,
               lambda x, m: _class_second_back(x, m), exact=True),
    Conversion("one_hot", "class indices as one-hot rows", _one_hot),
    Conversion("float", "class indices as integral floats", lambda x, r: np.asarray(x, dtype=np.float64),
               exact=True),
)}


def describe(chain: tuple[str, ...]) -> str:
    return ", then ".join(CONVERSIONS[c].doc for c in chain)


def apply(chain: tuple[str, ...], x, roles: Mapping[str, np.ndarray]):
    """``x`` through the conversions of ``chain`` in order -> (converted array, intermediates)."""
    stages = [np.asarray(x)]
    for name in chain:
        with np.errstate(all="ignore"):
            stages.append(np.asarray(CONVERSIONS[name].forward(stages[-1], roles)))
    return stages[-1], stages[:-1]


def differentiable(chain: tuple[str, ...]) -> bool:
    return all(CONVERSIONS[c].pullback is not None for c in chain)


def is_exact(chain: tuple[str, ...]) -> bool:
    """True when the converted input represents the canonical one exactly (no rounding)."""
    return all(CONVERSIONS[c].exact for c in chain)


def pull(chain: tuple[str, ...], stages, g, kind: str = "grad"):
    """A gradient (``kind="grad"``), magnitude (``"abs"``) or kink mask (``"mask"``) with respect to
    the converted input, mapped back to the canonical input through ``chain``; None when a
    conversion in the chain has no pullback."""
    if g is None or not differentiable(chain):
        return None
    out = np.asarray(g)
    for name, x in zip(reversed(chain), reversed(stages)):
        c = CONVERSIONS[name]
        fn = {"grad": c.pullback, "abs": c.pullback_abs, "mask": c.mask}[kind]
        with np.errstate(all="ignore"):
            out = np.asarray(fn(x, out))
    return out.astype(bool) if kind == "mask" else out.astype(np.float64)
