"""The one result model every report format is rendered from.

A :class:`ResultTable` is a tidy pandas DataFrame, one row per check (loss x runtime x property x
dtype x device) with the runner's row keys (status, code, error/bound in eps units, seed, input
shape, ...) plus ``versions`` (the packages the row's runtime ran on) and ``change`` (what changed
since the previous run, from the history), and the run's metadata (the JSON document without its
results). Its helpers give each section of the reports: status counts, the loss x runtime heat
map, error distributions per dtype, known deviations, failures, the cross-framework matrix (and, for a
`losscheck compare` document, its pairwise rows), CPU vs GPU pairs, compatibility rows and the trend
across nights.

pandas is imported when a table is built, never at import time.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

KEY = ("id", "runtime", "property", "dtype", "device")
ROW_KEYS = ("id", "framework", "runtime", "family", "reference", "property", "dtype", "device", "status", "code",
            "message", "error_eps", "bound_eps", "deviation_eps", "deviation_abs", "examples", "seed", "check_seed",
            "input", "params", "shape", "reason", "repro", "duration_s")
#: every status, worst first: a cell that aggregates several checks shows the worst
STATUS_ORDER = ("error", "fail", "xpass", "warn", "deviation", "xfail", "pass", "skip")
SEVERITY = {s: len(STATUS_ORDER) - i for i, s in enumerate(STATUS_ORDER)}
FAILING = ("fail", "xpass", "error")
KNOWN = ("deviation", "xfail")
RUNTIME_ORDER = ("torch", "jax", "keras-tensorflow", "keras-jax", "keras-torch")
PROPERTY_ORDER = ("value", "gradient", "batch", "numerics", "rank_mismatch", "compat", "device", "compiled")
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
_URL = re.compile(r"https?://[^\s()<>\"']+")


def _index(order: tuple, value) -> int:
    return order.index(value) if value in order else len(order)


def sort_key(row: dict) -> tuple:
    """Canonical row order (by id, then runtime, property, dtype, device): independent of how the
    checks were scheduled, sharded or merged."""
    return (row["id"], _index(RUNTIME_ORDER, row["runtime"]), row["runtime"], _index(PROPERTY_ORDER, row["property"]),
            row["property"], _index(DTYPE_ORDER, row["dtype"]), row["dtype"], row["device"])


def sort_rows(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=sort_key)


#: What every report says about a failing row, in this order: (row key, label). The renderers
#: format the values (HTML links the reason and codes the JSON; JUnit and the console print text).
FAILURE_FACTS = (("error_eps", "error"), ("params", "params"), ("input", "smallest input"),
                 ("reason", "known"), ("repro", "reproduce"))


def failure_facts(row: dict) -> list[tuple[str, str, object]]:
    """(key, label, value) of the facts a failing row has; the error fact's value is
    (error_eps, bound_eps)."""
    out = []
    for key, label in FAILURE_FACTS:
        value = row.get(key)
        if value is None or value == "":
            continue
        out.append((key, label, (value, row.get("bound_eps")) if key == "error_eps" else value))
    return out


def worst(statuses: Iterable[str]) -> str:
    """The most severe status of ``statuses`` ('' for none)."""
    statuses = list(statuses)
    return max(statuses, key=lambda s: SEVERITY.get(s, 0)) if statuses else ""


def base_reference(reference: str) -> str:
    """``classification.binary_cross_entropy(log_clamp=-100)`` -> ``classification.binary_cross_entropy``:
    the oracle function, without the framework semantics it is bound with."""
    return str(reference).split("(", 1)[0].strip()


def link_of(reason: str) -> str:
    """The first URL in an expected failure's or deviation's reason ('' when none)."""
    m = _URL.search(reason or "")
    return m.group(0).rstrip(".,;") if m else ""


def runtime_versions(runtime: str, versions: dict) -> str:
    """'keras 3.15.1, jax 0.10.2': the versions of the packages ``runtime`` ran on."""
    from ..frameworks import REQUIRES

    names = REQUIRES.get(runtime, (runtime,))
    return ", ".join(f"{n} {versions[n]}" for n in names if n in versions)


def change_label(key: tuple, changes: dict | None) -> str:
    return _change_index(changes).get(key, "")


def _change_index(changes: dict | None) -> dict[tuple, str]:
    out: dict[tuple, str] = {}
    if not changes:
        return out
    for k in changes.get("new_failures", ()):
        out[tuple(k[c] for c in KEY)] = "new failure"
    for k in changes.get("new_passes", ()):
        out[tuple(k[c] for c in KEY)] = "new pass"
    for d in changes.get("deviation_changes", ()):
        key = tuple(d[c] for c in KEY)
        out.setdefault(key, f"deviation {d['before']:.3g} -> {d['after']:.3g} eps")
    return out


class ResultTable:
    """Result rows plus run metadata (``meta``: the JSON document without ``results``)."""

    def __init__(self, frame: "pd.DataFrame", meta: dict):
        self.frame = frame
        self.meta = meta

    # ---- construction ------------------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[dict], meta: dict | None = None) -> "ResultTable":
        import pandas as pd

        meta = dict(meta or {})
        meta.pop("results", None)
        rows = sort_rows(dict(r) for r in rows)
        versions = meta.get("versions") or {}
        changes = _change_index(meta.get("changes"))
        for r in rows:
            for k in ROW_KEYS:
                r.setdefault(k, None)
            r["versions"] = runtime_versions(r["runtime"], versions)
            r["change"] = changes.get(tuple(r[k] for k in KEY), "")
        columns = list(ROW_KEYS) + ["versions", "change"]
        columns += sorted({k for r in rows for k in r} - set(columns))
        # object columns keep None as None (and nested inputs as they are); numeric views convert
        frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns},
                             columns=columns)
        return cls(frame, meta)

    @classmethod
    def from_document(cls, doc: dict) -> "ResultTable":
        return cls.from_rows(doc.get("results") or [], doc)

    def rows(self) -> list[dict]:
        """The rows as dicts, in the canonical order."""
        return self.frame.to_dict("records")

    def __len__(self) -> int:
        return len(self.frame)

    # ---- sections ---------------------------------------------------------------------------------

    def status_counts(self) -> dict[str, int]:
        """{status: count} in :data:`STATUS_ORDER`, statuses with no row left out."""
        counts = Counter(self.frame["status"]) if len(self.frame) else Counter()
        return {s: int(counts[s]) for s in STATUS_ORDER if counts.get(s)}

    def heatmap(self) -> "pd.DataFrame":
        """Loss id x runtime -> the worst status of that loss's checks on that runtime ('' when
        it did not run there)."""
        import pandas as pd

        if not len(self.frame):
            return pd.DataFrame()
        table = self.frame.pivot_table(index="id", columns="runtime", values="status", aggfunc=worst, fill_value="")
        cols = sorted(table.columns, key=lambda c: (_index(RUNTIME_ORDER, c), c))
        return table[cols]

    def heatmap_detail(self) -> "pd.DataFrame":
        """Loss id x runtime -> 'pass 10, fail 2': the status counts behind each heat-map cell."""
        import pandas as pd

        if not len(self.frame):
            return pd.DataFrame()

        def describe(statuses):
            c = Counter(statuses)
            return ", ".join(f"{s} {c[s]}" for s in STATUS_ORDER if c.get(s))
        table = self.frame.pivot_table(index="id", columns="runtime", values="status", aggfunc=describe,
                                       fill_value="")
        return table[self.heatmap().columns]

    def error_distributions(self) -> dict[str, dict[str, list[float]]]:
        """dtype -> property -> the measured errors (eps units, finite) of the checks that measured one."""
        out: dict[str, dict[str, list[float]]] = {}
        for r in self.rows():
            e = r.get("error_eps")
            if e is None or r["status"] == "skip" or not _is_finite(e):
                continue
            out.setdefault(r["dtype"], {}).setdefault(r["property"], []).append(float(e))
        order = sorted(out, key=lambda d: _index(DTYPE_ORDER, d))
        return {d: out[d] for d in order}

    def bounds(self) -> dict[str, float]:
        """dtype -> the median bound (eps units) of its checks: the reference line of the plots."""
        import numpy as np

        out: dict[str, list[float]] = {}
        for r in self.rows():
            if r.get("bound_eps") is not None and _is_finite(r["bound_eps"]):
                out.setdefault(r["dtype"], []).append(float(r["bound_eps"]))
        return {d: float(np.median(v)) for d, v in out.items()}

    def known_deviations(self) -> list[dict]:
        """Rows with status deviation or xfail, each with ``link`` (the first URL of its reason)."""
        rows = [r for r in self.rows() if r["status"] in KNOWN]
        for r in rows:
            r["link"] = link_of(r.get("reason") or "")
        return rows

    def failures(self) -> list[dict]:
        """Rows with a failing status (fail, xpass, error), new failures first."""
        rows = [r for r in self.rows() if r["status"] in FAILING]
        return sorted(rows, key=lambda r: (r.get("change") != "new failure", sort_key(r)))

    def warnings(self) -> list[dict]:
        return [r for r in self.rows() if r["status"] == "warn"]

    def cross_framework(self) -> "pd.DataFrame":
        """Oracle function x runtime -> the worst status of every spec bound to that function on
        that runtime, for the functions checked on at least two runtimes."""
        import pandas as pd

        if not len(self.frame):
            return pd.DataFrame()
        frame = self.frame.assign(oracle=self.frame["reference"].map(base_reference))
        frame = frame[frame["status"] != "skip"]
        if not len(frame):
            return pd.DataFrame()
        spread = frame.groupby("oracle")["runtime"].nunique()
        frame = frame[frame["oracle"].isin(spread[spread >= 2].index)]
        if not len(frame):
            return pd.DataFrame()
        table = frame.pivot_table(index="oracle", columns="runtime", values="status", aggfunc=worst, fill_value="")
        cols = sorted(table.columns, key=lambda c: (_index(RUNTIME_ORDER, c), c))
        return table[cols]

    def comparison(self) -> list[dict]:
        """The pairwise rows of a `losscheck compare` document carried in the metadata
        (``meta["comparison"]``), aggregated by :func:`aggregate_pairs`; [] when there is none."""
        comparison = self.meta.get("comparison") or {}
        return aggregate_pairs(comparison.get("pairs") or [])

    def devices(self) -> list[str]:
        return sorted(set(self.frame["device"])) if len(self.frame) else []

    def has_gpu(self) -> bool:
        return any(str(d).startswith("cuda") for d in self.devices())

    def device_pairs(self) -> "pd.DataFrame":
        """Checks that ran on CPU and on a GPU: id, runtime, property, dtype, error_cpu, error_gpu,
        status_cpu, status_gpu (one row per pair with both errors measured)."""
        import pandas as pd

        cols = ["id", "runtime", "property", "dtype", "error_eps", "status"]
        f = self.frame
        if not len(f):
            return pd.DataFrame(columns=["id", "runtime", "property", "dtype", "error_cpu", "error_gpu"])
        cpu = f[f["device"] == "cpu"][cols]
        gpu = f[f["device"].astype(str).str.startswith("cuda")][cols + ["device"]]
        pairs = cpu.merge(gpu, on=["id", "runtime", "property", "dtype"], suffixes=("_cpu", "_gpu"))
        return pairs.rename(columns={"error_eps_cpu": "error_cpu", "error_eps_gpu": "error_gpu"})

    def compat_rows(self) -> list[dict]:
        """Rows of the compat property that carry the activation table (``compat``)."""
        return [r for r in self.rows() if r["property"] == "compat" and isinstance(r.get("compat"), list)]

    def changes(self) -> dict:
        return self.meta.get("changes") or {}

    def trend(self) -> list[dict]:
        return list(self.meta.get("trend") or [])


#: causes of a cross-framework disagreement, most severe first (losscheck.compare.pairs.CAUSES)
COMPARE_CAUSES = ("implementation bug", "known issue", "reduction differs", "documented semantics differ",
                  "input conversion", "documented precision", "agree")


def aggregate_pairs(pairs: Iterable[dict]) -> list[dict]:
    """`losscheck compare` pairs aggregated by (loss group, member a, member b, verdict), most
    severe verdict first: the runtime pairs and dtypes it holds for, examples compared, how many of
    them disagree, the largest value and gradient errors and bounds (eps), and the explanation and
    example of the smallest disagreement found (``detail``, ``example``; empty for agreeing pairs)."""
    out: dict[tuple, dict] = {}
    for p in pairs:
        key = (p["group"], p["a"]["member"], p["b"]["member"], p["verdict"])
        row = out.setdefault(key, {"group": key[0], "a": key[1], "b": key[2], "verdict": key[3], "runtimes": [],
                                   "dtypes": [], "pairs": 0, "examples": 0, "disagree": 0, "value_eps": 0.0,
                                   "gradient_eps": 0.0, "value_bound": 0.0, "gradient_bound": 0.0,
                                   "detail": "", "example": None, "kind": "", "_size": None})
        rt = f"{p['a']['runtime']} vs {p['b']['runtime']}"
        if rt not in row["runtimes"]:
            row["runtimes"].append(rt)
        if p["dtype"] not in row["dtypes"]:
            row["dtypes"].append(p["dtype"])
        row["pairs"] += 1
        row["examples"] += int(p.get("examples") or 0)
        for kind in ("value", "gradient"):
            part = p.get(kind) or {}
            row[f"{kind}_eps"] = max(row[f"{kind}_eps"], float(part.get("max_error_eps") or 0.0))
            row[f"{kind}_bound"] = max(row[f"{kind}_bound"], float(part.get("bound_eps") or 0.0))
        found = [f for f in p.get("findings", []) if f["cause"] == p["verdict"]]
        row["disagree"] += max((f["count"] for f in found), default=0)
        for f in found:
            size = _example_size(f.get("example"))
            if row["_size"] is None or size < row["_size"]:
                row.update(_size=size, detail=f.get("detail", ""), example=f.get("example"), kind=f["kind"])
    rows = list(out.values())
    for r in rows:
        r.pop("_size")
    order = {c: i for i, c in enumerate(COMPARE_CAUSES)}
    return sorted(rows, key=lambda r: (order.get(r["verdict"], len(order)), r["group"], r["a"], r["b"]))


def _example_size(example) -> tuple:
    """(elements, index) of an example's inputs: smaller is simpler."""
    if not example:
        return (0, 0)

    def count(x):
        return sum(count(v) for v in x) if isinstance(x, list) else 1
    return (sum(count(v) for v in (example.get("inputs") or {}).values()), example.get("index", 0))


def _is_finite(x) -> bool:
    import math

    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
