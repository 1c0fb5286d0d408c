"""Framework runtimes: where a loss is called and differentiated.

A runtime pairs an autodiff engine (torch, JAX, TensorFlow) with the namespace a spec's ``call``
receives. Keras picks its backend once per process, so the runtimes are grouped into worker
processes by Keras backend (:data:`PROCESS_GROUPS`); torch and JAX share the process of the Keras
backend that uses them. Nothing here imports a framework until a runtime is loaded.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from functools import cached_property

RUNTIMES = ("torch", "jax", "keras-tensorflow", "keras-jax", "keras-torch")
#: worker process -> runtimes it runs; the process's KERAS_BACKEND is the group name.
PROCESS_GROUPS = {
    "torch": ("torch", "keras-torch"),
    "jax": ("jax", "keras-jax"),
    "tensorflow": ("keras-tensorflow",),
}
ENGINE_OF = {"torch": "torch", "keras-torch": "torch", "jax": "jax", "keras-jax": "jax",
             "keras-tensorflow": "tensorflow"}
REQUIRES = {"torch": ("torch",), "jax": ("jax", "optax"), "keras-tensorflow": ("keras", "tensorflow"),
            "keras-jax": ("keras", "jax"), "keras-torch": ("keras", "torch")}
KERAS_BACKEND_OF = {"keras-tensorflow": "tensorflow", "keras-jax": "jax", "keras-torch": "torch"}
#: how a training step compiles a runtime's losses (Keras' fit() on each backend; a jitted JAX step);
#: torch and Keras on torch train with eager calls
COMPILER_OF = {"jax": "jax.jit", "keras-jax": "jax.jit", "keras-tensorflow": "tf.function"}


def group_of(runtime: str) -> str:
    return next(g for g, members in PROCESS_GROUPS.items() if runtime in members)


def installed(runtime: str) -> bool:
    """True when the packages a runtime needs are importable (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in REQUIRES[runtime])


class Namespace:
    """What a spec's ``call(ns, params)`` receives: modules imported on first attribute access."""
    _MODULES = {"torch": "torch", "F": "torch.nn.functional", "keras": "keras", "optax": "optax",
                "jax": "jax", "jnp": "jax.numpy", "tf": "tensorflow"}

    def __getattr__(self, name):
        if name not in self._MODULES:
            raise AttributeError(name)
        module = importlib.import_module(self._MODULES[name])
        setattr(self, name, module)
        return module


@dataclass
class Runtime:
    name: str
    device: str = "cpu"

    @cached_property
    def engine(self):
        kind = ENGINE_OF[self.name]
        if kind == "torch":
            from .torch_engine import TorchEngine
            return TorchEngine(self.device)
        if kind == "jax":
            from .jax_engine import JaxEngine
            return JaxEngine(self.device)
        from .tensorflow_engine import TensorFlowEngine
        return TensorFlowEngine(self.device)

    @cached_property
    def namespace(self) -> Namespace:
        backend = KERAS_BACKEND_OF.get(self.name)
        if backend is not None:
            _require_keras_backend(backend)
        return Namespace()

    @property
    def is_keras(self) -> bool:
        return self.name in KERAS_BACKEND_OF

    def supports(self, dtype: str) -> bool:
        return dtype in self.engine.dtypes

    @property
    def compiler(self) -> str | None:
        return COMPILER_OF.get(self.name)

    def evaluate(self, build, args, case, dtype, cotangent=None, want_grad=True, *, mode=None, batch_axes=None):
        """The engine's evaluation, with the framework settings the loss changes put back (a
        :class:`~.guard.StateChanged` is raised when it changed one). ``mode``: None, the engine's
        own way; "eager", op by op; "compiled", as a training step compiles it (:attr:`compiler`;
        ``batch_axes``: {argument: its batch axis}, of unknown size there), value and gradient
        with a cotangent of ones, the loss's errors raised."""
        from .guard import StateChanged, Watch

        ns, engine = self.namespace, self.engine   # the engine's own settings (JAX x64) come first
        if self.is_keras:
            ns.keras.config.set_floatx(dtype)
        try:
            with Watch(), self._keras_device_scope():
                if mode == "compiled":
                    return engine.evaluate_compiled(build, ns, args, case, dtype, batch_axes or {})
                if mode == "eager":
                    return engine.evaluate_eager(build, ns, args, case, dtype)
                return engine.evaluate(build, ns, args, case, dtype, cotangent, want_grad)
        except StateChanged:
            if hasattr(engine, "forget"):   # programs traced under the changed setting: trace again
                engine.forget(build)
            raise

    def _keras_device_scope(self):
        """Keras on torch makes its constants on its default device (cuda where one is visible), and
        Keras on JAX on JAX's: the runtime's device must be Keras' too, or the CPU runtime of a GPU
        machine mixes devices. TensorFlow's engine places the call itself."""
        import contextlib

        if self.name == "keras-torch":
            return self.namespace.keras.device(self.device)
        if self.name == "keras-jax":
            kind, _, index = self.device.partition(":")
            return self.namespace.keras.device(f"{'gpu' if kind == 'cuda' else kind}:{index or 0}")
        return contextlib.nullcontext()

    def versions(self) -> dict:
        out = dict(self.engine.versions())
        if self.is_keras:
            out["keras"] = self.namespace.keras.__version__
        if self.name == "jax":
            out["optax"] = self.namespace.optax.__version__
        return out


def _require_keras_backend(backend: str) -> None:
    import sys

    if "keras" in sys.modules:
        current = sys.modules["keras"].config.backend()
        if current != backend:
            raise RuntimeError(
                f"Keras is already loaded with backend {current!r} in this process; "
                f"keras-{backend} checks run in their own worker process")
        return
    os.environ["KERAS_BACKEND"] = backend


_CACHE: dict[tuple[str, str], Runtime] = {}


def get_runtime(name: str, device: str = "cpu") -> Runtime:
    if name not in RUNTIMES:
        raise KeyError(f"unknown runtime {name!r}; expected one of {RUNTIMES}")
    key = (name, device)
    if key not in _CACHE:
        _CACHE[key] = Runtime(name, device)
    return _CACHE[key]
