"""cscgan modelling nodes: parameter sections in, :class:`omicsgen.models.cscgan.CscGAN` calls out."""

from __future__ import annotations

from pathlib import Path
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


def training_settings(params: dict[str, Any]):
    """The ``training`` section as the model reads it (its defaults, e.g. seed and device)."""
    from omicsgen.models.cscgan import CscGAN

    return CscGAN.TrainingConfig.from_params(params["training"])


def is_conditional(params: dict[str, Any]) -> bool:
    """cscGAN (``model.conditional``, default from the model's section) or the unconditional scGAN."""
    from omicsgen.models.cscgan import CscGAN

    return CscGAN.ModelConfig.from_params(params["model"]).conditional


def prepare_cells(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Validate raw counts and requested cell types, then apply scGAN's preprocessing.

    Runs before any training: counts that are not counts, or a requested cell type that
    does not exist (or was excluded as too small), stop the run here.
    """
    from omicsgen.preprocessing.cscgan import PREPROCESSING_KEY, preprocess_counts

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
    excluded = cells.uns[PREPROCESSING_KEY]["excluded_cell_types"]
    for parameter, wanted in _requested_types(params).items():
        dropped = [t for t in wanted if t in excluded]
        if dropped:
            raise InputValidationError(
                f"{source_of(adata)}: cscgan.{parameter} names cell type(s) {preview(dropped)} with fewer than "
                f"preprocessing.min_cells_per_type={params['preprocessing']['min_cells_per_type']} cells"
            )
    return cells


def _train(cells: ad.AnnData, params: dict[str, Any], training: dict[str, Any], run: str) -> tuple[dict, dict]:
    from omicsgen.models.cscgan import CscGAN
    from omicsgen.preprocessing.backed import with_annotations

    # setup_anndata registers its keys in the AnnData: in a copy (of the handle, if backed)
    cells = with_annotations(cells) if cells.isbacked else cells.copy()
    CscGAN.setup_anndata(cells, cell_type_key=params["input"]["cell_type_key"])
    model = CscGAN(cells, model=params["model"], plan=params["plan"], training=training)
    result = model.train(checkpoint_dir=Path(params["checkpoint_dir"]) / run)
    return model.checkpoint(), result.to_dict()


def _load(checkpoint: dict, params: dict[str, Any]):
    from omicsgen.models.cscgan import CscGAN

    return CscGAN.from_checkpoint(checkpoint, device=training_settings(params).device)


def _generate(model, reference: ad.AnnData | None, params: dict[str, Any]) -> ad.AnnData:
    generation = params["generation"]
    seed = training_settings(params).seed
    return model.generate(generation["cells_per_type"], generation.get("cell_types"), seed=seed, reference=reference)


def generate(checkpoint: dict, cells: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """``generation.cells_per_type`` cells of each requested (default: every) cell type;
    the unconditional scGAN's cells are labelled by their nearest preprocessed real cells."""
    return _generate(_load(checkpoint, params), cells, params)


def generate_from_saved_model(checkpoint: dict, primary: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """cscgan_apply: ``generation.cells_per_type`` cells of each requested (default: every)
    type of a saved model. The unconditional scGAN's cells are labelled by the dataset's
    own cells, preprocessed in the model's space (its genes, matched by name, and library size)."""
    model = _load(checkpoint, params)
    reference = None
    if not model.conditional:
        reference = model.reference_cells(primary, params["input"]["counts_layer"], **params["preprocessing"])
    return _generate(model, reference, params)


def split_for_augmentation(cells: ad.AnnData, params: dict[str, Any]) -> tuple[ad.AnnData, ad.AnnData]:
    """Held-out test split, and a training split in which the rare type is downsampled."""
    from omicsgen.metrics.augmentation import downsample_label, stratified_test_split

    options, seed = params["augmentation"], training_settings(params).seed
    rare = rare_cell_type(cells, params)
    labels = cells.obs[params["input"]["cell_type_key"]].astype(str).to_numpy()
    test = stratified_test_split(labels, options["test_fraction"], seed=seed)
    train = cells[~test].copy()
    train.uns["cscgan_rare_cells_before_downsampling"] = int((labels[~test] == rare).sum())
    train.uns["cscgan_rare_cell_type"] = rare
    kept = downsample_label(labels[~test], rare, options["fraction"], options["min_rare_cells"], seed)
    return train[kept].copy(), cells[test].copy()


def train_main_model(cells: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """The main GAN on all preprocessed cells → (checkpoint, training record)."""
    return _train(cells, params, params["training"], "main")


def train_augmentation_model(augmentation_train: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """The augmentation GAN on the downsampled training split only (no test cell is seen;
    ``augmentation.training`` overrides ``training``) → (checkpoint, training record).
    A node of its own, so that the run trains it beside the main GAN."""
    return _train(augmentation_train, params, {**params["training"], **params["augmentation"]["training"]}, "augmentation")


def generate_rare_cells(checkpoint: dict, train: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """As many cells of the rare type as it had in the training split before downsampling.

    The unconditional scGAN cannot be asked for a type: it generates ``unconditional_pool``
    times as many cells and keeps those its nearest real cells label as the rare type
    (possibly fewer than asked; the count is in the metrics).
    """
    options = params["augmentation"]
    rare = train.uns["cscgan_rare_cell_type"]
    n = int(options["n_added"] or train.uns["cscgan_rare_cells_before_downsampling"])
    model, seed = _load(checkpoint, params), training_settings(params).seed
    if model.conditional:
        return model.generate({rare: n}, seed=seed, reference=train, prefix="augmentation")
    pool = model.generate({rare: n * int(options["unconditional_pool"])}, seed=seed, reference=train, prefix="augmentation")
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
        seed=training_settings(params).seed,
    )
    result["rare_cell_type"] = train.uns["cscgan_rare_cell_type"]
    result["fraction_kept"] = params["augmentation"]["fraction"]
    return result
