"""At a kink either one-sided derivative is right, but a NaN or an infinity is neither: the kink
window skips finite disagreements only. (Keras' CosineSimilarity on jax/torch gives a NaN gradient at
a zero vector, which its norm's floor made a kink: it passed as within the kink window.)"""
from types import SimpleNamespace

import numpy as np
import pytest

from losscheck import catalog
from losscheck.catalog.spec import Case
from losscheck.frameworks.base import Evaluation
from losscheck.properties import compiled, gradient
from losscheck.properties.common import Finding
from losscheck.tolerance import kinks_where_finite

L1 = catalog.get("torch.nn.L1Loss")
# |x - y| at x == y (element 0) is a kink; element 1 is not
CASE = Case({"input": np.array([1.0, 2.0]), "target": np.array([1.0, 0.0])}, {"reduction": "sum"})


def _stub(monkeypatch, module, at_kink):
    def evaluate(spec, runtime, case, dtype, cotangent=None, want_grad=True, mode=None):
        c = 1.0 if cotangent is None else float(np.asarray(cotangent))
        g = np.array([at_kink, 1.0]) * c
        return Evaluation(np.array(2.0), {"input": g, "target": -g}, "torch.Tensor")
    monkeypatch.setattr(module, "evaluate", evaluate)


@pytest.mark.parametrize("at_kink, fails", [(0.0, False), (1.0, False), (-1.0, False), (np.nan, True),
                                            (np.inf, True)])
def test_the_gradient_property_skips_only_finite_values_at_a_kink(monkeypatch, at_kink, fails):
    _stub(monkeypatch, gradient, at_kink)
    runtime = SimpleNamespace(name="torch", device="cpu")
    if not fails:
        gradient.check(L1, CASE, "float64", runtime)
        return
    with pytest.raises(Finding) as found:
        gradient.check(L1, CASE, "float64", runtime)
    assert found.value.code.startswith(("N", "G"))


def test_the_compiled_property_does_not_excuse_a_nan_at_a_kink(monkeypatch):
    _stub(monkeypatch, compiled, 1.0)
    runtime = SimpleNamespace(name="jax", compiler="jax.jit",
                              evaluate=lambda *a, **k: Evaluation(np.array(2.0), {"input": np.array([np.nan, 1.0]),
                                                                                  "target": np.array([np.nan, -1.0])},
                                                                  "Array"))
    with pytest.raises(Finding) as found:
        compiled.check(L1, CASE, "float64", runtime)
    assert found.value.code == "X010"


def test_kinks_where_finite():
    kinks = np.array([True, True, False])
    assert kinks_where_finite(None, np.ones(3)) is None
    assert kinks_where_finite(kinks, np.array([np.nan, 1.0, np.inf])).tolist() == [False, True, False]
    assert kinks_where_finite(kinks, np.ones(3), np.array([1.0, -np.inf, 0.0])).tolist() == [True, False, False]
