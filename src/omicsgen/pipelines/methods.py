"""Discovery of the method pipelines (modelling + reporting sub-packages)."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from kedro.pipeline import Pipeline

from omicsgen.pipelines import modelling, reporting


@dataclass
class MethodPipelines:
    name: str
    datasets: tuple[str, ...]
    modelling: Pipeline
    reporting: Pipeline
    extra: dict[str, Pipeline] = field(default_factory=dict)


def _subpackages(package) -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.ispkg)


def discover_methods() -> dict[str, MethodPipelines]:
    methods = {}
    reporting_names = set(_subpackages(reporting))
    for name in _subpackages(modelling):
        module = importlib.import_module(f"{modelling.__name__}.{name}")
        report = (
            importlib.import_module(f"{reporting.__name__}.{name}").create_pipeline()
            if name in reporting_names
            else Pipeline([])
        )
        extra = module.create_extra_pipelines() if hasattr(module, "create_extra_pipelines") else {}
        methods[name] = MethodPipelines(
            name=name,
            datasets=tuple(module.DATASETS),
            modelling=module.create_pipeline(),
            reporting=report,
            extra=extra,
        )
    return methods
