"""Where and when the benchmarks ran: CPU model and cores, load average, Python and framework
versions (read from package metadata, so nothing is imported), the date and the git commit."""
from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata

PACKAGES = ("numpy", "hypothesis", "torch", "tensorflow-cpu", "tensorflow", "keras", "jax", "jaxlib", "optax")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(root: str) -> str:
    from losscheck.report.json_report import commit_info

    info = commit_info(root)
    if not info:
        return ""
    return info["commit"][:7] + (" (with uncommitted changes)" if info["dirty"] else "")


def describe(root: str) -> dict:
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "load_average_1_5_15min": load_average(), "platform": platform.platform(),
            "versions": versions(), "commit": git_commit(root)}
