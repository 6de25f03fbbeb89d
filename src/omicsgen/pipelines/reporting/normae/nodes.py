"""NormAE reporting: metrics for uncorrected / ComBat / NormAE, and the figures."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.metrics.metabolomics import correction_metrics
from omicsgen.pipelines.modelling.normae.nodes import CORRECTED, ORIGINAL, table_values
from omicsgen.plots import normae as plots
from omicsgen.preprocessing.validate import InputValidationError, source_of


def data_versions(corrected: ad.AnnData, combat_table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Samples × features on the original intensity scale, one entry per version."""
    return {
        "uncorrected": np.asarray(corrected.layers[ORIGINAL], dtype=np.float64),
        "combat": table_values(combat_table, corrected),
        "normae": np.asarray(corrected.layers[CORRECTED], dtype=np.float64),
    }


def biological_classes(obs: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    """The two classes compared by the AUC: ``class_labels`` if given, else the two
    non-QC values of the class column (sorted; the first is the positive class)."""
    if params.get("class_labels"):
        return [str(label) for label in params["class_labels"]]
    column, qc = params["class_column"], obs["is_qc"].astype(bool)
    labels = sorted(obs.loc[~qc, column].astype(str).unique())
    if len(labels) != 2:
        raise InputValidationError(
            f"{column!r} has {len(labels)} non-QC classes {labels}; set normae.metrics.class_labels "
            "to the two classes whose separation must be kept"
        )
    return labels


def compute_metrics(corrected: ad.AnnData, combat_table: pd.DataFrame, params: dict[str, Any]) -> dict:
    """metrics.json: every metric for every version, plus NormAE's change vs the others."""
    settings = params["metrics"]
    obs = corrected.obs
    labels = biological_classes(obs, settings)
    results = {
        name: correction_metrics(
            values,
            is_qc=obs[params["keys"]["qc"]].to_numpy(dtype=bool),
            batches=obs[params["keys"]["batch"]].astype(str).to_numpy(),
            classes=obs[settings["class_column"]].astype(str).to_numpy(),
            class_labels=labels,
            pca_components=settings["pca_components"],
            n_folds=settings["cv_folds"],
            classifier_components=settings["classifier_components"],
            seed=params["seed"],
        )
        for name, values in data_versions(corrected, combat_table).items()
    }
    normae, baselines = results["normae"], {k: v for k, v in results.items() if k != "normae"}
    targets = {
        "qc_pca_distance_below_uncorrected_and_combat": all(
            normae["qc_pca_distance"] < b["qc_pca_distance"] for b in baselines.values()
        ),
        "median_qc_rsd_below_uncorrected_and_combat": all(
            normae["median_qc_rsd"] < b["median_qc_rsd"] for b in baselines.values()
        ),
        "batch_accuracy_below_uncorrected": normae["batch_accuracy"] < results["uncorrected"]["batch_accuracy"],
        "class_auc_within_0.02_of_uncorrected": normae["class_auc"] >= results["uncorrected"]["class_auc"] - 0.02,
    }
    return {
        "input_file": corrected.uns.get("normae", {}).get("input_file", source_of(corrected)),
        "info_file": corrected.uns.get("normae", {}).get("info_file", ""),
        "n_samples": corrected.n_obs,
        "n_features": corrected.n_vars,
        "n_qc": int(obs[params["keys"]["qc"]].astype(bool).sum()),
        "class_labels": labels,
        "selected_epoch": corrected.uns.get("normae", {}).get("selected", {}),
        "metrics": results,
        "targets_met": targets,
    }


def pca_figure(corrected: ad.AnnData, combat_table: pd.DataFrame, params: dict[str, Any]):
    obs = corrected.obs
    return plots.pca_by_batch(
        data_versions(corrected, combat_table),
        obs[params["keys"]["batch"]].astype(str).to_numpy(),
        obs[params["keys"]["qc"]].to_numpy(dtype=bool),
    )


def rsd_figure(corrected: ad.AnnData, combat_table: pd.DataFrame, params: dict[str, Any]):
    return plots.qc_rsd_distribution(
        data_versions(corrected, combat_table), corrected.obs[params["keys"]["qc"]].to_numpy(dtype=bool)
    )


def training_curves_figure(train_history: pd.DataFrame):
    return plots.training_curves(train_history)
