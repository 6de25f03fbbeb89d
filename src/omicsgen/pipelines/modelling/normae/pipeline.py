"""NormAE modelling: validate → train → remove (apply the saved model) → export tables,
with ComBat on the same input as the baseline. Namespace ``normae``; input
``mtbls79.model_input`` (point ``mtbls79.raw_data``/``mtbls79.raw_info`` at any
data.csv/info.csv pair to correct other data)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.normae import nodes

#: the data-engineering namespace whose ``model_input`` NormAE corrects
DATASET = "mtbls79"


def _remove_nodes() -> list:
    return [
        node(nodes.remove, ["checked_input", "model", "params:device"], "corrected", name="remove"),
        node(
            nodes.export_tables,
            "corrected",
            ["original_table", "sample_info_table", "reconstructed_table", "latent_table", "corrected_table"],
            name="export_tables",
        ),
    ]


def _validate_node():
    return node(nodes.validate_normae_input, ["model_input", "params:normae"], "checked_input", name="validate_input")


def _namespaced(nodes_: list) -> Pipeline:
    return pipeline(
        nodes_,
        namespace="normae",
        inputs={"model_input": f"{DATASET}.model_input"},
        parameters={"params:normae": "params:normae"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return _namespaced(
        [
            _validate_node(),
            node(
                nodes.train,
                ["checked_input", "params:normae"],
                ["model", "training", "train_history", "config", "early_stop_info"],
                name="train",
            ),
            *_remove_nodes(),
            node(nodes.combat, ["checked_input", "params:normae"], "combat_table", name="combat"),
        ]
    )


def create_remove_pipeline() -> Pipeline:
    """Apply the model saved in ``06_models/normae`` to the data, without training."""
    return _namespaced([_validate_node(), *_remove_nodes()])
