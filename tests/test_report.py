"""The summary report page: sections, numbers, embedded figures, methods not run."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from omicsgen.datasets import FigureDataset, OptionalJSONDataset  # noqa: E402
from omicsgen.pipelines.reporting.summary import build_summary_report  # noqa: E402
from omicsgen.report import format_value, render_metrics  # noqa: E402


def _png() -> bytes:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def test_metrics_tables_show_the_json_numbers():
    html = render_metrics({"CD4T": {"scgen": {"r2_top100": 0.91234, "r2_all": 0.98}, "null": {"r2_top100": 0.5, "r2_all": 0.9}}})
    assert "0.9123" in html and "r2 top100" in html and "null" in html
    assert format_value(1234) == "1,234" and format_value(float("nan")) == "–"


def test_summary_report_has_a_section_per_method(tmp_path):
    png = _png()
    page = build_summary_report(
        {"title": "T", "methods": {"scgen": {"title": "scGen", "reference": "Lotfollahi 2019: 0.936"}, "normae": {"title": "NormAE"}}},
        **{"scgen.metrics": {"CD4T": {"r2_top100": 0.95}}, "scgen.figure_scatter": png, "normae.metrics": None},
    )
    assert 'id="scgen"' in page and 'id="normae"' in page
    assert "0.95" in page and "Lotfollahi 2019: 0.936" in page
    assert base64.b64encode(png).decode()[:100] in page
    assert "Not run" in page.split('id="normae"')[1]
    assert "1 of 2 methods run" in page


def test_reporting_datasets_tolerate_absence(tmp_path):
    figure = FigureDataset(filepath=str(tmp_path / "f" / "fig.png"))
    metrics = OptionalJSONDataset(filepath=str(tmp_path / "m.json"))
    assert figure.load() is None and metrics.load() is None
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    figure.save(fig)
    assert figure.load()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics.save({"a": 1})
    assert metrics.load() == {"a": 1}
