"""`losscheck compare`: loss groups, input conversions, cause classification, CLI exit codes, the
HTML pairwise table."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from losscheck.compare import cases, convert, groups, pairs, render
from losscheck.report import html
from losscheck.report.table import ResultTable, aggregate_pairs


def losscheck(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "losscheck.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# ---- groups ------------------------------------------------------------------------------------

def test_default_groups_span_frameworks_and_join_input_forms():
    found = {g.key: g for g in groups.default_groups()}
    assert all(len(g.frameworks) >= 2 for g in found.values())
    bce = found["binary_cross_entropy"]
    assert {"torch.nn.BCELoss", "keras.losses.BinaryCrossentropy",
            "optax.losses.sigmoid_binary_cross_entropy"} <= set(bce.spec_ids())
    assert bce.member("torch.nn.BCELoss").chain("prediction") == ("sigmoid",)     # probabilities from logits
    assert bce.member("keras.losses.BinaryCrossentropy[from_logits=True]").params["from_logits"] is True
    assert found["sparse_softmax_cross_entropy"].member("optax.losses.softmax_cross_entropy").chain("target") == \
        ("one_hot",)
    assert found["regression.huber"].shared == ("delta",)          # drawn once, passed to every implementation
    assert "margin.hinge(squared=True)" not in found                 # squared hinge is another loss
    assert groups.math_key("embedding.triplet_margin(eps_shift=eps)") == "embedding.triplet_margin"


def test_select_names_unknown_and_incomparable_ids():
    with pytest.raises(KeyError, match="closest: torch.nn.MSELoss"):
        groups.select(["torch.nn.MSELos", "optax.losses.l2_loss"])
    chosen, missing = groups.select(["torch.nn.MSELoss", "keras.losses.MeanSquaredError", "optax.losses.l2_loss"])
    assert [g.key for g in chosen] == ["regression.squared_error"]
    assert set(chosen[0].spec_ids()) == {"torch.nn.MSELoss", "keras.losses.MeanSquaredError"}
    assert missing == [{"id": "optax.losses.l2_loss",
                        "reason": "no other implementation computes regression.squared_error(half=True)"}]
    _, missing = groups.select(["torch.nn.MSELoss", "torch.nn.L1Loss", "keras.losses.MeanAbsoluteError"])
    assert missing[0]["id"] == "torch.nn.MSELoss" and "not the same mathematical loss" in missing[0]["reason"]


def test_draws_are_deterministic_and_respect_the_group_domain():
    g = groups.get("sparse_softmax_cross_entropy")
    a, b = cases.draw(g, 5, 0), cases.draw(g, 5, 0)
    assert cases.digest(a) == cases.digest(b) != cases.digest(cases.draw(g, 5, 1))
    assert all(np.shape(c.roles["prediction"])[-1] >= 2 for c in cases.draw(g, 20, 3))
    case, _ = cases.member_case(g.member("torch.nn.NLLLoss"), a[-1])
    logits = a[-1].roles["prediction"]
    assert np.allclose(np.exp(case.inputs["input"]).sum(axis=1 if logits.ndim > 2 else -1), 1.0)


@pytest.mark.parametrize("chain", [("sigmoid",), ("softmax",), ("log_softmax",), ("exp",), ("class_second",),
                                   ("log_softmax", "class_second")])
def test_pullbacks_are_the_chain_rule(chain):
    """J^T g of each conversion equals central differences of <g, f(x)>."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4))
    y, stages = convert.apply(chain, x, {"prediction": x})
    g = rng.normal(size=np.shape(y))
    pulled = convert.pull(chain, stages, g)
    h, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        up, down = (np.sum(g * convert.apply(chain, x + s, {})[0]) for s in (e, -e))
        fd[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(pulled, fd, rtol=1e-6, atol=1e-8)


# ---- classification of one example -------------------------------------------------------------

def _side(value, oracle, exact=None, own="ok", **extra):
    part = lambda v: {"value": v, "scale": abs(v), "grads": {}, "mags": {}, "kinks": {}}  # noqa: E731
    verdict = {"status": own, "code": "V002", "message": "reduction is sum, not mean", "reason": "known",
               "effective": "float32"}
    return {"n_terms": 4, "value": value, "oracle": part(oracle), "exact": part(oracle if exact is None else exact),
            "own": {"value": verdict, "gradient": {"status": "ok"}}, **extra}


NOTES = ({"semantics": "clamps logs at -100", "conversion": "as drawn"},
         {"semantics": "clips to [1e-7, 1 - 1e-7]", "conversion": "sigmoid"})


@pytest.mark.parametrize("a, b, converted, cause", [
    (_side(1.0, 1.0), _side(1.0 + 1e-15, 1.0 + 1e-15), False, "agree"),
    (_side(4.0, 1.0, own="fail"), _side(1.0, 1.0), False, "implementation bug"),
    (_side(4.0, 1.0, own="expected"), _side(1.0, 1.0), False, "known issue"),
    (_side(100.0, 100.0, 16.1), _side(16.1, 16.1, 16.1), False, "documented semantics differ"),
    (_side(6.0, 6.0), _side(1.0, 1.0), False, "reduction differs"),
    (_side(-0.5, -0.5), _side(0.5, 0.5), False, "documented semantics differ"),
    (_side(2.0, 2.0, 2.0), _side(2.5, 2.5, 2.5), True, "input conversion"),
    (_side(1.0 + 1e-9, 1.0, own="precision"), _side(1.0, 1.0), False, "documented precision"),
])
def test_classify_value(a, b, converted, cause):
    got, detail = pairs._value(a, b, "float64", (2, 3), ("A [torch]", "B [jax]"), converted, NOTES)[2:]
    assert got == cause
    if cause == "implementation bug":
        assert detail.startswith("A [torch] disagrees with its own oracle: V002")
    if cause == "reduction differs":
        assert "factor of 6" in detail
    if cause == "documented semantics differ" and a["value"] > 0:
        assert "clamps logs at -100" in detail and "clips to [1e-7, 1 - 1e-7]" in detail


def test_nan_against_a_number_is_a_disagreement():
    assert pairs.scalar_error(float("nan"), 1.0, 1.0, "float32") == math.inf
    assert pairs.scalar_error(float("nan"), float("nan"), 1.0, "float32") == 0.0


# ---- end to end ----------------------------------------------------------------------------------

def _pairs(doc, a, b):
    return [p for p in doc["comparison"]["pairs"] if {p["a"]["member"], p["b"]["member"]} == {a, b}]


def test_agreeing_implementations_exit_0_and_feed_the_html_report(tmp_path):
    """NLLLoss on log_softmax(z) and CrossEntropyLoss on z: conversions and gradient pullbacks agree."""
    pytest.importorskip("torch")
    out = losscheck("compare", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss", "--examples", "3", "-q",
                    "--format", "json", "-o", str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    found = _pairs(doc, "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss")
    assert found and {p["verdict"] for p in found} == {"agree"}
    assert all(p["gradient"]["roles"] == ["prediction"] and p["value"]["agree"] == p["examples"] for p in found)
    page = html.render(ResultTable.from_document(doc))
    assert "Pairwise agreement on common inputs" in page and "torch.nn.NLLLoss" in page
    assert "| `torch.nn.CrossEntropyLoss` | `torch.nn.NLLLoss` | torch vs torch | float64, float32 | agree |" in \
        render.markdown(doc)


PLANTED = (
    "import numpy as np\n"
    "from losscheck.catalog.spec import Arg, Deviation, LossSpec\n"
    "from losscheck.catalog.build import drawer\n"
    "from losscheck.catalog.inputs import pair\n"
    "from losscheck.reference import regression as R\n"
    "from losscheck.reference._core import finish\n"
    "ARGS = (Arg('input', 'predictions'), Arg('target', 'targets'))\n"
    "def mse(c):\n"
    "    return R.squared_error(c.inputs['input'], c.inputs['target'], reduction='mean')\n"
    "def capped(c):\n"
    "    d = c.inputs['input'] - c.inputs['target']\n"
    "    t, live = np.minimum(d * d, 1.0), d * d <= 1.0\n"
    "    return finish(t, t, lambda g: {'predictions': 2 * g * d * live, 'targets': -2 * g * d * live}, 'mean')\n"
    "def torch_capped(ns, p):\n"
    "    return lambda input, target: ns.torch.clamp((input - target) ** 2, max=1.0).mean()\n"
    "SPECS = [\n"
    "    LossSpec(id='planted.mse_sum', framework='torch', family='regression', reference='regression.squared_error',\n"
    "             args=ARGS, draw=drawer({}, pair('input', 'target')), oracle=mse,\n"
    "             call=lambda ns, p: (lambda input, target: ((input - target) ** 2).sum())),\n"
    "    LossSpec(id='planted.mse_capped', framework='torch', family='regression',\n"
    "             reference='regression.squared_error',\n"
    "             args=ARGS, draw=drawer({}, pair('input', 'target')), oracle=capped, exact=mse, call=torch_capped,\n"
    "             deviation=Deviation('each squared error is capped at 1'))]\n")


def test_a_planted_bug_exits_1_and_is_named_and_a_documented_cap_is_semantics(tmp_path):
    """planted.mse_sum sums where its oracle averages: a bug, named. planted.mse_capped caps each term
    at 1 and documents it: against MSELoss, both agree with their own oracles, which differ."""
    pytest.importorskip("torch")
    (tmp_path / "planted_compare.py").write_text(PLANTED)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LOSSCHECK_CATALOG": "planted_compare"}
    out = losscheck("compare", "torch.nn.MSELoss", "planted.mse_sum", "planted.mse_capped", "--examples", "4", "-q",
                    "--dtype", "float64", "--format", "json", "-o", str(tmp_path / "c.json"), env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    [bug] = _pairs(doc, "torch.nn.MSELoss", "planted.mse_sum")
    assert bug["verdict"] == "implementation bug"
    assert bug["findings"][0]["detail"].startswith("planted.mse_sum [torch] disagrees with its own oracle: ")
    [cap] = _pairs(doc, "torch.nn.MSELoss", "planted.mse_capped")
    assert cap["verdict"] == "documented semantics differ"
    assert "each squared error is capped at 1" in cap["findings"][0]["detail"]
    assert "IMPLEMENTATION BUG: torch.nn.MSELoss vs planted.mse_sum" in render.text(doc)


def test_bad_ids_exit_2():
    out = losscheck("compare", "torch.nn.MSELos")
    assert out.returncode == 2 and "unknown loss id 'torch.nn.MSELos'" in out.stderr
    out = losscheck("compare", "torch.nn.MSELoss", "optax.losses.l2_loss")
    assert out.returncode == 2 and "nothing to compare" in out.stderr


@pytest.mark.slow          # Keras' import alone takes most of 20 s on two loaded cores
@pytest.mark.frameworks
def test_bce_clamp_against_keras_clip_is_documented_semantics(tmp_path):
    """torch BCELoss clamps each log at -100, Keras clips probabilities to [1e-7, 1 - 1e-7]: at
    saturated probabilities both agree with their own oracles and differ from each other."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    out = losscheck("compare", "torch.nn.BCELoss", "keras.losses.BinaryCrossentropy", "--runtime", "torch",
                    "--runtime", "keras-torch", "--dtype", "float64", "--examples", "3", "-q", "--format", "json",
                    "-o", str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    found = _pairs(doc, "torch.nn.BCELoss", "keras.losses.BinaryCrossentropy")
    assert {p["verdict"] for p in found} == {"documented semantics differ"}
    detail = found[0]["findings"][0]["detail"]
    assert "clamped at >= -100" in detail and "clipped to [1e-7, 1 - 1e-7]" in detail
    rows = aggregate_pairs(doc["comparison"]["pairs"])
    assert rows[0]["verdict"] == "documented semantics differ" and rows[0]["example"]["inputs"]
