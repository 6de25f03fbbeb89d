"""AIF modelling nodes: small, pure; the work is in ``omicsgen.models.aif``/``aif_grid``.

Parameters (``conf/base/parameters/aif.yml``, key ``aif``): ``batch_key``,
``cell_type_key``, ``reference_batch``, ``n_samples``, ``seed``, ``device``, ``model``
(AIFConfig), ``training`` (TrainingConfig without seed/device), ``embedding``,
``baselines``, ``metrics``, ``grid_search``.
"""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.metrics.integration import BASELINES, baseline_embeddings


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """AIF reads the dataset's batch and cell-type columns."""
    return {**params, "batch_key": dataset["keys"]["batch"], "cell_type_key": dataset["keys"].get("cell_type")}


def _training_params(params: dict[str, Any]) -> dict[str, Any]:
    return {**params.get("training", {}), "seed": params["seed"], "device": params.get("device", "auto")}


def check_inputs(adata: ad.AnnData, params: dict[str, Any]) -> None:
    """Batches, reference batch, cell types and baselines (obs and parameters only)."""
    from omicsgen.models.aif import validate_batches

    needs_bio = bool(params.get("metrics", {}).get("bio", True))
    validate_batches(
        adata,
        params["batch_key"],
        int(params.get("training", {}).get("batch_size", 32)),
        params.get("reference_batch"),
        params.get("cell_type_key") if needs_bio else None,
    )
    if needs_bio and not params.get("cell_type_key"):
        raise ValueError("aif: cell_type_key must be set when the biology metrics are asked for (metrics.bio)")
    unknown = [b for b in params.get("baselines", []) if b not in BASELINES]
    if unknown:
        raise ValueError(f"aif: unknown baselines {unknown}; available: {sorted(BASELINES)}")


def validate_inputs(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Every bad input of the issue, before training: returns ``adata`` untouched."""
    from omicsgen.models.aif import AIFConfig, model_input

    check_inputs(adata, params)
    model_input(adata, AIFConfig.from_params(params.get("model", {})))  # input layer exists
    return adata


def train_model(adata: ad.AnnData, params: dict[str, Any]) -> tuple[Any, dict, dict]:
    """Train AIF; returns the model (memory), its checkpoint and the training record."""
    from omicsgen.models.aif import train_aif

    model, result = train_aif(adata, params["batch_key"], params.get("model", {}), _training_params(params))
    return model, model.checkpoint(), result.to_dict()


def correct_batches(model: Any, adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Corrected expression in ``layers["aif_corrected"]``, latent in ``obsm["X_aif"]``."""
    from omicsgen.models.aif import correct

    return correct(model, adata, params.get("reference_batch"), int(params.get("n_samples", 20)), params["seed"])


def aif_embedding(corrected: ad.AnnData, params: dict[str, Any]) -> np.ndarray:
    """What AIF is scored on: its latent (``latent``) or PCA of its corrected expression."""
    from omicsgen.metrics.integration import uncorrected_pca

    kind = params.get("embedding", "latent")
    if kind == "latent":
        return corrected.obsm["X_aif"]
    if kind == "corrected_pca":
        view = ad.AnnData(corrected.layers["aif_corrected"], obs=corrected.obs)
        return uncorrected_pca(view, params["batch_key"], None, int(params["metrics"].get("n_pcs", 50)), params["seed"])
    raise ValueError(f"aif embedding must be 'latent' or 'corrected_pca', got {kind!r}")


def integration_embeddings(corrected: ad.AnnData, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Uncorrected PCA, the baselines and AIF on the same preprocessed cells."""
    names = list(dict.fromkeys(["uncorrected", *params.get("baselines", [])]))
    embeddings = baseline_embeddings(
        corrected, params["batch_key"], params.get("cell_type_key"), names,
        n_pcs=int(params.get("metrics", {}).get("n_pcs", 50)), seed=params["seed"],
        options=params.get("baseline_options"),
    )  # fmt: skip
    embeddings["aif"] = aif_embedding(corrected, params)
    return embeddings


def run_grid_searches(adata: ad.AnnData, params: dict[str, Any]) -> pd.DataFrame:
    """Grid search (one seed) and robust grid search (several seeds) as Dask tasks; one table."""
    from omicsgen.models.aif_grid import expand_grid, run_grid

    search = params["grid_search"]
    points = []
    for name, seeds in (("grid", [params["seed"]]), ("robust", search.get("robust_seeds", []))):
        grid = search.get(name) or {}
        for point in expand_grid(grid, seeds) if grid and seeds else []:
            points.append({**point, "setting": f"{name}-{point['setting']}"})
    if not points:
        raise ValueError("aif grid_search: neither 'grid' nor 'robust' (with robust_seeds) defines any point")
    table = run_grid(
        adata, points, params.get("model", {}), _training_params(params), params["batch_key"],
        params.get("cell_type_key"), params.get("reference_batch"), int(params.get("n_samples", 20)),
        score=bool(search.get("score", True)), scheduler_address=search.get("scheduler_address"),
        n_workers=int(search.get("n_workers", 2)),
    )  # fmt: skip
    table.insert(0, "search", table["setting"].str.split("-").str[0])
    return table


def select_best_setting(table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Best setting of the robust search (the grid search if there is none)."""
    from omicsgen.models.aif_grid import select_best

    robust = table[table["search"] == "robust"]
    return select_best(robust if len(robust) else table, params["grid_search"].get("select_by", "train_loss"))


def refit_best(adata: ad.AnnData, best: dict[str, Any], params: dict[str, Any]) -> tuple[dict, dict]:
    """Retrain the selected setting with its best seed; keep that model."""
    from omicsgen.models.aif import train_aif
    from omicsgen.models.aif_grid import split_point_params

    model_params, training = split_point_params(
        best["params"], params.get("model", {}), _training_params(params), best["seed"]
    )
    model, result = train_aif(adata, params["batch_key"], model_params, training)
    return model.checkpoint(), {**result.to_dict(), "selection": best}
