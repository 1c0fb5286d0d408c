"""JAX autodiff: optax losses, and Keras on its jax backend."""
from __future__ import annotations

import numpy as np

from .base import Evaluation, call_in_order, kind_of, ones_like_value, split_inputs


class JaxEngine:
    def __init__(self, device: str = "cpu"):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        platform = "gpu" if device.startswith("cuda") else "cpu"
        self.device = jax.devices(platform)[0]
        self.dtypes = {"float64": jnp.float64, "float32": jnp.float32,
                       "float16": jnp.float16, "bfloat16": jnp.bfloat16}

    def tensor(self, x, kind: str, dtype: str):
        jnp = self.jnp
        if kind == "float":
            arr = jnp.asarray(np.asarray(x, dtype=np.float64)).astype(self.dtypes[dtype])
        elif kind == "bool":
            arr = jnp.asarray(np.asarray(x, dtype=bool))
        else:
            arr = jnp.asarray(np.asarray(x, dtype=np.int64))
        return self.jax.device_put(arr, self.device)

    def convert_params(self, params, dtype):
        return {k: self.tensor(v, kind_of({}, k, np.asarray(v)), dtype) if isinstance(v, np.ndarray) else v
                for k, v in params.items()}

    def evaluate(self, build, namespace, spec_args, case, dtype, cotangent=None, want_grad=True) -> Evaluation:
        jax = self.jax
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, want_grad)
        names = list(diff)
        xs = [self.tensor(diff[n], "float", dtype) for n in names]
        others = {n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()}
        fn = build(namespace, self.convert_params(case.params, dtype))

        def f(*args):
            return call_in_order(fn, spec_args, {**dict(zip(names, args)), **others})

        if not names:
            try:
                out = self.jax.jit(f)()
            except self._untraceable:
                out = f()
            except TypeError as exc:
                if "not a valid JAX type" not in str(exc):
                    raise
                out = f()
            return self._wrap(out, {})
        try:
            out, grads = self._vjp_compiled(f, xs, cotangent)
        except self._untraceable:
            out, grads = self._vjp_eager(f, xs, cotangent)
        except TypeError as exc:
            if "not a valid JAX type" not in str(exc):
                raise
            out = f(*xs)   # a non-array return: evaluate it, no gradient can flow
            return Evaluation(np.asarray(out, dtype=np.float64), {n: None for n in names},
                              type(out).__name__, is_tensor=False)
        return self._wrap(out, {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads)})

    @property
    def _untraceable(self):
        """Errors of losses that work eagerly but not under ``jit`` (Python control flow on values)."""
        e = self.jax.errors
        return (e.ConcretizationTypeError, e.TracerArrayConversionError, e.TracerBoolConversionError,
                e.TracerIntegerConversionError)

    def _vjp_compiled(self, f, xs, cotangent):
        """Value and VJP in one compiled program: eager JAX compiles every primitive for every new
        shape, a dozen compilations per example; this is one."""
        jax, jnp = self.jax, self.jnp
        shape = jax.eval_shape(f, *xs)
        cot = jnp.asarray(ones_like_value(cotangent, shape.shape)).astype(shape.dtype)

        def value_and_vjp(args, cot):
            out, vjp = jax.vjp(f, *args)
            return out, vjp(cot)
        return jax.jit(value_and_vjp)(xs, cot)

    def _vjp_eager(self, f, xs, cotangent):
        out, vjp = self.jax.vjp(f, *xs)
        cot = self.jnp.asarray(ones_like_value(cotangent, np.shape(out))).astype(out.dtype)
        return out, vjp(cot)

    def _wrap(self, out, grads):
        is_array = isinstance(out, self.jax.Array)
        return Evaluation(np.asarray(out, dtype=np.float64), grads,
                          "jax.Array" if is_array else type(out).__name__, is_tensor=is_array)

    def versions(self) -> dict:
        import jaxlib

        return {"jax": self.jax.__version__, "jaxlib": jaxlib.__version__}
