"""A loss below its mathematical lower bound is diagnosed as such (N002) by the value property too,
before the value-level causes (clipping, constant factors) that cannot make a loss negative; a loss
that is minus the oracle's is named a dropped sign."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.spec import Case
from losscheck.properties import numerics, value
from losscheck.properties.common import Finding
from losscheck.properties.explain import below_lower_bound

torch = pytest.importorskip("torch")

from losscheck.frameworks import get_runtime  # noqa: E402

#: p = 0 where the label is 1: torch's clamp at log >= -100 acts, so V007 (clipping) was the
#: diagnosis a negated BCE got before the lower bound was looked at
CLAMPED = Case({"input": np.array([0.0, 0.25, 0.9]), "target": np.array([1.0, 0.0, 1.0])}, {"reduction": "mean"})


def _wrapped(spec_id, transform):
    spec = catalog.get(spec_id)

    def call(ns, params):
        loss = spec.call(ns, params)
        return lambda *args, **kw: transform(loss(*args, **kw))
    return dataclasses.replace(spec, call=call)


def _finding(spec, case, dtype="float64", prop=value) -> Finding:
    with pytest.raises(Finding) as err, np.errstate(all="ignore"):
        prop.check(spec, case, dtype, get_runtime("torch"))
    return err.value


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_negated_loss_is_n002_named_a_dropped_sign(dtype):
    f = _finding(_wrapped("torch.nn.BCELoss", lambda out: -out), CLAMPED, dtype)
    assert f.code == "N002", f.message
    assert "minus the oracle's" in f.message and "below its lower bound 0" in f.message


def test_a_shifted_loss_below_its_bound_is_n002_without_the_sign_note():
    f = _finding(_wrapped("torch.nn.CrossEntropyLoss", lambda out: out - 10.0),
                 Case({"input": np.array([[2.0, -1.0, 0.5]]), "target": np.array([0.0])},
                      {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0}))
    assert f.code == "N002" and "minus the oracle's" not in f.message, f.message


def test_a_wrong_loss_above_its_bound_keeps_its_value_diagnosis():
    f = _finding(_wrapped("torch.nn.BCELoss", lambda out: out * 3.0),
                 dataclasses.replace(CLAMPED, inputs={"input": np.array([0.5, 0.25, 0.9]),
                                                      "target": np.array([1.0, 0.0, 1.0])}))
    assert f.code.startswith("V"), f.message


def test_a_spec_without_a_lower_bound_is_never_n002():
    spec = catalog.get("torch.nn.NLLLoss")   # -input[t] of arbitrary log-probabilities: no bound
    assert spec.lower_bound is None
    case = Case({"input": np.array([[-0.5, -2.0]]), "target": np.array([0])}, {"reduction": "mean", "ignore_index": -100})
    f = _finding(_wrapped("torch.nn.NLLLoss", lambda out: -out), case)
    assert f.code != "N002", f.message


def test_the_numerics_property_reports_the_same_finding():
    f = _finding(_wrapped("torch.nn.BCELoss", lambda out: -out), CLAMPED, prop=numerics)
    assert f.code == "N002" and "minus the oracle's" in f.message, f.message


def test_below_lower_bound_allows_the_rounding_slack():
    spec = catalog.get("torch.nn.BCELoss")
    case = Case({}, {})
    assert below_lower_bound(spec, case, np.array([-1e-15]), np.array([1.0]), 64 * 2.0 ** -52) is None
    f = below_lower_bound(spec, case, np.array([0.5, -1e-10]), np.array([1.0, 1.0]), 64 * 2.0 ** -52)
    assert f.code == "N002" and "-1e-10" in f.message and "minus" not in f.message


def test_a_value_finding_prints_enough_digits_to_tell_the_two_values_apart():
    from losscheck.properties.explain import _fmt_pair

    # sigmoid then BCE against BCEWithLogitsLoss: 85 eps apart at 8.0, equal to nine digits
    assert _fmt_pair(8.000335406143137, 8.000335406143212) == ("8.00033540614314", "8.00033540614321")
    assert _fmt_pair(0.762461899, 0.693147181) == ("0.762461899", "0.693147181")
    assert _fmt_pair(1.0, 1.0) == ("1", "1")
    assert _fmt_pair(np.array([1.0, 2.0]), np.array([1.0, 2.5]))[1] == "[1.  2.5]"
