"""The pytest plugin (entry point ``pytest11: losscheck``): check losses inside a user's own test suite.

* the ``losscheck`` fixture: ``losscheck(my_loss, reference="torch.nn.MSELoss", ...)`` runs the checks
  and fails the test with a readable assertion;
* the marker ``@pytest.mark.losscheck(reference=..., **params)``: a marked test returns the loss to
  check (or calls the fixture, which then takes the marker's arguments as defaults), a coroutine
  too, under pytest-asyncio or anyio;
* :func:`losscheck.parametrize_catalog`: one test per catalog entry x runtime x property x dtype;
* options in a ``losscheck`` group, each with an ini twin; the seed in the header; a terminal summary
  and report files at session end, with pytest-xdist workers' results merged on the controller.

Every pytest run in an environment where losscheck is installed imports this module, so it imports
pytest and the standard library only. The machinery (:mod:`losscheck.pytest_support`, which loads
hypothesis, NumPy and the frameworks) is imported when a losscheck test runs.
"""
from __future__ import annotations

import inspect
import json
import os
import secrets
from dataclasses import dataclass

import pytest

#: examples per check and seed of each profile: ci checks the same examples on every run (a CI job
#: never fails by the luck of the draw); nightly draws many examples from a fresh seed per run.
PROFILES: dict[str, dict] = {"ci": {"examples": 10, "seed": 0}, "nightly": {"examples": 200, "seed": None}}
DEFAULT_PROFILE = "ci"
#: the dtype names of :data:`losscheck.tolerance.DTYPES`, repeated so that parsing options imports
#: no NumPy (tests/test_pytest_plugin.py keeps the two equal)
DTYPES = ("float64", "float32", "float16", "bfloat16")
DEFAULT_DTYPES = ("float64", "float32")
DEFAULT_DEVICES = ("cpu",)
DEVICE_NAMES = "cpu, cuda or cuda:N"
#: option name -> help; each is ``--losscheck-NAME`` on the command line and ``losscheck_NAME`` in the ini
OPTIONS = {
    "examples": "hypothesis examples per check (default: the profile's; ci 10, nightly 200)",
    "seed": "base seed of every check (default: the profile's; ci 0, nightly a fresh one printed in the header)",
    "device": "device(s) to check on, comma-separated or repeated: cpu, cuda, cuda:N (default cpu)",
    "dtype": "dtype(s) to check, comma-separated or repeated: float64, float32, float16, bfloat16 "
             "(default float64,float32)",
    "report": "directory to write the report set into at session end, as `losscheck nightly` does: report.json, "
              "report.html, junit.xml, summary.md, repro/ (default: none)",
    "profile": "ci (few examples, fixed seed; the default) or nightly (many examples, fresh seed)",
}
LIST_OPTIONS = ("device", "dtype")
MARKER = "losscheck"
CATALOG_MARKER = "losscheck_catalog"
#: on a marked async test: the value its body returned, once it has run
ASYNC_RESULT = pytest.StashKey[list]()


@dataclass(frozen=True)
class Settings:
    """The session's resolved options. ``given`` names the options set on the command line or in
    the ini file (a reproducer repeats those)."""
    profile: str
    examples: int
    seed: int
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    report: str | None
    given: frozenset[str]

    @property
    def seed_is_fresh(self) -> bool:
        return "seed" not in self.given and PROFILES[self.profile]["seed"] is None


SETTINGS = pytest.StashKey[Settings]()
#: result rows of this process's losscheck checks (on the controller: merged with the workers')
ROWS = pytest.StashKey[list]()
#: runtime -> framework versions of the runtimes that ran those checks
VERSIONS = pytest.StashKey[dict]()
#: (the report files written at session end, the problems writing them)
REPORT_FILES = pytest.StashKey[tuple]()
#: xdist controller: the workers that went down before finishing ({worker, error, test})
WORKERS_DOWN = pytest.StashKey[list]()
#: xdist worker: how many of a test's rows its earlier reports carried to the controller
ROWS_SENT = pytest.StashKey[int]()
#: the attributes of a worker's test report that carry its rows and versions to the controller
REPORT_ROWS, REPORT_VERSIONS = "losscheck_rows", "losscheck_versions"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("losscheck", "losscheck: check loss functions against the float64 oracle")
    for name, help_text in OPTIONS.items():
        extra = {"action": "append"} if name in LIST_OPTIONS else {}
        group.addoption(f"--losscheck-{name}", dest=f"losscheck_{name}", default=None, help=help_text,
                        metavar=name.upper(), **extra)
        parser.addini(f"losscheck_{name}", help_text, default="")


def _raw_options(config: pytest.Config) -> dict[str, str]:
    """Each option as given, the command line winning over the ini file; absent ones left out."""
    out = {}
    for name in OPTIONS:
        value = config.getoption(f"losscheck_{name}")
        if value is None:
            value = str(config.getini(f"losscheck_{name}") or "").strip()
            if value and name == "report":
                value = os.path.join(str(config.inipath.parent if config.inipath else config.rootpath), value)
        elif isinstance(value, list):
            value = ",".join(value)
        if value not in (None, ""):
            out[name] = str(value)
    return out


def names_option(text: str, label: str, allowed=None, expected: str = "") -> tuple[str, ...]:
    """The comma-separated names in ``text`` (each in ``allowed``, when given); a one-line usage
    error naming ``label`` (``--losscheck-dtype``, or the fixture's ``losscheck(dtypes=...)``) otherwise."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if allowed is not None and n not in allowed]
    if bad or not names:
        raise pytest.UsageError(f"{label}: unknown value {bad[0] if bad else text!r}; "
                                f"expected {expected or ', '.join(allowed or ())}")
    return names


def device_option(name: str, label: str) -> str:
    name = "cuda" if name == "gpu" else name
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise pytest.UsageError(f"{label}: unknown device {name!r}; expected {DEVICE_NAMES}")
    return name


def integer_option(text: str, label: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise pytest.UsageError(f"{label} must be an integer >= {minimum}, got {text!r}")
    return value


def resolve_settings(config: pytest.Config) -> Settings:
    raw = _raw_options(config)
    profile = raw.get("profile", DEFAULT_PROFILE)
    if profile not in PROFILES:
        raise pytest.UsageError(f"--losscheck-profile: unknown profile {profile!r}; expected {', '.join(PROFILES)}")
    defaults = PROFILES[profile]
    examples = integer_option(raw["examples"], "--losscheck-examples", 1) if "examples" in raw else defaults["examples"]
    if "seed" in raw:
        seed = integer_option(raw["seed"], "--losscheck-seed", 0)
    elif hasattr(config, "workerinput") and "losscheck_seed" in config.workerinput:
        seed = int(config.workerinput["losscheck_seed"])  # an xdist worker: the controller's seed
    else:
        seed = defaults["seed"] if defaults["seed"] is not None else secrets.randbelow(1_000_000)
    return Settings(
        profile=profile, examples=examples, seed=seed,
        dtypes=names_option(raw["dtype"], "--losscheck-dtype", DTYPES) if "dtype" in raw else DEFAULT_DTYPES,
        devices=(tuple(dict.fromkeys(device_option(d, "--losscheck-device") for d in
                                     names_option(raw["device"], "--losscheck-device", expected=DEVICE_NAMES)))
                 if "device" in raw else DEFAULT_DEVICES),
        report=raw.get("report"), given=frozenset(raw))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reference=None, **params): check the loss the test returns (or passes to the "
                   "losscheck fixture) against a catalog reference, e.g. reference='torch.nn.MSELoss', "
                   "reduction='sum'; also properties=, dtypes=, devices=, examples=, inputs=, framework=, ranks=, where=, mean=")
    config.addinivalue_line("markers", f"{CATALOG_MARKER}(argname): set by losscheck.parametrize_catalog")
    config.stash[SETTINGS] = resolve_settings(config)
    config.stash[ROWS] = []
    config.stash[VERSIONS] = {}
    config.stash[WORKERS_DOWN] = []


def pytest_report_header(config: pytest.Config) -> str:
    s = config.stash[SETTINGS]
    fresh = " (fresh for this run)" if s.seed_is_fresh else ""
    report = f", report {s.report}" if s.report else ""
    return (f"losscheck: seed {s.seed}{fresh}, replay with --losscheck-seed {s.seed}; profile {s.profile}, "
            f"{s.examples} examples per check, dtypes {','.join(s.dtypes)}, devices {','.join(s.devices)}{report}")


@pytest.fixture
def losscheck(request: pytest.FixtureRequest):
    """``losscheck(fn, reference=None, *, inputs=None, properties=None, dtypes=None, devices=None,
    examples=None, params=None, framework=None, name=None, ranks=None, where=None, mean=None)``: check ``fn``
    against the float64 oracle of catalog entry ``reference``; fails the test with the findings.
    Returns the result rows."""
    from .pytest_support import Checker

    return Checker(request.node)


def _marked(item) -> bool:
    return item.get_closest_marker(MARKER) is not None or item.get_closest_marker(CATALOG_MARKER) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Marked tests and catalog cases: run the test body, then check what it returned."""
    if not _marked(pyfuncitem) or ASYNC_RESULT in pyfuncitem.stash or inspect.iscoroutinefunction(pyfuncitem.obj):
        return None  # async bodies run under their plugin (see pytest_runtest_call)
    from .pytest_support import call_marked_test

    return call_marked_test(pyfuncitem)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item):
    """Marked async tests: the async plugin (pytest-asyncio, anyio) runs the body and drops what it
    returns, so the body is wrapped to keep it; the loss it returned is checked afterwards."""
    if not (isinstance(item, pytest.Function) and _marked(item) and inspect.iscoroutinefunction(item.obj)):
        return (yield)
    from .pytest_support import check_marked_result, keeping_result

    original, kept = item.obj, []
    item.stash[ASYNC_RESULT] = kept
    item.obj = keeping_result(original, kept)
    try:
        outcome = yield
    finally:
        item.obj = original
    if kept:   # the body ran to its end (without an async plugin, pytest fails the test instead)
        check_marked_result(item, kept[0])
    return outcome


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker checks with the controller's seed (a fresh seed is drawn once)."""
    node.workerinput["losscheck_seed"] = node.config.stash[SETTINGS].seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """xdist worker: each test report carries the rows the test recorded since its previous report
    to the controller (as JSON), so that a worker that crashes later loses none of them."""
    report = yield
    if hasattr(item.config, "workerinput"):
        from .pytest_support import ITEM_ROWS

        rows = item.stash.get(ITEM_ROWS, [])
        sent = item.stash.get(ROWS_SENT, 0)
        if len(rows) > sent:
            setattr(report, REPORT_ROWS, json.dumps(rows[sent:], allow_nan=True))
            setattr(report, REPORT_VERSIONS, json.dumps(item.config.stash[VERSIONS]))
            item.stash[ROWS_SENT] = len(rows)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """xdist controller: collect the rows a worker's test report carries."""
    rows = getattr(report, REPORT_ROWS, None)
    config = getattr(getattr(report, "node", None), "config", None)
    if rows is None or config is None or hasattr(config, "workerinput") or ROWS not in config.stash:
        return
    config.stash[ROWS].extend(json.loads(rows))
    config.stash[VERSIONS].update(json.loads(getattr(report, REPORT_VERSIONS, "{}")))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: a worker that went down (crashed) is recorded; the checks of the test it
    was running are missing from the results (:func:`pytest_handlecrashitem` names it)."""
    if error:
        node.config.stash[WORKERS_DOWN].append({"worker": node.gateway.id, "error": str(error)[:300], "test": None})


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched) -> None:
    node = getattr(report, "node", None)
    config = getattr(node, "config", None)
    if config is None or WORKERS_DOWN not in config.stash:
        return
    for down in reversed(config.stash[WORKERS_DOWN]):
        if down["worker"] == node.gateway.id and down["test"] is None:
            down["test"] = crashitem
            break


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    rows = config.stash.get(ROWS, None)
    if rows is None or hasattr(config, "workerinput") or config.option.collectonly:
        return   # a worker's rows went with its reports; a collect-only session checks nothing
    settings = config.stash[SETTINGS]
    if settings.report:
        from .pytest_support import write_reports

        config.stash[REPORT_FILES] = write_reports(settings, rows, config.stash[VERSIONS],
                                                  config.invocation_params.args, config.stash[WORKERS_DOWN])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, None)
    if hasattr(config, "workerinput") or rows is None:
        return
    paths, problems = config.stash.get(REPORT_FILES, ([], []))
    down = config.stash.get(WORKERS_DOWN, [])
    if not rows and not paths and not down:
        return
    from .pytest_messages import summary_lines

    terminalreporter.section("losscheck")
    for line, markup in summary_lines(rows, config.stash[SETTINGS], paths, problems, down):
        terminalreporter.line(line, **markup)
