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


def _names(text: str, option: str, allowed=None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if allowed is not None and n not in allowed]
    if bad or not names:
        raise pytest.UsageError(f"--losscheck-{option}: unknown value {bad[0] if bad else text!r}; "
                                f"expected {', '.join(allowed or ())}")
    return names


def _device(name: str) -> str:
    name = "cuda" if name == "gpu" else name
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise pytest.UsageError(f"--losscheck-device: unknown device {name!r}; expected cpu, cuda or cuda:N")
    return name


def _integer(text: str, option: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise pytest.UsageError(f"--losscheck-{option} must be an integer >= {minimum}, got {text!r}")
    return value


def resolve_settings(config: pytest.Config) -> Settings:
    raw = _raw_options(config)
    profile = raw.get("profile", DEFAULT_PROFILE)
    if profile not in PROFILES:
        raise pytest.UsageError(f"--losscheck-profile: unknown profile {profile!r}; expected {', '.join(PROFILES)}")
    defaults = PROFILES[profile]
    examples = _integer(raw["examples"], "examples", 1) if "examples" in raw else defaults["examples"]
    if "seed" in raw:
        seed = _integer(raw["seed"], "seed", 0)
    elif hasattr(config, "workerinput") and "losscheck_seed" in config.workerinput:
        seed = int(config.workerinput["losscheck_seed"])  # an xdist worker: the controller's seed
    else:
        seed = defaults["seed"] if defaults["seed"] is not None else secrets.randbelow(1_000_000)
    return Settings(
        profile=profile, examples=examples, seed=seed,
        dtypes=_names(raw["dtype"], "dtype", DTYPES) if "dtype" in raw else DEFAULT_DTYPES,
        devices=tuple(_device(d) for d in _names(raw["device"], "device")) if "device" in raw else DEFAULT_DEVICES,
        report=raw.get("report"), given=frozenset(raw))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reference=None, **params): check the loss the test returns (or passes to the "
                   "losscheck fixture) against a catalog reference, e.g. reference='torch.nn.MSELoss', "
                   "reduction='sum'; also properties=, dtypes=, devices=, examples=, inputs=, framework=")
    config.addinivalue_line("markers", f"{CATALOG_MARKER}(argname): set by losscheck.parametrize_catalog")
    config.stash[SETTINGS] = resolve_settings(config)
    config.stash[ROWS] = []
    config.stash[VERSIONS] = {}


def pytest_report_header(config: pytest.Config) -> str:
    s = config.stash[SETTINGS]
    fresh = " (fresh for this run)" if s.seed_is_fresh else ""
    report = f", report {s.report}" if s.report else ""
    return (f"losscheck: seed {s.seed}{fresh}, replay with --losscheck-seed {s.seed}; profile {s.profile}, "
            f"{s.examples} examples per check, dtypes {','.join(s.dtypes)}, devices {','.join(s.devices)}{report}")


@pytest.fixture
def losscheck(request: pytest.FixtureRequest):
    """``losscheck(fn, reference=None, *, inputs=None, properties=None, dtypes=None, devices=None,
    examples=None, params=None, framework=None, name=None)``: check ``fn`` against the float64 oracle of
    catalog entry ``reference``; fails the test with the findings. Returns the result rows."""
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


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: merge a finished worker's rows and versions."""
    output = getattr(node, "workeroutput", {})
    node.config.stash[ROWS].extend(json.loads(output.get("losscheck_rows", "[]")))
    node.config.stash[VERSIONS].update(json.loads(output.get("losscheck_versions", "{}")))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    rows = config.stash.get(ROWS, None)
    if rows is None:
        return
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the rows to the controller
        config.workeroutput["losscheck_rows"] = json.dumps(rows, allow_nan=True)
        config.workeroutput["losscheck_versions"] = json.dumps(config.stash[VERSIONS])
        return
    settings = config.stash[SETTINGS]
    if settings.report:
        from .pytest_support import write_reports

        config.stash[REPORT_FILES] = write_reports(settings, rows, config.stash[VERSIONS],
                                                  config.invocation_params.args)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, None)
    if hasattr(config, "workerinput") or rows is None:
        return
    paths, problems = config.stash.get(REPORT_FILES, ([], []))
    if not rows and not paths:
        return
    from .pytest_messages import summary_lines

    terminalreporter.section("losscheck")
    for line, markup in summary_lines(rows, config.stash[SETTINGS], paths, problems):
        terminalreporter.line(line, **markup)
