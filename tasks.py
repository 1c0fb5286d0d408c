#!/usr/bin/env python3
"""The project's two commands, runnable on a machine with only Python 3.11 and pip:

    python3 tasks.py demo   # create .venv, install, audit examples/ and run a quick nightly into reports/sample/
    python3 tasks.py test   # create .venv, install (and Chromium for the browser test), run the tests (what CI runs)

Every install goes through constraints/cpu.txt so that torch resolves to the CPU wheel.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LOSSCHECK_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".losscheck-installed"
INSTALL_INPUTS = ("pyproject.toml", "constraints/cpu.txt")


def run(*cmd, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def _fingerprint() -> str:
    return hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in INSTALL_INPUTS)).hexdigest()


def ensure_venv() -> None:
    """Create .venv and install losscheck with every framework (CPU) and the dev tools, once per
    change of pyproject.toml or the constraints."""
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    if not PY.exists():
        run(sys.executable, "-m", "venv", VENV)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-c", "constraints/cpu.txt", "-e", ".[all,dev]")
    STAMP.write_text(_fingerprint())


def demo(args) -> int:
    """The main job: audit the example losses (the seeds' code, bugs included), then a quick nightly
    of the whole catalog; the reports land in reports/sample/. Findings are the point of the demo, so exit 1
    from either step is expected; exit 2 (could not run) fails the demo."""
    ensure_venv()
    sample = ROOT / "reports" / "sample"   # tracked: the sample report the README points to
    sample.mkdir(parents=True, exist_ok=True)
    lc = str(BIN / "losscheck")
    started = time.perf_counter()
    steps = [
        [lc, "audit", "examples", "--output", str(sample / "audit.json"), "--output", str(sample / "audit.html")],
        [lc, "nightly", "--examples", "5", "--output", str(sample), *args],
    ]
    codes = []
    for cmd in steps:
        print("+", " ".join(cmd[:1] + [c.replace(str(ROOT) + os.sep, "") for c in cmd[1:]]), flush=True)
        codes.append(subprocess.run(cmd, cwd=ROOT).returncode)
    print(f"demo finished in {time.perf_counter() - started:.0f} s (exit codes {codes}); "
          "reports in reports/sample/: audit.json, audit.html, report.html, report.json, junit.xml, summary.md")
    return 2 if any(c not in (0, 1) for c in codes) else 0


def ensure_browser() -> None:
    """Debian's Chromium for the HTML report's browser test, installed where it is missing and this
    is a Debian-like machine run as root (CI); elsewhere the test skips and says why."""
    if Path("/usr/bin/chromium").exists() or shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print("chromium could not be installed: the browser test will skip", file=sys.stderr)
            return


def test(args) -> int:
    ensure_venv()
    ensure_browser()
    return subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT).returncode


COMMANDS = {"demo": demo, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python3 tasks.py {{{'|'.join(COMMANDS)}}} [extra arguments]", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
