"""``aif`` modelling pipeline, the ``aif_grid_search`` extra pipeline and the ``aif_apply``
template."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.aif import nodes


def create_pipeline(kind: str = "scrna_batches") -> Pipeline:
    return pipeline(
        [
            node(nodes.validate_inputs, ["model_input", "settings"], "checked_input", name="validate_inputs"),
            node(nodes.train_model, ["checked_input", "settings"], ["model", "training"], name="train", tags="training"),
            node(nodes.correct_batches, ["model", "checked_input", "settings"], "corrected", name="correct"),
            node(nodes.integration_embeddings, ["corrected", "settings"], "embeddings", name="embed_methods"),
        ]
    )


def create_grid_search_pipeline() -> Pipeline:
    return pipeline(
        [
            node(nodes.validate_inputs, ["model_input", "settings"], "grid_input", name="validate_grid_inputs"),
            node(nodes.run_grid_searches, ["grid_input", "settings"], "grid_search", name="run_grid_searches"),
            node(nodes.select_best_setting, ["grid_search", "settings"], "grid_best_setting", name="select_best_setting"),
            node(
                nodes.refit_best,
                ["grid_input", "grid_best_setting", "settings"],
                ["grid_best_checkpoint", "grid_best_training"],
                name="refit_best",
            ),
        ]
    )


def create_extra_pipelines(kind: str = "scrna_batches") -> dict[str, Pipeline]:
    return {"aif_grid_search": create_grid_search_pipeline()}


def create_apply_pipeline(kind: str = "scrna_batches") -> Pipeline:
    """A saved model (``model``) corrects the dataset's cells (``model_input``), whose
    batches must be ones it was trained on; genes are matched by name → ``applied``."""
    return pipeline([node(nodes.correct_batches, ["model", "model_input", "settings"], "applied", name="correct")])
