"""Every analytic gradient in reference/ agrees with float64 finite differences of its own value."""
import importlib
import pkgutil

import pytest

from tests.oracle import fd

CASE_MODULES = [m.name for m in pkgutil.iter_modules(importlib.import_module("tests.oracle").__path__)
                if m.name.startswith("cases_")]
CASES = [c for m in CASE_MODULES for c in importlib.import_module(f"tests.oracle.{m}").CASES]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradient_matches_finite_differences(case):
    failures = fd.check_case(case)
    assert not failures, "\n".join(failures[:5])


def test_checker_catches_a_wrong_gradient():
    """The verifier itself must fail on a reference whose gradient has one wrong element."""

    from losscheck.reference import regression

    def broken(predictions, targets):
        res = regression.squared_error(predictions, targets, reduction="sum")

        def vjp(cot):
            g = res.vjp(cot)
            g["predictions"] = g["predictions"].copy()
            g["predictions"].reshape(-1)[0] *= -1.0
            return g
        return type(res)(res.value, res.scale, vjp)

    case = fd.OracleCase("planted", broken, lambda rng: ({"predictions": rng.uniform(1, 2, (3, 2)),
                                                          "targets": rng.uniform(-2, -1, (3, 2))}, {}), draws=1)
    failures = fd.check_case(case)
    assert failures and "d/dpredictions" in failures[0]
