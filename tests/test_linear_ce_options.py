"""torch's chunked ``linear_cross_entropy`` (``options=LinearCrossEntropyOptions(...)``) in the catalog.

Both linear cross-entropy specs draw ``options``: None (the reference path) or the options' fields
as (field, value) pairs, which the spec's call turns into the object. These tests hold that the
drawn options stay plain data (they are written into reports and reproducer scripts), that torch
accepts every one of them in every dtype, and that the drawn cases do reach the chunked op, with
several chunks -- a torch that silently fell back to the reference path would leave it unchecked.
"""
import json
import pickle

import numpy as np
import pytest

from losscheck import catalog, strategies
from losscheck.catalog import structured

SPECS = ("torch.nn.functional.linear_cross_entropy", "torch.nn.LinearCrossEntropyLoss")
FIELDS = ("allow_retain_graph", "batch_chunk_size", "chunking_method", "acc_policy", "acc_dtype")
DTYPES = ("float64", "float32", "float16", "bfloat16")


def _cases(spec_id, n=120):
    return strategies.sample(catalog.get(spec_id).draw, n)


def _chunked(case) -> bool:
    """Where torch takes the chunked path (else it warns and runs the reference path)."""
    return (case.params["options"] is not None and case.params["label_smoothing"] == 0.0
            and np.ndim(case.inputs["linear_weight"]) == 2)


@pytest.mark.parametrize("spec_id", SPECS)
def test_drawn_options_are_plain_data_and_survive_a_report(spec_id):
    from losscheck.report.repro import _as_params
    from losscheck.runner import to_jsonable

    cases = _cases(spec_id)
    drawn = [c.params["options"] for c in cases]
    assert any(o is None for o in drawn) and sum(o is not None for o in drawn) > len(drawn) / 2
    for options in filter(None, drawn):
        assert tuple(k for k, _ in options) == FIELDS
        assert all(v is None or isinstance(v, (bool, int, str)) for _, v in options)
        kw = dict(options)
        # torch raises ValueError where batch_chunk_size and a chunking method disagree
        assert kw["batch_chunk_size"] is None or kw["chunking_method"] in (None, "auto")
        hash(options)
        assert pickle.loads(pickle.dumps(options)) == options
        back = _as_params(json.loads(json.dumps(to_jsonable({"options": options}))), set())
        assert back == {"options": options}
    assert sum(map(_chunked, cases)) > len(cases) / 5, "too few drawn cases take the chunked path"


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_drawn_acc_dtype_is_one_torch_accepts(dtype):
    """acc_dtype is drawn as what it means (None, the input's dtype, float32 for half input) and
    passed as a dtype torch takes for the input's (it raises RuntimeError on float32 accumulation
    of float64 input and the like)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tdtype = getattr(torch, dtype)
    half = dtype in ("float16", "bfloat16")
    x, w, t = torch.ones(3, 2, dtype=tdtype), torch.ones(4, 2, dtype=tdtype), torch.tensor([0, 1, 3])
    for acc in structured.LCE_ACC_DTYPES:
        for policy in structured.LCE_ACC_POLICIES:
            options = structured._lce_options(torch, (("batch_chunk_size", 2), ("chunking_method", None),
                                                      ("acc_policy", policy), ("acc_dtype", acc)), tdtype)
            expected = {None: None, "same": tdtype, "float32_if_half": torch.float32 if half else tdtype}[acc]
            assert options.acc_dtype == expected
            value = F.linear_cross_entropy(x, w, t, options=options)
            assert torch.isclose(value.double(), torch.tensor(np.log(4.0), dtype=torch.float64), rtol=1e-2)


@pytest.mark.parametrize("spec_id", SPECS)
def test_drawn_options_reach_the_chunked_op_in_several_chunks(spec_id, monkeypatch):
    pytest.importorskip("torch")
    import torch.nn.modules.linear_cross_entropy as chunked_module

    from losscheck.frameworks import get_runtime

    calls = []
    accumulate = chunked_module._linear_cross_entropy_batch_chunked_accumulator

    def counting(input, *args, **kwargs):
        calls.append(-(-input.shape[0] // args[7]))   # chunks: ceil(rows / batch_chunk_size)
        return accumulate(input, *args, **kwargs)

    monkeypatch.setattr(chunked_module, "_linear_cross_entropy_batch_chunked_accumulator", counting)
    spec, runtime = catalog.get(spec_id), get_runtime("torch", "cpu")
    reached = 0
    for case in [c for c in _cases(spec_id, 120) if _chunked(c)]:
        before = len(calls)
        runtime.evaluate(spec.call, spec.args, case, "float64", want_grad=True)
        reached += len(calls) > before
    # measured: 26 of the 120 cases reach the chunked op; 12 of its 35 calls run two chunks or more
    assert reached > 15, reached
    assert sum(n > 1 for n in calls) > 5, f"chunks per call: {calls}"
