"""`losscheck audit` on signatures and returns it once misread: keyword-only inputs (inferred and
passed by keyword; `--inputs` and `declare` name them), `*args`/`**kwargs` losses (listed with the
reason, driven by `--inputs`), non-tensor returns (X005 naming the type, never N001/X001), losses
compiled with `jax.jit(lambda ...)` (the user's loss, not the framework loss they call), and files
too deeply nested for Python's parser (exit 2 with a one-line reason)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from losscheck.audit.discover import AuditSyntaxError, discover, parse
from losscheck.frameworks import installed
from tests.test_audit import ROOT, assert_clean, audit, entry, findings

FIXTURE = Path(__file__).resolve().parent / "audit_fixtures" / "signature_losses.py"
MASK_INPUTS = "pred=reals(N,D),target=reals(N,D),mask=mask(N,D)"
needs_frameworks = pytest.mark.skipif(not (installed("torch") and installed("jax")),
                                      reason="the fixture needs torch and JAX/optax")


def line_of(text: str) -> int:
    return next(i for i, ln in enumerate(FIXTURE.read_text().splitlines(), 1) if ln.startswith(text))


@pytest.fixture(scope="module")
def signatures(tmp_path_factory):
    if not (installed("torch") and installed("jax")):
        pytest.skip("the fixture needs torch and JAX/optax")
    return audit(tmp_path_factory.mktemp("audit") / "signatures.json", FIXTURE, "--examples", "3")


# ---- the parser's own limits ----------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["X = " + "+".join(["1"] * 100_000) + "\n", "-" * 200_000 + "1\n"],
                         ids=["100000 terms", "200000 unary minus"])
def test_a_file_too_deep_for_the_parser_cannot_be_audited_with_one_line(tmp_path, source):
    path = tmp_path / "deep.py"
    path.write_text(source)
    with pytest.raises(AuditSyntaxError, match="too deeply nested for Python's parser"):
        parse(str(path))
    code, doc, proc = audit(tmp_path / "r.json", path)
    err = proc.stderr.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{path}:0: too deeply nested" in err[0], proc.stderr
    assert "Traceback" not in proc.stderr and doc["summary"]["exit_code"] == 2


# ---- discovery (static) ----------------------------------------------------------------------------------

def test_discovery_of_keyword_only_variadic_and_jitted_losses():
    found = {c.name: c for c in discover(str(FIXTURE)).candidates}
    assert found["kw_masked_loss"].params == ["pred", "target", "mask"]
    assert found["kw_optional_loss"].params == ["pred", "target"]   # an optional keyword-only stays optional
    assert found["varargs_loss"].params == [] and not found["varargs_loss"].skip   # the worker says why
    assert found["kwargs_declared_loss"].declared["inputs"] == MASK_INPUTS
    for name in ("lam_jit_loss", "jit_loss"):
        assert found[name].kind == "lambda" and found[name].line == line_of(f"{name} = jax.jit(")
    assert found["jit_loss"].params == ["logits", "labels"]
    assert "jit_mse" not in found and "jit_mse" in found["jnp_mse"].aliases


# ---- keyword-only inputs ---------------------------------------------------------------------------------

@needs_frameworks
def test_keyword_only_inputs_are_inferred_and_passed_by_keyword(signatures):
    _, doc, _ = signatures
    masked = entry(doc, "kw_masked_loss")
    assert_clean(masked)
    assert masked["inputs"]["mask"] == {"role": "context", "domain": "mask", "shape": "(N, D)", "source": "name",
                                        "argument": "call"}
    assert masked["reference"]["id"] == "custom.importance_weighted_mse"
    assert_clean(entry(doc, "kw_declared_loss"))
    assert entry(doc, "kw_declared_loss")["inputs"]["mask"]["source"] == "declare"
    optional = entry(doc, "kw_optional_loss")
    assert_clean(optional)
    assert set(optional["inputs"]) == {"pred", "target"}   # scale keeps its default


@needs_frameworks
def test_a_keyword_only_loss_reproducer_passes_it_by_keyword(signatures, tmp_path):
    n003 = findings(entry(signatures[1], "kw_norm_loss"))["N003"]
    script = n003["details"]["script"]
    assert "loss = loss_fn(pred, target, mask=mask)" in script
    (tmp_path / "repro.py").write_text(script)
    proc = subprocess.run([sys.executable, str(tmp_path / "repro.py")], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0 and "grad pred: tensor([[nan" in proc.stdout, proc.stderr[-2000:]


@needs_frameworks
def test_inputs_option_names_keyword_only_and_variadic_inputs(tmp_path):
    code, doc, _ = audit(tmp_path / "r.json", FIXTURE, "--examples", "3", "--select", "kw_masked_loss",
                         "--select", "varargs_loss", "--inputs", MASK_INPUTS)
    assert code == 0
    for name in ("kw_masked_loss", "varargs_loss"):
        e = entry(doc, name)
        assert_clean(e)
        assert {k: v["source"] for k, v in e["inputs"].items()} == dict.fromkeys(("pred", "target", "mask"), "--inputs")
        assert e["reference"]["id"] == "custom.importance_weighted_mse"


# ---- *args / **kwargs ---------------------------------------------------------------------------------------

@needs_frameworks
def test_a_variadic_loss_is_listed_with_why_and_declared_inputs_drive_it(signatures):
    _, doc, _ = signatures
    skipped = entry(doc, "varargs_loss")
    (why,) = [c["message"] for c in skipped["checks"]]
    assert skipped["status"] == "skip" and "takes *args" in why and "--inputs" in why and "\n" not in why
    driven = entry(doc, "kwargs_declared_loss")   # **kwargs receives the declared names by keyword
    assert_clean(driven)
    assert driven["reference"]["id"] == "custom.importance_weighted_mse"


# ---- what a loss returns ------------------------------------------------------------------------------------

@needs_frameworks
def test_a_loss_returning_no_value_is_x005_naming_the_type(signatures):
    _, doc, _ = signatures
    for name, type_name in [("none_loss", "NoneType"), ("str_loss", "str"), ("async_loss", "coroutine"),
                            ("generator_loss", "generator"), ("list_loss", "list")]:
        f = findings(entry(doc, name))
        assert set(f) == {"X005"}, (name, f)
        assert f["X005"]["message"].startswith(f"returns {type_name}, not a torch tensor"), f["X005"]["message"]
        assert f["X005"]["details"]["type"] == type_name
    f = findings(entry(doc, "float_loss"))   # a number is a value: X005 with it, and the checks go on
    assert {"X005", "G002"} <= set(f) and f["X005"]["message"].startswith("returns float (")


# ---- jax.jit(lambda ...) --------------------------------------------------------------------------------------

@needs_frameworks
def test_a_jitted_lambda_is_the_users_loss(signatures):
    _, doc, _ = signatures
    for name in ("lam_jit_loss", "jit_loss"):
        e = entry(doc, name)
        assert e["kind"] == "lambda" and e["framework"] == "jax" and e["line"] == line_of(f"{name} = jax.jit(")
        assert set(findings(e)) == {"B007"}, findings(e)   # both sum over the samples
    assert_clean(entry(doc, "jnp_mse"))   # jax.jit(jnp_mse) is another name for it, not another loss
    assert not [e for e in doc["losses"] if e["name"] == "jit_mse"]
