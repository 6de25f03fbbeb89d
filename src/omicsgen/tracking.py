"""Experiment tracking: every ``kedro run`` is one MLflow run, in a local store by default.

The run is tagged with the pipeline, the environment and the datasets and methods it ran;
it logs the parameters of those methods and datasets, every training's per-epoch history as
step metrics, the final numbers of every ``metrics.json``, each AIF grid-search point as a
nested run, and the summary report and the model checkpoints as artefacts.

``runtime.tracking.uri`` (or ``MLFLOW_TRACKING_URI``) points it at a team's server; a server
that cannot be reached gives a warning and the run is recorded in the local store instead.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError

logger = logging.getLogger(__name__)

LOCAL_STORE = "mlflow.db"
_NAME = re.compile(r"[^0-9A-Za-z_\-. /]")


def local_store_uri(data_root: Path) -> str:
    return f"sqlite:///{(data_root / LOCAL_STORE).resolve()}"


def _metric_name(name: str) -> str:
    return _NAME.sub("_", name)[:250]


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``."""
    if isinstance(values, Mapping):
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: values}


def numeric_leaves(values: Any) -> dict[str, float]:
    """The finite numbers (not booleans) of a nested mapping, under flattened names."""
    return {
        _metric_name(key): float(value)
        for key, value in flatten(values).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    }


def training_histories(record: Any) -> dict[str, list[Mapping[str, Any]]]:
    """``{run name: history}`` of a training record: one ``TrainingResult`` dict, or a
    mapping of them (scGen's one model per held-out type)."""
    if isinstance(record, Mapping) and isinstance(record.get("history"), list):
        return {"": record["history"]}
    if isinstance(record, Mapping):
        return {
            str(name): value["history"]
            for name, value in record.items()
            if isinstance(value, Mapping) and isinstance(value.get("history"), list)
        }
    return {}


class MlflowTrackingHook:
    """One MLflow run per ``kedro run`` (``runtime.tracking``; see the module docstring)."""

    def __init__(self) -> None:
        self._settings: dict[str, Any] = {}
        self._project_path: Path | None = None
        self._env: str | None = None
        self._run: Any = None
        self._client: Any = None
        # read once: MLflow itself exports the URI it is set to, so a later read would see
        # the previous run's local store
        self._environment_uri = os.environ.get("MLFLOW_TRACKING_URI")

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        parameters = context.config_loader["parameters"]
        self._settings = dict((parameters.get("runtime") or {}).get("tracking") or {})
        self._project_path = Path(context.project_path)
        self._env = context.env

    def _store(self) -> str:
        """The configured server, or the local store when there is none or it cannot be reached."""
        import mlflow

        from omicsgen.registry import data_root

        local = local_store_uri(data_root())
        wanted = self._settings.get("uri") or self._environment_uri
        if not wanted:
            return local
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        try:
            mlflow.set_tracking_uri(wanted)
            mlflow.search_experiments(max_results=1)
            return wanted
        except Exception as error:  # noqa: BLE001 — any failure to reach it means: record locally
            logger.warning(
                "MLflow tracking server %s cannot be reached (%s: %s); this run is recorded in the local store %s",
                wanted, type(error).__name__, str(error).splitlines()[0][:200], local,
            )  # fmt: skip
            return local

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if not self._settings.get("enabled", True):
            return
        import mlflow
        from mlflow.tracking import MlflowClient

        logging.getLogger("alembic").setLevel(logging.WARNING)
        if mlflow.active_run() is not None:  # left open by an earlier session in this process
            mlflow.end_run("KILLED")
        uri = self._store()
        mlflow.set_tracking_uri(uri)
        name = self._settings.get("experiment") or "omicsgen"
        if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(name) is None:
            # the local store keeps its artefacts beside it, not in the working directory
            from omicsgen.registry import data_root

            mlflow.create_experiment(name, artifact_location=(data_root() / "mlartifacts").resolve().as_uri())
        mlflow.set_experiment(name)
        namespaces = sorted({node.namespace for node in pipeline.nodes if node.namespace})
        runs = sorted({ns for ns in namespaces if ns.count(".") == 1})
        datasets = sorted({ns.split(".")[0] for ns in namespaces})
        methods = sorted({ns.split(".")[1].removesuffix("_apply") for ns in runs})
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        self._run = mlflow.start_run(run_name=f"{'+'.join(pipelines)} ({self._env or 'local'})")
        self._client = MlflowClient(uri)
        mlflow.set_tags({
            "kedro.pipeline": ",".join(pipelines), "kedro.env": self._env or "local",
            "kedro.namespaces": ",".join(run_params.get("namespaces") or []) or "all",
            "datasets": ",".join(datasets), "methods": ",".join(methods), "runs": ",".join(runs),
        })  # fmt: skip
        from omicsgen.models.runtime import resolve_threads
        from omicsgen.models.training import package_versions

        try:
            threads = resolve_threads(catalog.load("params:runtime").get("threads", "auto"))
        except DatasetError:
            threads = resolve_threads("auto")
        # numbers are bit-identical for the same seed, threads, device and versions
        mlflow.set_tags({"threads": threads, **{f"version.{k}": v for k, v in package_versions().items()}})
        parameters = {}
        for name in [*methods, "runtime", "data_engineering", *[f"datasets.{d}" for d in datasets]]:
            try:
                parameters.update(flatten(catalog.load(f"params:{name}"), name))
            except DatasetError:  # a method without parameters of its own
                continue
        for start in range(0, len(parameters), 100):  # MLflow takes at most 100 params a call
            chunk = dict(list(parameters.items())[start : start + 100])
            mlflow.log_params({key[:250]: str(value)[:6000] for key, value in chunk.items()})
        logger.info("MLflow run %s in %s", self._run.info.run_id, uri)

    def _log_history(self, prefix: str, record: Any) -> None:
        from mlflow.entities import Metric

        metrics = []
        for name, history in training_histories(record).items():
            for row in history:
                step = int(row.get("epoch", 0))
                for key, value in numeric_leaves({k: v for k, v in row.items() if k != "epoch"}).items():
                    metrics.append(Metric(_metric_name(".".join(p for p in (prefix, name, key) if p)), value, 0, step))
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(self._run.info.run_id, metrics=metrics[start : start + 1000])

    def _log_grid(self, prefix: str, table: pd.DataFrame) -> None:
        import mlflow

        for _, row in table.iterrows():
            values = {str(k): v for k, v in row.items()}
            with mlflow.start_run(run_name=f"{prefix} {values.get('setting', '')} seed {values.get('seed', '')}", nested=True):
                mlflow.log_params({k[:250]: str(v)[:6000] for k, v in values.items() if not str(k).startswith("metric_")})
                mlflow.log_metrics(numeric_leaves({k: v for k, v in values.items() if k.startswith(("metric_", "train_", "seconds"))}))

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        if self._run is None:
            return
        import mlflow

        for name, value in outputs.items():
            prefix, _, output = name.rpartition(".")
            if output in ("training", "augmentation_training", "grid_best_training") and isinstance(value, Mapping):
                self._log_history(f"{prefix}.{output}", value)
            elif output == "metrics" and isinstance(value, Mapping):
                mlflow.log_metrics({_metric_name(f"{prefix}.{k}"): v for k, v in numeric_leaves(value).items()})
            elif output == "grid_search" and isinstance(value, pd.DataFrame):
                self._log_grid(prefix, value)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self._run is None:
            return
        import mlflow

        for name in sorted(pipeline.all_outputs()):
            try:
                description = catalog.get(name)._describe()
            except Exception:  # memory datasets, parameters
                continue
            path = Path(str(description.get("filepath", ""))) if isinstance(description, dict) else None
            if path is None or not path.is_file():
                continue
            if name == "summary_report":
                mlflow.log_artifact(str(path), "report")
            elif path.suffix == ".pt":
                mlflow.log_artifact(str(path), f"models/{name.rpartition('.')[0]}")
        mlflow.end_run("FINISHED")
        self._run = None

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self._run is not None:
            import mlflow

            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.end_run("FAILED")
            self._run = None
