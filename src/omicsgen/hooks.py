"""Project hooks: provenance of loaded files and a summary of what a run wrote."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError

from omicsgen.preprocessing.validate import SOURCE_FILE_KEY

logger = logging.getLogger(__name__)


def _filepath_of(catalog: Any, dataset_name: str) -> str | None:
    try:
        description = catalog.get(dataset_name)._describe()
    except Exception:  # datasets without a file (memory, parameters)
        return None
    path = description.get("filepath") if isinstance(description, dict) else None
    return str(path) if path is not None else None


class DatasetRegistryHook:
    """Put the run's own dataset registry (``datasets.yml`` of its environment, with
    ``--params`` applied) in force before the pipelines are built from it."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.framework.project import pipelines

        from omicsgen import registry

        parameters = context.config_loader["parameters"]
        specs = registry.parse_registry(parameters.get("datasets"), context.project_path)
        data_root = context.config_loader["globals"].get("data_root", "data")
        if registry.activate(specs, parameters, context.project_path, data_root):
            # The project's pipelines are built once per process from the registry: a run
            # whose registry differs (another environment or project) needs them rebuilt.
            requested = pipelines._requested_pipelines
            pipelines.configure(pipelines._pipelines_module)
            pipelines.set_requested(requested)


class ThreadsHook:
    """One thread count for torch, BLAS and numba per run (``runtime.threads``), and the
    processes independent trainings may use (``runtime.processes``)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from omicsgen.models.runtime import set_processes, set_threads

        try:
            runtime = catalog.load("params:runtime")
        except DatasetError:  # a project configured before runtime.yml existed
            runtime = {}
        set_threads(runtime.get("threads", "auto"))
        set_processes(runtime.get("processes", "auto"))


class PreflightHook:
    """Every check that can fail, on every dataset of the run, before the first node."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from omicsgen.pipelines.preflight import check_run

        check_run(pipeline, lambda name: catalog.load(f"params:{name}"))


class RecordSourceFileHook:
    """Tag every loaded table with the file it came from.

    Validation errors must name the file; node functions only see data, so the path
    travels with it: ``DataFrame.attrs["source_file"]``. (``AnnDataDataset`` records
    ``uns["source_file"]`` itself, which also works outside a Kedro run.)
    """

    def __init__(self) -> None:
        self._catalog = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if self._catalog is None or not isinstance(data, pd.DataFrame):
            return
        path = _filepath_of(self._catalog, dataset_name)
        if path is not None:
            data.attrs[SOURCE_FILE_KEY] = path


class ReleaseMemoryHook:
    """After every node, memory its step freed goes back to the operating system."""

    @hook_impl
    def after_node_run(self) -> None:
        from omicsgen.models.runtime import release_memory

        release_memory()


class RunSummaryHook:
    """Log what a run is about to do and, at the end, where its files went."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        logger.info(
            "omicsgen run: env=%s pipeline=%s namespaces=%s",
            run_params.get("env") or "local",
            run_params.get("pipeline_names") or run_params.get("pipeline_name") or "__default__",
            run_params.get("namespaces") or run_params.get("namespace") or "all",
        )

    @hook_impl
    def after_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        written = sorted(
            {
                path
                for name in pipeline.all_outputs()
                if (path := _filepath_of(catalog, name)) is not None
            }
        )
        if not written:
            return
        logger.info("omicsgen wrote %d files under data/", len(written))
        summary = [p for p in written if p.endswith("report.html")]
        reports = [p for p in written if "08_reporting" in p and p not in summary]
        if reports and not summary:
            logger.info("results: %s", ", ".join(sorted({str(Path(p).parent) for p in reports})))
        for path in summary:
            logger.info("summary report: %s (open it in a browser)", path)
