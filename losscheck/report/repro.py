"""Standalone reproducer scripts for failing checks: NumPy and the framework, not losscheck.

For a row with a smallest input (status ``fail`` or ``xfail``), :func:`script` writes a Python
script that rebuilds the input (``row["input"]``, ``row["shape"]``, ``row["params"]``), builds the
loss exactly as the catalog spec does (the spec's ``call`` is copied into the script as source:
its helper functions, closures and ``functools.partial`` arguments with it), calls it the way the
runtime's engine does (tensor dtypes, device, argument order, the gradient's cotangent, Keras'
backend and ``floatx``) and prints the framework's value (and gradient, for gradient and numerics
checks) next to the oracle's, which losscheck computed when it wrote the script. The script exits
1 while the disagreement reproduces (for ``git bisect run``), 0 once the framework agrees, and 2
when it could not call the loss as the spec does (see :class:`Unreproducible`).
"""
from __future__ import annotations

import ast
import builtins
import copy
import functools
import importlib
import inspect
import json
import math
import re
import textwrap
import types
from typing import Any

import numpy as np

#: packages a reproducer may import (the frameworks and the standard helpers specs use)
IMPORTABLE = {"numpy", "functools", "math", "operator", "itertools", "torch", "jax", "jaxlib", "optax", "keras",
              "tensorflow"}
#: statuses that get a reproducer (when the row has a smallest input)
WITH_REPRO = ("fail", "xfail")
_ENGINE_OF = {"torch": "torch", "keras-torch": "torch", "jax": "jax", "keras-jax": "jax",
              "keras-tensorflow": "tensorflow"}


class Unreproducible(Exception):
    """The spec's call cannot be copied into a standalone script (it uses losscheck's own modules,
    a class instance, or code without source)."""


def filename(row: dict) -> str:
    """A stable file name for the row's reproducer: one per check key."""
    parts = [row["id"], row["runtime"], row["property"], row["dtype"], row["device"]]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(map(str, parts))) + ".py"


def wanted(row: dict) -> bool:
    """Rows with a smallest input; the compiled property's (X010) replay through their command: the
    script's framework calls compare with the oracle, not compiled with eager."""
    return row.get("status") in WITH_REPRO and row.get("input") is not None and row.get("property") != "compiled"


def scripts(rows, specs: dict | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """({file name: script} for every row that gets one, {file name: why not} for those that could
    not be generated). ``specs`` (id -> LossSpec) supplies specs that are not in the catalog."""
    out, skipped = {}, {}
    for row in rows:
        if not wanted(row):
            continue
        name = filename(row)
        try:
            out[name] = script(row, (specs or {}).get(row["id"]))
        except Exception as exc:  # noqa: BLE001 - one unrenderable row must not cost the others
            skipped[name] = f"{type(exc).__name__}: {exc}"
    return out, skipped


# ---- the case and the oracle's answer -------------------------------------------------------------

def array_params(spec, row: dict, draws: int = 40) -> set[str]:
    """Names of the parameters that are arrays in the spec's cases (JSON turned them into lists):
    the row's ``param_arrays`` when the runner recorded it, else found by drawing cases."""
    if row.get("param_arrays") is not None:
        return set(row["param_arrays"])
    if spec.id not in _ARRAY_PARAMS:
        _ARRAY_PARAMS[spec.id] = _drawn_array_params(spec, draws)
    return set(_ARRAY_PARAMS[spec.id])


_ARRAY_PARAMS: dict[str, frozenset] = {}


def _drawn_array_params(spec, draws: int) -> frozenset:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    names: set[str] = set()

    @hseed(0)
    @settings(max_examples=draws, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        case = spec.draw(data)
        names.update(k for k, v in case.params.items() if isinstance(v, np.ndarray))

    from ..strategies import reproducible

    try:
        with reproducible():
            draw()
    except Exception:  # noqa: BLE001 - a draw that fails tells nothing more
        pass
    return frozenset(names)


def _as_params(params: dict, arrays: set[str]) -> dict:
    """JSON params back to what the spec drew: arrays for array parameters, tuples for sequences."""
    def seq(v):
        return tuple(seq(x) for x in v) if isinstance(v, list) else v
    return {k: (np.asarray(v) if k in arrays else seq(v)) for k, v in (params or {}).items()}


def _as_inputs(row: dict) -> dict[str, np.ndarray]:
    shapes = row.get("shape") or {}
    out = {}
    for k, v in row["input"].items():
        x = np.asarray(v, dtype=np.float64 if np.size(np.asarray(v, dtype=object)) == 0 else None)
        out[k] = np.reshape(x, shapes[k]) if k in shapes else x
    return out


def expected(spec, row: dict) -> dict:
    """The oracle's value (and gradient, with its cotangent, magnitude and kinks) on the row's case."""
    from ..catalog.spec import Case
    from ..properties.common import cotangent_for
    from ..tolerance import GRAD_BOUND, VALUE_BOUND, kink_rtol

    arrays = array_params(spec, row)
    case = Case(_as_inputs(row), _as_params(row.get("params") or {}, arrays), dtype=row["dtype"],
                runtime=row["runtime"])
    n_terms = max((int(np.size(v)) for v in case.inputs.values()), default=1)
    with np.errstate(all="ignore"):
        ref = spec.oracle(case)
        out = {"value": np.asarray(ref.value, dtype=np.float64), "scale": np.asarray(ref.scale, dtype=np.float64),
               "value_bound": VALUE_BOUND[row["dtype"]](n_terms), "grad_bound": GRAD_BOUND[row["dtype"]](n_terms),
               "arrays": sorted(arrays), "case": case}
        if row["property"] in ("gradient", "numerics"):
            cot = cotangent_for(np.shape(ref.value))
            g, mags = ref.grad(cot), ref.grad_magnitude(cot)
            shapes = {a.oracle_name: np.shape(case.inputs[a.name]) for a in spec.grad_args if a.name in case.inputs}
            kinks = ref.kinks(kink_rtol(row["dtype"]), shapes)
            out["cotangent"] = cot
            out["grads"] = {a.name: np.asarray(g[a.oracle_name], dtype=np.float64) for a in spec.grad_args
                            if a.name in case.inputs and a.oracle_name in g}
            out["magnitudes"] = {a.name: float(np.max(np.asarray(mags[a.oracle_name]), initial=0.0))
                                 for a in spec.grad_args if a.name in out["grads"]}
            out["kinks"] = {a.name: np.asarray(kinks[a.oracle_name], dtype=bool) for a in spec.grad_args
                            if a.name in out["grads"] and a.oracle_name in kinks}
        if row["property"] == "batch":
            from ..properties.batch import TILES, batch_axes, batch_sizes, tile

            if batch_sizes(spec, case):
                tiled = spec.oracle(tile(spec, case, TILES))
                out["tiles"] = TILES
                out["batch_axes"] = dict(batch_axes(spec, case))
                out["tiled_value"] = np.asarray(tiled.value, dtype=np.float64)
                out["tiled_scale"] = np.asarray(tiled.scale, dtype=np.float64)
    return out


# ---- copying the spec's call as source -----------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _module_ast(path: str) -> ast.Module:
    with open(path) as f:
        return ast.parse(f.read(), path)


def _node_of(fn: types.FunctionType) -> ast.AST:
    """The FunctionDef or Lambda node that defined ``fn``."""
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if not path:
        raise Unreproducible(f"no source for {fn.__qualname__}")
    code = fn.__code__
    params = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    found = []
    for node in ast.walk(_module_ast(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if code.co_firstlineno in (node.lineno, first):
                found.append(node)
        elif isinstance(node, ast.Lambda) and fn.__name__ == "<lambda>" and node.lineno == code.co_firstlineno:
            a = node.args
            if [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)] == params:
                found.append(node)
    if len(found) != 1:
        raise Unreproducible(f"cannot locate the source of {fn.__qualname__} ({len(found)} candidates)")
    if getattr(found[0], "decorator_list", None):
        raise Unreproducible(f"{fn.__qualname__} is decorated")
    return found[0]


def _free_names(node: ast.AST) -> list[str]:
    """Names read in ``node`` and bound nowhere inside it (approximate: any binding counts)."""
    loads, bound = [], set()
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = n.args
            bound.update(x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs))
            bound.update(x.arg for x in (a.vararg, a.kwarg) if x is not None)
            if not isinstance(n, ast.Lambda) and n is not node:
                bound.add(n.name)
        elif isinstance(n, ast.ClassDef):
            bound.add(n.name)
        elif isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                if n.id not in loads:
                    loads.append(n.id)
            else:
                bound.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
    return [n for n in loads if n not in bound and not hasattr(builtins, n)]


class _Source:
    """Python source that binds names to copies of live objects (functions, partials, constants)."""

    def __init__(self):
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}   # name -> the object it is bound to
        self._ids: dict[int, str] = {}
        self._n = 0

    def bind(self, name: str, obj) -> None:
        if name in self.names:
            if self.names[name] is obj or _same_constant(self.names[name], obj):
                return
            raise Unreproducible(f"two different objects are both called {name!r}")
        expr = self.expr(obj, name)
        self.names[name] = obj
        if expr != name:
            self.lines.append(f"{name} = {expr}")

    def expr(self, obj, hint: str = "") -> str:
        """A Python expression for ``obj`` (definitions it needs are emitted first)."""
        if obj is None or isinstance(obj, (bool, int, str, bytes)):
            return repr(obj)
        if isinstance(obj, float):
            return repr(obj) if math.isfinite(obj) else f"float({str(obj)!r})"
        if isinstance(obj, tuple):
            return "(" + "".join(self.expr(x) + ", " for x in obj) + ")"
        if isinstance(obj, list):
            return "[" + ", ".join(self.expr(x) for x in obj) + "]"
        if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
            return "{" + ", ".join(f"{k!r}: {self.expr(v)}" for k, v in obj.items()) + "}"
        if isinstance(obj, np.ndarray):
            return f"np.asarray({obj.tolist()!r}, dtype=np.{obj.dtype.name})"
        if isinstance(obj, (np.floating, np.integer, np.bool_)):
            return self.expr(obj.item())
        if isinstance(obj, functools.partial):
            args = [self.expr(obj.func)] + [self.expr(a) for a in obj.args]
            args += [f"{k}={self.expr(v)}" for k, v in obj.keywords.items()]
            return f"{self._import(functools.partial)}({', '.join(args)})"
        if isinstance(obj, types.ModuleType):
            if obj.__name__.split(".")[0] not in IMPORTABLE:
                raise Unreproducible(f"uses the module {obj.__name__}")
            alias = hint or obj.__name__.replace(".", "_")
            line = f"import {obj.__name__}" + (f" as {alias}" if alias != obj.__name__ else "")
            if line not in self.lines:
                self.lines.append(line)
            return alias
        if isinstance(obj, types.FunctionType) and not _importable(obj):
            return self._function(obj)
        if _importable(obj):
            return self._import(obj)
        raise Unreproducible(f"cannot copy {type(obj).__name__} {obj!r:.80}")

    def _import(self, obj) -> str:
        name = obj.__qualname__
        line = f"from {obj.__module__} import {name}"
        if line not in self.lines:
            self.lines.append(line)
        return name

    def _function(self, fn: types.FunctionType) -> str:
        if id(fn) in self._ids:
            return self._ids[id(fn)]
        module = fn.__module__ or ""
        if module.startswith(("losscheck.reference", "losscheck.strategies")):
            raise Unreproducible(f"the call uses losscheck's {module}.{fn.__name__}")
        node = _without_annotations(_node_of(fn))
        if isinstance(node, ast.Lambda):
            self._n += 1
            name = f"_lambda_{self._n}"
        else:
            name = fn.__name__
            if name in self.names and self.names[name] is not fn:
                self._n += 1
                name = node.name = f"{fn.__name__}_{self._n}"
        self._ids[id(fn)] = name
        self.names[name] = fn
        closure = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in (fn.__closure__ or ()))))
        for free in _free_names(node):
            if free == name:
                continue
            if free in closure:
                self.bind(free, closure[free])
            elif free in fn.__globals__:
                self.bind(free, fn.__globals__[free])
            else:
                raise Unreproducible(f"{fn.__qualname__} reads {free!r}, which is not defined")
        if isinstance(node, ast.Lambda):
            self.lines.append(f"{name} = {ast.unparse(node)}")
        else:
            self.lines.append(ast.unparse(node))
        return name


def _without_annotations(node: ast.AST) -> ast.AST:
    """A copy of ``node`` without annotations (catalog modules postpone them; a script would not)."""
    node = copy.deepcopy(node)
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n.returns = None
        if isinstance(n, ast.arg):
            n.annotation = None
        if isinstance(n, ast.AnnAssign):
            n.annotation = ast.Constant(None)
    return node


def _importable(obj) -> bool:
    """True for functions and classes of :data:`IMPORTABLE` packages reachable by their name."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or "." in name or "<" in name or module.split(".")[0] not in IMPORTABLE:
        return False
    try:
        return getattr(importlib.import_module(module), name) is obj
    except Exception:  # noqa: BLE001
        return False


def _same_constant(a, b) -> bool:
    try:
        return type(a) is type(b) and isinstance(a, (int, float, str, bool, tuple)) and a == b
    except Exception:  # noqa: BLE001
        return False


def call_source(spec) -> str:
    """Source of ``_catalog_build()``, which returns ``build(ns, params) -> loss callable`` as the
    spec's ``call``. Its helpers live in the function's scope, so that none of their names can
    shadow the script's own."""
    src = _Source()
    result = src.expr(spec.call)
    body = "\n".join(line + ("\n" if "\n" in line else "") for line in [*src.lines, f"return {result}"])
    return "def _catalog_build():\n" + textwrap.indent(body, "    ") + "\n\n\nbuild = _catalog_build()"


# ---- the script ------------------------------------------------------------------------------------

def _json(x) -> str:
    from ..runner import to_jsonable

    return json.dumps(to_jsonable(x), allow_nan=True)




def _comment(text: str, width: int = 100) -> str:
    lines = []
    for para in str(text).splitlines() or [""]:
        lines += textwrap.wrap(para, width) or [""]
    return "\n".join(f"# {line}".rstrip() for line in lines)


def script(row: dict, spec=None) -> str:
    """The reproducer of ``row`` (raises ValueError for a row without a smallest input)."""
    from .. import catalog

    if row.get("input") is None:
        raise ValueError("the row has no smallest input to reproduce")
    spec = spec or catalog.get(row["id"])
    ref = expected(spec, row)
    try:
        build, unavailable = call_source(spec), ""
    except Unreproducible as exc:
        build, unavailable = "def build(ns, params):\n    raise NotImplementedError(UNAVAILABLE)", str(exc)
    engine = _ENGINE_OF[row["runtime"]]
    keras_backend = row["runtime"].split("-", 1)[1] if row["runtime"].startswith("keras-") else None
    kinds = {a.name: a.kind for a in spec.args}
    grad_args = [a.name for a in spec.grad_args if a.name in ref.get("grads", {})]
    data = {
        "SPEC_ID": row["id"], "RUNTIME": row["runtime"], "PROPERTY": row["property"], "DTYPE": row["dtype"],
        "DEVICE_NAME": row["device"], "KERAS_BACKEND": keras_backend, "ORDER": [a.name for a in spec.args],
        "KIND": kinds, "GRAD_ARGS": grad_args, "UNAVAILABLE": unavailable,
    }
    blobs = {
        "INPUTS": row["input"], "SHAPES": row.get("shape") or {}, "PARAMS": row.get("params") or {},
        "ARRAY_PARAMS": ref["arrays"], "EXPECTED_VALUE": ref["value"], "EXPECTED_SHAPE": list(np.shape(ref["value"])),
        "SCALE": ref["scale"], "VALUE_BOUND": ref["value_bound"], "GRAD_BOUND": ref["grad_bound"],
        "COTANGENT": ref.get("cotangent"), "EXPECTED_GRADS": ref.get("grads", {}),
        "GRAD_MAGNITUDE": ref.get("magnitudes", {}), "KINKS": ref.get("kinks", {}),
        "TILES": ref.get("tiles"), "BATCH_AXES": ref.get("batch_axes", {}),
        "EXPECTED_TILED_VALUE": ref.get("tiled_value"), "TILED_SCALE": ref.get("tiled_scale"),
    }
    from ..tolerance import EPS, TINY

    header = "\n".join([
        "#!/usr/bin/env python3",
        f"# losscheck reproducer: {row['id']} [{row['runtime']}, {row['property']}, {row['dtype']}, "
        f"{row['device']}] {row.get('status', '')} {row.get('code', '')}".rstrip(),
        _comment(row.get("message") or ""),
        *([_comment(f"known: {row['reason']}")] if row.get("reason") else []),
        "#",
        f"# Needs NumPy and {'keras with ' + keras_backend if keras_backend else engine}; not losscheck.",
        "# Prints the framework's result next to the oracle's, which losscheck computed when it wrote",
        f"# this script (oracle: {spec.reference}).",
        "# Exit status: 1 while the disagreement reproduces, 0 once the framework agrees, 2 if the loss could",
        "# not be called as losscheck calls it.",
        *([f"# Replay the whole check: {row['repro']}"] if row.get("repro") else []),
        *([_comment(f"NOT FAITHFUL: {unavailable}; the expected values are printed, the framework is not "
                    "called.")] if unavailable else []),
    ])
    constants = "\n".join(f"{k} = {v!r}" for k, v in data.items())
    constants += f"\nEPS = {EPS[row['dtype']]!r}\nTINY = {TINY[row['dtype']]!r}\n"
    constants += "\n".join(f"{k} = json.loads({_json(v)!r})" for k, v in blobs.items())
    return "\n\n".join([header, _PRELUDE.strip(), constants, _KERAS_ENV.strip(), _ENGINES[engine].strip(),
                        _NAMESPACE.strip(),
                        "# ---- the loss, built as the losscheck catalog builds it " + "-" * 40 + "\n\n" + build,
                        _MAIN.strip()]) + "\n"


_PRELUDE = '''
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
'''

_KERAS_ENV = '''
if KERAS_BACKEND:
    os.environ["KERAS_BACKEND"] = KERAS_BACKEND  # before keras is imported
'''

_NAMESPACE = '''
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
'''

_ENGINES = {
    "torch": '''
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
''',
    "jax": '''
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
''',
    "tensorflow": '''
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
''',
}

_MAIN = '''
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
    print(f"framework {label}: {np.asarray(framework)!r}".replace("\\n", "\\n    "))
    print(f"expected  {label}: {np.asarray(expected)!r}".replace("\\n", "\\n    "))


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
'''
