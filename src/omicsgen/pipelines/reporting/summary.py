"""The summary report node: every method's reporting outputs in, one HTML page out.

Its inputs are all outputs of every method's reporting pipeline, so in a run it comes
after them. Those datasets (``OptionalJSONDataset``, ``FigureDataset``) load ``None``
when a method has not been run, and the page lists such methods as not run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Pipeline, node

from omicsgen.report import build_report


def build_summary_report(params: Mapping[str, Any], **reporting_outputs: Any) -> str:
    """``<method>.metrics`` is shown first, other JSON outputs (timings, …) under their
    name, PNG figures embedded; tables (CSV) stay in their files."""
    sections: dict[str, tuple[dict | None, dict[str, bytes]]] = {}
    for dataset, value in sorted(reporting_outputs.items(), key=lambda item: item[0] != f"{item[0].partition('.')[0]}.metrics"):
        method, _, name = dataset.partition(".")
        metrics, figures = sections.get(method, (None, {}))
        if isinstance(value, Mapping):
            metrics = {**(metrics or {}), **(value if name == "metrics" else {name: value})}
        elif isinstance(value, bytes):
            figures = {**figures, name.removeprefix("figure_").removesuffix("_figure"): value}
        sections[method] = (metrics, figures)
    return build_report(sections, params.get("methods", {}), params.get("title", "omicsgen report"))


def create_summary_pipeline(reporting_outputs: list[str]) -> Pipeline:
    inputs = {"params": "params:report", **{name: name for name in sorted(reporting_outputs)}}
    with warnings.catch_warnings():
        # the inputs are the methods' namespaced datasets ("scgen.metrics"), on purpose
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        summary = node(build_summary_report, inputs, "summary_report", name="build_summary_report")
    return Pipeline([summary])
