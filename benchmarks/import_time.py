"""Section 3: ``import losscheck`` time: the median wall time of ``python -c "import losscheck"``
minus that of ``python -c "pass"`` (runs interleaved, so machine load hits both alike), the
largest contributors from ``python -X importtime``, and which frameworks the import loaded
(none is the rule)."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "jaxlib", "optax")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def importtime_top(module: str = "losscheck", top: int = 8) -> list[dict]:
    """``module`` and the largest parts of its import (``-X importtime``, ms): the modules it
    imports that were not loaded by Python's startup already, by cumulative time."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    subtree: list[dict] = []
    for line in done.stderr.splitlines():   # "import time: self [us] | cumulative | <indent>name", post-order
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
        row = {"module": name.strip(), "depth": (len(name) - len(name.lstrip()) - 1) // 2,
               "self_ms": int(self_us) / 1e3, "cumulative_ms": int(cumulative_us) / 1e3}
        if row["depth"] == 0 and row["module"] != module:
            subtree = []
            continue
        subtree.append(row)
        if row["depth"] == 0:
            break
    return sorted(subtree, key=lambda r: -r["cumulative_ms"])[:top]


def frameworks_loaded(module: str = "losscheck") -> list[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return sorted({m.split(".")[0] for m in done.stdout.split()} & set(FRAMEWORKS))


def measure(runs: int = 10) -> dict:
    _wall("import losscheck")   # warm the file cache and __pycache__
    bare, loaded = [], []
    for _ in range(runs):
        bare.append(_wall("pass"))
        loaded.append(_wall("import losscheck"))
    return {"runs": runs, "python_pass_s": statistics.median(bare), "import_losscheck_s": statistics.median(loaded),
            "import_s": statistics.median(loaded) - statistics.median(bare),
            "importtime_top": importtime_top(), "frameworks_loaded": frameworks_loaded()}
