"""Constant tensors a loss holds (closure cells, module globals its code reads, functools.partial
arguments, instance attributes): a constant of a fixed width explains a loss that only works for
some input widths (B005), and an integer one a loss that raises on float inputs (D002)."""
from __future__ import annotations

import inspect
from typing import Any

def capture(obj: Any, module_globals: dict, depth: int = 2) -> dict[str, dict]:
    """Constant tensors a loss holds: closure cells, module globals its code reads (and the code of
    the file's functions it calls), functools.partial arguments, instance attributes."""
    import functools
    import types

    found: dict[str, dict] = {}
    seen: set[int] = set()

    def tensor_info(v) -> dict | None:
        if isinstance(v, (type, types.ModuleType)) or callable(v) and not hasattr(v, "shape"):
            return None
        shape, dtype = getattr(v, "shape", None), getattr(v, "dtype", None)
        if shape is None or dtype is None:
            return None
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            return None
        return {"shape": list(shape), "dtype": str(getattr(dtype, "name", dtype)).replace("torch.", "")}

    def visit(fn, level):
        if id(fn) in seen or level > depth:
            return
        seen.add(id(fn))
        if isinstance(fn, functools.partial):
            for i, a in enumerate(fn.args):
                if (info := tensor_info(a)) is not None:
                    found[f"partial argument {i}"] = info
            for k, a in fn.keywords.items():
                if (info := tensor_info(a)) is not None:
                    found[k] = info
            visit(fn.func, level)
            return
        code = getattr(fn, "__code__", None)
        if code is None:
            if not inspect.isclass(fn) and hasattr(fn, "__dict__"):
                for k, v in vars(fn).items():
                    if (info := tensor_info(v)) is not None and not k.startswith("_"):
                        found[f"self.{k}"] = info
                buffers = getattr(fn, "_buffers", None)
                for k, v in (buffers or {}).items():
                    if (info := tensor_info(v)) is not None:
                        found[f"self.{k}"] = info
            return
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            if (info := tensor_info(v)) is not None:
                found[name] = info
            elif inspect.isfunction(v):
                visit(v, level + 1)
        glob = getattr(fn, "__globals__", module_globals)
        for name in code.co_names:
            v = glob.get(name)
            if (info := tensor_info(v)) is not None:
                found[name] = info
            elif inspect.isfunction(v) and v.__globals__ is module_globals:
                visit(v, level + 1)

    visit(obj, 0)
    return found
