"""``ranks=`` and ``where=``: checking a user's loss on the part of its reference's input space it
is written for (an (N, C) label-smoothing cross-entropy against torch's CrossEntropyLoss, which also
draws unbatched, K-dimensional, probability and ignored targets); ``mean=True``: a loss that averages
an unreduced reference (``jnp.mean(optax.losses.huber_loss(...))``)."""
from __future__ import annotations

import numpy as np
import pytest

from losscheck.frameworks import installed
from losscheck.strategies import sample
from losscheck.userloss import UsageError, check_callable, spec_for

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
CE = "torch.nn.CrossEntropyLoss"
NOT_IGNORED = {"ranks": {"logits": 2, "target": 1}, "where": lambda x: bool((x["target"] != -100).all())}


def smoothed_ce(logits, target):
    """Label smoothing 0.1 written out for (N, C) logits and (N,) class indices."""
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (0.9 * nll - 0.1 * logp.mean(dim=-1)).mean()


def smoothed_ce_summed(logits, target):
    """The usual slip: the smoothing term summed over the classes instead of averaged."""
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (0.9 * nll - 0.1 * logp.sum(dim=-1)).mean()


def test_only_the_ranks_and_draws_asked_for_are_drawn():
    spec = spec_for(smoothed_ce, CE, params={"label_smoothing": 0.1}, **NOT_IGNORED)
    cases = sample(spec.draw, 30)
    assert len(cases) == 30
    assert {(c.inputs["input"].ndim, c.inputs["target"].ndim) for c in cases} == {(2, 1)}
    assert all((c.inputs["target"] != -100).all() for c in cases)
    # the reference's own draws have the other forms too
    plain = sample(spec_for(smoothed_ce, CE, params={"label_smoothing": 0.1}).draw, 30)
    assert {c.inputs["input"].ndim for c in plain} > {2}


def test_an_nc_loss_fails_on_the_other_ranks_with_a_hint_and_passes_narrowed():
    rows = check_callable(smoothed_ce, CE, params={"label_smoothing": 0.1}, properties=["value"],
                          dtypes=["float64"], examples=10)
    assert [r["code"] for r in rows] == ["X001"]
    narrowed = check_callable(smoothed_ce, CE, params={"label_smoothing": 0.1}, examples=10, **NOT_IGNORED)
    assert {r["status"] for r in narrowed} == {"pass"}


def test_narrowing_does_not_hide_a_wrong_loss():
    rows = check_callable(smoothed_ce_summed, CE, params={"label_smoothing": 0.1}, examples=10, **NOT_IGNORED)
    assert {(r["property"], r["code"]) for r in rows} == {("value", "V001"), ("gradient", "G005")}


@pytest.mark.parametrize("narrow, words", [
    ({"ranks": {"scores": 2}}, "ranks= names 'scores', not an argument"),
    ({"ranks": {"logits": 7}}, "draws input of rank 1, 2, 3, 4; ranks= asks for 7"),
    ({"ranks": {"logits": "2"}}, "a rank is a number of dimensions"),
    ({"where": lambda x: False}, "where= accepts none of torch.nn.CrossEntropyLoss's first 40 draws"),
])
def test_narrowing_that_cannot_be_met_is_a_usage_error(narrow, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        spec_for(smoothed_ce, CE, **narrow)


def test_the_plugin_passes_ranks_and_where_and_hints_at_ranks(pytester):
    pytester.makepyfile(test_narrow='''
import torch.nn.functional as F

def smoothed_ce(logits, target):
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (0.9 * nll - 0.1 * logp.mean(dim=-1)).mean()

def test_whole_reference(losscheck):
    losscheck(smoothed_ce, reference="torch.nn.CrossEntropyLoss", params={"label_smoothing": 0.1})

def test_narrowed(losscheck):
    losscheck(smoothed_ce, reference="torch.nn.CrossEntropyLoss", params={"label_smoothing": 0.1},
              ranks={"logits": 2, "target": 1}, where=lambda x: (x["target"] != -100).all())

def test_ranks_only(losscheck):
    losscheck(smoothed_ce, reference="torch.nn.CrossEntropyLoss", params={"label_smoothing": 0.1},
              ranks={"logits": 2, "target": 1})

def test_logits_rank_only(losscheck):
    losscheck(smoothed_ce, reference="torch.nn.CrossEntropyLoss", params={"label_smoothing": 0.1},
              ranks={"logits": 2}, where=lambda x: (x["target"] != -100).all())
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--losscheck-examples", "5")
    result.assert_outcomes(passed=1, failed=3)
    # ranks= given for the logits: the hint keeps them and adds the target's
    assert ("this input has target 2. If smoothed_ce takes only some of them, pass ranks={'logits': 2, "
            "'target': 1})") in result.stdout.str()
    result.stdout.fnmatch_lines(["E * cause: RuntimeError: index -100 is out of bounds* (torch.nn.CrossEntropyLoss "
                                 "draws targets equal to ignore_index=-100, which it leaves out; if smoothed_ce does "
                                 "not take them, pass where=lambda x: *"])
    assert "pass where=lambda x: (x['target'] != -100).all())" in result.stdout.str()
    out = result.stdout.str()
    # the nearest ranks the reference draws after which the loss no longer raises this error, for every
    # argument whose rank varies (logits alone at rank 2 would next fail on probability targets)
    assert ("(torch.nn.CrossEntropyLoss draws logits with 1, 2, 3 or 4; target with 0, 1, 2, 3 or 4 dimensions; "
            "this input has logits 1, target 0. If smoothed_ce takes only some of them, pass "
            "ranks={'logits': 2, 'target': 1})") in out




def test_mean_checks_a_loss_that_averages_an_unreduced_reference(pytester):
    pytester.makepyfile(test_mean='''
import torch

def mse(input, target):
    return ((input - target) ** 2).mean()

def sum_of_squares(input, target):
    return ((input - target) ** 2).sum()

def test_unreduced(losscheck):
    losscheck(mse, reference="torch.nn.MSELoss", params={"reduction": "none"})

def test_mean(losscheck):
    losscheck(mse, reference="torch.nn.MSELoss", params={"reduction": "none"}, mean=True)

def test_mean_of_a_sum(losscheck):
    losscheck(sum_of_squares, reference="torch.nn.MSELoss", params={"reduction": "none"}, mean=True)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--losscheck-examples", "5")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "returned shape (), the documented result has shape" in out and \
        "(if mse averages torch.nn.MSELoss's values, as jnp.mean(...) or .mean() does, pass mean=True)" in out
    # mean=True does not excuse a sum: the value is the mean times the element count
    assert "test_mean_of_a_sum: sum_of_squares [torch, value, float64, cpu] V002" in out


def test_no_ranks_hint_where_other_ranks_raise_the_same_error(pytester):
    """A module holding a (3,) weight raises on every width but 3, whatever the rank: suggesting ranks=
    would send the user the wrong way, so the cause is left as the exception."""
    pytester.makepyfile(test_fixed_width='''
import torch
import torch.nn as nn

class WeightedMSE(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return (self.weight * (input - target) ** 2).mean()

def test_fixed_width(losscheck):
    losscheck(WeightedMSE(torch.ones(3)), reference="torch.nn.MSELoss")
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--losscheck-examples", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E * cause: RuntimeError: The size of tensor a (3) must match the size of tensor b*"])
    assert "pass ranks=" not in result.stdout.str()
