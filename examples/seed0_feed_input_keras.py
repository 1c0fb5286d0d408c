"""Seed 000, "How can I feed a model's input tensor to a loss function?", TensorFlow/Keras part:
a regression model compiled with loss='mse', then a manual tf.keras.losses.MSE call.

    losscheck audit examples/seed0_feed_input_keras.py
"""
import tensorflow as tf

# Define a simple sequential model
model = tf.keras.Sequential([
    tf.keras.Input(shape=(10,)),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(1),  # Regression output
])

# Correct: Keras' built-in mean squared error, paired with a linear output.
model.compile(loss="mse", optimizer="adam")


def manual_loss(target_tensor):
    new_input = tf.random.normal((1, 10))
    predictions = model(new_input)
    # Correct: Keras losses take (y_true, y_pred), so the target comes first here.
    return tf.keras.losses.MSE(target_tensor[:1, :], predictions)


if __name__ == "__main__":
    input_tensor = tf.random.normal((32, 10))  # Batch size of 32, input dimension 10
    target_tensor = tf.random.normal((32, 1))  # Batch size of 32, single output
    model.fit(input_tensor, target_tensor, epochs=1)
    print(f"Manual MSE Loss: {manual_loss(target_tensor)}")
