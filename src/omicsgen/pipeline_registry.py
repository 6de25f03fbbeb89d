"""Project pipelines, built from the dataset registry (``datasets.yml``).

- ``data_engineering``: every declared dataset, in its own namespace.
- one pipeline per method (``kedro run --pipelines scgen``): the data engineering, the
  modelling and the reporting of that method on every dataset it runs on, one namespace
  per (dataset, method): ``kedro run --pipelines scgen --namespaces my_study``;
  plus the extra pipelines a method declares (``aif_grid_search``, ``normae_remove``, …).
- ``modelling`` / ``reporting``: every method on every dataset, without data engineering.
- ``__default__``: everything, ending in the summary report ``data/08_reporting/report.html``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from omicsgen.pipelines import data_engineering
from omicsgen.pipelines.methods import build_method_pipelines
from omicsgen.pipelines.reporting.summary import create_summary_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    data = data_engineering.create_pipeline()
    pipelines: dict[str, Pipeline] = {"data_engineering": data}
    methods = Pipeline([])
    for name, method in build_method_pipelines().items():
        inputs = sum((data_engineering.create_dataset_pipeline(d) for d in method.datasets), start=Pipeline([]))
        pipelines[name] = inputs + method.pipeline
        for extra_name, extra in method.extra.items():
            pipelines[extra_name] = inputs + extra
        methods += method.pipeline
    reporting = methods.only_nodes_with_tags("reporting") if methods.nodes else Pipeline([])
    summary = create_summary_pipeline(sorted(reporting.all_outputs())) if reporting.nodes else Pipeline([])
    pipelines["modelling"] = methods.only_nodes_with_tags("modelling") if methods.nodes else Pipeline([])
    pipelines["reporting"] = reporting + summary
    pipelines["__default__"] = data + methods + summary
    return pipelines
