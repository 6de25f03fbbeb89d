"""scGen reporting nodes: per held-out type and method, R² of means/variances (all genes,
top DEGs), Pearson Δ (all genes, top DEGs) and the energy distance; which method is best
on each metric; and the figures."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np

from omicsgen.metrics.degenerate import degenerate_settings
from omicsgen.metrics.perturbation import (
    MAX_SCORED_CELLS,
    at_most,
    cells_of,
    evaluation_space,
    perturbation_scores,
    response_scores,
    scored_subsample,
    top_degs,
)

METHODS = ("scgen", "gene_arithmetic", "pca_arithmetic", "mean_response", "null")
#: metrics where the lowest value is best (every other one: the highest)
LOWER_IS_BETTER = frozenset({"energy_distance"})


def _in_memory(cells: ad.AnnData) -> ad.AnnData:
    """The expression and annotations of (a view of) a backed file, read once; scoring needs
    no other layer."""
    if not cells.isbacked:
        return cells
    return ad.AnnData(X=cells.X, obs=cells.obs.copy(), var=cells.var.copy())


def _predicted(predictions: ad.AnnData, cell_type: str, method: str) -> ad.AnnData:
    mask = (predictions.obs["held_out"].astype(str) == cell_type) & (
        predictions.obs["method"].astype(str) == method
    )
    return predictions[mask.to_numpy()]


def _value(score: Any) -> float | None:
    """A metric's number: the bootstrap mean of an R², the value of a single score."""
    return score["mean"] if isinstance(score, dict) else score


def best_methods(methods: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Per metric, the method(s) with the best value (ties, equal to 1e-6 relative, all
    named: a shift leaves variances equal up to float32 rounding; undefined values, such as
    the null prediction's Pearson Δ, are left out)."""
    best = {}
    for metric in next(iter(methods.values())):
        values = {m: _value(scores[metric]) for m, scores in methods.items() if _value(scores.get(metric)) is not None}
        if values:
            pick = min if metric in LOWER_IS_BETTER else max
            top = pick(values.values())
            best[metric] = [m for m, v in values.items() if np.isclose(v, top, rtol=1e-6, atol=0.0)]
    return best


def _mean_over_types(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def score_predictions(
    adata: ad.AnnData,
    predictions: ad.AnnData,
    baseline_predictions: ad.AnnData,
    training: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: per held-out type, its top DEGs, every method's bootstrap R², Pearson
    Δ and energy distance, and the best method per metric; the epochs each model ran; and
    the mean over types (of the defined values). Deterministic (no timings)."""
    keys, evaluation, seed = params["keys"], params["evaluation"], params["training"]["seed"]
    warnings = degenerate_settings(adata.n_vars, {
        "scgen.evaluation.n_degs": (evaluation["n_degs"], "the top-DEG scores are all-gene scores"),
        "scgen.evaluation.pca_components": (evaluation["pca_components"], "PCA arithmetic is gene-space arithmetic"),
        "scgen.evaluation.energy_pca_components": (
            evaluation["energy_pca_components"], "energy distances are measured in all of gene space"),
    })  # fmt: skip
    per_type: dict[str, Any] = {}
    top = f"r2_mean_top{evaluation['n_degs']}"
    max_scored = evaluation.get("max_cells", MAX_SCORED_CELLS)
    for cell_type in training:
        degs = top_degs(adata, cell_type, evaluation["n_degs"], **keys, max_cells=max_scored)
        # the held-out type's cells, read once (a backed file would be re-read per method)
        real = at_most(_in_memory(cells_of(adata, cell_type, keys["stimulated"], **keys)), max_scored, seed)
        control = at_most(_in_memory(cells_of(adata, cell_type, keys["control"], **keys)), max_scored, seed)
        max_cells = evaluation["energy_max_cells"]
        space = evaluation_space(control, real, evaluation["energy_pca_components"], max_cells, seed)
        methods = {}
        for method in METHODS:
            source = predictions if method == "scgen" else baseline_predictions
            predicted = at_most(_predicted(source, cell_type, method), max_scored, seed)
            methods[method] = {
                **perturbation_scores(predicted, real, degs, evaluation["n_draws"], evaluation["fraction"], seed),
                **response_scores(predicted, control, real, degs, space, max_cells, seed),
            }
        per_type[cell_type] = {
            "n_real_stimulated": int(real.n_obs),
            **({"scored_on_subsample": sub} if (sub := scored_subsample(
                adata, cell_type, keys["condition_key"], keys["cell_type_key"], max_scored)) else {}),  # fmt: skip
            "top_degs": degs,
            "methods": methods,
            "epochs_run": training[cell_type]["epochs_run"],
            "best_epoch": training[cell_type]["best_epoch"],
            "best_method": best_methods(methods),
            "scgen_beats_every_baseline_top_degs": all(
                methods["scgen"][top]["mean"] > methods[m][top]["mean"] for m in METHODS[1:]
            ),
        }
    summary = {
        method: {
            metric: _mean_over_types([_value(per_type[t]["methods"][method][metric]) for t in per_type])
            for metric in per_type[next(iter(per_type))]["methods"][method]
        }
        for method in METHODS
    }
    # the rule the predictions were made with (recorded beside them), not a second default
    prediction = "residual" if predictions.uns["scgen"]["residual"] else "decoded"
    return {"held_out": per_type, "mean_over_held_out_types": summary, "prediction": prediction, "warnings": warnings}


def training_timings(training: dict[str, Any]) -> dict[str, Any]:
    """Per model: epochs run, seconds per epoch, peak memory, device (kept out of
    metrics.json, which must be identical for the same seed)."""
    return {
        cell_type: {
            key: record[key]
            for key in ("epochs_run", "best_epoch", "seconds", "seconds_per_epoch", "peak_memory_mb", "device")
        }
        for cell_type, record in training.items()
    }


def _mean(x) -> np.ndarray:
    return np.asarray(x.mean(axis=0)).ravel()


def plot_mean_scatter(adata: ad.AnnData, predictions: ad.AnnData, metrics: dict[str, Any], params: dict[str, Any]):
    from omicsgen.plots.scgen import mean_expression_scatter

    keys, evaluation = params["keys"], params["evaluation"]
    top = f"r2_mean_top{evaluation['n_degs']}"
    panels = []
    for cell_type, entry in metrics["held_out"].items():
        scores = entry["methods"]["scgen"]
        panels.append(
            {
                "title": f"scGen, {cell_type} held out",
                "real": _mean(cells_of(adata, cell_type, keys["stimulated"], **keys).X),
                "predicted": _mean(_predicted(predictions, cell_type, "scgen").X),
                "genes": list(adata.var_names),
                "degs": entry["top_degs"],
                "r2_all": scores["r2_mean_all"]["mean"],
                "r2_top": scores[top]["mean"],
            }
        )
    return mean_expression_scatter(panels)


def _column(matrix, index: int) -> np.ndarray:
    column = matrix[:, index]
    return np.asarray(column.toarray() if hasattr(column, "toarray") else column).ravel()


def plot_strongest_deg_violin(adata: ad.AnnData, predictions: ad.AnnData, metrics: dict[str, Any], params: dict[str, Any]):
    from omicsgen.plots.scgen import deg_violins

    keys = params["keys"]
    panels = []
    for cell_type, entry in metrics["held_out"].items():
        gene = entry["top_degs"][0]
        index = adata.var_names.get_loc(gene)
        panels.append(
            {
                "title": f"{cell_type} held out",
                "gene": gene,
                "groups": {
                    "control": _column(cells_of(adata, cell_type, keys["control"], **keys).X, index),
                    "real stimulated": _column(cells_of(adata, cell_type, keys["stimulated"], **keys).X, index),
                    "predicted": _column(_predicted(predictions, cell_type, "scgen").X, index),
                },
            }
        )
    return deg_violins(panels)


def plot_training_curves(training: dict[str, Any]):
    from omicsgen.plots.training import training_curves

    histories = {f"held out: {t}": r["history"] for t, r in training.items()}
    return training_curves(histories, ["reconstruction"], log_scale=True)
