"""The gradient-verification cases of issue 8, each as losscheck sees it (a catalog spec and one
:class:`~losscheck.catalog.spec.Case`) and as the same loss in torch, JAX/optax and TensorFlow for
the other checkers.

Shapes: ``CrossEntropyLoss`` on (256, 100) logits with int targets, ``MSELoss`` on (256, 100),
``CTCLoss`` on (T, N, C) = (50, 16, 20) log-probabilities, and the seed's importance-weighted MSE
(``custom.importance_weighted_mse``, examples/seed2_torch_context.py ``WeightedMSELoss``) on
(256, 100); ``quick`` shrinks every shape to a few elements. The torch loss is the spec's own
``call`` (the code losscheck checks); the JAX and TensorFlow losses are written to compute the same
value. Every function takes only the differentiated inputs; the others are closed over.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from losscheck import catalog
from losscheck.catalog import custom
from losscheck.catalog.spec import Case, LossSpec


@dataclass
class GradientCase:
    name: str
    spec: LossSpec
    case: Case                              # float64 inputs and params, as losscheck's check receives them
    diff: tuple[str, ...]                   # differentiated inputs, in the spec's argument order
    shape: str                              # for the table: "(256, 100) logits, int targets"
    jax_loss: Callable[[Any], Callable]     # (optax) -> f(*diff jax arrays) -> scalar
    tf_loss: Callable[[Any], Callable]      # (tf) -> f(*diff tf tensors) -> scalar
    #: for the finite-difference checkers, applied to the first input before the spec's torch call:
    #: the documented composition where the loss's backward assumes one (CTC behind a log_softmax)
    torch_input: Callable[[Any], Any] | None = None

    @property
    def elements(self) -> int:
        """Number of differentiated scalars (the columns of the full Jacobian)."""
        return sum(int(np.size(self.case.inputs[n])) for n in self.diff)

    def diff_arrays(self) -> list[np.ndarray]:
        return [np.asarray(self.case.inputs[n], dtype=np.float64) for n in self.diff]

    def torch_loss(self, raw: bool = False) -> Callable:
        """The spec's own torch loss in float64, as f(*diff tensors) (constants closed over), behind
        ``torch_input`` unless ``raw``."""
        import torch

        from losscheck.frameworks import Namespace
        from losscheck.frameworks.base import call_in_order

        params = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in self.case.params.items()}
        fn = self.spec.call(Namespace(), params)
        consts = {k: torch.as_tensor(np.asarray(v)) for k, v in self.case.inputs.items() if k not in self.diff}

        def loss(*xs):
            if self.torch_input is not None and not raw:
                xs = (self.torch_input(xs[0]), *xs[1:])
            return call_in_order(fn, self.spec.args, {**dict(zip(self.diff, xs)), **consts})
        return loss


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def cross_entropy(rng: np.random.Generator, n: int, c: int) -> GradientCase:
    logits = rng.normal(scale=3.0, size=(n, c))
    target = rng.integers(0, c, n)
    # the spec draws class indices as integral floats; its call casts them to int64
    case = Case({"input": logits, "target": target.astype(np.float64)},
                {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0})

    def jax_loss(optax):
        return lambda x: optax.losses.softmax_cross_entropy_with_integer_labels(x, target).mean()

    def tf_loss(tf):
        labels = tf.constant(target)
        return lambda x: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x))

    return GradientCase("CrossEntropyLoss", catalog.get("torch.nn.CrossEntropyLoss"), case, ("input",),
                        f"({n}, {c}) logits, int targets", jax_loss, tf_loss)


def mse(rng: np.random.Generator, n: int, c: int) -> GradientCase:
    case = Case({"input": rng.normal(size=(n, c)), "target": rng.normal(size=(n, c))}, {"reduction": "mean"})

    def jax_loss(optax):
        return lambda x, y: optax.losses.squared_error(x, y).mean()

    def tf_loss(tf):
        return lambda x, y: tf.reduce_mean(tf.square(x - y))

    return GradientCase("MSELoss", catalog.get("torch.nn.MSELoss"), case, ("input", "target"),
                        f"({n}, {c}) input and target", jax_loss, tf_loss)


def ctc(rng: np.random.Generator, t: int, n: int, c: int, s: int) -> GradientCase:
    """Blank 0; targets (n, s) padded, lengths in [s/2, s]; input lengths in [4t/5, t] (every
    alignment fits); ``reduction="mean"``: each loss over its target length, then the batch mean."""
    log_probs = _log_softmax(rng.normal(scale=2.0, size=(t, n, c)))
    targets = rng.integers(1, c, (n, s))
    target_lengths = rng.integers(max(1, s // 2), s + 1, n)
    input_lengths = rng.integers(t - t // 5, t + 1, n)
    case = Case({"log_probs": log_probs, "targets": targets, "input_lengths": input_lengths,
                 "target_lengths": target_lengths}, {"blank": 0, "reduction": "mean", "zero_infinity": False})

    def jax_loss(optax):
        import jax.numpy as jnp

        logit_paddings = (np.arange(t)[None, :] >= input_lengths[:, None]).astype(np.float64)
        label_paddings = (np.arange(s)[None, :] >= target_lengths[:, None]).astype(np.float64)

        def loss(lp):   # optax takes (N, T, C) logits and normalises them (a no-op on log-probabilities)
            per_seq = optax.losses.ctc_loss(jnp.transpose(lp, (1, 0, 2)), logit_paddings, targets, label_paddings)
            return jnp.mean(per_seq / target_lengths)
        return loss

    def tf_loss(tf):
        # sparse labels: TensorFlow's dense-label CTC path mixes float32 into float64 inputs and fails
        kept = np.argwhere(np.arange(s)[None, :] < target_lengths[:, None])
        labels = tf.SparseTensor(kept, targets[kept[:, 0], kept[:, 1]].astype(np.int32), (n, s))
        logit_length = tf.constant(input_lengths, tf.int32)
        lengths = tf.constant(target_lengths, tf.float64)

        def loss(lp):
            per_seq = tf.nn.ctc_loss(labels, lp, None, logit_length, logits_time_major=True, blank_index=0)
            return tf.reduce_mean(per_seq / tf.cast(lengths, per_seq.dtype))
        return loss

    # torch's CTC backward is the gradient w.r.t. the logits of ctc(log_softmax(logits)) at logits =
    # log_probs, not the derivative w.r.t. log_probs (the catalog spec's notes; its oracle binds that
    # convention): finite differences of the bare module disagree with it, so gradcheck gets the
    # documented composition, as the optax and TensorFlow twins (which normalise logits) do.
    return GradientCase("CTCLoss", catalog.get("torch.nn.CTCLoss"), case, ("log_probs",),
                        f"(T, N, C) = ({t}, {n}, {c}), targets (N, {s})", jax_loss, tf_loss,
                        torch_input=lambda x: x.log_softmax(-1))


def importance_weighted_mse(rng: np.random.Generator, n: int, c: int) -> GradientCase:
    """Seed 002's ``WeightedMSELoss``: ``torch.mean((p - y) ** 2 * mask)``, mask in {0, 1, 2, 4}."""
    mask = rng.choice([0.0, 1.0, 2.0, 4.0], size=(n, c))
    case = Case({"predictions": rng.uniform(size=(n, c)), "labels": rng.uniform(size=(n, c))}, {"mask": mask})

    def jax_loss(optax):
        import jax.numpy as jnp

        return lambda p, y: jnp.mean((p - y) ** 2 * mask)

    def tf_loss(tf):
        weights = tf.constant(mask)
        return lambda p, y: tf.reduce_mean(tf.square(p - y) * weights)

    return GradientCase("custom.importance_weighted_mse", custom.get("custom.importance_weighted_mse"), case,
                        ("predictions", "labels"), f"({n}, {c}) predictions and labels, constant mask",
                        jax_loss, tf_loss)


def all_cases(quick: bool = False, seed: int = 0) -> list[GradientCase]:
    rng = np.random.default_rng(seed)
    if quick:
        return [cross_entropy(rng, 8, 5), mse(rng, 8, 5), ctc(rng, 6, 2, 4, 2), importance_weighted_mse(rng, 8, 5)]
    return [cross_entropy(rng, 256, 100), mse(rng, 256, 100), ctc(rng, 50, 16, 20, 10),
            importance_weighted_mse(rng, 256, 100)]
