"""scGen modelling: check inputs → train one model per held-out type → predict; baselines."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.scgen import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.held_out_cell_types,
                ["kang.model_input", "params:holdout", "params:keys"],
                "held_out_cell_types",
                name="check_inputs_and_select_held_out_types",
            ),
            node(
                nodes.train_models,
                [
                    "kang.model_input", "held_out_cell_types", "params:keys", "params:model",
                    "params:training", "params:seed", "params:device",
                ],
                ["model", "training"],
                name="train_one_model_per_held_out_type",
            ),
            node(
                nodes.predict_held_out,
                ["kang.model_input", "model", "params:keys", "params:device"],
                "predictions",
                name="predict_held_out_stimulated_cells",
            ),
            node(
                nodes.predict_baselines,
                ["kang.model_input", "held_out_cell_types", "params:keys", "params:evaluation", "params:seed"],
                "baseline_predictions",
                name="predict_baselines",
            ),
        ],
        namespace="scgen",
        inputs={"kang.model_input"},
    )
