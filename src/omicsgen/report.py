"""The summary report: one self-contained HTML page with a section per method.

Figures are embedded (PNG as base64), so the page opens offline and can be mailed.
Metrics are rendered generically from each method's ``metrics.json``: a mapping of
mappings becomes a table (rows × columns), a flat mapping becomes a two-column table,
deeper nesting becomes sub-headings. Numbers shown are exactly those of the JSON files.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.6rem}
header p{margin:.3rem 0 0;color:#c5cad6}nav{padding:.6rem 2rem;background:#fff;border-bottom:1px solid #dde1e8}
nav a{margin-right:1rem;color:#2455c3;text-decoration:none}main{padding:1rem 2rem;max-width:1200px}
section.method{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:1rem 1.5rem;margin:1rem 0}
section.method h2{margin-top:0}.missing{color:#8a5300;background:#fff6e5;border-color:#f0d9a8}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}th,td{border:1px solid #dde1e8;padding:.25rem .55rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#eef1f6}caption{text-align:left;font-weight:600;padding:.3rem 0}
.figures{display:flex;flex-wrap:wrap;gap:1rem}.figures figure{margin:0;max-width:560px}
.figures img{max-width:100%;border:1px solid #dde1e8}.figures figcaption{font-size:.85rem;color:#555}
.meta{color:#555;font-size:.92rem}.reference{font-size:.88rem;color:#444}
"""


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


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


def _title(key: str) -> str:
    return html.escape(str(key).replace("_", " "))


def _table_of_rows(caption: str, rows: Mapping[str, Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows.values():
        columns.extend(c for c in row if c not in columns and _is_scalar(row[c]))
    head = "".join(f"<th>{_title(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{_title(name)}</th>" + "".join(f"<td>{format_value(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><caption>{caption}</caption><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table_of_values(caption: str, values: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><th>{_title(k)}</th><td>{format_value(v)}</td></tr>" for k, v in values.items())
    return f"<table><caption>{caption}</caption><tbody>{body}</tbody></table>"


def render_metrics(metrics: Mapping[str, Any], caption: str = "", depth: int = 0) -> str:
    """Render a metrics mapping as tables; see the module docstring for the rules."""
    parts: list[str] = []
    scalars = {k: v for k, v in metrics.items() if _is_scalar(v)}
    if scalars:
        parts.append(_table_of_values(caption, scalars))
    nested = {k: v for k, v in metrics.items() if isinstance(v, Mapping)}
    flat_rows = {
        k: v for k, v in nested.items() if v and all(_is_scalar(x) or isinstance(x, Mapping) for x in v.values())
        and any(_is_scalar(x) for x in v.values())
    }
    if len(flat_rows) > 1 and not scalars:
        parts.append(_table_of_rows(caption, flat_rows))
        rest = {k: {kk: vv for kk, vv in v.items() if isinstance(vv, Mapping)} for k, v in nested.items()}
        nested = {k: v for k, v in rest.items() if v}
    for key, value in nested.items():
        sub_caption = f"{caption} · {_title(key)}" if caption else _title(key)
        if depth >= 4:
            continue
        parts.append(render_metrics(value, sub_caption, depth + 1))
    return "".join(parts)


def _figure(name: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{_title(name)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{_title(name)}</figcaption></figure>"
    )


def render_method_section(
    method: str, description: Mapping[str, Any], metrics: Mapping[str, Any] | None, figures: Mapping[str, bytes]
) -> str:
    title = html.escape(description.get("title", method))
    anchor = html.escape(method)
    if metrics is None and not figures:
        return (
            f'<section class="method missing" id="{anchor}"><h2>{title}</h2>'
            f"<p>Not run: no results found for <code>{anchor}</code>. Run "
            f"<code>kedro run --pipelines {anchor}</code>.</p></section>"
        )
    meta = "".join(
        f"<p><b>{_title(key)}:</b> {html.escape(str(description[key]))}</p>"
        for key in ("task", "data", "held_out", "baselines")
        if key in description
    )
    reference = ""
    if description.get("reference"):
        reference = f'<p class="reference"><b>Published reference:</b> {html.escape(description["reference"])}</p>'
    tables = render_metrics(metrics or {}, caption="metrics")
    pictures = "".join(_figure(name, png) for name, png in figures.items())
    return (
        f'<section class="method" id="{anchor}"><h2>{title}</h2><div class="meta">{meta}</div>'
        f"{reference}{tables}<div class=\"figures\">{pictures}</div></section>"
    )


def build_report(
    sections: Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, bytes]]],
    descriptions: Mapping[str, Mapping[str, Any]],
    title: str = "omicsgen report",
) -> str:
    """The whole page: ``sections`` maps method → (metrics or None, {figure name: PNG}).

    Every method in ``descriptions`` gets a section, run or not.
    """
    methods = list(dict.fromkeys([*descriptions, *sections]))
    nav = "".join(f'<a href="#{html.escape(m)}">{html.escape(descriptions.get(m, {}).get("title", m))}</a>' for m in methods)
    body = "".join(
        render_method_section(m, descriptions.get(m, {}), *sections.get(m, (None, {}))) for m in methods
    )
    ran = [m for m in methods if sections.get(m, (None, {}))[0] is not None or sections.get(m, (None, {}))[1]]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{len(ran)} of {len(methods)} methods run · generated {stamp}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>"
    )
