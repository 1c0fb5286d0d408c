"""Soak seed 22: torch ``poisson_nll_loss`` (log_input, mean) in float32 at input [88, 88, 88], target 0
returned inf (N001) where the exact mean, exp(88) = 1.6516e38, is finite: torch adds the three
losses in float32 (4.95e38, beyond float32's 3.40e38) before dividing. A framework behaviour, recorded
with a scope that covers only means whose losses add up past the dtype's largest number."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case
from losscheck.properties.common import Finding, rounded

SPECS = ("torch.nn.functional.poisson_nll_loss", "torch.nn.PoissonNLLLoss")


def _case(x, t, reduction="mean", log_input=True, full=False):
    return Case({"input": np.asarray(x, dtype=np.float64), "target": np.asarray(t, dtype=np.float64)},
                {"reduction": reduction, "log_input": log_input, "full": full, "eps": 1e-8})


def _covers(spec_id, case, dtype):
    found = get(spec_id).expected_for("numerics", dtype, "torch", rounded(case, dtype), "N001")
    return found is not None and "adds the per-element losses" in found.reason


@pytest.mark.parametrize("spec_id", SPECS)
@pytest.mark.parametrize("x, t, reduction, log_input, dtype, covered", [
    ([88.0] * 3, [0.0] * 3, "mean", True, "float32", True),     # the soak's case
    ([88.0] * 2, [0.0] * 2, "mean", True, "float32", False),    # 3.30e38: the sum still fits
    ([88.0] * 3, [0.0] * 3, "sum", True, "float32", False),     # the exact sum overflows too
    ([88.0] * 3, [0.0] * 3, "mean", True, "float64", False),
    ([88.0, -6.0, 88.0, 88.0], [0.0, 3.0, 0.0, 10.0], "mean", True, "float32", True),
    ([88.0] * 3, [0.0] * 3, "mean", False, "float32", False),   # log_input=False: no exp
])
def test_scope(spec_id, x, t, reduction, log_input, dtype, covered):
    assert _covers(spec_id, _case(x, t, reduction, log_input), dtype) is covered


def test_torch_float32_mean_overflows_in_its_sum():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional.poisson_nll_loss
    x = torch.full((3,), 88.0, requires_grad=True)
    loss = f(x, torch.zeros(3), log_input=True, reduction="mean")
    assert torch.isinf(loss)
    loss.backward()
    assert x.grad.tolist() == pytest.approx([float(np.exp(np.float32(88.0))) / 3] * 3, rel=1e-6)
    assert float(f(torch.full((2,), 88.0), torch.zeros(2), log_input=True)) == pytest.approx(1.6516e38, rel=1e-4)
    assert float(f(torch.full((3,), 88.0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                   log_input=True)) == pytest.approx(1.6516e38, rel=1e-4)


def test_the_soak_case_is_an_n001_finding_inside_the_scope():
    pytest.importorskip("torch")
    from losscheck.frameworks import get_runtime
    from losscheck.properties import PROPERTIES

    spec, case = get(SPECS[0]), _case([88.0] * 3, [0.0] * 3)
    with np.errstate(all="ignore"), pytest.raises(Finding) as found:
        PROPERTIES["numerics"](spec, case, "float32", get_runtime("torch"))
    assert found.value.code == "N001"
    assert spec.expected_for("numerics", "float32", "torch", found.value.case or case, "N001") is not None
