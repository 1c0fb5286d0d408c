"""Seed 003, "Implementation of the loss function in PyTorch": a classifier trained with
nn.CrossEntropyLoss. The article's code is correct: raw scores (no softmax) go into
CrossEntropyLoss, prediction first.

    losscheck audit examples/seed3_torch_classification.py
"""
import torch
import torch.nn as nn


# Define the neural network architecture
class Simple_NN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(Simple_NN, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)  # Fully connected layer 1
        self.relu = nn.ReLU()  # ReLU activation function
        self.fc2 = nn.Linear(hidden_size, output_size)  # Fully connected layer 2

    def forward(self, x):
        out = self.fc1(x)  # Apply the first fully connected layer
        out = self.relu(out)  # Apply the ReLU activation function
        out = self.fc2(out)  # Apply the second fully connected layer
        return out


# Define network hyperparameters
input_size = 64  # Number of input features
hidden_size = 128  # Number of neurons in the hidden layer
output_size = 10  # Number of output classes

model = Simple_NN(input_size, hidden_size, output_size)
# Correct: CrossEntropyLoss applies log_softmax itself, and the model ends in a Linear layer (logits).
criterion = nn.CrossEntropyLoss()


def train(n_epochs=10):
    input_data = torch.rand(32, input_size)  # 32 is the batch size
    target = torch.empty(32, dtype=torch.long).random_(output_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(n_epochs):
        output = model(input_data)
        loss = criterion(output, target)  # Compute the loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"Epoch [{epoch + 1}/{n_epochs}], Loss: {loss.item()}")


if __name__ == "__main__":
    train()
