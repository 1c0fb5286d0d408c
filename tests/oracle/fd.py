"""Float64 finite-difference verification of the oracle's analytic gradients.

A case is a reference function plus a generator of inputs and keyword arguments. For each draw the
analytic VJP (with a random cotangent) is compared, coordinate by coordinate, with a sixth-order
central difference of ``sum(cotangent * value)``. Coordinates within ``KINK_GAP`` of a
non-differentiable point (as the reference itself reports) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

STEP = 1e-5          # relative step; truncation error O(STEP^6), rounding O(eps / STEP)
KINK_GAP = 1e-3      # skip coordinates this close (relative) to a kink
RTOL = 1e-6          # normwise relative error allowed between analytic and numerical gradients
_STENCIL = ((1, 45.0), (2, -9.0), (3, 1.0))  # sixth-order central difference weights / 60


@dataclass(frozen=True)
class OracleCase:
    """``make(rng) -> (inputs, kwargs)``; ``inputs`` are the differentiable arrays (by name),
    ``kwargs`` everything else (integer labels, masks, parameters)."""
    name: str
    fn: Callable
    make: Callable[[np.random.Generator], tuple[dict, dict]]
    draws: int = 6
    skip: tuple[str, ...] = field(default=())  # inputs whose gradient is not defined by the loss


def _objective(case, inputs, kwargs, cot):
    def f(name, flat_index, delta):
        moved = dict(inputs)
        arr = np.array(inputs[name], dtype=np.float64, copy=True)
        arr.reshape(-1)[flat_index] += delta
        moved[name] = arr
        return float(np.sum(cot * case.fn(**moved, **kwargs).value))
    return f


def check_case(case: OracleCase, seed: int = 0) -> list[str]:
    """Returns a list of failure descriptions (empty when every gradient agrees)."""
    rng = np.random.default_rng(seed)
    failures = []
    for draw in range(case.draws):
        inputs, kwargs = case.make(rng)
        res = case.fn(**inputs, **kwargs)
        value = np.asarray(res.value)
        assert res.scale.shape == value.shape, f"{case.name}: scale shape {res.scale.shape} != value {value.shape}"
        finite = np.isfinite(value)
        assert np.all(res.scale[finite] >= np.abs(value[finite]) * (1 - 1e-12) - 1e-300), (
            f"{case.name}: scale smaller than |value|")
        cot = rng.uniform(0.5, 1.5, size=value.shape) * rng.choice([-1.0, 1.0], size=value.shape)
        grads = res.grad(cot)
        mags = res.grad_magnitude(cot)
        kinks = res.kinks(KINK_GAP, {k: np.shape(v) for k, v in inputs.items()})
        f = _objective(case, inputs, kwargs, cot)
        for name, x in inputs.items():
            if name in case.skip:
                continue
            if name not in grads:
                failures.append(f"{case.name}[{draw}]: no gradient for {name!r}")
                continue
            g = np.asarray(grads[name])
            if g.shape != np.shape(x):
                failures.append(f"{case.name}[{draw}]: gradient of {name!r} has shape {g.shape}, input {np.shape(x)}")
                continue
            assert np.all(mags[name] >= np.abs(g) * (1 - 1e-9) - 1e-300), f"{case.name}: grad_scale < |grad|"
            skip = kinks.get(name, np.zeros(np.shape(x), bool))
            flat_x = np.asarray(x, dtype=np.float64).reshape(-1)
            numeric = np.full(flat_x.shape, np.nan)
            for i in range(flat_x.size):
                if np.asarray(skip).reshape(-1)[i]:
                    continue
                h = STEP * max(abs(flat_x[i]), 1e-2)
                numeric[i] = sum(w * (f(name, i, k * h) - f(name, i, -k * h)) for k, w in _STENCIL) / (60.0 * h)
            ok = ~np.isnan(numeric)
            if not ok.any():
                continue
            analytic = g.reshape(-1)[ok]
            denom = max(np.max(np.abs(analytic)), np.max(np.abs(numeric[ok])), 1e-300)
            err = np.max(np.abs(analytic - numeric[ok])) / denom
            if not err < RTOL:
                worst = int(np.flatnonzero(ok)[np.argmax(np.abs(analytic - numeric[ok]))])
                failures.append(
                    f"{case.name}[{draw}] d/d{name}: relative error {err:.2e} at flat index {worst} "
                    f"(analytic {g.reshape(-1)[worst]:.12g}, numeric {numeric[worst]:.12g}); kwargs={kwargs}")
    return failures


# ---- input generators shared by the family case files --------------------------------------------

def reals(rng, shape, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, size=shape)


def away_from(rng, shape, points, lo=-3.0, hi=3.0, gap=0.05):
    """Uniform reals that stay at least ``gap`` from each of ``points`` (kinks under test)."""
    x = rng.uniform(lo, hi, size=shape)
    for p in np.atleast_1d(points):
        near = np.abs(x - p) < gap
        x = np.where(near, x + np.sign(x - p + 1e-12) * 2 * gap, x)
    return x


def probs(rng, shape, lo=0.02, hi=0.98):
    return rng.uniform(lo, hi, size=shape)


def simplex(rng, shape, axis=-1, floor=0.01):
    x = rng.uniform(floor, 1.0, size=shape)
    return x / x.sum(axis=axis, keepdims=True)


def labels(rng, shape, num_classes):
    return rng.integers(0, num_classes, size=shape)


def batch_shape(rng, max_n=4, max_d=4, rank=2):
    return tuple(int(rng.integers(1, max_n + 1)) if i == 0 else int(rng.integers(1, max_d + 1)) for i in range(rank))


def reject(rng, draw, ok, tries=200):
    """Redraw ``draw(rng)`` (a tuple) until ``ok(*x)``: inputs away from the kinks under test."""
    for _ in range(tries):
        x = draw(rng)
        if ok(*x):
            return x
    raise RuntimeError("no kink-free draw")
