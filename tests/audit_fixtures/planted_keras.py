"""Planted bugs, one per check family, in otherwise correct Keras losses (TensorFlow backend); each
`bug_<family>_*` loss has a correct twin `ok_<family>_*` that must pass with no findings."""
import keras
import numpy as np
import tensorflow as tf
from keras import ops

import losscheck


# V: a sum where the declared reference (Keras' MeanSquaredError) takes the mean
@losscheck.declare(reference="keras.losses.MeanSquaredError")
def bug_V_mse(y_true, y_pred):
    return ops.sum(ops.square(y_true - y_pred))


@losscheck.declare(reference="keras.losses.MeanSquaredError")
def ok_V_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred))


# G: stop_gradient on the prediction
def bug_G_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - ops.stop_gradient(y_pred)))


def ok_G_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


# B: normalised by the batch's spread of the targets
def bug_B_scaled_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred)) / ops.var(y_true)


def ok_B_scaled_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred)) / 2.0


# N: log(sum(exp(z))) overflows for confident logits
def bug_N_cross_entropy(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    log_probs = y_pred - ops.log(ops.sum(ops.exp(y_pred), axis=-1, keepdims=True))
    return -ops.sum(y_true * log_probs, axis=-1)


def ok_N_cross_entropy(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return -ops.sum(y_true * ops.log_softmax(y_pred, axis=-1), axis=-1)


# D: tf.multiply rejects integer class weights (tf.constant([1, 2]) is int32)
def bug_D_weighted_mse(y_true, y_pred, class_weights):
    return tf.reduce_mean(tf.multiply(tf.square(y_true - y_pred), class_weights))


def ok_D_weighted_mse(y_true, y_pred, class_weights):
    return tf.reduce_mean(tf.square(y_true - y_pred) * tf.cast(class_weights, y_pred.dtype))


# P: a Python double loop over the pairs of samples
def bug_P_pairwise_loss(embeddings):
    n = embeddings.shape[0]
    total = ops.zeros((), dtype=embeddings.dtype)
    for i in range(n):
        for j in range(n):
            total = total + ops.sum(ops.square(embeddings[i] - embeddings[j]))
    return total / (n * n)


def ok_P_pairwise_loss(embeddings):
    # ops.shape, not .shape: inside fit() the batch dimension is None (X010)
    n = ops.cast(ops.shape(embeddings)[0], embeddings.dtype)
    centred = embeddings - ops.mean(embeddings, axis=0)
    return 2.0 * ops.sum(ops.square(centred)) / n


# X: a NumPy round trip returns a NumPy number
def bug_X_mse(y_true, y_pred):
    return np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)


def ok_X_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred))


# X: a Python `if` on a tensor works eagerly, but fit() calls the loss in a tf.function without
# autograph, where a tensor cannot be a Python bool (X010)
def bug_X_branchy_mse(y_true, y_pred):
    if ops.sum(ops.abs(y_true)) == 0:
        return ops.zeros((), dtype=y_pred.dtype)
    return ops.mean(ops.square(y_true - y_pred))


def ok_X_branchy_mse(y_true, y_pred):
    mse = ops.mean(ops.square(y_true - y_pred))
    return ops.where(ops.sum(ops.abs(y_true)) == 0, ops.zeros_like(mse), mse)


# A: softmax before a cross-entropy told that it gets logits (a double softmax). tf.nn.softmax, not
# keras.ops.softmax: Keras marks its own softmax outputs and, on TensorFlow, undoes that softmax
# (with a warning) when they reach a from_logits=True cross-entropy.
def bug_A_cross_entropy(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return keras.losses.categorical_crossentropy(y_true, tf.nn.softmax(y_pred), from_logits=True)


def ok_A_cross_entropy(y_true, y_pred):
    """y_true: one-hot (N, C); y_pred: logits (N, C)."""
    return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)
