"""Planted bugs, one per check family, in otherwise correct torch losses; each `*_bug_*` loss has a
correct twin `*_ok_*` that must pass with no findings. The letter after `bug_` is the family."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import losscheck


# V: the reduction is a sum where the declared reference (MSELoss) takes the mean
@losscheck.declare(reference="torch.nn.MSELoss")
def bug_V_mse(input, target):
    return ((input - target) ** 2).sum()


@losscheck.declare(reference="torch.nn.MSELoss")
def ok_V_mse(input, target):
    return ((input - target) ** 2).mean()


# G: .detach() cuts the gradient
def bug_G_mse(pred, target):
    return ((pred.detach() - target) ** 2).mean()


def ok_G_mse(pred, target):
    return ((pred - target) ** 2).mean()


# B: normalised by a statistic of the batch: samples are no longer independent
def bug_B_scaled_mse(pred, target):
    return ((pred - target) ** 2).mean() / target.var()


def ok_B_scaled_mse(pred, target):
    return ((pred - target) ** 2).mean() / 2.0


# N: log(sum(exp(z))) overflows for confident logits: inf - inf = NaN
def bug_N_cross_entropy(logits, labels):
    log_probs = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
    return -log_probs.gather(1, labels[:, None]).mean()


def ok_N_cross_entropy(logits, labels):
    return -torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).mean()


# D: the adjacency matrix stays an integer tensor, and `adjacency @ x` rejects it
class bug_D_GraphLoss(nn.Module):
    def __init__(self, adjacency):
        super().__init__()
        self.adjacency = adjacency

    def forward(self, embeddings):
        u = F.normalize(embeddings, dim=1, eps=1e-8)
        return -(u * (self.adjacency @ u)).sum() / embeddings.shape[0]


class ok_D_GraphLoss(nn.Module):
    def __init__(self, adjacency):
        super().__init__()
        self.register_buffer("adjacency", adjacency.float())

    def forward(self, embeddings):
        u = F.normalize(embeddings, dim=1, eps=1e-8)
        return -(u * (self.adjacency.to(u.dtype) @ u)).sum() / embeddings.shape[0]


# P: a Python double loop over the pairs of samples
def bug_P_pairwise_loss(embeddings):
    n = embeddings.shape[0]
    total = embeddings.new_zeros(())
    for i in range(n):
        for j in range(n):
            total = total + ((embeddings[i] - embeddings[j]) ** 2).sum()
    return total / (n * n)


def ok_P_pairwise_loss(embeddings):
    n = embeddings.shape[0]
    centred = embeddings - embeddings.mean(dim=0)
    return 2.0 * (centred ** 2).sum() / n   # the same quantity: mean over pairs of |e_i - e_j|^2


# X: returns a Python float
def bug_X_mse(pred, target):
    return ((pred - target) ** 2).mean().item()


def ok_X_mse(pred, target):
    return ((pred - target) ** 2).mean()


# A: softmax applied before cross_entropy, which applies log_softmax itself (a double softmax)
def bug_A_cross_entropy(logits, labels):
    return F.cross_entropy(torch.softmax(logits, dim=1), labels)


def ok_A_cross_entropy(logits, labels):
    return F.cross_entropy(logits, labels)


# A, from the file: a model ending in Softmax trained with CrossEntropyLoss
model_softmax = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
bug_A_criterion = nn.CrossEntropyLoss()
model_logits = nn.Sequential(nn.Linear(4, 3))
ok_A_criterion = nn.CrossEntropyLoss()


def train_step(x, y):
    loss = bug_A_criterion(model_softmax(x), y) + ok_A_criterion(model_logits(x), y)
    return loss
