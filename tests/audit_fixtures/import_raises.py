import torch

SCALE = 2.0


def mse_loss(pred, target):
    return ((pred - target) ** 2).mean() * SCALE


raise RuntimeError("configuration file not found")  # line 10
