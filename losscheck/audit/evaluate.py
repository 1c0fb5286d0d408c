"""Call a user's loss in its framework and differentiate it: value, gradient per differentiable
argument, what it returned. torch and TensorFlow run eagerly; JAX runs one jit-compiled program per
loss, op by op where the loss cannot be traced and while a Python loop's time is measured. The
``compiled`` mode runs the loss as a compiled training step does instead (``jax.jit``, Keras'
``fit()`` on TensorFlow), for the X010 check.

A loss is a *factory* ``make(**context_tensors) -> callable`` (a class built with its context, a
function with its context arguments bound, or a function that ignores the context), called with
its tensor arguments in the order of its parameters.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..frameworks import COMPILER_OF
from ..frameworks.guard import Hostile, Watch


@dataclass
class Output:
    value: np.ndarray                          # float64 copy of what the loss returned
    grads: dict[str, np.ndarray | None] = field(default_factory=dict)   # None: no gradient reaches it
    is_tensor: bool = True
    type_name: str = ""
    dtype: str = ""                            # the returned tensor's dtype name
    note: str = ""                             # why no gradient could be taken (traced conversion...)
    numeric: bool = True                       # False: not a tensor, number or array (None, str, list...)


#: how training compiles a loss, per framework (Keras: its backend's); torch trains eagerly
COMPILER = {fw: COMPILER_OF[rt] for fw, rt in (("jax", "jax"), ("tensorflow", "keras-tensorflow"))}


def _dtype_name(d) -> str:
    name = getattr(d, "name", None) or str(d)
    return str(name).replace("torch.", "")


class Evaluator:
    """Evaluates factories in one framework (``keras`` runs on the Keras backend loaded)."""

    def __init__(self, framework: str, device: str = "cpu"):
        if framework == "keras":
            import keras

            framework = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[keras.config.backend()]
            self.keras = True
        else:
            self.keras = False
        self.framework, self.device = framework, device
        #: evaluate op by op (JAX only): timing a Python loop needs it; everything else is compiled
        self.eager = False
        if framework == "torch":
            import torch

            self.torch = torch
            self.tdevice = torch.device(device)
        elif framework == "tensorflow":
            import tensorflow as tf

            self.tf = tf
        elif framework == "jax":
            import jax
            import jax.numpy as jnp

            self.jax, self.jnp = jax, jnp
            self._programs: dict = {}
            self._untraceable: set = set()
            self._keep: list = []    # losses whose id() keys _untraceable stay alive
        else:
            raise ValueError(f"unknown framework {framework!r}")
        #: what the loss did to its caller, first of each code (X008 inputs written, X009 settings
        #: changed, and restored); the calls go on: a side effect is a finding, not a failed call
        self.side_effects: dict[str, Hostile] = {}

    def _note(self, watch: Watch) -> None:
        for h in watch.found:
            self.side_effects.setdefault(h.code, h)
        if self.framework == "jax" and any(h.code == "X009" for h in watch.found):
            self._programs.clear()   # traced under the changed setting: trace (run the loss's Python) again

    # ---- tensors --------------------------------------------------------------------------------

    def tensor(self, x: np.ndarray, dtype: str, *, integer: bool = False, grad: bool = False, device: str | None = None):
        x = np.asarray(x)
        if self.framework == "torch":
            t = self.torch
            dev = self.tdevice if device is None else t.device(device)
            # copies: a loss that writes into its input must not write into the probe's arrays
            if integer or np.issubdtype(x.dtype, np.integer):
                return t.tensor(np.asarray(x, np.int64), device=dev)
            out = t.tensor(np.asarray(x, np.float64), dtype=getattr(t, dtype), device=dev)
            return out.requires_grad_(grad)
        if self.framework == "tensorflow":
            tf = self.tf
            if integer or np.issubdtype(x.dtype, np.integer):
                return tf.constant(np.asarray(x, np.int64 if not integer else np.int32))
            return tf.constant(np.asarray(x, np.float64).astype(dtype))
        jnp = self.jnp
        if integer or np.issubdtype(x.dtype, np.integer):
            return jnp.asarray(np.asarray(x, np.int32))
        return jnp.asarray(np.asarray(x, np.float64).astype(dtype))

    def is_tensor(self, out) -> bool:
        if self.framework == "torch":
            return isinstance(out, self.torch.Tensor)
        if self.framework == "tensorflow":
            return self.tf.is_tensor(out) or isinstance(out, self.tf.Variable)
        return isinstance(out, self.jax.Array)

    def to_numpy(self, out) -> np.ndarray:
        if self.framework == "torch" and isinstance(out, self.torch.Tensor):
            return out.detach().to("cpu").to(self.torch.float64).numpy() if out.is_floating_point() \
                else out.detach().cpu().numpy().astype(np.float64)
        if self.framework == "tensorflow" and self.tf.is_tensor(out):
            return np.asarray(out.numpy(), dtype=np.float64)
        try:
            return np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            return np.asarray(np.nan)

    def foreign(self, out, grads: dict) -> Output:
        """What a loss returned that is not a tensor of its framework. A number or an array (NumPy's,
        another framework's) keeps its value; anything else (None, a str, a list of tensors, the
        coroutine of an ``async def`` or the generator of a ``yield``) has none: ``numeric`` False."""
        value, numeric = np.asarray(np.nan), False
        if isinstance(out, (int, float, np.number, np.ndarray)) or hasattr(type(out), "__array__"):
            try:
                value, numeric = np.asarray(out, dtype=np.float64), True
            except Exception:  # noqa: BLE001 - torch refuses a tensor that requires grad, object arrays...
                pass
        if inspect.iscoroutine(out) or inspect.isgenerator(out):
            out.close()   # never awaited or iterated: no "coroutine was never awaited" warning
        return Output(value, grads, False, type(out).__name__, numeric=numeric)

    # ---- calling -----------------------------------------------------------------------------------

    def run(self, make: Callable[..., Callable], args: list[tuple[str, np.ndarray, bool]], context: dict[str, Any],
            dtype: str, *, want_grad: bool = True, cotangent: np.ndarray | None = None,
            integer_context: bool = False, context_device: str | None = None,
            compiled: tuple[str, ...] | None = None) -> Output:
        """Evaluate ``make(**context)(*args)``. ``args``: (name, array, differentiable) in call order;
        ``context``: {constructor argument: array} (built as tensors of ``dtype``, or of int64 with
        ``integer_context``, on ``context_device`` when given). ``compiled``: run it as a compiled
        training step does (:data:`COMPILER`), the arguments it names with a batch dimension of
        unknown size; errors of the loss there are raised, not worked around."""
        ctx = {k: self.tensor(v, dtype, integer=integer_context and np.all(np.mod(v, 1) == 0), device=context_device)
               if isinstance(v, np.ndarray) else v for k, v in context.items()}
        if self.keras:
            import keras

            keras.config.set_floatx(dtype)
        watch = Watch(raise_=False)   # the settings the loss changes are put back
        try:
            with watch:
                if compiled is not None:
                    return getattr(self, f"_compiled_{self.framework}")(make, args, ctx, dtype, want_grad, compiled)
                return getattr(self, f"_run_{self.framework}")(make, args, ctx, dtype, want_grad, cotangent)
        finally:
            self._note(watch)

    @property
    def compiler(self) -> str | None:
        """How a compiled training step runs this framework's losses (None: training calls them eagerly)."""
        return COMPILER.get(self.framework)

    def _run_torch(self, make, args, ctx, dtype, want_grad, cotangent) -> Output:
        torch = self.torch
        tensors = [self.tensor(x, dtype, grad=want_grad and d and np.issubdtype(np.asarray(x).dtype, np.floating))
                   for _, x, d in args]
        fn = make(**ctx)
        if hasattr(fn, "to") and isinstance(fn, torch.nn.Module):
            fn = fn.to(self.tdevice) if self.device != "cpu" and not ctx else fn
        # non-leaf copies of the leaves, as a model's output is in training: torch refuses an
        # in-place write into a leaf; into these it succeeds and the Watch sees it (X008)
        given = [t.clone() if t.requires_grad else t for t in tensors]
        watch = Watch({n: t for (n, _, _), t in zip(args, given)}, settings=False, raise_=False)
        try:
            with watch:
                out = fn(*given)
        finally:
            self._note(watch)
        if not isinstance(out, torch.Tensor):
            return self.foreign(out, {n: None for n, _, d in args if d})
        value = self.to_numpy(out)
        grads = {}
        leaves = [(n, t) for (n, _, d), t in zip(args, tensors) if d and t.requires_grad]
        if want_grad and leaves:
            if out.requires_grad:
                cot = torch.as_tensor(np.broadcast_to(1.0 if cotangent is None else cotangent, tuple(out.shape)).copy(),
                                      device=out.device).to(out.dtype)
                gs = torch.autograd.grad(out, [t for _, t in leaves], grad_outputs=cot, allow_unused=True)
            else:
                gs = [None] * len(leaves)
            grads = {n: None if g is None else g.detach().cpu().to(torch.float64).numpy() for (n, _), g in zip(leaves, gs)}
        return Output(value, grads, True, "torch.Tensor", _dtype_name(out.dtype))

    def _run_tensorflow(self, make, args, ctx, dtype, want_grad, cotangent) -> Output:
        tf = self.tf
        tensors = [self.tensor(x, dtype) for _, x, _ in args]
        fn = make(**ctx)
        with tf.GradientTape(persistent=False) as tape:
            for (n, x, d), t in zip(args, tensors):
                if d and t.dtype.is_floating:
                    tape.watch(t)
            out = fn(*tensors)
        if not (tf.is_tensor(out) or isinstance(out, tf.Variable)):
            return self.foreign(out, {n: None for n, _, d in args if d})
        value = self.to_numpy(out)
        grads = {}
        leaves = [(n, t) for (n, _, d), t in zip(args, tensors) if d and t.dtype.is_floating]
        if want_grad and leaves:
            if out.dtype.is_floating:
                cot = tf.cast(tf.constant(np.broadcast_to(1.0 if cotangent is None else cotangent, tuple(out.shape)).copy()),
                              out.dtype)
                gs = tape.gradient(out, [t for _, t in leaves], output_gradients=cot)
            else:
                gs = [None] * len(leaves)
            grads = {n: None if g is None else np.asarray(tf.cast(tf.convert_to_tensor(g), tf.float64).numpy())
                     for (n, _), g in zip(leaves, gs)}
        return Output(value, grads, True, "tf.Tensor", _dtype_name(out.dtype))

    def _compiled_tensorflow(self, make, args, ctx, dtype, want_grad, batch_args) -> Output:
        from ..frameworks.tensorflow_engine import fit_like_value_and_grads

        tf = self.tf
        tensors = [self.tensor(x, dtype) for _, x, _ in args]
        fn = make(**ctx)
        diff = [i for i, ((_, _, d), t) in enumerate(zip(args, tensors)) if want_grad and d and t.dtype.is_floating]
        axes = [0 if n in batch_args and t.shape.rank else None for (n, _, _), t in zip(args, tensors)]
        out, gs = fit_like_value_and_grads(tf, fn, tensors, diff, axes)
        grads = {args[i][0]: np.asarray(tf.cast(gs[i], tf.float64).numpy()) if i in gs else None for i in diff}
        return Output(self.to_numpy(out), grads, True, "tf.Tensor", _dtype_name(out.dtype))

    def _compiled_jax(self, make, args, ctx, dtype, want_grad, batch_args) -> Output:
        tensors = tuple(self.tensor(x, dtype) for _, x, _ in args)
        fn = make(**ctx)
        return self._jax_compiled(fn, args, tensors, self._jax_diff(args, tensors, want_grad), None)

    def _jax_diff(self, args, tensors, want_grad) -> tuple[int, ...]:
        jnp = self.jnp
        return tuple(i for i, ((_, x, d), t) in enumerate(zip(args, tensors))
                     if want_grad and d and jnp.issubdtype(t.dtype, jnp.floating))

    def _run_jax(self, make, args, ctx, dtype, want_grad, cotangent) -> Output:
        jax, jnp = self.jax, self.jnp
        tensors = tuple(self.tensor(x, dtype) for _, x, _ in args)
        fn = make(**ctx)
        diff = self._jax_diff(args, tensors, want_grad)
        if not self.eager and (id(fn), diff) not in self._untraceable:
            try:
                return self._jax_compiled(fn, args, tensors, diff, cotangent)
            except self._tracer_errors:
                self._untraceable.add((id(fn), diff))   # Python control flow or conversions on values
                self._keep.append(fn)
        if not diff:
            return self._jax_output(fn(*tensors), {}, args)

        def f(*xs):
            full = list(tensors)
            for i, x in zip(diff, xs):
                full[i] = x
            return fn(*full)

        try:
            out, vjp = jax.vjp(f, *[tensors[i] for i in diff])
        except self._tracer_errors as exc:
            # the loss leaves JAX (float(), np.asarray, Python control flow on values): no gradient
            out = fn(*tensors)
            o = self._jax_output(out, {args[i][0]: None for i in diff}, args)
            o.note = f"differentiating it failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            return o
        if not isinstance(out, jax.Array):
            return self._jax_output(out, {args[i][0]: None for i in diff}, args)
        cot = jnp.asarray(np.broadcast_to(1.0 if cotangent is None else cotangent, out.shape).copy()).astype(out.dtype)
        gs = vjp(cot)
        grads = {args[i][0]: np.asarray(g, dtype=np.float64) for i, g in zip(diff, gs)}
        return self._jax_output(out, grads, args)

    @property
    def _tracer_errors(self):
        e = self.jax.errors
        return (TypeError, e.ConcretizationTypeError, e.TracerArrayConversionError, e.TracerBoolConversionError,
                e.TracerIntegerConversionError)

    def _jax_compiled(self, fn, args, tensors, diff, cotangent) -> Output:
        """Value and VJP in one jit-compiled program per loss (eager JAX compiles every primitive again
        for every new shape, which costs seconds for a loss of a few dozen operations)."""
        jax, jnp = self.jax, self.jnp
        key = (id(fn), diff)
        if key not in self._programs:
            def value(xs):
                return fn(*xs)

            def value_and_vjp(xs, cot):
                def f(*d):
                    full = list(xs)
                    for i, x in zip(diff, d):
                        full[i] = x
                    return fn(*full)
                out, vjp = jax.vjp(f, *[xs[i] for i in diff])
                return out, vjp(cot)

            self._programs[key] = (fn, jax.jit(value), jax.jit(value_and_vjp))
        _, value, value_and_vjp = self._programs[key]
        if not diff:
            return self._jax_output(value(tensors), {}, args)
        shape = jax.eval_shape(value, tensors)
        if not isinstance(shape, jax.ShapeDtypeStruct):   # None, a list of arrays...: nothing to differentiate
            return self._jax_output(fn(*tensors), {args[i][0]: None for i in diff}, args)
        cot = jnp.asarray(np.broadcast_to(1.0 if cotangent is None else cotangent, shape.shape).copy()).astype(shape.dtype)
        out, gs = value_and_vjp(tensors, cot)
        return self._jax_output(out, {args[i][0]: np.asarray(g, dtype=np.float64) for i, g in zip(diff, gs)}, args)

    def _jax_output(self, out, grads, args) -> Output:
        if isinstance(out, self.jax.Array):
            return Output(np.asarray(out, dtype=np.float64), grads, True, "jax.Array", _dtype_name(out.dtype))
        return self.foreign(out, grads or {n: None for n, _, d in args if d})

    # ---- program size ------------------------------------------------------------------------------

    def count_ops(self, make, args: list[tuple[str, np.ndarray, bool]], context: dict, dtype: str) -> int | None:
        """How many operations one call of the loss records: autograd nodes (torch), jaxpr equations
        (JAX), graph operations of a traced tf.function (TensorFlow). A Python loop over the samples
        unrolls into operations, so this grows with N where vectorised code stays constant. None when
        the loss cannot be traced that way."""
        ctx = {k: self.tensor(v, dtype) if isinstance(v, np.ndarray) else v for k, v in context.items()}
        watch = Watch(raise_=False)
        try:
            with watch:
                return self._count_ops(make, args, ctx, dtype)
        finally:
            self._note(watch)

    def _count_ops(self, make, args, ctx, dtype) -> int | None:
        try:
            if self.framework == "torch":
                tensors = [self.tensor(x, dtype, grad=d and np.issubdtype(np.asarray(x).dtype, np.floating))
                           for _, x, d in args]
                out = make(**ctx)(*tensors)
                return _autograd_nodes(getattr(out, "grad_fn", None)) or None
            if self.framework == "jax":
                tensors = [self.tensor(x, dtype) for _, x, _ in args]
                fn = make(**ctx)
                return len(self.jax.make_jaxpr(lambda *xs: fn(*xs))(*tensors).jaxpr.eqns)
            tf = self.tf
            tensors = [self.tensor(x, dtype) for _, x, _ in args]
            fn = make(**ctx)
            specs = [tf.TensorSpec(t.shape, t.dtype) for t in tensors]
            graph = tf.function(lambda *xs: fn(*xs), autograph=True).get_concrete_function(*specs).graph
            return len(graph.get_operations())
        except Exception:  # noqa: BLE001 - untraceable (values leave the framework): the caller times it instead
            return None

    def versions(self) -> dict:
        if self.framework == "torch":
            return {"torch": self.torch.__version__}
        if self.framework == "tensorflow":
            return {"tensorflow": self.tf.__version__}
        return {"jax": self.jax.__version__}

    def cuda_available(self) -> bool:
        if self.framework == "torch":
            return bool(self.torch.cuda.is_available())
        if self.framework == "tensorflow":
            return bool(self.tf.config.list_physical_devices("GPU"))
        try:
            return bool(self.jax.devices("gpu"))
        except RuntimeError:
            return False


def _autograd_nodes(root) -> int:
    """Nodes of a torch autograd graph reachable from ``root``."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in getattr(node, "next_functions", ()))
    return len(seen)
