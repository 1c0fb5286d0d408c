"""Seed 000, "How can I feed a model's input tensor to a loss function?", PyTorch part: a
regression model trained with nn.MSELoss, then a manual loss call on a new input.

    losscheck audit examples/seed0_feed_input_torch.py
"""
import torch
import torch.nn as nn

# Define a simple sequential model
model = nn.Sequential(
    nn.Linear(10, 64),
    nn.ReLU(),
    nn.Linear(64, 1),  # Regression output
)

# Define the loss function. Correct: torch.nn.MSELoss takes (input, target) = (prediction, target).
loss_fn = nn.MSELoss()


def train(input_tensor, target_tensor, epochs=1):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(epochs):
        optimizer.zero_grad()
        predictions = model(input_tensor)
        loss = loss_fn(predictions, target_tensor)  # correct order: prediction first
        loss.backward()
        optimizer.step()
    return loss


def manual_loss(target_tensor):
    new_input = torch.randn(1, 10)
    predictions = model(new_input)
    # BUG (the article's manual calculation): the target is passed first. MSELoss is symmetric, so
    # the number is the same, but the call is wrong for any other loss (V008, a warning here).
    loss = loss_fn(target_tensor[:1, :], predictions)
    return loss


def manual_loss_fixed(target_tensor):
    # Correct twin: prediction first, as every torch.nn loss expects.
    predictions = model(torch.randn(1, 10))
    return loss_fn(predictions, target_tensor[:1, :])


if __name__ == "__main__":
    input_tensor = torch.randn(32, 10)
    target_tensor = torch.randn(32, 1)
    train(input_tensor, target_tensor)
    print(f"Manual MSE Loss: {manual_loss(target_tensor)}")
