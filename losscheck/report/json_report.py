"""Versioned JSON report, written atomically.

Schema version 2 (the README documents it): the version 1 keys (``schema_version``, ``losscheck``,
``created``, ``command``, ``seed``, ``examples``, ``machine``, ``versions``, ``git``, ``results``)
plus ``machine.gpus``, ``selection`` (what the run covered: properties, dtypes, runtimes, devices,
shard), ``summary`` (status counts), ``changes`` (what is new since the previous run, from the
history; null without one) and ``trend`` (status counts of the last runs in the history).
Version 1 documents still load (:func:`load`), with the new keys empty.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


def gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs nvidia-smi sees ([] without one); imports no framework."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def machine_info() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "gpus": gpu_names()}


def commit_info(cwd: str | None = None) -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=cwd, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=cwd, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    if rev.returncode != 0:
        return {}
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def summary(rows) -> dict[str, int]:
    from .table import STATUS_ORDER

    counts = Counter(r["status"] for r in rows)
    return {s: counts[s] for s in STATUS_ORDER if counts.get(s)}


def document(rows, *, versions=None, seed=None, examples=None, command=None, selection=None, changes=None,
             trend=None, machine=None, git=None, created=None) -> dict:
    """The report document for ``rows`` (result row dicts) and the run's metadata."""
    from .. import __version__

    rows = list(rows)
    return {
        "schema_version": SCHEMA_VERSION,
        "losscheck": __version__,
        "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "seed": seed,
        "examples": examples,
        "machine": machine if machine is not None else machine_info(),
        "versions": versions or {},
        "git": git if git is not None else commit_info(),
        "selection": selection,
        "summary": summary(rows),
        "changes": changes,
        "trend": trend or [],
        "results": rows,
    }


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, default=str, allow_nan=True)


def load(path: str) -> dict:
    """Read a report (schema 1 or 2) as a schema 2 document; ValueError for anything else."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") not in READABLE_VERSIONS or "results" not in doc:
        raise ValueError(f"{path}: not a losscheck report (schema_version "
                         f"{doc.get('schema_version') if isinstance(doc, dict) else None!r})")
    if doc["schema_version"] == 1:
        doc = {**doc, "schema_version": SCHEMA_VERSION, "selection": None, "summary": summary(doc["results"]),
               "changes": None, "trend": []}
        doc.setdefault("machine", {}).setdefault("gpus", [])
    return doc


def unwritable(path: str) -> str:
    """Why :func:`write_atomic` could not write ``path`` ("" if it can), found by creating (and
    removing) a temporary file where it would, before any work is spent."""
    if os.path.isdir(path):
        return "it is a directory"
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return f"cannot write in {directory}: {exc.strerror or exc}"
    return ""


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half.

    The file is UTF-8 whatever the locale (every report format declares or assumes it); what UTF-8
    cannot encode (a lone surrogate, which a loss's exception message can carry) is written as a
    backslash escape (``\\udcff``) instead of failing the file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path: str, rows, **meta) -> None:
    write_atomic(path, dumps(document(rows, **meta)))
