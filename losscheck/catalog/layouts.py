"""Batch layouts of drawn cases (``LossSpec.batch_layout``, read by properties/batch.py).

A layout maps one drawn :class:`~.spec.Case` to {argument or array parameter: its batch axis}, to
None where the case was drawn without a batch dimension (torch's unbatched ``(C,)`` input with a 0-d
target), or to a string saying why the draw's batch cannot be told apart from its other axes.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .spec import Case

Axis = int | Callable[[Case], int]


def _axis(axis: Axis, case: Case) -> int:
    return axis(case) if callable(axis) else axis


def leading(ranks: Mapping[str, int], *, axes: Mapping[str, Axis] | None = None,
            follow: Mapping[str, str] | None = None) -> Callable[[Case], Mapping[str, int] | str | None]:
    """The layout of arguments batched on one axis once they have enough dimensions.

    ``ranks``: {argument: its rank with a batch axis, at least}; an argument drawn with fewer
    dimensions has none. All of them below their rank: the case is unbatched (None); some below and
    some not: ambiguous (a string). Arguments missing from the case (an optional sample_weight) are
    left out. ``axes``: {argument: batch axis, or a function of the case}; 0 where not given; an
    argument named here and not in ``ranks`` is batched whenever the ranked ones are.
    ``follow``: {array (an input or an array parameter such as ``where``, ``weight``): argument} for
    arrays broadcast against an argument (NumPy, right-aligned): batched where they have that
    argument's batch axis with its size, shared by every sample where that axis is missing or 1.
    """
    axes, follow = dict(axes or {}), dict(follow or {})

    def layout(case: Case):
        present = {n: r for n, r in ranks.items() if case.inputs.get(n) is not None}
        below = sorted(n for n, r in present.items() if np.ndim(case.inputs[n]) < r)
        if len(below) == len(present):
            return None
        if below:
            return (f"{', '.join(below)} drawn without a batch axis beside batched "
                    f"{', '.join(sorted(set(present) - set(below)))}")
        out = {n: _axis(axes.get(n, 0), case) for n in present}
        out.update({n: _axis(a, case) for n, a in axes.items() if n not in out and case.inputs.get(n) is not None})
        arrays = {**case.params, **case.inputs}
        for name, ref in follow.items():
            x = arrays.get(name)
            if not isinstance(x, np.ndarray) or ref not in out:
                continue
            ref_shape, ax = np.shape(case.inputs[ref]), out[ref]
            pos = np.ndim(x) - (len(ref_shape) - ax)
            if pos < 0 or (np.shape(x)[pos] == 1 and ref_shape[ax] != 1):
                continue
            if np.shape(x)[pos] != ref_shape[ax]:
                return f"{name} of shape {np.shape(x)} does not broadcast against {ref} of shape {ref_shape}"
            out[name] = pos
        return out
    return layout


def class_axis_first(param: str = "axis", default: int = -1) -> Callable[[Case], int]:
    """Batch axis 1 where the class axis ``case.params[param]`` is 0 (``(C, N, ...)``), else 0."""
    return lambda case: 1 if case.params.get(param, default) == 0 else 0


def reduced_axes(full: tuple[str, ...], rest: tuple[str, ...] = (), *, axis: str = "axis",
                 default: int | tuple | None = -1, where: str = "where", where_rest: bool = False):
    """The layout of a loss that reduces ``full[0]`` over the axes ``case.params[axis]`` (an int, a
    tuple, None for every axis; ``default`` when the loss has no such parameter, ``()`` for an
    elementwise loss): its batch axis is the first axis not reduced, in every ``full`` argument;
    ``rest`` arguments have the reduced axes removed (integer labels), so their batch axis is 0.
    ``where`` (a mask parameter) has the full shape, the ``rest`` shape where the loss inserts the
    reduced axes itself (``where_rest``), or broadcasts right-aligned. No free axis: unbatched (None).
    """
    def layout(case: Case):
        x = case.inputs[full[0]]
        nd = np.ndim(x)
        ax = case.params.get(axis, default)
        if ax is None:
            return None
        ax = ax if isinstance(ax, tuple) else (ax,)
        if any(not -nd <= a < nd for a in ax):  # an input without its batch axis can lose the reduced one
            return f"{axis}={ax} is out of range for {full[0]} of shape {np.shape(x)}"
        reduced = {a % nd for a in ax}
        free = [i for i in range(nd) if i not in reduced]
        if not free:
            return None
        b = free[0]
        out = {n: b for n in full if case.inputs.get(n) is not None}
        out.update({n: 0 for n in rest if case.inputs.get(n) is not None})
        w = case.params.get(where)
        if isinstance(w, np.ndarray):
            if where_rest and np.ndim(w) == len(free) and np.ndim(w) < nd:
                pos = 0
            else:
                pos = np.ndim(w) - (nd - b)
            if pos >= 0 and np.shape(w)[pos] == np.shape(x)[b]:
                out[where] = pos
            elif pos >= 0 and np.shape(w)[pos] != 1:
                return f"{where} of shape {np.shape(w)} does not broadcast against {full[0]} of shape {np.shape(x)}"
        return out
    return layout


#: Keras: one sample per entry of the leading axis (the second where the class axis is 0), the
#: per-sample loss reduced over the last (class) axis; sample_weight has the per-sample shape.
KERAS = leading({"y_true": 2, "y_pred": 2, "sample_weight": 1},
                axes={"y_true": class_axis_first(), "y_pred": class_axis_first()})
#: Keras sparse labels: y_pred (N, C, ...), y_true (N, ...) or (N, ..., 1).
KERAS_SPARSE = leading({"y_true": 1, "y_pred": 2, "sample_weight": 1})
