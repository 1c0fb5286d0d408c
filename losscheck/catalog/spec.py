"""Declarative records for documented losses (PyTorch OpInfo's idea, without its size).

A :class:`LossSpec` says how to draw valid inputs and parameters, how to build and call the
framework's loss, which oracle function (with which framework semantics) it must equal, and which
failures are expected, each scoped and with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from ..tolerance import HALF

KERAS_RUNTIMES = ("keras-tensorflow", "keras-jax", "keras-torch")


@dataclass(frozen=True)
class Arg:
    """One tensor argument of the loss callable, by the keyword the framework accepts.

    ``ref`` is the name of the matching input in the oracle's gradient dictionary.
    ``kind``: "float", "int" or "bool". Only float arguments with ``differentiable=True`` are
    differentiated.
    """
    name: str
    ref: str | None = None
    kind: str = "float"
    differentiable: bool = True

    @property
    def oracle_name(self) -> str:
        return self.ref or self.name

    @property
    def wants_grad(self) -> bool:
        return self.kind == "float" and self.differentiable


@dataclass(frozen=True)
class Case:
    """One drawn example: tensor inputs by argument name, and the loss's parameters.

    Parameters whose value is an ndarray (class weights, pos_weight) become framework tensors.
    ``dtype`` and ``runtime`` say where the case is being checked (set by the properties), for the
    oracle bindings whose framework semantics depend on them (clip bounds rounded to the dtype).
    """
    inputs: Mapping[str, np.ndarray]
    params: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "float64"
    runtime: str = ""

    def with_inputs(self, **inputs) -> "Case":
        return replace(self, inputs={**self.inputs, **inputs})

    @property
    def shape(self) -> dict[str, tuple]:
        return {k: tuple(np.shape(v)) for k, v in self.inputs.items()}


@dataclass(frozen=True)
class Expected:
    """A scoped expected failure: the check fails for a known reason.

    Scope fields left as ``None`` match anything. ``code`` restricts it to one diagnosis;
    ``when(case, dtype)`` is a predicate on the drawn :class:`Case` (its inputs, rounded to the
    tested dtype, and params) and the dtype name. Within a check,
    examples that fail inside the scope are recorded and the search goes on for failures outside
    it. A check whose scope is unconditional (no ``when``) and that passes is reported ``xpass``.
    """
    reason: str
    link: str = ""
    property: str | None = None
    dtype: str | None = None
    runtime: str | None = None
    code: str | None = None
    when: Callable[["Case", str], bool] | None = None

    def _covers(self, prop: str) -> bool:
        """The numerics property runs the value and gradient checks on extreme inputs, and the batch
        property evaluates the loss on tiled and smaller batches, so an expectation scoped to value or
        gradient covers them too. The device and compiled properties call the loss and its gradient
        again: there such an expectation covers only the code it names (a call that raises), never
        D005/D006 or the compiled program's X010."""
        if self.property in (None, prop):
            return True
        if self.property not in ("value", "gradient"):
            return False
        return prop in ("numerics", "batch") or (prop in ("device", "compiled") and self.code is not None
                                                 and not self.code.startswith("D") and self.code != "X010")

    def matches(self, prop: str, dtype: str, runtime: str, case: "Case | None" = None,
                code: str | None = None) -> bool:
        if not self._covers(prop) or self.dtype not in (None, dtype):
            return False
        if self.runtime not in (None, runtime) or not self._names(code, dtype):
            return False
        return self.when is None or case is None or bool(self.when(case, dtype))

    def _names(self, code: str | None, dtype: str) -> bool:
        """In half precision a non-finite loss or gradient where the exact one is finite is D004, not
        N001/N003 (properties/explain.py), so an expectation of those covers D004 there."""
        if self.code in (None, code):
            return True
        return dtype in HALF and code == "D004" and self.code in ("N001", "N003")

    @classmethod
    def on(cls, runtimes: tuple[str, ...], reason: str, link: str = "", **scope) -> tuple["Expected", ...]:
        """The same expectation scoped to each of ``runtimes``."""
        return tuple(cls(reason, link, runtime=rt, **scope) for rt in runtimes)


@dataclass(frozen=True)
class Deviation:
    """Documented framework semantics that differ from the exact mathematics.

    The value property measures the difference between the spec's ``oracle`` (the framework's
    semantics) and its ``exact`` oracle on every example and reports the largest one.
    """
    summary: str
    link: str = ""


@dataclass(frozen=True)
class Precision:
    """Inputs of ``dtype`` are computed at the lower precision of ``effective`` on ``runtimes``.

    Errors beyond the ``dtype`` bound are then judged in units of ``effective``'s eps: within that
    bound the check reports a D001 deviation with the measured error, beyond it a failure.
    """
    dtype: str
    effective: str
    reason: str
    link: str = ""
    runtimes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LossSpec:
    id: str                                   # "torch.nn.MSELoss", "keras.losses.Huber", "optax.losses.l2_loss"
    framework: str                            # "torch" | "keras" | "optax"
    family: str                               # oracle module: "regression", "classification", ...
    reference: str                            # "regression.squared_error": for listing and reports
    args: tuple[Arg, ...]
    draw: Callable[[Any], Case]               # hypothesis ``data`` object -> Case
    call: Callable[[Any, Mapping[str, Any]], Callable]   # (namespace, params) -> loss callable
    oracle: Callable[[Case], Any]             # Case -> reference Result (framework semantics)
    exact: Callable[[Case], Any] | None = None  # Case -> Result with the exact mathematics
    runtimes: tuple[str, ...] = ()
    params_doc: str = ""                      # parameter space, for `losscheck list`
    expected: tuple[Expected, ...] = ()
    deviation: Deviation | None = None
    swappable: tuple[str, str] | None = None  # (prediction arg, target arg) of a non-symmetric loss
    dtypes: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
    precision: tuple[Precision, ...] = ()
    # batch handling (properties/batch.py)
    batch_axes: Mapping[str, int] = field(default_factory=dict)  # per argument; default 0
    pools_batch: bool = False        # the loss couples samples by design (contrastive, graph losses)
    unbatched: bool = False          # documented to accept inputs without the batch dimension
    # per drawn case: {argument or array parameter: its batch axis}; None where the case is drawn
    # without a batch dimension; a string (why) where its layout is ambiguous (catalog/layouts.py).
    # Left None, every argument with more than ``batch_axis`` dimensions is batched on that axis.
    batch_layout: Callable[[Case], Mapping[str, int] | str | None] | None = None
    pair: tuple[str, str] | None = None  # (prediction, target) compared element by element
    # the loss's lower bound (numerics property): a number, or Case -> a bound broadcastable to the
    # value, where the documented formula's bound depends on the case (optax CTC's log_epsilon)
    lower_bound: float | Callable[[Case], Any] | None = None
    notes: str = ""
    # {parameter of the framework's loss that the draw does not name: how it is set instead} (derived
    # from the drawn shapes, fixed by the runtime); checked against the installed signature by
    # losscheck.coverage, with the reasons that hold for a whole framework (coverage.NOT_DRAWN)
    params_not_drawn: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.runtimes:
            default = {"torch": ("torch",), "optax": ("jax",), "keras": KERAS_RUNTIMES}
            object.__setattr__(self, "runtimes", default[self.framework])

    def batch_axis(self, arg: str) -> int:
        return self.batch_axes.get(arg, 0)

    @property
    def grad_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.wants_grad)

    def precision_for(self, dtype: str, runtime: str) -> Precision | None:
        return next((p for p in self.precision if p.dtype == dtype
                     and (p.runtimes is None or runtime in p.runtimes)), None)

    def expected_for(self, prop: str, dtype: str, runtime: str, case: Case | None = None,
                     code: str | None = None) -> Expected | None:
        for e in self.expected:
            if e.matches(prop, dtype, runtime, case, code):
                return e
        return None
