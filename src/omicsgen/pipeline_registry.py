"""Project pipelines.

- ``data_engineering``: every dataset namespace (``kang``, ``pbmc_batches``, ``mtbls79``).
- ``modelling`` / ``reporting``: every method found under ``pipelines/modelling`` and
  ``pipelines/reporting``.
- one pipeline per method (``kedro run --pipelines scgen``): the data engineering it
  needs, its modelling and its reporting; plus any extra pipelines a method declares.
- ``__default__``: everything, on the shipped data, ending in the summary report
  ``data/08_reporting/report.html``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from omicsgen.pipelines import data_engineering
from omicsgen.pipelines.methods import discover_methods
from omicsgen.pipelines.reporting.summary import create_summary_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    data = data_engineering.create_pipeline()
    pipelines: dict[str, Pipeline] = {"data_engineering": data}
    modelling, reporting = Pipeline([]), Pipeline([])
    for name, method in discover_methods().items():
        inputs = sum(
            (data_engineering.create_dataset_pipeline(d) for d in method.datasets),
            start=Pipeline([]),
        )
        pipelines[name] = inputs + method.modelling + method.reporting
        pipelines.update(method.extra)
        modelling += method.modelling
        reporting += method.reporting
    if reporting.nodes:
        reporting += create_summary_pipeline(sorted(reporting.all_outputs()))
    pipelines["modelling"] = modelling
    pipelines["reporting"] = reporting
    pipelines["__default__"] = data + modelling + reporting
    return pipelines
