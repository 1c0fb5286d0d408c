#!/usr/bin/env python3
# losscheck reproducer: optax.losses.sigmoid_focal_loss [jax, gradient, float32, cpu] xfail G006
# the value agrees but the gradient of 'labels' does not: the backward is not the derivative of the
# forward; error 6,359 eps, bound 106 eps
# known: the gradient with respect to labels is wrong at labels exactly 0 or 1 (gamma != 0): log(1 -
# p_t) is jax.scipy.special.logsumexp([log_sigmoid(x), log_sigmoid(-x)], b=[1 - y, y]), which replaces
# a by -inf where b == 0 (jax/_src/ops/special.py), so d/db is lost there and with it the sigmoid(-x)
# (y = 0) or sigmoid(x) (y = 1) part of d(1 - p_t)/dy. Verified (jax 0.10.2, optax 0.2.8): x = -2, y =
# 0, gamma = 2 gives 0.02481, the derivative is 0.05146 (central differences of optax's own value
# agree); gamma = 0 is right (https://github.com/jax-ml/jax/blob/main/jax/_src/ops/special.py)
#
# Needs NumPy and jax; not losscheck.
# Prints the framework's result next to the oracle's, which losscheck computed when it wrote
# this script (oracle: classification.sigmoid_focal_loss).
# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could
# not be called as losscheck calls it.
# Replay the whole check: losscheck check optax.losses.sigmoid_focal_loss --runtime jax --property gradient --dtype float32 --seed 0 --examples 5

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_ID = 'optax.losses.sigmoid_focal_loss'
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
INPUTS = json.loads('{"logits": [[-0.0, -0.0, -0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0], [837.1237182617188, -0.0, -0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0]], "labels": [[0.0, 0.4770411252975464, 1.1920928955078125e-07, 0.34551140666007996, 0.4770411252975464, 0.0], [0.4770411252975464, 0.4770411252975464, 0.4770411252975464, 0.4770411252975464, 0.988264262676239, 0.7702510952949524], [0.5576555728912354, 0.4770411252975464, 0.10257015377283096, 0.4770411252975464, 0.0, 0.4770411252975464], [0.9009328484535217, 0.4770411252975464, 0.0, 0.4770411252975464, 0.4770411252975464, 0.6124373078346252], [0.7468819618225098, 6.103515625e-05, 0.18606342375278473, 0.7130339741706848, 0.4770411252975464, 0.8510814309120178], [0.0, 0.3454432487487793, 0.5106821060180664, 0.07352353632450104, 0.4770411252975464, 1.6969443506913872e-16]]}')
SHAPES = json.loads('{"logits": [6, 6], "labels": [6, 6]}')
PARAMS = json.loads('{"alpha": 0.25, "gamma": 1.1}')
ARRAY_PARAMS = json.loads('[]')
EXPECTED_VALUE = json.loads('[[0.24252344529493103, 0.16539434045857646, 0.24252342602089924, 0.186660367473664, 0.16539434045857646, 0.24252344529493103], [0.16539434045857646, 0.16539434045857646, 0.16539434045857646, 0.16539434045857646, 0.08273860939753355, 0.11798747904618032], [71.13224148949824, 0.16539434045857646, 0.2259396672433191, 0.16539434045857646, 0.24252344529493103, 0.16539434045857646], [0.09685855303738165, 0.16539434045857646, 0.24252344529493103, 0.16539434045857646, 0.16539434045857646, 0.14350317467946064], [0.12176585422170955, 0.2425135769906791, 0.21244028358033365, 0.12723847460945678, 0.16539434045857646, 0.10491864472738278], [0.24252344529493103, 0.18667138740131245, 0.15995518942694922, 0.23063599106847432, 0.16539434045857646, 0.24252344529493094]]')
EXPECTED_SHAPE = json.loads('[6, 6]')
SCALE = json.loads('[[1.4702891466215864, 1.0026968872768327, 1.4702890297735034, 1.131621365790738, 1.0026968872768327, 1.4702891466215864], [1.0026968872768327, 1.0026968872768327, 1.0026968872768327, 1.0026968872768327, 0.5015996670170139, 0.7152945962312146], [640.7036469796303, 1.0026968872768327, 1.3697506240485862, 1.0026968872768327, 1.4702891466215864, 1.0026968872768327], [0.5872012873441975, 1.0026968872768327, 1.4702891466215864, 1.0026968872768327, 1.0026968872768327, 0.8699825288246578], [0.7382008517715369, 1.4702293204030552, 1.2879111249369382, 0.7713784043578434, 1.0026968872768327, 0.6360652861141802], [1.4702891466215864, 1.1316881736822324, 0.9697222413867749, 1.3982219083021519, 1.0026968872768327, 1.470289146621586]]')
VALUE_BOUND = json.loads('105.6756269250316')
GRAD_BOUND = json.loads('105.6756269250316')
COTANGENT = json.loads('[[1.4207354924039484, 1.454648713412841, 1.0705600040299337, 0.6215987523460359, 0.5205378626684307, 0.8602922509005371], [1.3284932993593945, 1.494679123311691, 1.2060592426208783, 0.7279894445553151, 0.5000048967246482, 0.7317135409997826], [1.2100835184133205, 1.4953036778474351, 1.3251439200785584, 0.8560483416674673, 0.5193012540602215, 0.624506376614162], [1.0749386048314762, 1.4564726253638138, 1.418327819268028, 0.995574345354798, 0.5768897979124147, 0.547210818996688], [0.9338241249511134, 1.3812792252398014, 1.4781879642022515, 1.1354528941539346, 0.6681830578935162, 0.5059841879535691], [0.7979811773384675, 1.2757133406208454, 1.4999559300536336, 1.2645413430600119, 0.7859086652519245, 0.5041105732784421]]')
EXPECTED_GRADS = json.loads('{"logits": [[0.4380576203076105, 0.014045061514954625, 0.3300873534789861, 0.04557775666513342, 0.005025946288357384, 0.2652552696919727], [0.012826993857459397, 0.014431566905784768, 0.011644857000249755, 0.007028952376432075, -0.051360789300445554, -0.059325137418237146], [0.10282345509571045, 0.014437597163669774, 0.3025591475057407, 0.008265398723163878, 0.16011697658898177, 0.006029792894429199], [-0.10614206988368845, 0.014062671921723674, 0.43731525864350135, 0.009612563359309389, 0.005570040810760382, -0.02245023537925255], [-0.07137962223498627, 0.4258226908343225, 0.2506702117644224, -0.07825835610063969, 0.006451504108745928, -0.04739055044619445], [0.24604279787765432, 0.09358647915330802, -0.0065167039807770095, 0.31626378026137564, 0.007588179501222609, 0.15543320996972215]], "labels": [[-0.22970777764706388, -0.23519094511381394, -0.17309060038152982, -0.1005015140066608, -0.08416175724053832, -0.1390940270992863], [-0.21479384800791368, -0.24166315373063887, -0.19499842850014032, -0.11770300548793211, -0.0808419401453319, -0.11830512595481403], [-499.9820652675711, -0.24176413314249437, -0.2142523126727218, -0.13840786210680428, -0.08396181952044214, -0.10097162537674687], [-0.17379854261617067, -0.23548583938732362, -0.22931849952435224, -0.1609667468551274, -0.09327286756347687, -0.0884743020838251], [-0.15098282938844546, -0.2233283977463131, -0.2389968252478868, -0.1835826319068752, -0.10803337152535859, -0.08180868568483836], [-0.12901942960575363, -0.20626026305071551, -0.24251631996477985, -0.2044539488245289, -0.12706751812269157, -0.08150575536072704]]}')
GRAD_MAGNITUDE = json.loads('{"logits": 0.4380576203076105, "labels": 499.9820652675711}')
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

    return partial(_optax_fn, 'sigmoid_focal_loss')


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
