"""cProfile summaries for the benchmarks: own time per component of losscheck's stack (oracle,
hypothesis, framework, harness), then the top functions."""
from __future__ import annotations

import cProfile
import io
import pstats
from typing import Any, Callable

#: where a profiled function's own time is counted, by its file or (for C functions) its name;
#: the first match wins
COMPONENTS = (("/reference/", "oracle (reference/, NumPy float64)"),
              ("/hypothesis/", "hypothesis (drawing examples)"),
              ("/losscheck/strategies", "losscheck input strategies"),
              ("/losscheck/catalog/", "catalog (draw functions, spec calls)"),
              ("/losscheck/", "losscheck (properties, error model, engines, runner)"),
              ("/keras/", "keras"),
              ("tensorflow", "tensorflow"),
              ("/jax", "jax"),
              ("optax", "jax"),
              ("torch", "torch (forward, backward, tensor conversion)"),
              ("numpy", "NumPy functions (oracle, error model, conversions)"))
OTHER = "other (Python built-ins and standard library)"


def _component(path: str, name: str) -> str | None:
    where = f"{path} {name}"
    return next((label for needle, label in COMPONENTS if needle in where), None)


def time_by_component(stats: pstats.Stats) -> dict[str, float]:
    """Own time (seconds) per :data:`COMPONENTS`, largest first. A C function that no component
    names (``isinstance``, ``getattr``) counts for the component of the Python function that called
    it; NumPy ufuncs are not seen by cProfile at all, so their time counts in their caller."""
    out: dict[str, float] = {}

    def add(key, seconds):
        out[key] = out.get(key, 0.0) + seconds

    for (path, _line, name), (_cc, _nc, own, _cum, callers) in stats.stats.items():
        key = _component(path, name)
        if key is not None or path != "~":
            add(key or OTHER, own)
            continue
        for (c_path, _c_line, c_name), edge in callers.items():   # edge: (cc, nc, own time, cumulative)
            add((_component(c_path, c_name) if c_path != "~" else None) or OTHER, edge[2])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def profile(fn: Callable[[], Any], title: str, top: int = 15) -> str:
    """Run ``fn`` under cProfile: the share of own time per component, then the ``top`` functions
    by own time (profiling inflates Python-heavy code; compare shares, not totals)."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    parts = time_by_component(stats)
    total = sum(parts.values()) or 1.0
    lines = [f"{title}; own time by component:"]
    lines += [f"  {100 * sec / total:5.1f}%  {label}" for label, sec in parts.items()]
    stats.sort_stats("tottime").print_stats(top)
    return "\n".join(lines) + "\n\n" + buf.getvalue().strip()
