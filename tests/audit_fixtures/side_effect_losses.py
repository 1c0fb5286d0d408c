"""Losses with side effects on their caller: each must become a finding (X008 inputs written in place,
X009 a framework setting changed), the settings must be put back, and the correct losses after them,
which depend on those settings, must pass in the same worker."""
import torch


def float64_default_loss(pred, target):
    torch.set_default_dtype(torch.float64)  # every tensor created after this is float64
    return ((pred - target) ** 2).mean()


def grad_off_loss(pred, target):
    loss = ((pred - target) ** 2).mean()
    torch.set_grad_enabled(False)  # for a metric; never turned back on
    return loss


def clamping_loss(pred, target):
    target.clamp_(min=0.0)  # rewrites the caller's targets
    return ((pred - target) ** 2).mean()


def good_loss(pred, target):
    # audited after the losses above, in the same worker: their settings must have been put back
    assert torch.get_default_dtype() == torch.float32, torch.get_default_dtype()
    assert torch.is_grad_enabled(), "grad mode is off"
    return ((pred - target) ** 2).mean()
