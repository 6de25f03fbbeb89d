"""NormAE modelling: validate → train → remove (apply the saved model) → export tables,
with ComBat on the same input as the baseline. Runs on every metabolomics dataset."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.normae import nodes


def _remove_nodes() -> list:
    return [
        node(nodes.remove, ["checked_input", "model", "settings"], "corrected", name="remove"),
        node(
            nodes.export_tables,
            "corrected",
            ["original_table", "sample_info_table", "reconstructed_table", "latent_table", "corrected_table"],
            name="export_tables",
        ),
    ]


def _validate_node():
    return node(nodes.validate_normae_input, ["model_input", "settings"], "checked_input", name="validate_input")


def create_pipeline(kind: str = "metabolomics") -> Pipeline:
    return pipeline(
        [
            _validate_node(),
            node(
                nodes.train,
                ["checked_input", "settings"],
                ["model", "training", "train_history", "config", "early_stop_info"],
                name="train",
            ),
            *_remove_nodes(),
            node(nodes.combat, ["checked_input", "settings"], "combat_table", name="combat"),
        ]
    )


def create_remove_pipeline() -> Pipeline:
    """Apply the model saved in ``06_models/<dataset>/normae`` to the data, without training."""
    return pipeline([_validate_node(), *_remove_nodes()])


def create_extra_pipelines(kind: str = "metabolomics") -> dict[str, Pipeline]:
    return {"normae_remove": create_remove_pipeline()}
