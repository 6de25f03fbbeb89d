"""AIF modelling nodes: short calls into :class:`omicsgen.models.AIF`, the integration
baselines and the grid search (``omicsgen.models.aif_grid``).

Parameters (``conf/base/parameters/aif.yml``, key ``aif``): ``layer`` (AIF's input),
``model`` / ``plan`` / ``training`` (the sections of :class:`~omicsgen.models.AIF`),
``correction`` (keyword arguments of ``AIF.correct``), ``embedding``, ``baselines``,
``baseline_options``, ``metrics``, ``umap``, ``grid_search``, ``apply``; ``batch_key`` and
``cell_type_key`` come from the dataset's keys.
"""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.pipelines.methods import RESOLVED_KEYS


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """AIF reads the dataset's batch and cell-type columns."""
    return {**params, "batch_key": dataset["keys"]["batch"], "cell_type_key": dataset["keys"].get("cell_type")}


#: the keys of the ``aif`` parameters (after ``bind_dataset`` and ``resolve_parameters``)
PARAMETERS = (
    "layer", "embedding", "model", "plan", "training", "correction", "baselines", "baseline_options", "metrics",
    "umap", "grid_search", "apply", "batch_key", "cell_type_key", *RESOLVED_KEYS,
)  # fmt: skip


def check_inputs(adata: ad.AnnData, params: dict[str, Any]) -> None:
    """Parameter sections, batches, reference batch, cell types and baselines (obs and
    parameters only)."""
    from omicsgen.models.aif import AIF, validate_batches
    from omicsgen.models.aif_grid import GridSearchConfig
    from omicsgen.models.baselines.integration import check_baselines

    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ValueError(
            f"aif: unknown parameter(s) {unknown}; known: {sorted(PARAMETERS)} "
            "(seed and device are in aif.training, reference_batch and n_samples in aif.correction)"
        )
    AIF.ModelConfig.from_params(params["model"], "aif.model")
    AIF.PlanConfig.from_params(params["plan"], "aif.plan")
    training = training_config(params)
    GridSearchConfig.from_params(params["grid_search"], "aif.grid_search")
    needs_bio = bool(params["metrics"]["bio"])
    validate_batches(
        adata,
        params["batch_key"],
        training.batch_size,
        params["correction"].get("reference_batch"),
        params["cell_type_key"] if needs_bio else None,
    )
    if needs_bio and not params["cell_type_key"]:
        raise ValueError("aif: cell_type_key must be set when the biology metrics are asked for (metrics.bio)")
    check_baselines(params["baselines"])


def validate_inputs(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Every bad input, before training: a copy of ``adata`` registered for AIF (batch
    column, input layer); ``adata`` itself is untouched."""
    from omicsgen.models.aif import AIF

    check_inputs(adata, params)
    registered = adata.copy()
    AIF.setup_anndata(registered, batch_key=params["batch_key"], layer=params["layer"])
    return registered


def _sections(params: dict[str, Any]) -> dict[str, Any]:
    return {name: params[name] for name in ("model", "plan", "training")}


def training_config(params: dict[str, Any]):
    """The ``training`` section with its defaults (seed and device of every step)."""
    from omicsgen.models.aif import AIF

    return AIF.TrainingConfig.from_params(params["training"])


def train_model(adata: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """Train AIF; returns its checkpoint and the training record."""
    from omicsgen.models.aif import AIF

    model = AIF(adata, **_sections(params))
    result = model.train(checkpoint_dir=params["checkpoint_dir"])
    return model.checkpoint(), result.to_dict()


def correct_batches(model: dict[str, Any], adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """The saved model's correction of ``adata`` (genes matched by name, batches the model
    knows): ``layers["aif_corrected"]``, latent in ``obsm["X_aif"]``."""
    from omicsgen.models.aif import AIF

    aif = AIF.from_checkpoint(model, device=training_config(params).device)
    return aif.correct(adata, batch_key=params["batch_key"], **params["correction"])


def aif_embedding(corrected: ad.AnnData, params: dict[str, Any]) -> np.ndarray:
    """What AIF is scored on: its latent (``latent``) or PCA of its corrected expression."""
    from omicsgen.metrics.integration import pca_embedding

    kind = params["embedding"]
    if kind == "latent":
        return corrected.obsm["X_aif"]
    if kind == "corrected_pca":
        return pca_embedding(corrected.layers["aif_corrected"], params["metrics"]["n_pcs"], training_config(params).seed)
    raise ValueError(f"aif embedding must be 'latent' or 'corrected_pca', got {kind!r}")


def integration_embeddings(corrected: ad.AnnData, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Uncorrected PCA, the baselines and AIF on the same preprocessed cells."""
    from omicsgen.models.baselines.integration import baseline_embeddings

    names = list(dict.fromkeys(["uncorrected", *params["baselines"]]))
    embeddings = baseline_embeddings(
        corrected, params["batch_key"], params["cell_type_key"], names,
        n_pcs=params["metrics"]["n_pcs"], seed=training_config(params).seed, options=params["baseline_options"],
    )  # fmt: skip
    embeddings["aif"] = aif_embedding(corrected, params)
    return embeddings


def run_grid_searches(adata: ad.AnnData, params: dict[str, Any]) -> pd.DataFrame:
    """Grid search (one seed) and robust grid search (several seeds) as Dask tasks; one table."""
    from omicsgen.models.aif_grid import GridSearchConfig, expand_grid, run_grid

    search = GridSearchConfig.from_params(params["grid_search"], "aif.grid_search")
    points = []
    for name, grid, seeds in (
        ("grid", search.grid, [training_config(params).seed]),
        ("robust", search.robust, search.robust_seeds),
    ):
        for point in expand_grid(grid, seeds) if grid and seeds else []:
            points.append({**point, "setting": f"{name}-{point['setting']}"})
    if not points:
        raise ValueError("aif grid_search: neither 'grid' nor 'robust' (with robust_seeds) defines any point")
    table = run_grid(
        adata, points, _sections(params), params["correction"], params["cell_type_key"], score=search.score,
        scheduler_address=search.scheduler_address, n_workers=search.n_workers,
    )  # fmt: skip
    table.insert(0, "search", table["setting"].str.split("-").str[0])
    return table


def select_best_setting(table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Best setting of the robust search (the grid search if there is none)."""
    from omicsgen.models.aif_grid import GridSearchConfig, select_best

    robust = table[table["search"] == "robust"]
    search = GridSearchConfig.from_params(params["grid_search"], "aif.grid_search")
    return select_best(robust if len(robust) else table, search.select_by)


def refit_best(adata: ad.AnnData, best: dict[str, Any], params: dict[str, Any]) -> tuple[dict, dict]:
    """Retrain the selected setting with its best seed; keep that model."""
    from omicsgen.models.aif import AIF
    from omicsgen.models.aif_grid import split_point_params

    model = AIF(adata, **split_point_params(best["params"], _sections(params), best["seed"]))
    result = model.train()
    return model.checkpoint(), {**result.to_dict(), "selection": best}
