"""float16 and bfloat16: a constant that underflows is a D004 finding, its representable twin passes;
a result beyond the dtype's range rounds to infinity (no finding); a missing kernel is a skip."""
from __future__ import annotations

import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.properties.common import overflows, representable, round_overflow
from losscheck.reference._core import finish
from losscheck.runner import Task, run_check
from losscheck.tolerance import MAX, round_to

torch = pytest.importorskip("torch")


def test_bfloat16_rounding_keeps_zero_dimensional_arrays():
    assert round_to("bfloat16", np.float64(3.0)).shape == ()
    assert round_to("bfloat16", np.array([1.0 + 2 ** -9])).tolist() == [1.0]


def test_results_beyond_the_dtype_round_to_infinity():
    x = np.array([65520.0, -1e9, 1.0, np.nan])
    assert representable(x, "float16").tolist() == [False, False, True, True]
    assert round_overflow(x, "float16", np.full(4, np.inf))[:3].tolist() == [np.inf, -np.inf, 1.0]
    assert round_overflow(x, "float16", x)[:3].tolist() == [65520.0, -1e9, 1.0]  # returned in float32
    assert representable(np.array([1e9]), "bfloat16").all()



@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_overflows_is_the_complement_of_representable_or_none(dtype):
    top = MAX[dtype]
    assert np.isfinite(round_to(dtype, np.array([top]))).all()   # MAX is the dtype's largest finite value
    for x in (np.array([top, -top, 1.0, 0.0]), np.array([top * 1.01, 1.0]), np.array([np.inf, np.nan, -3.0]),
              np.array([np.nan, 1e300]), np.zeros(0)):
        got, want = overflows(x, dtype), ~representable(x, dtype)
        assert (got is None and not want.any()) or (got is not None and got.tolist() == want.tolist()), (x, got)

def _log_loss(eps):
    """mean(log(input + eps)) - the 'add an epsilon before the log' idiom."""
    def call(ns, params):
        return lambda input, target: (ns.torch.log(input + eps) * target).mean()
    return call


def _spec(eps):
    def oracle(case):
        x, t = case.inputs["input"], case.inputs["target"]
        terms = np.log(x + eps) * t
        return finish(terms, np.abs(terms) + np.abs(t),
                      lambda g: {"predictions": g * t / (x + eps), "targets": g * np.log(x + eps)}, "mean")

    return LossSpec(id=f"planted.log_eps_{eps:g}", framework="torch", family="planted", reference="-",
                    args=(Arg("input", "predictions"), Arg("target", "targets")),
                    draw=drawer({}, pair("input", "target", "nonnegative", "unit")), call=_log_loss(eps),
                    oracle=oracle)


@pytest.mark.parametrize("prop", ["value", "gradient"])
def test_an_epsilon_that_underflows_in_float16_is_d004(prop):
    row = run_check(_spec(1e-8), Task("planted", "torch", prop, "float16"), examples=25, seed=0)
    assert (row["status"], row["code"]) == ("fail", "D004"), row["message"]
    assert "float16" in row["message"] and row["input"]["input"] == [0.0]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_representable_epsilon_passes(dtype):
    for prop in ("value", "gradient"):
        row = run_check(_spec(1e-3), Task("planted", "torch", prop, dtype), examples=25, seed=0)
        assert row["status"] == "pass", row["message"]


def test_the_same_underflow_in_float32_is_numerics_not_dtype():
    row = run_check(_spec(1e-50), Task("planted", "torch", "value", "float32"), examples=25, seed=0)
    assert (row["status"], row["code"]) == ("fail", "N001"), row["message"]


def test_a_missing_half_kernel_is_a_skip_with_the_framework_message():
    spec = catalog.get("torch.nn.MultiMarginLoss")
    row = run_check(spec, Task(spec.id, "torch", "value", "float16"), examples=5, seed=0)
    assert row["status"] == "skip" and "not implemented for 'Half'" in row["reason"]


def test_catalog_half_precision_passes_on_ordinary_losses():
    for loss in ("torch.nn.MSELoss", "torch.nn.CrossEntropyLoss"):
        spec = catalog.get(loss)
        for dtype in ("float16", "bfloat16"):
            for prop in ("value", "gradient"):
                row = run_check(spec, Task(loss, "torch", prop, dtype), examples=10, seed=0)
                assert row["status"] == "pass", (loss, dtype, prop, row["message"])


def test_an_expected_nonfinite_failure_covers_its_half_precision_name():
    """N001/N003 are D004 in half precision (explain.py); the expectation scoped to them must cover
    D004 there, and only there and only for those two codes."""
    from losscheck.catalog.spec import Expected
    e = Expected("NaN at -inf", property="value", code="N001")
    assert e.matches("value", "float16", "jax", code="D004")
    assert e.matches("value", "bfloat16", "jax", code="D004")
    assert not e.matches("value", "float32", "jax", code="D004")
    assert not e.matches("value", "float16", "jax", code="V001")
    assert not Expected("wrong value", property="value", code="V001").matches("value", "float16", "jax", code="D004")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_optax_nan_at_a_minus_inf_logit_is_its_recorded_failure_in_half(dtype):
    pytest.importorskip("optax")
    spec = catalog.get("optax.losses.softmax_cross_entropy")
    row = run_check(spec, Task(spec.id, "jax", "value", dtype), examples=10, seed=0)
    assert (row["status"], row["code"]) == ("xfail", "D004"), row["message"]
    assert "0 * -inf" in row["reason"]


def test_the_bfloat16_bound_is_below_a_factor_of_two():
    """A value at half the exact one, with no cancellation (scale = |value|), is 2^-1 / 2^-7 = 64
    bfloat16 eps: float32's 64 + 8 log2(1 + n) eps let it pass in bfloat16, the tighter bound does
    not, up to the 48-element draws and beyond."""
    from losscheck.tolerance import GRAD_BOUND, VALUE_BOUND, value_error

    err = float(value_error(0.5, 1.0, 1.0, "bfloat16"))
    assert err == 64.0
    assert err > VALUE_BOUND["bfloat16"](1000) and err > GRAD_BOUND["bfloat16"](1000)
    assert not err > VALUE_BOUND["float32"](1)            # what the float32 bound in eps would allow


@pytest.mark.parametrize("name", ["torch.half_mse", "torch.backward_factor"])
def test_a_factor_of_two_is_found_in_bfloat16(name):
    """Two planted bugs the bfloat16 selftest missed under float32's bound in eps (91.9 % detected):
    an MSE with a stray 1/2 and a custom backward without its factor 2."""
    from losscheck import selftest

    (mutant,) = selftest.corpus(["torch"], [name])
    found = selftest.check_loss(mutant, mutant.buggy, examples=5, seed=0, dtypes=("bfloat16",))
    assert mutant.family in found.families, found
    twin = selftest.check_loss(mutant, mutant.correct, examples=5, seed=0, dtypes=("bfloat16",))
    assert not twin.findings and not twin.errors, twin
