"""Around each call of a loss under test: did it write into its inputs (X008), did it change the
process's framework settings (X009)?

A loss that clamps its target in place, or calls ``torch.set_default_dtype(torch.float64)``, can
return the right value and still break a training run (the data loader's tensors change; every later
tensor is float64). Both are findings, whatever the value. The settings are restored after every call,
so one loss cannot change what the losses checked after it compute.

Only frameworks already imported are looked at (this module imports none). Inputs are snapshotted
when they are mutable: torch tensors and NumPy arrays. JAX arrays and TensorFlow constants cannot be
written in place, so they are not copied.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np


class Hostile(Exception):
    """The loss did something to its caller's world; ``code`` is its diagnosis code."""
    code = ""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(f"{self.code}: {message}")
        self.message = message
        self.details = details or {}


class InputsMutated(Hostile):
    code = "X008"


class StateChanged(Hostile):
    code = "X009"


# ---- process-wide settings ------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One process-wide framework setting: how to read it, how to put it back, how to show it."""
    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None]
    show: Callable[[Any], str] = str


def _torch_settings(torch) -> list[Setting]:
    return [Setting("torch default dtype", torch.get_default_dtype, torch.set_default_dtype,
                    lambda d: str(d).replace("torch.", "")),
            Setting("torch grad mode", torch.is_grad_enabled, torch.set_grad_enabled,
                    lambda on: "enabled" if on else "disabled")]


def _keras_settings(keras) -> list[Setting]:
    cfg = keras.config
    return [Setting("Keras floatx", cfg.floatx, cfg.set_floatx),
            Setting("Keras epsilon", cfg.epsilon, cfg.set_epsilon, repr)]


def _jax_settings(jax) -> list[Setting]:
    cfg = jax.config
    return [Setting(name, lambda name=name: bool(getattr(cfg, name)),
                    lambda v, name=name: cfg.update(name, v)) for name in ("jax_enable_x64", "jax_disable_jit")]


def _tf_settings(tf) -> list[Setting]:
    cfg = getattr(tf, "config", None)
    if cfg is None or not hasattr(cfg, "functions_run_eagerly"):   # a module still importing
        return []
    return [Setting("tf.config.run_functions_eagerly", cfg.functions_run_eagerly, cfg.run_functions_eagerly)]


_SETTINGS = {"torch": _torch_settings, "keras": _keras_settings, "jax": _jax_settings, "tensorflow": _tf_settings}
_CACHE: dict[tuple, list[Setting]] = {}


def settings() -> list[Setting]:
    """The settings of the frameworks imported in this process (cached per set of frameworks)."""
    loaded = tuple(sys.modules.get(m) for m in _SETTINGS)
    key = tuple(id(m) for m in loaded)
    if key not in _CACHE:
        found = []
        for (name, of), module in zip(_SETTINGS.items(), loaded):
            if module is not None:
                try:
                    found += of(module)
                except AttributeError:   # a partially imported or unusual version: not watched
                    pass
        _CACHE[key] = found
    return _CACHE[key]


def snapshot_state() -> list[tuple[Setting, Any]]:
    return [(s, s.get()) for s in settings()]


def restore_state(snapshot: list[tuple[Setting, Any]]) -> list[str]:
    """Put back every setting that differs from ``snapshot``; one line per change
    ("torch default dtype float32 -> float64")."""
    changes = []
    for s, before in snapshot:
        after = s.get()
        if after != before:
            try:
                s.set(before)
            except Exception as exc:  # noqa: BLE001 - still a finding; say that it stays changed
                changes.append(f"{s.name} {s.show(before)} -> {s.show(after)} (could not be put back: "
                               f"{type(exc).__name__})")
                continue
            changes.append(f"{s.name} {s.show(before)} -> {s.show(after)}")
    return changes


# ---- inputs -----------------------------------------------------------------------------------------

def _copy(x) -> tuple[int | None, Any] | None:
    """(version counter, private copy) of a mutable input: a torch tensor (whose ``_version`` every
    in-place operation increments) or a NumPy array (version None); None for anything else."""
    if isinstance(x, np.ndarray):
        return None, x.copy()
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x._version, x.detach().clone()
    return None


_NUMPY_FROM = 8192
_NUMPY_SHARED = frozenset(f"torch.{t}" for t in ("float64", "float32", "float16", "int64", "int32", "int16",
                                                 "int8", "uint8", "bool"))


def _same_values(torch, old, new) -> bool:
    """``torch.equal(old, new)``; through NumPy for large dense CPU tensors of a dtype NumPy shares,
    which is faster from about 8,000 elements on (half the time at 16,384, a third at 25,600; slower
    below). Both give False where a NaN is."""
    if (old.numel() >= _NUMPY_FROM and old.device.type == new.device.type == "cpu"
            and old.layout == new.layout == torch.strided and str(old.dtype) in _NUMPY_SHARED):
        return bool(np.array_equal(old.numpy(), new.numpy()))
    return bool(torch.equal(old, new))


def _differ(old, new) -> tuple[int, str]:
    """(how many elements differ, what else changed) between a snapshot and the input now."""
    if not isinstance(old, np.ndarray):   # a torch tensor
        import torch

        new = new.detach()
        if old.shape != new.shape or old.dtype != new.dtype:
            return 0, f"{tuple(old.shape)} {old.dtype} -> {tuple(new.shape)} {new.dtype}".replace("torch.", "")
        if _same_values(torch, old, new):
            return 0, ""
        same = (old == new) | (old.isnan() & new.isnan()) if old.is_floating_point() else old == new
        return int((~same).sum()), ""
    new = np.asarray(new)
    if old.shape != new.shape or old.dtype != new.dtype:
        return 0, f"{old.shape} {old.dtype} -> {new.shape} {new.dtype}"
    same = old == new
    if np.issubdtype(old.dtype, np.inexact):
        same |= np.isnan(old) & np.isnan(new)
    return int(np.size(same) - np.count_nonzero(same)), ""


def snapshot_inputs(tensors: Mapping[str, Any], originals: Mapping[str, Any] | None = None
                    ) -> dict[str, tuple[int | None, Any]]:
    """(version counter, values before the call) of each mutable input. ``originals``: {name: a
    tensor with the input's values that the loss cannot reach} (the leaf an engine cloned the input
    from), used instead of a copy."""
    originals = originals or {}
    out = {}
    for k, v in tensors.items():
        if k in originals:
            out[k] = (v._version, originals[k].detach())
        elif (c := _copy(v)) is not None:
            out[k] = c
    return out


def mutations(snapshot: Mapping[str, tuple[int | None, Any]], tensors: Mapping[str, Any]) -> list[str]:
    """One line per input the call wrote into ("input 'target' changed in place: 3 of 8 elements
    differ after the call"). A torch tensor whose version counter moved was written even when its
    values came out the same (``clamp_`` on values already in range): the same bug, on other data. The
    values are compared whatever the counter says: a write through ``.data`` does not move it."""
    out = []
    for name, (version, old) in snapshot.items():
        now = tensors[name]
        k, other = _differ(old, now)
        if other:
            out.append(f"input {name!r} changed in place: {other}")
        elif k:
            out.append(f"input {name!r} changed in place: {k} of {int(np.prod(tuple(old.shape)))} elements differ "
                       "after the call")
        elif version is not None and now._version != version:
            out.append(f"input {name!r} written in place (an in-place operation ran on it; its values happen to be "
                       "unchanged on these inputs)")
    return out


# ---- the guards ----------------------------------------------------------------------------------------

class Watch:
    """``with Watch(inputs) as w: loss(...)``: snapshots before, compares after, restores the settings.

    ``inputs``: {name: tensor passed to the loss} to watch for in-place writes (None: settings only);
    ``originals``: see :func:`snapshot_inputs`; ``settings``: watch the framework settings. What was
    found is ``w.found`` (X008 before X009); with ``raise_=True`` the first is raised (from the loss's
    own exception when it raised one: a changed setting is the likelier cause; never in place of a
    KeyboardInterrupt or SystemExit)."""

    def __init__(self, inputs: Mapping[str, Any] | None = None, *, settings: bool = True, raise_: bool = True,
                 originals: Mapping[str, Any] | None = None):
        self.inputs, self.watch_settings, self.raise_ = inputs, settings, raise_
        self.originals = originals
        self.found: list[Hostile] = []

    def __enter__(self) -> "Watch":
        self._state = snapshot_state() if self.watch_settings else []
        self._inputs = snapshot_inputs(self.inputs, self.originals) if self.inputs else {}
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        changed = mutations(self._inputs, self.inputs) if self._inputs else []
        restored = restore_state(self._state)
        if changed:
            self.found.append(InputsMutated("; ".join(changed), {"inputs": changed}))
        if restored:
            self.found.append(StateChanged("; ".join(restored) + " after the call; restored",
                                           {"settings": restored}))
        replaceable = exc is None or (isinstance(exc, Exception) and not isinstance(exc, Hostile))
        if self.found and self.raise_ and replaceable:
            raise self.found[0] from exc
        return False
