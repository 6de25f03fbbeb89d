"""The AIF model class over AnnData.

::

    AIF.setup_anndata(adata, batch_key="batch")             # layer="counts": raw-count variant
    model = AIF(adata, model={"latent_dim": 32}, plan={"gamma": 1.0}, training={"max_epochs": 30})
    model.train()
    corrected = model.correct()          # copy: layers["aif_corrected"], obsm["X_aif"]
    model.save("models/aif")
    model = AIF.load("models/aif", adata=new_cells)          # genes checked by name
    corrected = model.correct()          # new cells of batches the model was trained on

Correction decodes every cell under one reference batch label, averaging ``n_samples``
latent draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import torch

from omicsgen.models.aif.module import build_modules
from omicsgen.models.aif.plan import AIFPlan, AIFPlanConfig, class_weights
from omicsgen.models.base import BaseModel, ConfigSection, label_codes
from omicsgen.models.data import CellRows, expression_matrix, nonfinite, on_device, take_rows
from omicsgen.models.training import TrainingResult, apply_in_batches, seed_everything
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_obs_columns,
    preview,
    source_of,
)


@dataclass
class AIFModelConfig(ConfigSection):
    """AIF's networks (the ``model`` section).

    Attributes:
        latent_dim: Size of ``z`` (original: 100).
        hidden: Hidden units of the CVAE encoder and decoder (original: 800-800).
        adversary_hidden: Hidden units of the auxiliary and the discriminator (800-800).
        prior_sigma: Standard deviation of the Gaussian prior.
        log1p: Apply log1p to the input (the "norm log" variants on a normalised-count
            layer; the layer itself is chosen by ``AIF.setup_anndata(layer=...)``).
    """

    latent_dim: int = 100
    hidden: Sequence[int] = (800, 800)
    adversary_hidden: Sequence[int] = (800, 800)
    prior_sigma: float = 1.0
    log1p: bool = False

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.adversary_hidden = tuple(int(h) for h in self.adversary_hidden)


def validate_batches(
    adata: ad.AnnData,
    batch_key: str,
    batch_size: int,
    reference_batch: str | None = None,
    cell_type_key: str | None = None,
) -> None:
    """The bad inputs AIF's training refuses, raised before any training starts."""
    source = source_of(adata)
    if batch_key not in adata.obs.columns:
        raise InputValidationError(
            f"{source}: batch column '{batch_key}' missing; obs has {preview(adata.obs.columns, limit=20)}"
        )
    counts = adata.obs[batch_key].astype(str).value_counts()
    if len(counts) < 2:
        raise InputValidationError(
            f"{source}: obs column '{batch_key}' has one batch only ({preview(counts.index)}); "
            "batch correction needs at least two"
        )
    small = counts[counts < batch_size]
    if len(small):
        raise InputValidationError(
            f"{source}: obs column '{batch_key}' has batch(es) {preview(small.index)} with "
            f"{preview(small.to_numpy())} cells, fewer than the batch size {batch_size}"
        )
    if reference_batch is not None and str(reference_batch) not in counts.index:
        raise InputValidationError(
            f"{source}: reference batch {reference_batch!r} not found in obs column '{batch_key}'; "
            f"it has {preview(sorted(counts.index))}"
        )
    if cell_type_key is not None and cell_type_key not in adata.obs.columns:
        raise InputValidationError(
            f"{source}: cell type column '{cell_type_key}' (needed for the biology metrics) missing; "
            f"obs has {preview(adata.obs.columns, limit=20)}"
        )


class AIF(BaseModel):
    """Adversarial information factorization for scRNA-seq batch effects.

    Monnier & Cournède (PLoS Comput Biol 2024) adapt Creswell et al.'s attribute-conditional
    VAE-GAN to batch correction: a conditional VAE whose latent is stripped of batch
    information by an auxiliary batch classifier (adversarial), and whose decoder is
    conditioned on the batch; a discriminator tells cells from reconstructions.

    Sections: ``model`` (:class:`AIFModelConfig`), ``plan``
    (:class:`~omicsgen.models.aif.plan.AIFPlanConfig`: loss weights, variants, Adam),
    ``training`` (:class:`~omicsgen.models.training.TrainingConfig`). The input matrix is
    the layer registered by :meth:`setup_anndata` (``None``: X, log-normalised).
    """

    name = "aif"
    required_keys = ("batch_key",)
    ModelConfig = AIFModelConfig
    PlanConfig = AIFPlanConfig
    latent_key = "X_aif"

    @classmethod
    def setup_anndata(  # type: ignore[override]
        cls,
        adata: ad.AnnData,
        batch_key: str,
        cell_type_key: str | None = None,
        layer: str | None = None,
        split_key: str | None = "split",
    ) -> None:
        """Register the batch column, the input ``layer`` (None: X; ``"counts"``: the
        raw-count variant) and the ``split`` column (``train``/``validation``; absent:
        every cell trains). ``cell_type_key`` is recorded only (AIF does not read it)."""
        super().setup_anndata(adata, batch_key=batch_key, cell_type_key=cell_type_key, layer=layer, split_key=split_key)

    @property
    def batches(self) -> list[str]:
        """The batches the model was trained on, in label-code order."""
        return list(self.state["batches"])

    def _build_modules(self):
        config = self.model_config
        return build_modules(
            len(self.var_names), len(self.state["batches"]), config.latent_dim, config.hidden, config.adversary_hidden
        )

    def _matrix(self, adata: ad.AnnData) -> np.ndarray | CellRows:
        """The matrix the networks read: the registered layer (or X), optionally log1p;
        streamed rows when ``training.data_loading`` streams it."""
        layer = self.setup.layer
        if layer is not None and layer not in adata.layers:
            raise InputValidationError(
                f"{source_of(adata)}: aif input layer '{layer}' missing; layers are "
                f"{preview(adata.layers.keys()) or 'none'}"
            )
        transform = np.log1p if self.model_config.log1p else None
        return expression_matrix(adata, layer, self.training_config.data_loading, transform)

    def _train(self) -> TrainingResult:
        adata, device, training = self.adata, self.device, self.training_config
        validate_batches(adata, self.setup.batch_key, training.batch_size)
        matrix = self._matrix(adata)
        if nonfinite(matrix)[0]:
            raise InputValidationError(f"{source_of(adata)}: aif input has NaN/inf values")
        self.state["batches"], codes = label_codes(adata.obs[self.setup.batch_key])

        seed_everything(training.seed)
        self.modules = {k: m.to(device) for k, m in self._build_modules().items()}
        weights = (
            torch.from_numpy(class_weights(codes, len(self.batches))).to(device) if self.plan_config.weighted_ce else None
        )
        plan = AIFPlan(self.modules, self.plan_config, self.model_config.prior_sigma, training.max_epochs, weights)
        is_train, is_valid = self._split(adata)
        tensors = {"x": on_device(matrix, device), "batch": torch.from_numpy(codes).to(device)}
        train = {k: take_rows(v, is_train) for k, v in tensors.items()}
        valid = {k: take_rows(v, is_valid) for k, v in tensors.items()} if is_valid.any() else None
        return self._fit(plan, train, valid, training, "aif")

    def _input(self, adata: ad.AnnData) -> torch.Tensor | CellRows:
        return on_device(self._matrix(adata), self.device)

    def get_latent_representation(self, adata: ad.AnnData | None = None, fill_missing: bool = False) -> np.ndarray:
        """Latent means ``μ(x)`` (cells × latent_dim) of ``adata`` (default: the training
        cells), genes matched by name."""
        self._require_trained()
        cvae = self.modules["cvae"]
        x = self._input(self._aligned(adata, fill_missing))
        return apply_in_batches(lambda xb: cvae.encode(xb)[0], x).cpu().numpy()

    def _check_batches(self, adata: ad.AnnData, batch_key: str) -> pd.Series:
        """``adata``'s batch labels; a batch the model was not trained on is an error."""
        check_obs_columns(adata, [batch_key])
        labels = adata.obs[batch_key].astype(str)
        unknown = sorted(set(labels) - set(self.batches))
        if unknown:
            raise InputValidationError(
                f"{source_of(adata)}: batch(es) {preview(unknown)} of obs column '{batch_key}' not among the "
                f"{len(self.batches)} batches the aif model was trained on: {preview(self.batches)}"
            )
        return labels

    def correct(  # noqa: PLR0913
        self,
        adata: ad.AnnData | None = None,
        reference_batch: str | None = None,
        n_samples: int = 20,
        key_added: str = "aif_corrected",
        *,
        batch_key: str | None = None,
        seed: int | None = None,
        fill_missing: bool = False,
    ) -> ad.AnnData:
        """Every cell of ``adata`` (default: the training cells) decoded under
        ``reference_batch`` (default: the largest batch of ``adata``), averaging
        ``n_samples`` latent draws.

        Returns a copy (genes in the model's order, matched by name) with the corrected
        expression in ``layers[key_added]``, the latent means in ``obsm["X_aif"]`` and
        ``uns["aif"] = {reference_batch, n_samples, layer}``. ``batch_key``: the obs column
        of ``adata``'s batches (default: the one registered at training); every batch must
        be one the model was trained on. ``seed``: of the latent draws (default: the
        training seed).
        """
        self._require_trained()
        if adata is None and self.adata.n_obs == 0:
            raise ValueError("AIF.correct: this model was loaded without cells; pass the AnnData to correct")
        source = self.adata if adata is None else adata
        labels = self._check_batches(source, batch_key or self.setup.batch_key)
        if reference_batch is None:
            reference_batch = str(labels.value_counts().idxmax())
        if str(reference_batch) not in self.batches:
            raise InputValidationError(
                f"{source_of(source)}: reference batch {reference_batch!r} not among the batches the aif "
                f"model was trained on: {preview(self.batches)}"
            )
        aligned = self._aligned(source, fill_missing)
        code = self.batches.index(str(reference_batch))
        cvae = self.modules["cvae"]
        seed = self.training_config.seed if seed is None else seed
        generator = torch.Generator(device=self.device).manual_seed(seed)

        def decode_reference(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mean, log_var, _ = cvae.encode(xb)
            label = torch.full((len(xb),), code, dtype=torch.long, device=xb.device)
            std = torch.exp(0.5 * log_var)
            total = torch.zeros(len(xb), cvae.n_genes, device=xb.device)
            for _ in range(n_samples):
                noise = torch.randn(mean.shape, generator=generator, device=xb.device)
                total += cvae.decode(mean + noise * std, label)
            return total / n_samples, mean

        corrected, latent = apply_in_batches(decode_reference, self._input(aligned))
        out = aligned.copy()
        out.layers[key_added] = corrected.cpu().numpy()
        out.obsm[self.latent_key] = latent.cpu().numpy()
        out.uns["aif"] = {"reference_batch": str(reference_batch), "n_samples": int(n_samples), "layer": key_added}
        return out
