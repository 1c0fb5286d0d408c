"""Wall-clock timing for the benchmarks: a first call timed on its own (imports, allocations,
compilations), then repeated calls summarised by their median."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable


@dataclass
class Timing:
    """Seconds of one measured callable: ``first_s`` the first call, ``runs_s`` the repeated calls
    after it (empty when the callable was run only once, then ``median_s`` is the first call)."""
    first_s: float
    runs_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s) if self.runs_s else self.first_s

    @property
    def runs(self) -> int:
        return len(self.runs_s) or 1

    def as_dict(self) -> dict:
        return {**asdict(self), "median_s": self.median_s, "runs": self.runs}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def human(seconds: float | None) -> str:
    """A duration in the unit that keeps it short: 812 us, 3.4 ms, 2.71 s, 3 min 12 s."""
    if seconds is None:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120.0:
        return f"{seconds:.3g} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
