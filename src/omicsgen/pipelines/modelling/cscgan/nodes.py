"""cscgan modelling nodes: parameter dictionaries in, ``omicsgen.models.cscgan`` calls out."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np

from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_obs_columns,
    preview,
    source_of,
)


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """cscGAN reads the dataset's cell types and the raw counts that data engineering found."""
    return {**params, "input": {"cell_type_key": dataset["keys"]["cell_type"], "counts_layer": "counts"}}


def rare_cell_type(cells: ad.AnnData, params: dict[str, Any]) -> str:
    """``augmentation.rare_cell_type``; ``auto`` takes the largest type, so that the 5 % kept
    after downsampling and the test split still hold cells of it."""
    wanted = params["augmentation"]["rare_cell_type"]
    if wanted != "auto":
        return str(wanted)
    counts = cells.obs[params["input"]["cell_type_key"]].astype(str).value_counts()
    return str(sorted(counts.index[counts == counts.max()])[0])


def _requested_types(params: dict[str, Any]) -> dict[str, list[str]]:
    rare = params["augmentation"]["rare_cell_type"]
    return {
        "generation.cell_types": list(params["generation"].get("cell_types") or []),
        "augmentation.rare_cell_type": [] if rare == "auto" else [rare],
    }


def check_inputs(adata: ad.AnnData, params: dict[str, Any]) -> None:
    """The cell types the parameters name exist in the data (obs only)."""
    key = params["input"]["cell_type_key"]
    check_obs_columns(adata, [key])
    present = set(adata.obs[key].astype(str))
    for parameter, wanted in _requested_types(params).items():
        absent = [t for t in wanted if t not in present]
        if absent:
            raise InputValidationError(
                f"{source_of(adata)}: cscgan.{parameter} names cell type(s) {preview(absent)} not found "
                f"in obs column '{key}'; it has {preview(sorted(present), limit=20)} "
                f"(per dataset: cscgan.overrides.{params['dataset']['name']})"
            )


def prepare_cells(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Validate raw counts and requested cell types, then apply scGAN's preprocessing.

    Runs before any training: counts that are not counts, or a requested cell type that
    does not exist (or was excluded as too small), stop the run here.
    """
    from omicsgen.models.cscgan import preprocess_counts

    key = params["input"]["cell_type_key"]
    name = params["dataset"]["name"]
    if params["input"]["counts_layer"] not in adata.layers:
        raise InputValidationError(
            f"{source_of(adata)}: cscGAN needs raw counts, and none were found in X or the layers "
            f"({list(adata.layers.keys()) or 'none'}); set datasets.{name}.keys.counts to where they are, "
            f"or leave cscgan out of datasets.{name}.methods"
        )
    check_inputs(adata, params)
    cells = preprocess_counts(
        adata, counts_layer=params["input"]["counts_layer"], cell_type_key=key, **params["preprocessing"]
    )
    excluded = cells.uns["cscgan_preprocessing"]["excluded_cell_types"]
    for parameter, wanted in _requested_types(params).items():
        dropped = [t for t in wanted if t in excluded]
        if dropped:
            raise InputValidationError(
                f"{source_of(adata)}: cscgan.{parameter} names cell type(s) {preview(dropped)} with fewer than "
                f"preprocessing.min_cells_per_type={params['preprocessing']['min_cells_per_type']} cells"
            )
    return cells


def _train(cells: ad.AnnData, params: dict[str, Any], training: dict[str, Any]) -> tuple[dict, dict]:
    from omicsgen.models.cscgan import train_cscgan

    model_params = dict(params["model"])
    conditional = model_params.pop("conditional", True)
    model, result = train_cscgan(
        cells,
        cell_type_key=params["input"]["cell_type_key"] if conditional else None,
        seed=params["seed"],
        device=params["device"],
        **training,
        **model_params,
    )
    return model.checkpoint(), result.to_dict()


def train_model(cells: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """Train scGAN/cscGAN on all preprocessed cells → (checkpoint, training record)."""
    return _train(cells, params, params["training"])


def _generate(checkpoint: dict, reference: ad.AnnData, counts: dict[str, int], params: dict[str, Any], prefix: str):
    from omicsgen.models.cscgan import (
        CscganModel,
        assign_cell_types,
        generate_cells,
        generated_anndata,
    )

    model = CscganModel.from_checkpoint(checkpoint)
    cells, labels = generate_cells(model, counts, seed=params["seed"], device=params["device"])
    if labels is None:  # unconditional scGAN: label generated cells by their nearest real cells
        key = params["input"]["cell_type_key"]
        labels = assign_cell_types(
            reference.X.toarray(), reference.obs[key].astype(str).to_numpy(), cells, seed=params["seed"]
        )
    return generated_anndata(cells, labels, model.gene_names, prefix=prefix)


def generate(checkpoint: dict, cells: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """``generation.cells_per_type`` cells of each requested (default: every) cell type."""
    key = params["input"]["cell_type_key"]
    wanted = params["generation"].get("cell_types") or sorted(cells.obs[key].astype(str).unique())
    n = int(params["generation"]["cells_per_type"])
    return _generate(checkpoint, cells, {str(t): n for t in wanted}, params, "generated")


def split_for_augmentation(cells: ad.AnnData, params: dict[str, Any]) -> tuple[ad.AnnData, ad.AnnData]:
    """Held-out test split, and a training split in which the rare type is downsampled."""
    from omicsgen.metrics.augmentation import downsample_label, stratified_test_split

    options = params["augmentation"]
    rare = rare_cell_type(cells, params)
    labels = cells.obs[params["input"]["cell_type_key"]].astype(str).to_numpy()
    test = stratified_test_split(labels, options["test_fraction"], seed=params["seed"])
    train = cells[~test].copy()
    train.uns["cscgan_rare_cells_before_downsampling"] = int((labels[~test] == rare).sum())
    train.uns["cscgan_rare_cell_type"] = rare
    kept = downsample_label(labels[~test], rare, options["fraction"], options["min_rare_cells"], params["seed"])
    return train[kept].copy(), cells[test].copy()


def train_augmentation_model(train: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """A GAN trained on the downsampled training split only (no test cell is seen)."""
    return _train(train, params, params["augmentation"]["training"])


def generate_rare_cells(checkpoint: dict, train: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """As many cells of the rare type as it had in the training split before downsampling.

    The unconditional scGAN cannot be asked for a type: it generates ``unconditional_pool``
    times as many cells and keeps those its nearest real cells label as the rare type
    (possibly fewer than asked; the count is in the metrics).
    """
    options = params["augmentation"]
    rare = train.uns["cscgan_rare_cell_type"]
    n = int(options.get("n_added") or train.uns["cscgan_rare_cells_before_downsampling"])
    if params["model"].get("conditional", True):
        return _generate(checkpoint, train, {rare: n}, params, "augmentation")
    pool = _generate(checkpoint, train, {rare: n * int(options.get("unconditional_pool", 20))}, params, "augmentation")
    return pool[np.flatnonzero(pool.obs["cell_type"].astype(str).to_numpy() == rare)[:n]].copy()


def rare_type_f1(train: ad.AnnData, test: ad.AnnData, generated: ad.AnnData, params: dict[str, Any]) -> dict:
    """(a) downsampled, (b) + resampled real, (c) + cscGAN cells: the rare type's F1 on the test split."""
    from omicsgen.metrics.augmentation import augmentation_experiment

    key = params["input"]["cell_type_key"]
    result = augmentation_experiment(
        train.X.toarray(),
        train.obs[key].astype(str).to_numpy(),
        test.X.toarray(),
        test.obs[key].astype(str).to_numpy(),
        train.uns["cscgan_rare_cell_type"],
        np.asarray(generated.X.toarray()),
        seed=params["seed"],
    )
    result["rare_cell_type"] = train.uns["cscgan_rare_cell_type"]
    result["fraction_kept"] = params["augmentation"]["fraction"]
    return result
