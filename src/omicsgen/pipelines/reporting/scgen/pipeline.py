"""scGen reporting: metrics.json, timings and figures under data/08_reporting/<dataset>/scgen."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.scgen import nodes


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    return pipeline(
        [
            node(
                nodes.score_predictions,
                ["model_input", "predictions", "baseline_predictions", "training", "settings"],
                "metrics",
                name="score_predictions",
            ),
            node(nodes.training_timings, "training", "timings", name="summarise_training_timings"),
            node(
                nodes.plot_mean_scatter,
                ["model_input", "predictions", "metrics", "settings"],
                "mean_expression_scatter",
                name="plot_mean_expression_scatter",
            ),
            node(
                nodes.plot_strongest_deg_violin,
                ["model_input", "predictions", "metrics", "settings"],
                "strongest_deg_violin",
                name="plot_strongest_deg_violin",
            ),
            node(nodes.plot_training_curves, "training", "training_curves", name="plot_training_curves"),
        ]
    )
