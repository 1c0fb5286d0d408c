"""Standalone reproducer scripts for failing checks: NumPy and the framework, not losscheck.

For a row with a smallest input (status ``fail`` or ``xfail``), :func:`script` writes a Python
script that rebuilds the input (``row["input"]``, ``row["shape"]``, ``row["params"]``), builds the
loss exactly as the catalog spec does (the spec's ``call`` is copied into the script as source:
its helper functions, closures and ``functools.partial`` arguments with it), calls it the way the
runtime's engine does (tensor dtypes, device and Keras' device scope, argument order, the inputs it
differentiates and the gradient's cotangent, Keras' backend and ``floatx``) and replays what the
row's property checks:

* value, gradient, numerics: the framework's value (and gradient) next to the oracle's, which
  losscheck computed when it wrote the script;
* batch: that, the value of the batch repeated :data:`~losscheck.properties.batch.TILES` times, and
  the independence of samples (sample 0 replaced by sample 1 must not move the other samples'
  gradients);
* device: value and gradient twice on the row's device (bit for bit the same) and, off the CPU,
  against the CPU within the bound; the oracle's value is printed for reference only.

Every property whose check evaluates gradients (:data:`WITH_GRADIENTS`) asks for them in the script
too, so a backward that raises reproduces. The script exits 1 while the finding reproduces (for
``git bisect run``), 0 once the framework agrees, and 2 when it could not call the loss as the spec
does (see :class:`Unreproducible`). The properties in :data:`NOT_REPLAYED` get no script.
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
#: properties whose check evaluates gradients (the engine differentiates every differentiable
#: input), so that their scripts do too: a loss whose backward raises fails them with X001
WITH_GRADIENTS = ("gradient", "numerics", "batch", "device")
#: properties whose check a script cannot replay: ``compiled`` compares the compiled call with the
#: eager one (its ``repro`` command replays it); ``rank_mismatch`` feeds reshaped inputs and only
#: ever warns (B005), and ``compat`` rows have no smallest input
NOT_REPLAYED = ("compiled", "rank_mismatch", "compat")
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
    """Rows with a smallest input, of a property a script replays (not :data:`NOT_REPLAYED`: the
    compiled property's X010 rows replay through their command)."""
    return (row.get("status") in WITH_REPRO and row.get("input") is not None
            and row.get("property") not in NOT_REPLAYED)


def scripts(rows, specs: dict | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """({file name: script} for every row that gets one, {file name: why not} for those that could
    not be generated). ``specs`` (id -> LossSpec) supplies specs that are not in the catalog."""
    out, skipped = {}, {}
    for row in rows:
        try:
            if not wanted(row):
                continue
            name = filename(row)
        except Exception:  # noqa: BLE001 - a row without its key fields has nothing to replay
            continue
        try:
            out[name] = script(row, (specs or {}).get(row["id"]))
        except Exception as exc:  # noqa: BLE001 - one unrenderable row must not cost the others
            skipped[name] = _printable(f"{type(exc).__name__}: {exc}")
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
    from ..properties.common import cotangent_for, grad_shapes
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
        # the inputs the engine differentiates whenever a check asks for gradients (every float
        # argument the spec marks differentiable): the script asks for the same ones
        out["diff_args"] = [a.name for a in spec.grad_args if a.name in case.inputs]
        if row["property"] in WITH_GRADIENTS and out["diff_args"]:
            out["cotangent"] = cotangent_for(np.shape(ref.value))
        if row["property"] in ("gradient", "numerics"):
            cot = cotangent_for(np.shape(ref.value))
            g, mags = ref.grad(cot), ref.grad_magnitude(cot)
            shapes = grad_shapes(spec, case)
            kinks = ref.kinks(kink_rtol(row["dtype"]), shapes)
            out["cotangent"] = cot
            out["grads"] = {a.name: np.asarray(g[a.oracle_name], dtype=np.float64) for a in spec.grad_args
                            if a.name in case.inputs and a.oracle_name in g}
            out["magnitudes"] = {a.name: float(np.max(np.asarray(mags[a.oracle_name]), initial=0.0))
                                 for a in spec.grad_args if a.name in out["grads"]}
            out["kinks"] = {a.name: np.asarray(kinks[a.oracle_name], dtype=bool) for a in spec.grad_args
                            if a.name in out["grads"] and a.oracle_name in kinks}
        if row["property"] == "batch":
            from ..properties.batch import TILES, batch_axes, batch_sizes, documented_kind, tile
            from ..tolerance import EPS, TINY

            # the batch check judges its values in a declared lower precision's eps, with the bound
            # of the tiled batch's terms (properties.batch.check)
            declared = spec.precision_for(row["dtype"], row["runtime"])
            judge = declared.effective if declared is not None else row["dtype"]
            out["batch_judge"] = {"judge": judge, "eps": EPS[judge], "tiny": TINY[judge],
                                  "bound": VALUE_BOUND[judge](n_terms * TILES)}
            if batch_sizes(spec, case):
                tiled_case = tile(spec, case, TILES)
                out["tiles"] = TILES
                out["batch_axes"] = dict(batch_axes(spec, case))
                # what tiling must do to the framework's own value: read off the oracle
                out["tiling_kind"] = "other" if spec.pools_batch else documented_kind(spec, case, tiled_case)
                out["independence"] = _independence(spec, case, ref)
        if row["property"] == "device" and row["device"] != "cpu":
            out["device_check"] = _device_check(spec, case, ref, row)
    return out


def _rest(x, axis: int) -> np.ndarray:
    """``x`` without sample 0 along ``axis``."""
    return np.delete(np.asarray(x), 0, axis=axis)


def _independence(spec, case, ref) -> dict:
    """What the batch check's independence half (``properties.batch._independence``) needs, for the
    script: {input: {axis, magnitude (the other samples'), skip (kinks in either case)}} for each
    input whose sample 0 the check replaces by sample 1; {} where the check does not run it."""
    from ..properties.batch import batch_axes, batch_sizes
    from ..properties.common import grad_shapes
    from ..tolerance import kink_rtol

    sizes = batch_sizes(spec, case)
    if len(set(sizes.values())) != 1 or next(iter(sizes.values())) < 2 or spec.pools_batch or not spec.grad_args:
        return {}
    axes = batch_axes(spec, case)
    cot = cotangent_for_value(ref)
    mags = ref.grad_magnitude(cot)
    names = [a for a in spec.grad_args if a.name in axes and a.name in case.inputs
             and (not mags or a.oracle_name in mags)]
    swapped = {}
    for a in names:
        x = np.array(case.inputs[a.name], copy=True)
        idx0, idx1 = [slice(None)] * x.ndim, [slice(None)] * x.ndim
        idx0[axes[a.name]], idx1[axes[a.name]] = 0, 1
        x[tuple(idx0)] = x[tuple(idx1)]
        swapped[a.name] = x
    shapes = grad_shapes(spec, case)
    rtol = kink_rtol(case.dtype)
    kinks = ref.kinks(rtol, shapes)
    kinks_other = spec.oracle(case.with_inputs(**swapped)).kinks(rtol, shapes) if swapped else {}
    out = {}
    for a in names:
        ax = axes[a.name]
        skip = None
        if a.oracle_name in kinks or a.oracle_name in kinks_other:
            skip = np.zeros(np.shape(case.inputs[a.name]), bool)
            for k in (kinks.get(a.oracle_name), kinks_other.get(a.oracle_name)):
                if k is not None:
                    skip = skip | np.asarray(k, dtype=bool)
            skip = _rest(skip, ax)
        mag = mags.get(a.oracle_name)
        out[a.name] = {"axis": ax, "magnitude": None if mag is None else _rest(np.broadcast_to(
            np.asarray(mag, dtype=np.float64), np.shape(case.inputs[a.name])), ax), "skip": skip}
    return out


def _device_check(spec, case, ref, row) -> dict:
    """What the device check's cross-device half needs (``properties.device``): the dtype it judges
    in (a declared lower precision's), that dtype's eps and bounds, and the oracle's per-element
    gradient magnitudes and kinks."""
    from ..properties.common import grad_shapes, n_terms
    from ..tolerance import EPS, GRAD_BOUND, TINY, VALUE_BOUND, kink_rtol

    declared = spec.precision_for(row["dtype"], row["runtime"])
    judge = declared.effective if declared is not None else row["dtype"]
    terms = n_terms(case)
    mags = ref.grad_magnitude(cotangent_for_value(ref))
    shapes = grad_shapes(spec, case)
    kinks = ref.kinks(kink_rtol(judge), shapes)
    return {"judge": judge, "eps": EPS[judge], "tiny": TINY[judge], "value_bound": VALUE_BOUND[judge](terms),
            "grad_bound": GRAD_BOUND[judge](terms),
            "magnitudes": {a.name: np.broadcast_to(np.asarray(mags[a.oracle_name], dtype=np.float64),
                                                   np.shape(case.inputs[a.name]))
                           for a in spec.grad_args if a.name in case.inputs and a.oracle_name in mags},
            "kinks": {a.name: np.asarray(kinks[a.oracle_name], dtype=bool) for a in spec.grad_args
                      if a.name in case.inputs and a.oracle_name in kinks}}


def cotangent_for_value(ref) -> np.ndarray:
    from ..properties.common import cotangent_for

    return cotangent_for(np.shape(ref.value))


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




def _printable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates, from an exception message that
    carried undecodable bytes) written as backslash escapes."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def _comment(text: str, width: int = 100) -> str:
    """``text`` as comment lines (control characters escaped: a NUL byte ends a Python source)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    lines = []
    for para in text.splitlines() or [""]:
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
        "KIND": kinds, "GRAD_ARGS": grad_args,
        "DIFF_ARGS": ref["diff_args"] if row["property"] in WITH_GRADIENTS else [],
        "UNAVAILABLE": unavailable,
    }
    blobs = {
        "INPUTS": row["input"], "SHAPES": row.get("shape") or {}, "PARAMS": row.get("params") or {},
        "ARRAY_PARAMS": ref["arrays"], "EXPECTED_VALUE": ref["value"], "EXPECTED_SHAPE": list(np.shape(ref["value"])),
        "SCALE": ref["scale"], "VALUE_BOUND": ref["value_bound"], "GRAD_BOUND": ref["grad_bound"],
        "COTANGENT": ref.get("cotangent"), "EXPECTED_GRADS": ref.get("grads", {}),
        "GRAD_MAGNITUDE": ref.get("magnitudes", {}), "KINKS": ref.get("kinks", {}),
        "TILES": ref.get("tiles"), "BATCH_AXES": ref.get("batch_axes", {}),
        "TILING_KIND": ref.get("tiling_kind"), "BATCH_JUDGE": ref.get("batch_judge"),
        "INDEPENDENCE": ref.get("independence", {}), "DEVICE_CHECK": ref.get("device_check"),
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
    # a loss's message may hold anything, lone surrogates included: the script must stay writable
    header = _printable(header)
    constants = "\n".join(f"{k} = {ascii(v)}" for k, v in data.items())
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
for _stream in (sys.stdout, sys.stderr):  # a loss's message may hold characters no encoding has
    if hasattr(_stream, "reconfigure"):
        _stream.reconfigure(errors="backslashreplace")
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


def keras_device(name):
    """Keras on torch and on JAX makes its constants on its own default device: losscheck calls the
    loss inside Keras' scope for the checked device (TensorFlow's engine places the call itself)."""
    import contextlib

    if KERAS_BACKEND == "torch":
        return NS.keras.device(name)
    if KERAS_BACKEND == "jax":
        kind, _, index = name.partition(":")
        return NS.keras.device(f"{'gpu' if kind == 'cuda' else kind}:{index or 0}")
    return contextlib.nullcontext()


def run(params, inputs, grad_names=(), cotangent=None, device=None):
    """evaluate() on the checked device, or on ``device`` (the device check compares with the CPU)."""
    global DEVICE
    name = device or DEVICE_NAME
    DEVICE = device_named(name)
    with keras_device(name):
        return evaluate(params, inputs, grad_names, cotangent)
'''

_ENGINES = {
    "torch": '''
import numpy as np
import torch

def device_named(name):
    return torch.device(name)


DEVICE = device_named(DEVICE_NAME)
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

def device_named(name):
    return jax.devices("gpu" if name.startswith("cuda") else "cpu")[0]


DEVICE = device_named(DEVICE_NAME)
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

def device_named(name):
    return "/GPU:0" if name.startswith("cuda") else "/CPU:0"


DEVICE = device_named(DEVICE_NAME)
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


def value_error(actual, expected, scale, eps=None, tiny=None):
    """Largest error in eps units (scale: the oracle's magnitude of the summands); NaN-oracle ignored."""
    eps, tiny = eps or EPS, tiny or TINY
    a, e, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (actual, expected, scale)))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - e) / (eps * np.maximum(np.where(np.isfinite(s), s, 0.0), tiny / eps))
    err = np.where(np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e)), 0.0, err)
    err = np.where(np.isfinite(e) & ~np.isfinite(a), np.inf, err)
    err = np.where(np.isnan(e), np.nan, err)
    return float(np.nanmax(err)) if np.any(~np.isnan(err)) else 0.0


def grad_error(actual, expected, magnitude, skip, eps=None, tiny=None):
    """Normwise error in eps units; ``magnitude``: the oracle's largest gradient magnitude, or its
    magnitude per element (then the largest finite one over the elements compared)."""
    eps, tiny = eps or EPS, tiny or TINY
    keep = ~np.isnan(expected) & ~skip
    a, e = actual[keep], expected[keep]
    if not keep.any():
        return 0.0
    if not np.all(np.isfinite(a[np.isfinite(e)])):
        return float("inf")
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0
    if np.ndim(magnitude):
        m = np.broadcast_to(np.asarray(magnitude, dtype=np.float64), np.shape(expected))[keep][finite]
        magnitude = float(np.max(m, where=np.isfinite(m), initial=0.0))
    return float(np.max(np.abs(a[finite] - e[finite])) / (eps * max(magnitude, tiny / eps)))


def show(label, framework, expected):
    print(f"framework {label}: {np.asarray(framework)!r}".replace("\\n", "\\n    "))
    print(f"expected  {label}: {np.asarray(expected)!r}".replace("\\n", "\\n    "))


def compare_value(label, value, expected, scale, judge=None):
    """``judge``: the eps, tiny and bound to judge in (the batch check's), else the dtype's."""
    show(label, value, expected)
    if np.shape(value) != np.shape(expected):
        print(f"  shape {np.shape(value)} where {np.shape(expected)} is expected")
        return True
    bound = VALUE_BOUND if judge is None else judge["bound"]
    err = value_error(value, expected, scale, *((judge["eps"], judge["tiny"]) if judge else ()))
    unit = "eps" if judge is None or judge["judge"] == DTYPE else f"{judge['judge']} eps"
    print(f"  error {err:,.1f} {unit} (losscheck's bound {bound:,.0f} {unit})")
    return not err <= bound


def tiling_expected(kind, value, scale):
    """What the batch repeated TILES times must give, from the framework's own value on one copy
    (and the oracle's scale for it): the same mean, TILES times the sum, the per-sample losses
    repeated."""
    value, scale = np.asarray(value, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    if kind == "mean":
        return value, scale
    if kind == "sum":
        return TILES * value, TILES * scale
    repeat = lambda x: np.concatenate([x] * TILES, axis=0) if x.ndim else x  # noqa: E731
    return repeat(value), repeat(scale)


def show_devices(label, here, there):
    """``label`` on the checked device and on the CPU, one line each."""
    for where, x in ((DEVICE_NAME, here), ("cpu", there)):
        print(f"{label} on {where}: {' ' * max(0, len(DEVICE_NAME) - len(where))}{np.asarray(x)!r}"
              .replace("\\n", "\\n    "))


def differs(a, b):
    """Not bit for bit the same (NaN equals NaN)."""
    if b is None:
        return a is not None
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape != b.shape or not np.array_equal(a, b, equal_nan=True)


def replay_independence(params, inputs, cot):
    """The batch check's independence half: replace sample 0 of each differentiable input by
    sample 1; the gradient of every other sample must not move."""
    swapped = {}
    for name, info in INDEPENDENCE.items():
        x = np.array(inputs[name], copy=True)
        first, second = [slice(None)] * x.ndim, [slice(None)] * x.ndim
        first[info["axis"]], second[info["axis"]] = 0, 1
        x[tuple(first)] = x[tuple(second)]
        swapped[name] = x
    if all(np.array_equal(x, inputs[name]) for name, x in swapped.items()):
        return False
    print("sample 0 replaced by sample 1; the other samples' gradients must not change:")
    try:
        _, g0 = run(params, inputs, DIFF_ARGS, cot)
        _, g1 = run(params, {**inputs, **swapped}, DIFF_ARGS, cot)
    except Exception as exc:
        print(f"framework raised {type(exc).__name__} computing the gradient: {exc}")
        return True
    reproduced = False
    for name, info in INDEPENDENCE.items():
        if g0.get(name) is None or g1.get(name) is None:
            continue
        before = np.delete(np.asarray(g0[name]), 0, axis=info["axis"])
        after = np.delete(np.asarray(g1[name]), 0, axis=info["axis"])
        print(f"gradient d/d{name} of the other samples, as drawn:        {before!r}".replace("\\n", "\\n    "))
        print(f"gradient d/d{name} of the other samples, sample 0 replaced: {after!r}".replace("\\n", "\\n    "))
        if before.shape != after.shape:
            reproduced = True
            continue
        magnitude = np.abs(before) if info["magnitude"] is None else np.asarray(info["magnitude"], dtype=np.float64)
        skip = np.zeros(before.shape, bool) if info["skip"] is None else np.asarray(info["skip"], dtype=bool)
        err = grad_error(after, before, magnitude, skip)
        print(f"  error {err:,.1f} eps (losscheck's bound {GRAD_BOUND:,.0f} eps)")
        reproduced |= not err <= GRAD_BOUND
    return reproduced


def replay_device(params, inputs, expected):
    """The device check: value and gradient twice on the checked device (they must agree bit for
    bit) and, off the CPU, once on the CPU (they must agree within the bound). It compares the
    framework with itself; the oracle's value is printed for reference only."""
    cot = None if COTANGENT is None else np.asarray(COTANGENT, dtype=np.float64)
    runs = []
    for attempt in (1, 2):
        try:
            runs.append(run(params, inputs, DIFF_ARGS, cot))
        except Exception as exc:  # the loss (or its gradient) raised on valid inputs: that is the finding
            print(f"framework raised {type(exc).__name__} (run {attempt} on {DEVICE_NAME}): {exc}")
            return True
    (value, grads), (again, grads_again) = runs
    show("value", value, expected)
    print("  (for reference: the device check compares the framework's runs and devices, not the oracle)")
    reproduced = False
    if differs(value, again):
        print(f"two identical runs on {DEVICE_NAME} differ: value {value!r} then {again!r}")
        reproduced = True
    for name in DIFF_ARGS:
        if grads.get(name) is not None and differs(grads[name], grads_again.get(name)):
            print(f"two identical runs on {DEVICE_NAME} give different gradients of {name!r}")
            reproduced = True
    if not reproduced:
        print(f"two identical runs on {DEVICE_NAME} agree bit for bit (value and gradients of {DIFF_ARGS})")
    if DEVICE_CHECK is None:
        return reproduced
    judge = DEVICE_CHECK
    try:
        cpu_value, cpu_grads = run(params, inputs, DIFF_ARGS, cot, device="cpu")
    except Exception as exc:
        print(f"framework raised {type(exc).__name__} on the cpu: {exc}")
        return True
    show_devices("framework value", value, cpu_value)
    if np.shape(cpu_value) != np.shape(value):
        return True
    err = value_error(value, cpu_value, np.asarray(SCALE), judge["eps"], judge["tiny"])
    print(f"  error {err:,.1f} {judge['judge']} eps (losscheck's bound {judge['value_bound']:,.0f})")
    reproduced |= not err <= judge["value_bound"]
    for name in DIFF_ARGS:
        g, c = grads.get(name), cpu_grads.get(name)
        if g is None or c is None or name not in judge["magnitudes"]:
            continue
        show_devices(f"framework gradient d/d{name}", g, c)
        if np.shape(g) != np.shape(c):
            reproduced = True
            continue
        skip = np.zeros(np.shape(c), bool)
        if name in judge["kinks"]:
            skip |= np.broadcast_to(np.asarray(judge["kinks"][name], dtype=bool), np.shape(c))
        err = grad_error(np.asarray(g, dtype=np.float64), np.asarray(c, dtype=np.float64),
                         np.asarray(judge["magnitudes"][name], dtype=np.float64), skip, judge["eps"], judge["tiny"])
        print(f"  error {err:,.1f} {judge['judge']} eps (losscheck's bound {judge['grad_bound']:,.0f})")
        reproduced |= not err <= judge["grad_bound"]
    return reproduced


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
    if PROPERTY == "device":
        reproduced = replay_device(params, inputs, expected)
        print("REPRODUCED: the device check fails on this input (above)" if reproduced
              else "not reproduced: the framework's runs (and devices) agree on this input")
        return 1 if reproduced else 0
    reproduced = False
    try:
        value, _ = run(params, inputs)
    except Exception as exc:  # the loss raised on valid inputs: that is the finding
        print(f"framework raised {type(exc).__name__}: {exc}")
        show("value", np.array(np.nan), expected)
        return 1
    reproduced |= compare_value("value", value, expected, np.asarray(SCALE), BATCH_JUDGE)
    if DIFF_ARGS and PROPERTY in ("gradient", "numerics"):
        cot = np.asarray(COTANGENT, dtype=np.float64)
        try:
            _, grads = run(params, inputs, DIFF_ARGS, cot)
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
        if TILING_KIND == "other":
            print(f"the batch repeated {TILES} times: not judged (the loss pools the batch, or its documented "
                  "result is neither a mean, a sum nor per sample)")
        else:
            rule = {"mean": "the same mean", "sum": f"{TILES} x the sum",
                    "none": "the per-sample losses repeated"}[TILING_KIND]
            print(f"the batch repeated {TILES} times must give {rule} (expected: from the framework's own value "
                  "above):")
            try:
                got, _ = run(tiled_params, tiled)
            except Exception as exc:
                print(f"framework raised {type(exc).__name__} on the repeated batch: {exc}")
                return 1
            want, scale = tiling_expected(TILING_KIND, value, SCALE)
            reproduced |= compare_value("value", got, want, scale, BATCH_JUDGE)
    if PROPERTY == "batch" and INDEPENDENCE and DIFF_ARGS:
        reproduced |= replay_independence(params, inputs, np.asarray(COTANGENT, dtype=np.float64))
    found = "the batch check fails on this input (above)" if PROPERTY == "batch" else \
        "the framework disagrees with the oracle"
    print(f"REPRODUCED: {found}" if reproduced
          else "not reproduced: the framework agrees with the oracle on this input")
    return 1 if reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
'''
