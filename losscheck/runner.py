"""Runs specs x properties x dtypes x runtimes and returns tidy result rows.

One check is one hypothesis search (:func:`run_check`). Checks run in process pools, one per
Keras backend (:data:`losscheck.frameworks.PROCESS_GROUPS`), sharing ``jobs`` workers by
estimated cost (:func:`pool_sizes`).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np

STATUSES = ("pass", "warn", "fail", "deviation", "xfail", "xpass", "skip", "error")
#: statuses that make `losscheck check` exit 1
FAILING = ("fail", "xpass", "error")


@dataclass(frozen=True)
class Task:
    spec_id: str
    runtime: str
    property: str
    dtype: str
    device: str = "cpu"


def check_seed(seed: int, task: Task) -> int:
    """Each check's own seed: independent of the order, sharding and filtering of a run."""
    key = f"{seed}|{task.spec_id}|{task.runtime}|{task.property}|{task.dtype}|{task.device}"
    return zlib.crc32(key.encode())


def to_jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    return x


def case_fields(case) -> dict:
    """A case as row fields; ``param_arrays`` names the parameters that are arrays (class weights,
    ``where``), which JSON turns into lists."""
    return {"input": to_jsonable(dict(case.inputs)), "params": to_jsonable(dict(case.params)),
            "shape": to_jsonable(case.shape),
            "param_arrays": sorted(k for k, v in case.params.items() if isinstance(v, np.ndarray))}


def repro_command(task: Task, seed: int, examples: int) -> str:
    device = "" if task.device == "cpu" else f" --device {task.device}"
    return (f"losscheck check {task.spec_id} --runtime {task.runtime} --property {task.property} "
            f"--dtype {task.dtype}{device} --seed {seed} --examples {examples}")


def _base_row(spec, task: Task, seed: int, examples: int) -> dict:
    return {
        "id": spec.id, "framework": spec.framework, "runtime": task.runtime, "family": spec.family,
        "reference": spec.reference, "property": task.property, "dtype": task.dtype, "device": task.device,
        "status": "pass", "code": "", "message": "", "error_eps": None, "bound_eps": None,
        "deviation_eps": None, "deviation_abs": None, "examples": 0, "seed": seed,
        "check_seed": check_seed(seed, task), "input": None, "params": None, "shape": None, "param_arrays": None,
        "reason": "", "repro": "", "duration_s": 0.0,
    }


def search_settings(examples: int):
    """The hypothesis settings of every check's search (the benchmarks time searches with them too)."""
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(max_examples=examples, deadline=None, database=None, report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
                    phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink))


def run_check(spec, task: Task, *, examples: int, seed: int) -> dict:
    """Run one property of one spec on one runtime and dtype; never raises for a failing loss."""
    from hypothesis import given, target
    from hypothesis import seed as hseed
    from hypothesis.errors import Flaky

    from . import strategies
    from .frameworks import get_runtime
    from .properties import PROPERTIES
    from .properties.common import Finding

    row = _base_row(spec, task, seed, examples)
    started = time.perf_counter()
    runtime = get_runtime(task.runtime, task.device)
    missing = _missing_api(spec.id, runtime)
    if missing:
        row.update(status="skip", reason=missing, duration_s=round(time.perf_counter() - started, 4))
        return row
    if task.property == "compat":
        return _run_compat(spec, runtime, row, started)
    if task.property.startswith("compare:"):  # `losscheck compare`: one spec's members in one group
        from .compare.worker import run_task
        return run_task(spec, task, runtime, row, examples=examples, seed=seed, started=started)
    prop = PROPERTIES[task.property]
    stats = {"n": 0, "error": 0.0, "bound": None, "dev": None, "dev_abs": None, "dev_case": None, "xfail": None,
             "precision": None, "precision_case": None, "warn": None, "skipped": None, "observed": None}

    @hseed(row["check_seed"])
    @search_settings(examples)
    @given(strategies.cases(spec.draw))
    def search(case):
        try:
            m = prop(spec, case, task.dtype, runtime)
        except Finding as f:
            if f.details.get("unsupported_dtype"):  # the framework has no kernel for this dtype: not a bug
                stats["skipped"] = f"{task.runtime} does not support {task.dtype} here: {f.message}"
                return
            if f.details.get("warn"):  # a measured behaviour worth knowing, not a failure
                stats["warn"] = stats["warn"] or f
                return
            expected = spec.expected_for(task.property, task.dtype, task.runtime, f.case or case, f.code)
            if expected is None:
                raise
            if stats["xfail"] is None:
                stats["xfail"] = (f, expected)
            return
        if m.extra.get("skipped"):
            stats["skipped"] = m.extra["skipped"]
            return
        stats["n"] += 1
        if m.extra.get("observed"):
            stats["observed"] = m.extra["observed"]
        stats["error"] = max(stats["error"], m.error)
        stats["bound"] = m.bound if stats["bound"] is None else max(stats["bound"], m.bound)
        if m.bound > 0:
            target(min(m.error / m.bound, 1e6), label="error / bound")
        if m.precision is not None and m.error >= stats["error"]:
            stats.update(precision=m.precision, precision_case=case)
        if m.deviation is not None and np.isfinite(m.deviation):
            target(min(m.deviation, 1e12), label="deviation from exact")
            if stats["dev"] is None or m.deviation > stats["dev"]:
                stats.update(dev=m.deviation, dev_abs=m.deviation_abs, dev_case=case)

    mode = strategies.extreme() if task.property == "numerics" else contextlib.nullcontext()
    try:
        # the oracle computes with inf and NaN on purpose (0 log 0 = 0)
        with np.errstate(all="ignore"), mode, strategies.reproducible():
            search()
    except Finding as f:
        _fill_failure(row, f, task, seed, examples)
    except Flaky as exc:  # the same inputs failed once and then passed: the loss is nondeterministic
        _fill_unreproducible(row, exc, task, seed, examples)
    except Exception as exc:  # a bug in the spec or in losscheck itself, not in the loss
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        row.update(status="error", code="",
                   message=(f"harness error: {type(exc).__name__}: {exc} "
                            f"(at {os.path.basename(where.filename)}:{where.lineno})")[:500],
                   traceback=traceback.format_exc()[-4000:])
    else:
        row["examples"] = stats["n"]
        row["error_eps"], row["bound_eps"] = stats["error"], stats["bound"]
        unconditional = next((e for e in spec.expected if e.when is None and e.code is None
                              and e.matches(task.property, task.dtype, task.runtime)), None)
        if stats["n"] == 0 and stats["skipped"] and stats["xfail"] is None and stats["warn"] is None:
            row.update(status="skip", reason=stats["skipped"])
        elif stats["xfail"] is not None:
            f, expected = stats["xfail"]
            _fill_failure(row, f, task, seed, examples)
            row.update(status="xfail", reason=_reason(expected))
        elif unconditional is not None:
            row.update(status="xpass", reason=_reason(unconditional),
                       message="expected to fail but passed: the expectation is stale")
        elif stats["warn"] is not None:
            _fill_failure(row, stats["warn"], task, seed, examples)
            row["status"] = "warn"
        elif stats["precision"] is not None:
            p, pcase = stats["precision"], stats["precision_case"]
            row.update(status="deviation", code="D001",
                       message=(f"{task.dtype} inputs computed at {p.effective} precision: error up to "
                                f"{stats['error']:,.0f} {task.dtype} eps (bound {stats['bound']:,.0f}); {p.reason}"),
                       **case_fields(pcase), reason=p.link,
                       deviation_eps=stats["dev"], deviation_abs=stats["dev_abs"])
        elif stats["dev"] is not None and stats["bound"] is not None and stats["dev"] > stats["bound"]:
            dev_case = stats["dev_case"]
            summary = spec.deviation.summary if spec.deviation else "documented semantics differ from the exact loss"
            row.update(status="deviation", code="V010", deviation_eps=stats["dev"], deviation_abs=stats["dev_abs"],
                       message=(f"matches its documented semantics ({summary}); they differ from the exact loss by "
                                f"up to {stats['dev']:.3g} eps ({stats['dev_abs']:.3g} absolute) on these inputs"),
                       **case_fields(dev_case), reason=spec.deviation.link if spec.deviation else "")
        elif stats["dev"] is not None:
            row.update(deviation_eps=stats["dev"], deviation_abs=stats["dev_abs"])
        if row["status"] == "pass" and stats["observed"]:
            row["message"] = f"observed: {stats['observed']}"
    row["duration_s"] = round(time.perf_counter() - started, 4)
    return row


def _missing_api(spec_id: str, runtime) -> str | None:
    from .catalog import missing_api

    try:
        return missing_api(spec_id, runtime.namespace)
    except ImportError:   # the framework itself: the check reports the import error
        return None


def _run_compat(spec, runtime, row, started) -> dict:
    """The activation/loss compatibility analysis: deterministic scores, no search."""
    from .catalog.pairings import for_spec
    from .compat import check_spec
    from .userloss import check_compat, checked_against

    against = checked_against(spec)   # a user's loss (its id is the user's name): its reference's pairing
    variants = for_spec(against.reference.id if against is not None else spec.id)
    if not variants:
        row.update(status="skip", reason="takes no activated scores (no documented output activation)")
    elif runtime.device != "cpu":
        # the analysis feeds inputs outside the loss's domain on purpose (logits to BCELoss): torch's
        # CUDA kernels check them with device-side asserts, which end the process's CUDA context
        row.update(status="skip", reason="the activation/loss analysis runs on the CPU: it is the same on every "
                                         "device, and its out-of-domain inputs stop CUDA kernels with asserts")
    else:
        try:
            with np.errstate(all="ignore"):
                row.update(check_spec(spec, runtime, variants) if against is None
                           else check_compat(spec, runtime, variants))
        except Exception as exc:  # noqa: BLE001 - a harness error, reported in the row
            row.update(status="error", message=f"harness error: {type(exc).__name__}: {exc}"[:500])
    row["duration_s"] = round(time.perf_counter() - started, 4)
    return row


def _reason(expected) -> str:
    return expected.reason + (f" ({expected.link})" if expected.link else "")


def _first_finding(exc):
    from .properties.common import Finding

    for sub in getattr(exc, "exceptions", ()):
        found = sub if isinstance(sub, Finding) else _first_finding(sub)
        if found is not None:
            return found
    return None


def _fill_unreproducible(row, exc, task, seed, examples):
    """The first run's finding (its case, error and repro), reported as D005."""
    f = _first_finding(exc)
    if f is not None:
        _fill_failure(row, f, task, seed, examples)
    else:
        row.update(status="fail", repro=repro_command(task, seed, examples))
    first = f"{f.code}: {f.message}" if f is not None else f"{type(exc).__name__}: {exc}"
    row.update(code="D005", message=(f"a failure did not reproduce when the same inputs were replayed, so the loss "
                                     f"gave different results on identical inputs; the first run found {first}")[:500])


def _fill_failure(row, f, task, seed, examples):
    row.update(status="fail", code=f.code, message=f.message, error_eps=f.error, bound_eps=f.bound,
               repro=repro_command(task, seed, examples))
    if f.case is not None:
        row.update(case_fields(f.case))


# ---- orchestration --------------------------------------------------------------------------------

def plan(specs: Iterable, *, properties, dtypes, runtimes=None, device="cpu") -> list[Task]:
    tasks = []
    for spec in specs:
        for rt in spec.runtimes:
            if runtimes and rt not in runtimes:
                continue
            for dtype in dtypes:
                for prop in properties:
                    tasks.append(Task(spec.id, rt, prop, dtype, device))
    return tasks


def skipped_row(spec, task: Task, seed: int, reason: str) -> dict:
    row = _base_row(spec, task, seed, 0)
    row.update(status="skip", reason=reason)
    return row


#: why the run in progress was asked to stop (:func:`stop`); empty while it goes on
_STOPPED: list[str] = []
#: seconds between looks at ``_STOPPED`` while a pool works
_POLL = 0.25


def stop(reason: str) -> None:
    """Ask the run in progress to stop: the pools kill their workers, and every check not finished
    becomes a ``skip`` row saying ``reason``; :func:`run` then returns as usual."""
    if not _STOPPED:
        _STOPPED.append(reason)


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM stop the run (:func:`stop`) instead of the process, so that the report of
    what finished is still written (:func:`losscheck.signals.stop_on_signals`; yields its list)."""
    from .signals import stop_on_signals as on_signals

    _STOPPED.clear()
    try:
        with on_signals(lambda why: stop(f"{why} before this check finished")) as got:
            yield got
    finally:
        _STOPPED.clear()


def run(tasks: list[Task], *, examples: int, seed: int, jobs: int | None = None,
        on_row: Callable[[dict], None] | None = None, timeout: float | None = None) -> tuple[list[dict], dict]:
    """Run tasks in worker processes, one process pool per Keras backend (Keras picks its backend
    once per process), ``jobs`` workers shared among them by estimated cost. Returns (rows, versions).

    Workers stay alive for the whole run, so each imports its frameworks once; the pools hand out
    one check at a time, so a slow group (JAX compiles) does not hold up the others. ``timeout``
    bounds the whole run: checks still pending then are reported as errors.
    """
    from . import catalog
    from .frameworks import group_of, installed

    rows, versions, lock = [], {}, threading.Lock()

    def emit(row):
        with lock:
            rows.append(row)
        if on_row is not None:
            on_row(row)

    groups: dict[str, list[Task]] = {}
    for t in tasks:
        spec = catalog.get(t.spec_id)
        if not installed(t.runtime):
            emit(skipped_row(spec, t, seed, f"{t.runtime} is not installed"))
        elif t.dtype not in spec.dtypes:
            emit(skipped_row(spec, t, seed, f"{t.dtype} is not in this spec's dtypes"))
        else:
            groups.setdefault(group_of(t.runtime), []).append(t)
    jobs = max(1, jobs or os.cpu_count() or 1)
    deadline = None if timeout is None else time.monotonic() + timeout
    sizes = pool_sizes(groups, jobs)
    with ThreadPoolExecutor(max_workers=max(1, len(groups))) as threads:
        futures = [threads.submit(_run_group, g, ts, examples, seed, sizes[g], emit, versions, lock, deadline)
                   for g, ts in groups.items()]
        for fut in futures:
            fut.result()
    order = {t: i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: order.get(Task(r["id"], r["runtime"], r["property"], r["dtype"], r["device"]), 0))
    return rows, versions


def _init_worker(group: str) -> None:
    import signal

    os.environ.update(KERAS_BACKEND=group, TF_CPP_MIN_LOG_LEVEL="3")
    # Ctrl-C reaches the whole process group: the parent stops the run and kills its workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One compute thread per worker: the pools already use every core, and intra-op threads on top
    # (torch's and TensorFlow's defaults) made a small torch call 170x slower on a loaded 2-core machine
    # (BENCHMARKS.md). Set before the frameworks are imported; the user's environment wins.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, "1")
    # JAX takes 75 % of a GPU's memory when its first array lands there: the second worker on one GPU
    # would fail. Allocate as needed instead; the user's environment wins.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    # Framework warnings about the drawn inputs (Keras shape hints, torch broadcasting) are measured by
    # the properties that care; on the terminal they would bury the progress bar.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


#: relative cost of a check per runtime (JAX compiles a program per new shape): sizes the pools
COST = {"jax": 8, "keras-jax": 8}


def pool_sizes(groups: dict[str, list[Task]], jobs: int) -> dict[str, int]:
    """Workers per process group: ``jobs`` shared by estimated cost, at least one each."""
    cost = {g: sum(COST.get(t.runtime, 1) for t in ts) for g, ts in groups.items()}
    total = sum(cost.values()) or 1
    return {g: max(1, min(len(groups[g]), round(jobs * c / total))) for g, c in cost.items()}


_VERSIONS: dict[str, dict] = {}
#: set in a worker whose GPU context a check broke (a device-side assert is sticky: every later
#: CUDA call of the process fails); the worker then refuses checks until its pool is replaced
_BROKEN_CONTEXT: list[str] = []
#: pools replaced for a broken GPU context before the group's remaining checks are given up
MAX_CONTEXT_RESTARTS = 5


class BrokenContext(Exception):
    """Raised by a worker whose GPU context an earlier check broke: its check was not run."""


def _check_in_worker(raw: dict, examples: int, seed: int) -> tuple[dict, dict]:
    """One check in a pool worker: (row, versions of its runtime). A failing check on a GPU is
    followed by a probe of the device; a row whose check broke it carries ``_broken_context``."""
    from . import catalog
    from .frameworks import get_runtime

    if _BROKEN_CONTEXT:
        raise BrokenContext(_BROKEN_CONTEXT[0])
    task = Task(**raw)
    if task.runtime not in _VERSIONS:
        try:
            _VERSIONS[task.runtime] = get_runtime(task.runtime, task.device).versions()
        except Exception as exc:  # noqa: BLE001 - each check then fails with the import error
            _VERSIONS[task.runtime] = {task.runtime: f"unavailable: {type(exc).__name__}: {exc}"}
    row = run_check(catalog.get(task.spec_id), task, examples=examples, seed=seed)
    if row["status"] in ("fail", "error"):
        broken = get_runtime(task.runtime, task.device).engine.context_error()
        if broken:
            _BROKEN_CONTEXT.append(broken)
            row["_broken_context"] = broken
    return json.loads(json.dumps(row, default=str)), {k: str(v) for k, v in _VERSIONS[task.runtime].items()}


def _run_group(group, tasks, examples, seed, workers, emit, versions, lock, deadline):
    """Run ``tasks`` in a pool of ``workers`` processes. A worker that dies (a segfault in a framework,
    the out-of-memory killer) breaks the whole stdlib pool: the checks it took down are run again in a
    fresh pool, and those that break it a second time run one per process, so only the check that
    kills its process is reported (as an error) and the rest of the run goes on."""
    from concurrent.futures.process import BrokenProcessPool

    from . import catalog

    def failed(task, message):
        row = _base_row(catalog.get(task.spec_id), task, seed, examples)
        if _STOPPED:   # not run, nothing learnt about the loss
            row.update(status="skip", reason=f"not run: {_STOPPED[0]}")
        else:
            row.update(status="error", message=message[:500])
        emit(row)

    def record(row, vers):
        with lock:
            versions.update(vers)
        emit(row)

    broken, reason = _run_pool_until_context_holds(group, tasks, examples, seed, workers, record, failed, deadline)
    if broken and not reason:
        broken, reason = _run_pool_until_context_holds(group, broken, examples, seed, workers, record, failed,
                                                       deadline)
    for task in broken:   # a second break: one process per check finds the one that kills it
        if reason:
            failed(task, f"worker {group!r}: {reason}")
            continue
        again, reason = _run_pool_until_context_holds(group, [task], examples, seed, 1, record, failed, deadline)
        if again:
            failed(task, f"worker {group!r} died while running this check, three times (a segmentation fault or "
                         f"the out-of-memory killer in the framework): {BrokenProcessPool.__name__}")


def _run_pool_until_context_holds(group, tasks, examples, seed, workers, record, failed, deadline):
    """:func:`_run_pool`, in a fresh pool each time a check breaks a worker's GPU context (the
    checks that pool had not finished run in the next), at most ``MAX_CONTEXT_RESTARTS`` times."""
    lost, cause = [], ""
    for _ in range(MAX_CONTEXT_RESTARTS + 1):
        broken, reason, tasks, cause = _run_pool(group, tasks, examples, seed, workers, record, failed, deadline)
        lost += broken
        if not tasks:
            return lost, reason
        if reason:
            break
    for task in tasks:
        failed(task, f"worker {group!r}: {reason}" if reason else
               f"not run: checks broke the GPU context of worker {group!r} {MAX_CONTEXT_RESTARTS + 1} times "
               f"(the last: {cause})")
    return lost, reason


def _run_pool(group, tasks, examples, seed, workers, record, failed, deadline):
    """One process pool over ``tasks``; returns (tasks lost to a broken pool, the reason the run
    stopped early or "", tasks not run because a check broke a worker's GPU context, that check's
    error). The pool is given up at such a break: its other workers' checks run again elsewhere."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(group,))
    pending = {pool.submit(_check_in_worker, asdict(t), examples, seed): t for t in tasks}
    broken, reason, unfinished, cause = [], "", [], ""
    try:
        while pending and not cause:
            if _STOPPED:
                reason = _STOPPED[0]
                break
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(pending, timeout=_POLL if left is None else min(left, _POLL), return_when=FIRST_COMPLETED)
            if not done:
                if left is not None and time.monotonic() >= deadline:
                    reason = "the run's time limit expired before this check finished"
                    break
                continue
            for fut in done:
                task = pending.pop(fut)
                try:
                    row, vers = fut.result()
                except BrokenProcessPool:
                    broken.append(task)
                except BrokenContext as exc:
                    unfinished.append(task)
                    cause = cause or str(exc)
                except Exception as exc:  # noqa: BLE001 - a result that could not be sent back
                    failed(task, f"worker {group!r} failed: {type(exc).__name__}: {exc}")
                else:
                    if row.pop("_broken_context", None):
                        cause = row["message"][:200]
                    record(row, vers)
        if cause:   # every pending check goes to a fresh pool, this one is given up
            unfinished += pending.values()
            pending = {}
    finally:
        if pending or cause:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # stdlib pools cannot cancel a running call; the run is over for them
        pool.shutdown(wait=not (pending or cause), cancel_futures=True)
    for task in pending.values():
        failed(task, f"worker {group!r}: {reason}")
    return broken, reason, unfinished, cause
