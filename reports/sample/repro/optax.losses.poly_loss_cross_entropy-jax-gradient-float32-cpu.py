#!/usr/bin/env python3
# losscheck reproducer: optax.losses.poly_loss_cross_entropy [jax, gradient, float32, cpu] xfail N003
# non-finite gradient for 'labels' where the oracle's is finite; error inf eps, bound 86 eps
# known: the gradient with respect to labels is NaN at every class outside `where`:
# log_softmax(logits, where=...) is -inf there, and the masked sum's backward multiplies its zero
# cotangent by it (0 * -inf); those labels do not enter the loss, so the derivative is 0. Verified:
# logits [[1, 2, 3]], where [[T, F, T]] gives d/dlabels [2.127, nan, 0.127] (value and logits gradient
# agree with the reference) (https://github.com/google-
# deepmind/optax/blob/main/optax/losses/_classification.py)
#
# Needs NumPy and jax; not losscheck.
# Prints the framework's result next to the oracle's, which losscheck computed when it wrote
# this script (oracle: classification.poly_loss_cross_entropy).
# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could
# not be called as losscheck calls it.
# Replay the whole check: losscheck check optax.losses.poly_loss_cross_entropy --runtime jax --property gradient --dtype float32 --seed 0 --examples 5

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_ID = 'optax.losses.poly_loss_cross_entropy'
RUNTIME = 'jax'
PROPERTY = 'gradient'
DTYPE = 'float32'
DEVICE_NAME = 'cpu'
KERAS_BACKEND = None
ORDER = ['logits', 'labels']
KIND = {'logits': 'float', 'labels': 'float'}
GRAD_ARGS = ['logits', 'labels']
UNAVAILABLE = ''
EPS = 1.1920928955078125e-07
TINY = 1.1754943508222875e-38
INPUTS = json.loads('{"logits": [[-5.950814247131348, 0.0, 0.0], [0.5, 1.1920928955078125e-07, -5.507951736450195]], "labels": [[0.0, 0.8867364525794983, 0.11326352506875992], [0.0, 0.5658098459243774, 0.43419015407562256]]}')
SHAPES = json.loads('{"logits": [2, 3], "labels": [2, 3]}')
PARAMS = json.loads('{"epsilon": 2.220446049250313e-16, "axis": -1, "where": [[true, false, false], [true, false, false]]}')
ARRAY_PARAMS = json.loads('["where"]')
EXPECTED_VALUE = json.loads('[0.0, 0.0]')
EXPECTED_SHAPE = json.loads('[2]')
SCALE = json.loads('[0.0, 0.0]')
VALUE_BOUND = json.loads('86.45883937646083')
GRAD_BOUND = json.loads('86.45883937646083')
COTANGENT = json.loads('[1.4207354924039484, 1.454648713412841]')
EXPECTED_GRADS = json.loads('{"logits": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "labels": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]}')
GRAD_MAGNITUDE = json.loads('{"logits": 0.0, "labels": 18.329801511609123}')
KINKS = json.loads('{}')
TILES = json.loads('null')
BATCH_AXES = json.loads('{}')
EXPECTED_TILED_VALUE = json.loads('null')
TILED_SCALE = json.loads('null')

if KERAS_BACKEND:
    os.environ["KERAS_BACKEND"] = KERAS_BACKEND  # before keras is imported

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp

DEVICE = jax.devices("gpu" if DEVICE_NAME.startswith("cuda") else "cpu")[0]
FLOAT = getattr(jnp, DTYPE)
UNTRACEABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
               jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


def tensor(x, kind):
    if kind == "float":
        arr = jnp.asarray(np.asarray(x, dtype=np.float64)).astype(FLOAT)
    elif kind == "bool":
        arr = jnp.asarray(np.asarray(x, dtype=bool))
    else:
        arr = jnp.asarray(np.asarray(x, dtype=np.int64))
    return jax.device_put(arr, DEVICE)


def evaluate(params, inputs, grad_names=(), cotangent=None):
    """(value, {input: gradient or None}) as float64 NumPy; compiled with jit as losscheck does,
    eagerly where the loss cannot be traced."""
    names = list(grad_names)
    xs = [tensor(inputs[n], "float") for n in names]
    others = {n: tensor(x, kind_of(n, x)) for n, x in inputs.items() if n not in names}
    fn = make_loss(params)

    def f(*args):
        return call_in_order(fn, {**dict(zip(names, args)), **others})

    def value_and_grads(*args):
        out, vjp = jax.vjp(f, *args)
        return out, vjp(jnp.broadcast_to(jnp.asarray(cotangent), jnp.shape(out)).astype(out.dtype))

    program = value_and_grads if names else f
    try:
        result = jax.jit(program)(*xs)
    except UNTRACEABLE:
        result = program(*xs)
    except TypeError as exc:
        if "not a valid JAX type" not in str(exc):
            raise
        return np.asarray(f(*xs), dtype=np.float64), {n: None for n in names}
    out, grads = result if names else (result, ())
    return np.asarray(out, dtype=np.float64), {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads)}

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
    def _optax_fn(name, ns, params):
        return partial(getattr(ns.optax.losses, name), **params)

    return partial(_optax_fn, 'poly_loss_cross_entropy')


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
