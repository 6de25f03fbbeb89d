"""NormAE modelling: validate → train → correct (with the saved model) → export tables,
with the baselines on the same input: ComBat, and the QC-based QC-RSC and SERRF (those in
``normae.baselines.run``; each also records its cross-validated QC RSD). Runs on every
metabolomics dataset.

``create_apply_pipeline``: a saved model corrects a dataset (``normae_apply``)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.normae import nodes


def create_pipeline(kind: str = "metabolomics") -> Pipeline:
    return pipeline(
        [
            node(nodes.validate_normae_input, ["model_input", "settings"], "checked_input", name="validate_input"),
            node(
                nodes.train,
                ["checked_input", "settings"],
                ["model", "training", "train_history", "config", "early_stop_info"],
                name="train",
                tags="training",
            ),
            node(nodes.correct, ["checked_input", "model", "settings"], "corrected", name="correct"),
            node(
                nodes.export_tables,
                "corrected",
                ["original_table", "sample_info_table", "reconstructed_table", "latent_table", "corrected_table"],
                name="export_tables",
            ),
            node(nodes.combat, ["checked_input", "settings"], "combat_table", name="combat"),
            node(nodes.qc_rsc, ["checked_input", "settings"], ["qc_rsc_table", "qc_rsc_evaluation"], name="qc_rsc"),
            node(nodes.serrf, ["checked_input", "settings"], ["serrf_table", "serrf_evaluation"], name="serrf"),
        ]
    )


def create_apply_pipeline(kind: str = "metabolomics") -> Pipeline:
    """Correct the dataset with the saved model (``"model"``): ``"applied"`` (the AnnData of
    the training pipeline's ``corrected``) and ``"applied_table"`` (corrected features ×
    samples on the original scale, like ``Rec_nobe.csv``)."""
    return pipeline([node(nodes.apply, ["model_input", "model", "settings"], ["applied", "applied_table"], name="apply")])
