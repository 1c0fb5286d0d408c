"""Section 1: gradient verification of one example at a fixed shape, side by side in one process.

Checkers, on the same inputs and the same loss:

* losscheck: ``losscheck.properties.gradient.check`` (framework gradient vs the oracle's analytic
  gradient) in float64 and in float32;
* ``torch.autograd.gradcheck`` with ``fast_mode=False`` (the full Jacobian by central differences)
  and ``fast_mode=True`` (random projections), in float64 as gradcheck requires;
* ``jax.test_util.check_grads(f, args, order=1, modes=["rev"])`` on the optax/jnp twin (jitted);
* ``tf.test.compute_gradient`` on the TensorFlow twin (eager), judged as TensorFlow's
  own tests do: ``max_error(theoretical, numerical) < TF_MAX_ERROR``.

Each checker also runs on the loss with a planted one-element gradient error (:mod:`planted`);
``detected`` says whether it raised (losscheck: a G-coded Finding). The full-Jacobian checkers
(gradcheck slow mode, compute_gradient) cost one or two loss evaluations per input element, so they
are run once; the others are timed as the median of repeated calls after a first one, the calls of
the different checkers interleaved.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from benchmarks.gradient_cases import GradientCase
from benchmarks.planted import jax_planted, largest_element, planted_spec, tf_planted, torch_planted
from benchmarks.timing import Timing, timed

#: compute_gradient returns both Jacobians and leaves the verdict to the caller; TensorFlow's own
#: tests assert ``max_error(...) < tol`` with a tolerance picked per test (relu_op_test.py: 1e-6 in
#: float32); this float64 benchmark uses 1e-4, which every correct loss here passes.
TF_MAX_ERROR = 1e-4
FULL_JACOBIAN = ("gradcheck(fast_mode=False)", "tf.test.compute_gradient")


@dataclass
class CheckerResult:
    checker: str
    timing: Timing | None = None
    clean_passed: bool | None = None        # did the check pass on the correct loss (no false alarm)?
    clean_message: str = ""
    detected: bool | None = None            # did it flag the planted one-element error?
    detected_message: str = ""
    planted_s: float | None = None          # time of the run on the planted loss

    def as_dict(self) -> dict:
        return {"checker": self.checker, "timing": self.timing.as_dict() if self.timing else None,
                "clean_passed": self.clean_passed, "clean_message": self.clean_message,
                "detected": self.detected, "detected_message": self.detected_message, "planted_s": self.planted_s}


@dataclass
class CaseResult:
    case: GradientCase
    planted_index: int
    checkers: list[CheckerResult] = field(default_factory=list)
    #: gradcheck(fast_mode=True) on the bare torch loss, for cases whose checkers get a composition
    raw_gradcheck: str = ""

    def as_dict(self) -> dict:
        return {"case": self.case.name, "spec": self.case.spec.id, "shape": self.case.shape,
                "elements": self.case.elements, "planted_index": self.planted_index,
                "checkers": [c.as_dict() for c in self.checkers], "raw_gradcheck": self.raw_gradcheck}


def _outcome(run: Callable[[], object], is_detection: Callable[[BaseException], bool]) -> tuple[str, str]:
    """("passed" | "flagged" | "error", message) of one call of a checker."""
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - checkers signal a finding by raising
        text = str(exc).strip()
        message = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
        return ("flagged" if is_detection(exc) else "error"), message
    return "passed", ""


def first_and_planted(name: str, clean: Callable, planted: Callable, is_detection) -> CheckerResult:
    """Time a first call of ``clean`` (which should pass), then run ``planted`` once (which should be
    flagged); the repeated calls are added by :func:`bench_case`."""
    result = CheckerResult(name)
    first, (status, message) = timed(lambda: _outcome(clean, is_detection))
    result.clean_passed, result.clean_message = status == "passed", message
    if status == "error":
        result.clean_message = f"could not run: {message}"
        return result
    result.timing = Timing(first)
    result.planted_s, (status, message) = timed(lambda: _outcome(planted, is_detection))
    result.detected = {"flagged": True, "passed": False}.get(status)
    result.detected_message = message if status != "error" else f"could not run: {message}"
    return result


# ---- the checkers ---------------------------------------------------------------------------------

def losscheck_checker(case: GradientCase, index: int, dtype: str) -> tuple[Callable, Callable, Callable]:
    from losscheck.frameworks import get_runtime
    from losscheck.properties import gradient
    from losscheck.properties.common import Finding

    runtime = get_runtime("torch")
    planted = planted_spec(case.spec, index)

    def clean():
        with np.errstate(all="ignore"):
            gradient.check(case.spec, case.case, dtype, runtime)

    def bad():
        with np.errstate(all="ignore"):
            gradient.check(planted, case.case, dtype, runtime)

    return clean, bad, lambda exc: isinstance(exc, Finding) and exc.code.startswith("G")


def gradcheck_checker(case: GradientCase, index: int, fast_mode: bool):
    import torch
    from torch.autograd.gradcheck import GradcheckError

    loss = case.torch_loss()
    bad_loss = torch_planted(loss, index)
    xs = tuple(torch.tensor(a, requires_grad=True) for a in case.diff_arrays())

    def clean():
        torch.autograd.gradcheck(loss, xs, fast_mode=fast_mode)

    def bad():
        torch.autograd.gradcheck(bad_loss, xs, fast_mode=fast_mode)

    return clean, bad, lambda exc: isinstance(exc, GradcheckError)


def check_grads_checker(case: GradientCase, index: int):
    import jax
    import optax
    from jax.test_util import check_grads

    loss = case.jax_loss(optax)
    fn, bad_fn = jax.jit(loss), jax.jit(jax_planted(loss, index))
    xs = tuple(jax.device_put(a) for a in case.diff_arrays())

    def clean():
        check_grads(fn, xs, order=1, modes=["rev"])

    def bad():
        check_grads(bad_fn, xs, order=1, modes=["rev"])

    return clean, bad, lambda exc: isinstance(exc, AssertionError)


class TfGradientMismatch(AssertionError):
    pass


def compute_gradient_checker(case: GradientCase, index: int):
    import tensorflow as tf

    # eager functions: inside a tf.function, tf.nn.ctc_loss also builds its cuDNN variant, which is
    # float32-only, and float64 fails
    fn = case.tf_loss(tf)
    bad_fn = tf_planted(fn, index)
    xs = [tf.constant(a) for a in case.diff_arrays()]

    def check(f):
        theoretical, numerical = tf.test.compute_gradient(f, xs)
        # gradient_checker_v2.max_error: the largest elementwise gap over the arguments' Jacobians
        err = max(float(np.max(np.abs(t - n))) for t, n in zip(theoretical, numerical))
        if not err < TF_MAX_ERROR:
            raise TfGradientMismatch(f"max_error {err:.3g} >= {TF_MAX_ERROR}")

    def clean():
        check(fn)

    def bad():
        check(bad_fn)

    return clean, bad, lambda exc: isinstance(exc, TfGradientMismatch)


CHECKERS = ("losscheck float64", "losscheck float32", "gradcheck(fast_mode=False)", "gradcheck(fast_mode=True)",
            "jax check_grads", "tf.test.compute_gradient")


def _build(name: str, case: GradientCase, index: int):
    if name.startswith("losscheck"):
        return losscheck_checker(case, index, name.split()[-1])
    if name.startswith("gradcheck"):
        return gradcheck_checker(case, index, fast_mode="True" in name)
    if name == "jax check_grads":
        return check_grads_checker(case, index)
    return compute_gradient_checker(case, index)


def prepare_frameworks(checkers=CHECKERS) -> None:
    """Import the frameworks ``checkers`` need (torch always: the planted index comes from it; JAX
    with float64 enabled) before any timing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch  # noqa: F401

    if "jax check_grads" in checkers:
        import jax

        jax.config.update("jax_enable_x64", True)
    if "tf.test.compute_gradient" in checkers:
        import tensorflow  # noqa: F401


def planted_index(case: GradientCase) -> int:
    import torch

    xs = [torch.tensor(a, requires_grad=True) for a in case.diff_arrays()]
    grad = torch.autograd.grad(case.torch_loss()(*xs), xs[0])[0]
    return largest_element(grad.numpy())


def bench_case(case: GradientCase, *, checkers=CHECKERS, repeats: int = 7, budget_s: float = 5.0,
               log=print) -> CaseResult:
    """Every checker on ``case``: a first call and a planted-error run each, then up to ``repeats``
    rounds of one call per fast checker (interleaved, so load changes hit them alike; the order
    rotated each round) while the rounds have taken less than ``budget_s``. The full-Jacobian
    checkers run once."""
    index = planted_index(case)
    out = CaseResult(case, index)
    if case.torch_input is not None:
        out.raw_gradcheck = raw_gradcheck(case)
        log(f"  {case.name:32s} gradcheck(fast_mode=True) of the bare loss: {out.raw_gradcheck}")
    built = {name: _build(name, case, index) for name in checkers}
    for name, (clean, bad, is_detection) in built.items():
        out.checkers.append(first_and_planted(name, clean, bad, is_detection))
    repeated = [(r.timing, built[r.checker][0]) for r in out.checkers
                if r.checker not in FULL_JACOBIAN and r.clean_passed]
    spent = 0.0
    for round_ in range(repeats if repeated else 0):
        if spent >= budget_s:
            break
        # each round starts one checker later, so that no checker always follows the same one: the
        # caches and the allocator's state carry over from one call to the next
        shift = round_ % len(repeated)
        for timing, clean in repeated[shift:] + repeated[:shift]:
            seconds = timed(clean)[0]
            timing.runs_s.append(seconds)
            spent += seconds
    for r in out.checkers:
        planted = {True: "detected", False: "missed"}.get(r.detected, "n/a")
        log(f"  {case.name:32s} {r.checker:28s} {r.timing.median_s if r.timing else float('nan'):10.4f} s"
            f"  clean {'pass' if r.clean_passed else 'FAIL'}  planted {planted}  {r.clean_message[:80]}")
    return out


def raw_gradcheck(case: GradientCase) -> str:
    """What gradcheck(fast_mode=True) says about the bare torch loss (no ``torch_input``)."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    xs = tuple(torch.tensor(a, requires_grad=True) for a in case.diff_arrays())
    try:
        torch.autograd.gradcheck(case.torch_loss(raw=True), xs, fast_mode=True)
    except GradcheckError as exc:
        return f"fails: {str(exc).strip().splitlines()[0][:160]}"
    return "passes"


def profile_losscheck(case: GradientCase, dtype: str = "float64", top: int = 15, runs: int = 20) -> str:
    """cProfile of ``runs`` losscheck gradient checks of ``case`` (:func:`benchmarks.profiling.profile`)."""
    from benchmarks.profiling import profile

    clean, _, _ = losscheck_checker(case, 0, dtype)
    clean()

    def checks():
        for _ in range(runs):
            clean()
    return profile(checks, f"{runs} losscheck {dtype} gradient checks of {case.name}", top)
