"""Soak seeds 10 and 11: three alarms, all from subnormals flushed to zero on the CPU.

* optax ``sigmoid_focal_loss`` in float64 at logits -355, labels 3.2e-278, gamma 1: the loss's value
  (4.48e-309) is a float64 subnormal; XLA returns 0 and d/dlabels loses the term that goes through
  it (2.3751e-152 against 2.3818e-152). The expectation covered float32 only, and only values above
  0: the shrunk repro then went on to logits -373, where even the oracle's value underflows.
* Keras ``BinaryCrossentropy(from_logits=True)`` in float32 on keras-jax at y_pred -88, y_true 0,
  sample_weight 1000: sigmoid(-88) is a float32 subnormal, flushed, so the gradient is 0 where the
  exact one is 6.05e-36 (keras-tensorflow does the same; torch keeps subnormals).
* (seed 11) optax ``kl_divergence`` in float64, batch property, at targets 1.11e-308: XLA reads the
  subnormal target as 0, so the loss is 0 (exact -7.889e-306) and d/dtargets NaN."""
import numpy as np
import pytest

from losscheck.catalog import get
from losscheck.catalog.spec import Case

#: d/dlabels of sigmoid_focal_loss(-355, 3.2143248674598754e-278, gamma=1), mpmath at 600 digits
EXACT_DLABELS = 2.3818199e-152


def _focal(logits, labels, gamma=1.0):
    return Case({"logits": np.asarray(logits, dtype=np.float64), "labels": np.asarray(labels, dtype=np.float64)},
                {"alpha": None, "gamma": gamma})


@pytest.mark.parametrize("logits, labels, gamma, dtype, covered", [
    (-355.0, 3.2143248674598754e-278, 1.0, "float64", True),   # the soak's case: value 4.48e-309
    (-373.0, 3.2143248674598754e-278, 1.0, "float64", True),   # its shrunk repro: the oracle's value underflows too
    (-30.0, 3.2143248674598754e-278, 1.0, "float64", False),
    (-1e4, 1e-12, 3.0, "float32", True),                       # measured before: value 1.0e-44
    (-1e4, 1e-12, 1.0, "float32", False),                      # value 1e-20
    (-np.inf, 0.0, 1.0, "float64", False),                      # an exact 0, not an underflow
])
def test_focal_flush_scope(logits, labels, gamma, dtype, covered):
    found = get("optax.losses.sigmoid_focal_loss").expected_for("gradient", dtype, "jax",
                                                                _focal(logits, labels, gamma), "G005")
    assert (found is not None and "smallest normal" in found.reason) is covered


def test_the_oracle_has_the_term_optax_loses():
    case = _focal(-355.0, 3.2143248674598754e-278)
    g = get("optax.losses.sigmoid_focal_loss").oracle(case).grad()["labels"]
    assert float(g) == pytest.approx(EXACT_DLABELS, rel=1e-7)
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)   # as losscheck's JAX engine sets it
    d = jax.grad(lambda y: optax.losses.sigmoid_focal_loss(jax.numpy.float64(-355.0), y, alpha=None, gamma=1.0))(
        jax.numpy.float64(3.2143248674598754e-278))
    assert float(d) == pytest.approx(EXACT_DLABELS * 355 / 356, rel=1e-3)   # the term ce * d(weight)/dy is lost


def _bce(y_pred, from_logits=True):
    return Case({"y_true": np.zeros(1), "y_pred": np.asarray([y_pred], dtype=np.float64),
                 "sample_weight": np.asarray(1000.0)},
                {"from_logits": from_logits, "label_smoothing": 0.0, "axis": -1, "reduction": "sum_over_batch_size"})


@pytest.mark.parametrize("runtime, y_pred, dtype, from_logits, covered", [
    ("keras-jax", -88.0, "float32", True, True),             # the soak's case
    ("keras-tensorflow", -88.0, "float32", True, True),
    ("keras-torch", -88.0, "float32", True, False),          # torch keeps subnormals
    ("keras-jax", -87.0, "float32", True, False),            # sigmoid(-87) = 1.6e-38 is normal
    ("keras-jax", -88.0, "float64", True, False),
    ("keras-jax", -88.0, "float32", False, False),
])
def test_keras_sigmoid_flush_scope(runtime, y_pred, dtype, from_logits, covered):
    spec = get("keras.losses.BinaryCrossentropy")
    found = spec.expected_for("numerics", dtype, runtime, _bce(y_pred, from_logits), "G003")
    assert (found is not None and "sigmoid" in found.reason) is covered


def _kl(targets):
    return Case({"log_predictions": np.zeros((1, 1)), "targets": np.asarray([[targets]])}, {"axis": -1})


@pytest.mark.parametrize("targets, dtype, covered", [
    (1.1125369292536007e-308, "float64", True),   # the soak's case
    (3e-308, "float64", False),                    # normal: optax is right
    (1e-40, "float32", True),
    (1e-40, "float64", False),
    (0.0, "float64", False),
])
def test_kl_subnormal_target_scope(targets, dtype, covered):
    found = get("optax.losses.kl_divergence").expected_for("batch", dtype, "jax", _kl(targets), "B004")
    assert (found is not None and "subnormal inputs" in found.reason) is covered


def test_optax_kl_reads_a_subnormal_target_as_zero():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    t = 1.1125369292536007e-308
    exact = float(get("optax.losses.kl_divergence").oracle(_kl(t)).value.sum())
    assert exact == pytest.approx(t * np.log(t), rel=1e-12)
    assert float(optax.losses.kl_divergence(jax.numpy.zeros((1, 1)), jax.numpy.asarray([[t]]))[0]) == 0.0
