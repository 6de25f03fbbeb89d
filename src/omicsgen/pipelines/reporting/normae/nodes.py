"""NormAE reporting: metrics for uncorrected / ComBat / QC-RSC / SERRF / NormAE, and the figures.

Every version is scored on two scales (``metrics.SCALES``): the intensities as given and
log2(x + 1) then standardised (keys ending in ``_log_standardised``). How each version's
QC RSD was obtained — in-sample or with QCs left out of the fit — is written beside it."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.metrics.metabolomics import (
    SCALES,
    batch_accuracy_chance,
    batch_accuracy_target_met,
    correction_metrics,
)
from omicsgen.pipelines.modelling.normae.nodes import CORRECTED, ORIGINAL, table_values
from omicsgen.plots import normae as plots
from omicsgen.preprocessing.validate import source_of

#: how each version's QC RSD is obtained (metrics.json ``qc_rsd_evaluation``)
QC_RSD_EVALUATION = {
    "uncorrected": "the input intensities (nothing fitted)",
    "combat": "in-sample: ComBat never reads the QC labels (the QCs are ordinary samples in its batch "
    "means and variances), so no QC is a fitting target; not cross-validated",
    "normae": "in-sample, not cross-validated: NormAE is trained once on every sample and the QC labels "
    "choose its kept epoch (QC PCA distance + QC L1 loss), so its QC RSD is optimistic; refitting it "
    "per fold costs a full training each",
    "qc_rsc": "in-sample (median_qc_rsd: the QCs are the fit's targets, optimistic) and cross-validated "
    "(median_qc_rsd_cross_validated: K folds over the QCs stratified by batch, each QC corrected by a fit "
    "without it)",
}
QC_RSD_EVALUATION["serrf"] = QC_RSD_EVALUATION["qc_rsc"]


def data_versions(
    corrected: ad.AnnData, combat_table: pd.DataFrame, qc_rsc_table: pd.DataFrame | None = None,
    serrf_table: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Samples × features on the original intensity scale, one entry per version (a
    baseline that did not run — an empty table — is left out)."""
    versions = {
        "uncorrected": np.asarray(corrected.layers[ORIGINAL], dtype=np.float64),
        "combat": table_values(combat_table, corrected),
    }
    for name, table in (("qc_rsc", qc_rsc_table), ("serrf", serrf_table)):
        if table is not None and len(table) and table.shape[1] > 1:
            versions[name] = table_values(table, corrected)
    versions["normae"] = np.asarray(corrected.layers[CORRECTED], dtype=np.float64)
    return versions


def _class_selection(obs: pd.DataFrame, params: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """(the two classes of the AUC, None) or (None, why the class separation is skipped)."""
    if params.get("class_labels"):
        return [str(label) for label in params["class_labels"]], None
    column, qc = params["class_column"], obs["is_qc"].astype(bool)
    counts = obs.loc[~qc, column].astype(str).value_counts()
    labels = sorted(counts.index)
    if len(labels) != 2:
        return None, (
            f"class column '{column}' has {len(labels)} non-QC class(es) {labels}, the class AUC "
            "needs exactly two; set normae.metrics.class_labels to the two classes whose "
            "separation must be kept"
        )
    if counts.min() < 2:
        return None, (
            f"class column '{column}': non-QC classes {labels} have {[int(counts[c]) for c in labels]} "
            "samples, the cross-validated class AUC needs at least 2 per class; set "
            "normae.metrics.class_labels to two classes with more samples"
        )
    return labels, None


def biological_classes(obs: pd.DataFrame, params: dict[str, Any]) -> list[str] | None:
    """The two classes compared by the AUC: ``class_labels`` if given, else the two
    non-QC values of the class column (sorted; the first is the positive class).
    None when ``class_labels`` is unset and there are not exactly two non-QC classes
    (or one has fewer than two samples): the class separation is then skipped."""
    return _class_selection(obs, params)[0]


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    return value


def compute_metrics(  # noqa: PLR0913
    corrected: ad.AnnData,
    combat_table: pd.DataFrame,
    params: dict[str, Any],
    qc_rsc_table: pd.DataFrame | None = None,
    serrf_table: pd.DataFrame | None = None,
    qc_rsc_evaluation: dict | None = None,
    serrf_evaluation: dict | None = None,
) -> dict:
    """metrics.json: every metric for every version, plus NormAE's change vs the others.

    Without two biological classes the class AUC is skipped and ``"class_separation"``
    says why. The QC RSD is computed on intensities (``"rsd_scale"``; log-scale input,
    ``uns["input_scale"] == "log"``, is taken back as 2**x); ``"qc_rsd_evaluation"`` says
    per version whether it is in-sample or cross-validated (QC-RSC and SERRF also get
    ``"median_qc_rsd_cross_validated"``), ``"scales"`` what the two scales are.
    """
    settings = params["metrics"]
    obs = corrected.obs
    run = corrected.uns.get("normae", {})
    seed = run["seed"]  # the model's: the cross-validation folds follow the training seed
    labels, skipped = _class_selection(obs, settings)
    input_scale = str(corrected.uns.get("input_scale", "intensity"))
    batches = obs[params["setup"]["batch_key"]].astype(str).to_numpy()
    results = {
        name: correction_metrics(
            values,
            is_qc=obs[params["setup"]["qc_key"]].to_numpy(dtype=bool),
            batches=batches,
            classes=obs[settings["class_column"]].astype(str).to_numpy(),
            class_labels=labels,
            pca_components=settings["pca_components"],
            n_folds=settings["cv_folds"],
            classifier_components=settings["classifier_components"],
            seed=seed,
            input_scale=input_scale,
            log_standardised=bool(settings.get("log_standardised", False)),
        )
        for name, values in data_versions(corrected, combat_table, qc_rsc_table, serrf_table).items()
    }
    # one scale for every version: reported once, the per-version entries stay numeric
    rsd_scale = {version.pop("rsd_scale") for version in results.values()}.pop()
    baseline_runs = {}
    for evaluation in (qc_rsc_evaluation or {}, serrf_evaluation or {}):
        if evaluation.get("ran") and evaluation["method"] in results:
            results[evaluation["method"]]["median_qc_rsd_cross_validated"] = evaluation["cross_validation"]["median_qc_rsd"]
            baseline_runs[evaluation["method"]] = {k: v for k, v in evaluation.items() if k not in ("method", "ran")}
    normae = results["normae"]
    chance = batch_accuracy_chance(batches)
    baselines = {k: v for k, v in results.items() if k in ("uncorrected", "combat")}
    qc_based = {k: v for k, v in results.items() if k in ("qc_rsc", "serrf")}
    targets = {
        "qc_pca_distance_below_uncorrected_and_combat": all(
            normae["qc_pca_distance"] < b["qc_pca_distance"] for b in baselines.values()
        ),
        "median_qc_rsd_below_uncorrected_and_combat": all(
            normae["median_qc_rsd"] < b["median_qc_rsd"] for b in baselines.values()
        ),
        "batch_accuracy_below_uncorrected": normae["batch_accuracy"] < results["uncorrected"]["batch_accuracy"],
        # the bar: below ComBat, or both at chance (ComBat's exact mean removal can
        # land below chance under cross-validation; neither is then a readable batch)
        "batch_accuracy_below_combat_or_both_at_chance": batch_accuracy_target_met(
            normae["batch_accuracy"], results["combat"]["batch_accuracy"], chance
        ),
    }
    if qc_based:
        names = "_and_".join(qc_based)
        for metric in ("qc_pca_distance", "qc_pca_distance_log_standardised"):
            if metric in normae:
                targets[f"{metric}_below_{names}"] = all(normae[metric] < b[metric] for b in qc_based.values())
    if labels is not None:
        targets["class_auc_within_0.02_of_uncorrected"] = (
            normae["class_auc"] >= results["uncorrected"]["class_auc"] - 0.02
        )
    report = {
        "input_file": run.get("input_file", source_of(corrected)),
        "info_file": run.get("info_file", ""),
        "n_samples": corrected.n_obs,
        "n_features": corrected.n_vars,
        "n_qc": int(obs[params["setup"]["qc_key"]].astype(bool).sum()),
        "batch_accuracy_chance": chance,
        "class_labels": labels,
        "input_scale": input_scale,
        "rsd_scale": rsd_scale,
        "scales": dict(SCALES) if settings.get("log_standardised") else {"intensity": SCALES["intensity"]},
        "qc_rsd_evaluation": {name: QC_RSD_EVALUATION[name] for name in results},
        "selected_epoch": run.get("selected", {}),
        "metrics": results,
        "targets_met": targets,
    }
    if baseline_runs:
        # timings stay in the baselines' own records (07_model_output): metrics.json holds
        # only what the same seed reproduces
        report["qc_baselines"] = _without_timings(baseline_runs)
    if skipped is not None:
        report["class_separation"] = {"skipped": skipped}
    return report


def pca_figure(corrected: ad.AnnData, combat_table: pd.DataFrame, params: dict[str, Any],
               qc_rsc_table: pd.DataFrame | None = None, serrf_table: pd.DataFrame | None = None):  # fmt: skip
    obs = corrected.obs
    return plots.pca_by_batch(
        data_versions(corrected, combat_table, qc_rsc_table, serrf_table),
        obs[params["setup"]["batch_key"]].astype(str).to_numpy(),
        obs[params["setup"]["qc_key"]].to_numpy(dtype=bool),
    )


def rsd_figure(corrected: ad.AnnData, combat_table: pd.DataFrame, params: dict[str, Any],
               qc_rsc_table: pd.DataFrame | None = None, serrf_table: pd.DataFrame | None = None):  # fmt: skip
    return plots.qc_rsd_distribution(
        data_versions(corrected, combat_table, qc_rsc_table, serrf_table),
        corrected.obs[params["setup"]["qc_key"]].to_numpy(dtype=bool),
        corrected.uns.get("input_scale", "intensity"),
    )


def training_curves_figure(train_history: pd.DataFrame):
    from omicsgen.plots.training import training_curves

    return training_curves({"NormAE": train_history.to_dict("records")}, title="NormAE training (shading: phases)")
