"""The summary report: one self-contained HTML page, one section per (method, dataset) run.

Each section leads with ONE table: the method, its baselines and, where one exists for that
dataset, the published or reference figure (rows) against the few metrics that matter
(columns), with the targets marked met or not below it. Details (per cell type, per
resolution, timings, everything else ``metrics.json`` holds) follow in collapsible
``<details>`` blocks, then the figures (PNG embedded as base64, so the page opens offline).

Numbers shown are exactly those of the JSON files (4 significant digits, :func:`format_value`).
A ``metrics.json`` whose structure is not the expected one is shown generically inside a
``<details>`` block instead of a lead table; the page never fails on unexpected content.

Input (built by the summary node)::

    build_report(runs, descriptions, title)

``runs``: one dict per (method, dataset) of the run: ``{"method", "dataset", "metrics"
(dict or None = not run), "data" (what the data was, see :func:`render_data`), "figures"
({name: PNG bytes}), "extras" ({name: dict}, other JSON outputs such as timings)}``.
``descriptions``: ``report.methods`` of ``conf/base/parameters/reporting.yml``: per method
``title``, ``task``, ``baselines``, ``context`` and ``references`` (dataset name → one
reference or a list of them: ``text``, ``source`` and optional ``rows`` of ``{label,
values}`` keyed like the lead table's columns). A reference appears only in the section of
its dataset.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9;line-height:1.45}
header{background:#1d2433;color:#fff;padding:1.1rem 2rem}header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0;color:#c5cad6}
nav{padding:.5rem 2rem;background:#fff;border-bottom:1px solid #dde1e8;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
nav a{color:#2455c3;text-decoration:none;white-space:nowrap}nav a small{color:#667}
main{padding:.5rem 2rem 2rem;max-width:1240px}
.legend{color:#555;font-size:.88rem;margin:.6rem 0 0}
section.method,section.across{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:1rem 1.5rem;margin:1rem 0}
.about,.data,.context,.note,.references,caption,li{overflow-wrap:anywhere}
section.method h2,section.across h2{margin:0 0 .3rem;font-size:1.3rem}
section.missing{color:#6b4a00;background:#fffaf0;border-color:#f0d9a8}
.about,.data,.context{margin:.25rem 0;font-size:.93rem}.data{color:#333}.context{color:#555}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 .6rem;font-size:.9rem;max-width:100%}
th,td{border:1px solid #dde1e8;padding:.28rem .6rem;text-align:right;vertical-align:top}
td{white-space:nowrap}th:first-child,td:first-child,tbody th,td.label{text-align:left}td.label{white-space:nowrap}table.wrap td{white-space:normal}thead th{background:#eef1f6;font-weight:600}
caption{text-align:left;font-size:.88rem;color:#444;padding:.2rem 0;caption-side:top}
table.lead{font-size:.97rem}table.lead thead th{white-space:normal;min-width:6.5rem}
tbody th{font-weight:500}tr.method th{font-weight:700}tr.method td{background:#f3f7ff}
tr.reference th,tr.reference td{font-style:italic;color:#444;background:#fbfbfb}
tr.control th{font-weight:400;color:#444}
td b{font-weight:700}.na{color:#999}
small.source{display:block;font-style:normal;color:#666;font-size:.78rem;font-weight:400}
.dir{color:#667;font-weight:400}
ul.targets{list-style:none;padding:0;margin:.3rem 0 .6rem}ul.targets li{margin:.15rem 0;display:flex;gap:.3rem}
.mark{flex:none;display:inline-block;min-width:6.2rem;font-weight:700}.mark.met{color:#176c2c}.mark.unmet{color:#a1261b}.mark.unknown{color:#777}
.note{background:#fff6e5;border-left:4px solid #e0a100;padding:.35rem .7rem;margin:.4rem 0;font-size:.92rem}
.references{font-size:.86rem;color:#444;margin:.2rem 0 .6rem;padding-left:1.2rem}
details{border:1px solid #e3e6ec;border-radius:6px;padding:.35rem .8rem;margin:.45rem 0;background:#fcfcfd}
details>summary{cursor:pointer;font-weight:600;color:#2a3550}
details[open]>summary{margin-bottom:.3rem}
.figures{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin-top:.8rem}
.figures figure{margin:0;max-width:100%;min-width:0}
.figures img{max-width:100%;height:auto;border:1px solid #dde1e8;display:block}
.figures figcaption{font-size:.85rem;color:#555}
code{background:#f0f2f5;padding:0 .25rem;border-radius:3px;overflow-wrap:anywhere}
"""

#: figures that are pictures of a table already on the page; left out
TABLE_FIGURES = frozenset({"metrics_figure", "metrics_table", "metrics_table_figure"})
#: cscGAN: the overall real-vs-generated classifier AUC must not exceed this
CSCGAN_AUC_TARGET = 0.65


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def format_value(value: Any) -> str:
    """Numbers with 4 significant digits (integers as they are); text escaped."""
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4g}"
    return html.escape(str(value))


def _esc(text: Any) -> str:
    return html.escape(str(text))


def _label(key: Any) -> str:
    return html.escape(str(key).replace("_", " "))


def _cell(value: Any) -> str:
    """A table cell's content: numbers formatted, missing values as a grey dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<span class="na">–</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
        return _list_text(value)
    if isinstance(value, Mapping):
        return _esc(", ".join(f"{k}: {v}" for k, v in value.items()))
    return format_value(value)


def _list_text(values: Sequence[Any], limit: int = 25) -> str:
    shown = ", ".join(format_value(v) for v in list(values)[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _scroll(inner: str) -> str:
    return f'<div class="scroll">{inner}</div>'


def _details(summary: str, inner: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{inner}</details>"


def _mark(met: bool | None) -> str:
    if met is None:
        return '<span class="mark unknown">– not evaluated</span>'
    return '<span class="mark met">✓ met</span>' if met else '<span class="mark unmet">✗ not met</span>'


# --------------------------------------------------------------------------- generic tables


def _matrix_table(rows: Mapping[str, Mapping[str, Any]], caption: str = "", corner: str = "") -> str:
    """Rows × columns of the rows' scalar values (columns in order of appearance)."""
    columns: list[str] = []
    for row in rows.values():
        columns.extend(c for c, v in row.items() if c not in columns and _is_scalar(v))
    head = "".join(f"<th>{_label(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{_label(name)}</th>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows.items()
    )
    cap = f"<caption>{caption}</caption>" if caption else ""
    return _scroll(f"<table>{cap}<thead><tr><th>{corner}</th>{head}</tr></thead><tbody>{body}</tbody></table>")


def _records_table(records: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    columns: list[str] = []
    for record in records:
        columns.extend(c for c, v in record.items() if c not in columns and _is_scalar(v))
    head = "".join(f"<th>{_label(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(record.get(c))}</td>" for c in columns) + "</tr>" for record in records
    )
    cap = f"<caption>{caption}</caption>" if caption else ""
    return _scroll(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _pairs_table(pairs: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in pairs)
    return _scroll(f"<table><tbody>{body}</tbody></table>")


def _is_matrix(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) >= 2
        and all(isinstance(v, Mapping) and any(_is_scalar(x) for x in v.values()) for v in value.values())
    )


def render_generic(value: Any) -> str:
    """Any JSON value, compactly: scalars and short lists in one key-path table, mappings of
    mappings as one rows × columns table each, lists of records as tables."""
    pairs: list[tuple[str, str]] = []
    blocks: list[str] = []

    def walk(item: Any, path: list[str], depth: int) -> None:
        name = " › ".join(_label(p) for p in path)
        if depth > 8:
            pairs.append((name, _esc(str(item)[:200])))
        elif _is_matrix(item):
            blocks.append(_matrix_table(item, caption=name))
            for row_name, row in item.items():
                for key, sub in row.items():
                    if not _is_scalar(sub):
                        walk(sub, [*path, row_name, key], depth + 1)
        elif isinstance(item, Mapping):
            if not item:
                pairs.append((name, '<span class="na">(empty)</span>'))
            rows = {k: v for k, v in item.items() if isinstance(v, Mapping) and v and any(_is_scalar(x) for x in v.values())}
            if len(rows) >= 2:  # the rows of a mapping of mappings become one table
                walk(rows, path, depth)
            for key, sub in item.items():
                if key not in rows or len(rows) < 2:
                    walk(sub, [*path, str(key)], depth + 1)
        elif isinstance(item, (list, tuple)) and item and all(isinstance(x, Mapping) for x in item):
            blocks.append(_records_table(item, caption=name))
        elif isinstance(item, (list, tuple)):
            pairs.append((name, _cell(list(item)) if item else '<span class="na">(none)</span>'))
        else:
            pairs.append((name or "value", _cell(item)))

    walk(value, [], 0)
    return (_pairs_table(pairs) if pairs else "") + "".join(blocks)


#: the previous name of :func:`render_generic`
render_metrics = render_generic


# --------------------------------------------------------------------------- the lead table


@dataclass
class Column:
    key: str
    label: str
    better: str | None = None  # "higher" or "lower" is better


@dataclass
class Row:
    key: str
    label: str
    values: Mapping[str, Any]
    kind: str = "baseline"  # method | baseline | control | reference
    source: str = ""


@dataclass
class Target:
    text: str
    met: bool | None


@dataclass
class Lead:
    """What a method's builder makes of one ``metrics.json``."""

    caption: str
    columns: list[Column]
    rows: list[Row]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # top-level metrics keys shown; not repeated
    used_extras: set[str] = field(default_factory=set)


def _header(column: Column) -> str:
    arrow = {"higher": ("↑", "higher is better"), "lower": ("↓", "lower is better")}.get(column.better or "")
    suffix = f' <span class="dir" title="{arrow[1]}">{arrow[0]}</span>' if arrow else ""
    return f'<th scope="col" data-column="{_esc(column.key)}">{column.label}{suffix}</th>'


def _best(rows: Sequence[Row], column: Column) -> Any:
    values = [r.values.get(column.key) for r in rows if r.kind in ("method", "baseline")]
    numbers = [v for v in values if _is_number(v)]
    if column.better not in ("higher", "lower") or len(numbers) < 2:
        return None
    return max(numbers) if column.better == "higher" else min(numbers)


def render_lead_table(lead: Lead) -> str:
    head = '<th scope="col"></th>' + "".join(_header(c) for c in lead.columns)
    best = {c.key: _best(lead.rows, c) for c in lead.columns}
    body = []
    for row in lead.rows:
        source = f'<small class="source">{_esc(row.source)}</small>' if row.source else ""
        cells = []
        for column in lead.columns:
            value = row.values.get(column.key)
            text = _cell(value)
            if row.kind in ("method", "baseline") and best[column.key] is not None and value == best[column.key]:
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        body.append(
            f'<tr class="{row.kind}" data-row="{_esc(row.key)}"><th scope="row">{row.label}{source}</th>'
            + "".join(cells) + "</tr>"
        )
    caption = f"<caption>{lead.caption}</caption>" if lead.caption else ""
    return _scroll(f'<table class="lead">{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _versus(method: Any, others: Mapping[str, Any]) -> str:
    return f"{format_value(method)} vs " + ", ".join(f"{_esc(k)} {format_value(v)}" for k, v in others.items())


def _at_least_every(
    labels: Mapping[str, Sequence[str]], rows: Mapping[str, Mapping[str, Any]], method: str, key: str, text: str
) -> Target:
    """``method`` ≥ every other row on ``key`` (numbers only; missing → not evaluated);
    ``labels``: row name → (display label, …)."""
    mine = rows.get(method, {}).get(key)
    others = {labels.get(name, (name,))[0]: row.get(key) for name, row in rows.items() if name != method}
    if not _is_number(mine) or not others or not all(_is_number(v) for v in others.values()):
        return Target(f"{text}", None)
    return Target(f"{text}: {_versus(mine, others)}", all(mine >= v for v in others.values()))


# ----------------------------------------------------------------------------------- scGen

SCGEN_ROWS = {
    "scgen": ("scGen", "method"),
    "gene_arithmetic": ("mean shift in gene space", "baseline"),
    "pca_arithmetic": ("mean shift in PCA space", "baseline"),
    "mean_response": ("mean response of the other types", "baseline"),
    "null": ("null (control cells)", "baseline"),
}
#: the response metrics of recent perturbation benchmarks, where metrics.json has them
SCGEN_RESPONSE_COLUMNS = (
    ("pearson_delta_top{n}", "Pearson Δ, top-{n} DEGs", "higher"),
    ("pearson_delta_all", "Pearson Δ, all genes", "higher"),
    ("energy_distance", "energy distance (PCA)", "lower"),
)


def _ordered(keys: Sequence[str], preferred: Sequence[str]) -> list[str]:
    return [k for k in preferred if k in keys] + [k for k in keys if k not in preferred]


def _lead_scgen(metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    summary = metrics.get("mean_over_held_out_types")
    if not isinstance(summary, Mapping) or not isinstance(summary.get("scgen"), Mapping):
        return None
    top = next((k for k in summary["scgen"] if re.fullmatch(r"r2_mean_top\d+", k)), None)
    if top is None or "r2_mean_all" not in summary["scgen"]:
        return None
    n_degs = top.removeprefix("r2_mean_top")
    per_type = metrics.get("held_out") if isinstance(metrics.get("held_out"), Mapping) else {}
    columns = [
        Column(top, f"R² of means, top-{n_degs} DEGs", "higher"),
        Column("r2_mean_all", "R² of means, all genes", "higher"),
    ]
    columns += [Column(k.format(n=n_degs), label.format(n=n_degs), better) for k, label, better in SCGEN_RESPONSE_COLUMNS
                if k.format(n=n_degs) in summary["scgen"]]  # fmt: skip
    names = _ordered([k for k, v in summary.items() if isinstance(v, Mapping)], list(SCGEN_ROWS))
    rows = [Row(n, _esc(SCGEN_ROWS.get(n, (n.replace("_", " "), ""))[0]), summary[n],
                SCGEN_ROWS.get(n, ("", "baseline"))[1]) for n in names]  # fmt: skip
    types = ", ".join(_esc(t) for t in per_type)
    lead = Lead(
        caption=f"R² between predicted and real stimulated per-gene means, mean over {len(per_type)} "
        f"held-out cell type{'s' if len(per_type) != 1 else ''}" + (f" ({types})" if types else "")
        + ("; Pearson Δ: correlation over genes of the predicted and the real response (mean − the type's "
           "control mean; undefined for the null prediction); energy distance between predicted and real "
           "stimulated cells in a PCA of the type's real cells" if len(columns) > 2 else "")
        + ({"residual": "; scGen predicts each control cell as the cell plus the decoded change (scgen.residual)",
            "decoded": "; scGen predicts the decoded shifted latent (the paper's rule, scgen.residual: false)"}
           .get(metrics.get("prediction"), "")),
        columns=columns,
        rows=rows,
        used={"mean_over_held_out_types", "held_out", "prediction"} if per_type else {"mean_over_held_out_types", "prediction"},
    )
    by_name = {n: summary[n] for n in names}
    lead.targets.append(_at_least_every(SCGEN_ROWS, by_name, "scgen", top, f"scGen ≥ every baseline, top-{n_degs} DEGs"))
    lead.targets.append(_at_least_every(SCGEN_ROWS, by_name, "scgen", "r2_mean_all", "scGen ≥ every baseline, all genes"))
    flags = {t: e.get("scgen_beats_every_baseline_top_degs") for t, e in per_type.items() if isinstance(e, Mapping)}
    if flags and all(isinstance(f, bool) for f in flags.values()):
        losers = [t for t, f in flags.items() if not f]
        lead.targets.append(
            Target(
                f"scGen above every baseline (top-{n_degs} DEGs) per held-out type: {sum(flags.values())} of "
                f"{len(flags)}" + (f" (not {_esc(', '.join(losers))})" if losers else ""),
                not losers,
            )
        )
    best = _scgen_best_per_type(per_type, columns)
    if best is not None:
        lead.targets.append(best)
    if per_type:
        lead.details.append(("Per held-out cell type", _safe(lambda: _scgen_per_type(per_type, top), per_type)))
        lead.details.append(
            ("All scores per held-out type (R²: bootstrap mean ± sd, full data)", _safe(lambda: _scgen_all_scores(per_type), None))
        )
        degs = {t: e.get("top_degs") for t, e in per_type.items() if isinstance(e, Mapping) and e.get("top_degs")}
        if degs:
            items = "".join(f"<li><b>{_esc(t)}</b>: {_list_text(g, 20)}</li>" for t, g in degs.items())
            lead.details.append((f"Top-{n_degs} DEGs per held-out type (strongest first)", f"<ul>{items}</ul>"))
    timings = extras.get("timings")
    if isinstance(timings, Mapping) and timings:
        if per_type:  # epochs are in the per-type table already
            timings = {
                k: {kk: vv for kk, vv in v.items() if kk not in ("epochs_run", "best_epoch")} if isinstance(v, Mapping) else v
                for k, v in timings.items()
            }
        lead.details.append(("Training time per model (timings.json)", render_generic(timings)))
        lead.used_extras.add("timings")
    return lead


def _scgen_best_per_type(per_type: Mapping[str, Any], columns: Sequence[Column]) -> Target | None:
    """Which method is best on each lead metric, per held-out type (``best_method`` of
    metrics.json); met when scGen is among the best everywhere."""
    best = {t: e["best_method"] for t, e in per_type.items() if isinstance(e, Mapping) and isinstance(e.get("best_method"), Mapping)}
    if not best:
        return None
    label = {name: row[0] for name, row in SCGEN_ROWS.items()}
    parts, everywhere = [], True
    for cell_type, by_metric in best.items():
        named = []
        for column in columns:
            winners = by_metric.get(column.key)
            if isinstance(winners, Sequence) and not isinstance(winners, str) and winners:
                everywhere &= "scgen" in winners
                named.append(f"{column.label}: {_esc(' = '.join(label.get(str(w), str(w)) for w in winners))}")
        parts.append(f"<b>{_esc(cell_type)}</b> — " + "; ".join(named))
    return Target("scGen best on every metric for every held-out type; the best per type: " + " · ".join(parts), everywhere)


def _scgen_per_type(per_type: Mapping[str, Any], top: str) -> str:
    methods = _ordered(list(next(iter(per_type.values()))["methods"]), list(SCGEN_ROWS))
    head = (
        "<th>held out</th><th>real stimulated cells</th>"
        + "".join(f"<th>{_esc(SCGEN_ROWS.get(m, (m,))[0])}<br><small>top DEGs</small></th>" for m in methods)
        + "<th>scGen<br><small>all genes</small></th><th>scGen above every baseline</th><th>epochs run (best)</th>"
    )
    body = []
    for cell_type, entry in per_type.items():
        scores = entry["methods"]
        beats = entry.get("scgen_beats_every_baseline_top_degs")
        body.append(
            f"<tr><th>{_esc(cell_type)}</th><td>{_cell(entry.get('n_real_stimulated'))}</td>"
            + "".join(f"<td>{_cell(scores[m][top]['mean'])}</td>" for m in methods)
            + f"<td>{_cell(scores['scgen']['r2_mean_all']['mean'])}</td>"
            + f"<td>{_mark(beats if isinstance(beats, bool) else None)}</td>"
            + f"<td>{_cell(entry.get('epochs_run'))} ({_cell(entry.get('best_epoch'))})</td></tr>"
        )
    return _scroll(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _scgen_all_scores(per_type: Mapping[str, Any]) -> str:
    metrics: list[str] = []
    for entry in per_type.values():
        for scores in entry["methods"].values():
            metrics.extend(m for m in scores if m not in metrics)
    head = "<th>held out</th><th>prediction</th>" + "".join(f"<th>{_label(m)}</th>" for m in metrics)
    body = []
    for cell_type, entry in per_type.items():
        methods = _ordered(list(entry["methods"]), list(SCGEN_ROWS))
        for i, method in enumerate(methods):
            first = f'<th rowspan="{len(methods)}">{_esc(cell_type)}</th>' if i == 0 else ""
            cells = []
            for metric in metrics:
                score = entry["methods"][method].get(metric)
                if isinstance(score, Mapping):
                    text = f"{_cell(score.get('mean'))}&nbsp;±&nbsp;{_cell(score.get('sd'))}"
                    text += f" <small>({_cell(score['full'])})</small>" if "full" in score else ""
                else:
                    text = _cell(score)
                cells.append(f"<td>{text}</td>")
            body.append(f'<tr>{first}<td class="label">{_esc(SCGEN_ROWS.get(method, (method,))[0])}</td>{"".join(cells)}</tr>')
    return _scroll(f'<table class="wrap"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


# ----------------------------------------------------------------------------------- NormAE

NORMAE_ROWS = {
    "normae": ("NormAE", "method"),
    "uncorrected": ("uncorrected", "baseline"),
    "combat": ("ComBat", "baseline"),
    "qc_rsc": ("QC-RSC", "baseline"),
    "serrf": ("SERRF", "baseline"),
}
NORMAE_COLUMNS = [
    Column("qc_pca_distance", "QC distance in PCA space <small>(intensity)</small>", "lower"),
    Column("qc_pca_distance_log_standardised", "QC distance in PCA space <small>(log₂, standardised)</small>", "lower"),
    Column("qc_correlation", "QC–QC correlation", "higher"),
    Column("median_qc_rsd", "median QC RSD (%) <small>(in-sample)</small>", "lower"),
    Column("median_qc_rsd_cross_validated", "median QC RSD (%) <small>(QCs left out)</small>", "lower"),
    Column("batch_accuracy", "batch accuracy <small>(intensity)</small>", "lower"),
    Column("batch_accuracy_log_standardised", "batch accuracy <small>(log₂, standardised)</small>", "lower"),
    Column("class_auc", "class AUC", "higher"),
]
#: the targets' names of the columns (plain text)
NORMAE_TARGET_LABELS = {
    "qc_pca_distance": "QC distance in PCA space",
    "qc_pca_distance_log_standardised": "QC distance in PCA space (log₂, standardised)",
    "median_qc_rsd": "median QC RSD (%)",
    "batch_accuracy": "batch accuracy",
}


def _class_auc_skip_reason(metrics: Mapping[str, Any]) -> str | None:
    """Why NormAE's class AUC was not computed (``class_separation.skipped``), or None."""
    separation = metrics.get("class_separation")
    return str(separation["skipped"]) if isinstance(separation, Mapping) and "skipped" in separation else None


def _lead_normae(metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    versions = metrics.get("metrics")
    if not isinstance(versions, Mapping) or not isinstance(versions.get("normae"), Mapping):
        return None
    if not any(c.key in versions["normae"] for c in NORMAE_COLUMNS):
        return None
    reason = _class_auc_skip_reason(metrics)
    has_auc = reason is not None or any(
        isinstance(v, Mapping) and _is_number(v.get("class_auc")) for v in versions.values()
    )
    present = {key for v in versions.values() if isinstance(v, Mapping) for key in v}
    columns = [c for c in NORMAE_COLUMNS if (c.key in present and c.key != "class_auc") or (c.key == "class_auc" and has_auc)]
    names = _ordered([k for k, v in versions.items() if isinstance(v, Mapping)], list(NORMAE_ROWS))
    rows = []
    for name in names:
        values = dict(versions[name])
        if not _is_number(values.get("class_auc")) and reason is not None:
            values["class_auc"] = "skipped"
        rows.append(Row(name, _esc(NORMAE_ROWS.get(name, (name,))[0]), values, NORMAE_ROWS.get(name, ("", "baseline"))[1]))
    n = " · ".join(
        f"{format_value(metrics[k])} {label}" for k, label in (("n_samples", "samples"), ("n_features", "features"),
                                                               ("n_qc", "pooled QCs")) if _is_number(metrics.get(k))
    )  # fmt: skip
    labels = metrics.get("class_labels")
    lead = Lead(
        caption="Pooled QC agreement and what a cross-validated classifier still learns"
        + (f" ({n})" if n else "")
        + (f"; class AUC: {_esc(labels[0])} vs {_esc(labels[1])}" if isinstance(labels, list) and len(labels) == 2 else ""),
        columns=columns,
        rows=rows,
        used={"metrics", "n_samples", "n_features", "n_qc", "batch_accuracy_chance", "class_labels", "class_separation", "scales",
              "qc_rsd_evaluation"},
    )  # fmt: skip
    if reason is not None:
        lead.notes.append(f"Class AUC skipped: {_esc(reason)}")
    _normae_scale_notes(metrics, names, lead)
    from omicsgen.metrics.metabolomics import batch_accuracy_target_met

    combat = versions.get("combat", {})
    chance = metrics.get("batch_accuracy_chance")
    for column in ("qc_pca_distance", "median_qc_rsd", "batch_accuracy"):
        mine, theirs = versions["normae"].get(column), combat.get(column) if isinstance(combat, Mapping) else None
        label = NORMAE_TARGET_LABELS[column]
        if _is_number(mine) and _is_number(theirs) and column == "batch_accuracy" and _is_number(chance):
            lead.targets.append(Target(
                f"NormAE below ComBat on {label}, or both at or below chance ({format_value(chance)}, the largest "
                f"batch's share): {_versus(mine, {'ComBat': theirs})}", batch_accuracy_target_met(mine, theirs, chance),
            ))  # fmt: skip
        elif _is_number(mine) and _is_number(theirs):
            lead.targets.append(Target(f"NormAE below ComBat on {label}: {_versus(mine, {'ComBat': theirs})}", mine < theirs))
        else:
            lead.targets.append(Target(f"NormAE below ComBat on {label}", None))
    qc_based = {NORMAE_ROWS[k][0]: versions[k] for k in ("qc_rsc", "serrf") if isinstance(versions.get(k), Mapping)}
    for column in ("qc_pca_distance", "qc_pca_distance_log_standardised") if qc_based else ():
        mine, theirs = versions["normae"].get(column), {k: v.get(column) for k, v in qc_based.items()}
        text = f"NormAE below {' and '.join(qc_based)} on {NORMAE_TARGET_LABELS[column]}"
        if _is_number(mine) and all(_is_number(v) for v in theirs.values()):
            lead.targets.append(Target(f"{text}: {_versus(mine, theirs)}", all(mine < v for v in theirs.values())))
        else:
            lead.targets.append(Target(text, None))
    if isinstance(metrics.get("qc_baselines"), Mapping) and metrics["qc_baselines"]:
        lead.details.append(("QC-based baselines: settings, cross-validation", render_generic(metrics["qc_baselines"])))
        lead.used.add("qc_baselines")
    if isinstance(metrics.get("selected_epoch"), Mapping) and metrics["selected_epoch"]:
        lead.details.append(("Model selection (selected epoch)", render_generic(metrics["selected_epoch"])))
        lead.used.add("selected_epoch")
    return lead


def _normae_scale_notes(metrics: Mapping[str, Any], names: Sequence[str], lead: Lead) -> None:
    """Which scale each column is on, and how each row's QC RSD was obtained."""
    scales = metrics.get("scales")
    if isinstance(scales, Mapping) and scales:
        lead.notes.append(
            "Scales: <b>intensity</b> — " + _esc(str(scales.get("intensity", "")))
            + "; <b>log₂, standardised</b> — " + _esc(str(scales.get("log_standardised", "")))
        )  # fmt: skip
    evaluation = metrics.get("qc_rsd_evaluation")
    if isinstance(evaluation, Mapping) and evaluation:
        lead.notes.append(
            "QC RSD: " + "; ".join(f"<b>{_esc(NORMAE_ROWS.get(n, (n,))[0])}</b> {_esc(str(evaluation[n]))}"
                                   for n in names if n in evaluation)
        )  # fmt: skip


# -------------------------------------------------------------------------------------- AIF

AIF_ROWS = {
    "aif": ("AIF", "method"),
    "uncorrected": ("uncorrected PCA", "baseline"),
    "combat": ("ComBat", "baseline"),
    "harmony": ("Harmony", "baseline"),
    "scgen": ("scGen batch removal", "baseline"),
}
AIF_COLUMNS = [
    Column("Batch correction", "batch correction", "higher"),
    Column("Bio conservation", "bio conservation", "higher"),
    Column("Total", "total (0.4·batch + 0.6·bio)", "higher"),
    Column("KMeans ARI", "k-means ARI", "higher"),
]


def _lead_aif(metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    embeddings = {k: v for k, v in metrics.items() if isinstance(v, Mapping) and "Total" in v}
    if "aif" not in embeddings:
        return None
    names = _ordered(list(embeddings), list(AIF_ROWS))
    rows = [Row(n, _esc(AIF_ROWS.get(n, (n,))[0]), embeddings[n], AIF_ROWS.get(n, ("", "baseline"))[1]) for n in names]
    lead = Lead(
        caption="scIB metrics of each embedding (scib-metrics Benchmarker, unscaled)",
        columns=list(AIF_COLUMNS),
        rows=rows,
        used=set(embeddings),
    )
    lead.targets.append(_at_least_every(AIF_ROWS, embeddings, "aif", "Total", "AIF total ≥ every baseline"))
    uncorrected = {k: v for k, v in embeddings.items() if k in ("aif", "uncorrected")}
    lead.targets.append(_at_least_every(AIF_ROWS, uncorrected, "aif", "KMeans ARI", "AIF k-means ARI ≥ uncorrected"))
    shown = {c.key for c in AIF_COLUMNS}
    rest = {n: {k: v for k, v in embeddings[n].items() if k not in shown} for n in names}
    if any(rest.values()):
        lead.details.append(
            ("All other scIB metrics", _matrix_table({AIF_ROWS.get(n, (n,))[0]: r for n, r in rest.items()}, corner="embedding"))
        )
    return lead


# ------------------------------------------------------------------------------------ cscGAN

CSCGAN_ROWS = {"real_vs_generated": ("generated vs real", "method"), "real_vs_real": ("real vs real (control)", "control")}
CSCGAN_COLUMNS = [
    Column("classifier_auc", "RF classifier AUC", "lower"),
    Column("mmd", "MMD", "lower"),
    Column("mean_correlation", "mean correlation", "higher"),
    Column("variance_correlation", "variance correlation", "higher"),
]
AUGMENTATION_ROWS = {
    "a_downsampled": "a · rare type downsampled",
    "b_resampled_real": "b · real rare cells resampled",
    "c_generated": "c · cscGAN cells added",
}


def _lead_cscgan(metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    generation = metrics.get("generation")
    overall = generation.get("overall") if isinstance(generation, Mapping) else None
    if not isinstance(overall, Mapping) or not isinstance(overall.get("real_vs_generated"), Mapping):
        return None
    names = _ordered([k for k, v in overall.items() if isinstance(v, Mapping)], list(CSCGAN_ROWS))
    rows = [Row(n, _esc(CSCGAN_ROWS.get(n, (n.replace("_", " "),))[0]), overall[n], CSCGAN_ROWS.get(n, ("", "control"))[1])
            for n in names]  # fmt: skip
    model = metrics.get("model")
    sizes = overall["real_vs_generated"]
    lead = Lead(
        caption=(f"{_esc(model)}: " if isinstance(model, str) else "")
        + "can a classifier tell the cells apart? All cell types together"
        + (f" ({format_value(sizes['n_reference'])} real vs {format_value(sizes['n_query'])} generated cells)"
           if _is_number(sizes.get("n_reference")) and _is_number(sizes.get("n_query")) else "")
        + "; AUC 0.5 = indistinguishable",
        columns=list(CSCGAN_COLUMNS),
        rows=rows,
        used={"generation", "model"},
    )  # fmt: skip
    auc = sizes.get("classifier_auc")
    control = overall.get("real_vs_real", {}).get("classifier_auc") if isinstance(overall.get("real_vs_real"), Mapping) else None
    lead.targets.append(
        Target(
            f"generated-vs-real AUC ≤ {CSCGAN_AUC_TARGET} overall: {format_value(auc)}"
            + (f" (real-vs-real control {format_value(control)})" if _is_number(control) else ""),
            auc <= CSCGAN_AUC_TARGET if _is_number(auc) else None,
        )
    )
    for key, what in (("skipped_cell_types", "skipped in the per-type metrics (too few cells)"),
                      ("excluded_cell_types", "excluded from training (too few cells)")):  # fmt: skip
        if generation.get(key):
            lead.notes.append(f"Cell types {what}: {_esc(', '.join(map(str, generation[key])))}")
    per_type = generation.get("per_cell_type")
    if isinstance(per_type, Mapping) and per_type:
        lead.details.append(("Per cell type (every realism metric)", _safe(lambda: _cscgan_per_type(per_type), per_type)))
    shown = {c.key for c in CSCGAN_COLUMNS}
    rest = {CSCGAN_ROWS.get(n, (n,))[0]: {k: v for k, v in overall[n].items() if k not in shown} for n in names}
    if any(rest.values()):
        lead.details.append(("Other realism metrics, all cell types together", _matrix_table(rest, corner="comparison")))
    others = {k: v for k, v in generation.items() if k not in ("overall", "per_cell_type", "skipped_cell_types", "excluded_cell_types")}
    if others:
        lead.details.append(("Other generation values", render_generic(others)))
    augmentation = metrics.get("augmentation")
    if isinstance(augmentation, Mapping) and augmentation:
        lead.details.append(("Augmentation of a rare cell type (F1)", _safe(lambda: _cscgan_augmentation(augmentation), augmentation)))
        lead.used.add("augmentation")
    if isinstance(metrics.get("training"), Mapping) and metrics["training"]:
        lead.details.append(("Training cost", render_generic(metrics["training"])))
        lead.used.add("training")
    return lead


def _cscgan_per_type(per_type: Mapping[str, Any]) -> str:
    metrics: list[str] = []
    for comparisons in per_type.values():
        for scores in comparisons.values():
            metrics.extend(m for m, v in scores.items() if m not in metrics and _is_scalar(v))
    head = "<th>cell type</th><th>comparison</th>" + "".join(f"<th>{_label(m)}</th>" for m in metrics)
    head += f"<th>AUC ≤ {CSCGAN_AUC_TARGET}</th>"
    body = []
    for cell_type, comparisons in per_type.items():
        names = _ordered(list(comparisons), list(CSCGAN_ROWS))
        for i, name in enumerate(names):
            first = f'<th rowspan="{len(names)}">{_esc(cell_type)}</th>' if i == 0 else ""
            scores = comparisons[name]
            auc = scores.get("classifier_auc")
            mark = _mark(auc <= CSCGAN_AUC_TARGET) if name == "real_vs_generated" and _is_number(auc) else ""
            body.append(
                f'<tr>{first}<td class="label">{_esc(CSCGAN_ROWS.get(name, (name,))[0])}</td>'
                + "".join(f"<td>{_cell(scores.get(m))}</td>" for m in metrics)
                + f"<td>{mark}</td></tr>"
            )
    return _scroll(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _cscgan_augmentation(augmentation: Mapping[str, Any]) -> str:
    arms = {k: v for k, v in augmentation.items() if isinstance(v, Mapping)}
    facts = {k: v for k, v in augmentation.items() if not isinstance(v, Mapping)}
    text = ""
    if facts:
        text = "<p>" + " · ".join(f"{_label(k)}: {_cell(v)}" for k, v in facts.items()) + "</p>"
    table = _matrix_table({AUGMENTATION_ROWS.get(k, k): v for k, v in arms.items()}, corner="training set") if arms else ""
    return text + table


# -------------------------------------------------------------------------------------- VAE

VAE_ROWS = {"vae": ("VAE", "method"), "pca": ("PCA", "baseline")}
VAE_COLUMNS = [
    Column("leiden_ari", "Leiden ARI", "higher"),
    Column("leiden_nmi", "Leiden NMI", "higher"),
    Column("hdbscan_ari", "HDBSCAN ARI", "higher"),
    Column("silhouette", "silhouette of the known labels", "higher"),
]


def _lead_vae(metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    embeddings = {
        k: v for k, v in metrics.items()
        if isinstance(v, Mapping) and isinstance(v.get("leiden"), Mapping) and "ari" in v["leiden"]
    }  # fmt: skip
    if "vae" not in embeddings:
        return None
    names = _ordered(list(embeddings), list(VAE_ROWS))
    flat: dict[str, dict[str, Any]] = {}
    rows = []
    for name in names:
        entry = embeddings[name]
        values = {
            "leiden_ari": entry["leiden"].get("ari"),
            "leiden_nmi": entry["leiden"].get("nmi"),
            "hdbscan_ari": entry.get("hdbscan", {}).get("ari") if isinstance(entry.get("hdbscan"), Mapping) else None,
            "silhouette": entry.get("silhouette"),
        }
        flat[name] = values
        label = _esc(VAE_ROWS.get(name, (name,))[0])
        if _is_number(entry.get("dimensions")):
            label += f" <small>({format_value(entry['dimensions'])} dims)</small>"
        rows.append(Row(name, label, values, VAE_ROWS.get(name, ("", "baseline"))[1]))
    label_key, n_labels, batch_key = metrics.get("label_key"), metrics.get("n_labels"), metrics.get("batch_key")
    lead = Lead(
        caption="Clusters of each embedding against the known labels"
        + (f" (<code>{_esc(label_key)}</code>" + (f", {format_value(n_labels)} labels" if _is_number(n_labels) else "") + ")"
           if label_key else "")
        + (f"; the VAE's decoder reads each cell's <code>{_esc(batch_key)}</code> (batch or condition), PCA does not" if batch_key else ""),
        columns=list(VAE_COLUMNS),
        rows=rows,
        used={*embeddings, "label_key", "n_labels", "n_samples", "n_features", "batch_key",
              "vae_leiden_ari_at_least_pca", "vae_hdbscan_ari_at_least_pca"},
    )  # fmt: skip
    pair = {k: v for k, v in flat.items() if k in ("vae", "pca")}
    lead.targets.append(_at_least_every(VAE_ROWS, pair, "vae", "leiden_ari", "VAE Leiden ARI ≥ PCA"))
    lead.targets.append(_at_least_every(VAE_ROWS, pair, "vae", "hdbscan_ari", "VAE HDBSCAN ARI ≥ PCA"))
    shown = {("leiden", "ari"), ("leiden", "nmi"), ("hdbscan", "ari")}
    clusterings: dict[str, dict[str, Any]] = {}
    by_resolution: dict[str, Any] = {}
    nested: list[tuple[str, Any]] = []
    for name in names:
        for method, scores in embeddings[name].items():
            if not isinstance(scores, Mapping):
                continue
            row_name = f"{VAE_ROWS.get(name, (name,))[0]} · {method}"
            clusterings[row_name] = {k: v for k, v in scores.items() if _is_scalar(v) and (method, k) not in shown}
            if isinstance(scores.get("nmi_by_resolution"), Mapping):
                by_resolution[VAE_ROWS.get(name, (name,))[0]] = scores["nmi_by_resolution"]
            nested.extend(
                (f"{row_name} · {k}", v) for k, v in scores.items() if not _is_scalar(v) and k != "nmi_by_resolution"
            )
    if any(clusterings.values()):
        lead.details.append(("Clusterings (counts, noise, resolution)", _matrix_table(clusterings, corner="embedding · clustering")))
    if by_resolution:
        lead.details.append(("Leiden NMI by resolution", _matrix_table(by_resolution, corner="resolution →")))
    for title, value in nested:
        lead.details.append((_esc(title.replace("_", " ")), render_generic(value)))
    return lead


# --------------------------------------------------------------------------------- sections

LEADS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Lead | None]] = {
    "scgen": _lead_scgen,
    "normae": _lead_normae,
    "aif": _lead_aif,
    "cscgan": _lead_cscgan,
    "vae": _lead_vae,
}


def _safe(render: Callable[[], str], fallback: Any) -> str:
    """A detail table, or the generic rendering of ``fallback`` when it has another shape."""
    try:
        return render()
    except Exception:  # noqa: BLE001 - never fail the page on a malformed detail
        return render_generic(fallback) if fallback is not None else '<p class="na">(not in the expected form)</p>'


def _references(description: Mapping[str, Any], dataset: str) -> list[Mapping[str, Any]]:
    references = description.get("references")
    found = references.get(dataset) if isinstance(references, Mapping) else None
    if isinstance(found, Mapping):
        return [found]
    if isinstance(found, list):
        return [r for r in found if isinstance(r, Mapping)]
    return []


def _reference_rows(references: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[Row]:
    keys = {c.key for c in columns}
    rows = []
    for i, reference in enumerate(references):
        for j, row in enumerate(reference.get("rows") or []):
            values = row.get("values") or {}
            if not isinstance(values, Mapping) or not keys & set(values):
                continue
            rows.append(Row(f"reference-{i}-{j}", _esc(row.get("label", "reference")), values, "reference",
                            str(reference.get("source", ""))))  # fmt: skip
    return rows


def _warnings(metrics: Mapping[str, Any]) -> list[str]:
    notes = []
    for key in ("warnings", "warning"):
        value = metrics.get(key)
        if isinstance(value, str):
            notes.append(value)
        elif isinstance(value, (list, tuple)):
            notes.extend(str(v) for v in value)
        elif isinstance(value, Mapping):
            notes.extend(f"{k}: {v}" for k, v in value.items())
    return notes


def render_data(data: Mapping[str, Any] | None) -> str:
    """One paragraph: source file(s), n obs × n vars, groups with their sizes, what was held out."""
    if not isinstance(data, Mapping):
        return '<p class="data"><b>Data:</b> <span class="na">not described</span></p>'
    parts = []
    files = data.get("files") or ([data["file"]] if data.get("file") else [])
    if isinstance(files, Mapping):
        files = list(files.values())
    if isinstance(files, str):
        files = [files]
    if files:
        parts.append(", ".join(f'<code title="{_esc(f)}">{_esc(PurePath(str(f)).name)}</code>' for f in files))
    if _is_number(data.get("n_obs")) or _is_number(data.get("n_vars")):
        parts.append(
            f"{format_value(data.get('n_obs', '?'))} {_esc(data.get('obs_label', 'observations'))} × "
            f"{format_value(data.get('n_vars', '?'))} {_esc(data.get('var_label', 'variables'))}"
        )
    groups = data.get("groups")
    if isinstance(groups, Mapping):
        for name, sizes in groups.items():
            if isinstance(sizes, Mapping):
                parts.append(f"{_label(name)}: " + ", ".join(f"{_esc(k)} ({format_value(v)})" for k, v in sizes.items()))
            else:
                parts.append(f"{_label(name)}: {_cell(sizes)}")
    held_out = data.get("held_out")
    if held_out:
        parts.append("held out: " + (_esc(", ".join(map(str, held_out))) if isinstance(held_out, list) else _esc(held_out)))
    kind = f" ({_esc(data['kind'])})" if data.get("kind") else ""
    description = f" {_esc(data['description'])}." if data.get("description") else ""
    text = (
        f'<p class="data"><b>Data</b> <code>{_esc(data.get("dataset", ""))}</code>{kind}'
        + (f":{description} " + " · ".join(parts) if parts else f".{description}")
        + "</p>"
    )
    notes = data.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    if notes:
        text += '<ul class="data">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>"
    return text


def _figure(name: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    title = _label(name.removeprefix("figure_").removesuffix("_figure"))
    return (
        f'<figure><img alt="{title}" src="data:image/png;base64,{encoded}" style="max-width:100%">'
        f"<figcaption>{title}</figcaption></figure>"
    )


def _section_id(method: str, dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{method}-{dataset}")


def _about(method: str, description: Mapping[str, Any]) -> str:
    parts = []
    if description.get("task"):
        parts.append(f"<b>Task:</b> {_esc(description['task'])}.")
    if description.get("baselines"):
        parts.append(f"<b>Baselines:</b> {_esc(description['baselines'])}.")
    text = f'<p class="about">{" ".join(parts)}</p>' if parts else ""
    if description.get("context"):
        text += f'<p class="context">{_esc(description["context"])}</p>'
    return text


def _dedupe_extras(metrics: Mapping[str, Any] | None, extras: Mapping[str, Any]) -> dict[str, Any]:
    """Extras that are not already part of ``metrics.json`` (e.g. cscGAN's generation metrics)."""
    inside = [metrics, *metrics.values()] if isinstance(metrics, Mapping) else []
    json_like = {k: v for k, v in extras.items() if isinstance(v, (Mapping, list, tuple, str, int, float))}
    return {k: v for k, v in json_like.items() if not any(type(v) is type(x) and v == x for x in inside)}


def _figures(run: Mapping[str, Any]) -> dict[str, bytes]:
    figures = run.get("figures") if isinstance(run.get("figures"), Mapping) else {}
    return {str(k): bytes(v) for k, v in figures.items() if isinstance(v, (bytes, bytearray))}


def lead_of(method: str, metrics: Mapping[str, Any], extras: Mapping[str, Any]) -> Lead | None:
    """The method's lead table of one ``metrics.json`` (None: no builder, or a structure it
    does not know, which the section then shows generically)."""
    try:
        lead = LEADS[method](metrics, extras) if method in LEADS else None
    except Exception:  # noqa: BLE001 - an unexpected structure falls back to the generic rendering
        return None
    return lead if lead is not None and lead.rows else None


@dataclass
class Outcome:
    """One dataset's line in a method's cross-dataset table."""

    dataset: str
    column: Column
    value: float
    best_baseline: tuple[str, float] | None
    targets_met: int
    targets: int


def targets_met(targets: Sequence[Target]) -> tuple[int, int]:
    """(targets met, targets evaluated): those that could not be evaluated count in neither."""
    evaluated = [t for t in targets if t.met is not None]
    return sum(bool(t.met) for t in evaluated), len(evaluated)


def outcome_of(dataset: str, lead: Lead) -> Outcome | None:
    """The method's value in the first ranked column of its lead table (↑ or ↓), the best
    baseline's in the same column, and how many of the section's targets were met."""
    method = next((r for r in lead.rows if r.kind == "method"), None)
    if method is None:
        return None
    column = next((c for c in lead.columns if c.better and _is_number(method.values.get(c.key))), None)
    if column is None:
        return None
    sign = 1.0 if column.better == "higher" else -1.0
    baselines = [
        (re.sub(r"<[^>]+>", "", r.label), float(r.values[column.key]))
        for r in lead.rows
        if r.kind == "baseline" and _is_number(r.values.get(column.key))
    ]
    best = max(baselines, key=lambda b: sign * b[1]) if baselines else None
    return Outcome(dataset, column, float(method.values[column.key]), best, *targets_met(lead.targets))


def render_across_datasets(method: str, title: str, outcomes: Sequence[Outcome]) -> str:
    """Per method with runs on two or more datasets: each dataset's number beside its best
    baseline and targets, then the mean and the worst case (and where it was)."""
    by_column: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_column.setdefault(outcome.column.label, []).append(outcome)
    tables = []
    for label, rows in by_column.items():
        if len(rows) < 2:
            continue
        higher = rows[0].column.better == "higher"
        body = []
        for o in rows:
            best = f"{_esc(o.best_baseline[0])} {format_value(o.best_baseline[1])}" if o.best_baseline else "–"
            beats = None if o.best_baseline is None else (o.value >= o.best_baseline[1] if higher else o.value <= o.best_baseline[1])
            body.append(
                f'<tr data-row="{_esc(o.dataset)}"><th scope="row">{_esc(o.dataset)}</th><td>{format_value(o.value)}</td>'
                f"<td>{best}</td><td>{_mark(beats)}</td><td>{o.targets_met}/{o.targets}</td></tr>"
            )
        values = [o.value for o in rows]
        worst = min(rows, key=lambda o: o.value) if higher else max(rows, key=lambda o: o.value)
        body.append(
            f'<tr class="summary" data-row="mean"><th scope="row">mean of {len(rows)}</th>'
            f'<td>{format_value(sum(values) / len(values))}</td><td colspan="3"></td></tr>'
            f'<tr class="summary" data-row="worst"><th scope="row">worst case</th><td>{format_value(worst.value)}</td>'
            f'<td colspan="3">{_esc(worst.dataset)}</td></tr>'
        )
        arrow = "↑" if higher else "↓"
        tables.append(_scroll(
            f'<table class="across"><caption>{label} {arrow} of {_esc(title)} on every dataset of this run</caption>'
            '<thead><tr><th scope="col">dataset</th><th scope="col">method</th><th scope="col">best baseline</th>'
            '<th scope="col">method ≥ best baseline</th><th scope="col">targets met</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>'
        ))  # fmt: skip
    if not tables:
        return ""
    return (
        f'<section class="across" id="across-{_esc(method)}" data-method="{_esc(method)}">'
        f"<h2>{_esc(title)} across datasets</h2>{''.join(tables)}</section>"
    )


def render_run_section(run: Mapping[str, Any], description: Mapping[str, Any]) -> tuple[str, list[Target]]:
    """One (method, dataset) section and its targets (for the navigation)."""
    html_, lead = _run_section(run, description)
    return html_, lead.targets if lead is not None else []


def _run_section(run: Mapping[str, Any], description: Mapping[str, Any]) -> tuple[str, Lead | None]:
    """One (method, dataset) section and the lead table it shows (None: none)."""
    method, dataset = str(run.get("method", "?")), str(run.get("dataset", "?"))
    metrics = run.get("metrics")
    figures = _figures(run)
    extras = _dedupe_extras(metrics, run.get("extras") if isinstance(run.get("extras"), Mapping) else {})
    title = _esc(description.get("title", method))
    anchor = _section_id(method, dataset)
    opening = (
        f'<section class="method{" missing" if metrics is None and not figures else ""}" id="{anchor}" '
        f'data-method="{_esc(method)}" data-dataset="{_esc(dataset)}"><h2>{title} · {_esc(dataset)}</h2>'
    )
    if metrics is None and not figures:
        return (
            opening + f"<p>Not run: no results for <code>{_esc(method)}</code> on <code>{_esc(dataset)}</code>. "
            f"Run <code>kedro run --pipelines {_esc(method)}</code>.</p></section>",
            None,
        )
    parts = [_about(method, description), render_data(run.get("data"))]
    references = _references(description, dataset)
    lead = lead_of(method, metrics, extras) if isinstance(metrics, Mapping) else None
    notes = [_esc(w) for w in _warnings(metrics)] if isinstance(metrics, Mapping) else []
    if lead is not None:
        lead.rows.extend(_reference_rows(references, lead.columns))
        parts.append(render_lead_table(lead))
        notes = [*notes, *lead.notes]
        parts.extend(f'<p class="note">⚠ {note}</p>' for note in notes)
        if lead.targets:
            parts.append(
                '<ul class="targets">'
                + "".join(f'<li data-met="{str(t.met).lower()}">{_mark(t.met)} {t.text}</li>' for t in lead.targets)
                + "</ul>"
            )
    else:
        parts.extend(f'<p class="note">⚠ {note}</p>' for note in notes)
        if metrics is None:
            parts.append('<p class="note">No metrics.json for this run; figures only.</p>')
        else:
            parts.append('<p class="note">metrics.json is not in the form this report expects; all its values are in the details below.</p>')
    if references:
        items = "".join(
            f"<li>{_esc(str(r.get('text', '')).strip())} <i>Source: {_esc(r.get('source', 'not given'))}</i></li>"
            for r in references
        )
        parts.append(f'<ul class="references" title="references for {_esc(dataset)}">{items}</ul>')
    details = list(lead.details) if lead is not None else []
    if isinstance(metrics, Mapping):
        used = (lead.used if lead is not None else set()) | {"warnings", "warning"}
        rest = {k: v for k, v in metrics.items() if k not in used}
        if rest:
            summary = "Other values in metrics.json" if lead is not None else "All values in metrics.json"
            details.append((summary, render_generic(rest)))
    elif metrics is not None:
        details.append(("metrics.json", render_generic(metrics)))
    for name, value in extras.items():
        if lead is not None and name in lead.used_extras:
            continue
        details.append((_label(name), render_generic(value)))
    parts.extend(_details(summary, inner, open_=lead is None and metrics is not None) for summary, inner in details)
    pictures = [_figure(name, png) for name, png in figures.items() if name not in TABLE_FIGURES]
    if pictures:
        parts.append(f'<div class="figures">{"".join(pictures)}</div>')
    return opening + "".join(parts) + "</section>", lead


def _not_run_section(method: str, description: Mapping[str, Any]) -> str:
    title = _esc(description.get("title", method))
    return (
        f'<section class="method missing" id="{re.sub(r"[^A-Za-z0-9_.-]+", "_", method)}" data-method="{_esc(method)}">'
        f"<h2>{title}</h2><p>Not run: no results for <code>{_esc(method)}</code> on any dataset. "
        f"Run <code>kedro run --pipelines {_esc(method)}</code>.</p></section>"
    )


def build_report(
    runs: Sequence[Mapping[str, Any]],
    descriptions: Mapping[str, Mapping[str, Any]],
    title: str = "omicsgen report",
) -> str:
    """The whole page: a section per run (method, dataset), then a "not run" section for
    every described method without any run. See the module docstring for the inputs."""
    runs = [r for r in runs if isinstance(r, Mapping)]
    descriptions = descriptions if isinstance(descriptions, Mapping) else {}
    methods = list(dict.fromkeys([*descriptions, *(str(r.get("method")) for r in runs)]))
    sections: list[str] = []
    links: list[str] = []
    ran = 0
    for method in methods:
        description = descriptions.get(method)
        description = description if isinstance(description, Mapping) else {}
        mine = [r for r in runs if str(r.get("method")) == method]
        name = _esc(description.get("title", method)).split(" — ")[0]
        if not mine:
            sections.append(_not_run_section(method, description))
            links.append(f'<a href="#{_esc(method)}">{name} <small>not run</small></a>')
            continue
        outcomes, run_sections, run_links = [], [], []
        for run in mine:
            html_, lead = _run_section(run, description)
            run_sections.append(html_)
            if lead is not None and (outcome := outcome_of(str(run.get("dataset")), lead)) is not None:
                outcomes.append(outcome)
            has_results = run.get("metrics") is not None or bool(_figures(run))
            ran += has_results
            met, evaluated = targets_met(lead.targets if lead is not None else [])
            badge = f"{met}/{evaluated} targets met" if evaluated else ("" if has_results else "not run")
            run_links.append(
                f'<a href="#{_section_id(method, str(run.get("dataset")))}">{name} · {_esc(run.get("dataset"))}'
                + (f" <small>{badge}</small>" if badge else "") + "</a>"
            )
        # the table across datasets comes first, before the method's own sections
        if across := render_across_datasets(method, str(description.get("title", method)).split(" — ")[0], outcomes):
            sections.append(across)
            links.append(f'<a href="#across-{_esc(method)}">{name} <small>across datasets</small></a>')
        sections.extend(run_sections)
        links.extend(run_links)
    total = len(runs) + sum(1 for m in methods if not any(str(r.get("method")) == m for r in runs))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    legend = (
        '<p class="legend">Each section: one table (the method in bold-face row, its baselines, and any published or '
        "reference figure with its source), targets marked ✓ met / ✗ not met, details in the collapsible blocks. "
        "↑ higher is better, ↓ lower is better; the best value of the method and baselines in each column is bold.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1><p>{ran} of {total} runs · generated {stamp}</p></header>"
        f'<nav>{"".join(links)}</nav><main>{legend}{"".join(sections)}</main></body></html>'
    )
