"""A plain VAE for embedding any samples × features matrix (cells × genes, reads × k-mers).

The network follows the bioinformatics tutorial's VAE, as also used by LRBinner and VAMB
for metagenomic binning: fully connected encoder and decoder, each hidden layer
Linear → BatchNorm → (Leaky)ReLU → Dropout; a Gaussian posterior ``q(z|x) = N(μ, σ²)``;
the decoder outputs a reconstruction through a sigmoid (inputs scaled to [0, 1], such as
k-mer compositions) or linearly (anything else, such as log-normalised expression).

Loss per sample: ``Σ_features (x − x̂)² + β · KL(q(z|x) ‖ N(0, I))`` (the squared error is
summed over features, as in LRBinner, so β is comparable across feature counts only
through that sum), with an optional linear warm-up of β over the first epochs.

The tutorial and LRBinner pass the log-variance through a softplus, which makes it
non-negative, i.e. forces every posterior variance to be at least 1; VAMB removed that
as a numerical-stability hack it no longer needed. The default here is an unconstrained
log-variance; ``logvar_activation="softplus"`` reproduces the tutorial.

High-level API (AnnData in, scvi-tools style): :func:`train_vae`, :func:`embed`,
:func:`vae_checkpoint`, :func:`restore_vae`, :func:`align_features`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import torch
from torch import nn

from omicsgen.models.checkpoint import make_checkpoint, restore_modules
from omicsgen.models.data import dense_matrix
from omicsgen.models.training import (
    TrainingConfig,
    TrainingPlan,
    TrainingResult,
    apply_in_batches,
    fit,
    resolve_device,
)
from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

logger = logging.getLogger(__name__)

MODEL_NAME = "vae"
ACTIVATIONS = ("relu", "leaky_relu")
LOGVAR_ACTIVATIONS = ("none", "softplus")
OUTPUT_ACTIVATIONS = ("auto", "sigmoid", "linear")


@dataclass
class VAEConfig:
    """Everything needed to rebuild the network (stored in the checkpoint).

    Attributes:
        n_features: Input (and output) width.
        hidden_dims: Widths of the encoder's hidden layers; the decoder mirrors them.
        latent_dim: Width of z (the tutorial uses 8, VAMB 32).
        dropout: Dropout after every hidden activation.
        activation: ``"relu"`` or ``"leaky_relu"``.
        batch_norm: Batch norm in every hidden layer.
        logvar_activation: ``"none"`` (unconstrained log σ²) or ``"softplus"`` (tutorial).
        output_activation: ``"sigmoid"`` or ``"linear"``; ``"auto"`` is resolved by
            :func:`train_vae` from the data range before the config is stored.
    """

    n_features: int
    hidden_dims: list[int] = field(default_factory=lambda: [128, 128])
    latent_dim: int = 8
    dropout: float = 0.1
    activation: str = "leaky_relu"
    batch_norm: bool = True
    logvar_activation: str = "none"
    output_activation: str = "linear"

    def __post_init__(self) -> None:
        self.hidden_dims = [int(h) for h in self.hidden_dims]
        checks = {
            "activation": (self.activation, ACTIVATIONS),
            "logvar_activation": (self.logvar_activation, LOGVAR_ACTIVATIONS),
            "output_activation": (self.output_activation, ("sigmoid", "linear")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"vae {name} must be one of {allowed}, got {value!r}")
        if self.latent_dim < 1 or self.n_features < 1 or not self.hidden_dims:
            raise ValueError(
                f"vae needs n_features ≥ 1, latent_dim ≥ 1 and at least one hidden layer; got "
                f"n_features={self.n_features}, latent_dim={self.latent_dim}, "
                f"hidden_dims={self.hidden_dims}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"vae dropout must be in [0, 1), got {self.dropout}")


def _hidden_stack(widths: Sequence[int], config: VAEConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers.append(nn.Linear(n_in, n_out))
        if config.batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(nn.LeakyReLU() if config.activation == "leaky_relu" else nn.ReLU())
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x → (μ, log σ²)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.hidden = _hidden_stack([config.n_features, *config.hidden_dims], config)
        self.mean = nn.Linear(config.hidden_dims[-1], config.latent_dim)
        self.logvar = nn.Linear(config.hidden_dims[-1], config.latent_dim)
        self.softplus_logvar = config.logvar_activation == "softplus"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        logvar = self.logvar(h)
        if self.softplus_logvar:
            logvar = nn.functional.softplus(logvar)
        return self.mean(h), logvar


class Decoder(nn.Module):
    """z → x̂."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        widths = [config.latent_dim, *reversed(config.hidden_dims)]
        self.hidden = _hidden_stack(widths, config)
        self.output = nn.Linear(widths[-1], config.n_features)
        self.sigmoid = config.output_activation == "sigmoid"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.output(self.hidden(z))
        return torch.sigmoid(out) if self.sigmoid else out


def build_modules(config: Mapping[str, Any] | VAEConfig) -> dict[str, nn.Module]:
    config = config if isinstance(config, VAEConfig) else VAEConfig(**config)
    return {"encoder": Encoder(config), "decoder": Decoder(config)}


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * (1.0 + logvar - mean.pow(2) - logvar.exp()).sum(dim=1)


class VAETrainingPlan(TrainingPlan):
    """Adam on ``Σ (x − x̂)² + β_t · KL``, β_t rising linearly to β over ``kl_warmup_epochs``."""

    def __init__(  # noqa: PLR0913
        self,
        encoder: Encoder,
        decoder: Decoder,
        beta: float = 1.0,
        kl_warmup_epochs: int = 0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.beta = float(beta)
        self.kl_warmup_epochs = int(kl_warmup_epochs)
        params = [*encoder.parameters(), *decoder.parameters()]
        self.optimiser = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def beta_at(self, epoch: int) -> float:
        if self.kl_warmup_epochs <= 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.kl_warmup_epochs)

    def _losses(self, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        mean, logvar = self.encoder(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        reconstruction = (self.decoder(z) - x).pow(2).sum(dim=1).mean()
        kl = kl_divergence(mean, logvar).mean()
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        losses = self._losses(batch["x"], self.beta_at(epoch))
        self.optimiser.zero_grad()
        losses["loss"].backward()
        self.optimiser.step()
        return losses

    def validation_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, Any]:
        # Validation always uses the final β, so that epochs stay comparable for early stopping.
        return self._losses(batch["x"], self.beta)


def resolve_output_activation(requested: str, matrix: np.ndarray) -> str:
    """``auto`` → ``sigmoid`` when every value lies in [0, 1], else ``linear``."""
    if requested not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"vae output_activation must be one of {OUTPUT_ACTIVATIONS}, got {requested!r}")
    in_unit_interval = bool(matrix.size) and matrix.min() >= 0.0 and matrix.max() <= 1.0
    if requested == "auto":
        return "sigmoid" if in_unit_interval else "linear"
    if requested == "sigmoid" and not in_unit_interval:
        raise ValueError(
            f"vae output_activation 'sigmoid' needs inputs scaled to [0, 1]; "
            f"values span [{matrix.min():g}, {matrix.max():g}]"
        )
    return requested


def check_features(adata: ad.AnnData, layer: str | None = None) -> np.ndarray:
    """The matrix to embed, checked: non-empty, unique feature names, finite values."""
    source = source_of(adata)
    if adata.n_obs < 2 or adata.n_vars < 1:
        raise InputValidationError(f"{source}: need at least 2 samples and 1 feature, got {adata.shape}")
    duplicated = adata.var_names[adata.var_names.duplicated()]
    if len(duplicated):
        raise InputValidationError(f"{source}: duplicated feature names {preview(duplicated.unique())}")
    matrix = dense_matrix(adata, layer)
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = np.flatnonzero(bad.any(axis=0))
        raise InputValidationError(
            f"{source}: {int(bad.sum())} NaN/inf values in samples {preview(adata.obs_names[rows])}, "
            f"features {preview(adata.var_names[cols])}"
        )
    return matrix


def train_vae(  # noqa: PLR0913
    adata: ad.AnnData,
    model: Mapping[str, Any] | None = None,
    loss: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    split_key: str | None = "split",
    layer: str | None = None,
) -> tuple[dict[str, nn.Module], VAEConfig, TrainingResult]:
    """Train a VAE on ``adata`` (X, or ``layer``).

    Args:
        model: :class:`VAEConfig` fields except ``n_features`` (``output_activation`` may be
            ``"auto"``).
        loss: ``beta``, ``kl_warmup_epochs``, ``learning_rate``, ``weight_decay``.
        training: :class:`~omicsgen.models.training.TrainingConfig` fields.
        split_key: obs column with ``train``/``validation``; validation rows drive early
            stopping. ``None`` or an absent column trains on everything.

    Returns:
        ``(modules, config, result)``: ``{"encoder", "decoder"}`` in eval mode, the
        resolved network config, and the training record.
    """
    matrix = check_features(adata, layer)
    model = dict(model or {})
    model["output_activation"] = resolve_output_activation(model.get("output_activation", "auto"), matrix)
    config = VAEConfig(n_features=adata.n_vars, **model)
    training_config = TrainingConfig.from_params(training or {})
    device = resolve_device(training_config.device)

    train_rows = np.ones(adata.n_obs, dtype=bool)
    if split_key is not None and split_key in adata.obs:
        train_rows = (adata.obs[split_key].astype(str) == "train").to_numpy()
        if train_rows.sum() < 2:
            raise InputValidationError(
                f"{source_of(adata)}: obs column '{split_key}' marks {int(train_rows.sum())} "
                "samples as 'train'; at least 2 are needed"
            )
    # Seed before building the networks: same seed → same initial weights → same latent.
    torch.manual_seed(training_config.seed)
    modules = build_modules(config)
    for module in modules.values():
        module.to(device)
    plan = VAETrainingPlan(modules["encoder"], modules["decoder"], **(loss or {}))
    tensor = torch.from_numpy(matrix).to(device)
    train = {"x": tensor[torch.from_numpy(np.flatnonzero(train_rows)).to(device)]}
    validation = None
    if (~train_rows).sum() >= 1:
        validation = {"x": tensor[torch.from_numpy(np.flatnonzero(~train_rows)).to(device)]}
    result = fit(plan, train, validation, training_config, description="vae")
    logger.info(
        "vae: %d epochs in %.1f s (best epoch %s, %s %.4g)",
        result.epochs_run, result.seconds, result.best_epoch, training_config.monitor, result.best_value,
    )
    return modules, config, result


def vae_checkpoint(
    modules: Mapping[str, nn.Module], config: VAEConfig, feature_names: Sequence[str], **extra: Any
) -> dict[str, Any]:
    """State dicts, network config and the feature names the model was trained on."""
    return make_checkpoint(
        MODEL_NAME, dict(modules), asdict(config), feature_names=[str(f) for f in feature_names], **extra
    )


def restore_vae(checkpoint: Mapping[str, Any]) -> dict[str, nn.Module]:
    return restore_modules(dict(checkpoint), MODEL_NAME, build_modules)


def align_features(
    adata: ad.AnnData, feature_names: Sequence[str], what: str = "gene"
) -> ad.AnnData:
    """Reorder ``adata``'s features to the model's, by name.

    Extra features are dropped (logged). Any model feature missing from ``adata`` is an
    :class:`InputValidationError` naming the file and the missing names: silently
    filling them would give embeddings that only look right.
    """
    feature_names = [str(f) for f in feature_names]
    present = set(map(str, adata.var_names))
    missing = [f for f in feature_names if f not in present]
    source = source_of(adata)
    if missing:
        overlap = len(feature_names) - len(missing)
        raise InputValidationError(
            f"{source}: {len(missing)} of the model's {len(feature_names)} {what}s are missing "
            f"from var_names (overlap {overlap}); missing {preview(missing)}. The data must "
            f"have the {what}s the model was trained on, matched by name."
        )
    extra = len(present) - len(feature_names)
    if extra:
        logger.info("%s: dropping %d %ss the model was not trained on", source, extra, what)
    if list(map(str, adata.var_names)) == feature_names:
        return adata
    return adata[:, feature_names]


def embed(
    checkpoint: Mapping[str, Any],
    adata: ad.AnnData,
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 1024,
) -> np.ndarray:
    """Posterior means μ(x) of ``adata``'s samples under a saved model (genes aligned by name)."""
    aligned = align_features(adata, checkpoint["feature_names"])
    matrix = check_features(aligned, layer)
    modules = restore_vae(checkpoint)
    target = resolve_device(device)
    encoder = modules["encoder"].to(target)
    means = apply_in_batches(
        lambda x: encoder(x)[0], torch.from_numpy(matrix).to(target), batch_size=batch_size
    )
    return means.cpu().numpy()
