"""Planted bugs in Keras losses (TensorFlow backend), written the way people write them: per-sample
functions ``loss(y_true, y_pred)`` that Keras reduces in ``fit``, each with its correct twin."""
from __future__ import annotations

from functools import partial

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from .record import CHECK_PROPERTIES, Mutant

M = partial(Mutant, framework="keras")


# ---- V: value ---------------------------------------------------------------------------------------

def mse_sum_features(y_true, y_pred):
    return ops.sum(ops.square(y_pred - y_true), axis=-1)   # sum over the features where Keras takes the mean


def mse(y_true, y_pred):
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


def poisson_swapped(y_true, y_pred):
    return ops.mean(y_true - y_pred * ops.log(y_true + 1e-7), axis=-1)


def poisson(y_true, y_pred):
    return ops.mean(y_pred - y_true * ops.log(y_pred + 1e-7), axis=-1)


def bce_clip_1e4(y_true, y_pred):
    p = ops.clip(y_pred, 1e-4, 1 - 1e-4)   # Keras clips to [1e-7, 1 - 1e-7]
    return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)


def bce_clip_keras(y_true, y_pred):
    eps = keras.config.epsilon()
    p = ops.clip(y_pred, eps, 1 - eps)
    return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)


def smoothed_cce_wrong_k(y_true, y_pred, label_smoothing=0.1):
    k = ops.cast(ops.shape(y_true)[-1] - 1, y_pred.dtype)   # C - 1 classes
    soft = y_true * (1 - label_smoothing) + label_smoothing / k
    return -ops.sum(soft * ops.log_softmax(y_pred, axis=-1), axis=-1)


def smoothed_cce(y_true, y_pred, label_smoothing=0.1):
    k = ops.cast(ops.shape(y_true)[-1], y_pred.dtype)
    soft = y_true * (1 - label_smoothing) + label_smoothing / k
    return -ops.sum(soft * ops.log_softmax(y_pred, axis=-1), axis=-1)


def hinge_01_labels(y_true, y_pred):
    return ops.mean(ops.maximum(1 - y_true * y_pred, 0.0), axis=-1)   # Keras maps {0, 1} labels to {-1, 1}


def hinge(y_true, y_pred):
    binary = ops.all(ops.logical_or(ops.equal(y_true, 0), ops.equal(y_true, 1)))
    y = ops.where(binary, 2 * y_true - 1, y_true)
    return ops.mean(ops.maximum(1 - y * y_pred, 0.0), axis=-1)


# ---- G: gradient ---------------------------------------------------------------------------------------

def mse_stop_gradient(y_true, y_pred):
    return ops.mean(ops.square(y_true - ops.stop_gradient(y_pred)), axis=-1)


def mse_numpy_round_trip(y_true, y_pred):
    return tf.constant(np.mean((y_pred.numpy() - y_true.numpy()) ** 2, axis=-1), dtype=y_pred.dtype)


def _mse_custom(factor):
    @tf.custom_gradient
    def loss(y_true, y_pred):
        d = y_pred - y_true
        n = tf.cast(tf.shape(d)[-1], d.dtype)

        def grad(upstream):
            g = factor * 2.0 * d * upstream[..., None] / n
            return -g, g
        return tf.reduce_mean(tf.square(d), axis=-1), grad
    return loss


_mse_sign = _mse_custom(-1.0)
_mse_half = _mse_custom(0.5)
_mse_right = _mse_custom(1.0)


def mse_grad_sign(y_true, y_pred):
    return _mse_sign(y_true, y_pred)   # custom gradient with the residual's sign flipped


def mse_grad_half(y_true, y_pred):
    return _mse_half(y_true, y_pred)   # custom gradient missing the factor 2


def mse_grad_right(y_true, y_pred):
    return _mse_right(y_true, y_pred)


# ---- B: batch handling --------------------------------------------------------------------------------

def mse_over_target_spread(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred)) / ops.var(y_true)


def mse_over_two(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred)) / 2.0


def mse_fixed_batch(y_true, y_pred):
    return ops.sum(ops.square(y_true - y_pred)) / 32.0   # the batch size of the training script


CLASS_WEIGHTS = tf.constant([0.8, 1.2])   # one weight per class of a one-column sigmoid output


def weighted_bce_class_vector(y_true, y_pred):
    p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
    bce = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
    return ops.mean(bce * ops.cast(CLASS_WEIGHTS, bce.dtype), axis=-1)   # (N, 1) * (2,) -> (N, 2)


def weighted_bce_by_label(y_true, y_pred):
    p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
    bce = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
    w = ops.where(y_true > 0.5, ops.cast(CLASS_WEIGHTS[1], bce.dtype), ops.cast(CLASS_WEIGHTS[0], bce.dtype))
    return ops.mean(bce * w, axis=-1)


# ---- D: integer context tensors -----------------------------------------------------------------------

def weighted_mse_int_weights(y_true, y_pred, class_weights):
    return tf.reduce_mean(tf.multiply(tf.square(y_true - y_pred), class_weights))   # int32 weights rejected


def weighted_mse(y_true, y_pred, class_weights):
    return tf.reduce_mean(tf.square(y_true - y_pred) * tf.cast(class_weights, y_pred.dtype))


def masked_mse_int_mask(y_true, y_pred, mask):
    sq = tf.square(y_true - y_pred)
    return tf.reduce_sum(sq * mask) / tf.reduce_sum(mask)   # TF does not promote int32 to float


def masked_mse(y_true, y_pred, mask):
    sq = tf.square(y_true - y_pred)
    m = tf.cast(mask, sq.dtype)
    return tf.reduce_sum(sq * m) / tf.maximum(tf.reduce_sum(m), 1.0)


# ---- N: numerics --------------------------------------------------------------------------------------

def cce_naive_logsumexp(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    log_probs = y_pred - ops.log(ops.sum(ops.exp(y_pred), axis=-1, keepdims=True))
    return -ops.sum(y_true * log_probs, axis=-1)


def cce_log_softmax(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return -ops.sum(y_true * ops.log_softmax(y_pred, axis=-1), axis=-1)


def bce_no_clip(y_true, y_pred):
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred), axis=-1)   # log(0)


def cosine_distance_no_eps(y_true, y_pred):
    """y_true, y_pred: (N, D) embeddings."""
    cos = ops.sum(y_true * y_pred, axis=-1) / (ops.norm(y_true, axis=-1) * ops.norm(y_pred, axis=-1))
    return 1.0 - cos


def cosine_distance(y_true, y_pred):
    """y_true, y_pred: (N, D) embeddings."""
    return 1.0 + keras.losses.cosine_similarity(y_true, y_pred, axis=-1)


# ---- P: performance -----------------------------------------------------------------------------------

def pairwise_loop(embeddings):
    n = embeddings.shape[0]
    total = ops.zeros((), dtype=embeddings.dtype)
    for i in range(n):
        for j in range(n):
            total = total + ops.sum(ops.square(embeddings[i] - embeddings[j]))
    return total / (n * n)


def pairwise_vectorised(embeddings):
    # ops.shape, not .shape: inside fit() the batch size is unknown (None), X010
    n = ops.cast(ops.shape(embeddings)[0], embeddings.dtype)
    centred = embeddings - ops.mean(embeddings, axis=0)
    return 2.0 * ops.sum(ops.square(centred)) / n


# ---- X: execution -------------------------------------------------------------------------------------

def mse_python_float(y_true, y_pred):
    return float(ops.mean(ops.square(y_true - y_pred)))


def mse_scalar(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred))


def mse_python_if(y_true, y_pred):
    if ops.any(ops.isnan(y_pred)):   # fit() calls the loss without autograph: a tensor is no Python bool
        raise ValueError("NaN predictions")
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


def mse_per_feature(y_true, y_pred):
    return ops.mean(ops.square(y_pred - y_true), axis=0)   # reduces the batch: one value per feature


def mse_squeezed(y_true, y_pred):
    return ops.mean(ops.square(ops.squeeze(y_pred, axis=-1) - ops.squeeze(y_true, axis=-1)))   # only (N, 1)


# ---- X: side effects on the caller ----------------------------------------------------------------------

def mse_floatx_float16(y_true, y_pred):
    keras.config.set_floatx("float16")   # "to save memory": every layer built after this is float16
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


def bce_epsilon_1e12(y_true, y_pred):
    keras.config.set_epsilon(1e-12)   # a tighter clip for this loss, and for every other Keras loss
    eps = keras.config.epsilon()
    p = ops.clip(y_pred, eps, 1 - eps)
    return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)


# ---- A: activation / loss pairing ---------------------------------------------------------------------

def cce_softmax_then_logits(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return keras.losses.categorical_crossentropy(y_true, tf.nn.softmax(y_pred), from_logits=True)


def cce_logits(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)


def bce_sigmoid_then_logits(y_true, y_pred):
    """y_true: binary labels (N, D); y_pred: logits (N, D)."""
    return keras.losses.binary_crossentropy(y_true, tf.math.sigmoid(y_pred), from_logits=True)


def bce_logits(y_true, y_pred):
    """y_true: binary labels (N, D); y_pred: logits (N, D)."""
    return keras.losses.binary_crossentropy(y_true, y_pred, from_logits=True)


MUTANTS = [
    # V
    M("keras.mse_sum_features", "V", "sum over the features where Keras takes the mean", mse_sum_features, mse,
      "keras.losses.mean_squared_error"),
    M("keras.poisson_swapped", "V", "y_true and y_pred swapped in a hand-written Poisson loss", poisson_swapped,
      poisson, "keras.losses.poisson"),
    M("keras.bce_clip_1e-4", "V", "probabilities clipped at 1e-4 instead of Keras' 1e-7", bce_clip_1e4,
      bce_clip_keras, "keras.losses.binary_crossentropy"),
    M("keras.label_smoothing_k_minus_1", "V", "label smoothing spread over C - 1 classes", smoothed_cce_wrong_k,
      smoothed_cce, "keras.losses.categorical_crossentropy", params={"from_logits": True, "label_smoothing": 0.1}),
    M("keras.hinge_01_labels", "V", "hinge on {0, 1} labels without mapping them to {-1, 1}", hinge_01_labels,
      hinge, "keras.losses.hinge"),
    # G
    M("keras.stop_gradient", "G", "ops.stop_gradient on y_pred", mse_stop_gradient, mse,
      "keras.losses.mean_squared_error"),
    M("keras.numpy_round_trip", "G", ".numpy() round trip inside the loss", mse_numpy_round_trip, mse,
      "keras.losses.mean_squared_error"),
    M("keras.custom_gradient_sign", "G", "tf.custom_gradient with the residual's sign flipped", mse_grad_sign,
      mse_grad_right, "keras.losses.mean_squared_error"),
    M("keras.custom_gradient_half", "G", "tf.custom_gradient missing the factor 2", mse_grad_half, mse_grad_right,
      "keras.losses.mean_squared_error"),
    # B
    M("keras.batch_statistic", "B", "normalised by the batch's target variance", mse_over_target_spread,
      mse_over_two, via="audit"),
    M("keras.hard_coded_batch", "B", "sum divided by a hard-coded batch size of 32", mse_fixed_batch, mse_scalar,
      via="audit"),
    M("keras.class_weight_vector", "B", "two class weights broadcast against a one-column output",
      weighted_bce_class_vector, weighted_bce_by_label, via="audit"),
    # D
    M("keras.int_class_weights", "D", "integer class weights in tf.multiply", weighted_mse_int_weights,
      weighted_mse, via="audit"),
    M("keras.int_mask", "D", "integer mask multiplied into a float tensor", masked_mse_int_mask, masked_mse,
      via="audit"),
    # N
    M("keras.naive_logsumexp", "N", "log(sum(exp(z))) overflows", cce_naive_logsumexp, cce_log_softmax,
      via="audit"),
    M("keras.bce_log0", "N", "log(0) at p = 0 or 1 without a clip", bce_no_clip, bce_clip_keras,
      "keras.losses.binary_crossentropy"),
    M("keras.cosine_no_eps", "N", "cosine divides by the norms without an eps", cosine_distance_no_eps,
      cosine_distance, via="audit"),
    # P
    M("keras.pairwise_loop", "P", "Python double loop over the pairs of samples", pairwise_loop,
      pairwise_vectorised, via="audit"),
    # X
    M("keras.python_if", "X", "a Python if on a tensor: raises in fit()", mse_python_if, mse,
      "keras.losses.mean_squared_error", properties=CHECK_PROPERTIES + ("compiled",)),
    M("keras.returns_float", "X", "float() of the loss: a Python number", mse_python_float, mse_scalar,
      via="audit"),
    M("keras.per_feature_output", "X", "reduces the batch axis: one value per feature", mse_per_feature, mse,
      "keras.losses.mean_squared_error"),
    M("keras.squeeze_last_axis", "X", "squeezes an axis of size > 1", mse_squeezed, mse_scalar, via="audit"),
    M("keras.set_floatx", "X", "keras.config.set_floatx('float16') inside the loss", mse_floatx_float16, mse,
      "keras.losses.mean_squared_error"),
    M("keras.set_epsilon", "X", "keras.config.set_epsilon(1e-12) inside the loss", bce_epsilon_1e12,
      bce_clip_keras, "keras.losses.binary_crossentropy"),
    # A
    M("keras.softmax_then_from_logits", "A", "softmax before a from_logits=True cross-entropy",
      cce_softmax_then_logits, cce_logits, via="audit"),
    M("keras.sigmoid_then_from_logits", "A", "sigmoid before a from_logits=True binary cross-entropy",
      bce_sigmoid_then_logits, bce_logits, via="audit"),
]
