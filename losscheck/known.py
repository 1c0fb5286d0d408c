"""The catalog's recorded framework behaviour, as Markdown: documented deviations from the exact
mathematics, scoped expected failures and declared lower precision, each with its reason and link.
``docs/known-deviations.md`` is this output (a test keeps them equal)."""
from __future__ import annotations


def _scope(e) -> str:
    parts = [f"{k}={getattr(e, k)}" for k in ("property", "dtype", "runtime", "code") if getattr(e, k)]
    if e.when is not None:
        parts.append("on matching inputs")
    return ", ".join(parts) or "always"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _link(url: str) -> str:
    return f"[source]({url})" if url else ""


def rows(specs):
    """(id, kind, scope, reason, link) for every recorded behaviour of ``specs``."""
    out = []
    for s in specs:
        if s.deviation is not None:
            out.append((s.id, "deviation (V010)", "value", s.deviation.summary, s.deviation.link))
        for p in s.precision:
            where = ", ".join(p.runtimes) if p.runtimes else "every runtime"
            out.append((s.id, "precision (D001)", f"{p.dtype} computed as {p.effective} on {where}", p.reason,
                        p.link))
        for e in s.expected:
            out.append((s.id, "expected failure", _scope(e), e.reason, e.link))
    return out


def markdown(specs) -> str:
    lines = ["| loss | kind | scope | what the framework does | link |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{i}` | {k} | {_cell(sc)} | {_cell(r)} | {_link(u)} |" for i, k, sc, r, u in rows(specs)]
    return "\n".join(lines) + "\n"
