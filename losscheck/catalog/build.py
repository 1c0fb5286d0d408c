"""Helpers that keep each spec a few declarative lines.

* :func:`draw_params` draws a parameter space (lists are choices, strategies are drawn);
* :func:`torch_twins` makes the ``torch.nn.XLoss`` spec and its ``torch.nn.functional`` twin;
* :func:`keras_twins` makes the ``keras.losses.X`` class spec and its function spec;
* :func:`optax_spec` makes an ``optax.losses`` function spec;
* :func:`keras_reduce` maps a Keras reduction and sample weight onto the oracle's ``reduce``.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

import numpy as np
from hypothesis.strategies import SearchStrategy, sampled_from

from . import layouts
from .spec import Arg, Case, Expected, LossSpec, Precision

TORCH_REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def clip_bounds(eps: float, dtype: str) -> tuple[float, float]:
    """``[eps, 1 - eps]`` as a framework computes them in ``dtype``: in float32, 1 - 1e-7 is 1 - 2**-23."""
    from ..tolerance import round_to

    return float(round_to(dtype, eps)), float(round_to(dtype, 1.0 - eps))


def draw_params(data, space: Mapping[str, Any]) -> dict:
    out = {}
    for name, choices in space.items():
        strat = choices if isinstance(choices, SearchStrategy) else sampled_from(list(choices))
        out[name] = data.draw(strat, label=name)
    return out


def describe(space: Mapping[str, Any]) -> str:
    parts = []
    for name, choices in space.items():
        if isinstance(choices, SearchStrategy):
            parts.append(f"{name}=<{choices!r}>"[:60])
        else:
            parts.append(f"{name}={'|'.join(map(str, choices))}")
    return ", ".join(parts)


def drawer(space: Mapping[str, Any], inputs: Callable[[Any, dict], dict],
           fixed: Mapping[str, Any] | None = None) -> Callable[[Any], Case]:
    """``draw(data)``: parameters from ``space`` first, then ``inputs(data, params)``.

    ``inputs`` may add array-valued parameters (class weights) by returning them under the key
    ``"__params__"``.
    """
    def draw(data) -> Case:
        params = dict(fixed or {})
        params.update(draw_params(data, space))
        arrays = dict(inputs(data, params))
        params.update(arrays.pop("__params__", {}))
        return Case(arrays, params)
    draw.space, draw.inputs, draw.fixed = space, inputs, dict(fixed or {})  # for pinning (losscheck.userloss)
    return draw


def _torch_class(name, ns, params):
    return getattr(ns.torch.nn, name)(**params)


def _torch_functional(name, ns, params):
    return partial(getattr(ns.F, name), **params)


def torch_twins(cls: str, functional: str | None, *, args, space, inputs, oracle, exact=None, family, reference,
                **extra) -> list[LossSpec]:
    """``torch.nn.<cls>`` and ``torch.nn.functional.<functional>`` with the same parameter space."""
    common = dict(framework="torch", family=family, reference=reference, args=tuple(args),
                  draw=drawer(space, inputs), oracle=oracle, exact=exact, params_doc=describe(space), **extra)
    specs = [LossSpec(id=f"torch.nn.{cls}", call=partial(_torch_class, cls), **common)]
    if functional:
        specs.append(LossSpec(id=f"torch.nn.functional.{functional}", call=partial(_torch_functional, functional),
                              **common))
    return specs


def _keras_class(name, ns, params):
    return getattr(ns.keras.losses, name)(**params)


def _keras_function(name, ns, params):
    return partial(getattr(ns.keras.losses, name), **params)


#: Keras' type promotion maps float64 to float32 on its jax and torch backends
#: (BIT64_TO_BIT32_DTYPE in keras/src/backend/common/dtypes.py), so ops.mean and friends reduce
#: float64 inputs in float32 and cast back.
KERAS_FLOAT64_IN_FLOAT32 = Precision(
    "float64", "float32",
    "Keras promotes float64 with float32 to float32 on its jax and torch backends (BIT64_TO_BIT32_DTYPE), "
    "so ops.mean and similar reductions run in float32",
    "https://github.com/keras-team/keras/blob/master/keras/src/backend/common/dtypes.py",
    runtimes=("keras-jax", "keras-torch"))


def _has_tiny(x, limit: float) -> bool:
    """Whether ``x`` holds a nonzero value of magnitude below ``limit``."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    return bool(np.any((a > 0) & (a < limit)))


def _sample_weight_below_float32(case, dtype) -> bool:
    w = case.inputs.get("sample_weight")
    return w is not None and dtype == "float64" and _has_tiny(w, float(np.finfo(np.float32).tiny))


#: Keras reduces float64 in float32 on its jax and torch backends (KERAS_FLOAT64_IN_FLOAT32): there a
#: sample weight below float32's smallest normal is 0 or subnormal, and a batch of such samples has
#: weight sum 0: divide_no_nan returns 0 where the float64 weighted mean is the samples' mean loss
KERAS_TINY_SAMPLE_WEIGHT = Expected.on(
    ("keras-jax", "keras-torch"),
    "Keras reduces float64 losses in float32 on the jax and torch backends: a sample weight below float32's "
    "smallest normal (1.2e-38) flushes to 0 there, so a batch whose weights all do has weight sum 0 and "
    "'mean_with_sample_weight' returns 0 (divide_no_nan) instead of the weighted mean. Verified: "
    "CategoricalCrossentropy(reduction='mean_with_sample_weight')([[1, 0]], [[.5, .5]], sample_weight=[1.9e-113]) "
    "in float64 is 0 on keras-torch, log 2 on keras-tensorflow",
    "https://github.com/keras-team/keras/blob/master/keras/src/backend/common/dtypes.py",
    when=_sample_weight_below_float32)


#: values this small make float32 subnormals in products with the loss's O(1) terms
_NEAR_SUBNORMAL = float(np.finfo(np.float32).tiny) * 2.0 ** 24


def _near_float32_subnormal(case, dtype) -> bool:
    for v in (*case.inputs.values(), *case.params.values()):
        if isinstance(v, (list, tuple, np.ndarray, float)) and not isinstance(v, bool):
            try:
                if _has_tiny(v, _NEAR_SUBNORMAL):
                    return True
            except (TypeError, ValueError):   # a non-numeric parameter
                continue
    return False


#: TensorFlow (oneDNN/Eigen) and XLA on CPU flush subnormal results to zero
KERAS_FLUSHES_SUBNORMALS = Expected.on(
    ("keras-tensorflow", "keras-jax"),
    "TensorFlow and XLA on CPU flush subnormal numbers to zero, and Keras computes float64 losses in float32 on "
    "jax (and builds constants such as alpha in float32): an input, weight or parameter below about 2e-31 "
    "makes float32 subnormals that become 0 (a zero loss or gradient where the exact one is tiny). Measured in "
    "the 100,000-example soak: MeanAbsolutePercentageError with sample_weight 1.5e-39 (float32) gives 0; "
    "cosine_similarity's d/dy_true at y_pred 2.2e-313 (float64, TensorFlow) is 0; "
    "categorical_focal_crossentropy with alpha [1.4e-45, 0] in float64 is 0 (exact 9.7e-46)",
    "https://github.com/jax-ml/jax/discussions/21932", when=_near_float32_subnormal)


def _float32_subnormal_weight_mean(case, dtype) -> bool:
    w = case.inputs.get("sample_weight")
    return (w is not None and dtype == "float32" and case.params.get("reduction") == "mean_with_sample_weight"
            and _has_tiny(w, _NEAR_SUBNORMAL))


#: torch keeps float32 subnormals but rounds them coarsely: the weighted mean of losses by weights this
#: small is a ratio of subnormal products, and 1 / sum(w) overflows below 2.9e-39
KERAS_TORCH_SUBNORMAL_WEIGHT = Expected(
    "Keras on torch in float32 with 'mean_with_sample_weight' and a sample weight below about 2e-31: each "
    "loss * weight is a float32 subnormal (relative rounding up to 50 %), and the sum of them is divided by "
    "the equally tiny weight sum, so the weighted mean is off by that rounding (and its gradient overflows "
    "where 1 / sum(w) does). Verified: CTC(reduction='mean_with_sample_weight')(y_true=[[0]], "
    "y_pred=zeros((1, 1, 2)), sample_weight=[1.4e-45]) in float32 on keras-torch is 1.0, the exact value "
    "log 2; 0.6931420 at a weight of 1e-40 (soak seed 6, batch property, B004)",
    "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py",
    runtime="keras-torch", when=_float32_subnormal_weight_mean)


def keras_twins(cls: str, function: str | None, *, space, fn_space=None, inputs, oracle, exact=None, family,
                reference, y_true: str = "targets", y_pred: str = "predictions", sample_weight=True,
                **extra) -> list[LossSpec]:
    """``keras.losses.<cls>`` (reduced, with ``reduction`` and ``sample_weight``) and the function
    ``keras.losses.<function>`` (per-sample values, no reduction).

    ``oracle(case, reduce_kw)`` receives the Keras reduction already mapped onto the oracle's
    ``reduce`` keywords (:func:`keras_reduce`); the function spec passes ``reduction="none"``.
    """
    args = [Arg("y_true", y_true), Arg("y_pred", y_pred)]
    cls_args = args + ([Arg("sample_weight", differentiable=False)] if sample_weight else [])
    cls_space = {**space, "reduction": KERAS_REDUCTIONS}

    def cls_inputs(data, params):
        arrays = dict(inputs(data, params))
        if sample_weight and data.draw(sampled_from([False, True]), label="use_sample_weight"):
            from .. import strategies as S
            # the per-sample shape under the parameters drawn with the inputs too (a drawn axis)
            drawn = {**params, **arrays.get("__params__", {})}
            given = {k: v for k, v in arrays.items() if k != "__params__"}
            shp = np.shape(oracle_sample_shape(given, oracle, drawn))
            arrays["sample_weight"] = S.reals(data, shp, "sample_weight", 0.0, 4.0)
        return arrays

    def cls_oracle(case):
        sw = case.inputs.get("sample_weight")
        return oracle(case, keras_reduce(case.params.get("reduction", "sum_over_batch_size"), sw))

    def fn_oracle(case):
        return oracle(case, {"reduction": "none"})

    def cls_exact(case):
        sw = case.inputs.get("sample_weight")
        return exact(case, keras_reduce(case.params.get("reduction", "sum_over_batch_size"), sw))

    extra["precision"] = (KERAS_FLOAT64_IN_FLOAT32, *extra.get("precision", ()))
    if not extra.get("pools_batch"):
        extra.setdefault("batch_layout", layouts.KERAS)
    extra["expected"] = (*extra.get("expected", ()), *KERAS_FLUSHES_SUBNORMALS)
    common = dict(framework="keras", family=family, reference=reference, **extra)
    weight_expected = (*KERAS_TINY_SAMPLE_WEIGHT, KERAS_TORCH_SUBNORMAL_WEIGHT) if sample_weight else ()
    cls_common = dict(common, expected=(*common.get("expected", ()), *weight_expected))
    specs = [LossSpec(id=f"keras.losses.{cls}", args=tuple(cls_args), draw=drawer(cls_space, cls_inputs),
                      call=partial(_keras_class, cls), oracle=cls_oracle, exact=cls_exact if exact else None,
                      params_doc=describe(cls_space), **cls_common)]
    if function:
        fspace = space if fn_space is None else fn_space
        specs.append(LossSpec(id=f"keras.losses.{function}", args=tuple(args), draw=drawer(fspace, inputs),
                              call=partial(_keras_function, function), oracle=fn_oracle,
                              exact=(lambda case: exact(case, {"reduction": "none"})) if exact else None,
                              params_doc=describe(fspace), **common))
    return specs


def oracle_sample_shape(arrays, oracle, params):
    """The shape of the per-sample losses (what ``sample_weight`` must match)."""
    return np.asarray(oracle(Case(arrays, params), {"reduction": "none"}).value)


def keras_reduce(reduction, sample_weight) -> dict:
    """Keras' ``reduce_weighted_values`` as oracle ``reduce`` keywords (keras/src/losses/loss.py).

    ``sum_over_batch_size`` and ``mean`` divide the weighted sum by the number of per-sample
    losses; ``mean_with_sample_weight`` divides it by the sum of the weights (by the count when
    there are none); a zero divisor gives 0 (``divide_no_nan``).
    """
    red = "none" if reduction in (None, "none") else reduction
    kw: dict[str, Any] = {"reduction": red, "reduce_scalars": False}
    if sample_weight is not None:
        kw["weights"] = np.asarray(sample_weight, dtype=np.float64)
    return kw


def _optax_fn(name, ns, params):
    return partial(getattr(ns.optax.losses, name), **params)


def optax_spec(name: str, *, args, space, inputs, oracle, exact=None, family, reference, **extra) -> LossSpec:
    return LossSpec(id=f"optax.losses.{name}", framework="optax", family=family, reference=reference,
                    args=tuple(args), draw=drawer(space, inputs), call=partial(_optax_fn, name), oracle=oracle,
                    exact=exact, params_doc=describe(space), **extra)
