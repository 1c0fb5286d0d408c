"""Versioned JSON report, written atomically."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile

SCHEMA_VERSION = 1


def machine_info() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


def commit_info(cwd: str | None = None) -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=cwd, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=cwd, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    if rev.returncode != 0:
        return {}
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def document(rows, *, versions=None, seed=None, examples=None, command=None) -> dict:
    from .. import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "losscheck": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "seed": seed,
        "examples": examples,
        "machine": machine_info(),
        "versions": versions or {},
        "git": commit_info(),
        "results": rows,
    }


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path: str, rows, **meta) -> None:
    write_atomic(path, json.dumps(document(rows, **meta), indent=1, default=str, allow_nan=True))
