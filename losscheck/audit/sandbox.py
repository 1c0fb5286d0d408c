"""Run the audit of one file in a subprocess with a wall-clock limit per loss, a memory limit
(``RLIMIT_AS``) and an output limit, and turn whatever goes wrong into a finding.

The worker (:mod:`.worker`) imports the file once and audits its losses one after the other. When
it dies or hangs during a loss, that loss gets an X finding (X003 hang, X004 crash or exit, X006
output, X007 memory) naming the line of the user's file it was executing, and a fresh worker goes
on with the next loss. When it dies or hangs while importing the file, the file cannot be audited
(exit 2, with the line).
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

#: seconds allowed for importing the frameworks the file uses (not charged to the user's code)
FRAMEWORK_TIMEOUT = 300.0
GRACE = 5.0
#: seconds a worker that closed its channel gets to exit on its own before it is killed
EXIT_GRACE = 3.0
SIGNALS = {signal.SIGSEGV: "a segmentation fault (SIGSEGV)", signal.SIGABRT: "an abort (SIGABRT)",
           signal.SIGBUS: "a bus error (SIGBUS)", signal.SIGFPE: "a floating-point exception (SIGFPE)",
           signal.SIGILL: "an illegal instruction (SIGILL)"}


@dataclass
class Limits:
    timeout: float = 60.0           # per loss, and for importing the file (its module-level code)
    memory_mb: int = 8192           # RLIMIT_AS of the worker; RLIMIT_DATA where it uses CUDA (see worker.set_limits)
    cuda: bool = False              # the audit runs losses on a GPU
    output_soft_mb: float = 1.0     # printing more while one loss is checked is an X006 finding
    output_hard_mb: int = 8         # RLIMIT_FSIZE, per loss: writes beyond it fail and the loss's audit stops

    def to_json(self) -> dict:
        return {"timeout": self.timeout, "import_timeout": self.timeout, "memory_mb": self.memory_mb,
                "memory_kind": "data" if self.cuda else "address_space",
                "output_soft_mb": self.output_soft_mb, "output_hard_mb": self.output_hard_mb}


@dataclass
class FileOutcome:
    entries: list[dict] = field(default_factory=list)
    error: str | None = None        # could not audit the file: a one-line reason (with the line)
    versions: dict = field(default_factory=dict)
    restarts: int = 0
    interrupted: bool = False       # stopped by :func:`interrupt`; ``entries`` holds what finished


_INTERRUPTED = threading.Event()


def interrupt() -> None:
    """Stop every audit in progress: each worker is killed, each :func:`audit_file` returns what
    finished (the CLI calls this on SIGINT and SIGTERM)."""
    _INTERRUPTED.set()


def reset_interrupt() -> None:
    _INTERRUPTED.clear()


class _Worker:
    def __init__(self, job: dict):
        self.ctl_r, ctl_w = os.pipe()
        self.out = tempfile.TemporaryFile(prefix="losscheck-audit-")
        self.killed = False   # the worker was still running when stop() killed it
        # the worker is killed, so its atexit clean-up (TensorFlow's autograph files) never runs:
        # its temporary files go to a directory of its own, removed by close()
        self.tmpdir = tempfile.mkdtemp(prefix="losscheck-audit-tmp-")
        env = dict(os.environ)
        env.update(TMPDIR=self.tmpdir, TEMP=self.tmpdir, TMP=self.tmpdir)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([sys.executable, "-m", "losscheck.audit.worker"], stdin=subprocess.PIPE,
                                     stdout=self.out, stderr=self.out, pass_fds=(ctl_w,), env=env,
                                     start_new_session=True, cwd=os.getcwd())
        os.close(ctl_w)
        self.proc.stdin.write(json.dumps({**job, "ctl_fd": ctl_w}).encode())
        self.proc.stdin.close()
        self.buf = b""

    def next_event(self, deadline: float) -> dict | None:
        """The next event, or None at EOF (the worker is gone), ``{"event": "timeout"}`` at the
        deadline, ``{"event": "interrupted"}`` once :func:`interrupt` was called."""
        while b"\n" not in self.buf:
            if _INTERRUPTED.is_set():
                return {"event": "interrupted"}
            left = deadline - time.monotonic()
            if left <= 0:
                return {"event": "timeout"}
            ready, _, _ = select.select([self.ctl_r], [], [], min(left, 0.2))
            if not ready:
                continue
            chunk = os.read(self.ctl_r, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def stop(self, grace: float = 0.0) -> int:
        """End the worker (after ``grace`` seconds to exit on its own) and return its status."""
        if grace and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.killed = True
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)   # the worker's own session: only what we started
            except ProcessLookupError:
                pass
        rc = self.proc.wait()
        os.close(self.ctl_r)
        return rc

    def output_tail(self, n: int = 65536) -> str:
        self.out.flush()
        size = os.fstat(self.out.fileno()).st_size
        self.out.seek(max(0, size - n))
        return self.out.read().decode("utf-8", "replace")

    def output_size(self) -> int:
        return os.fstat(self.out.fileno()).st_size

    def close(self) -> None:
        self.out.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def traceback_line(text: str, path: str) -> int:
    """The innermost line of ``path`` in a faulthandler dump or a Python traceback (0 if absent)."""
    real = os.path.realpath(path)
    dumps = re.findall(r'File "([^"]+)", line (\d+)', text)
    if "most recent call first" in text:
        block = text[text.rfind("most recent call first"):]
        for f, line in re.findall(r'File "([^"]+)", line (\d+)', block):
            if os.path.realpath(f) == real:
                return int(line)
        return 0
    hits = [int(line) for f, line in dumps if os.path.realpath(f) == real]
    return hits[-1] if hits else 0


def death(rc: int, tail: str, path: str, limits: Limits, timed_out: bool,
          killed_by_audit: bool = False) -> tuple[str, str, int]:
    """(code, cause in words, line in the user's file) for a worker that ended without reporting;
    ``killed_by_audit``: it closed its channel but did not exit, and the audit killed it."""
    line = traceback_line(tail, path)
    at = f" at line {line}" if line else ""
    if timed_out or "Timeout (" in tail:
        return "X003", f"did not finish within {limits.timeout:g} s{at} (an infinite loop or a hang)", line
    if rc < 0:
        sig = -rc
        if sig == signal.SIGXFSZ:
            return "X006", f"printed more than {limits.output_hard_mb} MiB{at}: the audit stopped it", line
        if sig == signal.SIGKILL and killed_by_audit:
            said = _said(tail)
            return "X004", (f"closed the audit's channel{at} and did not exit within {EXIT_GRACE:g} s: the audit "
                            f"killed it{f' ({said})' if said else ''}"), line
        if sig == signal.SIGKILL:
            return "X007", f"was killed (SIGKILL){at}, most likely by the system's out-of-memory killer", line
        return "X004", f"crashed the process with {SIGNALS.get(sig, f'signal {sig}')}{at}", line
    exited = re.findall(r"losscheck: os\._exit\((.*)\)", tail)
    if exited:
        return "X004", f"called os._exit({exited[-1]}){at}: the training process would end here", line
    if "MemoryError" in tail[-4000:] or "Cannot allocate memory" in tail[-4000:]:
        return "X007", f"exceeded the memory limit of {limits.memory_mb} MiB{at}", line
    said = _said(tail)
    if said:   # the loss left the process unable to go on (closed sys.stdout, broke an interpreter global)
        return "X004", f"ended the process with exit status {rc}{at}: {said}", line
    return "X004", f"ended the process with exit status {rc}{at} (os._exit() or a fatal error in native code)", line


def _said(tail: str) -> str:
    """The last line of a Python traceback in the worker's output ("" if none)."""
    if "Traceback (most recent call last)" not in tail:
        return ""
    found = re.findall(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit|Interrupt)\b.*)$", tail[-4000:], re.M)
    return found[-1][:200] if found else ""


def _memory_hint(message: str, limits: Limits) -> str:
    """``message``, plus a hint when it reads like the sandbox's memory limit was hit."""
    if re.search(r"MemoryError|Cannot allocate memory|failed to map segment|std::bad_alloc", message):
        return f"{message} (the sandbox's memory limit, --memory {limits.memory_mb}, may be too low)"
    return message


def audit_file(path: str, display: str, frameworks: list[str], candidates: list[dict], todo: list[str],
               options: dict, limits: Limits, repro: dict[str, str]) -> FileOutcome:
    """Audit the losses named in ``todo``; whatever happens, return what was learnt."""
    outcome = FileOutcome()
    remaining = list(todo)
    while remaining:
        if _INTERRUPTED.is_set():
            outcome.interrupted = True
            return outcome
        job = {"path": os.path.abspath(path), "display_path": display, "frameworks": frameworks,
               "candidates": candidates, "todo": remaining, "options": options, "limits": limits.to_json(),
               "repro": repro}
        worker = _Worker(job)
        phase, current, deadline = "boot", None, time.monotonic() + FRAMEWORK_TIMEOUT
        finished = False
        try:
            while True:
                ev = worker.next_event(deadline)
                if ev is not None and ev["event"] == "interrupted":
                    worker.stop()
                    outcome.interrupted = True
                    return outcome
                if ev is None or ev["event"] == "timeout":
                    timed_out = ev is not None
                    rc = worker.stop(grace=0.0 if timed_out else EXIT_GRACE)
                    tail = worker.output_tail()
                    if phase in ("boot", "frameworks"):
                        outcome.error = _memory_hint(f"{display}: the audit worker failed before importing the file "
                                                     f"(status {rc}): {_last_line(tail)}", limits)
                        return outcome
                    code, cause, line = death(rc, tail, path, limits, timed_out, worker.killed)
                    if phase == "import":
                        outcome.error = f"{display}:{line}: importing the file {cause}"
                        return outcome
                    outcome.entries.append(_crashed(current, candidates, code, cause, line, repro,
                                                    frameworks[0] if frameworks else ""))
                    remaining.remove(current)
                    outcome.restarts += 1
                    break
                kind = ev["event"]
                if kind == "ready":
                    phase = "frameworks"
                elif kind == "frameworks":
                    outcome.versions.update(ev.get("versions") or {})
                    phase, deadline = "import", time.monotonic() + limits.timeout + GRACE
                elif kind == "import_error":
                    worker.stop()
                    line = ev.get("line") or 0
                    outcome.error = _memory_hint(f"{display}:{line}: cannot import the file: {ev.get('message')}",
                                                 limits)
                    return outcome
                elif kind == "imported":
                    phase = "idle"
                elif kind == "start":
                    phase, current = "loss", ev["name"]
                    deadline = time.monotonic() + limits.timeout + GRACE
                elif kind == "result":
                    outcome.entries.append(ev["entry"])
                    remaining.remove(ev["entry"]["name"])
                    phase, current = "idle", None
                elif kind == "done":
                    finished = True
                    worker.stop()
                    break
                elif kind == "context_broken":   # the loss's result came first; the rest in a fresh worker
                    worker.stop()
                    outcome.restarts += 1
                    break
            if finished:
                break
        finally:
            if worker.proc.poll() is None:
                worker.stop()
            worker.close()
    return outcome


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _crashed(name: str, candidates: list[dict], code: str, cause: str, line: int, repro: dict,
             framework: str) -> dict:
    c = next(c for c in candidates if c["name"] == name)
    return {"name": name, "file": "", "line": c["line"], "kind": c["kind"], "framework": framework, "inputs": {},
            "context": [], "reference": None, "notes": list(c.get("notes") or []), "status": "fail",
            "checks": [{"check": "execution", "code": code, "status": "fail",
                        "message": f"checking it {cause}; the audit went on with the next loss",
                        "details": {"line": line} if line else {}, "repro": repro.get(name, "")}],
            "duration_s": 0.0}
