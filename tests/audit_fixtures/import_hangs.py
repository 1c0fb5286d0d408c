import torch


def mse_loss(pred, target):
    return ((pred - target) ** 2).mean()


while True: pass  # noqa: E701  line 8: module-level code that never finishes
