"""Seed 002, "How can a custom loss function utilize a predefined, larger tensor?": custom torch
losses that hold a context tensor (an importance mask, an adjacency matrix, per-sample weights),
as the article writes them, bugs included, each with a correct twin where the article's has a bug.

    losscheck audit examples/seed2_torch_context.py
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# Correct: mean(mask * (p - y)^2), the mask converted to float once (the article's Example 1).
class WeightedMSELoss(nn.Module):
    def __init__(self, importance_mask):
        super().__init__()
        self.importance_mask = importance_mask.float()  # Ensure it is a float tensor

    def forward(self, predictions, labels):
        squared_error = (predictions - labels) ** 2
        weighted_error = squared_error * self.importance_mask
        return torch.mean(weighted_error)


# BUG (the article's Example 2, verbatim): a Python double loop over every pair of nodes makes each
# call O(N^2) Python-level operations (P001), and a node whose embedding is the zero vector gives
# 0/0 = NaN in the cosine (N001), which poisons every gradient of the batch.
class GraphDistanceLoss(nn.Module):
    def __init__(self, adjacency_matrix):
        super().__init__()
        self.adj_matrix = adjacency_matrix.float()  # Ensure floating point data type

    def forward(self, embeddings):
        num_nodes = embeddings.shape[0]
        loss = torch.tensor(0.0, requires_grad=True)

        for i in range(num_nodes):
            for j in range(num_nodes):
                if self.adj_matrix[i, j] > 0:  # Nodes are connected in our graph
                    # Compute a cosine distance for embeddings of connected nodes
                    similarity = torch.dot(embeddings[i], embeddings[j]) / (
                        torch.norm(embeddings[i]) * torch.norm(embeddings[j]))
                    loss = loss - similarity  # Push embeddings of connected nodes together
        return loss


# Correct twin of GraphDistanceLoss: the same loss in three tensor operations, with the norms
# floored (F.normalize, eps=1e-8) so a zero embedding contributes 0 instead of NaN.
class GraphDistanceLossVectorised(nn.Module):
    def __init__(self, adjacency_matrix):
        super().__init__()
        self.register_buffer("adj_matrix", adjacency_matrix.float())

    def forward(self, embeddings):
        n = embeddings.shape[0]
        unit = F.normalize(embeddings, dim=1, eps=1e-8)
        edges = (self.adj_matrix[:n, :n] > 0).to(unit.dtype)
        return -(edges * (unit @ unit.T)).sum()


# BUG (a vectorisation of GraphDistanceLoss that drops the article's `.float()`): the adjacency
# matrix stays an integer tensor when it is built from Python integers (torch.tensor([[0, 1], ...])
# is int64), and `adjacency @ unit` then raises "expected m1 and m2 to have the same dtype" (D002).
class GraphDistanceLossNoCast(nn.Module):
    def __init__(self, adjacency_matrix):
        super().__init__()
        self.adj_matrix = adjacency_matrix

    def forward(self, embeddings):
        n = embeddings.shape[0]
        unit = F.normalize(embeddings, dim=1, eps=1e-8)
        return -(unit * (self.adj_matrix[:n, :n] @ unit)).sum()


# BUG (the article's Example 3, verbatim): `self.weights.view(-1, 1)` assumes 2-D predictions.
# With predictions of shape (N,) (one output per sample, squeezed) the (N, 1) weights broadcast
# against the (N,) errors to an (N, N) matrix, and the mean becomes mean(w) * mean(e): the
# per-sample weights are silently lost (B005).
class DynamicWeightedLoss(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.weights = weights.float()  # Ensure floating point data type

    def forward(self, predictions, labels):
        # Ensure shapes are compatible for multiplication
        if predictions.shape[0] != self.weights.shape[0]:
            raise ValueError("The batch size of predictions does not match the weights shape")

        error = (predictions - labels) ** 2  # Mean squared error
        weighted_error = error * self.weights.view(-1, 1)  # Weights should broadcast over the last dimension
        return torch.mean(weighted_error)  # Compute the mean of weighted errors


# Correct twin of DynamicWeightedLoss: the weights get one axis per trailing axis of the
# predictions, so (N,) and (N, D) predictions are both weighted per sample.
class DynamicWeightedLossFixed(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.register_buffer("weights", weights.float())

    def forward(self, predictions, labels):
        if predictions.shape[0] != self.weights.shape[0]:
            raise ValueError("The batch size of predictions does not match the weights shape")
        error = (predictions - labels) ** 2
        w = self.weights.reshape(-1, *([1] * (error.dim() - 1)))
        return torch.mean(error * w)


if __name__ == "__main__":
    mask = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    predictions = torch.tensor([[0.2, 0.7, 0.9], [0.4, 0.3, 0.1], [0.8, 0.6, 0.5]])
    labels = torch.tensor([[0.1, 0.8, 0.8], [0.2, 0.2, 0.2], [0.9, 0.5, 0.4]])
    print(WeightedMSELoss(mask)(predictions, labels))

    adj_matrix = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]])
    embeddings = torch.tensor([[0.5, 0.2], [0.7, 0.6], [0.1, 0.9], [0.8, 0.3]], requires_grad=True)
    print(GraphDistanceLoss(adj_matrix)(embeddings))

    weights = torch.tensor([0.5, 2.0, 0.8, 1.2])
    predictions = torch.tensor([[0.2, 0.7], [0.4, 0.3], [0.8, 0.6], [0.1, 0.5]])
    labels = torch.tensor([[0.1, 0.8], [0.2, 0.2], [0.9, 0.5], [0.3, 0.7]])
    print(DynamicWeightedLoss(weights)(predictions, labels))
