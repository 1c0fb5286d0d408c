#!/usr/bin/env python3
# losscheck reproducer: keras.losses.tversky [keras-torch, batch, float64, cpu] xfail V007
# disagrees where the documented clipping acts (1e-7 (keras.config.epsilon()) is added to the
# denominator: an empty target and prediction give loss 1 where the documented formula is 0/0; the
# value matches neither it nor the exact loss): a different epsilon or clamp; framework 0.310763,
# oracle 0.82648137; error 3,061,781 eps, bound 104 eps
# known: Keras 3.15 applies alpha to the false negatives and beta to the false positives, the reverse
# of its docstring (and of Salehi et al. 2017): tversky() sets inputs = y_true, targets = y_pred, so
# its fp = sum((1 - y_pred) y_true). Verified on TensorFlow in float64 over 150 random cases: Keras
# equals the reference with alpha and beta exchanged to 2e-16 (values and both gradients); e.g.
# y_true=[1, 0], y_pred=[0, 1], alpha=1, beta=0 gives 0 (documented: 1). Fixed upstream by keras-
# team/keras#23333 (https://github.com/keras-team/keras/pull/23333)
#
# Needs NumPy and keras with torch; not losscheck.
# Prints the framework's result next to the oracle's, which losscheck computed when it wrote
# this script (oracle: segmentation.tversky(epsilon=1e-7)).
# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could
# not be called as losscheck calls it.
# Replay the whole check: losscheck check keras.losses.tversky --runtime keras-torch --property batch --dtype float64 --seed 0 --examples 5

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_ID = 'keras.losses.tversky'
RUNTIME = 'keras-torch'
PROPERTY = 'batch'
DTYPE = 'float64'
DEVICE_NAME = 'cpu'
KERAS_BACKEND = 'torch'
ORDER = ['y_true', 'y_pred']
KIND = {'y_true': 'float', 'y_pred': 'float'}
GRAD_ARGS = []
UNAVAILABLE = ''
EPS = 2.220446049250313e-16
TINY = 2.2250738585072014e-308
INPUTS = json.loads('{"y_true": [[1.0, 1.0, 1.0, 1.0]], "y_pred": [[0.09520071471023075, 0.09520071471023075, 0.4084723929670563, 0.09520071471023075]]}')
SHAPES = json.loads('{"y_true": [1, 4], "y_pred": [1, 4]}')
PARAMS = json.loads('{"alpha": 0.09466155578303506, "beta": 1.0, "axis": 1}')
ARRAY_PARAMS = json.loads('[]')
EXPECTED_VALUE = json.loads('[0.8264813700635286]')
EXPECTED_SHAPE = json.loads('[1]')
SCALE = json.loads('[1.4129549653397586]')
VALUE_BOUND = json.loads('82.5754247590989')
GRAD_BOUND = json.loads('82.5754247590989')
COTANGENT = json.loads('null')
EXPECTED_GRADS = json.loads('{}')
GRAD_MAGNITUDE = json.loads('{}')
KINKS = json.loads('{}')
TILES = json.loads('2')
BATCH_AXES = json.loads('{"y_true": 0, "y_pred": 0}')
EXPECTED_TILED_VALUE = json.loads('[0.8264813700635286, 0.8264813700635286]')
TILED_SCALE = json.loads('[1.4129549653397586, 1.4129549653397586]')

if KERAS_BACKEND:
    os.environ["KERAS_BACKEND"] = KERAS_BACKEND  # before keras is imported

import numpy as np
import torch

DEVICE = torch.device(DEVICE_NAME)
FLOAT = getattr(torch, DTYPE)


def tensor(x, kind, requires_grad=False):
    if kind == "float":
        return torch.as_tensor(np.asarray(x, dtype=np.float64), device=DEVICE).to(FLOAT).requires_grad_(requires_grad)
    if kind == "bool":
        return torch.as_tensor(np.asarray(x, dtype=bool), device=DEVICE)
    return torch.as_tensor(np.asarray(x, dtype=np.int64), device=DEVICE)


def evaluate(params, inputs, grad_names=(), cotangent=None):
    """(value, {input: gradient or None}) as float64 NumPy."""
    leaves = {n: tensor(inputs[n], "float", requires_grad=True) for n in grad_names}
    others = {n: tensor(x, kind_of(n, x)) for n, x in inputs.items() if n not in leaves}
    out = call_in_order(make_loss(params), {**leaves, **others})
    if not isinstance(out, torch.Tensor):
        return np.asarray(out, dtype=np.float64), {n: None for n in leaves}
    value = out.detach().to(torch.float64).cpu().numpy()
    grads = {}
    if leaves:
        gs = [None] * len(leaves)
        if out.requires_grad:
            cot = torch.as_tensor(np.broadcast_to(cotangent, tuple(out.shape)).copy(), device=out.device)
            gs = torch.autograd.grad(out, list(leaves.values()), grad_outputs=cot.to(out.dtype), allow_unused=True)
        grads = {n: None if g is None else g.detach().to(torch.float64).cpu().numpy() for n, g in zip(leaves, gs)}
    return value, grads

class Namespace:
    """What the catalog's build(ns, params) receives: modules imported on first use."""
    MODULES = {"torch": "torch", "F": "torch.nn.functional", "keras": "keras", "optax": "optax", "jax": "jax",
               "jnp": "jax.numpy", "tf": "tensorflow"}

    def __getattr__(self, name):
        import importlib

        if name not in self.MODULES:
            raise AttributeError(name)
        module = importlib.import_module(self.MODULES[name])
        setattr(self, name, module)
        return module


NS = Namespace()


def call_in_order(fn, tensors):
    """Positionally in the spec's argument order; after the first absent argument, by keyword."""
    positional, keywords, in_order = [], {}, True
    for name in ORDER:
        if name not in tensors:
            in_order = False
        elif in_order:
            positional.append(tensors[name])
        else:
            keywords[name] = tensors[name]
    return fn(*positional, **keywords)


def kind_of(name, x):
    if name in KIND:
        return KIND[name]
    x = np.asarray(x)
    return "bool" if x.dtype == bool else "int" if np.issubdtype(x.dtype, np.integer) else "float"


def make_loss(params):
    if KERAS_BACKEND:
        NS.keras.config.set_floatx(DTYPE)
    return build(NS, {k: tensor(v, kind_of(k, v)) if isinstance(v, np.ndarray) else v for k, v in params.items()})

# ---- the loss, built as the losscheck catalog builds it ----------------------------------------

def _catalog_build():
    from functools import partial
    def _keras_function(name, ns, params):
        return partial(getattr(ns.keras.losses, name), **params)

    return partial(_keras_function, 'tversky')


build = _catalog_build()

# ---- run it -----------------------------------------------------------------------------------------

np.set_printoptions(precision=17, threshold=40, linewidth=110)


def as_tuples(v):
    """JSON lists back to the tuples the catalog drew (array parameters are in ARRAY_PARAMS)."""
    return tuple(as_tuples(x) for x in v) if isinstance(v, list) else v


def as_array(x, shape):
    return np.reshape(np.asarray(x, dtype=np.float64 if not np.size(x) else None), shape)


def value_error(actual, expected, scale):
    """Largest error in eps units (scale: the oracle's magnitude of the summands); NaN-oracle ignored."""
    a, e, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (actual, expected, scale)))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - e) / (EPS * np.maximum(np.where(np.isfinite(s), s, 0.0), TINY / EPS))
    err = np.where(np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e)), 0.0, err)
    err = np.where(np.isfinite(e) & ~np.isfinite(a), np.inf, err)
    err = np.where(np.isnan(e), np.nan, err)
    return float(np.nanmax(err)) if np.any(~np.isnan(err)) else 0.0


def grad_error(actual, expected, magnitude, skip):
    keep = ~np.isnan(expected) & ~skip
    a, e = actual[keep], expected[keep]
    if not keep.any():
        return 0.0
    if not np.all(np.isfinite(a[np.isfinite(e)])):
        return float("inf")
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0
    return float(np.max(np.abs(a[finite] - e[finite])) / (EPS * max(magnitude, TINY / EPS)))


def show(label, framework, expected):
    print(f"framework {label}: {np.asarray(framework)!r}".replace("\n", "\n    "))
    print(f"expected  {label}: {np.asarray(expected)!r}".replace("\n", "\n    "))


def compare_value(label, value, expected, scale):
    show(label, value, expected)
    if np.shape(value) != np.shape(expected):
        print(f"  shape {np.shape(value)} where {np.shape(expected)} is expected")
        return True
    err = value_error(value, expected, scale)
    print(f"  error {err:,.1f} eps (losscheck's bound {VALUE_BOUND:,.0f} eps)")
    return not err <= VALUE_BOUND


def main():
    inputs = {k: as_array(v, SHAPES.get(k, np.shape(v))) for k, v in INPUTS.items()}
    params = {k: np.asarray(v) if k in ARRAY_PARAMS else as_tuples(v) for k, v in PARAMS.items()}
    expected = as_array(EXPECTED_VALUE, EXPECTED_SHAPE)
    print(f"{SPEC_ID} on {RUNTIME} ({DTYPE}, {DEVICE_NAME}), property {PROPERTY}")
    print("inputs:", {k: np.asarray(v).tolist() for k, v in inputs.items()})
    print("params:", PARAMS)
    if UNAVAILABLE:
        print(f"cannot call the loss as losscheck does: {UNAVAILABLE}")
        show("value", np.array(np.nan), expected)
        return 2
    reproduced = False
    try:
        value, _ = evaluate(params, inputs)
    except Exception as exc:  # the loss raised on valid inputs: that is the finding
        print(f"framework raised {type(exc).__name__}: {exc}")
        show("value", np.array(np.nan), expected)
        return 1
    reproduced |= compare_value("value", value, expected, np.asarray(SCALE))
    if GRAD_ARGS and PROPERTY in ("gradient", "numerics"):
        cot = np.asarray(COTANGENT, dtype=np.float64)
        try:
            _, grads = evaluate(params, inputs, GRAD_ARGS, cot)
        except Exception as exc:
            print(f"framework raised {type(exc).__name__} computing the gradient: {exc}")
            return 1
        for name in GRAD_ARGS:
            want = as_array(EXPECTED_GRADS[name], np.shape(inputs[name]))
            got = grads.get(name)
            if got is None:
                print(f"framework gradient d/d{name}: None (no gradient reaches it)")
                print(f"expected  gradient d/d{name}: {want!r}")
                reproduced |= bool(np.any(want != 0))
                continue
            show(f"gradient d/d{name}", got, want)
            if np.shape(got) != np.shape(want):
                reproduced = True
                continue
            skip = np.zeros(np.shape(want), bool)
            if name in KINKS:
                skip |= np.broadcast_to(np.asarray(KINKS[name], dtype=bool), np.shape(want))
            err = grad_error(np.asarray(got, dtype=np.float64), want, GRAD_MAGNITUDE[name], skip)
            print(f"  error {err:,.1f} eps (losscheck's bound {GRAD_BOUND:,.0f} eps)"
                  + (f"; {int(skip.sum())} elements at non-differentiable points not compared" if skip.any() else ""))
            reproduced |= not err <= GRAD_BOUND
    if PROPERTY == "batch" and TILES:
        tiled = {k: np.concatenate([x] * TILES, axis=BATCH_AXES[k]) if k in BATCH_AXES else x
                 for k, x in inputs.items()}
        tiled_params = {k: np.concatenate([v] * TILES, axis=BATCH_AXES[k]) if k in BATCH_AXES else v
                        for k, v in params.items()}
        print(f"the batch repeated {TILES} times:")
        got, _ = evaluate(tiled_params, tiled)
        want = as_array(EXPECTED_TILED_VALUE, np.shape(EXPECTED_TILED_VALUE))
        reproduced |= compare_value("value", got, want, np.asarray(TILED_SCALE))
    print("REPRODUCED: the framework disagrees with the oracle" if reproduced
          else "not reproduced: the framework agrees with the oracle on this input")
    return 1 if reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
