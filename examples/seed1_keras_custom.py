"""Seed 001, "How do I pass model input to a custom TensorFlow Keras loss function?": custom Keras
losses as the article writes them, compiled with lambdas that bind extra arguments, bugs
included, each with a correct twin where the article's has a bug.

    losscheck audit examples/seed1_keras_custom.py
"""
import tensorflow as tf

# A regression model (the article uses `model` without defining it).
model = tf.keras.Sequential([
    tf.keras.Input(shape=(10,)),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(1),
])


# Correct (Example 1): the mean over every element, a scalar; Keras reduces a scalar to itself.
def custom_mse(y_true, y_pred):
    """Custom MSE loss function. Demonstrates basic functionality."""
    mse = tf.reduce_mean(tf.square(y_true - y_pred))
    return mse


model.compile(loss=custom_mse, optimizer="adam")


# Correct, Keras-style: one value per sample (the mean over the last axis), like
# keras.losses.mean_squared_error; Keras reduces it over the batch in compile/fit.
def custom_mse_per_sample(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)


# Example 2: mean((t - p)^2 * class_weights), class_weights one weight per column of y_pred.
# Right for float weights; BUG with integer ones: tf.constant([1, 2]) is int32, and tf.multiply of
# a float tensor by an integer one raises (D002). The correct twin below casts the weights.
def weighted_mse(y_true, y_pred, class_weights):
    """Custom weighted MSE. Demonstrates passing additional arguments."""
    weighted_errors = tf.multiply(tf.square(y_true - y_pred), class_weights)
    weighted_mse = tf.reduce_mean(weighted_errors)
    return weighted_mse


# A binary classifier with one output, as the article's "weights for binary classification"
# suggest.
binary_model = tf.keras.Sequential([
    tf.keras.Input(shape=(10,)),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
class_weights = tf.constant([0.8, 1.2])  # Example weights for binary classification.
# BUG (Example 2's compile): two class weights against one output column. tf.multiply broadcasts
# (N, 1) errors against (2,) weights to (N, 2): every sample is counted once per weight and the
# "class weighting" becomes a constant factor mean(w) = 1.0. With 3 columns it raises; it only
# works for exactly two columns (B005).
binary_model.compile(loss=lambda y_true, y_pred: weighted_mse(y_true, y_pred, class_weights), optimizer="adam")


# Correct twin of Example 2: the weights must have one entry per column, which the loss checks;
# here a two-class softmax model with one-hot targets.
def weighted_mse_checked(y_true, y_pred, class_weights):
    if y_pred.shape[-1] != class_weights.shape[0]:
        raise ValueError(f"class_weights has {class_weights.shape[0]} entries, y_pred {y_pred.shape[-1]} columns")
    return tf.reduce_mean(tf.square(y_true - y_pred) * tf.cast(class_weights, y_pred.dtype))


two_class_model = tf.keras.Sequential([
    tf.keras.Input(shape=(10,)),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(2, activation="softmax"),
])
two_class_model.compile(loss=lambda y_true, y_pred: weighted_mse_checked(y_true, y_pred, class_weights),
                        optimizer="adam")


# Correct (Example 3): Huber loss plus an L2 penalty on the first layer's kernel. The penalty does
# not depend on y_true or y_pred: the audit reports it as Keras' Huber plus a constant.
def custom_huber_loss_with_regularization(y_true, y_pred, delta=1.0, lambda_reg=0.01):
    """Demonstrates a more complex loss function with hyperparameters."""
    huber_loss = tf.reduce_mean(tf.where(tf.abs(y_true - y_pred) < delta,
                                         0.5 * tf.square(y_true - y_pred),
                                         delta * (tf.abs(y_true - y_pred) - 0.5 * delta)))
    regularization_loss = tf.reduce_mean(tf.square(model.layers[0].kernel))  # L2 on the first layer's weights
    total_loss = huber_loss + lambda_reg * regularization_loss
    return total_loss


model.compile(loss=lambda y_true, y_pred: custom_huber_loss_with_regularization(y_true, y_pred, delta=1.0,
                                                                                 lambda_reg=0.01),
              optimizer="adam")
