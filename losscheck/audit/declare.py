"""``@losscheck.declare(reference=..., inputs=...)``: tell ``losscheck audit`` what a loss is.

A no-op at run time: the decorated function or class is returned unchanged, with the declaration
stored on it as ``__losscheck_declared__`` for the audit to read. Importing this module imports no
framework.

    @losscheck.declare(reference="torch.nn.MSELoss", inputs="pred=reals(N,D),target=reals(N,D)")
    def my_mse(pred, target): ...
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")
ATTRIBUTE = "__losscheck_declared__"


def declare(reference: str | None = None, inputs: str | None = None, *,
            params: dict[str, Any] | None = None) -> Callable[[T], T]:
    """Declare the catalog ``reference`` id a loss implements (e.g. ``"keras.losses.Huber"`` or
    ``"custom.graph_cosine_loss"``), its ``inputs`` in the ``--inputs`` syntax, and the reference's
    hyper-parameters it pins (``params={"delta": 2.0}``)."""
    declared = {"reference": reference, "inputs": inputs, "params": dict(params or {})}

    def mark(obj: T) -> T:
        try:
            setattr(obj, ATTRIBUTE, declared)
        except (AttributeError, TypeError):  # builtins and slotted objects: the audit reads the source instead
            pass
        return obj

    return mark


def declared(obj) -> dict | None:
    """The declaration on ``obj`` (a function, class, instance, or functools.partial), if any."""
    for o in (obj, getattr(obj, "func", None), type(obj)):
        d = getattr(o, ATTRIBUTE, None) if o is not None else None
        if isinstance(d, dict):
            return d
    return None
