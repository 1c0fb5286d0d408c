"""What the audit reads from a file's source: an activation applied at a framework loss's call site
(``F.cross_entropy(F.softmax(z, 1), y)``, or ``p = torch.sigmoid(z)`` then
``F.binary_cross_entropy_with_logits(p, y)``), measured by losscheck.compat (A002-A004) on the
framework loss's own runtime; the framework loss a user's loss calls on its arguments (its inputs and
its model pairing); losses held by ``self``; metrics that are not losses."""
from __future__ import annotations

import textwrap

import pytest

from losscheck.audit.discover import discover
from losscheck.frameworks import installed

SOURCE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import keras

criterion = nn.CrossEntropyLoss()


def focal(logits, targets):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(p, targets, reduction="none")
    return (ce * (1 - p) ** 2).mean()


def through_two_names(logits, y):
    probs = logits.softmax(dim=1)
    scores = probs
    return criterion(scores, y)


def right_pairing(logits, target_dist):
    return F.kl_div(F.log_softmax(logits, dim=-1), target_dist, reduction="batchmean")


def clamped_after(logits, y):
    p = torch.sigmoid(logits)
    p = p.clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, y)


def other_scope(logits, y):
    return F.cross_entropy(logits, y)


def sets_p(z):
    logits = torch.softmax(z, 1)
    return logits


def keras_flag(y_true, z):
    return keras.losses.categorical_crossentropy(y_true, keras.ops.softmax(z), from_logits=True)


def keras_keyword(y_true, z):
    return keras.losses.categorical_crossentropy(y_true=y_true, y_pred=keras.ops.softmax(z))
'''


@pytest.fixture
def info(tmp_path):
    path = tmp_path / "fed.py"
    path.write_text(textwrap.dedent(SOURCE))
    return {c.name: c for c in discover(str(path)).candidates}


def fed(c) -> list[tuple[int, str, dict]]:
    return [(m["line"], m["activation"], m["params"]) for m in c.models if m.get("kind") == "argument"]


def test_an_activation_reaching_the_prediction_argument_is_found(info):
    assert fed(info["F.binary_cross_entropy_with_logits"]) == [(12, "sigmoid", {"reduction": "none"})]
    assert "p (torch.sigmoid(logits) at line 11)" in info["F.binary_cross_entropy_with_logits"].models[0]["argument"]
    # through a variable assigned from another variable, to an nn.Module instance
    (site,) = [m for m in info["criterion"].models if m.get("kind") == "argument"]
    assert (site["line"], site["activation"]) == (19, "softmax") \
        and site["argument"] == "scores (logits.softmax(dim=1) at line 17)"
    assert fed(info["F.kl_div"]) == [(23, "log_softmax", {"reduction": "batchmean"})]


def test_keras_prediction_is_the_second_argument_or_y_pred_and_each_site_keeps_its_flags(info):
    sites = fed(info["keras.losses.categorical_crossentropy"])
    assert sites == [(42, "softmax", {"from_logits": True}), (46, "softmax", {})]


def test_no_activation_is_claimed_where_the_argument_is_not_an_activation_output(info):
    assert fed(info["F.binary_cross_entropy"]) == []      # reassigned after the sigmoid
    # a name assigned from softmax in another function is not this call's argument
    assert fed(info["F.cross_entropy"]) == []


def test_a_variable_holding_a_loss_value_is_not_a_framework_loss(info):
    assert "ce" not in info and "criterion" in info


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_audit_measures_the_fed_activation(tmp_path):
    from tests.test_audit import audit, entry, findings

    path = tmp_path / "fed_torch.py"
    path.write_text(textwrap.dedent(SOURCE).replace("import keras\n", "\n").split("def keras_flag")[0])
    _, doc, _ = audit(tmp_path / "r.json", path, "--examples", "3")
    bce = findings(entry(doc, "F.binary_cross_entropy_with_logits"))["A002"]
    assert bce["status"] == "warn" and "line 12 passes p (torch.sigmoid(logits) at line 11), a sigmoid output" \
        in bce["message"] and "expects none" in bce["message"]
    assert "A002" in findings(entry(doc, "criterion"))
    kl = entry(doc, "F.kl_div")
    assert kl["status"] == "pass" and [c["status"] for c in kl["checks"] if c["check"] == "activation"] == ["pass"]


# ---- a user's loss that is a framework classification loss inside ------------------------------------

KERAS_SOURCE = '''
import keras
from keras import ops


class SmoothedCCE(keras.losses.Loss):
    def __init__(self, smoothing=0.1, **kw):
        super().__init__(**kw)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        n = ops.shape(y_true)[-1]
        y_true = y_true * (1 - self.smoothing) + self.smoothing / n
        return keras.losses.categorical_crossentropy(y_true, ops.softmax(y_pred))


def weighted_bce(y_true, y_pred):
    """y_true: binary (N, 1), y_pred: probabilities (N, 1)."""
    return 2.0 * keras.losses.binary_crossentropy(y_true, y_pred)


model = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
model.compile(loss=SmoothedCCE(), optimizer="adam")
'''


@pytest.fixture
def keras_info(tmp_path):
    path = tmp_path / "keras_body.py"
    path.write_text(textwrap.dedent(KERAS_SOURCE))
    return path, discover(str(path))


def test_the_framework_loss_a_body_calls_on_its_arguments_is_recorded(keras_info):
    _, info = keras_info
    by_name = {c.name: c for c in info.candidates}
    (body,) = by_name["SmoothedCCE"].body_losses
    # the smoothed y_true is still the y_true argument; y_pred reaches the loss through a softmax
    assert body == {"id": "keras.losses.categorical_crossentropy", "params": {}, "prediction": "y_pred",
                    "target": "y_true", "activation": "softmax", "line": 14}
    # compile(loss=SmoothedCCE()) is the class, audited once, paired with the model
    assert not any(c.name.startswith("compile(") for c in info.candidates)
    assert [m["name"] for m in by_name["SmoothedCCE"].models] == ["model"]
    # the model is compiled with SmoothedCCE: not "the only model in the file" of binary_crossentropy
    assert by_name["keras.losses.binary_crossentropy"].models == []


def test_inputs_follow_the_framework_loss_in_the_body(keras_info):
    from losscheck.audit.infer import plans

    _, info = keras_info
    c = {c.name: c for c in info.candidates}["SmoothedCCE"]
    first = plans(c.params, [], body_losses=c.body_losses, framework="keras")[0]
    assert first.label == "prediction logits (N, C), target onehot (N, C)"
    # "probabilities (N, 1)" is one sigmoid output per sample, not a softmax over one class
    bce = {c.name: c for c in info.candidates}["weighted_bce"]
    (only,) = plans(bce.params, [], doc=bce.doc, framework="keras")
    assert only.label == "prediction unit (N, 1), target binary (N, 1)"


@pytest.mark.skipif(not installed("keras-tensorflow"), reason="TensorFlow/Keras is not installed")
def test_a_model_ending_in_softmax_trained_with_a_loss_that_applies_softmax_is_a002(keras_info, tmp_path):
    from tests.test_audit import audit, entry, findings

    path, _ = keras_info
    _, doc, _ = audit(tmp_path / "r.json", path, "--examples", "3")
    smoothed = entry(doc, "SmoothedCCE")
    assert smoothed["inputs"]["y_pred"]["domain"] == "logits" and smoothed["inputs"]["y_true"]["domain"] == "onehot"
    a002 = findings(smoothed)["A002"]
    assert "SmoothedCCE (which applies softmax before keras.losses.categorical_crossentropy at line 14) expects " \
           "none: floor 0.744" in a002["message"]
    assert set(findings(smoothed)) == {"A002"}   # no G001 from off-simplex "reals" targets
    assert entry(doc, "weighted_bce")["status"] == "pass"
    assert entry(doc, "keras.losses.binary_crossentropy")["status"] == "pass"


def test_a_loss_held_by_self_is_a_framework_loss_with_its_call_sites(tmp_path):
    path = tmp_path / "trainer.py"
    path.write_text(textwrap.dedent('''
        import torch.nn as nn
        import torch.nn.functional as F


        class Trainer:
            def __init__(self, model):
                self.model = model
                self.criterion = nn.CrossEntropyLoss(reduction="sum")

            def step(self, x, y):
                probs = F.softmax(self.model(x), dim=1)
                return self.criterion(probs, y)
    '''))
    (c,) = discover(str(path)).candidates
    assert (c.name, c.builtin, c.builtin_params) == ("self.criterion", "torch.nn.CrossEntropyLoss", {"reduction": "sum"})
    assert [(m["line"], m["activation"]) for m in c.models] == [(13, "softmax")] and len(c.call_sites) == 1


def test_metrics_in_a_training_script_are_listed_not_audited_as_losses(tmp_path):
    """accuracy() and f1_score() beside the loss of a training script failed G002 and B003 as losses."""
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent('''
        import torch
        import torch.nn.functional as F
        import losscheck


        def accuracy(preds, targets):
            return (preds.argmax(dim=1) == targets).float().mean()


        def f1_score(y_pred, y_true, eps=1e-8):
            tp = (y_pred * y_true).sum()
            return 2 * tp / (y_pred.sum() + y_true.sum() + eps)


        def soft_f1_loss(y_pred, y_true):
            return 1 - f1_score(y_pred, y_true)


        @losscheck.declare(inputs="y_pred=unit(N,D),y_true=binary(N,D)")
        def dice_coefficient(y_pred, y_true):
            return 1 - (2 * (y_pred * y_true).sum() + 1) / (y_pred.sum() + y_true.sum() + 1)


        def loss_fn(logits, targets):
            return F.cross_entropy(logits, targets)
    '''))
    found = {c.name: c for c in discover(str(path)).candidates}
    assert found["accuracy"].skip.startswith("a metric by its name (accuracy), not a training loss")
    assert found["f1_score"].skip and not found["soft_f1_loss"].skip
    assert not found["dice_coefficient"].skip and not found["loss_fn"].skip   # declared; a loss


def test_a_helper_taking_x_and_y_is_not_a_loss_by_its_parameters_alone(tmp_path):
    path = tmp_path / "utils.py"
    path.write_text(textwrap.dedent('''
        import torch


        def normalize(x, y):
            return x / x.norm(), y


        def mse(x, y):
            return ((x - y) ** 2).mean()


        def compute(output, target):
            return ((output - target) ** 2).mean()


        def smooth_l1(x, y):
            return torch.nn.functional.smooth_l1_loss(x, y)
    '''))
    assert sorted(c.name for c in discover(str(path)).candidates if c.kind == "function") == \
        ["compute", "mse", "smooth_l1"]


def test_a_keras_loss_built_inside_compile_is_one_entry(tmp_path):
    """compile(loss=tf.keras.losses.BinaryCrossentropy(from_logits=True)) also showed up as a second,
    check-free entry 'tf.keras.losses.BinaryCrossentropy' (a constructor taken for a direct call)."""
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent('''
        import tensorflow as tf
        from tensorflow import keras

        clf = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
        clf.compile(optimizer="adam", loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
        mse = tf.keras.losses.MSE(tf.zeros(3), tf.ones(3))
    '''))
    names = [c.name for c in discover(str(path)).candidates]
    assert names == ["compile(loss=tf.keras.losses.BinaryCrossentropy(...)) line 6", "tf.keras.losses.MSE"]
