"""torch.nn losses and their torch.nn.functional twins."""
from __future__ import annotations

import inspect
import sys
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from ..reference import regression as R
from ..tolerance import MAX
from .build import TORCH_REDUCTIONS, describe, drawer, torch_twins
from .inputs import pair
from .layouts import leading
from .spec import Arg, Deviation, Expected
from .. import strategies as S

PRED_TARGET = (Arg("input", "predictions"), Arg("target", "targets"))
RED = {"reduction": TORCH_REDUCTIONS}
ELEMENTWISE = dict(pair=("input", "target"), unbatched=True, lower_bound=0.0)
SWAP = ("input", "target")


def _red(case):
    return case.params.get("reduction", "mean")


# ---- torch 2.13's element-wise weight of F.mse_loss, F.l1_loss and F.huber_loss ------------------------

#: weight elements: exactly 0 (the term dropped; all of them 0 make mse/l1's mean 0/0) and 1 (0/1 masks)
#: often, otherwise spread over [1e-3, 4], so that sum(w) differs from the element count (a mean
#: normalised the other way is off), the weights differ from each other (a weight ignored, or applied to
#: the wrong element, changes the value) and from their squares (a weight applied inside the square).
#: No weights near the smallest normal number: there 1 / sum(w) in the backward of mse/l1's mean overflows
#: in float32 (inf * w where the gradient is finite), as torch_classification's class weights avoid.
_WEIGHT = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-3, 4.0))

TORCH_FUNCTIONAL_SRC = "https://github.com/pytorch/pytorch/blob/main/torch/nn/functional.py"


def _weighted_pair(data, params):
    """``input`` and ``target`` of one shape and, half the time, ``weight`` of that shape as an array
    parameter (torch requires the input's size: it does not broadcast the weight)."""
    out = pair("input", "target")(data, params)
    if S.flag(data, "use_weight"):
        out["__params__"] = {"weight": S.array(data, np.shape(out["input"]), _WEIGHT, "weight")}
    return out


def _weight_unsupported(case, dtype) -> bool:
    """A weighted case on a torch older than 2.13, whose F.mse_loss has no ``weight``."""
    F = sys.modules.get("torch.nn.functional")
    return "weight" in case.params and F is not None and "weight" not in inspect.signature(F.mse_loss).parameters


WEIGHT_BEFORE_2_13 = Expected(
    "torch.nn.functional.mse_loss, l1_loss and huber_loss take weight= from torch 2.13 on; an older torch raises "
    "TypeError (unexpected keyword argument 'weight') on the cases that draw one",
    TORCH_FUNCTIONAL_SRC, code="X001", when=_weight_unsupported)


def _functional_weight(specs, mean: str, reference: str, notes: str, **extra):
    """``torch_twins``' pair with the functional twin drawing ``weight`` (the class keeps its space:
    ``nn.MSELoss``/``L1Loss``/``HuberLoss`` have no weight)."""
    cls, fn = specs
    space = fn.draw.space
    doc = f"{describe(space)}, weight=None|input-shaped 0|1|[1e-3, 4] (mean: sum(w*loss)/{mean})"
    return [cls, replace(fn, draw=drawer(space, _weighted_pair), params_doc=doc, reference=reference, notes=notes,
                         batch_layout=leading({"input": 1, "target": 1}, follow={"weight": "input"}),
                         expected=(*fn.expected, WEIGHT_BEFORE_2_13), **extra)]


WEIGHT_NOTES = (
    "weight (torch 2.13): per element, the input's shape (ValueError otherwise; the docstring's 'Weights for each "
    "sample' is per element); 'none' is weight * loss, 'sum' its sum. 'mean' is sum(weight * loss) / sum(weight) "
    "for mse_loss and l1_loss (all weights 0: NaN value and gradient) but sum(weight * loss) / numel for "
    "huber_loss (V010 deviation there). l1_loss's __torch_function__ dispatch drops weight (torch bug: tensor "
    "subclasses only; not checked).")


def _weight(c):
    return c.params.get("weight")


def _huber(weighted_mean):
    return lambda c: R.huber(c.inputs["input"], c.inputs["target"], delta=c.params["delta"], weight=_weight(c),
                             weighted_mean=weighted_mean, reduction=_red(c))


SPECS = [
    *_functional_weight(
        torch_twins("MSELoss", "mse_loss", args=PRED_TARGET, space=RED, inputs=pair("input", "target"),
                    oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], weight=_weight(c),
                                                     reduction=_red(c)),
                    family="regression", reference="regression.squared_error", **ELEMENTWISE),
        "sum(w)", "regression.squared_error(weight)", WEIGHT_NOTES),
    *_functional_weight(
        torch_twins("L1Loss", "l1_loss", args=PRED_TARGET, space=RED, inputs=pair("input", "target"),
                    oracle=lambda c: R.absolute_error(c.inputs["input"], c.inputs["target"], weight=_weight(c),
                                                      reduction=_red(c)),
                    family="regression", reference="regression.absolute_error", **ELEMENTWISE),
        "sum(w)", "regression.absolute_error(weight)", WEIGHT_NOTES),
    *_functional_weight(
        torch_twins("HuberLoss", "huber_loss", args=PRED_TARGET,
                    space={**RED, "delta": st.floats(0.05, 4.0)}, inputs=pair("input", "target"),
                    oracle=_huber("count"), family="regression", reference="regression.huber", **ELEMENTWISE),
        "numel", "regression.huber(weight, weighted_mean='count')", WEIGHT_NOTES,
        exact=_huber("weight_sum"),
        deviation=Deviation(
            "with weight= and reduction='mean', huber_loss returns mean(weight * loss), the weighted sum divided by "
            "the number of elements, where the weighted mean (and torch's own mse_loss and l1_loss with the same "
            "weight=) divides it by sum(weight): a weight scaled by c scales huber's mean by c, and all weights 0 "
            "give 0 (NaN for mse_loss and l1_loss)", TORCH_FUNCTIONAL_SRC)),
    *torch_twins("SmoothL1Loss", "smooth_l1_loss", args=PRED_TARGET,
                 space={**RED, "beta": st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.05, 4.0))},
                 inputs=pair("input", "target"),
                 oracle=lambda c: R.smooth_l1(c.inputs["input"], c.inputs["target"], beta=c.params["beta"],
                                              reduction=_red(c)),
                 family="regression", reference="regression.smooth_l1", **ELEMENTWISE),
]


def _poisson_inputs(data, params):
    shp = S.shape(data)
    x = S.reals(data, shp, "input", -6.0, 6.0) if params["log_input"] else S.reals(data, shp, "input", 0.0, 8.0)
    return {"input": x, "target": S.reals(data, shp, "target", 0.0, 10.0)}


def _mean_sum_overflows(c, dtype) -> bool:
    """A mean whose per-element losses add up beyond the tested dtype's largest finite number."""
    if _red(c) != "mean":
        return False
    terms = np.asarray(R.poisson_nll(c.inputs["input"], c.inputs["target"], log_input=c.params["log_input"],
                                     full=c.params["full"], eps=c.params["eps"], reduction="none").value)
    with np.errstate(invalid="ignore"):
        # the sum rounded in the tested dtype may overflow a few ulps below its largest number
        return bool(np.sum(np.where(terms > 0, terms, 0.0)) > MAX[dtype] * (1.0 - 1e-5))


#: soak seed 22: torch.nn.functional.poisson_nll_loss, numerics, float32, input [88, 88, 88], target 0
MEAN_SUM_OVERFLOW = Expected(
    "torch's mean adds the per-element losses in the tensor's dtype and then divides by their number, so a "
    "mean of losses that add up beyond the dtype's largest finite number (3.40e38 in float32) is inf, though "
    "the mean itself is finite. Verified (torch 2.13.0, CPU): poisson_nll_loss(full((3,), 88.), zeros(3), "
    "log_input=True) is inf in float32 (each loss exp(88) = 1.6516e38; with two elements the mean is "
    "1.6516e38), as is exp(full((3,), 88.)).mean(); the gradient, exp(88) / 3 = 5.5055e37, is right",
    "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/ReduceOps.cpp",
    property="numerics", code="N001", when=_mean_sum_overflows)


def _poisson_oracle(eps_of):
    return lambda c: R.poisson_nll(c.inputs["input"], c.inputs["target"], log_input=c.params["log_input"],
                                   full=c.params["full"], eps=eps_of(c), reduction=_red(c))


SPECS += torch_twins(
    "PoissonNLLLoss", "poisson_nll_loss", args=(Arg("input"), Arg("target")),
    space={**RED, "log_input": [True, False], "full": [False, True], "eps": [1e-8, 1e-3]},
    inputs=_poisson_inputs, oracle=_poisson_oracle(lambda c: c.params["eps"]),
    exact=_poisson_oracle(lambda c: 0.0),
    deviation=Deviation("with log_input=False, log(input + eps) replaces log(input)",
                        "https://pytorch.org/docs/stable/generated/torch.nn.PoissonNLLLoss.html"),
    expected=(Expected("full=True: the Stirling term is masked with where() for target <= 1, and its "
                       "log(target) branch leaks NaN into d/dtarget at target == 0 (the value is right)",
                       property="gradient", code="N003",
                       when=lambda c, dtype: c.params.get("full") and bool((c.inputs["target"] == 0).any())),
              MEAN_SUM_OVERFLOW),
    family="regression", reference="regression.poisson_nll", swappable=SWAP,
    batch_layout=leading({"input": 1, "target": 1}), unbatched=True)


def _gaussian_inputs(data, params):
    n, d = S.batch_size(data), S.classes(data, "D", 1, 4)
    form = S.choice(data, ["same", "one_short", "trailing_1"], "var_form")
    vshape = {"same": (n, d), "one_short": (n,), "trailing_1": (n, 1)}[form]
    small = S.flag(data, "var_below_eps")
    var = S.reals(data, vshape, "var", 0.0, 2e-6) if small else S.positives(data, vshape, "var", 1e-3, 4.0)
    return {"input": S.reals(data, (n, d), "input"), "target": S.reals(data, (n, d), "target"), "var": var}


def _gaussian_oracle(eps_of):
    return lambda c: R.gaussian_nll(c.inputs["input"], c.inputs["target"], c.inputs["var"], full=c.params["full"],
                                    eps=eps_of(c), reduction=_red(c))


SPECS += torch_twins(
    "GaussianNLLLoss", "gaussian_nll_loss", args=(Arg("input"), Arg("target"), Arg("var")),
    space={**RED, "full": [False, True], "eps": [1e-6, 1e-3]},
    inputs=_gaussian_inputs, oracle=_gaussian_oracle(lambda c: c.params["eps"]),
    exact=_gaussian_oracle(lambda c: 0.0),
    deviation=Deviation("var is clamped to eps in the value, and the gradient passes straight through the clamp",
                        "https://pytorch.org/docs/stable/generated/torch.nn.GaussianNLLLoss.html"),
    family="regression", reference="regression.gaussian_nll",
    # var is (N, D), (N, 1) or one dimension short, (N,): batched on its first axis in every form
    batch_layout=leading({"input": 1, "target": 1, "var": 1}), unbatched=True)


# ---- classification and divergence losses ----------------------------------------------------------

from .torch_classification import SPECS as _CLASSIFICATION  # noqa: E402

SPECS += _CLASSIFICATION
