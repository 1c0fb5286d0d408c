"""TensorFlow autodiff: Keras on its tensorflow backend."""
from __future__ import annotations

import numpy as np

from .base import Evaluation, call_in_order, device_error, kind_of, ones_like_value, split_inputs


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
        """Value and gradient as Keras' ``fit()`` computes them (:func:`fit_like_value_and_grads`)."""
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, True)
        with self.tf.device(self.device):
            tensors = {n: self.tensor(x, "float", dtype) for n, x in diff.items()}
            tensors.update({n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()})
            names = list(tensors)
            fn = build(namespace, self.convert_params(case.params, dtype))
            out, gs = fit_like_value_and_grads(
                self.tf, lambda *xs: call_in_order(fn, spec_args, dict(zip(names, xs))), list(tensors.values()),
                list(range(len(diff))), [batch_axes.get(n) for n in names])
        return Evaluation(_float64(out), {n: _float64(gs[i]) if i in gs else None for i, n in enumerate(diff)},
                          "tf.Tensor")

    def context_error(self) -> str:
        """"" while the device still runs ops, else why not (:func:`~.base.device_error`)."""
        if self.device == "/CPU:0":
            return ""

        def probe():
            with self.tf.device(self.device):
                (self.tf.ones(1) + 1).numpy()
        return device_error(probe)

    def versions(self) -> dict:
        return {"tensorflow": self.tf.__version__}


def fit_like_value_and_grads(tf, fn, tensors, diff, batch_axes):
    """``fn(*tensors)`` and its gradients {index in ``diff``: gradient} in one ``tf.function`` as Keras'
    ``fit()`` builds it: no autograph for the loss (Keras' code calls it, and autograph does not
    convert what unconverted code calls), each tensor's ``batch_axes`` entry (None: none) of unknown
    size (a ``tf.data`` batch, or the last, partial one). Used by the engine and the audit."""
    specs = [tf.TensorSpec([None if i == axis else d for i, d in enumerate(t.shape)], t.dtype)
             for t, axis in zip(tensors, batch_axes)]

    def step(*xs):
        with tf.GradientTape() as tape:
            for i in diff:
                tape.watch(xs[i])
            out = fn(*xs)
        if not diff or not (tf.is_tensor(out) and out.dtype.is_floating):
            return out, {}
        gs = tape.gradient(out, [xs[i] for i in diff])
        return out, {i: g for i, g in zip(diff, gs) if g is not None}

    return tf.function(step, input_signature=specs, autograph=False)(*tensors)


def _float64(t) -> np.ndarray:
    """A tensor's values as float64 NumPy (widening is exact: no TensorFlow cast op needed)."""
    return np.asarray(t.numpy(), dtype=np.float64)
