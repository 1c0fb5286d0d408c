"""Soak alarms of issue 9 on optax's Fenchel-Young and CTC losses, pinned.

* ``fenchel_young_loss(max_fun="logsumexp")``: jax.nn.logsumexp is log(sum(exp(z - max))) + max,
  whose log of a sum >= 1 is off by ~eps absolute however small the loss; the value's scale
  counts that 1 (float32 scores [0, -6]: 113 eps of the loss, 0.28 eps of 1).
* its gradient softmax(z) at scores of -1e4 is exact (the oracle's softmax no longer carries
  logsumexp's rounding of 1e4 * eps).
* optax ``ctc_loss`` with a finite ``log_epsilon`` goes below 0 by exp(log_epsilon)-sized terms;
  the spec's lower bound is a function of the case that says by how much.
"""
import dataclasses

import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.sequence import _optax_lower_bound
from losscheck.catalog.spec import Case
from losscheck.reference import sequence as Q
from losscheck.reference.structured import fenchel_young_loss
from losscheck.tolerance import VALUE_BOUND, value_error


def _jax_logsumexp_float32(z):
    """jax.nn.logsumexp's formula (jax/_src/ops/special.py), every step in float32."""
    z = np.float32(z)
    m = z.max(axis=-1)
    return np.log(np.exp(z - m[..., None]).sum(axis=-1)) + m


@pytest.mark.parametrize("scores", [[0.0, -6.0], [0.0, -9.0, -12.0], [3.0, -5.0], [-20.0, -26.0, -30.0]])
def test_fenchel_young_logsumexp_scale_covers_the_rounded_log(scores):
    z = np.float32(scores).astype(np.float64)
    y = np.zeros_like(z)
    ref = fenchel_young_loss(z, y, max_fun="logsumexp")
    got = _jax_logsumexp_float32(z)
    assert ref.scale >= 1.0
    assert value_error(got, ref.value, ref.scale, "float32") <= VALUE_BOUND["float32"](1)


def test_fenchel_young_softmax_gradient_exact_at_large_scores():
    for z in ([-1e4, -1e4], [1e3, 1e3]):
        g = fenchel_young_loss(np.array(z), np.zeros(2), max_fun="logsumexp").grad()["scores"]
        assert np.array_equal(g, [0.5, 0.5])


def _ctc_case(logits, labels, log_epsilon, blank_id, label_paddings=None, logit_paddings=None):
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    inputs = {"logits": logits,
              "logit_paddings": np.zeros(logits.shape[:2]) if logit_paddings is None else np.asarray(logit_paddings),
              "labels": labels,
              "label_paddings": np.zeros(labels.shape) if label_paddings is None else np.asarray(label_paddings)}
    return Case(inputs, {"log_epsilon": log_epsilon, "blank_id": blank_id})


def _oracle(c):
    i = c.inputs
    return Q.optax_ctc_loss(i["logits"], i["logit_paddings"], i["labels"], i["label_paddings"],
                            blank_id=c.params["blank_id"], log_epsilon=c.params["log_epsilon"]).value


def test_ctc_lower_bound_holds_for_the_soak_case_and_is_zero_at_the_default():
    c = _ctc_case([[[-1000.0, -10000.0]]], [[0]], -20.0, 1)
    value = _oracle(c)
    assert value[0] == pytest.approx(-np.log1p(np.exp(-20.0)), rel=1e-12)   # optax returns this too
    assert _optax_lower_bound(c)[0] <= value[0] < 0
    assert np.all(_optax_lower_bound(dataclasses.replace(c, params={**c.params, "log_epsilon": -1e5})) == 0)


def test_ctc_lower_bound_holds_on_random_cases():
    """The oracle computes optax's recursion (the value property checks that): its loss never
    goes below the bound, even where exp(log_epsilon) is large."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        b, t, c, n = (int(rng.integers(1, k)) for k in (3, 6, 5, 4))
        c += 1
        blank = int(rng.integers(0, c))
        labels = rng.choice([k for k in range(c) if k != blank], (b, n))
        if n > 1 and rng.random() < 0.5:
            labels[:, 1] = labels[:, 0]                      # a repeated label: optax's penalised skip
        lens = rng.integers(0, n + 1, size=b)
        case = _ctc_case(rng.normal(size=(b, t, c)) * rng.choice([0.1, 1.0, 30.0]), labels,
                         float(rng.choice([0.0, -1.0, -5.0, -20.0])), blank,
                         label_paddings=(np.arange(n)[None, :] >= lens[:, None]).astype(float),
                         logit_paddings=(rng.random((b, t)) < 0.3).astype(float))
        assert np.all(_oracle(case) >= _optax_lower_bound(case) - 1e-12)


def test_numerics_uses_a_callable_lower_bound():
    pytest.importorskip("optax")
    from losscheck.frameworks import get_runtime
    from losscheck.properties import numerics
    from losscheck.properties.common import Finding

    spec, runtime = get("optax.losses.ctc_loss"), get_runtime("jax")
    c = _ctc_case([[[-1000.0, -10000.0]]], [[0]], -20.0, 1)
    numerics.check(spec, c, "float64", runtime)                  # -2.06e-9 is above the bound
    with pytest.raises(Finding) as err:
        numerics.check(dataclasses.replace(spec, lower_bound=0.0), c, "float64", runtime)
    assert err.value.code == "N002" and "below its lower bound 0" in err.value.message
