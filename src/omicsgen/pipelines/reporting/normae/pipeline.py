"""NormAE reporting: ``metrics.json`` and figures in ``data/08_reporting/normae``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.normae import nodes


def create_pipeline(kind: str = "metabolomics") -> Pipeline:
    inputs = ["corrected", "combat_table", "settings", "qc_rsc_table", "serrf_table"]
    return pipeline(
        [
            node(nodes.compute_metrics, [*inputs, "qc_rsc_evaluation", "serrf_evaluation"], "metrics", name="compute_metrics"),
            node(nodes.pca_figure, inputs, "pca_by_batch", name="plot_pca_by_batch"),
            node(nodes.rsd_figure, inputs, "qc_rsd_distribution", name="plot_qc_rsd_distribution"),
            node(nodes.training_curves_figure, "train_history", "training_curves", name="plot_training_curves"),
        ],
    )
