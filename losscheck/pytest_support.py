"""What the pytest plugin runs when a losscheck test runs (imported lazily by
:mod:`losscheck.pytest_plugin`): the fixture's checker, marked tests, catalog cases, report files.

Checks run in the test's process (a user's loss lives there), one result row per property x dtype x
device, each tagged with the test's ``nodeid`` and collected on the session for the summary and the
report. Keras checks on a backend other than this process's run in a worker process.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

import pytest

from .pytest_messages import failure_message, pytest_command, report_section
from .pytest_plugin import CATALOG_MARKER, MARKER, ROWS, SETTINGS, VERSIONS, Settings

#: statuses that fail a test (runner.FAILING, repeated so this module loads no NumPy)
FAILING = ("fail", "xpass", "error")
#: keyword arguments of the fixture and the marker; the marker's other keywords are loss parameters
CHECK_ARGUMENTS = ("reference", "inputs", "properties", "dtypes", "devices", "examples", "params", "framework",
                   "name", "ranks", "where", "mean")
DEFAULT_PROPERTIES = ("value", "gradient")
ITEM_ROWS = pytest.StashKey[list]()


class LosscheckFailure(AssertionError):
    """A losscheck check of the test found a failure (the message has the details)."""


@dataclass(frozen=True)
class CatalogCase:
    """One catalog check that :func:`parametrize_catalog` turns into a test."""
    spec_id: str
    runtime: str
    property: str
    dtype: str

    def __str__(self) -> str:
        return f"{self.spec_id}-{self.runtime}-{self.property}-{self.dtype}"


# ---- the fixture and the marker -----------------------------------------------------------------

def marker_arguments(node) -> dict[str, Any]:
    """The ``@pytest.mark.losscheck`` arguments on ``node`` (module, class and function marks merged,
    the closest winning); keywords that are not check arguments are collected in ``params``."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        kwargs = dict(mark.kwargs)
        if mark.args:
            kwargs.setdefault("reference", mark.args[0])
        params = {**merged.get("params", {}), **(kwargs.pop("params", None) or {})}
        params.update({k: kwargs.pop(k) for k in list(kwargs) if k not in CHECK_ARGUMENTS})
        merged.update(kwargs)
        if params:
            merged["params"] = params
    return merged


class Checker:
    """The ``losscheck`` fixture's value: call it with a loss to check it in this test."""

    def __init__(self, node):
        self.node = node

    def __repr__(self) -> str:
        return f"<losscheck fixture of {self.node.nodeid}>"

    def __call__(self, fn: Callable, reference: str | None = None, *, inputs: Mapping[str, str] | None = None,
                 properties: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
                 devices: Iterable[str] | None = None, examples: int | None = None,
                 params: Mapping[str, Any] | None = None, framework: str | None = None,
                 name: str | None = None, ranks: Mapping[str, int] | None = None,
                 where: Callable[[dict], bool] | None = None, mean: bool | None = None) -> list[dict]:
        """Check ``fn`` against catalog entry ``reference``'s oracle: ``properties`` (default value and
        gradient, and compiled for JAX losses and Keras losses on JAX or TensorFlow) x ``dtypes`` x
        ``devices`` (default: the session's options), ``examples`` hypothesis
        examples per check; ``ranks`` ({argument: number of dimensions}) checks only the reference's
        draws of those ranks, ``where`` ({argument: NumPy array} -> bool) only the draws it accepts;
        ``mean=True``: ``fn`` returns the mean of the reference's values (``jnp.mean(optax_loss(...))``). Arguments left out come from the test's ``@pytest.mark.losscheck``, then
        from the session's options. Fails the test if a check fails; returns the result rows."""
        __tracebackhide__ = True
        given = {k: v for k, v in dict(reference=reference, inputs=inputs, properties=properties, dtypes=dtypes,
                                       devices=devices, examples=examples, params=params, framework=framework,
                                       name=name, ranks=ranks, where=where, mean=mean).items() if v is not None}
        rows, context = check_user_loss(self.node, fn, {**marker_arguments(self.node), **given})
        conclude(rows, context, pytrace=True)
        return rows


def user_default_properties(runtime: str) -> tuple[str, ...]:
    """Value and gradient, and where training compiles the loss (JAX, Keras on JAX or TensorFlow),
    the compiled check (X010)."""
    from .frameworks import COMPILER_OF

    return DEFAULT_PROPERTIES + (("compiled",) if runtime in COMPILER_OF else ())


def check_user_loss(node, fn: Callable, args: Mapping[str, Any]) -> tuple[list[dict], dict]:
    """Run the checks ``args`` ask for on ``fn``, recorded on the session: (rows, the context a
    failure message needs)."""
    __tracebackhide__ = True
    from .userloss import UsageError, check_callable, mean_spec, rank_hint, received_inputs, reference_spec, spec_for

    settings = node.config.stash[SETTINGS]
    args = {k: v for k, v in args.items() if v is not None}
    reference = args.get("reference")
    label = args.get("name") or loss_name(fn)
    if not reference:
        raise LosscheckFailure(f"losscheck: checking {label} needs a reference: losscheck({label}, "
                               "reference='torch.nn.MSELoss') or @pytest.mark.losscheck(reference=...)")
    examples, dtypes, devices = checked_arguments(args, settings)
    common = dict(name=label, framework=args.get("framework"), params=args.get("params"), inputs=args.get("inputs"))
    rows: list[dict] = []
    against = reference
    try:
        if args.get("mean"):
            against = mean_spec(reference_spec(reference))
        narrow = dict(ranks=args.get("ranks"), where=args.get("where"))
        spec = spec_for(fn, against, **narrow, **common)
        properties = _list(args.get("properties"), user_default_properties(spec.runtimes[0]))
        for device in devices:
            missing = device_missing(spec.runtimes[0], device)
            if missing:
                rows += [_skipped(spec, p, d, device, settings.seed, missing) for p in properties for d in dtypes]
            else:
                rows += check_callable(fn, against, properties=properties, dtypes=dtypes, examples=examples,
                                       seed=settings.seed, device=device, **narrow, **common)
        def retry(ranks, dtype):   # the suggested ranks on a few examples of the value check
            try:
                tried = check_callable(fn, against, properties=["value"], dtypes=[dtype], examples=5,
                                       seed=settings.seed, ranks=ranks, where=narrow["where"], **common)
            except UsageError as exc:
                return [str(exc)]
            return [r["message"] for r in tried if r.get("code") == "X001"]

        _hint_ranks(rows, lambda row: rank_hint(row, fn, label, reference, common["inputs"],
                                                retry=lambda ranks: retry(ranks, row["dtype"]),
                                                given=args.get("ranks")))
        if not args.get("mean"):
            _hint_mean(rows, label, reference)
        if not args.get("where"):
            _hint_ignored(rows, label, reference)
    except UsageError as exc:
        raise LosscheckFailure(f"losscheck could not check {label} against {reference}: {exc}") from None
    replay = pytest_command(node, settings, examples_given="examples" in args)
    module = getattr(getattr(node, "module", None), "__name__", None)

    def received(row):   # what the loss received on the row's input, for the snippet (int64 class indices...)
        return received_inputs(fn, against, row["input"], row["dtype"], want_grad=row["property"] in
                               ("gradient", "numerics"), framework=common["framework"], params=common["params"],
                               bind=common["inputs"])

    context = {"loss": fn, "inputs_map": args.get("inputs"), "reference": reference, "replay": replay,
               "module": module, "received": received}
    for row in rows:
        if row["status"] in ("fail", "xfail", "error") and row.get("repro", "").startswith("losscheck check"):
            row["repro"] = replay  # `losscheck check NAME` cannot load a user's function; the test can
    record(node, rows)
    return rows, context


def _hint_ranks(rows: list[dict], hint: Callable[[dict], str]) -> None:
    """A user loss that raised on a rank the reference draws beside others (an (N, C) loss fed
    torch's unbatched (C,) CrossEntropyLoss input): its X001 causes say how to pass ranks=."""
    found: dict[tuple, str] = {}
    for row in rows:
        if row["status"] == "fail" and row.get("code") == "X001" and isinstance(row.get("input"), dict):
            key = tuple((k, len(getattr(v, "shape", ())) if hasattr(v, "shape") else _rank(v))
                        for k, v in row["input"].items())
            if key not in found:
                found[key] = hint(row)
            if found[key]:
                row["message"] = f"{row['message']} ({found[key]})"


def _hint_mean(rows: list[dict], label: str, reference: str) -> None:
    """A scalar where the reference returns one value per sample or element (optax's losses are
    unreduced): the X002 cause says how to check the mean."""
    for row in rows:
        if row["status"] == "fail" and row.get("code") == "X002" and row["message"].startswith("returned shape ()"):
            row["message"] += (f" (if {label} averages {reference}'s values, as jnp.mean(...) or "
                               ".mean() does, pass mean=True)")


def _hint_ignored(rows: list[dict], label: str, reference: str) -> None:
    """A loss that raised on a target equal to the reference's ignore_index (torch draws them: such
    targets count for nothing): the X001 cause says how to leave them out."""
    for row in rows:
        ignore = (row.get("params") or {}).get("ignore_index")
        target = (row.get("input") or {}).get("target")
        if row["status"] != "fail" or row.get("code") != "X001" or ignore is None or target is None:
            continue
        if ignore in _flat(target):
            row["message"] += (f" ({reference} draws targets equal to ignore_index={ignore}, which it leaves out; "
                               f"if {label} does not take them, pass where=lambda x: (x['target'] != {ignore}).all())")


def _flat(value) -> list:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _rank(value) -> int:
    rank = 0
    while isinstance(value, (list, tuple)):
        rank, value = rank + 1, (value[0] if value else None)
    return rank


def checked_arguments(args: Mapping[str, Any], settings: Settings) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(examples, dtypes, devices) of a check: the fixture's or marker's arguments, validated as the
    command-line options are (the same one-line messages, naming the argument), else the session's."""
    __tracebackhide__ = True
    from .pytest_plugin import DEVICE_NAMES, DTYPES, device_option, integer_option, names_option

    try:
        examples = settings.examples
        if "examples" in args:
            examples = integer_option(str(args["examples"]), "losscheck(examples=...)", 1)
        dtypes = settings.dtypes
        if "dtypes" in args:
            dtypes = names_option(_texts(args["dtypes"]), "losscheck(dtypes=...)", DTYPES)
        devices = settings.devices
        if "devices" in args:
            label = "losscheck(devices=...)"
            devices = tuple(dict.fromkeys(device_option(d, label) for d in
                                          names_option(_texts(args["devices"]), label, expected=DEVICE_NAMES)))
    except pytest.UsageError as exc:
        raise LosscheckFailure(str(exc)) from None
    return examples, tuple(dtypes), tuple(devices)


def _texts(value) -> str:
    """A list argument (or one name) as the comma-separated text an option gives."""
    if isinstance(value, str):
        return value
    try:
        return ",".join(str(v) for v in value)
    except TypeError:
        return str(value)


def _list(value, default) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    return (value,) if isinstance(value, str) else tuple(value)


def _skipped(spec, prop, dtype, device, seed, reason) -> dict:
    from .runner import Task, skipped_row

    return skipped_row(spec, Task(spec.id, spec.runtimes[0], prop, dtype, device), seed, reason)


def loss_name(fn: Callable) -> str:
    fn = getattr(fn, "func", fn)
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def call_marked_test(item: pytest.Function) -> bool:
    """Run a marked test's body, then check the loss it returned (or its catalog case)."""
    __tracebackhide__ = True
    testargs = {arg: item.funcargs[arg] for arg in item._fixtureinfo.argnames}
    check_marked_result(item, item.obj(**testargs))
    return True


def keeping_result(body: Callable, kept: list) -> Callable:
    """The async test ``body``, appending what it returns to ``kept`` (its signature kept for the
    plugins that read it)."""
    @functools.wraps(body)
    async def keeping(*args, **kwargs):
        kept.append(await body(*args, **kwargs))
    return keeping


def check_marked_result(item: pytest.Function, result: Any) -> None:
    """Check what a marked test's body returned: the loss, or its catalog case."""
    __tracebackhide__ = True
    catalog_mark = item.get_closest_marker(CATALOG_MARKER)
    if catalog_mark is not None:
        check_catalog_case(item, item.funcargs[catalog_mark.args[0]])
    elif callable(result):
        rows, context = check_user_loss(item, result, marker_arguments(item))
        conclude(rows, context, pytrace=False)
    elif result is not None or "losscheck" not in item.fixturenames:
        pytest.fail(f"{item.nodeid} is marked @pytest.mark.losscheck but returned {type(result).__name__}: "
                    "return the loss to check, or take the losscheck fixture and call it", pytrace=False)


def conclude(rows: list[dict], context: Mapping[str, Any], *, pytrace: bool) -> None:
    """Fail the test if a check failed; skip it if every check was skipped; otherwise it passes
    (deviations and expected failures with a note in the summary)."""
    __tracebackhide__ = True
    failing = [r for r in rows if r["status"] in FAILING]
    if failing:
        message = failure_message(rows, context)
        if pytrace:
            raise LosscheckFailure(message)
        pytest.fail(message, pytrace=False)
    if rows and all(r["status"] == "skip" for r in rows):
        pytest.skip("; ".join(dict.fromkeys(r["reason"] for r in rows)))


def record(node, rows: list[dict], versions: Mapping[str, Mapping] | None = None) -> None:
    """Tag rows with the test, normalise them to JSON types (in place) and collect them on the
    session, with the versions of the runtimes that ran them (``versions`` by runtime, for rows
    run elsewhere; otherwise read from this process's runtimes)."""
    from .frameworks import get_runtime

    config = node.config
    known = config.stash[VERSIONS]
    for i, row in enumerate(rows):
        row = json.loads(json.dumps(row, default=str))
        row["nodeid"] = node.nodeid
        rows[i] = row
        runtime = row["runtime"]
        if row["status"] in ("skip", "error") or runtime in known:
            continue
        if versions is not None:
            known[runtime] = dict(versions.get(runtime, {}))
            continue
        try:
            known[runtime] = get_runtime(runtime, row["device"]).versions()
        except Exception as exc:  # noqa: BLE001 - the report says why instead
            known[runtime] = {runtime: f"unavailable: {type(exc).__name__}"}
    config.stash[ROWS].extend(rows)
    node.stash.setdefault(ITEM_ROWS, []).extend(rows)
    node.add_report_section("call", "losscheck", report_section(node.stash[ITEM_ROWS]))


@lru_cache(maxsize=None)
def device_missing(runtime: str, device: str) -> str | None:
    """Why ``runtime`` cannot run on ``device`` here (None when it can)."""
    if device == "cpu":
        return None
    from .frameworks import ENGINE_OF

    engine, index = ENGINE_OF[runtime], int(device.partition(":")[2] or 0)
    try:
        if engine == "torch":
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        elif engine == "jax":
            import jax

            count = len(jax.devices("gpu"))
        else:
            import tensorflow as tf

            count = len(tf.config.list_physical_devices("GPU"))
    except Exception:  # noqa: BLE001 - no GPU backend at all
        count = 0
    return None if index < count else f"no {device} device for {runtime} on this machine"


# ---- the catalog --------------------------------------------------------------------------------

def parametrize_catalog(ids: Iterable[str] | None = None, *, framework: str | None = None,
                        family: str | None = None, runtimes: Iterable[str] | None = None,
                        properties: Iterable[str] = DEFAULT_PROPERTIES,
                        dtypes: Iterable[str] = ("float64", "float32"), argname: str = "losscheck_case"):
    """A decorator generating one test per catalog entry x runtime x property x dtype: the test takes
    ``argname`` (a :class:`CatalogCase`) and the plugin runs that check after the test's body.
    A failure fails the test; a documented deviation or a scoped expected failure passes (pinning
    the installed frameworks' behaviour). Runtimes not installed here are skipped.

    ``ids``: catalog ids (default all); ``framework``: torch, keras or optax; ``family``: a loss
    family; ``runtimes``: torch, jax, keras-tensorflow, keras-jax, keras-torch."""
    from . import catalog
    from .frameworks import installed

    try:
        specs = [catalog.get(i) for i in ids] if ids is not None else catalog.all_specs()
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    specs = [s for s in specs if (framework is None or s.framework == framework)
             and (family is None or s.family == family)]
    wanted = set(runtimes) if runtimes is not None else None
    params = []
    for spec in specs:
        for rt in spec.runtimes:
            if wanted is not None and rt not in wanted:
                continue
            for prop in properties:
                for dtype in dtypes:
                    case = CatalogCase(spec.id, rt, prop, dtype)
                    marks = []
                    if not installed(rt):
                        marks.append(pytest.mark.skip(reason=f"{rt} is not installed"))
                    elif dtype not in spec.dtypes:
                        marks.append(pytest.mark.skip(reason=f"{spec.id} is not checked in {dtype}"))
                    params.append(pytest.param(case, id=str(case), marks=marks))
    if not params:
        raise ValueError("parametrize_catalog: the filters select no catalog check")

    def decorate(test):
        test = pytest.mark.parametrize(argname, params)(test)
        return getattr(pytest.mark, CATALOG_MARKER)(argname)(test)

    return decorate


def check_catalog_case(item, case: CatalogCase) -> list[dict]:
    """Run one catalog check on every session device; fail the test on a failure."""
    __tracebackhide__ = True
    from . import catalog
    from .runner import Task, run, run_check

    settings: Settings = item.config.stash[SETTINGS]
    spec = catalog.get(case.spec_id)
    for device in settings.devices:
        task = Task(case.spec_id, case.runtime, case.property, case.dtype, device)
        missing = device_missing(case.runtime, device)
        if missing:
            record(item, [_skipped(spec, case.property, case.dtype, device, settings.seed, missing)])
        elif foreign_keras_backend(case.runtime):
            worker_rows, versions = run([task], examples=settings.examples, seed=settings.seed, jobs=1)
            record(item, worker_rows, versions={case.runtime: versions})
        else:
            record(item, [run_check(spec, task, examples=settings.examples, seed=settings.seed)])
    rows = item.stash[ITEM_ROWS]
    replay = pytest_command(item, settings, examples_given=False)
    conclude(rows, {"reference": spec.id, "catalog": True, "replay": replay}, pytrace=False)
    return rows


def foreign_keras_backend(runtime: str) -> bool:
    """True for a Keras runtime whose backend is not the one this process's Keras has (or will
    have): Keras picks its backend once per process."""
    import sys

    from .frameworks import KERAS_BACKEND_OF

    backend = KERAS_BACKEND_OF.get(runtime)
    if backend is None:
        return False
    current = (sys.modules["keras"].config.backend() if "keras" in sys.modules
               else os.environ.get("KERAS_BACKEND", "tensorflow"))
    return backend != current


# ---- session end --------------------------------------------------------------------------------

def merged_rows(rows: list[dict]) -> list[dict]:
    """Rows in a deterministic order (by test, then loss, runtime, property, dtype, device): the
    same for a serial run and for any split across xdist workers."""
    from .report.table import sort_key

    return sorted(rows, key=lambda r: (r.get("nodeid", ""), sort_key(r)))


def write_reports(settings: Settings, rows: list[dict], versions: Mapping[str, dict], args,
                  workers_down: list[dict] | None = None) -> tuple[list, list]:
    """Write the report set the CLI writes into the report directory: report.json first, then
    report.html, junit.xml, summary.md, and repro/ (reproducer scripts of failing catalog checks;
    a user's loss is replayed by the pytest command in its row's ``repro``), replaced as a whole as
    ``losscheck nightly`` replaces it. ``workers_down``: the pytest-xdist workers that went down
    (recorded in the report's ``selection``). A renderer that fails costs only its own file.
    Returns (paths written, problems)."""
    from .nightly import REPRO_DIR, replace_dir
    from .report import json_report

    rows = merged_rows(rows)
    flat = {k: v for per_runtime in versions.values() for k, v in per_runtime.items()}
    selection = {"profile": settings.profile, "dtypes": list(settings.dtypes), "devices": list(settings.devices)}
    if workers_down:
        selection["workers_down"] = list(workers_down)
    target = settings.report
    try:
        from . import catalog
        from .report import html, junit, markdown, repro
        from .report.table import ResultTable
    except ImportError as exc:  # a partial install: the JSON report is the one every install has
        scripts, problems = {}, [f"only report.json written: {exc}"]
    else:
        known = {s.id for s in catalog.all_specs()}
        scripts, _ = repro.scripts([r for r in rows if r["id"] in known])
        problems = []
        for row in rows:
            name = repro.filename(row) if row["id"] in known else None
            if name in scripts:
                row["repro_script"] = f"{REPRO_DIR}/{name}"
    doc = json_report.document(rows, versions=flat, seed=settings.seed, examples=settings.examples,
                               command=["pytest", *args], selection=selection)
    try:
        json_report.write_atomic(os.path.join(target, "report.json"), json_report.dumps(doc))
    except OSError as exc:  # an unwritable directory must not crash the end of the user's session
        return [], [f"{target} not written: {exc}"]
    written = [os.path.join(target, "report.json")]
    if problems:
        return written, problems
    table = ResultTable.from_document(doc)
    renderers = {"report.html": lambda: html.render(table, scripts, title="losscheck (pytest)"),
                 "junit.xml": lambda: junit.render(table), "summary.md": lambda: markdown.render(table)}
    for name, render in renderers.items():
        path = os.path.join(target, name)
        try:
            json_report.write_atomic(path, render())
            written.append(path)
        except Exception as exc:  # noqa: BLE001 - the other files are still written
            problems.append(f"{path} not written: {type(exc).__name__}: {exc}")
    directory = os.path.join(target, REPRO_DIR)
    try:   # as a whole: no script of an earlier run stays beside this run's
        replace_dir(directory, scripts)
        written += [os.path.join(directory, name) for name in scripts]
    except OSError as exc:
        problems.append(f"{directory} not written: {exc}")
    return written, problems
