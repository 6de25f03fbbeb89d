"""NormAE nodes: check the input, train, correct (apply a saved model), the baselines
(ComBat, QC-RSC, SERRF), export tables.

Short calls into :class:`omicsgen.models.NormAE` (imported inside the functions: torch stays
out of the pipeline modules). ``correct`` reads the checkpoint back from ``06_models``, so
the training pipeline and ``normae_apply`` correct with a saved model the same way.
"""

from __future__ import annotations

import time
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.metrics.metabolomics import check_class_labels
from omicsgen.preprocessing import restore_original_scale
from omicsgen.preprocessing.metabolomics import INPUT_SCALE_KEY, INTENSITY_LAYER
from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

#: layers of the ``corrected`` AnnData, all on the original intensity scale
ORIGINAL, RECONSTRUCTED, CORRECTED, COMBAT = "intensity", "normae_reconstructed", "normae_corrected", "combat_corrected"
LATENT = "X_normae"
#: the QC-based baselines (omicsgen.models.baselines.metabolomics), by parameter name
QC_BASELINES = ("qc_rsc", "serrf")
BASELINES_SECTION = "normae.baselines"


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """NormAE reads the dataset's batch, injection-order and class columns (``setup``: the
    arguments of ``NormAE.setup_anndata``); data engineering marks the QC samples in
    ``obs["is_qc"]``."""
    keys = dataset["keys"]
    return {
        **params,
        "setup": {"batch_key": keys["batch"], "order_key": keys["injection_order"], "qc_key": "is_qc"},
        "metrics": {**params["metrics"], "class_column": keys["class"]},
    }


def check_inputs(samples: ad.AnnData, params: dict[str, Any]) -> None:
    """The class labels the parameters name exist (obs only: runs on the raw sample
    annotations before a run, and in ``validate_normae_input``)."""
    check_class_labels(samples.obs, params["metrics"]["class_column"], params["metrics"].get("class_labels"))


def validate_normae_input(model_input: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """What NormAE and ComBat need beyond the data-engineering checks: the obs columns,
    :func:`check_inputs`, at least two QCs, and at least ``checks.min_samples_per_batch``
    samples in every batch."""
    setup, minimum = params["setup"], params["checks"]["min_samples_per_batch"]
    source = source_of(model_input)
    missing = [c for c in (*setup.values(), params["metrics"]["class_column"]) if c not in model_input.obs]
    if missing:
        raise InputValidationError(f"{source}: obs column(s) {preview(missing)} missing")
    check_inputs(model_input, params)
    n_qc = int(model_input.obs[setup["qc_key"]].astype(bool).sum())
    if n_qc < 2:
        raise InputValidationError(f"{source}: {n_qc} QC sample(s); NormAE needs at least two")
    sizes = model_input.obs[setup["batch_key"]].astype(str).value_counts()
    small = sizes[sizes < minimum]
    if len(small):
        raise InputValidationError(
            f"{source}: batches {preview(small.index)} (column '{setup['batch_key']}') have fewer than "
            f"{minimum} samples ({preview(small.to_numpy())})"
        )
    _check_qc_baselines(model_input, params)
    return model_input


def _baseline_settings(params: dict[str, Any]) -> dict[str, Any]:
    section = params.get("baselines") or {}
    unknown = sorted(set(section.get("run") or []) - set(QC_BASELINES))
    if unknown:
        raise InputValidationError(f"{BASELINES_SECTION}.run: unknown baseline(s) {preview(unknown)}; known: {list(QC_BASELINES)}")
    return {"run": list(section.get("run") or []), "cv_folds": int(section.get("cv_folds", 5)),
            "seed": int(section.get("seed", 0)), **{m: dict(section.get(m) or {}) for m in QC_BASELINES}}  # fmt: skip


def _baseline_config(method: str, settings: dict[str, Any]):
    from omicsgen.models.baselines.metabolomics import CONFIGS

    options = {"seed": settings["seed"], **settings[method]} if method == "serrf" else settings[method]
    return CONFIGS[method].from_params(options, f"{BASELINES_SECTION}.{method}")


def _check_qc_baselines(model_input: ad.AnnData, params: dict[str, Any]) -> None:
    """Before training: every baseline that runs has its minimum of QCs per batch, also
    after leaving out a cross-validation fold (errors name the parameter)."""
    from omicsgen.models.baselines.metabolomics import check_qc_per_batch

    settings, setup = _baseline_settings(params), params["setup"]
    is_qc = model_input.obs[setup["qc_key"]].to_numpy(dtype=bool)
    batches = model_input.obs[setup["batch_key"]].astype(str).to_numpy()
    for method in settings["run"]:
        config, parameter = _baseline_config(method, settings), f"{BASELINES_SECTION}.{method}"
        try:
            check_qc_per_batch(is_qc, batches, config.min_qc_per_batch, parameter)
            check_qc_per_batch(is_qc, batches, config.min_qc_per_batch, parameter, settings["cv_folds"])
        except InputValidationError as error:
            raise InputValidationError(f"{source_of(model_input)}: {method}: {error}") from None


def train(model_input: ad.AnnData, params: dict[str, Any]):
    """Train NormAE; returns the checkpoint, the training record, the loss history of every
    phase (``train.csv``), the configuration (``config.json``) and the kept epoch
    (``early_stop_info.json``)."""
    from omicsgen.models import NormAE

    NormAE.setup_anndata(model_input, **params["setup"])
    model = NormAE(model_input, model=params["model"], plan=params["plan"], training=params["training"])
    result = model.train(checkpoint_dir=params["checkpoint_dir"])
    checkpoint = model.checkpoint()
    config = {
        **checkpoint["config"],
        "setup": dict(params["setup"]),
        "device": result.device,
        "n_samples": model_input.n_obs,
        "n_features": model_input.n_vars,
        "batches": list(model.state["batch_categories"]),
        "scaling": dict(model_input.uns.get("scaling", {})),
        "data_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
    }
    early_stop_info = {**model.selected, "training_seconds": result.seconds}
    return checkpoint, result.to_dict(), pd.DataFrame(result.history), config, early_stop_info


def correct(model_input: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> ad.AnnData:
    """Correct ``model_input`` with a saved NormAE model: the AnnData with the original,
    reconstructed and corrected intensities as layers (original scale, inverse transforms
    applied once) and the latent code in ``obsm["X_normae"]``. Features are matched by name;
    a batch the model was not trained on is an error naming it."""
    from omicsgen.models import NormAE

    start = time.perf_counter()
    device = NormAE.TrainingConfig.from_params(params["training"]).device
    model = NormAE.from_checkpoint(checkpoint, device=device)
    NormAE.setup_anndata(model_input, **params["setup"])  # this dataset's columns
    corrected = model.correct(model_input, key_added=CORRECTED)
    for layer in (RECONSTRUCTED, CORRECTED):
        corrected.layers[layer] = restore_original_scale(corrected.layers[layer], corrected)
    corrected.uns["normae"] = {
        "input_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
        "selected": model.selected,
        "seed": model.training_config.seed,
        "correct_seconds": time.perf_counter() - start,
    }
    return corrected


def apply(model_input: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> tuple[ad.AnnData, pd.DataFrame]:
    """``normae_apply``: :func:`correct` with a saved model, and the corrected features ×
    samples table on the original scale (like ``Rec_nobe.csv``)."""
    applied = correct(model_input, checkpoint, params)
    return applied, _feature_table(applied.layers[CORRECTED], applied)


def combat(model_input: ad.AnnData, params: dict[str, Any]) -> pd.DataFrame:
    """Baseline: scanpy's ComBat on the same preprocessed X, back on the original scale
    (features × samples, like ``data.csv``)."""
    import scanpy as sc

    adjusted = sc.pp.combat(model_input, key=params["setup"]["batch_key"], inplace=False)
    return _feature_table(restore_original_scale(adjusted, model_input), model_input)


def _qc_baseline(method: str, model_input: ad.AnnData, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One QC-based baseline on the imputed intensities (``layers["intensity"]``, before
    scaling; log-scale input is taken back as 2**x and the result logged again): the
    corrected features × samples table on the input's scale and its record (settings,
    seconds, the cross-validated QC RSD). Not in ``baselines.run``: an empty table and
    ``{"ran": False}``."""
    from dataclasses import asdict

    from omicsgen.models.baselines.metabolomics import CORRECTIONS, cross_validated_qc_rsd

    settings, setup = _baseline_settings(params), params["setup"]
    if method not in settings["run"]:
        return pd.DataFrame({"feature": pd.Series(dtype=str)}), {"method": method, "ran": False}
    config, parameter = _baseline_config(method, settings), f"{BASELINES_SECTION}.{method}"
    log_input = model_input.uns.get(INPUT_SCALE_KEY) == "log"
    values = np.asarray(model_input.layers[INTENSITY_LAYER], dtype=np.float64)
    values = np.exp2(values) if log_input else values
    obs = model_input.obs
    arrays = (obs[setup["qc_key"]].to_numpy(dtype=bool), obs[setup["batch_key"]].astype(str).to_numpy(),
              obs[setup["order_key"]].to_numpy(dtype=np.float64))  # fmt: skip
    start = time.perf_counter()
    corrected = CORRECTIONS[method](values, *arrays, config, parameter=parameter)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    cv = cross_validated_qc_rsd(method, values, *arrays, config, settings["cv_folds"], settings["seed"], parameter)
    record = {
        "method": method,
        "ran": True,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "seconds": seconds,
        "fitted_on": "intensities (2**x of the log-scale input)" if log_input else "intensities",
        "cross_validation": {
            "median_qc_rsd": cv["median_qc_rsd"],
            "n_folds": cv["n_folds"],
            "seed": settings["seed"],
            "folds": "K folds over the QCs, stratified by batch; each QC corrected by a fit without it",
            "seconds": time.perf_counter() - start,
        },
    }
    corrected = np.log2(corrected) if log_input else corrected
    return _feature_table(corrected, model_input), record


def qc_rsc(model_input: ad.AnnData, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Baseline: QC-RSC (LOESS of the QCs along injection order, per batch and feature)."""
    return _qc_baseline("qc_rsc", model_input, params)


def serrf(model_input: ad.AnnData, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Baseline: SERRF (random forest per feature on the QCs, per batch)."""
    return _qc_baseline("serrf", model_input, params)


def _feature_table(values: np.ndarray, adata: ad.AnnData) -> pd.DataFrame:
    """samples × features values as a features × samples table with a ``feature`` column."""
    table = pd.DataFrame(np.asarray(values).T, index=adata.var_names, columns=adata.obs_names)
    return table.rename_axis("feature").reset_index()


def export_tables(corrected: ad.AnnData):
    """The original NormAE outputs: ``Ori``, ``Ys``, ``Rec``, ``Codes``, ``Rec_nobe``."""
    ys = corrected.obs.drop(columns=["is_qc"], errors="ignore").rename_axis("sample_id").reset_index()
    codes = pd.DataFrame(
        corrected.obsm[LATENT],
        index=pd.Index(corrected.obs_names, name="sample_id"),
        columns=[f"latent_{i}" for i in range(corrected.obsm[LATENT].shape[1])],
    ).reset_index()
    return (
        _feature_table(corrected.layers[ORIGINAL], corrected),
        ys,
        _feature_table(corrected.layers[RECONSTRUCTED], corrected),
        codes,
        _feature_table(corrected.layers[CORRECTED], corrected),
    )


def table_values(table: pd.DataFrame, adata: ad.AnnData) -> np.ndarray:
    """A features × samples table (``feature`` column first) as samples × features,
    in ``adata``'s sample and feature order."""
    frame = table.set_index("feature")
    frame.index = frame.index.astype(str)
    return frame.loc[adata.var_names, adata.obs_names].to_numpy(dtype=np.float64).T
