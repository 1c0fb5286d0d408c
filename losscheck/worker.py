"""Worker process: runs the checks of one process group and streams one JSON line per result.

Started by :func:`losscheck.runner.run` with ``KERAS_BACKEND`` set for its group; reads
``{"tasks": [...], "examples": N, "seed": S}`` on stdin.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    from . import catalog
    from .frameworks import get_runtime
    from .runner import Task, run_check

    request = json.loads(sys.stdin.read())
    out = sys.stdout
    seen = set()
    for raw in request["tasks"]:
        task = Task(**raw)
        if task.runtime not in seen:
            seen.add(task.runtime)
            try:
                versions = get_runtime(task.runtime, task.device).versions()
            except Exception as exc:  # report and let each check fail with the import error
                versions = {task.runtime: f"unavailable: {type(exc).__name__}: {exc}"}
            out.write(json.dumps({"type": "versions", "versions": versions}) + "\n")
        row = run_check(catalog.get(task.spec_id), task, examples=request["examples"], seed=request["seed"])
        out.write(json.dumps({"type": "row", "row": row}, default=str) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
