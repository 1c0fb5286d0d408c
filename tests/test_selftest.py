"""losscheck's own error rates on the planted-bug corpus (losscheck.mutants, re-exported as
tests/mutants): detection >= 98%, right code family >= 90%, no alarm on a correct twin; and a
recorded failure replays bit-for-bit from its printed seed."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from losscheck import selftest
from losscheck.frameworks import installed
from tests.mutants import FRAMEWORKS, Mutant, load

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 5


def _assert_targets(framework: str) -> dict:
    outcomes = selftest.run(load(framework), examples=EXAMPLES, seed=0)
    s = selftest.summary(outcomes)
    report = selftest.text(outcomes, s)
    assert s["errors"] == 0, report
    assert s["twin_alarms"] == 0, report
    assert s["detection_rate"] >= selftest.TARGET_DETECTION, report
    assert s["right_family_rate"] >= selftest.TARGET_RIGHT_FAMILY, report
    assert s["passed"], report
    return s


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_torch_corpus_meets_the_targets():
    s = _assert_targets("torch")
    assert s["mutants"] >= 30 and set(s["by_family"]) == set("VGBANDPX")


@pytest.mark.slow
@pytest.mark.skipif(not installed("keras-tensorflow"), reason="TensorFlow/Keras is not installed")
def test_keras_corpus_meets_the_targets():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    _assert_targets("keras")


@pytest.mark.slow
@pytest.mark.skipif(not installed("jax"), reason="JAX/optax is not installed")
def test_jax_corpus_meets_the_targets():
    _assert_targets("jax")


# ---- the corpus as data ---------------------------------------------------------------------------------

def test_corpus_spans_every_family_and_framework_with_60_mutants():
    """Read from the source, so it needs no framework: every module lists its mutants as M(...) records."""
    import ast

    found = []
    for fw in FRAMEWORKS:
        tree = ast.parse((ROOT / "losscheck" / "mutants" / f"{fw}_mutants.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "M":
                found.append((fw, node.args[0].value, node.args[1].value))
    names = [n for _, n, _ in found]
    assert len(found) >= 60 and len(set(names)) == len(names)
    assert {f for _, _, f in found} == set("VGBANDPX")
    for fw in FRAMEWORKS:
        assert len({f for w, _, f in found if w == fw}) >= 7, fw


def test_a_record_is_validated():
    with pytest.raises(ValueError, match="family"):
        Mutant("x", "Q", "bug", len, len, "torch.nn.MSELoss")
    with pytest.raises(ValueError, match="needs a reference"):
        Mutant("x", "V", "bug", len, len)


def test_summary_counts_misses_wrong_families_and_twin_alarms():
    def outcome(family, codes, twin_codes=()):
        m = Mutant(f"m{family}{len(codes)}", family, "bug", len, len, via="audit", framework="torch")
        bug = selftest.Run([{"code": c, "status": "fail", "where": "w", "message": ""} for c in codes])
        twin = selftest.Run([{"code": c, "status": "warn", "where": "w", "message": ""} for c in twin_codes])
        return selftest.Outcome(m, bug, twin)

    s = selftest.summary([outcome("V", ["V002"]), outcome("G", ["V001"]), outcome("B", []),
                          outcome("N", ["N001"], ["N003"])])
    assert (s["detected"], s["right_family"], s["twin_alarms"]) == (3, 2, 1)
    assert s["by_family"]["G"]["right_family"] == 0 and not s["passed"]
    assert not s["met"]["detection"] and not s["met"]["twin_alarms"]


# ---- replay ------------------------------------------------------------------------------------------

# The reference is looked up in the catalog's own modules, not through catalog.get(): the registry is
# being built while this module is imported.
REPLAY_MODULE = """
import importlib

from losscheck.catalog import MODULES
from losscheck.mutants import load
from losscheck.userloss import spec_for

_m = {{m.name: m for m in load("torch")}}[{name!r}]
_ref = next(s for mod in MODULES for s in importlib.import_module("losscheck.catalog." + mod).SPECS
            if s.id == _m.reference)
SPECS = [spec_for(_m.buggy, _ref, name={name!r}, params=dict(_m.params))]
"""


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
@pytest.mark.parametrize("name, prop", [("torch.huber_delta", "value"), ("torch.backward_sign", "gradient")])
def test_recorded_failure_replays_bit_for_bit_from_its_seed(tmp_path, name, prop):
    """A failure found in this process, replayed in a fresh one by the command the row prints
    (`losscheck check ID ... --seed S`, the buggy loss registered through LOSSCHECK_CATALOG):
    the same code, the same smallest input, the same error, the same check seed."""
    from losscheck.userloss import check_callable

    m = {x.name: x for x in load("torch")}[name]
    (row,) = check_callable(m.buggy, m.reference, properties=(prop,), dtypes=("float64",), examples=20, seed=7,
                            name=m.name, params=dict(m.params))
    assert row["status"] == "fail" and row["seed"] == 7 and row["input"] is not None, row
    recorded = json.loads(json.dumps(row, default=str))

    (tmp_path / "replay_specs.py").write_text(REPLAY_MODULE.format(name=name))
    out = tmp_path / "replay.json"
    argv = shlex.split(row["repro"])
    assert argv[:3] == ["losscheck", "check", name] and "--seed" in argv
    env = {**os.environ, "LOSSCHECK_CATALOG": "replay_specs",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "losscheck.cli", *argv[1:], "--jobs", "1", "--json", str(out),
                           "-q"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (replayed,) = json.loads(out.read_text())["results"]
    for key in ("status", "code", "input", "shape", "params", "error_eps", "bound_eps", "seed", "check_seed",
                "message", "repro"):
        assert replayed[key] == recorded[key], (key, replayed[key], recorded[key])


def test_selftest_command_exit_code_and_json(tmp_path):
    """The CLI on a few torch mutants: the table, the JSON document, exit 1 when a target is missed
    (a selection of only-twins cannot miss; a bogus selection is exit 2)."""
    if not installed("torch"):
        pytest.skip("torch is not installed")
    out = tmp_path / "selftest.json"
    proc = subprocess.run([sys.executable, "-m", "losscheck.cli", "selftest", "--framework", "torch", "--select",
                           "torch.mse_sum_for_mean", "--select", "torch.pairwise_loop", "--examples", "3", "--json",
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "detection 100.0% (2/2" in proc.stdout and "twin alarms 0" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["kind"] == "selftest" and doc["summary"]["passed"] and len(doc["mutants"]) == 2
    assert {r["name"]: r["codes"] for r in doc["mutants"]}["torch.pairwise_loop"] == ["P001"]
    bad = subprocess.run([sys.executable, "-m", "losscheck.cli", "selftest", "--select", "no.such.mutant"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "no mutant selected" in bad.stderr
