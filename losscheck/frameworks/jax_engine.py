"""JAX autodiff: optax losses, and Keras on its jax backend."""
from __future__ import annotations

import os

import numpy as np

from .base import Evaluation, call_in_order, device_error, kind_of, ones_like_value, split_inputs


#: where compiled XLA programs persist between runs and worker processes (JAX's own compilation
#: cache; a program is keyed by its HLO, so a cached one is the program a cold run would build)
CACHE_ENV = "LOSSCHECK_JAX_CACHE_DIR"


def cache_dir() -> str:
    """``$LOSSCHECK_JAX_CACHE_DIR`` (empty: no persistent cache), else ~/.cache/losscheck/jax."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "losscheck", "jax")
    return os.environ.get(CACHE_ENV, default)


class JaxEngine:
    def __init__(self, device: str = "cpu"):
        import jax

        jax.config.update("jax_enable_x64", True)
        if cache_dir():
            jax.config.update("jax_compilation_cache_dir", cache_dir())
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        platform = "gpu" if device.startswith("cuda") else "cpu"
        self.device = jax.devices(platform)[0]
        # jit places a NumPy argument on the default device itself, for a few microseconds where
        # device_put takes about 37 us (CPU, float64 (4, 5)); an explicit device_put is kept
        # where the runtime's device is not the default one (the CPU runtime on a GPU machine)
        self._host_inputs = self.device == jax.devices()[0]
        self._programs: dict = {}
        self._mode: dict = {}
        self.dtypes = {"float64": jnp.float64, "float32": jnp.float32,
                       "float16": jnp.float16, "bfloat16": jnp.bfloat16}

    def tensor(self, x, kind: str, dtype: str):
        return self._put(self._host(x, kind, dtype))

    def _host(self, x, kind: str, dtype: str) -> np.ndarray:
        # Convert in NumPy: jnp.asarray and jnp casts each compile a program per shape.
        if kind == "float":
            return np.asarray(x, dtype=np.float64).astype(self.dtypes[dtype])
        if kind == "bool":
            return np.asarray(x, dtype=bool)
        return np.asarray(x, dtype=np.int64)

    def convert_params(self, params, dtype, convert=None):
        convert = convert or self.tensor
        return {k: convert(v, kind_of({}, k, np.asarray(v)), dtype) if isinstance(v, np.ndarray) else v
                for k, v in params.items()}

    def evaluate(self, build, namespace, spec_args, case, dtype, cotangent=None, want_grad=True) -> Evaluation:
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, want_grad)
        names = list(diff)
        # the compiled programs take NumPy inputs where jit puts them on the runtime's device;
        # a loss run outside a program (the fallbacks below) gets jax arrays, as a user's would
        convert = self._host if self._host_inputs else self.tensor
        xs = [convert(diff[n], "float", dtype) for n in names]
        others = {n: convert(x, kind_of(kinds, n, x), dtype) for n, x in const.items()}
        params = self.convert_params(case.params, dtype, convert)
        try:
            if names:
                out, grads = self._cached(build, namespace, spec_args, names, xs, others, params, dtype, cotangent)
                return self._wrap(out, {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads)})
            return self._wrap(self._cached(build, namespace, spec_args, names, xs, others, params, dtype, None), {})
        except _NotCacheable:
            pass
        if self._host_inputs:
            put = self._put
            xs, others = [put(x) for x in xs], {n: put(x) for n, x in others.items()}
            params = {k: put(v) if isinstance(v, np.ndarray) else v for k, v in params.items()}
        fn = build(namespace, params)

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

    # ---- compiled-program cache ---------------------------------------------------------------
    # Hypothesis draws new parameter values and shapes for every example; a program compiled for
    # one example is reused for every later one with the same loss, structural parameters and
    # shapes. Float hyper-parameters (delta, gamma, label_smoothing) are passed as Python floats,
    # which jit traces as weakly typed scalars: a float32 loss stays float32, as with a literal.
    # Losses that need a concrete value (Python control flow on a parameter or on an integer
    # input) fall back, per loss, to baking those values into the program, then to one program per
    # example (the behaviour before the cache).

    def _cached(self, build, namespace, spec_args, names, xs, others, params, dtype, cotangent):
        floats = {k: v for k, v in params.items() if type(v) is float}
        arrays = {k: v for k, v in params.items() if isinstance(v, (np.ndarray, self.jax.Array))}
        static = {k: v for k, v in params.items() if k not in floats and k not in arrays}
        base = (build, tuple(a.name for a in spec_args), tuple(names), tuple(sorted(others)), dtype)
        mode_key = (base, _freeze(static))
        if mode_key[1] is None:
            raise _NotCacheable
        mode = self._mode.get(mode_key, 0)
        while mode < 2:
            frozen = _freeze(static if mode == 0 else {**static, **floats})
            traced = floats if mode == 0 else {}
            key = (base, mode, frozen, tuple(sorted(traced)), tuple(sorted(arrays)))
            fn = self._programs.get(key)
            if fn is None:
                fn = self._programs[key] = self._program(build, namespace, spec_args, names,
                                                         {**static, **({} if mode == 0 else floats)})
            try:
                if not names:
                    return fn((), others, traced, arrays, None)
                return fn(tuple(xs), others, traced, arrays, _cotangent(cotangent))
            except self._untraceable:
                mode += 1
                self._mode[mode_key] = mode
            except TypeError as exc:
                if "not a valid JAX type" not in str(exc):
                    raise
                mode = self._mode[mode_key] = 2
        raise _NotCacheable

    def _put(self, x: np.ndarray):
        return self.jax.device_put(x, self.device)

    def forget(self, build) -> None:
        """Drop the programs compiled for ``build``: the next call traces (runs the loss's Python)
        again. Used when a loss changed a setting while it was traced (``jax_enable_x64``)."""
        self._programs = {k: v for k, v in self._programs.items() if k[0][0] is not build}
        self._mode = {k: v for k, v in self._mode.items() if k[0][0] is not build}

    def _program(self, build, namespace, spec_args, names, static):
        jax = self.jax

        def run(xs, others, traced, arrays, cot):
            fn = build(namespace, {**static, **traced, **arrays})

            def f(*args):
                return call_in_order(fn, spec_args, {**dict(zip(names, args)), **others})
            return f(*xs) if cot is None else _value_and_vjp(jax, f, xs, cot)
        return jax.jit(run)

    @property
    def _untraceable(self):
        """Errors of losses that work eagerly but not under ``jit`` (Python control flow on values)."""
        e = self.jax.errors
        return (e.ConcretizationTypeError, e.TracerArrayConversionError, e.TracerBoolConversionError,
                e.TracerIntegerConversionError)

    def _vjp_compiled(self, f, xs, cotangent):
        """Value and VJP in one compiled program: eager JAX compiles every primitive for every new
        shape, a dozen compilations per example; this is one."""
        jax = self.jax
        return jax.jit(lambda args, cot: _value_and_vjp(jax, f, args, cot))(xs, _cotangent(cotangent))

    def _arrays(self, spec_args, case, dtype):
        """(the differentiable inputs' names, their arrays, the other inputs' arrays, the parameters),
        as jax arrays on the runtime's device."""
        kinds = {a.name: a.kind for a in spec_args}
        diff, const = split_inputs(spec_args, case, True)
        names = list(diff)
        xs = tuple(self.tensor(diff[n], "float", dtype) for n in names)
        others = {n: self.tensor(x, kind_of(kinds, n, x), dtype) for n, x in const.items()}
        return names, xs, others, self.convert_params(case.params, dtype)

    def evaluate_eager(self, build, namespace, spec_args, case, dtype) -> Evaluation:
        """Op by op, outside any compiled program (as a user calls it at the prompt)."""
        names, xs, others, params = self._arrays(spec_args, case, dtype)
        fn = build(namespace, params)

        def f(*args):
            return call_in_order(fn, spec_args, {**dict(zip(names, args)), **others})

        if not names:
            return self._wrap(f(), {})
        out, grads = self._vjp_eager(f, xs, None)
        return self._wrap(out, {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads)})

    def evaluate_compiled(self, build, namespace, spec_args, case, dtype, batch_axes) -> Evaluation:
        """Value and VJP in one ``jax.jit`` program as a training step builds it: every input a traced
        argument (targets, masks and array parameters such as weights too), scalar hyper-parameters
        fixed. Untraceable losses raise."""
        jax = self.jax
        names, xs, others, params = self._arrays(spec_args, case, dtype)
        arrays = {k: v for k, v in params.items() if isinstance(v, jax.Array)}
        fixed = {k: v for k, v in params.items() if k not in arrays}

        def step(xs, others, arrays):
            fn = build(namespace, {**fixed, **arrays})

            def f(*args):
                return call_in_order(fn, spec_args, {**dict(zip(names, args)), **others})
            return (f(*xs), ()) if not names else _value_and_vjp(jax, f, xs, np.float64(1.0))

        out, grads = jax.jit(step)(xs, others, arrays)
        return self._wrap(out, {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads)})

    def _vjp_eager(self, f, xs, cotangent):
        out, vjp = self.jax.vjp(f, *xs)
        cot = self.jnp.asarray(ones_like_value(cotangent, np.shape(out))).astype(out.dtype)
        return out, vjp(cot)

    def _wrap(self, out, grads):
        is_array = isinstance(out, self.jax.Array)
        return Evaluation(np.asarray(out, dtype=np.float64), grads,
                          "jax.Array" if is_array else type(out).__name__, is_tensor=is_array)

    def context_error(self) -> str:
        """"" while the device still runs programs, else why not (:func:`~.base.device_error`)."""
        if self.device.platform == "cpu":
            return ""
        return device_error(lambda: np.asarray(self.jax.device_put(np.ones(1), self.device) + 1))

    def versions(self) -> dict:
        import jaxlib

        return {"jax": self.jax.__version__, "jaxlib": jaxlib.__version__}


def _cotangent(cotangent) -> np.ndarray:
    """The cotangent as a jit argument: ones (a scalar, broadcast inside) unless one is given."""
    return np.float64(1.0) if cotangent is None else np.asarray(cotangent, dtype=np.float64)


def _value_and_vjp(jax, f, xs, cot):
    """(f(*xs), VJP of f at xs with ``cot`` broadcast to the output's shape and dtype); traced."""
    out, vjp = jax.vjp(f, *xs)
    return out, vjp(jax.numpy.broadcast_to(cot, jax.numpy.shape(out)).astype(out.dtype))


class _NotCacheable(Exception):
    """The case's parameters cannot key a compiled program (unhashable values)."""


def _freeze(params: dict):
    """A hashable key for static parameter values, or None when one is not hashable."""
    items = []
    for k, v in sorted(params.items()):
        if isinstance(v, (list, tuple)):
            v = tuple(v)
        if isinstance(v, np.ndarray):
            return None
        try:
            hash(v)
        except TypeError:
            return None
        items.append((k, type(v).__name__, v))
    return tuple(items)
