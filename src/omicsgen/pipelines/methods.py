"""Method pipelines, one namespace per (dataset, method).

A method is a sub-package of ``pipelines/modelling`` exposing

- ``create_pipeline(kind)``: its modelling template, reading ``model_input`` (or
  ``primary``/``raw``) and ``parameters`` (the method's parameters resolved for a dataset);
- ``bind_dataset(params, dataset)``: its parameters for one dataset (the dataset's keys in
  the slots the method reads);
- optionally ``create_extra_pipelines(dataset, kind)`` (``{name: template}``),

plus a ``pipelines/reporting/<method>`` sub-package with ``create_pipeline(kind)``.
:func:`dataset_method_pipeline` instantiates both in namespace ``<dataset>.<method>``, so
its outputs are ``<dataset>.<method>.<output>`` (catalog factories under
``data/<layer>/<dataset>/<method>/``) and ``kedro run --namespaces <dataset>`` picks a
dataset's data engineering and every method on it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines import modelling, reporting
from omicsgen.pipelines.data_engineering.nodes import deep_merge

#: keys :func:`resolve_parameters` adds to a method's parameters
RESOLVED_KEYS = ("dataset", "checkpoint_dir")

#: inputs a method template may read from its dataset's data engineering
DATASET_INPUTS = ("model_input", "primary", "raw")


def resolve_parameters(
    params: Mapping[str, Any], entry: Mapping[str, Any], method: str, dataset: str, bind: Callable
) -> dict[str, Any]:
    """``<method>`` parameters for one dataset: ``overrides.<dataset>`` merged over the
    method's defaults, then the dataset's keys bound by the method's ``bind_dataset``."""
    from omicsgen.registry import output_dir, spec_of

    spec = spec_of(dataset, entry).to_dict()
    overrides = dict(params.get("overrides") or {})
    merged = deep_merge({k: v for k, v in params.items() if k not in ("overrides", "datasets")}, overrides.get(dataset) or {})
    checkpoints = output_dir("06_models", dataset, method) / "checkpoints"
    return {**bind(merged, spec), "dataset": spec, "checkpoint_dir": str(checkpoints)}  # = RESOLVED_KEYS


def parameters_of(method: Method, dataset: str):
    """:func:`resolve_parameters` for one (method, dataset), as a node function."""

    def resolve_parameters_of(params: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        return resolve_parameters(params, entry, method.name, dataset, method.module.bind_dataset)

    return resolve_parameters_of


def describe_data(data: Any, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What the report says about the data: described from the data itself."""
    from omicsgen.preprocessing.describe import describe_dataset

    return describe_dataset(data, parameters["dataset"], holdout=parameters.get("holdout"))


@dataclass
class Method:
    name: str
    module: Any
    reporting: Any | None

    def pipeline(self, dataset: str, kind: str) -> Pipeline:
        parts = [pipeline(self.module.create_pipeline(kind), tags="modelling")]
        if self.reporting is not None:
            parts.append(pipeline(self.reporting.create_pipeline(kind), tags="reporting"))
        return dataset_method_pipeline(self, dataset, sum(parts, start=Pipeline([])), describe=True)

    def extra(self, dataset: str, kind: str) -> dict[str, Pipeline]:
        """The method's extra pipelines on ``dataset``, and ``<method>_apply``: a saved model
        (``<method>.apply.model_from``'s, default the dataset's own) applied to the dataset,
        in namespace ``<dataset>.<method>_apply``."""
        from omicsgen.registry import apply_model_source

        templates = self.module.create_extra_pipelines(kind) if hasattr(self.module, "create_extra_pipelines") else {}
        extra = {name: dataset_method_pipeline(self, dataset, template) for name, template in templates.items()}
        if hasattr(self.module, "create_apply_pipeline"):
            source = apply_model_source(self.name, dataset)
            apply = dataset_method_pipeline(
                self, dataset, self.module.create_apply_pipeline(kind), namespace=f"{dataset}.{self.name}_apply",
                model=f"{source}.{self.name}.model",
            )
            for name in (f"{self.name}_apply", *getattr(self.module, "APPLY_ALIASES", ())):
                extra[name] = apply
        return extra


def dataset_method_pipeline(  # noqa: PLR0913
    method: Method,
    dataset: str,
    template: Pipeline,
    describe: bool = False,
    namespace: str | None = None,
    model: str | None = None,
) -> Pipeline:
    """``template`` in namespace ``<dataset>.<method>`` (or ``namespace``), reading its
    dataset's data-engineering outputs and, with ``model``, a saved model from that dataset."""
    resolve = node(
        parameters_of(method, dataset),
        [f"params:{method.name}", f"params:datasets.{dataset}"],
        "settings",
        name="resolve_parameters",
        tags=["modelling", "reporting"],
    )
    reads = [name for name in DATASET_INPUTS if name in template.inputs()]
    steps = [resolve, template]
    if describe and reads:
        steps.append(
            node(describe_data, [reads[0], "settings"], "data_description", name="describe_data", tags="reporting")
        )
    inputs = {name: f"{dataset}.{name}" for name in reads}
    if model is not None:
        inputs["model"] = model
    return pipeline(
        steps,
        namespace=namespace or f"{dataset}.{method.name}",
        inputs=inputs,
        parameters={f"params:{method.name}", f"params:datasets.{dataset}"},
    )


@dataclass
class MethodPipelines:
    name: str
    datasets: tuple[str, ...]
    pipeline: Pipeline
    extra: dict[str, Pipeline] = field(default_factory=dict)


def _subpackages(package) -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.ispkg)


def discover_methods() -> dict[str, Method]:
    reporting_names = set(_subpackages(reporting))
    return {
        name: Method(
            name=name,
            module=importlib.import_module(f"{modelling.__name__}.{name}"),
            reporting=importlib.import_module(f"{reporting.__name__}.{name}") if name in reporting_names else None,
        )
        for name in _subpackages(modelling)
    }


def build_method_pipelines() -> dict[str, MethodPipelines]:
    """Every method on every dataset of the registry it runs on."""
    from omicsgen.registry import active_registry, datasets_for

    registry = active_registry()
    built = {}
    for name, method in discover_methods().items():
        datasets = tuple(datasets_for(name))
        combined, extra = Pipeline([]), {}
        for dataset in datasets:
            combined += method.pipeline(dataset, registry[dataset].kind)
            for extra_name, part in method.extra(dataset, registry[dataset].kind).items():
                extra[extra_name] = extra.get(extra_name, Pipeline([])) + part
        built[name] = MethodPipelines(name=name, datasets=datasets, pipeline=combined, extra=extra)
    return built
