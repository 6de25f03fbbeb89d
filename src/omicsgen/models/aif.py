"""AIF: adversarial information factorization for scRNA-seq batch effects.

Monnier & Cournède (PLoS Comput Biol 2024) adapt Creswell et al.'s attribute-conditional
VAE-GAN to batch correction. Three networks:

- :class:`ConditionalVAE` — encoder ``x → (μ, log σ², batch logits)``; decoder
  ``(z, one-hot batch) → x̂``. The encoder's batch head lets the re-encoded
  reconstruction be classified too ("classification after reconstruction").
- :class:`Auxiliary` — predicts the batch from ``z``. Trained to succeed; the encoder is
  trained to make it fail (−γ·aux), which pushes batch information out of ``z`` and into
  the decoder's label.
- :class:`Discriminator` — real cells vs reconstructions; the decoder is trained to fool
  it (non-saturating generator loss, +δ·gen).

Encoder/decoder objective (weights α, ρ, β, γ, δ, μ as in the original)::

    mse + α·kl + ρ·class + β·class_rec − γ·aux + δ·gen − μ·proj

where ``proj`` is the cosine similarity between a cell and its latent decoded under a
randomly drawn other batch label (the "proj boost" constraint).

Variants are independent switches in :class:`AIFConfig` that combine freely:
``weighting`` (``intrinsic`` | ``norm`` | ``rel_dyn``), ``weighted_ce``, ``mu > 0``
(proj boost), ``adversary_every`` (aux dis delayed), ``decay_exp``, and the input
(``layer: counts`` for raw counts, ``None`` for the log-normalised X).

Correction decodes every cell under one reference batch label, averaging
``n_samples`` latent draws.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
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
    seed_everything,
)
from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

MODEL_NAME = "aif"
LOSS_NAMES = ("mse", "kl", "class", "class_rec", "aux", "gen", "proj")
WEIGHTINGS = ("intrinsic", "norm", "rel_dyn")
AUX_OBJECTIVES = ("maximize", "confusion")


@dataclass
class AIFConfig:
    """Architecture, loss weights and variant switches of one AIF model.

    Attributes:
        latent_dim: Size of ``z`` (original: 100).
        hidden: Hidden units of the CVAE encoder and decoder (original: 800-800).
        adversary_hidden: Hidden units of the auxiliary and the discriminator (800-800).
        prior_sigma: Standard deviation of the Gaussian prior.
        alpha, rho, beta, gamma, delta, mu: Weights of kl, class, class_rec, aux, gen, proj.
        aux_objective: How the encoder fights the auxiliary. ``maximize`` is the original
            −γ·CE(aux(z), batch); maximising a cross-entropy is unbounded, and the encoder
            can satisfy it by making the auxiliary confidently *wrong*, which keeps batch
            information in ``z``. ``confusion`` uses +γ·CE(aux(z), uniform): the encoder
            drives the auxiliary's predictions to uniform (bounded, the usual domain-confusion
            loss). ``aux`` in the history is the term actually optimised.
        weighting: ``intrinsic`` (raw weights), ``norm`` (each loss divided by its
            first-epoch mean, so every term starts at 1), ``rel_dyn`` (every epoch each
            loss is rescaled by median(mse)/median(loss) over the last ``dynamic_ratio``
            of the epochs so far).
        dynamic_ratio: Fraction of past epochs the relative dynamic weights look back on.
        weighted_ce: Batch cross-entropies weighted by normalised inverse frequencies.
        adversary_every: Auxiliary and discriminator are updated only every ``k`` epochs
            (1 = every epoch; "aux dis delayed" uses k > 1).
        decay_exp: Learning rate × 0.999^(epoch − 0.2·max_epochs) once past 20 % of training.
        lr, beta1, beta2: Adam settings for all three networks.
        layer: Input layer (``"counts"`` for the raw-count variant) or ``None`` for X.
        log1p: Apply log1p to the input (the "norm log" variants on normalised counts).
    """

    latent_dim: int = 100
    hidden: Sequence[int] = (800, 800)
    adversary_hidden: Sequence[int] = (800, 800)
    prior_sigma: float = 1.0
    alpha: float = 1.0
    rho: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    delta: float = 1.0
    mu: float = 0.0
    aux_objective: str = "maximize"
    weighting: str = "rel_dyn"
    dynamic_ratio: float = 0.1
    weighted_ce: bool = False
    adversary_every: int = 1
    decay_exp: bool = False
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.99
    layer: str | None = None
    log1p: bool = False

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.adversary_hidden = tuple(int(h) for h in self.adversary_hidden)
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"aif weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.aux_objective not in AUX_OBJECTIVES:
            raise ValueError(f"aif aux_objective must be one of {AUX_OBJECTIVES}, got {self.aux_objective!r}")
        if int(self.adversary_every) != self.adversary_every or self.adversary_every < 1:
            raise ValueError(f"aif adversary_every must be a positive integer, got {self.adversary_every!r}")
        self.adversary_every = int(self.adversary_every)
        if not 0 < self.dynamic_ratio <= 1:
            raise ValueError(f"aif dynamic_ratio must be in (0, 1], got {self.dynamic_ratio}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AIFConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown aif model parameters {unknown}; known: {sorted(known)}")
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"], out["adversary_hidden"] = list(self.hidden), list(self.adversary_hidden)
        return out


def _mlp(sizes: Sequence[int], batch_norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers.append(nn.Linear(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConditionalVAE(nn.Module):
    """Encoder with a batch head, decoder conditioned on a one-hot batch label."""

    def __init__(self, n_genes: int, n_batches: int, latent_dim: int, hidden: Sequence[int], nonneg: bool):
        super().__init__()
        self.n_batches = n_batches
        self.encoder = _mlp([n_genes, *hidden])
        self.mean = nn.Linear(hidden[-1], latent_dim)
        self.log_var = nn.Linear(hidden[-1], latent_dim)
        self.batch_head = nn.Linear(hidden[-1], n_batches)
        self.decoder = nn.Sequential(
            _mlp([latent_dim + n_batches, *reversed(hidden)]), nn.Linear(hidden[0], n_genes)
        )
        # Raw counts and log-normalised values are non-negative: ReLU output, as the original.
        self.nonneg = nonneg

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mean(h), self.log_var(h), self.batch_head(h)

    def decode(self, z: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        out = self.decoder(torch.cat([z, F.one_hot(batch, self.n_batches).to(z.dtype)], dim=1))
        return F.relu(out) if self.nonneg else out

    @staticmethod
    def sample(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


class Auxiliary(nn.Module):
    """Batch classifier on the latent space (the adversary of the encoder)."""

    def __init__(self, latent_dim: int, n_batches: int, hidden: Sequence[int]):
        super().__init__()
        self.net = nn.Sequential(_mlp([latent_dim, *hidden], batch_norm=False), nn.Linear(hidden[-1], n_batches))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Real cell vs reconstruction (one logit)."""

    def __init__(self, n_genes: int, hidden: Sequence[int]):
        super().__init__()
        self.net = nn.Sequential(_mlp([n_genes, *hidden], batch_norm=False), nn.Linear(hidden[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_modules(config: Mapping[str, Any]) -> dict[str, nn.Module]:
    """Networks from a checkpoint config (``n_genes``, ``n_batches`` + :class:`AIFConfig` fields)."""
    cfg = AIFConfig.from_params({k: v for k, v in config.items() if k not in ("n_genes", "n_batches")})
    n_genes, n_batches = int(config["n_genes"]), int(config["n_batches"])
    return {
        "cvae": ConditionalVAE(n_genes, n_batches, cfg.latent_dim, cfg.hidden, nonneg=True),
        "aux": Auxiliary(cfg.latent_dim, n_batches, cfg.adversary_hidden),
        "dis": Discriminator(n_genes, cfg.adversary_hidden),
    }


def class_weights(batch_codes: np.ndarray, n_batches: int) -> np.ndarray:
    """Inverse batch frequencies, normalised to sum to one (the "weighted CE" variant)."""
    counts = np.bincount(batch_codes, minlength=n_batches).astype(np.float64)
    inverse = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return (inverse / inverse.sum()).astype(np.float32)


def relative_dynamic_scales(history: Sequence[Mapping[str, float]], ratio: float) -> dict[str, float]:
    """median(mse)/median(loss) over the last ``ratio`` of the epochs in ``history``.

    Brings every loss to the MSE's order of magnitude; the weights then set their balance.
    """
    window = max(1, int(round(ratio * len(history))))
    recent = history[-window:]
    mse = float(np.median([row["mse"] for row in recent]))
    scales = {"mse": 1.0}
    for name in LOSS_NAMES[1:]:
        values = np.abs([row[name] for row in recent])
        median = float(np.median(values))
        scales[name] = mse / median if median > 1e-12 else 1.0
    return scales


def exp_decay_factor(epoch: int, max_epochs: int, rate: float = 0.999) -> float:
    """``rate^(epoch − 0.2·max_epochs)`` after the first 20 % of epochs, 1 before."""
    return float(rate ** max(0.0, epoch - 0.2 * max_epochs))


class AIFPlan(TrainingPlan):
    """One minibatch step: encoder/decoder, then auxiliary and discriminator (when due)."""

    def __init__(self, modules: dict[str, nn.Module], config: AIFConfig, max_epochs: int, ce_weights=None):
        self.nets = modules
        self.config = config
        self.max_epochs = max_epochs
        self.ce_weights = ce_weights
        betas = (config.beta1, config.beta2)
        self.optimisers = {
            name: torch.optim.Adam(module.parameters(), lr=config.lr, betas=betas)
            for name, module in modules.items()
        }
        self.scales = {name: 1.0 for name in LOSS_NAMES}
        self.loss_history: list[dict[str, float]] = []
        self.weights = {
            "mse": 1.0, "kl": config.alpha, "class": config.rho, "class_rec": config.beta,
            "aux": -config.gamma if config.aux_objective == "maximize" else config.gamma, "gen": config.delta, "proj": -config.mu,
        }  # fmt: skip

    def modules(self) -> dict[str, nn.Module]:
        return self.nets

    def _losses(self, x: torch.Tensor, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        cvae, aux, dis = self.nets["cvae"], self.nets["aux"], self.nets["dis"]
        sigma2 = self.config.prior_sigma**2
        mean, log_var, batch_logits = cvae.encode(x)
        z = cvae.sample(mean, log_var)
        x_rec = cvae.decode(z, batch)
        kl = 0.5 * (
            (log_var.exp() + mean.pow(2)) / sigma2 - 1.0 - log_var + np.log(sigma2)
        ).sum(1).mean()
        _, _, rec_logits = cvae.encode(x_rec)
        aux_logits = aux(z)
        if self.config.aux_objective == "maximize":
            aux_term = F.cross_entropy(aux_logits, batch, weight=self.ce_weights)
        else:
            aux_term = -F.log_softmax(aux_logits, dim=1).mean(1).mean()
        losses = {
            "mse": F.mse_loss(x_rec, x),
            "kl": kl,
            "class": F.cross_entropy(batch_logits, batch, weight=self.ce_weights),
            "class_rec": F.cross_entropy(rec_logits, batch, weight=self.ce_weights),
            "aux": aux_term,
            "gen": F.binary_cross_entropy_with_logits(dis(x_rec), torch.ones(len(x), device=x.device)),
        }
        if self.config.mu > 0:
            # A random other batch per cell: cross-over between the batch-conditional decoders.
            shift = torch.randint(1, cvae.n_batches, batch.shape, device=batch.device)
            projected = cvae.decode(z, (batch + shift) % cvae.n_batches)
            losses["proj"] = F.cosine_similarity(projected, x, dim=1).mean()
        else:
            losses["proj"] = torch.zeros((), device=x.device)
        return losses, z, x_rec

    def _total(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[k] * self.scales[k] * losses[k] for k in LOSS_NAMES)

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        x, labels = batch["x"], batch["batch"]
        losses, z, x_rec = self._losses(x, labels)
        total = self._total(losses)
        self.optimisers["cvae"].zero_grad()
        total.backward()
        self.optimisers["cvae"].step()
        metrics = {**{k: v.detach() for k, v in losses.items()}, "loss": total.detach()}

        if (epoch - 1) % self.config.adversary_every == 0:
            aux_loss = F.cross_entropy(self.nets["aux"](z.detach()), labels, weight=self.ce_weights)
            self.optimisers["aux"].zero_grad()
            aux_loss.backward()
            self.optimisers["aux"].step()
            real = self.nets["dis"](x)
            fake = self.nets["dis"](x_rec.detach())
            dis_loss = F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            self.optimisers["dis"].zero_grad()
            dis_loss.backward()
            self.optimisers["dis"].step()
            metrics.update(aux_train=aux_loss.detach(), dis_train=dis_loss.detach())
        return metrics

    def validation_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, Any]:
        losses, _, _ = self._losses(batch["x"], batch["batch"])
        return {**losses, "loss": self._total(losses)}

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        self.loss_history.append({k: record[f"train_{k}"] for k in LOSS_NAMES})
        if self.config.weighting == "norm" and epoch == 1:
            first = self.loss_history[0]
            self.scales = {k: (1.0 / abs(v) if abs(v) > 1e-12 else 1.0) for k, v in first.items()}
        elif self.config.weighting == "rel_dyn":
            self.scales = relative_dynamic_scales(self.loss_history, self.config.dynamic_ratio)
        record.update({f"scale_{k}": v for k, v in self.scales.items()})
        if self.config.decay_exp:
            factor = exp_decay_factor(epoch, self.max_epochs)
            for optimiser in self.optimisers.values():
                for group in optimiser.param_groups:
                    group["lr"] = self.config.lr * factor
            record["lr"] = self.config.lr * factor


@dataclass
class AIFModel:
    """Trained networks plus what is needed to use them on AnnData."""

    modules: dict[str, nn.Module]
    config: AIFConfig
    genes: list[str]
    batches: list[str]
    batch_key: str
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def checkpoint(self) -> dict[str, Any]:
        config = {**self.config.to_dict(), "n_genes": len(self.genes), "n_batches": len(self.batches)}
        cpu = {k: m.to("cpu") for k, m in self.modules.items()}
        return make_checkpoint(MODEL_NAME, cpu, config, genes=self.genes, batches=self.batches, batch_key=self.batch_key)

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> AIFModel:
        modules = restore_modules(dict(checkpoint), MODEL_NAME, build_modules)
        config = AIFConfig.from_params(
            {k: v for k, v in checkpoint["config"].items() if k not in ("n_genes", "n_batches")}
        )
        return cls(modules, config, list(checkpoint["genes"]), list(checkpoint["batches"]), checkpoint["batch_key"])


def model_input(adata: ad.AnnData, config: AIFConfig) -> np.ndarray:
    """The matrix AIF trains on: X or ``config.layer``, optionally log1p."""
    if config.layer is not None and config.layer not in adata.layers:
        raise InputValidationError(
            f"{source_of(adata)}: aif input layer '{config.layer}' missing; layers are "
            f"{preview(adata.layers.keys()) or 'none'}"
        )
    matrix = dense_matrix(adata, config.layer)
    return np.log1p(matrix) if config.log1p else matrix


def validate_batches(
    adata: ad.AnnData,
    batch_key: str,
    batch_size: int,
    reference_batch: str | None = None,
    cell_type_key: str | None = None,
) -> None:
    """The issue's bad inputs, raised before any training starts."""
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


def train_aif(
    adata: ad.AnnData,
    batch_key: str = "batch",
    model: Mapping[str, Any] | AIFConfig | None = None,
    training: Mapping[str, Any] | TrainingConfig | None = None,
    split_key: str | None = "split",
) -> tuple[AIFModel, TrainingResult]:
    """Train AIF on ``adata`` (cells of ``obs[split_key] == "validation"`` score each epoch)."""
    config = model if isinstance(model, AIFConfig) else AIFConfig.from_params(model or {})
    train_cfg = training if isinstance(training, TrainingConfig) else TrainingConfig.from_params(training or {})
    validate_batches(adata, batch_key, train_cfg.batch_size)
    matrix = model_input(adata, config)
    if not np.isfinite(matrix).all():
        raise InputValidationError(f"{source_of(adata)}: aif input has NaN/inf values")
    labels = pd.Categorical(adata.obs[batch_key].astype(str))
    batches = [str(c) for c in labels.categories]
    codes = np.asarray(labels.codes, dtype=np.int64)

    device = resolve_device(train_cfg.device)
    seed_everything(train_cfg.seed)
    modules = {k: m.to(device) for k, m in build_modules(
        {**config.to_dict(), "n_genes": adata.n_vars, "n_batches": len(batches)}
    ).items()}  # fmt: skip
    weights = torch.from_numpy(class_weights(codes, len(batches))).to(device) if config.weighted_ce else None
    plan = AIFPlan(modules, config, train_cfg.max_epochs, weights)

    is_valid = (
        adata.obs[split_key].astype(str).eq("validation").to_numpy()
        if split_key and split_key in adata.obs.columns
        else np.zeros(adata.n_obs, dtype=bool)
    )
    tensors = {"x": torch.from_numpy(matrix).to(device), "batch": torch.from_numpy(codes).to(device)}
    train = {k: v[torch.from_numpy(~is_valid).to(device)] for k, v in tensors.items()}
    valid = {k: v[torch.from_numpy(is_valid).to(device)] for k, v in tensors.items()} if is_valid.any() else None
    result = fit(plan, train, valid, train_cfg, description="aif")
    return AIFModel(modules, config, list(map(str, adata.var_names)), batches, batch_key, str(device)), result


def _check_genes(model: AIFModel, adata: ad.AnnData) -> None:
    if list(map(str, adata.var_names)) != model.genes:
        missing = sorted(set(model.genes) - set(map(str, adata.var_names)))
        raise InputValidationError(
            f"{source_of(adata)}: genes differ from the {len(model.genes)} the aif model was trained on"
            + (f"; missing {preview(missing)}" if missing else " (order differs)")
        )


def embed(model: AIFModel, adata: ad.AnnData) -> np.ndarray:
    """Latent means ``μ(x)`` (cells × latent_dim)."""
    _check_genes(model, adata)
    cvae = model.modules["cvae"].eval()
    x = torch.from_numpy(model_input(adata, model.config)).to(model.device)
    return apply_in_batches(lambda xb: cvae.encode(xb)[0], x).cpu().numpy()


def correct(
    model: AIFModel,
    adata: ad.AnnData,
    reference_batch: str | None = None,
    n_samples: int = 20,
    seed: int = 0,
    layer: str = "aif_corrected",
    obsm_key: str = "X_aif",
) -> ad.AnnData:
    """Every cell decoded under ``reference_batch`` (default: the largest batch).

    Returns a copy with the corrected expression in ``layers[layer]``, the latent means in
    ``obsm[obsm_key]`` and the reference batch in ``uns["aif"]``.
    """
    _check_genes(model, adata)
    if reference_batch is None:
        reference_batch = str(adata.obs[model.batch_key].astype(str).value_counts().idxmax())
    if str(reference_batch) not in model.batches:
        raise InputValidationError(
            f"{source_of(adata)}: reference batch {reference_batch!r} not among the batches the aif "
            f"model was trained on: {preview(model.batches)}"
        )
    code = model.batches.index(str(reference_batch))
    cvae = model.modules["cvae"].eval()
    x = torch.from_numpy(model_input(adata, model.config)).to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)

    def decode_reference(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var, _ = cvae.encode(xb)
        label = torch.full((len(xb),), code, dtype=torch.long, device=xb.device)
        std = torch.exp(0.5 * log_var)
        total = torch.zeros(len(xb), cvae.decoder[-1].out_features, device=xb.device)
        for _ in range(n_samples):
            noise = torch.randn(mean.shape, generator=generator, device=xb.device)
            total += cvae.decode(mean + noise * std, label)
        return total / n_samples, mean

    corrected, latent = apply_in_batches(decode_reference, x)
    out = adata.copy()
    out.layers[layer] = corrected.cpu().numpy()
    out.obsm[obsm_key] = latent.cpu().numpy()
    out.uns["aif"] = {"reference_batch": str(reference_batch), "n_samples": int(n_samples)}
    return out


def train_and_correct(
    adata: ad.AnnData,
    batch_key: str,
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    reference_batch: str | None = None,
    n_samples: int = 20,
) -> tuple[AIFModel, TrainingResult, ad.AnnData, float]:
    """Convenience for grid searches: train, correct, and the wall time of both."""
    start = time.perf_counter()
    fitted, result = train_aif(adata, batch_key, model, training)
    corrected = correct(fitted, adata, reference_batch, n_samples, seed=int(training.get("seed", 0)))
    return fitted, result, corrected, time.perf_counter() - start
