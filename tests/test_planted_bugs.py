"""Issue 2's planted bugs: each is wrapped as a spec and must be caught by `losscheck check` with the
right diagnosis; its correct twin must pass."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from losscheck import strategies as S
from losscheck.catalog.build import clip_bounds, drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, Case, LossSpec
from losscheck.reference import classification as C
from losscheck.reference import regression as R
from losscheck.runner import Task, run_check

torch = pytest.importorskip("torch")


def spec_of(loss_id, call, oracle, *, args=(Arg("input", "predictions"), Arg("target", "targets")),
            inputs=None, space=None, swappable=None, exact=None) -> LossSpec:
    return LossSpec(id=loss_id, framework="torch", family="planted", reference="-", args=tuple(args),
                    draw=drawer(space or {}, inputs or pair("input", "target")), call=call, oracle=oracle,
                    swappable=swappable, exact=exact)


def check(spec, prop="value", dtype="float64", examples=100):
    return run_check(spec, Task(spec.id, "torch", prop, dtype), examples=examples, seed=0)


# ---- 1. mean replaced by sum ----------------------------------------------------------------------

def mse_sum(ns, params):
    return lambda input, target: ((input - target) ** 2).sum()


def mse_mean(ns, params):
    return lambda input, target: ((input - target) ** 2).mean()


MSE_ORACLE = lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction="mean")  # noqa: E731


# ---- 2. arguments swapped in a non-symmetric loss ---------------------------------------------------

def poisson_inputs(data, params):
    shp = S.shape(data)
    return {"input": S.reals(data, shp, "input", -3, 3), "target": S.reals(data, shp, "target", 0, 6)}


def poisson_swapped(ns, params):
    return lambda input, target: ns.F.poisson_nll_loss(target, input)


def poisson_right(ns, params):
    return lambda input, target: ns.F.poisson_nll_loss(input, target)


POISSON_ORACLE = lambda c: R.poisson_nll(c.inputs["input"], c.inputs["target"], reduction="mean")  # noqa: E731
POISSON_ARGS = (Arg("input"), Arg("target"))


# ---- 3. label smoothing divided by the wrong class count ---------------------------------------------

def smoothing_inputs(data, params):
    n, k = S.batch_size(data), S.classes(data)
    return {"input": S.reals(data, (n, k), "input"), "target": S.simplex(data, (n, k), "target")}


def smoothed_ce(divisor_offset, ns, params):
    ls = params["label_smoothing"]

    def loss(input, target):
        k = input.shape[-1]
        smooth = target * (1 - ls) + ls / (k + divisor_offset)
        return -(smooth * ns.torch.log_softmax(input, dim=-1)).sum(-1).mean()
    return loss


SMOOTH_ORACLE = lambda c: C.softmax_cross_entropy(  # noqa: E731
    c.inputs["input"], c.inputs["target"], label_smoothing=c.params["label_smoothing"], reduction="mean")
SMOOTH_ARGS = (Arg("input", "logits"), Arg("target", "labels"))


# ---- 4. a gradient with the wrong sign in one element (custom autograd function) ---------------------

def mse_custom_backward(flip: bool, ns, params):
    class SquaredError(ns.torch.autograd.Function):
        @staticmethod
        def forward(ctx, input, target):
            ctx.save_for_backward(input, target)
            return ((input - target) ** 2).mean()

        @staticmethod
        def backward(ctx, grad):
            input, target = ctx.saved_tensors
            g = grad * 2 * (input - target) / input.numel()
            if flip:
                g = g.clone()
                g.view(-1)[0] = -g.view(-1)[0]
            return g, -g
    return SquaredError.apply


# ---- 5. clipping epsilon 1e-4 instead of 1e-7 ---------------------------------------------------------

def bce_inputs(data, params):
    shp = S.shape(data)
    return {"input": S.probabilities(data, shp, "input"), "target": S.binary_labels(data, shp, "target")}


def clipped_bce(eps, ns, params):
    def loss(input, target):
        p = input.clamp(eps, 1 - eps)
        return -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    return loss


BCE_ORACLE = lambda c: C.binary_cross_entropy(  # noqa: E731
    c.inputs["input"], c.inputs["target"], clip_eps=clip_bounds(1e-7, c.dtype), reduction="mean")
BCE_EXACT = lambda c: C.binary_cross_entropy(c.inputs["input"], c.inputs["target"], reduction="mean")  # noqa: E731
BCE_ARGS = (Arg("input", "probs"), Arg("target", "labels"))

SMOOTH_SPACE = {"label_smoothing": [0.1, 0.2, 0.3]}

PLANTED = [
    # (name, buggy spec, correct twin, property, expected code)
    ("mean replaced by sum", spec_of("planted.mse_sum", mse_sum, MSE_ORACLE),
     spec_of("twin.mse_mean", mse_mean, MSE_ORACLE), "value", "V002"),
    ("arguments swapped", spec_of("planted.poisson_swapped", poisson_swapped, POISSON_ORACLE, args=POISSON_ARGS,
                                  inputs=poisson_inputs, swappable=("input", "target")),
     spec_of("twin.poisson", poisson_right, POISSON_ORACLE, args=POISSON_ARGS, inputs=poisson_inputs,
             swappable=("input", "target")), "value", "V004"),
    ("label smoothing over C - 1 classes", spec_of("planted.smoothing", partial(smoothed_ce, -1), SMOOTH_ORACLE,
                                                   args=SMOOTH_ARGS, inputs=smoothing_inputs, space=SMOOTH_SPACE),
     spec_of("twin.smoothing", partial(smoothed_ce, 0), SMOOTH_ORACLE, args=SMOOTH_ARGS, inputs=smoothing_inputs,
             space=SMOOTH_SPACE), "value", "V001"),
    ("gradient sign flipped in one element", spec_of("planted.flip", partial(mse_custom_backward, True), MSE_ORACLE),
     spec_of("twin.custom_backward", partial(mse_custom_backward, False), MSE_ORACLE), "gradient", "G004"),
    ("clip epsilon 1e-4 instead of 1e-7", spec_of("planted.clip", partial(clipped_bce, 1e-4), BCE_ORACLE,
                                                  args=BCE_ARGS, inputs=bce_inputs, exact=BCE_EXACT),
     spec_of("twin.clip", partial(clipped_bce, 1e-7), BCE_ORACLE, args=BCE_ARGS, inputs=bce_inputs, exact=BCE_EXACT),
     "value", "V007"),
]


@pytest.mark.parametrize("name,bug,twin,prop,code", PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_bug_is_caught_with_its_code(name, bug, twin, prop, code):
    row = check(bug, prop)
    assert row["status"] == "fail", row
    assert row["code"] == code, row["message"]
    assert row["input"] is not None and row["repro"].startswith(f"losscheck check {bug.id}")
    assert row["error_eps"] > row["bound_eps"]


@pytest.mark.parametrize("name,bug,twin,prop,code", PLANTED, ids=[p[0] for p in PLANTED])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_twin_passes(name, bug, twin, prop, code, dtype):
    for p in ("value", "gradient"):
        row = check(twin, p, dtype)
        assert row["status"] in ("pass", "deviation"), row


def test_failure_reports_the_smallest_input():
    """Hypothesis shrinks: the mean/sum bug needs only two elements to show (one is a factor of 1)."""
    row = check(spec_of("planted.mse_sum", mse_sum, MSE_ORACLE))
    assert int(np.prod(row["shape"]["input"])) == 2
    assert "grows with the batch size" in row["message"]


def test_case_is_checked_in_the_dtype_it_was_rounded_to():
    seen = []

    def oracle(c: Case):
        seen.append((c.dtype, c.runtime))
        return MSE_ORACLE(c)

    check(spec_of("probe", mse_mean, oracle), "value", "float32", examples=3)
    assert set(seen) == {("float32", "torch")}


# ---- float64 inputs computed in float32 (D001), and what is not that ----------------------------------

def mse_in_float32(ns, params):
    return lambda input, target: ((input.float() - target.float()) ** 2).mean()


def mse_slightly_off(ns, params):
    return lambda input, target: ((input - target) ** 2).mean() * (1 + 1e-9)


@pytest.mark.parametrize("prop", ["value", "gradient"])
def test_a_loss_computed_in_float32_is_d001_with_the_cause_and_an_error_of_another_size_is_not(prop):
    row = check(spec_of("planted.mse_in_float32", mse_in_float32, MSE_ORACLE), prop, examples=30)
    assert (row["status"], row["code"]) == ("fail", "D001"), row["message"]
    assert row["message"].startswith("float64 inputs computed in float32: the ") and ".float(), tf.cast" in row["message"]
    assert check(spec_of("planted.mse_in_float32", mse_in_float32, MSE_ORACLE), prop, "float32",
                 examples=30)["status"] == "pass"
    # within float32's bound too, but the result is no float32 number: not a float32 computation
    off = check(spec_of("planted.mse_slightly_off", mse_slightly_off, MSE_ORACLE), prop, examples=30)
    assert off["status"] == "fail" and off["code"] != "D001", off["message"]
