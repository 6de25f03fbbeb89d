"""``aif`` modelling pipeline and the ``aif_grid_search`` extra pipeline."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines import data_engineering
from omicsgen.pipelines.modelling.aif import nodes

DATASETS = ("pbmc_batches",)
INPUTS = {"pbmc_batches.model_input"}


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(nodes.validate_inputs, ["pbmc_batches.model_input", "params:aif"], "checked_input", name="validate_inputs"),
            node(
                nodes.train_model,
                ["checked_input", "params:aif"],
                ["model", "checkpoint", "training"],
                name="train",
            ),
            node(nodes.correct_batches, ["model", "checked_input", "params:aif"], "corrected", name="correct"),
            node(nodes.integration_embeddings, ["corrected", "params:aif"], "embeddings", name="embed_methods"),
        ],
        namespace="aif",
        inputs=INPUTS,
        parameters={"params:aif"},
    )


def create_grid_search_pipeline() -> Pipeline:
    return pipeline(
        [
            node(nodes.validate_inputs, ["pbmc_batches.model_input", "params:aif"], "grid_input", name="validate_grid_inputs"),
            node(nodes.run_grid_searches, ["grid_input", "params:aif"], "grid_search", name="run_grid_searches"),
            node(nodes.select_best_setting, ["grid_search", "params:aif"], "grid_best_setting", name="select_best_setting"),
            node(
                nodes.refit_best,
                ["grid_input", "grid_best_setting", "params:aif"],
                ["grid_best_checkpoint", "grid_best_training"],
                name="refit_best",
            ),
        ],
        namespace="aif",
        inputs=INPUTS,
        parameters={"params:aif"},
    )


def create_extra_pipelines() -> dict[str, Pipeline]:
    inputs = data_engineering.create_dataset_pipeline("pbmc_batches")
    return {"aif_grid_search": inputs + create_grid_search_pipeline()}
