import os

import torch


def mse_loss(pred, target):
    return ((pred - target) ** 2).mean()


os._exit(5)  # line 10
