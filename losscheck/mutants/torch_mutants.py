"""Planted bugs in PyTorch losses, written the way people write them, each with its correct twin."""
from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .record import Mutant

M = partial(Mutant, framework="torch")


# ---- V: value ---------------------------------------------------------------------------------------

def mse_sum(input, target):
    return ((input - target) ** 2).sum()


def mse_mean(input, target):
    return ((input - target) ** 2).mean()


def poisson_swapped(input, target):
    return F.poisson_nll_loss(target, input)


def poisson_right(input, target):
    return F.poisson_nll_loss(input, target)


def half_mse(input, target):
    return 0.5 * ((input - target) ** 2).mean()   # the 1/2 of the textbook derivation, kept in the loss


def huber_no_delta_scale(input, target, delta=2.0):
    d = (input - target).abs()
    quadratic = d.clamp(max=delta)
    return (0.5 * quadratic ** 2 + (d - quadratic)).mean()   # the linear part is not multiplied by delta


def huber_right(input, target, delta=2.0):
    d = (input - target).abs()
    quadratic = d.clamp(max=delta)
    return (0.5 * quadratic ** 2 + delta * (d - quadratic)).mean()


def l1_squared(input, target):
    return ((input - target) ** 2).abs().mean()   # "L1" that squares first


def l1_right(input, target):
    return (input - target).abs().mean()


def smooth_l1_beta_ignored(input, target, beta=0.5):
    d = (input - target).abs()
    quadratic = d.clamp(max=1.0)   # the textbook beta = 1, whatever beta the caller asked for
    return (0.5 * quadratic ** 2 + (d - quadratic)).mean()


def smooth_l1(input, target, beta=0.5):
    d = (input - target).abs()
    quadratic = d.clamp(max=beta)
    return (0.5 * quadratic ** 2 / beta + (d - quadratic)).mean()


# ---- G: gradient ---------------------------------------------------------------------------------------

class _SquaredErrorFlipped(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        ctx.save_for_backward(input, target)
        return ((input - target) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        g = grad * 2 * (target - input) / input.numel()   # (target - input): the sign of the residual flipped
        return g, -g


class _SquaredErrorHalfGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        ctx.save_for_backward(input, target)
        return ((input - target) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        g = grad * (input - target) / input.numel()   # the factor 2 of d/dx x^2 forgotten
        return g, -g


class _SquaredError(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        ctx.save_for_backward(input, target)
        return ((input - target) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        g = grad * 2 * (input - target) / input.numel()
        return g, -g


class _HuberMSEBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        ctx.save_for_backward(input, target)
        d = (input - target).abs()
        return torch.where(d < 1.0, 0.5 * d ** 2, d - 0.5).mean()

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        g = grad * (input - target) / input.numel()   # the MSE gradient: the clip at |d| = 1 is missing
        return g, -g


class _Huber(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        ctx.save_for_backward(input, target)
        d = (input - target).abs()
        return torch.where(d < 1.0, 0.5 * d ** 2, d - 0.5).mean()

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        g = grad * (input - target).clamp(-1.0, 1.0) / input.numel()
        return g, -g


def mse_flipped_backward(input, target):
    return _SquaredErrorFlipped.apply(input, target)


def mse_half_backward(input, target):
    return _SquaredErrorHalfGrad.apply(input, target)


def mse_custom_backward(input, target):
    return _SquaredError.apply(input, target)


def huber_mse_backward(input, target):
    return _HuberMSEBackward.apply(input, target)


def huber_custom_backward(input, target):
    return _Huber.apply(input, target)


def mse_detached(input, target):
    return ((input.detach() - target) ** 2).mean()


def mse_numpy_round_trip(input, target):
    diff = input.detach().cpu().numpy() - target.detach().cpu().numpy()
    return torch.as_tensor(np.mean(diff ** 2), dtype=input.dtype)


def mse_item(input, target):
    return torch.tensor(((input - target) ** 2).mean().item(), dtype=input.dtype, requires_grad=True)


# ---- B: batch handling --------------------------------------------------------------------------------

def mse_fixed_batch(pred, target):
    return ((pred - target) ** 2).sum() / 32   # "divide by the batch size", hard-coded


def mse_over_target_spread(pred, target):
    return ((pred - target) ** 2).mean() / target.var()


def mse_over_two(pred, target):
    return ((pred - target) ** 2).mean() / 2.0


def cosine_wrong_dim(pred, target):
    """pred, target: (N, D) embeddings."""
    return (1 - (F.normalize(pred, dim=0) * F.normalize(target, dim=0)).sum(dim=1)).mean()   # over the batch


def cosine_right_dim(pred, target):
    """pred, target: (N, D) embeddings."""
    return (1 - (F.normalize(pred, dim=1) * F.normalize(target, dim=1)).sum(dim=1)).mean()


class WeightedMSEBroadcast(nn.Module):
    """Per-sample weights stored as a column: with (N,) predictions, (N, 1) * (N,) is (N, N)."""

    def __init__(self, sample_weights):
        super().__init__()
        self.register_buffer("w", sample_weights.float().view(-1, 1))

    def forward(self, pred, target):
        return (self.w.to(pred.dtype) * (pred - target) ** 2).mean()


class WeightedMSE(nn.Module):
    def __init__(self, sample_weights):
        super().__init__()
        self.register_buffer("w", sample_weights.float())

    def forward(self, pred, target):
        w = self.w.to(pred.dtype).view(-1, *([1] * (pred.dim() - 1)))
        return (w * (pred - target) ** 2).mean()


def ce_batch_softmax(logits, labels):
    return F.nll_loss(torch.log_softmax(logits, dim=0), labels)   # softmax over the batch, not the classes


def ce_class_softmax(logits, labels):
    return F.nll_loss(torch.log_softmax(logits, dim=1), labels)


# ---- D: integer context tensors -----------------------------------------------------------------------

class MaskedMSEIntMask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, pred, target):
        sq = (pred - target) ** 2
        return torch.einsum("nd,nd->", sq, self.mask) / self.mask.sum()   # einsum wants equal dtypes


class MaskedMSE(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask.float())

    def forward(self, pred, target):
        sq = (pred - target) ** 2
        mask = self.mask.to(sq.dtype)
        return torch.einsum("nd,nd->", sq, mask) / mask.sum()


class GraphLossIntAdjacency(nn.Module):
    def __init__(self, adjacency):
        super().__init__()
        self.adjacency = adjacency

    def forward(self, embeddings):
        u = F.normalize(embeddings, dim=1, eps=1e-8)
        return -(u * (self.adjacency @ u)).sum() / embeddings.shape[0]


class GraphLoss(nn.Module):
    def __init__(self, adjacency):
        super().__init__()
        self.register_buffer("adjacency", adjacency.float())

    def forward(self, embeddings):
        u = F.normalize(embeddings, dim=1, eps=1e-8)
        return -(u * (self.adjacency.to(u.dtype) @ u)).sum() / embeddings.shape[0]


class ClassWeightedCEIntWeights(nn.Module):
    def __init__(self, class_weights):
        super().__init__()
        self.class_weights = class_weights

    def forward(self, logits, labels):
        per_sample = F.cross_entropy(logits, labels, reduction="none")
        return torch.dot(self.class_weights[labels], per_sample) / labels.numel()   # dot wants equal dtypes


class ClassWeightedCE(nn.Module):
    def __init__(self, class_weights):
        super().__init__()
        self.register_buffer("class_weights", class_weights.float())

    def forward(self, logits, labels):
        per_sample = F.cross_entropy(logits, labels, reduction="none")
        return torch.dot(self.class_weights.to(logits.dtype)[labels], per_sample) / labels.numel()


# ---- N: numerics --------------------------------------------------------------------------------------

def bce_no_clamp(input, target):
    return -(target * torch.log(input) + (1 - target) * torch.log(1 - input)).mean()   # 0 * log(0) = NaN


def bce_library(input, target):
    return F.binary_cross_entropy(input, target)


def ce_naive_logsumexp(input, target):
    log_probs = input - torch.log(torch.exp(input).sum(dim=-1, keepdim=True))   # exp overflows for large logits
    return -log_probs.gather(-1, target.unsqueeze(-1)).mean()


def ce_log_softmax(input, target):
    return -torch.log_softmax(input, dim=-1).gather(-1, target.unsqueeze(-1)).mean()


def cosine_distance_no_eps(pred, target):
    """pred, target: (N, D) embeddings."""
    cos = (pred * target).sum(1) / (pred.norm(dim=1) * target.norm(dim=1))   # a zero vector divides by 0
    return (1 - cos).mean()


def cosine_distance(pred, target):
    """pred, target: (N, D) embeddings."""
    return (1 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)).mean()


def bce_sign_dropped(input, target):
    return -F.binary_cross_entropy(input, target)   # the log-likelihood, not its negative: a negative "loss"


# ---- P: performance -----------------------------------------------------------------------------------

def pairwise_loop(embeddings):
    n = embeddings.shape[0]
    total = embeddings.new_zeros(())
    for i in range(n):
        for j in range(n):
            total = total + ((embeddings[i] - embeddings[j]) ** 2).sum()
    return total / (n * n)


def pairwise_vectorised(embeddings):
    n = embeddings.shape[0]
    centred = embeddings - embeddings.mean(dim=0)
    return 2.0 * (centred ** 2).sum() / n   # the mean over pairs of |e_i - e_j|^2


def contrastive_list_comprehension(embeddings):
    sims = torch.stack([torch.stack([F.cosine_similarity(a, b, dim=0) for b in embeddings]) for a in embeddings])
    return (sims ** 2).mean()


def contrastive_matrix(embeddings):
    u = F.normalize(embeddings, dim=1, eps=1e-8)
    return ((u @ u.T) ** 2).mean()


# ---- X: execution -------------------------------------------------------------------------------------

def mse_item_float(pred, target):
    return ((pred - target) ** 2).mean().item()


def mse_numpy(pred, target):
    return ((pred.detach().numpy() - target.detach().numpy()) ** 2).mean()


def mse_tensor(pred, target):
    return ((pred - target) ** 2).mean()


def mse_per_feature(input, target):
    return ((input - target) ** 2).mean(dim=0)   # reduces the batch only: one value per feature


def ce_float_labels(input, target):
    return F.nll_loss(torch.log_softmax(input, dim=-1), target.float())   # nll_loss wants class indices


def mse_wrong_dim(input, target):
    return ((input - target) ** 2).mean(dim=2).mean()   # inputs have at most 2 dimensions


def mse_any_rank(input, target):
    return ((input - target) ** 2).mean()


# ---- X: side effects on the caller ----------------------------------------------------------------------

def mse_target_clamped_in_place(input, target):
    target.clamp_(min=0.0)   # "targets are non-negative": rewrites the batch the data loader handed over
    return ((input - target) ** 2).mean()


def mse_residual_in_place(input, target):
    residual = input.sub_(target)   # saves an allocation, and overwrites the model's output
    return (residual ** 2).mean()


def ce_log_softmax_into_logits(input, target):
    # normalised in the logits' own memory (log_softmax is idempotent: the value is right)
    input[:] = torch.log_softmax(input, dim=1 if input.dim() > 1 else 0)
    return F.cross_entropy(input, target)


def ce_cross_entropy(input, target):
    return F.cross_entropy(input, target)


def mse_default_float64(input, target):
    torch.set_default_dtype(torch.float64)   # "more precision": every tensor created after this is float64
    return ((input - target) ** 2).mean()


def mse_local_float64(input, target):
    return ((input.double() - target.double()) ** 2).mean().to(input.dtype)


METRICS: dict = {}   # what the two losses below log


def mse_logs_with_grad_off(pred, target):
    loss = ((pred - target) ** 2).mean()
    torch.set_grad_enabled(False)   # a metric without building a graph, and autograd never turned back on
    METRICS["mae"] = (pred - target).abs().mean()
    return loss


def mse_logs_under_no_grad(pred, target):
    loss = ((pred - target) ** 2).mean()
    with torch.no_grad():
        METRICS["mae"] = (pred - target).abs().mean()
    return loss


# ---- A: activation / loss pairing ---------------------------------------------------------------------

def ce_after_softmax(logits, labels):
    return F.cross_entropy(torch.softmax(logits, dim=1), labels)   # cross_entropy applies log_softmax itself


def ce_on_logits(logits, labels):
    return F.cross_entropy(logits, labels)


def bce_logits_after_sigmoid(logits, targets):
    return F.binary_cross_entropy_with_logits(torch.sigmoid(logits), targets)   # a double sigmoid


def bce_with_logits(logits, targets):
    return F.binary_cross_entropy_with_logits(logits, targets)


def nll_on_probabilities(logits, labels):
    return F.nll_loss(torch.softmax(logits, dim=1), labels)   # nll_loss expects log-probabilities


def nll_on_log_probabilities(logits, labels):
    return F.nll_loss(torch.log_softmax(logits, dim=1), labels)


MUTANTS = [
    # V
    M("torch.mse_sum_for_mean", "V", "sum where the mean is meant", mse_sum, mse_mean, "torch.nn.MSELoss"),
    M("torch.poisson_swapped", "V", "prediction and target swapped in poisson_nll_loss", poisson_swapped,
      poisson_right, "torch.nn.PoissonNLLLoss"),
    M("torch.half_mse", "V", "the 1/2 of the derivation left in an MSE", half_mse, mse_mean, "torch.nn.MSELoss"),
    M("torch.huber_delta", "V", "Huber's linear part not multiplied by delta", huber_no_delta_scale, huber_right,
      "torch.nn.HuberLoss", params={"delta": 2.0}),
    M("torch.l1_squares", "V", "an L1 loss that squares the residual", l1_squared, l1_right, "torch.nn.L1Loss"),
    M("torch.smooth_l1_beta", "V", "SmoothL1 with beta hard-coded to 1", smooth_l1_beta_ignored, smooth_l1,
      "torch.nn.SmoothL1Loss", params={"beta": 0.5}),
    # G
    M("torch.backward_sign", "G", "custom backward returns (target - input): the wrong sign", mse_flipped_backward,
      mse_custom_backward, "torch.nn.MSELoss"),
    M("torch.backward_factor", "G", "custom backward forgets the factor 2", mse_half_backward, mse_custom_backward,
      "torch.nn.MSELoss"),
    M("torch.backward_not_forward", "G", "custom Huber backward is the MSE gradient (no clip)", huber_mse_backward,
      huber_custom_backward, "torch.nn.HuberLoss", params={"delta": 1.0}),
    M("torch.detach", "G", ".detach() on the prediction", mse_detached, mse_mean, "torch.nn.MSELoss"),
    M("torch.numpy_round_trip", "G", "NumPy round trip inside the loss", mse_numpy_round_trip, mse_mean,
      "torch.nn.MSELoss"),
    M("torch.item_rewrapped", "G", ".item() re-wrapped in a new tensor", mse_item, mse_mean, "torch.nn.MSELoss"),
    # B
    M("torch.hard_coded_batch", "B", "sum divided by a hard-coded batch size of 32", mse_fixed_batch, mse_mean,
      via="audit"),
    M("torch.batch_statistic", "B", "normalised by the batch's target variance", mse_over_target_spread,
      mse_over_two, via="audit"),
    M("torch.normalize_dim0", "B", "F.normalize over the batch (dim=0) instead of the features", cosine_wrong_dim,
      cosine_right_dim, via="audit"),
    M("torch.weights_column", "B", "per-sample weights stored as (N, 1) against (N,) predictions",
      WeightedMSEBroadcast, WeightedMSE, via="audit"),
    M("torch.softmax_over_batch", "B", "log_softmax over dim 0 (the batch)", ce_batch_softmax, ce_class_softmax,
      via="audit"),
    # D
    M("torch.int_mask_where", "D", "integer mask given to torch.where", MaskedMSEIntMask, MaskedMSE, via="audit"),
    M("torch.int_adjacency", "D", "integer adjacency matrix in a matmul", GraphLossIntAdjacency, GraphLoss,
      via="audit"),
    M("torch.int_class_weights", "D", "integer class weights passed to cross_entropy", ClassWeightedCEIntWeights,
      ClassWeightedCE, via="audit"),
    # N
    M("torch.bce_log0", "N", "log(0) at p = 0 or 1 without a clamp", bce_no_clamp, bce_library, "torch.nn.BCELoss"),
    M("torch.naive_logsumexp", "N", "log(sum(exp(z))) overflows", ce_naive_logsumexp, ce_log_softmax,
      via="audit"),
    M("torch.cosine_no_eps", "N", "cosine divides by the norms without an eps", cosine_distance_no_eps,
      cosine_distance, via="audit"),
    M("torch.bce_negative", "N", "returns -BCE (the log-likelihood): a negative loss", bce_sign_dropped, bce_library,
      "torch.nn.BCELoss"),
    # P
    M("torch.pairwise_loop", "P", "Python double loop over the pairs of samples", pairwise_loop,
      pairwise_vectorised, via="audit"),
    M("torch.similarity_comprehension", "P", "(N, N) similarities built by a nested list comprehension",
      contrastive_list_comprehension, contrastive_matrix, via="audit"),
    # X
    M("torch.returns_float", "X", "returns .item(): a Python float", mse_item_float, mse_tensor, via="audit"),
    M("torch.returns_numpy", "X", "computes in NumPy and returns a NumPy number", mse_numpy, mse_tensor, via="audit"),
    M("torch.per_feature_output", "X", "reduces dim 0 only: one value per feature", mse_per_feature, mse_mean,
      "torch.nn.MSELoss"),
    M("torch.float_labels", "X", "class labels cast to float for nll_loss", ce_float_labels, ce_log_softmax,
      via="audit"),
    M("torch.mean_dim2", "X", "mean over a dimension the inputs do not have", mse_wrong_dim, mse_any_rank,
      "torch.nn.MSELoss"),
    M("torch.target_clamped_in_place", "X", "target.clamp_(): the loss rewrites the caller's targets",
      mse_target_clamped_in_place, mse_mean, "torch.nn.MSELoss"),
    M("torch.residual_in_place", "X", "input.sub_(target): the loss overwrites the model's output",
      mse_residual_in_place, mse_mean, "torch.nn.MSELoss"),
    M("torch.log_softmax_into_logits", "X", "input[:] = log_softmax(input): the logits overwritten",
      ce_log_softmax_into_logits, ce_cross_entropy, "torch.nn.CrossEntropyLoss"),
    M("torch.set_default_dtype", "X", "torch.set_default_dtype(torch.float64) inside the loss",
      mse_default_float64, mse_local_float64, "torch.nn.MSELoss"),
    M("torch.grad_left_disabled", "X", "torch.set_grad_enabled(False) for a metric, never re-enabled",
      mse_logs_with_grad_off, mse_logs_under_no_grad, via="audit"),
    # A
    M("torch.softmax_then_cross_entropy", "A", "softmax before cross_entropy (a double softmax)", ce_after_softmax,
      ce_on_logits, via="audit"),
    M("torch.sigmoid_then_bce_with_logits", "A", "sigmoid before binary_cross_entropy_with_logits",
      bce_logits_after_sigmoid, bce_with_logits, via="audit"),
    M("torch.nll_on_probabilities", "A", "softmax probabilities into nll_loss", nll_on_probabilities,
      nll_on_log_probabilities, via="audit"),
]
