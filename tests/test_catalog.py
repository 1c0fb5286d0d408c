"""The catalog's own consistency (no framework needed) and, with the frameworks installed, the whole
catalog checked against the oracle."""
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from losscheck import catalog
from losscheck.catalog import torch_classification
from losscheck.frameworks import RUNTIMES, installed

SPECS = catalog.all_specs()


def test_ids_are_unique_and_named_after_their_entry_point():
    ids = [s.id for s in SPECS]
    assert len(ids) == len(set(ids))
    for s in SPECS:
        assert s.id.split(".")[0] == {"torch": "torch", "keras": "keras", "optax": "optax"}[s.framework], s.id
        assert set(s.runtimes) <= set(RUNTIMES), s.id


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_reference_names_an_oracle_function(spec):
    module, _, name = spec.reference.partition(".")
    fn = getattr(importlib.import_module(f"losscheck.reference.{module}"), name.split("(")[0])
    assert callable(fn)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_draws_are_valid_oracle_inputs(spec):
    """Every drawn case evaluates in the oracle, with a gradient for every differentiable argument."""
    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draws(data):
        case = spec.draw(data)
        assert {a.name for a in spec.args if a.name in case.inputs} == set(case.inputs), "undeclared input"
        with np.errstate(all="ignore"):
            res = spec.oracle(case)
            grads = res.grad()
        assert np.shape(res.scale) == np.shape(res.value)
        for arg in spec.grad_args:
            if arg.name not in case.inputs:
                continue
            if arg.oracle_name not in grads:   # the gradient property would skip it: only where it has none
                assert (spec.id, arg.name) in NO_ORACLE_GRADIENT and NO_ORACLE_GRADIENT[spec.id, arg.name](case), \
                    f"the oracle returns no gradient for {arg.name!r}"
                continue
            assert np.shape(grads[arg.oracle_name]) == np.shape(case.inputs[arg.name]), arg.name
    draws()


def _index_target(case) -> bool:
    """torch's class-index targets (one dimension fewer than the input, the catalog's and torch's rule):
    not differentiable, unlike probability targets."""
    return torch_classification._is_index(case.inputs["input"], case.inputs["target"])


#: (spec id, argument) -> when the oracle rightly returns no gradient for that differentiable argument
NO_ORACLE_GRADIENT = {("torch.nn.CrossEntropyLoss", "target"): _index_target,
                      ("torch.nn.functional.cross_entropy", "target"): _index_target}


def test_every_expectation_and_deviation_says_why():
    for s in SPECS:
        for e in s.expected:
            assert len(e.reason) > 30, (s.id, e)
        if s.deviation is not None:
            assert s.exact is not None and s.deviation.summary and s.deviation.link.startswith("http"), s.id
        for p in s.precision:
            assert p.reason and p.link.startswith("http"), s.id


ALL_RUNTIMES_INSTALLED = all(installed(r) for r in RUNTIMES)


@pytest.mark.frameworks
@pytest.mark.skipif(not ALL_RUNTIMES_INSTALLED, reason="needs torch, TensorFlow/Keras and JAX/optax")
def test_whole_catalog_passes_on_every_runtime(tmp_path):
    """`losscheck check --all` (CI profile: LOSSCHECK_CI_EXAMPLES examples per check, default 10)."""
    examples = os.environ.get("LOSSCHECK_CI_EXAMPLES", "10")
    report = tmp_path / "all.json"
    out = subprocess.run([sys.executable, "-m", "losscheck.cli", "check", "--all", "--examples", examples, "-q",
                          "--json", str(report)], capture_output=True, text=True, timeout=1500)
    rows = json.loads(report.read_text())["results"]
    bad = [f"{r['id']} [{r['runtime']} {r['property']} {r['dtype']}] {r['status']} {r['code']} {r['message']}"
           for r in rows if r["status"] in ("fail", "error", "xpass")]
    assert out.returncode == 0 and not bad, "\n".join(bad[:20]) or out.stderr[-2000:]
    seen = {(r["id"], r["runtime"]) for r in rows}
    assert seen == {(s.id, rt) for s in SPECS for rt in s.runtimes}
