#!/usr/bin/env python3
# losscheck reproducer: optax.losses.make_fenchel_young_loss [jax, gradient, float32, cpu] xfail X001
# TypeError: Custom JVP rule must produce primal and tangent outputs with corresponding shapes and
# dtypes. Expected float64[5] (tangent type of float64[5]) but got float32[5].
# known: optax.projections.projection_simplex (sparsemax) returns float64 for float32 input when
# jax_enable_x64 is on (its `s = 1` scale promotes), and its custom JVP then returns a float32 tangent
# for a float64 primal, which JAX rejects. Verified (jax 0.10.2, optax 0.2.8): with x64 on, jax.grad
# of projection_simplex(float32[2])[0] raises TypeError 'Custom JVP rule must produce primal and
# tangent outputs with corresponding shapes and dtypes'; with x64 off it returns [0.5, -0.5]
# (https://github.com/google-deepmind/optax/blob/main/optax/projections/_projections.py)
#
# Needs NumPy and jax; not losscheck.
# Prints the framework's result next to the oracle's, which losscheck computed when it wrote
# this script (oracle: structured.fenchel_young_loss).
# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could
# not be called as losscheck calls it.
# Replay the whole check: losscheck check optax.losses.make_fenchel_young_loss --runtime jax --property gradient --dtype float32 --seed 0 --examples 5

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_ID = 'optax.losses.make_fenchel_young_loss'
RUNTIME = 'jax'
PROPERTY = 'gradient'
DTYPE = 'float32'
DEVICE_NAME = 'cpu'
KERAS_BACKEND = None
ORDER = ['scores', 'targets']
KIND = {'scores': 'float', 'targets': 'float'}
GRAD_ARGS = ['scores', 'targets']
UNAVAILABLE = ''
EPS = 1.1920928955078125e-07
TINY = 1.1754943508222875e-38
INPUTS = json.loads('{"scores": [[-0.5, 0.1310514360666275, -0.0, -0.920322835445404, -2.6684439182281494], [-0.0, -0.8274991512298584, -2.970616340637207, -2.9716908931732178, -0.0]], "targets": [[0.25694069266319275, 0.20657354593276978, 0.22710350155830383, 0.06017651408910751, 0.24920573830604553], [0.0, 0.6644899845123291, 0.3355099558830261, 0.0, 7.383221856116506e-08]]}')
SHAPES = json.loads('{"scores": [2, 5], "targets": [2, 5]}')
PARAMS = json.loads('{"max_fun": "sparsemax"}')
ARRAY_PARAMS = json.loads('[]')
EXPECTED_VALUE = json.loads('[1.1415912810848572, 1.79653625557728]')
EXPECTED_SHAPE = json.loads('[2]')
SCALE = json.loads('[2.1387963221948363, 2.79653625557728]')
VALUE_BOUND = json.loads('91.67545294909837')
GRAD_BOUND = json.loads('91.67545294909837')
COTANGENT = json.loads('[1.4207354924039484, 1.454648713412841]')
EXPECTED_GRADS = json.loads('{"scores": [[-0.3650447615094527, 0.5099760909787332, 0.29461902781369426, -0.0854949093755413, -0.3540554373221291], [0.7273243567064205, -0.9665995010465781, -0.48804912566244296, 0.0, 0.7273242493064788]], "targets": [[0.7103677462019742, -0.18618942655036458, 0.0, 1.307535316787124, 3.791152984116191], [0.0, 1.2037205756867315, 4.3212032379510745, 4.3227663344150775, 0.0]]}')
GRAD_MAGNITUDE = json.loads('{"scores": 1.9004112874527364, "targets": 4.3227663344150775}')
KINKS = json.loads('{"scores": [[false, false, false, false, false], [false, false, false, false, false]]}')
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
    def _gini_max(ns, z):
        p = ns.optax.projections.projection_simplex(z)
        return p @ z - 0.5 * p @ p + 0.5

    def _fenchel_young(ns, params):
        max_fun = {'logsumexp': lambda: ns.jax.nn.logsumexp, 'max': lambda: ns.jnp.max, 'sparsemax': lambda: partial(_gini_max, ns)}[params['max_fun']]()
        return ns.optax.losses.make_fenchel_young_loss(max_fun)

    return _fenchel_young


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
