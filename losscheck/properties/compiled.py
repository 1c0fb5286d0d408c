"""Compiled as training compiles it: the loss's value and gradient in the program a training step
builds (``jax.jit`` for JAX and Keras on JAX; a ``tf.function`` as Keras' ``fit()`` builds it on
TensorFlow: no autograph for the loss, the batch dimension of unknown size) equal the eager ones.

Findings: X010, the loss raises there (a Python ``if`` on a tensor, ``.numpy()``, ``float()``,
``x.shape[0]`` used as a number) or computes another value or gradient (Python state read once at
trace time). torch and Keras on torch train with eager calls: skipped.
"""
from __future__ import annotations

import numpy as np

from ..frameworks.guard import Hostile
from ..tolerance import GRAD_BOUND, VALUE_BOUND, grad_error, kink_rtol, kinks_where_finite, value_error
from .common import Finding, Measurement, evaluate, grad_shapes, n_terms, rounded

NAME = "compiled"
#: examples per check for users' losses: what fails to compile fails on any input, and each
#: example compiles a program of its own
EXAMPLES = 5
#: (exception type name, text in its message or "", what to do instead)
FIXES = (
    ("TracerBoolConversionError", "", "a Python if/while/and/or on a traced value: use jnp.where or jax.lax.cond"),
    ("ConcretizationTypeError", "", "a traced value where Python needs a number (float(), a shape, a slice bound): "
                                    "keep it in jax.numpy"),
    ("TracerArrayConversionError", "", "NumPy on a traced value: use jax.numpy"),
    ("TracerIntegerConversionError", "", "int() or an index from a traced value: use jnp.take or jax.lax.dynamic_slice"),
    ("AttributeError", "numpy", ".numpy() on a graph tensor: compute with TensorFlow ops"),
    ("NotImplementedError", "numpy", "NumPy on a graph tensor: compute with TensorFlow ops"),
    ("OperatorNotAllowedInGraphError", "", "a Python if/while/for on a tensor: use tf.where or tf.cond (fit() does "
                                           "not convert the loss's Python control flow)"),
    ("", "None", "the batch dimension is unknown (None) inside fit(): use tf.shape(x)[0], not x.shape[0]"),
)
#: where each compiler runs the loss in training, for the messages
TRAINED_BY = {"jax.jit": "a jit-compiled training step (and Keras' fit() on JAX)",
              "tf.function": "Keras' fit() (no autograph for the loss, a batch dimension of unknown size)"}


def fix_for(exc: BaseException) -> str:
    """``; what to do instead`` for an error a loss raises when compiled, or ""."""
    name, text = type(exc).__name__, str(exc)
    for kind, words, fix in FIXES:
        if (not kind or kind == name) and (not words or words in text):
            return f"; {fix}"
    return ""


def check(spec, case, dtype, runtime) -> Measurement:
    how = runtime.compiler
    if how is None:
        return Measurement(0.0, 0.0, extra={"skipped": f"{runtime.name} trains with eager calls (torch.compile runs "
                                                       "what it cannot trace eagerly): nothing to compare"})
    case = rounded(case, dtype, runtime.name)
    eager = evaluate(spec, runtime, case, dtype, want_grad=True, mode="eager")
    if not eager.is_tensor:
        return Measurement(0.0, 0.0, extra={"skipped": f"the loss returns {eager.output_type}, not a tensor"})
    axes = {a.name: spec.batch_axis(a.name) for a in spec.args if np.ndim(case.inputs.get(a.name, 0)) > 0}
    try:
        got = runtime.evaluate(spec.call, spec.args, case, dtype, mode="compiled", batch_axes=axes)
    except Hostile as exc:
        raise Finding(exc.code, exc.message, case=case, details=exc.details) from exc
    except Exception as exc:  # the loss raised where training compiles it: that is the finding
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise Finding("X010", f"raises under {how}, as {TRAINED_BY[how]} runs it: {type(exc).__name__}: {text}"
                      f"{fix_for(exc)}", case=case, details={"compiler": how, "exception": type(exc).__name__}) from exc
    ref = spec.oracle(case)
    ones = np.ones(np.shape(ref.value))
    bound = VALUE_BOUND[dtype](n_terms(case))
    err = value_error(got.value, eager.value, ref.scale, dtype) if got.value.shape == eager.value.shape else np.inf
    worst = float(np.nanmax(err)) if np.any(~np.isnan(err)) else 0.0
    if worst > bound:
        raise Finding("X010", f"computes {got.value} under {how} and {eager.value} eagerly on the same inputs "
                      f"({worst:.3g} eps apart, bound {bound:.3g}): it depends on how it is run (Python that runs "
                      "once, when the loss is traced, is frozen into the program; Keras on TensorFlow takes the "
                      "logits behind a softmax op only in graph mode)", error=worst, bound=bound, case=case,
                      details={"compiler": how})
    mags = ref.grad_magnitude(ones)
    gbound = GRAD_BOUND[dtype](n_terms(case))
    # at a kink every one-sided derivative is right, and a compiled program may round its way to the
    # other side (as devices may: properties/device.py). Measured on keras.losses.circle in float32 on
    # TensorFlow: a sample's own unit-norm embedding relabelled as a negative (ref_labels) has d =
    # max(1 - x.x, 0) at its kink, and tf.function's x.x rounds to >= 1 where the eager one does not
    declared = spec.precision_for(dtype, runtime.name)
    shapes = grad_shapes(spec, case)
    kinks = ref.kinks(kink_rtol(declared.effective if declared is not None else dtype), shapes)
    for arg in spec.grad_args:
        g, h = eager.grads.get(arg.name), got.grads.get(arg.name)
        if g is None or h is None or arg.oracle_name not in mags:
            continue
        skip = kinks_where_finite(kinks.get(arg.oracle_name), g, h)
        e = grad_error(h, g, mags[arg.oracle_name], dtype, skip) if h.shape == g.shape else np.inf
        if e > gbound:
            raise Finding("X010", f"the gradient for {arg.name!r} under {how} differs from the eager one on the same "
                          f"inputs ({e:.3g} eps, bound {gbound:.3g})", error=e, bound=gbound, case=case,
                          details={"compiler": how, "input": arg.name})
        worst = max(worst, e)
    return Measurement(worst, max(bound, gbound))
