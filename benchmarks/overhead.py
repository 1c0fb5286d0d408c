"""Section 2: harness overhead. The time of ``runner.run_check`` (the value and the gradient
property, float64 and float32, K hypothesis examples each) of one catalog entry, divided by the
time of bare framework forward+backward calls on the very inputs hypothesis drew (recorded by
wrapping the spec's ``draw``), one call per drawn example.

Run in its own process per runtime (Keras picks its backend once per process):

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/overhead.py keras.losses.CategoricalCrossentropy \\
        --runtime keras-tensorflow --examples 50 [--threads 1] [--json out.json | --profile]

(``run.py`` starts it with :func:`run_subprocess`, which also sets the thread and cache variables.)

Bare calls: inputs rounded to the tested dtype and converted to framework tensors, and the loss
object built, before the clock starts; then forward, backward (the gradient of every
differentiable input, ones as cotangent) and, for JAX, ``block_until_ready``. torch and Keras run
eagerly; JAX runs ``jax.jit`` of value+VJP, one function per set of static parameters (float
parameters and arrays traced, as losscheck's engine does), so the first pass compiles the same
shapes the harness compiled. Reported for both the harness (run ``--runs`` times with one seed,
so every run draws the same inputs) and the bare loop: the first run or pass over the inputs (what
a run that sees each input once pays, compilations included) and the median of the later ones
(warm: programs compiled, allocators primed).
JAX's persistent compilation cache is disabled here (``LOSSCHECK_JAX_CACHE_DIR=""``), so the
harness and the bare loop both compile from scratch.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:   # run as a script: the repository root holds the benchmarks package
    sys.path.insert(0, ROOT)

from benchmarks import threads as thread_pools  # noqa: E402

PROPERTIES = ("value", "gradient")
DTYPES = ("float64", "float32")


def _recording(spec, sink: list, dtype: str, checked: list | None = None, prop: str = ""):
    """The spec with a ``draw`` that appends every drawn case (with the dtype it is checked in) to
    ``sink``, and (property, case, dtype) to ``checked``."""
    def draw(data):
        case = spec.draw(data)
        sink.append((case, dtype))
        if checked is not None:
            checked.append((prop, case, dtype))
        return case
    return dataclasses.replace(spec, draw=draw)


def warm_up(runtime: str, skip: str, examples: int = 3) -> str:
    """A short check of another spec on the same runtime: imports, hypothesis, first framework calls
    (the measured spec's own shapes and programs stay cold)."""
    from losscheck import catalog, runner

    other = next(s for s in catalog.all_specs() if runtime in s.runtimes and s.id != skip)
    for prop in PROPERTIES:
        runner.run_check(other, runner.Task(other.id, runtime, prop, "float64"), examples=examples, seed=1)
    return other.id


def run_harness(spec, runtime: str, examples: int, seed: int, checked: list | None = None
                ) -> tuple[float, list, list[dict]]:
    """(seconds, [(case, dtype)], rows) of the value and gradient checks in both dtypes; every
    (property, case, dtype) checked is appended to ``checked``."""
    from losscheck import runner

    cases: list = []
    rows, total = [], 0.0
    for dtype in (d for d in DTYPES if d in spec.dtypes):
        for prop in PROPERTIES:
            task = runner.Task(spec.id, runtime, prop, dtype)
            started = time.perf_counter()
            row = runner.run_check(_recording(spec, cases, dtype, checked, prop), task, examples=examples, seed=seed)
            total += time.perf_counter() - started
            rows.append({k: row[k] for k in ("property", "dtype", "status", "code", "examples", "duration_s")})
    return total, cases, rows


def run_harness_repeated(spec, runtime: str, examples: int, seed: int, runs: int) -> tuple[float, float, list, list]:
    """(first run, median of the later runs, cases, rows): the same seed draws the same examples,
    so later runs see what the first compiled (JAX) and allocated."""
    first, cases, rows = run_harness(spec, runtime, examples, seed)
    later = [run_harness(spec, runtime, examples, seed)[0] for _ in range(runs - 1)]
    return first, (statistics.median(later) if later else first), cases, rows


# ---- bare calls -------------------------------------------------------------------------------------

def _torch_call(engine, fn, positional, leaves, floatx=None) -> Callable[[], Any]:
    torch = engine.torch

    def call():
        out = fn(*positional)
        torch.autograd.grad(out, leaves, torch.ones_like(out), allow_unused=True)
    return call if floatx is None else _with_floatx(floatx, call)


def _tf_call(engine, fn, positional, leaves, floatx=None) -> Callable[[], Any]:
    tf = engine.tf

    def call():
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            out = fn(*positional)
        tape.gradient(out, leaves, output_gradients=tf.ones_like(out))
    return call if floatx is None else _with_floatx(floatx, call)


def _with_floatx(floatx: Callable[[], Any], call: Callable[[], Any]) -> Callable[[], Any]:
    """Keras reads its float type at call time: set it per call, as losscheck's runtime does."""
    def keras_call():
        floatx()
        call()
    return keras_call


class _JaxPrograms:
    """``jax.jit`` of value+VJP per (spec, static parameters, argument names)."""

    def __init__(self, engine, namespace):
        self.jax, self.namespace, self.programs = engine.jax, namespace, {}

    def call(self, spec, names, xs, others, params) -> Callable[[], Any]:
        jax = self.jax
        traced = {k: v for k, v in params.items() if type(v) is float or isinstance(v, jax.Array)}
        static = {k: v for k, v in params.items() if k not in traced}
        key = (spec.id, tuple(names), tuple(sorted(others)), tuple(sorted(traced)), repr(sorted(static.items())))
        program = self.programs.get(key)
        if program is None:
            program = self.programs[key] = jax.jit(self._value_and_vjp(spec, names, static))

        def call():
            jax.block_until_ready(program(xs, others, traced))
        return call

    def _value_and_vjp(self, spec, names, static):
        from losscheck.frameworks.base import call_in_order

        jax, ns = self.jax, self.namespace

        def run(xs, others, traced):
            fn = spec.call(ns, {**static, **traced})
            out, vjp = jax.vjp(lambda *a: call_in_order(fn, spec.args, {**dict(zip(names, a)), **others}), *xs)
            return out, vjp(jax.numpy.ones_like(out))
        return run


def prepare_bare_calls(spec, runtime_name: str, cases: list) -> list[Callable[[], Any]]:
    """One zero-argument forward+backward call per recorded case, everything else done up front."""
    from functools import partial

    from losscheck.frameworks import ENGINE_OF, get_runtime
    from losscheck.frameworks.base import kind_of
    from losscheck.properties.common import rounded

    runtime = get_runtime(runtime_name)
    engine, ns, kind_of_engine = runtime.engine, runtime.namespace, ENGINE_OF[runtime_name]
    kinds = {a.name: a.kind for a in spec.args}
    jax_programs = _JaxPrograms(engine, ns) if kind_of_engine == "jax" else None
    calls = []
    for case, dtype in cases:
        case = rounded(case, dtype, runtime_name)
        floatx = partial(ns.keras.config.set_floatx, dtype) if runtime.is_keras else None
        if floatx is not None:
            floatx()   # Keras losses read it when they are built too
        params = engine.convert_params(case.params, dtype)
        diff = [a.name for a in spec.args if a.wants_grad and a.name in case.inputs]
        tensors = {}
        for a in spec.args:
            if a.name not in case.inputs:
                continue
            x = np.asarray(case.inputs[a.name])
            kind = "float" if a.name in diff else kind_of(kinds, a.name, x)
            if kind_of_engine == "torch" and a.name in diff:
                tensors[a.name] = engine.tensor(x, kind, dtype, requires_grad=True)
            else:
                tensors[a.name] = engine.tensor(x, kind, dtype)
        if jax_programs is not None:
            others = {k: v for k, v in tensors.items() if k not in diff}
            call = jax_programs.call(spec, diff, [tensors[n] for n in diff], others, params)
            calls.append(call if floatx is None else _with_floatx(floatx, call))
            continue
        positional, fn = _in_order(spec, tensors), spec.call(ns, params)
        leaves = [tensors[n] for n in diff]
        make = _torch_call if kind_of_engine == "torch" else _tf_call
        calls.append(make(engine, fn, positional, leaves, floatx))
    return calls


def _in_order(spec, tensors: dict) -> list:
    """Positional arguments in the spec's order (the measured specs pass every argument)."""
    names = [a.name for a in spec.args]
    present = [n for n in names if n in tensors]
    if present != names[:len(present)]:
        raise ValueError(f"{spec.id}: an optional argument is absent before a present one; not supported here")
    return [tensors[n] for n in present]


def run_bare(calls: list[Callable[[], Any]], passes: int = 5) -> tuple[float, float]:
    """(first pass, median of the later passes) in seconds, each pass one call per case."""
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        for call in calls:
            call()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:])


# ---- where a drawn example's time goes ---------------------------------------------------------------

def time_draws(spec, runtime: str, examples: int, seed: int, draw=None) -> tuple[float, int]:
    """(seconds, examples) of hypothesis generating the examples of every measured check with the
    spec's draw (or ``draw(data)``) and no check: the runner's settings and seeds."""
    from hypothesis import given
    from hypothesis import seed as hseed

    from losscheck import runner, strategies

    draw = spec.draw if draw is None else draw
    drawn = 0
    total = 0.0
    tasks = [runner.Task(spec.id, runtime, p, d) for d in DTYPES if d in spec.dtypes for p in PROPERTIES]
    for task in tasks:
        @hseed(runner.check_seed(seed, task))
        @runner.search_settings(examples)
        @given(strategies.cases(draw))
        def draw_only(_case):
            nonlocal drawn
            drawn += 1

        started = time.perf_counter()
        draw_only()
        total += time.perf_counter() - started
    return total, drawn


def _one_integer(data):
    """Hypothesis's floor: an example that draws one integer."""
    data.draw(_integers())


@functools.cache
def _integers():
    from hypothesis import strategies as st

    return st.integers(0, 2 ** 32 - 1)


def time_checks(spec, runtime_name: str, checked: list, passes: int = 3) -> float:
    """Median seconds of one pass of the properties over the recorded (property, case, dtype), no
    hypothesis: oracle, framework call, error model, findings."""
    from losscheck.frameworks import get_runtime
    from losscheck.properties import PROPERTIES as CHECKS
    from losscheck.properties.common import Finding

    runtime = get_runtime(runtime_name)
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        for prop, case, dtype in checked:
            try:
                CHECKS[prop](spec, case, dtype, runtime)
            except Finding:
                pass
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _signature(case, dtype: str) -> str:
    """Shapes, dtype and non-array parameters: what a compiled program is specialised to."""
    params = {k: (np.shape(v) if isinstance(v, np.ndarray) else v) for k, v in case.params.items()}
    return repr((dtype, sorted(case.shape.items()), sorted(params.items(), key=lambda kv: kv[0])))


def measure(spec_id: str, runtime: str, examples: int, seed: int = 0, runs: int = 3, threads: int = 1) -> dict:
    """Harness ``runs`` times and bare calls ``runs + 2`` passes; first and warm figures of both."""
    from losscheck import catalog
    from losscheck.frameworks import ENGINE_OF

    thread_pools.apply(threads, tensorflow=ENGINE_OF[runtime] == "tensorflow")
    spec = catalog.get(spec_id)
    started = time.perf_counter()
    warmed_with = warm_up(runtime, spec_id)
    warm_s = time.perf_counter() - started
    harness_first, harness_warm, cases, rows = run_harness_repeated(spec, runtime, examples, seed, runs)
    calls = prepare_bare_calls(spec, runtime, cases)
    bare_first, bare_warm = run_bare(calls, passes=runs + 2)
    n = max(1, len(cases))
    checked: list = []
    run_harness(spec, runtime, examples, seed, checked)
    draws_s, drawn = time_draws(spec, runtime, examples, seed)
    floor_s, floor_n = time_draws(spec, runtime, examples, seed, draw=_one_integer)
    checks_s = time_checks(spec, runtime, checked)
    return {"spec": spec_id, "runtime": runtime, "examples_per_check": examples, "seed": seed, "threads": threads,
            "thread_settings": thread_pools.in_process(),
            "checks": rows, "cases": n, "signatures": len({_signature(case, dtype) for case, dtype in cases}),
            "harness_first_s": harness_first, "harness_warm_s": harness_warm,
            "bare_first_pass_s": bare_first, "bare_warm_pass_s": bare_warm,
            "ratio_first": harness_first / bare_first, "ratio_warm": harness_warm / bare_warm,
            "harness_warm_ms_per_case": 1e3 * harness_warm / n, "bare_warm_ms_per_case": 1e3 * bare_warm / n,
            # where a drawn example's warm time goes: generating it, checking it, the rest (runner)
            "draw_ms_per_case": 1e3 * draws_s / max(1, drawn), "draws_timed": drawn,
            "one_integer_draw_ms_per_case": 1e3 * floor_s / max(1, floor_n),
            "check_ms_per_case": 1e3 * checks_s / max(1, len(checked)), "checks_timed": len(checked),
            "warm_up": {"spec": warmed_with, "seconds": warm_s}}


def profile(spec_id: str, runtime: str, examples: int, seed: int = 0, top: int = 25, threads: int = 1) -> str:
    """cProfile of one harness run after the warm-up (:func:`benchmarks.profiling.profile`)."""
    from losscheck import catalog
    from losscheck.frameworks import ENGINE_OF

    from benchmarks.profiling import profile as run_profiled

    thread_pools.apply(threads, tensorflow=ENGINE_OF[runtime] == "tensorflow")
    spec = catalog.get(spec_id)
    warm_up(runtime, spec_id)
    run_harness(spec, runtime, examples, seed)   # the measured runs' first run (compilations) is not profiled
    return run_profiled(lambda: run_harness(spec, runtime, examples, seed),
                        f"runner.run_check of {spec_id} on {runtime}: value+gradient, float64+float32, "
                        f"{examples} examples each (second run)", top)


def subprocess_env(runtime: str, threads: int) -> dict:
    """The environment a worker of ``runtime`` gets (its Keras backend), JAX's disk cache off."""
    from losscheck.frameworks import group_of

    return {**thread_pools.child_env(threads), "KERAS_BACKEND": group_of(runtime), "TF_CPP_MIN_LOG_LEVEL": "3",
            "LOSSCHECK_JAX_CACHE_DIR": ""}


def run_subprocess(spec_id: str, runtime: str, examples: int, *, seed: int = 0, runs: int = 3, threads: int = 1,
                   timeout_s: float = 1800) -> dict:
    """:func:`measure` in a fresh process with the runtime's Keras backend."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "overhead.json")
        command = [sys.executable, os.path.abspath(__file__), spec_id, "--runtime", runtime, "--examples",
                   str(examples), "--seed", str(seed), "--runs", str(runs), "--threads", str(threads), "--json", out]
        done = subprocess.run(command, env=subprocess_env(runtime, threads), capture_output=True, text=True,
                              timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def profile_subprocess(spec_id: str, runtime: str, examples: int, *, seed: int = 0, threads: int = 1,
                       timeout_s: float = 1800) -> str:
    """:func:`profile` in a fresh process with the runtime's Keras backend: its text."""
    import subprocess

    command = [sys.executable, os.path.abspath(__file__), spec_id, "--runtime", runtime, "--examples",
               str(examples), "--seed", str(seed), "--threads", str(threads), "--profile"]
    done = subprocess.run(command, env=subprocess_env(runtime, threads), capture_output=True, text=True,
                          timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="harness runs (bare loop: this + 2 passes)")
    parser.add_argument("--threads", type=int, default=1, help="framework threads (0: their defaults)")
    parser.add_argument("--json", help="write the result here (default: print it)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the harness instead")
    args = parser.parse_args(argv)
    from losscheck.frameworks import KERAS_BACKEND_OF

    backend = KERAS_BACKEND_OF.get(args.runtime)
    if backend and os.environ.get("KERAS_BACKEND") != backend:
        parser.error(f"{args.runtime} needs KERAS_BACKEND={backend} in the environment")
    if args.profile:
        print(profile(args.spec, args.runtime, args.examples, args.seed, threads=args.threads))
        return 0
    result = measure(args.spec, args.runtime, args.examples, args.seed, args.runs, args.threads)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
