"""Framework thread pools for the benchmarks.

On a small machine shared with other processes, a framework's intra-op thread pool turns every
small call into a cross-thread handoff that waits for the scheduler (BENCHMARKS.md has the
measured cost). losscheck's runner already runs one worker process per core, so the benchmarks pin
each framework to ``n`` threads (``--threads``, default 1) and say so; ``n = 0`` leaves every
framework's default.
"""
from __future__ import annotations

import os


#: the environment variables :func:`env` sets
VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


def env(n: int) -> dict[str, str]:
    """Environment variables that must be set before the frameworks load (XLA reads its flags
    once, at backend initialisation)."""
    if n <= 0:
        return {}
    return {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n),
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"}


def apply(n: int, *, tensorflow: bool = False) -> None:
    """Pin torch (and TensorFlow, when asked: importing it takes seconds) to ``n`` threads in this
    process; call before the first framework operation."""
    if n <= 0:
        return
    os.environ.update(env(n))
    import torch

    torch.set_num_threads(n)
    if tensorflow:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)


def child_env(n: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) without this module's variables, then :func:`env` of ``n``:
    a child asked for the frameworks' defaults (``n = 0``) must not inherit the parent's pinning."""
    base = dict(os.environ if base is None else base)
    return {**{k: v for k, v in base.items() if k not in VARIABLES}, **env(n)}


def in_process() -> dict[str, object]:
    """The thread settings of the frameworks this process has loaded (nothing is imported)."""
    import sys

    out: dict[str, object] = {k: os.environ[k] for k in VARIABLES if k in os.environ}
    if "torch" in sys.modules:
        out["torch.get_num_threads"] = sys.modules["torch"].get_num_threads()
    if "tensorflow" in sys.modules:
        threading = sys.modules["tensorflow"].config.threading
        out["tensorflow intra/inter op (0: default)"] = [threading.get_intra_op_parallelism_threads(),
                                                         threading.get_inter_op_parallelism_threads()]
    return out
