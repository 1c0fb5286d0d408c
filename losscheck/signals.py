"""SIGINT and SIGTERM during a run (``check``, ``nightly``, ``audit``): stop the work, not the
process, so that the report of what finished is still written."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None]):
    """In the main thread, SIGINT and SIGTERM call ``stop(reason)`` instead of ending the process; a
    second SIGINT raises KeyboardInterrupt. Yields a list that holds the signal's name once one came
    (elsewhere than in the main thread, signals are left alone and the list stays empty)."""
    got: list[str] = []

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if got and signum == signal.SIGINT:
            raise KeyboardInterrupt
        got.append(name)
        stop(f"the run was interrupted ({name})")

    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def exit_status(name: str) -> int:
    """128 + the signal's number, as a shell reports a command the signal ended (130, 143)."""
    return 128 + int(signal.Signals[name])
