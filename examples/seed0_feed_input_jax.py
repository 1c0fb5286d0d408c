"""Seed 000, "How can I feed a model's input tensor to a loss function?", JAX part.

The article builds the model with flax and draws data with ``jnp.random.normal``, which does not
exist (jax.numpy has no random module: the article's code raises AttributeError). Here the model
is a plain JAX MLP and the data come from ``jax.random``; the loss is the article's.

    losscheck audit examples/seed0_feed_input_jax.py
"""
import jax
import jax.numpy as jnp


def init_params(key, sizes=(10, 64, 1)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [(jax.random.normal(k, (m, n)) / jnp.sqrt(m), jnp.zeros(n)) for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def model_apply(params, x):
    (w1, b1), (w2, b2) = params
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2  # Regression output


# Correct: the mean squared error the article computes inline, as a function of predictions and
# targets.
def mse(predictions, targets):
    return jnp.mean((predictions - targets) ** 2)


# Correct, but a training objective over the model's parameters rather than a loss of
# (prediction, target): the audit lists it and checks `mse`, which it calls.
def loss_fn(params, input_tensor, target_tensor):
    predictions = model_apply(params, input_tensor)
    return mse(predictions, target_tensor)


if __name__ == "__main__":
    key = jax.random.PRNGKey(0)
    params = init_params(key)
    input_tensor = jax.random.normal(key, (32, 10))
    target_tensor = jax.random.normal(jax.random.PRNGKey(1), (32, 1))
    grad_fn = jax.value_and_grad(loss_fn)
    loss, grads = grad_fn(params, input_tensor, target_tensor)
    predictions = model_apply(params, jax.random.normal(key, (1, 10)))
    print("Manual MSE loss:", mse(predictions, target_tensor[:1, :]))
