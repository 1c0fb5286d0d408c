"""Every public loss of the installed frameworks has a spec: enumerated by introspection, so a
framework upgrade that adds a loss fails here, naming it."""
import pytest

from losscheck.coverage import FRAMEWORKS, coverage
from losscheck.frameworks import installed

NEEDS = {"torch": "torch", "keras": "keras-jax", "optax": "jax"}


@pytest.mark.frameworks
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_public_loss_has_a_spec(framework):
    if not installed(NEEDS[framework]):
        pytest.skip(f"{framework} is not installed")
    (row,) = coverage([framework])
    assert not row.error, row.error
    assert row.exported, f"introspection found no {framework} losses"
    assert not row.missing, f"{len(row.missing)} public {framework} losses have no spec: {', '.join(row.missing)}"
