"""PyTorch autodiff: torch losses, and Keras on its torch backend."""
from __future__ import annotations

import numpy as np

from .base import Evaluation, call_in_order, device_error, kind_of, ones_like_value, split_inputs
from .guard import Watch


class TorchEngine:
    def __init__(self, device: str = "cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtypes = {"float64": torch.float64, "float32": torch.float32,
                       "float16": torch.float16, "bfloat16": torch.bfloat16}

    def tensor(self, x, kind: str, dtype: str, requires_grad: bool = False):
        t = self.torch
        # torch.tensor copies: a loss that writes into its input must not write into the drawn case
        if kind == "float":
            out = t.tensor(np.asarray(x, dtype=np.float64), dtype=self.dtypes[dtype], device=self.device)
            return out.requires_grad_(requires_grad)
        if kind == "bool":
            return t.tensor(np.asarray(x, dtype=bool), device=self.device)
        return t.tensor(np.asarray(x, dtype=np.int64), device=self.device)

    def convert_params(self, params, dtype):
        return {k: self.tensor(v, kind_of({}, k, np.asarray(v)), dtype) if isinstance(v, np.ndarray) else v
                for k, v in params.items()}

    def evaluate(self, build, namespace, spec_args, case, dtype, cotangent=None, want_grad=True) -> Evaluation:
        torch = self.torch
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, want_grad)
        leaves = {n: self.tensor(x, "float", dtype, requires_grad=True) for n, x in diff.items()}
        others = {n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()}
        fn = build(namespace, self.convert_params(case.params, dtype))
        # The loss gets non-leaf copies of the leaves, as a model's output is in training: an in-place
        # write then succeeds (torch refuses it on a leaf) and the Watch reports it (X008), comparing
        # each copy with its leaf, which the loss never sees.
        inputs = {**{n: x.clone() for n, x in leaves.items()}, **others}
        with Watch(inputs, settings=False, originals=leaves):
            out = call_in_order(fn, spec_args, inputs)
        if not isinstance(out, torch.Tensor):
            return Evaluation(np.asarray(out, dtype=np.float64), {n: None for n in leaves},
                              type(out).__name__, is_tensor=False)
        value = out.detach().to(torch.float64).cpu().numpy()
        grads = {}
        if leaves:
            if out.requires_grad:
                cot = torch.from_numpy(ones_like_value(cotangent, tuple(out.shape))).to(out.device, out.dtype)
                gs = torch.autograd.grad(out, list(leaves.values()), grad_outputs=cot, allow_unused=True)
            else:
                gs = [None] * len(leaves)
            grads = {n: None if g is None else g.detach().to(torch.float64).cpu().numpy()
                     for n, g in zip(leaves, gs)}
        return Evaluation(value, grads, "torch.Tensor")

    def context_error(self) -> str:
        """"" while the device still runs kernels, else why not (:func:`~.base.device_error`)."""
        if self.device.type == "cpu":
            return ""

        def probe():
            (self.torch.ones(1, device=self.device) + 1).cpu()
            self.torch.cuda.synchronize(self.device)
        return device_error(probe)

    def versions(self) -> dict:
        return {"torch": str(self.torch.__version__)}  # TorchVersion would import torch on unpickling
