"""scGen modelling: check inputs → train one model per held-out type → predict; baselines.
The apply template predicts another dataset's control cells with the saved models."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.scgen import nodes


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    return pipeline(
        [
            node(
                nodes.held_out_cell_types,
                ["model_input", "settings"],
                "held_out_cell_types",
                name="check_inputs_and_select_held_out_types",
            ),
            node(
                nodes.train_models,
                ["model_input", "held_out_cell_types", "settings"],
                ["model", "training"],
                name="train_one_model_per_held_out_type",
                tags="training",
            ),
            node(
                nodes.predict_held_out,
                ["model_input", "model", "settings"],
                "predictions",
                name="predict_held_out_stimulated_cells",
            ),
            node(
                nodes.predict_baselines,
                ["model_input", "held_out_cell_types", "settings"],
                "baseline_predictions",
                name="predict_baselines",
            ),
        ]
    )


def create_apply_pipeline(kind: str = "perturbation") -> Pipeline:
    """``scgen_apply``: the saved models (``model``: ``{held-out type: checkpoint}``) predict
    the control cells of their held-out types in ``model_input`` → ``applied``."""
    return pipeline(
        [
            node(
                nodes.predict_held_out,
                ["model_input", "model", "settings"],
                "applied",
                name="predict_with_saved_models",
            )
        ]
    )
