"""Which output activation each classification and divergence loss documents, for the
compatibility property (losscheck/compat.py): per catalog id, the parameter settings to analyse
(from_logits, log_target, ...) and, for each, the argument that receives activation(z), the
activation its documentation asks for, and how its targets are built from class labels."""
from __future__ import annotations

import numpy as np

from ..compat import Pairing


def _index(y, c):
    return y


def _index_float(y, c):       # torch CrossEntropyLoss's spec carries class indices in a float target
    return y.astype(np.float64)


def _one_hot(y, c):
    return np.eye(c)[y]


def _binary(y, c):            # binary pairings draw a 0/1 matrix already
    return y


def _binary_int(y, c):
    return y.astype(np.int64)


def _distribution(y, c):
    """A smoothed one-hot distribution: KL targets with every class possible."""
    return 0.9 * np.eye(c)[y] + 0.1 / c


def _log_distribution(y, c):
    return np.log(_distribution(y, c))


def _keras_binary():
    return [({"from_logits": f}, Pairing("y_pred", "none" if f else "sigmoid", {"y_true": _binary}, {}, binary=True))
            for f in (False, True)]


def _keras_categorical(targets):
    return [({"from_logits": f}, Pairing("y_pred", "none" if f else "softmax", {"y_true": targets}, {}))
            for f in (False, True)]


def _torch_kl():
    return [({"log_target": lt, "reduction": "batchmean"},
             Pairing("input", "log_softmax", {"target": _log_distribution if lt else _distribution}, {}))
            for lt in (False, True)]


TORCH = {
    "BCELoss": [({}, Pairing("input", "sigmoid", {"target": _binary}, {}, binary=True))],
    "BCEWithLogitsLoss": [({}, Pairing("input", "none", {"target": _binary}, {}, binary=True))],
    "CrossEntropyLoss": [({"ignore_index": -100, "label_smoothing": 0.0},
                          Pairing("input", "none", {"target": _index_float}, {}))],
    "NLLLoss": [({"ignore_index": -100}, Pairing("input", "log_softmax", {"target": _index}, {}))],
    "KLDivLoss": _torch_kl(),
}
TORCH_FUNCTIONAL = {"BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
                    "CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "KLDivLoss": "kl_div"}

KERAS = {
    "BinaryCrossentropy": _keras_binary(),
    "BinaryFocalCrossentropy": _keras_binary(),
    "CategoricalCrossentropy": _keras_categorical(_one_hot),
    "CategoricalFocalCrossentropy": _keras_categorical(_one_hot),
    "SparseCategoricalCrossentropy": _keras_categorical(_index),
    "KLDivergence": [({}, Pairing("y_pred", "softmax", {"y_true": _distribution}, {}))],
    "CategoricalGeneralizedCrossEntropy": [({"q": 0.5}, Pairing("y_pred", "softmax", {"y_true": _index}, {}))],
}
KERAS_FUNCTION = {"BinaryCrossentropy": "binary_crossentropy", "BinaryFocalCrossentropy": "binary_focal_crossentropy",
                  "CategoricalCrossentropy": "categorical_crossentropy",
                  "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
                  "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy", "KLDivergence": "kl_divergence",
                  "CategoricalGeneralizedCrossEntropy": "categorical_generalized_cross_entropy"}

OPTAX = {
    "sigmoid_binary_cross_entropy": [({}, Pairing("logits", "none", {"labels": _binary}, {}, binary=True))],
    "sigmoid_focal_loss": [({}, Pairing("logits", "none", {"labels": _binary}, {}, binary=True))],
    "softmax_cross_entropy": [({}, Pairing("logits", "none", {"labels": _one_hot}, {}))],
    "safe_softmax_cross_entropy": [({}, Pairing("logits", "none", {"labels": _one_hot}, {}))],
    "poly_loss_cross_entropy": [({}, Pairing("logits", "none", {"labels": _one_hot}, {}))],
    "softmax_cross_entropy_with_integer_labels": [({}, Pairing("logits", "none", {"labels": _index}, {}))],
    "sparsemax_loss": [({}, Pairing("logits", "none", {"labels": _binary_int}, {}, binary=True))],
    "multiclass_sparsemax_loss": [({}, Pairing("scores", "none", {"labels": _index}, {}))],
    "kl_divergence": [({}, Pairing("log_predictions", "log_softmax", {"targets": _distribution}, {}))],
    "kl_divergence_with_log_targets": [({}, Pairing("log_predictions", "log_softmax",
                                                    {"log_targets": _log_distribution}, {}))],
}


def _build() -> dict:
    out = {}
    for cls, variants in TORCH.items():
        out[f"torch.nn.{cls}"] = out[f"torch.nn.functional.{TORCH_FUNCTIONAL[cls]}"] = variants
    for cls, variants in KERAS.items():
        out[f"keras.losses.{cls}"] = out[f"keras.losses.{KERAS_FUNCTION[cls]}"] = variants
    for name, variants in OPTAX.items():
        out[f"optax.losses.{name}"] = variants
    return out


PAIRINGS = _build()


def for_spec(spec_id: str):
    """[(params, Pairing)] for a catalog id; empty when the loss takes no activated scores."""
    return PAIRINGS.get(spec_id, [])
