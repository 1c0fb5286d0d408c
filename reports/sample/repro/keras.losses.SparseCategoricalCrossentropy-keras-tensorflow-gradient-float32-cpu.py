#!/usr/bin/env python3
# losscheck reproducer: keras.losses.SparseCategoricalCrossentropy [keras-tensorflow, gradient, float32, cpu] xfail X001
# ValueError: Only axis=-1 is currently supported. Received: axis=1
# known: sparse_categorical_crossentropy documents `axis` (the class axis), but the TensorFlow backend
# raises ValueError 'Only axis=-1 is currently supported' for a class axis other than the last; the
# torch backend honours it (verified with y_pred of shape (2, 4, 3), axis=1)
# (https://github.com/keras-team/keras/blob/master/keras/src/losses/losses.py)
#
# Needs NumPy and keras with tensorflow; not losscheck.
# Prints the framework's result next to the oracle's, which losscheck computed when it wrote
# this script (oracle: classification.sparse_categorical_cross_entropy).
# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could
# not be called as losscheck calls it.
# Replay the whole check: losscheck check keras.losses.SparseCategoricalCrossentropy --runtime keras-tensorflow --property gradient --dtype float32 --seed 0 --examples 5

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_ID = 'keras.losses.SparseCategoricalCrossentropy'
RUNTIME = 'keras-tensorflow'
PROPERTY = 'gradient'
DTYPE = 'float32'
DEVICE_NAME = 'cpu'
KERAS_BACKEND = 'tensorflow'
ORDER = ['y_true', 'y_pred', 'sample_weight']
KIND = {'y_true': 'int', 'y_pred': 'float', 'sample_weight': 'float'}
GRAD_ARGS = ['y_pred']
UNAVAILABLE = ''
EPS = 1.1920928955078125e-07
TINY = 1.1754943508222875e-38
INPUTS = json.loads('{"y_true": [[0, 2]], "y_pred": [[[0.0, 5.365879881354122e-36], [-0.0, -39.529266357421875], [-29.57201385498047, 0.5], [-0.0, 27.100608825683594], [52.42327117919922, -39.529266357421875]]]}')
SHAPES = json.loads('{"y_true": [1, 2], "y_pred": [1, 5, 2]}')
PARAMS = json.loads('{"from_logits": true, "ignore_class": 0, "axis": 1, "reduction": "sum_over_batch_size"}')
ARRAY_PARAMS = json.loads('[]')
EXPECTED_VALUE = json.loads('26.600608825688095')
EXPECTED_SHAPE = json.loads('[]')
SCALE = json.loads('28.600608825688095')
VALUE_BOUND = json.loads('91.67545294909837')
GRAD_BOUND = json.loads('91.67545294909837')
COTANGENT = json.loads('1.4207354924039484')
EXPECTED_GRADS = json.loads('{"y_pred": [[[-0.0, 2.414728793957729e-12], [0.0, 1.6425784021081876e-29], [0.0, -1.420735492399967], [0.0, 1.4207354923975524], [0.0, 1.6425784021081876e-29]]]}')
GRAD_MAGNITUDE = json.loads('{"y_pred": 1.4207354924079296}')
KINKS = json.loads('{}')
TILES = json.loads('null')
BATCH_AXES = json.loads('{}')
EXPECTED_TILED_VALUE = json.loads('null')
TILED_SCALE = json.loads('null')

if KERAS_BACKEND:
    os.environ["KERAS_BACKEND"] = KERAS_BACKEND  # before keras is imported

import numpy as np
import tensorflow as tf

DEVICE = "/GPU:0" if DEVICE_NAME.startswith("cuda") else "/CPU:0"
FLOAT = getattr(tf, DTYPE)


def tensor(x, kind):
    if kind == "float":
        return tf.cast(tf.constant(np.asarray(x, dtype=np.float64)), FLOAT)
    if kind == "bool":
        return tf.constant(np.asarray(x, dtype=bool))
    return tf.constant(np.asarray(x, dtype=np.int64))


def evaluate(params, inputs, grad_names=(), cotangent=None):
    """(value, {input: gradient or None}) as float64 NumPy."""
    with tf.device(DEVICE):
        leaves = {n: tensor(inputs[n], "float") for n in grad_names}
        others = {n: tensor(x, kind_of(n, x)) for n, x in inputs.items() if n not in leaves}
        fn = make_loss(params)
        with tf.GradientTape() as tape:
            for t in leaves.values():
                tape.watch(t)
            out = call_in_order(fn, {**leaves, **others})
        if not tf.is_tensor(out):
            return np.asarray(out, dtype=np.float64), {n: None for n in leaves}
        value = np.asarray(tf.cast(out, tf.float64).numpy())
        grads = {}
        if leaves:
            cot = tf.cast(tf.constant(np.broadcast_to(cotangent, tuple(out.shape)).copy()), out.dtype)
            gs = tape.gradient(out, list(leaves.values()), output_gradients=cot)
            grads = {n: None if g is None else np.asarray(tf.cast(tf.convert_to_tensor(g), tf.float64).numpy())
                     for n, g in zip(leaves, gs)}
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
    def _keras_class(name, ns, params):
        return getattr(ns.keras.losses, name)(**params)

    from functools import partial
    return partial(_keras_class, 'SparseCategoricalCrossentropy')


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
