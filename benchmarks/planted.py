"""A planted one-element gradient error: the loss's forward is untouched, its backward returns the
true gradient with the sign of one element of the first differentiated input flipped.

One wrapper per framework (a ``torch.autograd.Function``, a ``jax.custom_vjp``, a
``tf.custom_gradient``), and :func:`planted_spec` to check the torch one with losscheck.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from losscheck.catalog.spec import LossSpec


def largest_element(grad: np.ndarray) -> int:
    """Flat index of the gradient's largest magnitude: flipping it is an unambiguous error."""
    return int(np.argmax(np.abs(np.asarray(grad)).ravel()))


def torch_planted(fn: Callable, index: int) -> Callable:
    """``fn(*tensors)`` with a backward whose first tensor gradient has element ``index`` negated."""
    import torch

    class FlippedElement(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            ctx.save_for_backward(*args)
            with torch.no_grad():
                return fn(*args)

        @staticmethod
        def backward(ctx, grad_out):
            args, needs = ctx.saved_tensors, ctx.needs_input_grad
            with torch.enable_grad():
                leaves = [a.detach().requires_grad_(bool(need)) for a, need in zip(args, needs)]
                wanted = [leaf for leaf, need in zip(leaves, needs) if need]
                grads = list(torch.autograd.grad(fn(*leaves), wanted, grad_out, allow_unused=True))
            first = next(i for i, g in enumerate(grads) if g is not None)
            flipped = grads[first].clone()
            flipped.view(-1)[index] = -flipped.view(-1)[index]
            grads[first] = flipped
            it = iter(grads)
            return tuple(next(it) if need else None for need in needs)

    return lambda *args: FlippedElement.apply(*args)


def jax_planted(fn: Callable, index: int) -> Callable:
    import jax

    @jax.custom_vjp
    def planted(*xs):
        return fn(*xs)

    def forward(*xs):
        return fn(*xs), xs

    def backward(xs, cotangent):
        grads = list(jax.vjp(fn, *xs)[1](cotangent))
        flat = grads[0].reshape(-1)
        grads[0] = flat.at[index].set(-flat[index]).reshape(grads[0].shape)
        return tuple(grads)

    planted.defvjp(forward, backward)
    return planted


def tf_planted(fn: Callable, index: int) -> Callable:
    import tensorflow as tf

    @tf.custom_gradient
    def planted(*xs):
        def grad(upstream):
            with tf.GradientTape() as tape:   # recomputed: the gradient may be asked for more than once
                tape.watch(xs)
                out = fn(*xs)
            grads = tape.gradient(out, list(xs), output_gradients=upstream)
            flat = tf.reshape(grads[0], [-1])
            flat = tf.tensor_scatter_nd_update(flat, [[index]], -flat[index:index + 1])
            grads[0] = tf.reshape(flat, tf.shape(grads[0]))
            return grads
        return fn(*xs), grad

    return planted


def planted_spec(spec: LossSpec, index: int) -> LossSpec:
    """The spec with its torch call wrapped by :func:`torch_planted` (all tensors pass through)."""
    def call(ns, params):
        return torch_planted(spec.call(ns, params), index)
    return dataclasses.replace(spec, id=f"planted.{spec.id}", call=call)
