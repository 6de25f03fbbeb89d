"""The summary report node: every (dataset, method) run's reporting outputs in, one HTML page out.

Its inputs are all outputs of every method's reporting nodes (``<dataset>.<method>.<name>``),
so in a run it comes after them. Those datasets (``OptionalJSONDataset``, ``FigureDataset``)
load ``None`` when a run has not happened, and the page lists such methods as not run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Pipeline, node

from omicsgen.report import build_report


def collect_runs(reporting_outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per (method, dataset): its metrics, data description, other JSON outputs
    and PNG figures (CSV tables stay in their files)."""
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for name, value in sorted(reporting_outputs.items()):
        dataset, method, output = name.split(".", 2)
        run = runs.setdefault(
            (method, dataset),
            {"method": method, "dataset": dataset, "metrics": None, "data": None, "figures": {}, "extras": {}},
        )
        if output == "metrics":
            run["metrics"] = value
        elif output == "data_description":
            run["data"] = value
        elif isinstance(value, bytes):
            run["figures"][output.removeprefix("figure_").removesuffix("_figure")] = value
        elif isinstance(value, Mapping):
            run["extras"][output] = value
    return [run for _, run in sorted(runs.items())]


def build_summary_report(params: Mapping[str, Any], **reporting_outputs: Any) -> str:
    return build_report(
        collect_runs(reporting_outputs), params.get("methods", {}), params.get("title", "omicsgen report")
    )


def create_summary_pipeline(reporting_outputs: list[str]) -> Pipeline:
    inputs = {"params": "params:report", **{name: name for name in sorted(reporting_outputs)}}
    with warnings.catch_warnings():
        # the inputs are the runs' namespaced datasets ("kang.scgen.metrics"), on purpose
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        summary = node(build_summary_report, inputs, "summary_report", name="build_summary_report")
    return Pipeline([summary])
