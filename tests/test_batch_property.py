"""The batch and rank-mismatch properties catch batch-handling bugs with their B codes, and pass the
correct twins."""
from __future__ import annotations

import pytest

from losscheck.catalog.build import drawer
from losscheck.catalog.inputs import pair
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.reference import regression as R
from losscheck.runner import Task, run_check

torch = pytest.importorskip("torch")


def spec_of(loss_id, call, reduction, **extra) -> LossSpec:
    return LossSpec(id=loss_id, framework="torch", family="planted", reference="-",
                    args=(Arg("input", "predictions"), Arg("target", "targets")),
                    draw=drawer({}, pair("input", "target")), call=call,
                    oracle=lambda c: R.squared_error(c.inputs["input"], c.inputs["target"], reduction=reduction),
                    pair=("input", "target"), **extra)


def check(spec, prop):
    return run_check(spec, Task(spec.id, "torch", prop, "float64"), examples=60, seed=0)


def centred_per_sample(ns, params):
    """Per-sample errors measured from the batch's mean residual: sample i depends on every sample."""
    def loss(input, target):
        r = input - target
        return (r - r.mean(dim=0, keepdim=True)) ** 2
    return loss


def fixed_divisor(ns, params):
    """'Mean' with the batch size of the first batch baked in as a constant."""
    return lambda input, target: ((input - target) ** 2).sum() / 4.0


def per_sample(ns, params):
    return lambda input, target: (input - target) ** 2


def mean(ns, params):
    return lambda input, target: ((input - target) ** 2).mean()


def test_mixing_samples_is_caught():
    """Shrinking ends at a batch of one, where the centred error is always 0 (B004); larger batches
    show the mixing itself (B003)."""
    row = check(spec_of("planted.centred", centred_per_sample, "none"), "batch")
    assert row["status"] == "fail" and row["code"] in ("B003", "B004"), row["message"]


def test_fixed_divisor_is_b002():
    row = check(spec_of("planted.fixed_divisor", fixed_divisor, "mean"), "batch")
    assert row["status"] == "fail" and row["code"] in ("B002", "V002", "V006"), row["message"]


@pytest.mark.parametrize("call, reduction", [(per_sample, "none"), (mean, "mean")])
def test_correct_twins_pass(call, reduction):
    row = check(spec_of(f"planted.twin_{reduction}", call, reduction), "batch")
    assert row["status"] == "pass", row["message"]


def test_broadcast_trap_is_measured_as_b005():
    spec = spec_of("torch.mse", lambda ns, p: ns.F.mse_loss, "mean")
    row = check(spec, "rank_mismatch")
    assert (row["status"], row["code"]) == ("warn", "B005"), row["message"]
    assert "(N, N)" in row["message"]


def test_specs_without_a_declared_batch_layout_are_skipped():
    spec = spec_of("planted.undeclared", mean, "mean")
    spec = LossSpec(**{**spec.__dict__, "pair": None})
    assert check(spec, "batch")["status"] == "skip"
