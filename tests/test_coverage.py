"""Every public loss of the installed frameworks has a spec, and every parameter of it is drawn or
says how it is set: enumerated by introspection, so a framework upgrade that adds a loss or a
parameter fails here, naming it."""
import dataclasses

import pytest

from losscheck import catalog
from losscheck.coverage import FRAMEWORKS, coverage, undrawn
from losscheck.frameworks import installed

NEEDS = {"torch": "torch", "keras": "keras-jax", "optax": "jax"}


@pytest.mark.frameworks
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_public_loss_and_parameter_has_a_spec(framework):
    if not installed(NEEDS[framework]):
        pytest.skip(f"{framework} is not installed")
    (row,) = coverage([framework])
    assert not row.error, row.error
    assert row.exported, f"introspection found no {framework} losses"
    assert not row.missing, f"{len(row.missing)} public {framework} losses have no spec: {', '.join(row.missing)}"
    assert not row.undrawn, "parameters no draw names and no spec declares: " + "; ".join(
        f"{loss}: {', '.join(ps)}" for loss, ps in row.undrawn)


def test_an_undrawn_parameter_is_named():
    spec = catalog.get("torch.nn.MSELoss")
    assert undrawn(spec, ["reduction", "size_average", "reduce"]) == ()   # drawn; torch's deprecated aliases
    assert undrawn(spec, ["reduction", "weight"]) == ("weight",)
    declared = dataclasses.replace(spec, params_not_drawn={"weight": "fixed for this test"})
    assert undrawn(declared, ["reduction", "weight"]) == ()


def test_a_parameter_drawn_with_one_value_is_not_varied():
    from losscheck.catalog.build import drawer
    from losscheck.catalog.inputs import pair

    spec = catalog.get("torch.nn.MSELoss")
    one = dataclasses.replace(spec, draw=drawer({"reduction": ["mean"]}, pair("input", "target")))
    both = dataclasses.replace(spec, draw=drawer({"reduction": ["mean", "sum"]}, pair("input", "target")))
    assert undrawn(one, ["reduction"]) == ("reduction",)
    assert undrawn(both, ["reduction"]) == ()


def test_a_stale_declaration_raises():
    spec = dataclasses.replace(catalog.get("torch.nn.MSELoss"), params_not_drawn={"beta": "no longer taken"})
    with pytest.raises(ValueError, match="torch.nn.MSELoss: params_not_drawn names beta"):
        undrawn(spec, ["reduction"])


@pytest.mark.frameworks
def test_list_coverage_prints_the_parameter_column_and_exits_0_when_complete():
    import subprocess
    import sys

    if not installed("jax"):
        pytest.skip("optax is not installed")
    out = subprocess.run([sys.executable, "-m", "losscheck.cli", "list", "--coverage", "--framework", "optax"],
                         capture_output=True, text=True, timeout=600)
    assert "parameters never drawn" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 0, out.stdout
