"""The activation/loss compatibility analysis on the real framework (torch: fast to import)."""
from functools import partial

import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.pairings import for_spec
from losscheck.catalog.spec import Arg, LossSpec
from losscheck.compat import Pairing, check_spec
from losscheck.frameworks import get_runtime, installed

pytestmark = pytest.mark.skipif(not installed("torch"), reason="needs torch")


def _effects(row):
    (table,) = row["compat"]
    return {e["activation"]: e for e in table["effects"]}


def test_softmax_before_cross_entropy_puts_a_floor_under_it():
    spec = get("torch.nn.CrossEntropyLoss")
    row = check_spec(spec, get_runtime("torch"), for_spec(spec.id))
    assert row["status"] == "pass"
    fx = _effects(row)
    assert fx["none"]["verdict"] == "ok" and fx["log_softmax"]["verdict"] == "ok"   # log_softmax is idempotent here
    assert fx["softmax"]["code"] == "A002" and fx["softmax"]["floor"] > 0.5
    assert fx["softmax"]["attenuation"] < 0.5


def test_logits_into_a_probability_loss_break_it():
    spec = get("torch.nn.BCELoss")
    fx = _effects(check_spec(spec, get_runtime("torch"), for_spec(spec.id)))
    assert fx["sigmoid"]["verdict"] == "ok"
    assert fx["none"]["verdict"] == "wrong" and fx["none"]["code"] == "A004"


def _planted_probabilities_loss(ns, params):
    """Documented as taking logits but treating its input as probabilities (a missing softmax)."""
    torch = ns.torch

    def loss(input, target):
        return -torch.log(input.gather(1, target[:, None].long()).clamp_min(1e-12)).mean()
    return loss


def test_a_loss_that_contradicts_its_documented_pairing_is_a001():
    spec = LossSpec(id="planted.logits_documented", framework="torch", family="classification", reference="-",
                    args=(Arg("input"), Arg("target", kind="int", differentiable=False)), draw=None,
                    call=_planted_probabilities_loss, oracle=None)
    row = check_spec(spec, get_runtime("torch"), [({}, Pairing("input", "none", {"target": lambda y, c: y}, {}))])
    assert row["status"] == "fail" and row["code"] == "A001", row["message"]


def test_every_pairing_names_a_catalog_argument():
    from losscheck import catalog
    from losscheck.catalog.pairings import PAIRINGS

    for spec_id, variants in PAIRINGS.items():
        spec = catalog.get(spec_id)
        names = {a.name for a in spec.args}
        for params, p in variants:
            assert p.pred in names and set(p.targets) <= names, spec_id
            assert np.all([k in spec.params_doc or k in ("reduction",) for k in params]), (spec_id, params)
