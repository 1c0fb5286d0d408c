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


#: spec id -> why the batch property cannot judge it (none today: every catalog entry declares a layout)
LAYOUT_EXEMPT: dict[str, str] = {}


def test_every_catalog_spec_declares_its_batch_layout():
    """A new spec must say where its batch is (pair, batch_axes, pools_batch or batch_layout), or be
    exempt here with a reason; otherwise the batch property silently skips it."""
    from losscheck import catalog
    from losscheck.properties.batch import declares_layout

    missing = sorted(s.id for s in catalog.all_specs() if not declares_layout(s) and s.id not in LAYOUT_EXEMPT)
    assert not missing, f"{len(missing)} specs declare no batch layout: {', '.join(missing)}"


def test_unbatched_class_input_is_not_tiled():
    """torch's (C,) input with a 0-d target has no batch axis: its class axis must not be tiled."""
    import numpy as np

    from losscheck import catalog
    from losscheck.catalog.spec import Case
    from losscheck.properties.batch import batch_axes, tile

    spec = catalog.get("torch.nn.CrossEntropyLoss")
    flat = Case({"input": np.zeros(3), "target": np.array(1.0)}, {"ignore_index": -100, "label_smoothing": 0.0})
    assert batch_axes(spec, flat) is None
    batched = Case({"input": np.zeros((2, 3, 4)), "target": np.zeros((2, 4))}, dict(flat.params))
    assert tile(spec, batched, 2).shape == {"input": (4, 3, 4), "target": (4, 4)}
