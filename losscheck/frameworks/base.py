"""What every framework adapter returns, and the conversions they share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass
class Evaluation:
    """A loss evaluated by a framework, converted to float64 NumPy.

    ``grads[name]`` is None when no gradient reaches that input (disconnected graph).
    ``output_type`` names what the loss returned (a non-tensor return cuts the gradient).
    """
    value: np.ndarray
    grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    output_type: str = ""
    is_tensor: bool = True


def split_inputs(args, case, want_grad: bool):
    """-> (float inputs to differentiate, other inputs) as {name: ndarray} in argument order."""
    diff, const = {}, {}
    for a in args:
        if a.name not in case.inputs:
            continue
        x = np.asarray(case.inputs[a.name])
        (diff if (want_grad and a.wants_grad) else const)[a.name] = x
    return diff, const


def kind_of(arg_kinds: Mapping[str, str], name: str, x: np.ndarray) -> str:
    if name in arg_kinds:
        return arg_kinds[name]
    if x.dtype == bool:
        return "bool"
    return "int" if np.issubdtype(x.dtype, np.integer) else "float"


def ones_like_value(cotangent: Any, shape) -> np.ndarray:
    if cotangent is None:
        return np.ones(shape, dtype=np.float64)
    return np.array(np.broadcast_to(np.asarray(cotangent, dtype=np.float64), shape))


def call_in_order(fn, spec_args, tensors: Mapping[str, Any]):
    """Call ``fn`` with the tensors positionally in the spec's argument order (frameworks disagree
    on argument names: ``PoissonNLLLoss.forward(log_input, target)``); after the first absent
    optional argument the rest go by keyword."""
    positional, keywords, in_order = [], {}, True
    for a in spec_args:
        if a.name not in tensors:
            in_order = False
        elif in_order:
            positional.append(tensors[a.name])
        else:
            keywords[a.name] = tensors[a.name]
    return fn(*positional, **keywords)


def device_error(probe) -> str:
    """"" when ``probe()`` (a tiny computation on a device) runs, else its error's first line: a
    broken device context (a CUDA device-side assert is sticky) fails every later call."""
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - whatever the device says is the answer
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return ""
