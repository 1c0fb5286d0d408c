"""`losscheck audit`: the seeds' losses (examples/) get the findings a reviewer expects and their
correct twins pass; one planted bug per check family is caught in torch (and, marked slow, in Keras
and JAX); hostile files end in a finding or exit 2 with the report written; the JSON validates."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from losscheck.audit import report
from losscheck.audit.discover import discover, fuzzy_role
from losscheck.audit.infer import InputsError, parse_inputs, plans
from losscheck.frameworks import installed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "audit_fixtures"
needs_torch = pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
needs_keras = pytest.mark.skipif(not installed("keras-tensorflow"), reason="TensorFlow/Keras is not installed")
needs_jax = pytest.mark.skipif(not installed("jax"), reason="JAX/optax is not installed")


def audit(out: Path, *args: str, timeout: float = 300) -> tuple[int, dict, subprocess.CompletedProcess]:
    """Run `losscheck audit ARGS --format json --output OUT`; (exit code, report, process)."""
    proc = subprocess.run([sys.executable, "-m", "losscheck.cli", "audit", *map(str, args), "--format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    doc = json.loads(out.read_text())
    assert report.validate(doc) == [], report.validate(doc)
    return proc.returncode, doc, proc


def entry(doc: dict, name: str) -> dict:
    found = [e for e in doc["losses"] if e["name"] == name]
    assert found, f"{name} not audited; audited: {[e['name'] for e in doc['losses']]}"
    return found[0]


def findings(e: dict) -> dict[str, dict]:
    return {c["code"]: c for c in e["checks"] if c["status"] in ("fail", "warn") and c["code"]}


def assert_clean(e: dict) -> None:
    bad = [f"{c['status']} {c['code']} {c['check']}: {c['message'][:160]}" for c in e["checks"]
           if c["status"] in ("fail", "warn")]
    assert e["status"] == "pass" and not bad, f"{e['name']}: {bad}"


# ---- the seeds (torch files: fast) --------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch_seeds(tmp_path_factory):
    if not installed("torch"):
        pytest.skip("torch is not installed")
    out = tmp_path_factory.mktemp("audit") / "torch_seeds.json"
    return audit(out, EXAMPLES / "seed0_feed_input_torch.py", EXAMPLES / "seed2_torch_context.py",
                 EXAMPLES / "seed3_torch_classification.py", "--examples", "5", "--jobs", "2")


@needs_torch
def test_seed_graph_loss_quadratic_python_loop(torch_seeds):
    _, doc, _ = torch_seeds
    p001 = findings(entry(doc, "GraphDistanceLoss"))["P001"]
    assert p001["details"]["exponent"] > 1.7
    assert "normalize" in p001["details"]["vectorised"]   # the vectorised equivalent of the known pattern
    assert "losscheck audit" in p001["repro"] and "--select GraphDistanceLoss" in p001["repro"]


@needs_torch
def test_seed_graph_loss_nan_on_a_zero_embedding(torch_seeds):
    _, doc, _ = torch_seeds
    e = entry(doc, "GraphDistanceLoss")
    n001 = findings(e)["N001"]
    assert "zero vector" in n001["message"] and "nan" in n001["message"]
    assert "m.GraphDistanceLoss(" in n001["details"]["script"]   # a standalone reproducer
    assert e["reference"]["id"] == "custom.graph_cosine_loss"
    assert any("adjacency_matrix" in c for c in e["context"])   # says what it built


@needs_torch
def test_seed_graph_loss_vectorised_twin_passes(torch_seeds):
    assert_clean(entry(torch_seeds[1], "GraphDistanceLossVectorised"))


@needs_torch
def test_seed_integer_adjacency_left_uncast(torch_seeds):
    e = entry(torch_seeds[1], "GraphDistanceLossNoCast")
    assert set(findings(e)) == {"D002"}


@needs_torch
def test_seed_per_sample_weights_broadcast_to_n_by_n(torch_seeds):
    _, doc, _ = torch_seeds
    assert set(findings(entry(doc, "DynamicWeightedLoss"))) == {"B005"}
    assert_clean(entry(doc, "DynamicWeightedLossFixed"))


@needs_torch
def test_seed_weighted_mse_with_built_mask_passes(torch_seeds):
    e = entry(torch_seeds[1], "WeightedMSELoss")
    assert_clean(e)
    assert e["reference"]["id"] == "custom.importance_weighted_mse"
    assert e["inputs"]["importance_mask"]["argument"] == "constructor"
    assert any(c.startswith("built importance_mask") for c in e["context"])


@needs_torch
def test_seed_manual_call_passes_the_target_first(torch_seeds):
    e = entry(torch_seeds[1], "loss_fn")
    v008 = findings(e)["V008"]
    assert v008["status"] == "warn" and v008["details"]["line"] == 36   # MSELoss is symmetric: a warning
    assert "loss_fn(target_tensor[:1, :], predictions)" in v008["message"]
    assert sum(c["check"] == "call_site" and c["status"] == "pass" for c in e["checks"]) == 2


@needs_torch
def test_seed_classifier_with_cross_entropy_is_correct(torch_seeds):
    e = entry(torch_seeds[1], "criterion")
    assert_clean(e)
    (act,) = [c for c in e["checks"] if c["check"] == "activation"]
    assert act["status"] == "pass" and "model model" in act["message"] and "ends in none" in act["message"]


@needs_torch
def test_seed_exit_code_is_one_for_findings(torch_seeds):
    code, doc, proc = torch_seeds
    assert code == 1 and doc["summary"]["exit_code"] == 1
    assert doc["summary"]["codes"] == {"B005": 1, "D002": 1, "N001": 1, "P001": 1, "V008": 1}


# ---- planted bugs: one per family, torch ----------------------------------------------------------------

FAMILIES = ["V", "G", "B", "N", "D", "P", "X", "A"]


@pytest.fixture(scope="module")
def planted_torch(tmp_path_factory):
    if not installed("torch"):
        pytest.skip("torch is not installed")
    return audit(tmp_path_factory.mktemp("audit") / "planted_torch.json", FIXTURES / "planted_torch.py",
                 "--examples", "5")[1]


def _planted(doc, family):
    bug = [e for e in doc["losses"] if e["name"].startswith(f"bug_{family}_")]
    ok = [e for e in doc["losses"] if e["name"].startswith(f"ok_{family}_")]
    assert bug and ok
    for e in bug:
        fams = {c[0] for c in findings(e)}
        assert family in fams, f"{e['name']}: findings {sorted(findings(e))}"
    for e in ok:
        assert_clean(e)


@needs_torch
@pytest.mark.parametrize("family", FAMILIES)
def test_planted_torch_bug_is_caught_and_twin_passes(planted_torch, family):
    _planted(planted_torch, family)


@needs_torch
def test_planted_model_with_softmax_before_cross_entropy(planted_torch):
    a = findings(entry(planted_torch, "bug_A_criterion"))
    assert {"A002"} <= set(a) and "model_softmax" in a["A002"]["message"] and "floor 0.744" in a["A002"]["message"]


@needs_torch
def test_closure_partial_lambda_declare_and_a_missing_softmax(tmp_path):
    code, doc, _ = audit(tmp_path / "r.json", FIXTURES / "closures_torch.py", "--examples", "3")
    assert entry(doc, "weighted")["kind"] == "closure" and "times a constant 2" in json.dumps(entry(doc, "weighted"))
    huber_2 = entry(doc, "huber_2")
    assert huber_2["kind"] == "partial" and huber_2["reference"]["params"]["delta"] == 2.0   # the bound delta
    assert entry(doc, "huber")["reference"]["id"] == "torch.nn.HuberLoss"   # delta bound to a plausible 1.0
    assert entry(doc, "half_mse")["kind"] == "lambda"
    assert entry(doc, "opaque_loss")["inputs"]["a"] == {"role": "prediction", "domain": "probs", "shape": "(N, C)",
                                                        "source": "declare", "argument": "call"}
    assert "A004" in findings(entry(doc, "nll_of_logits_loss"))
    assert entry(doc, "make_weighted_mse")["status"] == "skip"
    for name in ("weighted", "huber_2", "huber", "half_mse", "opaque_loss"):
        assert_clean(entry(doc, name))


# ---- hostile files (slow: every crash restarts a sandbox, which imports torch again) -------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if not installed("torch"):
        pytest.skip("torch is not installed")
    return audit(tmp_path_factory.mktemp("audit") / "hostile.json", FIXTURES / "hostile_losses.py",
                 "--timeout", "4", "--memory", "4096", "--examples", "3")


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("name, code", [
    ("hanging_loss", "X003"), ("segfault_loss", "X004"), ("exiting_loss", "X004"), ("os_exit_loss", "X004"),
    ("memory_bomb_loss", "X007"), ("chatty_loss", "X006"), ("numpy_loss", "X005"), ("unreduced_loss", "X002")])
def test_hostile_loss_is_a_finding(hostile, name, code):
    assert code in findings(entry(hostile[1], name))


@pytest.mark.slow
@needs_torch
def test_hostile_findings_name_the_line_and_the_audit_goes_on(hostile):
    code, doc, _ = hostile
    assert "line 12" in findings(entry(doc, "hanging_loss"))["X003"]["message"]
    assert "line 16" in findings(entry(doc, "segfault_loss"))["X004"]["message"]
    assert "os._exit(7)" in findings(entry(doc, "os_exit_loss"))["X004"]["message"]
    assert_clean(entry(doc, "good_loss"))   # checked after four crashed workers
    assert code == 1 and doc["files"][0]["restarts"] >= 3


# ---- side effects: inputs written in place (X008), framework settings changed (X009) ----------------------

@needs_torch
def test_side_effects_are_findings_and_the_settings_are_put_back(tmp_path):
    code, doc, _ = audit(tmp_path / "side.json", FIXTURES / "side_effect_losses.py", "--examples", "3")
    assert code == 1
    assert findings(entry(doc, "float64_default_loss"))["X009"]["message"] == \
        "torch default dtype float32 -> float64 after the call; restored"
    assert "grad mode enabled -> disabled" in findings(entry(doc, "grad_off_loss"))["X009"]["message"]
    assert "input 'target' changed in place" in findings(entry(doc, "clamping_loss"))["X008"]["message"]
    assert set(findings(entry(doc, "float64_default_loss"))) == {"X009"}   # its value and gradient are right
    assert_clean(entry(doc, "good_loss"))   # asserts float32 and grad mode on: audited after the three above


@needs_torch
def test_watch_counts_written_elements_and_restores_settings():
    import torch

    from losscheck.frameworks.guard import InputsMutated, StateChanged, Watch

    x, y = torch.arange(8.0), torch.zeros(3, dtype=torch.int64)
    w = Watch({"input": x, "target": y}, raise_=False)
    with w:
        x.data[:3] = -1.0   # through .data: the version counter does not move, the values do
        y.add_(0)           # in place, values unchanged
    assert [h.code for h in w.found] == ["X008"]
    assert w.found[0].message == ("input 'input' changed in place: 3 of 8 elements differ after the call; input "
                                  "'target' written in place (an in-place operation ran on it; its values happen "
                                  "to be unchanged on these inputs)")
    with pytest.raises(StateChanged, match="torch default dtype float32 -> float64 after the call; restored"):
        with Watch():
            torch.set_default_dtype(torch.float64)
    assert torch.get_default_dtype() == torch.float32
    with pytest.raises(InputsMutated) as info:   # raised from the loss's own exception
        with Watch({"input": x}):
            x.mul_(2)
            raise ValueError("the loss failed too")
    assert isinstance(info.value.__cause__, ValueError)
    with Watch({"input": x}) as w:   # reading is not writing
        float((x * 2).sum())
    assert w.found == []


@needs_torch
def test_watch_compares_a_cloned_input_with_its_leaf():
    """The torch engine hands the loss a clone of each leaf and watches it against the leaf itself,
    with no snapshot: writes through ``.data`` and in-place writes are still found, and the engine's
    X008 comes from the copy the loss received."""
    import numpy as np
    import torch

    from losscheck.catalog import get
    from losscheck.catalog.spec import Case
    from losscheck.frameworks import get_runtime
    from losscheck.frameworks.guard import InputsMutated, Watch

    leaf = torch.arange(8.0, requires_grad=True)
    for write, message in [(lambda t: t.data.__setitem__(slice(0, 3), -1.0), "3 of 8 elements differ"),
                           (lambda t: t.add_(0), "written in place")]:
        given = leaf.clone()
        with Watch({"input": given}, settings=False, raise_=False, originals={"input": leaf}) as w:
            write(given)
        assert [h.code for h in w.found] == ["X008"] and message in w.found[0].message
    with Watch({"input": leaf.clone()}, settings=False, originals={"input": leaf}) as w:
        pass
    assert w.found == [] and torch.equal(leaf.detach(), torch.arange(8.0))

    spec = get("torch.nn.MSELoss")
    case = Case({"input": np.arange(6.0).reshape(2, 3), "target": np.ones((2, 3))}, {"reduction": "mean"})

    def halving(ns, params):
        def loss(input, target):
            input.data.mul_(0.5)   # a write the version counter does not see
            return ((input - target) ** 2).mean()
        return loss

    with pytest.raises(InputsMutated, match="input 'input' changed in place: 5 of 6 elements differ"):
        get_runtime("torch").evaluate(halving, spec.args, case, "float64")


@needs_torch
@pytest.mark.parametrize("rows", [4, 2000])   # 24 elements: torch.equal; 12,000: through NumPy
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "int64"])
def test_watch_compares_values_as_torch_equal_does(dtype, rows):
    """Both comparisons of CPU tensors (NumPy's for large ones of a dtype it shares) find a
    one-element write in a strided view, and a NaN the loss left alone is no write."""
    import torch

    from losscheck.frameworks.guard import Watch

    base = torch.arange(rows * 6).reshape(rows, 6).to(getattr(torch, dtype))
    if base.is_floating_point():
        base[0, 0] = float("nan")
    x = base.t()   # not contiguous
    with Watch({"input": x}, raise_=False) as w:
        pass
    assert w.found == []
    with Watch({"input": x}, raise_=False) as w:
        x.data[5, 3] = 99
    assert [h.message for h in w.found] == [f"input 'input' changed in place: 1 of {rows * 6} elements differ after "
                                            "the call"]


@needs_torch
def test_check_reports_side_effects_and_passes_their_correct_twins():
    import torch

    from losscheck.mutants import torch_mutants as m
    from losscheck.userloss import check_callable

    for fn, code in [(m.mse_target_clamped_in_place, "X008"), (m.mse_residual_in_place, "X008"),
                     (m.mse_default_float64, "X009"), (m.mse_mean, ""), (m.mse_local_float64, "")]:
        rows = check_callable(fn, "torch.nn.MSELoss", dtypes=("float64",), examples=5)
        assert [r["code"] for r in rows] == [code, code], (fn.__name__, [(r["code"], r["message"]) for r in rows])
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()


@needs_jax
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")   # what the loss does to JAX
def test_jax_loss_that_turns_x64_off_is_reported_on_every_call():
    """The loss runs only while JAX traces it: the programs traced under the changed setting are
    dropped, so every call (and hypothesis' replay) traces, and reports, again."""
    import jax

    from losscheck.mutants.jax_mutants import squared_error, squared_error_x64_off
    from losscheck.userloss import check_callable

    rows = check_callable(squared_error_x64_off, "optax.losses.squared_error", examples=3)
    assert {(r["code"], r["message"]) for r in rows} == {("X009", "jax_enable_x64 True -> False after the call; "
                                                                 "restored")}
    assert jax.config.jax_enable_x64
    assert {r["status"] for r in check_callable(squared_error, "optax.losses.squared_error", examples=3)} == {"pass"}


@needs_torch
@pytest.mark.parametrize("fixture, line, words", [
    ("import_raises.py", 10, "RuntimeError: configuration file not found"),
    ("import_hangs.py", 8, "did not finish within 2 s"),
    ("import_exits.py", 10, "os._exit(5)"),
])
def test_file_that_cannot_be_imported_exits_2_with_the_line(tmp_path, fixture, line, words):
    code, doc, proc = audit(tmp_path / "r.json", FIXTURES / fixture, "--timeout", "2")
    err = proc.stderr.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"losscheck audit: error: {FIXTURES / fixture}:{line}: ") and words in err[0]
    assert doc["summary"]["exit_code"] == 2 and doc["files"][0]["status"] == "error"


@pytest.mark.parametrize("args, reason", [
    (["syntax_error.py"], "syntax_error.py:5: syntax error: '(' was never closed"),
    (["no_loss.py"], "no_loss.py:1: no loss found"),
    (["missing.py"], "missing.py: no such file or directory"),
    (["no_loss.py", "--inputs", "pred=fuzzy(N)"], "bad option --inputs: unknown domain 'fuzzy'"),
    (["no_loss.py", "--reference", "torch.nn.MSELos"], "bad option --reference: unknown reference"),
    (["no_loss.py", "--examples", "0"], "bad option --examples 0"),
])
def test_could_not_audit_exits_2_with_a_one_line_reason(tmp_path, args, reason):
    code, doc, proc = audit(tmp_path / "r.json", *[str(FIXTURES / a) if a.endswith(".py") else a for a in args])
    err = proc.stderr.strip().splitlines()
    assert code == 2 and len(err) == 1 and reason in err[0], proc.stderr
    assert doc["summary"]["could_not_audit"] and reason in doc["summary"]["could_not_audit"][0]


def test_report_is_written_when_the_audit_itself_crashes(tmp_path, monkeypatch):
    from losscheck import cli
    from losscheck.audit import cli as audit_cli

    def broken(*args, **kwargs):
        raise RuntimeError("sandbox exploded")

    monkeypatch.setattr("losscheck.audit.sandbox.audit_file", broken)
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError, match="sandbox exploded"):
        cli.main(["audit", str(EXAMPLES / "seed2_torch_context.py"), "--format", "json", "--output", str(out)])
    doc = json.loads(out.read_text())
    assert report.validate(doc) == [] and doc["summary"]["exit_code"] == 2
    assert audit_cli.EXIT_CANNOT == 2


# ---- report, options, discovery (no framework) --------------------------------------------------------------

def test_schema_validation_catches_a_broken_document():
    doc = report.document(command=["losscheck", "audit"], options={}, files=[], losses=[], versions={}, exit_code=0,
                          could_not_audit=[], duration_s=0.0)
    assert report.validate(doc) == []
    doc["losses"] = [{"name": "x", "checks": [{"status": "maybe"}]}]
    errors = report.validate(doc)
    assert any("missing 'file'" in e for e in errors) and any("'maybe' not in" in e for e in errors)


def test_inputs_syntax():
    assert parse_inputs("y_pred=probs(N,C),y_true=onehot(N,C)") == {"y_pred": ("probs", ("N", "C")),
                                                                   "y_true": ("onehot", ("N", "C"))}
    assert parse_inputs(" pred = reals(N) , target=reals(N)") == {"pred": ("reals", ("N",)), "target": ("reals", ("N",))}
    assert parse_inputs("logits=logits(N,10),labels=labels(N)")["logits"] == ("logits", ("N", "10"))
    for bad in ("y_pred=probs", "y_pred=probs(N,Q)", "a=reals(N) b=reals(N)", "a=reals(N),a=reals(N)", ""):
        with pytest.raises(InputsError):
            parse_inputs(bad)


def test_inference_from_names_docstrings_and_overrides():
    (p,) = plans(["y_true", "y_pred"], [], doc="y_true: one-hot (N, C); y_pred: logits (N, C).")
    assert p.describe()["y_pred"]["domain"] == "logits" and p.describe()["y_true"]["source"] == "docstring"
    first = plans(["logits", "labels"], [])[0]
    assert [t.domain for t in first.call] == ["logits", "labels"]
    ctx = plans(["predictions", "labels"], ["importance_mask"])[0]
    assert ctx.ctor[0].domain == "mask" and ctx.ctor[0].shape == ("N", "D")
    (over,) = plans(["a", "b"], [], override=parse_inputs("a=probs(N,C),b=onehot(N,C)"))
    assert [(t.domain, t.source) for t in over.call] == [("probs", "--inputs"), ("onehot", "--inputs")]
    with pytest.raises(InputsError, match="not an argument"):
        plans(["a", "b"], [], override=parse_inputs("c=reals(N)"))


def test_discovery_of_the_seed_files_is_static():
    seed1 = {c.name: c for c in discover(str(EXAMPLES / "seed1_keras_custom.py")).candidates}
    assert {"custom_mse", "custom_mse_per_sample", "weighted_mse", "custom_huber_loss_with_regularization",
            "compile(loss=lambda) line 55"} <= set(seed1)
    assert seed1["compile(loss=lambda) line 55"].locate["expr"].startswith("lambda y_true, y_pred: weighted_mse")
    seed3 = discover(str(EXAMPLES / "seed3_torch_classification.py"))
    (criterion,) = seed3.candidates
    assert criterion.builtin == "torch.nn.CrossEntropyLoss" and criterion.models[0]["activation"] == "none"
    jax_seed = {c.name: c for c in discover(str(EXAMPLES / "seed0_feed_input_jax.py")).candidates}
    assert "training objective" in jax_seed["loss_fn"].skip and not jax_seed["mse"].skip
    assert fuzzy_role("target_tensor") == "target" and fuzzy_role("predictions") == "prediction"
    assert fuzzy_role("input_tensor") is None


def test_declare_is_a_no_op_that_records_the_declaration():
    import losscheck

    def my_loss(pred, target):
        return pred

    marked = losscheck.declare(reference="torch.nn.MSELoss", inputs="pred=reals(N),target=reals(N)")(my_loss)
    assert marked is my_loss and marked(3, 4) == 3
    assert my_loss.__losscheck_declared__["reference"] == "torch.nn.MSELoss"


@needs_torch
def test_repro_command_reproduces_the_finding_and_html_report(torch_seeds, tmp_path):
    repro = findings(entry(torch_seeds[1], "DynamicWeightedLoss"))["B005"]["repro"]
    argv = repro.split()[2:]   # losscheck audit ...
    assert argv[:3] == [str(EXAMPLES / "seed2_torch_context.py"), "--select", "DynamicWeightedLoss"]
    # one audit, two reports: each --output's format follows its extension
    proc = subprocess.run([sys.executable, "-m", "losscheck.cli", "audit", *argv, "--output", str(tmp_path / "r.html"),
                           "--output", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 1
    assert "FAIL B005 broadcast" in proc.stdout and f"reproduce: {repro}" in proc.stdout   # the text summary
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "DynamicWeightedLoss" in page and "B005" in page
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["kind"] == "audit" and {c["code"] for c in doc["losses"][0]["checks"]} >= {"B005"}


@needs_torch
def test_reference_option_makes_disagreement_a_failure(tmp_path):
    code, doc, _ = audit(tmp_path / "r.json", FIXTURES / "planted_torch.py", "--select", "ok_B_scaled_mse",
                         "--reference", "torch.nn.MSELoss", "--examples", "5")
    e = doc["losses"][0]
    assert code == 1 and e["reference"]["how"] == "--reference"
    value = next(c for c in e["checks"] if c["check"] == "oracle_value[float64]")
    assert value["status"] == "fail" and value["code"].startswith("V") and value["details"]["input"] is not None


# ---- Keras and JAX (slow: TensorFlow alone takes ~6 s to import) --------------------------------------------

@pytest.fixture(scope="module")
def keras_seeds(tmp_path_factory):
    if not installed("keras-tensorflow"):
        pytest.skip("TensorFlow/Keras is not installed")
    return audit(tmp_path_factory.mktemp("audit") / "keras_seeds.json", EXAMPLES / "seed1_keras_custom.py",
                 EXAMPLES / "seed0_feed_input_keras.py", "--examples", "5", "--jobs", "2")[1]


@pytest.mark.slow
@pytest.mark.frameworks
@needs_keras
def test_seed_class_weights_only_fit_two_columns(keras_seeds):
    b005 = findings(entry(keras_seeds, "compile(loss=lambda) line 55"))["B005"]
    assert "class_weights of shape (2,)" in b005["message"] and "(N, 1) to (N, 2)" in b005["message"]
    assert b005["details"]["works_for_widths"] == [1, 2]
    assert_clean(entry(keras_seeds, "compile(loss=lambda) line 71"))


@pytest.mark.slow
@pytest.mark.frameworks
@needs_keras
def test_seed_keras_per_sample_function_is_correct(keras_seeds):
    e = entry(keras_seeds, "custom_mse_per_sample")
    assert_clean(e)
    output = next(c for c in e["checks"] if c["check"] == "output")
    assert "Keras reduces it" in output["message"]
    assert e["reference"]["id"] == "keras.losses.mean_squared_error"


@pytest.mark.slow
@pytest.mark.frameworks
@needs_keras
def test_seed_keras_correct_losses_pass(keras_seeds):
    for name in ("custom_mse", "custom_huber_loss_with_regularization", "weighted_mse_checked",
                 "compile(loss=lambda) line 87", "compile(loss='mse') line 16", "tf.keras.losses.MSE"):
        assert_clean(entry(keras_seeds, name))
    huber = next(c for c in entry(keras_seeds, "custom_huber_loss_with_regularization")["checks"]
                 if c["check"] == "reference")
    assert "keras.losses.Huber" in huber["message"] and "plus a constant" in huber["message"]
    assert set(findings(entry(keras_seeds, "weighted_mse"))) == {"D002"}   # integer class weights


@pytest.mark.slow
@pytest.mark.frameworks
@needs_jax
def test_seed_jax_loss_and_training_objective(tmp_path):
    code, doc, _ = audit(tmp_path / "r.json", EXAMPLES / "seed0_feed_input_jax.py", "--examples", "5")
    assert code == 0
    assert_clean(entry(doc, "mse"))
    assert entry(doc, "loss_fn")["status"] == "skip"


@pytest.mark.slow
@pytest.mark.frameworks
@needs_keras
@pytest.mark.parametrize("family", FAMILIES)
def test_planted_keras_bug_is_caught_and_twin_passes(planted_keras, family):
    _planted(planted_keras, family)


@pytest.mark.slow
@pytest.mark.frameworks
@needs_jax
@pytest.mark.parametrize("family", FAMILIES)
def test_planted_jax_bug_is_caught_and_twin_passes(planted_jax, family):
    _planted(planted_jax, family)


def _fails_compiled(doc, where: str, raised: str, fix: str, compiled_call: str) -> None:
    """The planted `if` on a tensor is X010 alone, naming the line, the error and what to use instead;
    its reproducer makes the compiled call."""
    f = findings(entry(doc, "bug_X_branchy_mse"))
    assert set(f) == {"X010"}, f
    msg = f["X010"]["message"]
    assert where in msg and raised in msg and fix in msg, msg
    assert compiled_call in f["X010"]["details"]["script"]


@pytest.mark.slow
@pytest.mark.frameworks
@needs_keras
def test_a_keras_loss_that_fails_in_fit_is_x010_with_its_line_and_fix(planted_keras):
    _fails_compiled(planted_keras, "under tf.function at planted_keras.py line", "OperatorNotAllowedInGraphError",
                    "use tf.where or tf.cond", "compiled = tf.function(")
    # in graph mode Keras takes the logits behind a tf.nn.softmax op: fit() undoes the double softmax
    # that the eager calls measure (A002), so the two disagree
    double = findings(entry(planted_keras, "bug_A_cross_entropy"))
    assert {"A002", "X010"} <= set(double) and double["X010"]["message"].startswith("computes")


@pytest.mark.slow
@pytest.mark.frameworks
@needs_jax
def test_a_jax_loss_that_jit_cannot_trace_is_x010_with_its_line_and_fix(planted_jax):
    _fails_compiled(planted_jax, "under jax.jit at planted_jax.py line", "TracerBoolConversionError",
                    "use jnp.where or jax.lax.cond", "jax.jit(lambda predictions, targets: loss_fn(predictions, targets))")


def test_compiled_fixes_name_what_to_do_instead():
    from losscheck.properties.compiled import fix_for

    class TracerBoolConversionError(Exception):
        pass

    assert "jnp.where" in fix_for(TracerBoolConversionError("Attempted boolean conversion"))
    assert "tf.shape(x)[0]" in fix_for(ValueError("None values not supported."))
    assert ".numpy()" in fix_for(AttributeError("'SymbolicTensor' object has no attribute 'numpy'"))
    assert fix_for(RuntimeError("something else")) == ""


@pytest.fixture(scope="module")
def planted_keras(tmp_path_factory):
    if not installed("keras-tensorflow"):
        pytest.skip("TensorFlow/Keras is not installed")
    return audit(tmp_path_factory.mktemp("audit") / "planted_keras.json", FIXTURES / "planted_keras.py",
                 "--examples", "5")[1]


@pytest.fixture(scope="module")
def planted_jax(tmp_path_factory):
    if not installed("jax"):
        pytest.skip("JAX/optax is not installed")
    return audit(tmp_path_factory.mktemp("audit") / "planted_jax.json", FIXTURES / "planted_jax.py",
                 "--examples", "5")[1]


def test_fixture_names_match_families():
    """Every family has a planted bug and a twin in each framework's fixture."""
    for fw in ("torch", "keras", "jax"):
        names = {c.name for c in discover(str(FIXTURES / f"planted_{fw}.py")).candidates}
        for fam in FAMILIES:
            assert any(n.startswith(f"bug_{fam}_") for n in names), (fw, fam)
            assert any(n.startswith(f"ok_{fam}_") for n in names), (fw, fam)
    assert os.path.exists(FIXTURES / "hostile_losses.py")


# ---- on a GPU (marker gpu: skipped without CUDA) -----------------------------------------------------

def _cuda() -> bool:
    if not installed("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_on_a_gpu_a_context_tensor_left_on_the_cpu_is_d003_and_a_buffer_passes(tmp_path):
    """The seed's WeightedMSELoss keeps its mask as a plain attribute, which .to('cuda') leaves behind;
    GraphDistanceLossVectorised registers its adjacency as a buffer. Under the sandbox's old RLIMIT_AS
    CUDA could not start, and both were skipped as 'no CUDA device is visible'."""
    _, doc, _ = audit(tmp_path / "a.json", EXAMPLES / "seed2_torch_context.py", "--device", "cuda",
                      "--examples", "5")
    checks = {e["name"]: {c["check"]: c for c in e["checks"]} for e in doc["losses"]}
    moved = checks["WeightedMSELoss"]["context_device"]
    assert (moved["status"], moved["code"]) == ("fail", "D003"), moved
    assert checks["GraphDistanceLossVectorised"]["context_device"]["status"] == "pass"


def test_the_sandbox_limits_data_not_address_space_where_cuda_runs():
    """CUDA reserves address space the size of the GPU at start-up: an 8 GiB RLIMIT_AS made torch see
    no device and JAX no gpu platform on an H100; RLIMIT_DATA leaves those reservations alone."""
    from losscheck.audit.sandbox import Limits

    assert Limits().to_json()["memory_kind"] == "address_space"
    assert Limits(cuda=True).to_json()["memory_kind"] == "data"
    code = ("import resource; from losscheck.audit.worker import set_limits; set_limits(512, 8, 'data'); "
            "print(resource.getrlimit(resource.RLIMIT_DATA)[0], resource.getrlimit(resource.RLIMIT_AS)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    data, address_space = map(int, out.stdout.split())
    assert data == 512 * 1024 * 1024 and address_space == -1, out.stderr


BREAKS_THE_CONTEXT = '''
import sys

import torch

BROKEN = []
# the worker's probe of the CUDA context, planted: the worker runs as __main__
sys.modules["__main__"].cuda_context_error = lambda: "AcceleratorError: CUDA error: device-side assert" if BROKEN else ""


def asserting_mse(input, target):
    BROKEN.append(1)
    raise RuntimeError("CUDA error: device-side assert triggered")


def later_mse(input, target):
    if BROKEN:   # what a broken context does to every later CUDA call of the process
        raise RuntimeError("CUDA error: device-side assert triggered")
    return ((input - target) ** 2).mean()
'''


@needs_torch
def test_a_loss_that_breaks_the_cuda_context_costs_no_other_losss_result(tmp_path):
    """A device-side assert is sticky: the worker reports the loss that broke its context, then the
    audit goes on in a fresh worker, where the next loss passes."""
    path = tmp_path / "breaks_the_context.py"
    path.write_text(BREAKS_THE_CONTEXT)
    _, doc, proc = audit(tmp_path / "a.json", path, "--device", "cuda", "--examples", "3")
    first, later = entry(doc, "asserting_mse"), entry(doc, "later_mse")
    assert first["status"] == "fail" and any("fresh worker" in n for n in first["notes"]), first
    assert later["status"] == "pass", later["checks"]
