"""Hostile losses: each misbehaves in a way that must become a finding, and the audit must go on
to the next one (the last loss is correct and must pass)."""
import ctypes
import os
import sys

import numpy as np
import torch


def hanging_loss(pred, target):
    while True: pass  # noqa: E701  line 12: never returns


def segfault_loss(pred, target):
    ctypes.string_at(0)  # line 16: reads address 0
    return ((pred - target) ** 2).mean()


def exiting_loss(pred, target):
    sys.exit(3)


def os_exit_loss(pred, target):
    os._exit(7)


def memory_bomb_loss(pred, target):
    waste = np.ones(10**9)  # 8 GB: over the audit's --memory limit
    return ((pred - target) ** 2).mean() + float(waste[0]) * 0


def chatty_loss(pred, target):
    print("x" * 3_000_000)  # 3 MB per call
    return ((pred - target) ** 2).mean()


def numpy_loss(pred, target):
    return float(((pred - target) ** 2).mean())  # a Python float: no gradient


def unreduced_loss(pred, target):
    return (pred - target) ** 2 @ torch.ones(pred.shape[-1], 5, dtype=pred.dtype)  # (N, 5): not a loss value


def good_loss(pred, target):
    return ((pred - target) ** 2).mean()
