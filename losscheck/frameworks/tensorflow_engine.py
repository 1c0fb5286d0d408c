"""TensorFlow autodiff: Keras on its tensorflow backend."""
from __future__ import annotations

import numpy as np

from .base import Evaluation, call_in_order, kind_of, ones_like_value, split_inputs


class TensorFlowEngine:
    def __init__(self, device: str = "cpu"):
        import tensorflow as tf

        self.tf = tf
        self.device = "/GPU:0" if device.startswith("cuda") else "/CPU:0"
        self.dtypes = {"float64": tf.float64, "float32": tf.float32,
                       "float16": tf.float16, "bfloat16": tf.bfloat16}

    def tensor(self, x, kind: str, dtype: str):
        tf = self.tf
        if kind == "float":
            return self._float(x, self.dtypes[dtype])
        if kind == "bool":
            return tf.constant(np.asarray(x, dtype=bool))
        return tf.constant(np.asarray(x, dtype=np.int64))

    def _float(self, x, dtype):
        """A float constant of TensorFlow ``dtype``; float32 and float64 rounded by NumPy (to nearest
        even, as ``tf.cast``): one eager op instead of two."""
        tf = self.tf
        x = np.asarray(x, dtype=np.float64)
        if dtype in (tf.float64, tf.float32):
            return tf.constant(x.astype(dtype.as_numpy_dtype, copy=False))
        return tf.cast(tf.constant(x), dtype)

    def convert_params(self, params, dtype):
        return {k: self.tensor(v, kind_of({}, k, np.asarray(v)), dtype) if isinstance(v, np.ndarray) else v
                for k, v in params.items()}

    def evaluate(self, build, namespace, spec_args, case, dtype, cotangent=None, want_grad=True) -> Evaluation:
        tf = self.tf
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, want_grad)
        with tf.device(self.device):
            leaves = {n: self.tensor(x, "float", dtype) for n, x in diff.items()}
            others = {n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()}
            fn = build(namespace, self.convert_params(case.params, dtype))
            with tf.GradientTape() as tape:
                for t in leaves.values():
                    tape.watch(t)
                out = call_in_order(fn, spec_args, {**leaves, **others})
            if not tf.is_tensor(out):
                return Evaluation(np.asarray(out, dtype=np.float64), {n: None for n in leaves},
                                  type(out).__name__, is_tensor=False)
            value = _float64(out)
            grads = {}
            if leaves:
                cot = self._float(ones_like_value(cotangent, tuple(out.shape)), out.dtype)
                gs = tape.gradient(out, list(leaves.values()), output_gradients=cot)
                grads = {n: None if g is None else _float64(tf.convert_to_tensor(g)) for n, g in zip(leaves, gs)}
        return Evaluation(value, grads, "tf.Tensor")

    def evaluate_eager(self, build, namespace, spec_args, case, dtype) -> Evaluation:
        return self.evaluate(build, namespace, spec_args, case, dtype)

    def evaluate_compiled(self, build, namespace, spec_args, case, dtype, batch_axes) -> Evaluation:
        """Value and gradient in one ``tf.function`` as Keras' ``fit()`` builds it: no autograph for the
        loss (Keras' code calls it, and autograph does not convert what unconverted code calls), the
        batch dimension of unknown size (a ``tf.data`` batch, or the last, partial one)."""
        tf = self.tf
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, True)
        with tf.device(self.device):
            tensors = {n: self.tensor(x, "float", dtype) for n, x in diff.items()}
            tensors.update({n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()})
            names = list(tensors)
            specs = [tf.TensorSpec([None if i == batch_axes.get(n) else d for i, d in enumerate(tensors[n].shape)],
                                   tensors[n].dtype) for n in names]
            fn = build(namespace, self.convert_params(case.params, dtype))

            def step(*xs):
                given = dict(zip(names, xs))
                with tf.GradientTape() as tape:
                    for n in diff:
                        tape.watch(given[n])
                    out = call_in_order(fn, spec_args, given)
                if not diff or not (tf.is_tensor(out) and out.dtype.is_floating):
                    return out, {}
                gs = tape.gradient(out, [given[n] for n in diff])
                return out, {n: g for n, g in zip(diff, gs) if g is not None}

            out, gs = tf.function(step, input_signature=specs, autograph=False)(*tensors.values())
        return Evaluation(_float64(out), {n: _float64(gs[n]) if n in gs else None for n in diff}, "tf.Tensor")

    def versions(self) -> dict:
        return {"tensorflow": self.tf.__version__}


def _float64(t) -> np.ndarray:
    """A tensor's values as float64 NumPy (widening is exact: no TensorFlow cast op needed)."""
    return np.asarray(t.numpy(), dtype=np.float64)
