"""Does installing losscheck slow down unrelated test suites? pytest's wall time on a tiny suite that
uses no losscheck feature, with the plugin loaded (as installed, from its pytest11 entry point) and
blocked (``-p no:losscheck``), each run ``--runs`` times, interleaved so that machine load hits both
alike. Prints the medians and their ratio (with / without); ``--json PATH`` writes them.

    .venv/bin/python benchmarks/plugin_startup.py [--runs 10] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TINY_SUITE = '''
import pytest


def test_addition():
    assert 1 + 1 == 2


@pytest.mark.parametrize("n", range(5))
def test_squares(n):
    assert n * n >= 0
'''


def time_pytest(directory: str, extra: list[str]) -> float:
    """Wall seconds of one ``python -m pytest`` run of the tiny suite (which must pass)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "6 passed" not in done.stdout:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def plugin_loaded(directory: str, extra: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra],
                          cwd=directory, capture_output=True, text=True)
    return "losscheck: seed" in done.stdout  # the plugin's header line


def plugin_import_ms() -> float:
    """Milliseconds to import the plugin module in a process that has imported pytest already
    (what the plugin adds to every pytest start), from ``python -X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pytest, losscheck.pytest_plugin"],
                          capture_output=True, text=True, check=True)
    line = next(ln for ln in done.stderr.splitlines() if ln.rstrip().endswith("| losscheck.pytest_plugin"))
    return int(line.split("|")[1]) / 1000  # cumulative microseconds, pytest's modules already counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per configuration (default 10)")
    parser.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plugin-startup-") as directory:
        with open(os.path.join(directory, "test_tiny.py"), "w") as f:
            f.write(TINY_SUITE)
        configurations = {"with losscheck": ["-v"], "without losscheck": ["-v", "-p", "no:losscheck"]}
        for name, extra in configurations.items():  # each configuration is what it says
            if plugin_loaded(directory, extra) != (name == "with losscheck"):
                raise RuntimeError(f"{name}: the plugin is {'not ' if name == 'with losscheck' else ''}loaded")
        for extra in configurations.values():  # warm the file system caches
            time_pytest(directory, extra)
        times: dict[str, list[float]] = {name: [] for name in configurations}
        for _ in range(args.runs):
            for name, extra in configurations.items():
                times[name].append(time_pytest(directory, extra))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = medians["with losscheck"] / medians["without losscheck"]
    for name, ts in times.items():
        print(f"{name:>18}: median {medians[name] * 1000:7.1f} ms  (min {min(ts) * 1000:.1f}, max {max(ts) * 1000:.1f}, "
              f"{len(ts)} runs)")
    print(f"{'ratio':>18}: {ratio:.3f} (with / without)")
    imports = sorted(plugin_import_ms() for _ in range(args.runs))
    print(f"{'plugin import':>18}: median {statistics.median(imports):7.1f} ms (after pytest's own imports)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "seconds": times, "median_s": medians, "ratio": ratio,
                       "plugin_import_ms": imports,
                       "python": sys.version.split()[0], "cpu_count": os.cpu_count()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
