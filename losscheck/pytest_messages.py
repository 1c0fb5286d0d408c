"""Text the pytest plugin shows: a failing test's assertion message (with a reproducer), the
per-test report section, and the session's terminal summary. Pure formatting of result rows."""
from __future__ import annotations

import ast
import functools
import inspect
import math
import os
import shlex
import sys
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

#: (status, how the summary counts it), in the order the summary lists them
STATUS_WORDS = (("pass", "passed"), ("fail", "failed"), ("error", "errors"), ("xpass", "unexpectedly passed"),
                ("deviation", "deviations"), ("xfail", "expected failures"), ("warn", "warnings"),
                ("skip", "skipped"))
#: statuses listed one per line in the summary: failures, then the notes on passing checks
LISTED = {"fail": "FAILED", "error": "ERROR", "xpass": "XPASS", "deviation": "DEVIATION", "xfail": "XFAIL",
          "warn": "WARN"}
SUMMARY_LINES = 30
LITERAL_LIMIT = 4000
TENSOR = {  # framework -> (imports, float constructor, other constructor) for the reproducer
    "torch": ("import torch", "torch.tensor({lit}, dtype=torch.{dtype}{grad})", "torch.tensor({lit})"),
    "jax": ("import jax\njax.config.update('jax_enable_x64', True)\nimport jax.numpy as jnp",
            "jnp.asarray({lit}, dtype=jnp.{dtype})", "jnp.asarray({lit})"),
    "keras": ("import keras", "keras.ops.convert_to_tensor({lit}, dtype='{dtype}')",
              "keras.ops.convert_to_tensor({lit})"),
}
TENSOR["optax"] = TENSOR["jax"]
TENSOR["tensorflow"] = ("import tensorflow as tf", "tf.constant({lit}, dtype=tf.{dtype})", "tf.constant({lit})")


def eps(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def where(row: Mapping) -> str:
    return f"[{row['runtime']}, {row['property']}, {row['dtype']}, {row['device']}]"


def literal(x: Any) -> str:
    """``x`` (JSON-like: nested lists of numbers) as a Python literal that evaluates back to it."""
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in x) + "]"
    if isinstance(x, float) and not math.isfinite(x):
        return "float('nan')" if math.isnan(x) else ("float('inf')" if x > 0 else "-float('inf')")
    return repr(x)


def _leaves(x) -> list:
    return [v for item in x for v in _leaves(item)] if isinstance(x, list) else [x]


def pytest_command(node, settings, *, examples_given: bool) -> str:
    """The command that replays ``node``'s checks with this session's seed and options, run from
    the directory pytest was invoked in (a node id is relative to the rootdir)."""
    parts = ["pytest", invocation_nodeid(node), "--losscheck-seed", str(settings.seed)]
    if not examples_given:
        parts += ["--losscheck-examples", str(settings.examples)]
    if "dtype" in settings.given:
        parts += ["--losscheck-dtype", ",".join(settings.dtypes)]
    if "device" in settings.given:
        parts += ["--losscheck-device", ",".join(settings.devices)]
    return " ".join(shlex.quote(p) for p in parts)


def invocation_nodeid(node) -> str:
    """``node``'s id with its file relative to the directory pytest was invoked in."""
    path, sep, rest = node.nodeid.partition("::")
    config = node.config
    try:
        relative = os.path.relpath(config.rootpath / path, config.invocation_params.dir)
    except ValueError:  # another drive (Windows): the absolute path
        relative = str(config.rootpath / path)
    return relative.replace(os.sep, "/") + sep + rest


def call_expression(fn: Callable, names: Iterable[str], inputs_map: Mapping[str, str] | None,
                    label: str | None = None) -> str:
    """How the check called ``fn`` (as ``label``) with the reference's inputs ``names`` (see
    userloss._bind): by the user's keywords where ``inputs=`` maps them or both roles match, else
    positionally."""
    from .userloss import role_of

    names = list(names)
    if label is None:
        label = getattr(fn, "__name__", None)
        label = label if isinstance(label, str) and label.isidentifier() else "loss_fn"
    forward = getattr(fn, "forward", None)
    target = forward if not inspect.isroutine(fn) and not inspect.isclass(fn) and callable(forward) else fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    keyword = {ref: user for user, ref in (inputs_map or {}).items()}
    if not keyword:
        user_roles = {role_of(p): p for p in params if role_of(p)}
        ref_roles = {role_of(n): n for n in names if role_of(n)}
        if len(user_roles) == 2 and len(ref_roles) == 2:
            keyword = {ref_roles[r]: user_roles[r] for r in ("prediction", "target")}
    if keyword:
        return f"{label}(" + ", ".join(f"{keyword.get(n, n)}={n}" for n in names) + ")"
    return f"{label}(" + ", ".join(names) + ")"


def loss_source(fn: Callable, modules: Iterable[str] = ()) -> tuple[list[str], str]:
    """How the reproducer gets hold of the loss: (its lines, the name it then calls the loss by).
    An import of the loss by its own name, or of a module-level name bound to it (in its module
    or in ``modules``, the test's); a ``functools.partial`` of an importable function rebuilt
    with its literal arguments; a loss object built from its importable class where that takes
    no arguments. Otherwise a comment saying that the loss must be supplied (the call then needs it)."""
    found = _importable(fn, modules)
    if found is not None:
        return found
    if isinstance(fn, functools.partial):
        inner = _importable(fn.func, modules)
        args = [_literal_source(v) for v in fn.args]
        keywords = {k: _literal_source(v) for k, v in fn.keywords.items()}
        if inner is not None and None not in args and None not in keywords.values():
            lines, label = inner
            call = ", ".join([label, *args, *(f"{k}={v}" for k, v in keywords.items())])
            return [*lines, "from functools import partial", f"loss_fn = partial({call})"], "loss_fn"
        what = f"functools.partial({getattr(fn.func, '__qualname__', type(fn.func).__name__)}, ...)"
    elif not inspect.isroutine(fn) and not inspect.isclass(fn):
        cls = _importable(type(fn), modules)
        if cls is not None:
            lines, label = cls
            if _constructible(type(fn)):
                return [*lines, f"loss_fn = {label}()  # with the arguments the test constructs it with"], "loss_fn"
            return [*lines, f"# loss_fn = {label}(...)  <- supply the arguments the test constructs it with"], \
                "loss_fn"
        what = f"a {type(fn).__qualname__} object"
    else:
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        what = "a lambda" if getattr(fn, "__name__", None) == "<lambda>" else f"{name}"
        where = _definition(fn)
        what += f" ({where})" if where else ""
    return [f"# loss_fn = ...  <- supply the loss here: the test checks {what}, which cannot be imported",
            *_lambda_source(fn)], "loss_fn"


def _importable(obj, modules: Iterable[str]) -> tuple[list[str], str] | None:
    """``from M import NAME`` for a module-level name bound to ``obj`` itself: its own name in its
    module first, then any name in its module or ``modules``."""
    own = getattr(obj, "__module__", None) if not isinstance(obj, functools.partial) else None
    name = getattr(obj, "__qualname__", None) if (inspect.isroutine(obj) or inspect.isclass(obj)) else None
    if isinstance(own, str) and isinstance(name, str) and name.isidentifier() \
            and getattr(sys.modules.get(own), name, None) is obj and own != "__main__":
        return [f"from {own} import {name}"], name
    for module in dict.fromkeys([own, getattr(getattr(obj, "func", None), "__module__", None), *modules]):
        mod = sys.modules.get(module) if isinstance(module, str) and module != "__main__" else None
        if mod is None:
            continue
        names = [k for k, v in list(vars(mod).items()) if v is obj and k.isidentifier()]
        if names:
            best = min(names, key=lambda k: (k.startswith("_"), len(k)))
            return [f"from {module} import {best}"], best
    return None


def _literal_source(value) -> str | None:
    """Python source that evaluates to ``value`` (numbers, strings, None, and containers of them),
    or None."""
    text = repr(value)
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _constructible(cls) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def _definition(fn) -> str:
    code = getattr(fn, "__code__", None)
    return f"{os.path.basename(code.co_filename)}, line {code.co_firstlineno}" if code is not None else ""


def _lambda_source(fn) -> list[str]:
    """The source line of a lambda, as comment lines."""
    if getattr(fn, "__name__", None) != "<lambda>":
        return []
    try:
        lines = inspect.getsourcelines(fn)[0]
    except (OSError, TypeError):
        return []
    return [f"#   {line.strip()[:200]}" for line in lines[:3]]


def _literal_as(value, dtype: str):
    """``value`` (nested lists) with its numbers as the dtype's Python type: ints for an integer
    dtype (class indices travel as integral floats), bools for bool."""
    if isinstance(value, list):
        return [_literal_as(v, dtype) for v in value]
    if dtype == "bool":
        return bool(value)
    if dtype.startswith(("int", "uint")) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reproducer(row: Mapping, context: Mapping[str, Any]) -> list[str]:
    """Python lines that call the user's loss on the row's smallest failing input."""
    fn = context.get("loss")
    inputs = row.get("input")
    if fn is None or not isinstance(inputs, dict):
        return []
    framework = row.get("framework") or "torch"
    imports, float_ctor, other_ctor = TENSOR.get(framework, TENSOR["torch"])
    grad = row["property"] in ("gradient", "numerics")
    received = _received(row, context)
    source, label = loss_source(fn, [context["module"]] if context.get("module") else [])
    lines = [f"# the smallest failing input ({row['property']}, {row['dtype']}) as Python literals:",
             *imports.split("\n"), *source]
    for name, value in inputs.items():
        text = literal(value)
        if len(text) > LITERAL_LIMIT:
            return lines[:1] + [f"# ({len(_leaves(value))} numbers in {name!r}: see the JSON report's 'input')"]
        if name in received:   # the dtype the loss received: int64 class indices, say
            dtype, wants_grad = received[name]
            dtype = "bool_" if dtype == "bool" and framework in ("jax", "optax") else dtype
            lines.append(f"{name} = " + float_ctor.format(lit=literal(_literal_as(value, dtype)), dtype=dtype,
                                                           grad=", requires_grad=True" if wants_grad else ""))
            continue
        is_float = any(isinstance(v, float) for v in _leaves(value))
        ctor = float_ctor if is_float else other_ctor
        lines.append(f"{name} = " + ctor.format(lit=text, dtype=row["dtype"],
                                                 grad=", requires_grad=True" if grad else ""))
    call = call_expression(fn, inputs, context.get("inputs_map"), label)
    lines += _compiled(call, list(inputs), row["runtime"]) if row["property"] == "compiled" else ["loss = " + call]
    lines.append("print(loss)")
    if grad and framework == "torch":
        leaves = [n for n in inputs if received.get(n, ("", True))[1]]
        lines += ["loss.backward()", "print(" + ", ".join(f"{n}.grad" for n in leaves) + ")"]
    return lines


def _received(row: Mapping, context: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """{input: (dtype, requires grad)} of what the loss received on the row's input (the context's
    ``received``, see userloss.received_inputs); empty where that is unknown."""
    probe = context.get("received")
    if probe is None:
        return {}
    try:
        return dict(probe(row) or {})
    except Exception:  # noqa: BLE001 - the snippet then builds the tensors from the literals' types
        return {}


def _compiled(call: str, names: list[str], runtime: str) -> list[str]:
    """The call as the compiled check made it: under jax.jit, or in a tf.function as Keras' fit()
    builds it (no autograph, the batch axis of unknown size)."""
    if runtime != "keras-tensorflow":
        return ["import jax", "loss = " + compiled_expression(call, names, "jax.jit")]
    return ["import tensorflow as tf", "# as Keras' fit() calls it: no autograph, the batch size unknown",
            "loss = " + compiled_expression(call, names, "tf.function", batched=names)]


def compiled_expression(call: str, names: list[str], compiler: str, batched: Iterable[str] = ()) -> str:
    """Python source evaluating ``call`` (an expression of ``names``) the way the compiled check does:
    under ``jax.jit``, or in a ``tf.function`` without autograph whose ``batched`` arguments have a
    leading axis of unknown size. Shared by the plugin's snippet and the audit's reproducer."""
    args = ", ".join(names)
    if compiler == "jax.jit":
        return f"jax.jit(lambda {args}: {call})({args})"
    batched = set(batched)
    specs = ", ".join(f"tf.TensorSpec([None, *{n}.shape[1:]], {n}.dtype)" if n in batched
                      else f"tf.TensorSpec({n}.shape, {n}.dtype)" for n in names)
    return f"tf.function(lambda {args}: {call}, autograph=False, input_signature=[{specs}])({args})"


def failure_message(rows: list[dict], context: Mapping[str, Any]) -> str:
    """The assertion message of a test whose checks failed: every failing check with its code,
    cause, smallest input, error and bound; then how to replay it."""
    failing = [r for r in rows if r["status"] in ("fail", "error", "xpass")]
    first = failing[0]
    against = f" against {context['reference']}" if context.get("reference") and not context.get("catalog") else ""
    out = [f"losscheck: {first['id']}{against}: {len(failing)} of {len(rows)} checks failed (seed {first['seed']})"]
    explained = set()
    for r in failing:
        title = _title(r["code"])
        measured = (f"; error {eps(r['error_eps'])} eps, bound {eps(r['bound_eps'])} eps"
                    if r.get("error_eps") is not None else "")
        out.append(f"{r['status'].upper()} {r['property']} {r['dtype']} on {r['runtime']}/{r['device']}: "
                   f"{r['code'] or r['status']}{' ' + title if title else ''}{measured}")
        if (r["code"], r["property"]) in explained:
            continue  # the same finding in another dtype: its cause and input are above
        explained.add((r["code"], r["property"]))
        out.append(f"    cause: {r['message']}")
        if r.get("input") is not None:
            out.append("    smallest input: " + ", ".join(f"{k}={literal(v)}" for k, v in r["input"].items())[:2000])
        if r.get("params"):
            out.append("    parameters: " + ", ".join(f"{k}={literal(v)}" for k, v in r["params"].items())[:500])
        if r.get("reason"):
            out.append(f"    expected failure: {r['reason']}")
    rest = Counter(r["status"] for r in rows if r["status"] not in ("fail", "error", "xpass"))
    if rest:
        out.append("other checks: " + ", ".join(f"{n} {s}" for s, n in rest.items()))
    out.append("reproduce:")
    for command in dict.fromkeys([context.get("replay"), *(r.get("repro") for r in failing)]):
        if command:
            out.append(f"    {command}")
    out += [f"    {line}" for line in reproducer(first, context)]
    return "\n".join(out)


def _title(code: str) -> str:
    from .diagnoses import CODES

    return CODES[code].title if code in CODES else ""


def report_section(rows: Iterable[Mapping]) -> str:
    """One line per check of a test (shown with the test's output: on failure, or with -rP)."""
    lines = []
    for r in rows:
        detail = f" {r['code']}" if r["code"] else ""
        if r["error_eps"] is not None and not r["message"]:
            detail += f" error {eps(r['error_eps'])} eps, bound {eps(r['bound_eps'])} eps"
        note = f": {r['message'][:200]}" if r["message"] else ""
        note += f" ({r['reason']})" if r.get("reason") else ""
        lines.append(f"{r['status']:<9} {r['id']} {where(r)}{detail}{note}")
    return "\n".join(lines)


def summary_lines(rows: list[dict], settings, paths: list[str], problems: list[str] = (),
                  workers_down: list[dict] = ()) -> list[tuple[str, dict]]:
    """(text, terminal markup) lines of the session's losscheck summary; ``workers_down``: the
    pytest-xdist workers that crashed (the checks of the test each was running are missing)."""
    counts = Counter(r["status"] for r in rows)
    tests = len({r.get("nodeid") for r in rows})
    failed = sum(counts[s] for s in ("fail", "error", "xpass"))
    parts = [f"{counts[s]} {word}" for s, word in STATUS_WORDS if counts.get(s)]
    head = (f"{len(rows)} checks in {tests} test{'s' if tests != 1 else ''}: {', '.join(parts) or 'none'} "
            f"(seed {settings.seed}; replay with --losscheck-seed {settings.seed})")
    out = [(head, {"red": True, "bold": True} if failed else {"green": True})]
    ordered = sorted(rows, key=lambda r: r.get("nodeid", ""))  # the same order serial or under xdist
    listed = [r for status in LISTED for r in ordered if r["status"] == status]
    for r in listed[:SUMMARY_LINES]:
        markup = {"red": True} if r["status"] in ("fail", "error", "xpass") else {"yellow": True}
        note = f"expected: {r['reason']}" if r["status"] == "xfail" and r.get("reason") else r["message"]
        note = note if len(note) <= 100 else note[:97] + "..."
        out.append((f"{LISTED[r['status']]} {r.get('nodeid', '')}: {r['id']} {where(r)} {r['code']} {note}".rstrip(),
                    markup))
    if len(listed) > SUMMARY_LINES:
        out.append((f"... {len(listed) - SUMMARY_LINES} more in the report (--losscheck-report DIR)", {}))
    for down in workers_down:
        test = f"while running {down['test']}" if down.get("test") else "before finishing its tests"
        out.append((f"xdist worker {down['worker']} went down {test} ({down['error']}): any losscheck checks of that "
                    "test are missing from these results" + ("; the report lists it under selection.workers_down"
                                                             if settings.report else ""), {"red": True}))
    if paths:
        directory = os.path.dirname(paths[0])
        out.append((f"wrote {len(paths)} report files to {directory}: "
                    + ", ".join(os.path.relpath(p, directory) for p in paths if os.sep + "repro" + os.sep not in p)
                    + (f" and {sum(os.sep + 'repro' + os.sep in p for p in paths)} reproducers in repro/"
                       if any(os.sep + "repro" + os.sep in p for p in paths) else ""), {}))
    for problem in problems:
        out.append((f"losscheck report: {problem}", {"yellow": True}))
    return out
