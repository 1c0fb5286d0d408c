"""torch 2.13's element-wise ``weight`` of F.mse_loss, F.l1_loss and F.huber_loss: the oracle's
semantics against torch itself, the catalog's draws (the functional twins only), the recorded
mse/huber disagreement, and a planted bug (a weighted mean divided by the element count) caught."""
from __future__ import annotations

import inspect
import warnings
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from losscheck import catalog
from losscheck import strategies as S
from losscheck.catalog.spec import Case
from losscheck.reference import regression as R

FUNCTIONAL = ("torch.nn.functional.mse_loss", "torch.nn.functional.l1_loss", "torch.nn.functional.huber_loss")
CLASSES = ("torch.nn.MSELoss", "torch.nn.L1Loss", "torch.nn.HuberLoss")


def _draws(spec, n=60):
    return S.sample(spec.draw, n)


@pytest.mark.parametrize("spec_id", FUNCTIONAL)
def test_functional_twin_draws_an_input_shaped_weight(spec_id):
    cases = _draws(catalog.get(spec_id))
    weighted = [c for c in cases if "weight" in c.params]
    assert 0 < len(weighted) < len(cases), "weight both drawn and left out (None)"
    for c in weighted:
        w = c.params["weight"]
        assert isinstance(w, np.ndarray) and w.shape == np.shape(c.inputs["input"]) and np.all(w >= 0)
    assert any(np.any(c.params["weight"] == 0) for c in weighted)
    assert any(np.all(c.params["weight"] == 0) for c in weighted), "the mean's 0/0 is drawn"
    assert any(len(set(np.ravel(c.params["weight"]))) > 1 for c in weighted), "non-uniform weights"


@pytest.mark.parametrize("spec_id", CLASSES)
def test_classes_keep_their_space(spec_id):
    """nn.MSELoss, nn.L1Loss and nn.HuberLoss take no weight."""
    assert not any("weight" in c.params for c in _draws(catalog.get(spec_id), 30))


def test_huber_mean_is_recorded_as_a_deviation():
    mse, huber = catalog.get(FUNCTIONAL[0]), catalog.get(FUNCTIONAL[2])
    x, t, w = np.array([1.0, -2.0, 0.5]), np.array([0.0, 0.0, 0.0]), np.array([2.0, 0.0, 4.0])
    case = Case({"input": x, "target": t}, {"reduction": "mean", "delta": 1.0, "weight": w})
    terms = R.huber(x, t, delta=1.0).value
    assert np.isclose(huber.oracle(case).value, np.sum(w * terms) / 3)
    assert np.isclose(huber.exact(case).value, np.sum(w * terms) / np.sum(w))
    assert np.isclose(mse.oracle(case).value, np.sum(w * x * x) / np.sum(w))
    assert huber.deviation is not None and mse.deviation is None
    assert "sum(w*loss)/numel" in huber.params_doc and "sum(w*loss)/sum(w)" in mse.params_doc


def test_zero_weight_sum_is_nan_for_mse_and_l1_and_zero_for_huber():
    x, t, w = np.array([[1.0, 2.0]]), np.array([[0.0, 5.0]]), np.zeros((1, 2))
    for fn in (R.squared_error, R.absolute_error):
        with np.errstate(all="ignore"):
            r = fn(x, t, weight=w, reduction="mean")
            g = r.grad()
        assert np.isnan(r.value) and all(np.isnan(v).all() for v in g.values())
    r = R.huber(x, t, weight=w, weighted_mean="count", reduction="mean")
    assert r.value == 0 and all((v == 0).all() for v in r.grad().values())
    with pytest.raises(ValueError, match="input's shape"):
        R.squared_error(x, t, weight=np.ones(2), reduction="mean")


# ---- against torch itself ------------------------------------------------------------------------------

def _torch_with_weight():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    if "weight" not in inspect.signature(F.mse_loss).parameters:
        pytest.skip(f"torch {torch.__version__} has no weight= in F.mse_loss (2.13 added it)")
    return torch, F


ORACLES = {"mse_loss": R.squared_error, "l1_loss": R.absolute_error,
           "huber_loss": partial(R.huber, delta=1.3, weighted_mean="count")}


@pytest.mark.parametrize("name", sorted(ORACLES))
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("form", ["weights", "zeros", "broadcast_input"])
def test_oracle_is_torch(name, reduction, form):
    """Value and both gradients, NaN where torch's are (all weights 0), and the (N, 1) input against an
    (N, D) target whose weight has the input's shape: mse/l1's mean divides by that weight's sum."""
    torch, F = _torch_with_weight()
    rng = np.random.default_rng(7)
    shape, tshape = ((3, 1), (3, 4)) if form == "broadcast_input" else ((2, 3), (2, 3))
    x, t = rng.normal(size=shape) * 2, rng.normal(size=tshape) * 2
    w = np.zeros(shape) if form == "zeros" else rng.uniform(0.0, 4.0, shape) * (rng.random(shape) < 0.7)
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    kw = {"delta": 1.3} if name == "huber_loss" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch warns about the broadcast target
        v = getattr(F, name)(xt, tt, reduction=reduction, weight=torch.tensor(w), **kw)
    cot = np.full(tuple(v.shape), 1.5)
    gx, gt = torch.autograd.grad(v, (xt, tt), torch.tensor(cot))
    with np.errstate(all="ignore"):
        ref = ORACLES[name](x, t, weight=w, reduction=reduction)
        g = ref.grad(cot)
    for got, want in ((v, ref.value), (gx, g["predictions"]), (gt, g["targets"])):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12, atol=1e-300, equal_nan=True)


# ---- a planted bug -------------------------------------------------------------------------------------

def mse_mean_over_count(input, target, reduction="mean", weight=None):
    """A weighted MSE whose mean divides by the element count (huber_loss's rule), not by sum(weight)."""
    if weight is None:
        import torch.nn.functional as F

        return F.mse_loss(input, target, reduction=reduction)
    loss = weight * (input - target) ** 2
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def test_planted_mean_over_count_is_caught():
    _torch_with_weight()
    from losscheck.runner import Task, run_check

    spec = replace(catalog.get(FUNCTIONAL[0]), id="planted.mse_loss_weighted_mean_over_count",
                   call=lambda ns, params: partial(mse_mean_over_count, **params))
    row = run_check(spec, Task(spec.id, "torch", "value", "float64"), examples=60, seed=0)
    assert row["status"] == "fail" and row["code"].startswith("V"), row
    assert row["error_eps"] > row["bound_eps"]
    twin = catalog.get(FUNCTIONAL[0])
    assert run_check(twin, Task(twin.id, "torch", "value", "float64"), examples=60, seed=0)["status"] == "pass"


def huber_ignores_weight(input, target, reduction="mean", delta=1.0, weight=None):
    import torch.nn.functional as F

    return F.huber_loss(input, target, reduction=reduction, delta=delta)


def huber_over_weight_sum(input, target, reduction="mean", delta=1.0, weight=None):
    """huber_loss 'made consistent' with mse_loss: the weighted mean over sum(weight)."""
    import torch.nn.functional as F

    if weight is None or reduction != "mean":
        return F.huber_loss(input, target, reduction=reduction, delta=delta, weight=weight)
    return F.huber_loss(input, target, reduction="sum", delta=delta, weight=weight) / weight.sum().clamp_min(1e-300)


@pytest.mark.parametrize("bug, code", [(huber_ignores_weight, "V001"), (huber_over_weight_sum, "V005")])
def test_planted_huber_weight_bugs(bug, code):
    """A huber_loss that drops the weight disagrees (shrunk to weight [0], where the weighted mean is
    0/0: an undefined exact loss matches nothing, so no V005); one that divides by sum(weight)
    matches the exact weighted mean, not torch's documented semantics (V005)."""
    _torch_with_weight()
    from losscheck.runner import Task, run_check

    spec = replace(catalog.get(FUNCTIONAL[2]), id=f"planted.{bug.__name__}",
                   call=lambda ns, params: partial(bug, **params))
    row = run_check(spec, Task(spec.id, "torch", "value", "float64"), examples=100, seed=0)
    assert row["status"] == "fail" and row["code"] == code, row
