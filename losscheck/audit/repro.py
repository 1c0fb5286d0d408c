"""Standalone reproducer scripts for audit findings: they import the audited file, build the
failing inputs literally and call the loss, needing only its framework (not losscheck)."""
from __future__ import annotations

import os

import numpy as np

TENSOR = {
    "torch": ("import torch", "torch.tensor({v}, dtype=torch.{d}{grad})", "torch.tensor({v})"),
    "tensorflow": ("import tensorflow as tf", "tf.constant({v}, dtype=tf.{d})", "tf.constant({v})"),
    "jax": ("import jax\njax.config.update('jax_enable_x64', True)\nimport jax.numpy as jnp",
            "jnp.asarray({v}, dtype=jnp.{d})", "jnp.asarray({v})"),
}


def _literal(x: np.ndarray) -> str:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        return repr(x.tolist())
    return repr(np.asarray(x, np.float64).tolist())


def script(subject, probe, arrays: dict[str, np.ndarray], check: dict) -> str:
    """A script that calls the loss on ``arrays`` and prints its value and gradient."""
    fw = probe.evaluator.framework
    imports, floats, ints = TENSOR[fw]
    dtype = probe.dtype

    def tensor(name, grad=False):
        x = np.asarray(arrays[name])
        if np.issubdtype(x.dtype, np.integer):
            return ints.format(v=_literal(x))
        return floats.format(v=_literal(x), d=dtype, grad=", requires_grad=True" if grad else "")

    path = os.path.abspath(subject.candidate.get("file") or "")
    lines = [f'"""Reproduces {check["code"]}: {check["message"].splitlines()[0][:200]}',
             f'(losscheck audit; needs only {fw} and the audited file)."""',
             "import importlib.util", "import sys", "", imports, "",
             f"sys.path.insert(0, {os.path.dirname(path)!r})",
             f"spec = importlib.util.spec_from_file_location('audited', {path!r})",
             "m = importlib.util.module_from_spec(spec)", "spec.loader.exec_module(m)", ""]
    ctor = {t.name: tensor(t.name) for t in probe.plan.ctor}
    for k, v in probe.plan.scalars.items():
        ctor[k] = repr(v)
    obj = subject.locate or f"m.{subject.candidate['name']}"
    if ctor:
        lines.append(f"loss_fn = {obj}({', '.join(f'{k}={v}' for k, v in ctor.items())})")
    else:
        lines.append(f"loss_fn = {obj}")
    diff = [t.name for t in probe.plan.call if t.differentiable]
    for t in probe.plan.call:
        lines.append(f"{t.name} = {tensor(t.name, grad=fw == 'torch' and t.name in diff)}")
    call = _call(subject, probe)
    if fw == "torch":
        lines += [f"loss = {call}", "print('loss:', loss)", "loss.sum().backward()"]
        lines += [f"print('grad {n}:', {n}.grad)" for n in diff]
    elif fw == "tensorflow":
        lines += ["with tf.GradientTape() as tape:"] + [f"    tape.watch({n})" for n in diff]
        lines += [f"    loss = {call}", "print('loss:', loss)"]
        if diff:
            lines += [f"print('grad:', tape.gradient(loss, [{', '.join(diff)}]))"]
    else:
        lines += [f"loss = {call}", "print('loss:', loss)"]
        if diff:
            lines += [f"grads = jax.grad(lambda {', '.join(diff)}: jnp.sum({call}), "
                      f"argnums={tuple(range(len(diff)))})({', '.join(diff)})", "print('grad:', grads)"]
    if check["code"] == "X010":
        lines += _compiled_call(probe, fw, call)
    return "\n".join(lines) + "\n"


def _call(subject, probe) -> str:
    """``loss_fn(pred, target, mask=mask)``: keyword-only inputs (and ``**kwargs``) by keyword."""
    keywords = set(getattr(subject, "keywords", None) or ())
    return f"loss_fn({', '.join(f'{t.name}={t.name}' if t.name in keywords else t.name for t in probe.plan.call)})"


def _compiled_call(probe, fw: str, call: str) -> list[str]:
    """The call as a compiled training step makes it (audit's X010 check), after the eager one."""
    from ..pytest_messages import compiled_expression

    names = [t.name for t in probe.plan.call]
    if fw == "jax":
        return [f"print('under jax.jit:', {compiled_expression(call, names, 'jax.jit')})"]
    batched = [t.name for t in probe.plan.call if t.shape[:1] == ("N",)]
    return ["# as Keras' fit() calls it: a tf.function without autograph, the batch dimension unknown",
            f"compiled = {compiled_expression(call, names, 'tf.function', batched)}", "print('compiled:', compiled)"]
