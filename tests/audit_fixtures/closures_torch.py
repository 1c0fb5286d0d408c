"""Losses with extra arguments bound by a closure, functools.partial or a lambda, a loss with
opaque argument names declared with @losscheck.declare, and one that forgets the softmax."""
import functools

import torch
import torch.nn.functional as F

import losscheck


def huber(pred, target, delta):
    err = (pred - target).abs()
    return torch.where(err <= delta, 0.5 * err ** 2, delta * (err - 0.5 * delta)).mean()


def make_weighted_mse(weight):
    def weighted_mse(pred, target):
        return (weight * (pred - target) ** 2).mean()
    return weighted_mse


weighted = make_weighted_mse(2.0)                          # closure
huber_2 = functools.partial(huber, delta=2.0)              # partial
half_mse = lambda pred, target: 0.5 * ((pred - target) ** 2).mean()   # noqa: E731  lambda


@losscheck.declare(inputs="a=probs(N,C),b=onehot(N,C)")
def opaque_loss(a, b):
    return -(b * torch.log(a.clamp_min(1e-12))).sum(dim=1).mean()


# BUG: named logits, but log() is applied to them directly: no softmax (A004)
def nll_of_logits_loss(logits, labels):
    return F.nll_loss(torch.log(logits), labels)
