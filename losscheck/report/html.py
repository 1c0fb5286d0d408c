"""One self-contained HTML report: inline CSS, a few lines of inline JavaScript, plots as inline SVG
(matplotlib, Agg backend). It makes no network request.

Sections (stable ids): ``summary``, ``heatmap`` (loss x runtime, coloured by the worst status),
``errors`` (error distributions in eps units per dtype), ``devices`` (CPU vs GPU errors, when a GPU
ran), ``matrix`` (the same oracle function checked on several runtimes, and the pairwise agreement
table of a `losscheck compare` document), ``compat`` (activation/loss
compatibility), ``deviations`` (known deviations and expected failures, with their explanation),
``failures`` (each with its smallest input and reproducer), ``trend`` (status counts across the
runs in the history). Every string that comes from a row or the metadata is escaped.
"""
from __future__ import annotations

import html
import io
import json
import math
import re
from typing import Iterable

from .table import FAILING, STATUS_ORDER, ResultTable, failure_facts

COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "deviation": "#ef8f00", "xfail": "#0288d1", "skip": "#9e9e9e",
           "fail": "#c62828", "xpass": "#8e24aa", "error": "#6d0000", "": "#ffffff"}
SECTIONS = (("summary", "Summary"), ("heatmap", "Heat map"), ("errors", "Error distributions"),
            ("devices", "CPU vs GPU"), ("matrix", "Cross-framework matrix"), ("compat", "Compatibility"),
            ("deviations", "Known deviations"), ("failures", "Failures"), ("trend", "Trend"))
#: reproducer scripts shown inline up to this many characters each
MAX_INLINE_SCRIPT = 60_000


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _link(url: str, text: str | None = None) -> str:
    """An anchor only for http(s) URLs; anything else is shown as text."""
    if not url or not re.match(r"^https?://", url):
        return esc(text or url)
    return f'<a href="{esc(url)}" rel="noreferrer">{esc(text or url)}</a>'


def _reason_html(reason: str) -> str:
    """The reason text, with its URLs as links and the rest escaped."""
    out, last = [], 0
    for m in re.finditer(r"https?://[^\s()<>\"']+", reason or ""):
        url = m.group(0).rstrip(".,;")
        out.append(esc(reason[last:m.start()]))
        out.append(_link(url))
        last = m.start() + len(url)
    out.append(esc((reason or "")[last:]))
    return "".join(out)


def _eps(x) -> str:
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf"
    return f"{v:,.3g}"


def _json(x, limit: int = 4000) -> str:
    text = json.dumps(x, default=str)
    return text if len(text) <= limit else text[:limit] + " ..."


def _badge(status: str) -> str:
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


# ---- plots ------------------------------------------------------------------------------------------

def _svg(fig, name: str) -> str:
    """The figure as an inline <svg> whose ids are prefixed with ``name`` (several plots share a page)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{name}-{m.group(1)}"', text)
    return f'<div class="plot" role="img" aria-label="{esc(name)}">{text}</div>'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "losscheck", "font.size": 9})
    return plt


def error_plot(distributions: dict[str, dict[str, list[float]]], bounds: dict[str, float]) -> str:
    """Histograms of log10(error in eps) per dtype, one colour per property, the median bound dashed."""
    import numpy as np

    plt = _pyplot()
    dtypes = list(distributions)
    fig, axes = plt.subplots(1, len(dtypes), figsize=(4.2 * len(dtypes), 3.0), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        per_prop = distributions[dtype]
        floor = 1e-2   # exact agreement (0 eps) is drawn at the floor
        data = {p: np.log10(np.maximum(np.asarray(v, dtype=float), floor)) for p, v in per_prop.items()}
        hi = max([float(np.max(v)) for v in data.values()] + [math.log10(bounds.get(dtype, 100.0)) + 0.5])
        bins = np.linspace(math.log10(floor), max(hi, 1.0) + 0.25, 30)
        ax.hist(list(data.values()), bins=bins, label=list(data), stacked=True)
        if dtype in bounds:
            ax.axvline(math.log10(bounds[dtype]), color="k", linestyle="--", linewidth=1,
                       label=f"bound ~{bounds[dtype]:.0f} eps")
        ax.set_title(f"{dtype}: {sum(len(v) for v in per_prop.values())} checks")
        ax.set_xlabel("log10(max error / eps); 0 eps drawn at -2")
        ax.set_ylabel("checks")
        ax.legend(fontsize=7)
    return _svg(fig, "errors")


def device_plot(pairs) -> str:
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    x = np.maximum(pairs["error_cpu"].astype(float).to_numpy(), 1e-2)
    y = np.maximum(pairs["error_gpu"].astype(float).to_numpy(), 1e-2)
    colours = [COLOURS.get(s, "#000") for s in pairs["status_gpu"]]
    ax.scatter(x, y, c=colours, s=12)
    lim = [1e-2, max(10.0, float(np.max(np.concatenate([x, y]))) * 2)]
    ax.plot(lim, lim, color="k", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("CPU error (eps)")
    ax.set_ylabel("GPU error (eps)")
    ax.set_title(f"{len(pairs)} checks on both devices")
    return _svg(fig, "devices")


def trend_plot(trend: list[dict]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 2.8))
    xs = list(range(len(trend)))
    groups = {"failing": FAILING, "pass": ("pass",), "known": ("deviation", "xfail"), "warn": ("warn",)}
    colour = {"failing": COLOURS["fail"], "pass": COLOURS["pass"], "known": COLOURS["deviation"],
              "warn": COLOURS["warn"]}
    for label, statuses in groups.items():
        ys = [sum(t["counts"].get(s, 0) for s in statuses) for t in trend]
        ax.plot(xs, ys, marker="o", markersize=3, label=label, color=colour[label])
    ax.set_xticks(xs)
    ax.set_xticklabels([str(t.get("created", ""))[:10] for t in trend], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("checks")
    ax.legend(fontsize=7)
    return _svg(fig, "trend")


# ---- sections ---------------------------------------------------------------------------------------

def _summary(t: ResultTable) -> str:
    meta = t.meta
    counts = t.status_counts()
    items = "".join(f'<li>{_badge(s)} <b>{counts[s]}</b></li>' for s in STATUS_ORDER if s in counts)
    versions = ", ".join(f"{esc(k)} {esc(v)}" for k, v in sorted((meta.get("versions") or {}).items()))
    machine = meta.get("machine") or {}
    git = meta.get("git") or {}
    sel = meta.get("selection") or {}
    gpus = ", ".join(esc(g) for g in machine.get("gpus") or []) or "none"
    facts = [("created", esc(meta.get("created"))), ("checks", str(len(t))),
             ("seed / examples", f"{esc(meta.get('seed'))} / {esc(meta.get('examples'))}"),
             ("versions", versions or "-"),
             ("machine", f"{esc(machine.get('platform'))}, Python {esc(machine.get('python'))}, "
                         f"{esc(machine.get('cpu_count'))} CPUs, GPUs: {gpus}"),
             ("commit", f"{esc(git.get('commit', '-'))}{' (modified)' if git.get('dirty') else ''}")]
    if sel.get("shard"):
        facts.append(("shard", esc(sel["shard"])))
    if meta.get("command"):
        facts.append(("command", f"<code>{esc(' '.join(map(str, meta['command'])))}</code>"))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    changes = meta.get("changes")
    if changes is None:
        change_text = "<p>No history was used: every failure counts as new.</p>"
    elif not changes.get("previous_runs"):
        change_text = (f"<p>No earlier results in the history: all {esc(changes.get('first_seen', 0))} checks are "
                       "seen for the first time, so every failure counts as new.</p>")
    else:
        change_text = (f"<p>Since the previous run: <b>{len(changes.get('new_failures', []))}</b> new failures, "
                       f"<b>{len(changes.get('new_passes', []))}</b> new passes, "
                       f"<b>{len(changes.get('deviation_changes', []))}</b> deviations changed by more than 2x "
                       f"({esc(changes.get('first_seen', 0))} checks had no earlier result).</p>")
        items_ = []
        for label, keys in (("new failure", changes.get("new_failures", [])),
                            ("new pass", changes.get("new_passes", []))):
            items_ += [f"<li>{esc(label)}: <code>{esc(k['id'])}</code> [{esc(k['runtime'])}, {esc(k['property'])}, "
                       f"{esc(k['dtype'])}, {esc(k['device'])}]</li>" for k in keys[:100]]
        items_ += [f"<li>deviation {_eps(d['before'])} &rarr; {_eps(d['after'])} eps: <code>{esc(d['id'])}</code> "
                   f"[{esc(d['runtime'])}, {esc(d['property'])}, {esc(d['dtype'])}]</li>"
                   for d in changes.get("deviation_changes", [])[:100]]
        if items_:
            change_text += f"<ul class='changes'>{''.join(items_)}</ul>"
    return (f'<section id="summary"><h2>Summary</h2><ul class="counts">{items}</ul>'
            f'<table class="facts">{rows}</table>{change_text}</section>')


def _status_grid(table, detail=None, caption: str = "") -> str:
    """A pivot of statuses as an HTML table with coloured cells."""
    if table is None or not len(table):
        return "<p>No checks.</p>"
    cols = list(table.columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for idx, row in table.iterrows():
        cells = []
        for c in cols:
            status = row[c]
            title = detail.loc[idx, c] if detail is not None else status
            cells.append(f'<td class="cell s-{esc(status)}" title="{esc(title)}">{esc(status)}</td>')
        body.append(f'<tr data-filter="{esc(str(idx).lower())}"><th class="rowhead">{esc(idx)}</th>'
                    f'{"".join(cells)}</tr>')
    return (f"<table class='grid'><caption>{esc(caption)}</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _legend() -> str:
    return "<p class='legend'>" + " ".join(_badge(s) for s in STATUS_ORDER) + "</p>"


def _heatmap(t: ResultTable) -> str:
    grid = _status_grid(t.heatmap(), t.heatmap_detail(), "worst status of each loss on each runtime (hover: counts)")
    return (f'<section id="heatmap"><h2>Heat map: loss x implementation</h2>{_legend()}'
            '<p><input type="search" class="filter" data-target="heatmap-grid" placeholder="filter losses"'
            ' aria-label="filter losses"></p>'
            f'<div id="heatmap-grid" class="scroll">{grid}</div></section>')


def _errors(t: ResultTable) -> str:
    dist = t.error_distributions()
    if not dist:
        body = "<p>No check measured an error.</p>"
    else:
        body = error_plot(dist, t.bounds())
        import numpy as np

        rows = []
        for dtype, per_prop in dist.items():
            for prop, values in per_prop.items():
                v = np.asarray(values, dtype=float)
                rows.append(f"<tr><td>{esc(dtype)}</td><td>{esc(prop)}</td><td>{len(v)}</td>"
                            f"<td>{_eps(np.median(v))}</td><td>{_eps(np.percentile(v, 99))}</td>"
                            f"<td>{_eps(np.max(v))}</td></tr>")
        body += ("<table class='data'><thead><tr><th>dtype</th><th>property</th><th>checks</th><th>median eps</th>"
                 f"<th>99th percentile</th><th>max</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return f'<section id="errors"><h2>Error distributions (eps units, per dtype)</h2>{body}</section>'


def _devices(t: ResultTable) -> str:
    if not t.has_gpu():
        return '<section id="devices"><h2>CPU vs GPU</h2><p class="nogpu">No GPU in this run.</p></section>'
    pairs = t.device_pairs()
    pairs = pairs[pairs["error_cpu"].notna() & pairs["error_gpu"].notna()]
    if not len(pairs):
        body = "<p>A GPU ran, but no check measured an error on both devices.</p>"
    else:
        body = device_plot(pairs)
        differ = pairs[pairs["status_cpu"] != pairs["status_gpu"]]
        if len(differ):
            rows = "".join(f"<tr><td><code>{esc(r.id)}</code></td><td>{esc(r.runtime)}</td><td>{esc(r.property)}</td>"
                           f"<td>{esc(r.dtype)}</td><td>{_badge(r.status_cpu)}</td><td>{_badge(r.status_gpu)}</td></tr>"
                           for r in differ.itertuples())
            body += ("<h3>Checks whose status differs between devices</h3><table class='data'><thead><tr><th>loss</th>"
                     "<th>runtime</th><th>property</th><th>dtype</th><th>CPU</th><th>GPU</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return f'<section id="devices"><h2>CPU vs GPU</h2>{body}</section>'


#: the status colour of each `losscheck compare` verdict
VERDICT_STATUS = {"implementation bug": "fail", "known issue": "xfail", "reduction differs": "deviation",
                  "documented semantics differ": "deviation", "input conversion": "deviation",
                  "documented precision": "deviation", "agree": "pass"}


def _matrix(t: ResultTable) -> str:
    m = t.cross_framework()
    pairs = t.comparison()
    parts = []
    if len(m):
        parts.append(_legend() + _status_grid(m, caption="worst status per oracle function (framework semantics "
                                                         "stripped) and runtime"))
    if pairs:
        parts.append(_pairwise(t, pairs))
    body = "".join(parts) or "<p>No oracle function was checked on more than one runtime.</p>"
    return f'<section id="matrix"><h2>Cross-framework matrix</h2>{body}</section>'


def _pairwise(t: ResultTable, rows: list[dict]) -> str:
    """The `losscheck compare` table: the same inputs through every pair of implementations."""
    comparison = t.meta.get("comparison") or {}
    counts = ", ".join(f"{esc(k)} {int(v)}" for k, v in (comparison.get("summary") or {}).items())
    trs = []
    for r in rows:
        status = VERDICT_STATUS.get(r["verdict"], "error")
        example = r.get("example") or {}
        shown = ""
        if example:
            shown = (f"<details><summary>smallest input ({esc(r.get('kind'))})</summary><code>"
                     f"{esc(_json({k: example.get(k) for k in ('inputs', 'params', 'a', 'b') if k in example}))}"
                     "</code></details>")
        trs.append(
            f'<tr data-filter="{esc((r["group"] + " " + r["a"] + " " + r["b"]).lower())}"><td>{esc(r["group"])}</td>'
            f"<td><code>{esc(r['a'])}</code></td><td><code>{esc(r['b'])}</code></td>"
            f"<td>{esc('; '.join(r['runtimes']))}</td><td>{esc(', '.join(r['dtypes']))}</td>"
            f'<td><span class="badge s-{esc(status)}">{esc(r["verdict"])}</span></td>'
            f"<td>{int(r['disagree'])} / {int(r['examples'])}</td>"
            f"<td>{_eps(r['value_eps'])} ({_eps(r['value_bound'])})</td>"
            f"<td>{_eps(r['gradient_eps'])} ({_eps(r['gradient_bound'])})</td>"
            f"<td>{esc(r.get('detail'))}{shown}</td></tr>")
    return ("<h3>Pairwise agreement on common inputs (<code>losscheck compare</code>)</h3>"
            f"<p>{esc(comparison.get('examples'))} examples per pair, seed {esc(comparison.get('seed'))}; "
            f"pairs by verdict: {counts or '-'}. Errors in eps units (bound in parentheses); a verdict other than "
            "agree gives the cause of the smallest disagreeing example.</p>"
            '<p><input type="search" class="filter" data-target="pairwise-table" placeholder="filter pairs"'
            ' aria-label="filter pairs"></p>'
            "<div id='pairwise-table' class='scroll'><table class='data'><thead><tr><th>loss</th><th>implementation"
            "</th><th>implementation</th><th>runtimes</th><th>dtypes</th><th>verdict</th><th>disagreeing examples"
            "</th><th>value eps</th><th>gradient eps</th><th>cause</th></tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table></div>")


def _compat(t: ResultTable) -> str:
    from ..compat import ACTIVATIONS

    rows = t.compat_rows()
    if not rows:
        return ('<section id="compat"><h2>Activation/loss compatibility</h2>'
                '<p>The compat property did not run (or no loss here takes activated scores).</p></section>')
    head = "".join(f"<th>{esc(a)}</th>" for a in ACTIVATIONS)
    body = []
    for r in rows:
        for entry in r["compat"]:
            setting = ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items()) or "default"
            effects = {e["activation"]: e for e in entry.get("effects", [])}
            cells = []
            for a in ACTIVATIONS:
                e = effects.get(a)
                if e is None:
                    cells.append("<td></td>")
                    continue
                text = "documented" if a == entry.get("expects") else e.get("effect", "")
                cells.append(f'<td class="v-{esc(e.get("verdict"))}" title="{esc(e.get("code"))}">'
                             f'<b>{esc(e.get("verdict"))}</b> {esc(text)}</td>')
            body.append(f"<tr><td><code>{esc(r['id'])}</code></td><td>{esc(r['runtime'])}</td><td>{esc(setting)}</td>"
                        f"{''.join(cells)}</tr>")
    return ('<section id="compat"><h2>Activation/loss compatibility</h2>'
            "<p>Each loss fed activation(z) for each common last activation: ok (documented or equivalent), "
            "warn (A002 floor / A003 gradient attenuation), wrong (A004).</p>"
            f"<div class='scroll'><table class='data'><thead><tr><th>loss</th><th>runtime</th><th>setting</th>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>")


def _deviations(t: ResultTable) -> str:
    rows = t.known_deviations()
    if not rows:
        body = "<p>No known deviation or expected failure was met.</p>"
    else:
        trs = []
        for r in rows:
            size = f"{_eps(r.get('deviation_eps'))} eps" if r.get("deviation_eps") is not None else ""
            trs.append(f"<tr><td><code>{esc(r['id'])}</code></td><td>{esc(r['runtime'])}</td><td>{esc(r['property'])}"
                       f"</td><td>{esc(r['dtype'])}</td><td>{_badge(r['status'])}</td><td>{esc(r.get('code'))}</td>"
                       f"<td>{esc(size)}</td><td>{esc(r.get('message'))}</td>"
                       f"<td>{_reason_html(r.get('reason') or '')}{_repro_note(r)}</td></tr>")
        body = ("<p>Documented framework semantics that differ from the exact loss (deviation) and known framework "
                "behaviour inside the scope of a recorded expected failure (xfail).</p><div class='scroll'>"
                "<table class='data'><thead><tr><th>loss</th><th>runtime</th><th>property</th><th>dtype</th>"
                "<th>status</th><th>code</th><th>size</th><th>what was measured</th><th>explanation</th></tr></thead>"
                f"<tbody>{''.join(trs)}</tbody></table></div>")
    return f'<section id="deviations"><h2>Known deviations</h2>{body}</section>'


def _repro_note(row: dict) -> str:
    return f"<br>reproducer: <code>{esc(row['repro_script'])}</code>" if row.get("repro_script") else ""


def _failure_fact(key: str, label: str, value) -> str:
    if key == "error_eps":
        return f"error {_eps(value[0])} eps, bound {_eps(value[1])} eps"
    if key == "reason":
        return f"{label}: {_reason_html(value)}"
    return f"{label}: <code>{esc(value if key == 'repro' else _json(value))}</code>"


def _failures(t: ResultTable, scripts: dict[str, str]) -> str:
    rows = t.failures()
    if not rows:
        return '<section id="failures"><h2>Failures</h2><p>No failures.</p></section>'
    items = []
    for r in rows:
        new = ' <span class="new">new</span>' if r.get("change") == "new failure" else ""
        parts = [f"<p>{esc(r.get('code'))} {esc(r.get('message'))}</p>"]
        parts += [f"<p>{_failure_fact(key, label, value)}</p>" for key, label, value in failure_facts(r)]
        if r.get("traceback"):
            parts.append(f"<pre>{esc(r['traceback'])}</pre>")
        script_name = r.get("repro_script")
        if script_name:
            text = scripts.get(str(script_name).rsplit("/", 1)[-1], "")
            parts.append(f"<p>reproducer: <code>{esc(script_name)}</code> (NumPy and the framework only)</p>")
            if text:
                shown = text if len(text) <= MAX_INLINE_SCRIPT else text[:MAX_INLINE_SCRIPT] + "\n# ... (cut)"
                parts.append(f"<details><summary>script</summary><pre class='script'>{esc(shown)}</pre></details>")
        title = (f"{_badge(r['status'])} <code>{esc(r['id'])}</code> [{esc(r['runtime'])}, {esc(r['property'])}, "
                 f"{esc(r['dtype'])}, {esc(r['device'])}] {esc(r.get('code'))}{new}")
        items.append(f'<details class="failure" data-filter="{esc(str(r["id"]).lower())}"><summary>{title}</summary>'
                     f"{''.join(parts)}</details>")
    return (f'<section id="failures"><h2>Failures ({len(rows)})</h2>'
            '<p><input type="search" class="filter" data-target="failure-list" placeholder="filter failures"'
            ' aria-label="filter failures"></p>'
            f'<div id="failure-list">{"".join(items)}</div></section>')


def _trend(t: ResultTable) -> str:
    trend = t.trend()
    if not trend:
        return '<section id="trend"><h2>Trend across nights</h2><p>No history for this report.</p></section>'
    rows = "".join(
        f"<tr><td>{esc(x.get('created'))}</td><td>{esc(x.get('shard') or '')}</td>"
        f"<td>{esc((x.get('git_commit') or '')[:12])}</td>"
        + "".join(f"<td>{int(x['counts'].get(s, 0))}</td>" for s in STATUS_ORDER) + "</tr>"
        for x in reversed(trend))
    head = "".join(f"<th>{s}</th>" for s in STATUS_ORDER)
    return (f'<section id="trend"><h2>Trend across nights</h2>{trend_plot(trend)}'
            f"<div class='scroll'><table class='data'><thead><tr><th>run</th><th>shard</th><th>commit</th>{head}</tr>"
            f"</thead><tbody>{rows}</tbody></table></div></section>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 20px}
header h1{margin:0;font-size:20px}
nav{padding:6px 20px;background:#eceff1;position:sticky;top:0;z-index:2}
nav a{margin-right:12px;color:#263238}
section{background:#fff;margin:14px 20px;padding:10px 16px;border-radius:6px;box-shadow:0 1px 2px rgba(0,0,0,.1)}
h2{font-size:17px;margin:6px 0 10px}
table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
table.facts th{background:#f5f5f5}
table.grid td.cell{min-width:70px;text-align:center;color:#fff}
table.grid th.rowhead{font-family:monospace;font-weight:normal;white-space:nowrap}
.scroll{max-height:640px;overflow:auto}
.badge{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px}
ul.counts{list-style:none;padding:0;display:flex;gap:14px;flex-wrap:wrap}
.new{background:#c62828;color:#fff;border-radius:6px;padding:0 5px;font-size:11px}
details.failure{border-left:4px solid #c62828;margin:6px 0;padding:4px 8px;background:#fff8f8}
pre{background:#f5f5f5;padding:6px;overflow:auto;max-height:420px;font-size:11px}
code{font-size:12px}
td.v-ok{background:#e8f5e9}td.v-warn{background:#fff8e1}td.v-wrong{background:#ffebee}
.plot svg{max-width:100%;height:auto}
""" + "".join(f".s-{s}{{background:{c}}}" for s, c in COLOURS.items() if s) + "td.s-{background:#fff}"

_JS = """
(function () {
  'use strict';
  var inputs = document.querySelectorAll('input.filter');
  Array.prototype.forEach.call(inputs, function (input) {
    input.addEventListener('input', function () {
      var target = document.getElementById(input.getAttribute('data-target'));
      if (!target) { return; }
      var needle = input.value.toLowerCase();
      Array.prototype.forEach.call(target.querySelectorAll('[data-filter]'), function (el) {
        el.style.display = el.getAttribute('data-filter').indexOf(needle) === -1 ? 'none' : '';
      });
    });
  });
}());
"""


def render(table: ResultTable, scripts: dict[str, str] | None = None, *, title: str = "losscheck report") -> str:
    """The report page. ``scripts``: reproducer file name -> text, shown with each failure."""
    scripts = scripts or {}
    nav = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name in SECTIONS)
    sections: Iterable[str] = (_summary(table), _heatmap(table), _errors(table), _devices(table), _matrix(table),
                               _compat(table), _deviations(table), _failures(table, scripts), _trend(table))
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1></header><nav>{nav}</nav><main>{''.join(sections)}</main>"
            f"<script>{_JS}</script></body></html>\n")
