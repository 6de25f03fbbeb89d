"""NormAE (Rong et al., Analytical Chemistry 2020): adversarial removal of batch effects and
injection-order drift from untargeted metabolomics data.

An autoencoder learns a latent code of each sample; two adversaries read that code, a batch
classifier (cross-entropy) and an injection-order ranker (pairwise logistic ranking loss
within each batch). The encoder is trained to fool both, so the code keeps biology but
not batch or drift. The decoder reconstructs a sample from ``latent + mapper(one-hot batch,
injection order)``; the corrected data is ``decoder(latent)`` without that term.

Training has three phases, each a call of the shared :func:`omicsgen.models.training.fit`:
autoencoder pre-training, adversary pre-training, then alternating adversarial training in
which the epoch minimising ``mean QC distance in a 3-component PCA of the corrected data +
100 × QC L1 reconstruction loss`` is kept.

Two bugs of the original code are not reproduced: its outputs were inverse-standardised
twice (here :func:`omicsgen.preprocessing.restore_original_scale` is applied once, by the
caller), and its gradient clipping for the ranker step was applied to the wrong network
(here every optimiser step clips exactly the parameters it updates).
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

from omicsgen.metrics.metabolomics import qc_pca_distance
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

MODEL_NAME = "normae"
PHASES = ("autoencoder_pretraining", "adversary_pretraining", "adversarial_training")


# --------------------------------------------------------------------------- networks
@dataclass
class NormAENetworkConfig:
    """Sizes of the five networks. Defaults are the paper's autoencoder (1000-1000 → 500)."""

    n_features: int
    n_batches: int
    encoder_hidden: tuple[int, ...] = (1000, 1000)
    latent_dim: int = 500
    mapper_hidden: tuple[int, ...] = (500,)
    classifier_hidden: tuple[int, ...] = (250,)
    ranker_hidden: tuple[int, ...] = (250,)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("encoder_hidden", "mapper_hidden", "classifier_hidden", "ranker_hidden"):
            setattr(self, name, tuple(int(units) for units in getattr(self, name)))
        if self.n_batches < 2:
            raise ValueError(f"NormAE needs at least two batches, got {self.n_batches}")

    @classmethod
    def from_params(cls, n_features: int, n_batches: int, params: Mapping[str, Any]):
        known = {f.name for f in fields(cls)} - {"n_features", "n_batches"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown normae network parameters {unknown}; known: {sorted(known)}")
        return cls(n_features=n_features, n_batches=n_batches, **params)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def mlp(n_in: int, hidden: Sequence[int], n_out: int, dropout: float = 0.0, batch_norm: bool = True):
    """Linear → (BatchNorm) → ReLU → (Dropout) per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for units in hidden:
        layers.append(nn.Linear(n_in, units))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = units
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def build_networks(config: NormAENetworkConfig | Mapping[str, Any]) -> dict[str, nn.Module]:
    """The encoder, decoder (mirror of the encoder), batch/order mapper and the two adversaries."""
    if not isinstance(config, NormAENetworkConfig):
        config = NormAENetworkConfig(**config)
    c = config
    return {
        "encoder": mlp(c.n_features, c.encoder_hidden, c.latent_dim, c.dropout),
        "decoder": mlp(c.latent_dim, tuple(reversed(c.encoder_hidden)), c.n_features, c.dropout),
        # input: one-hot batch + injection order scaled to [0, 1]
        "mapper": mlp(c.n_batches + 1, c.mapper_hidden, c.latent_dim),
        "batch_classifier": mlp(c.latent_dim, c.classifier_hidden, c.n_batches, c.dropout),
        # the ranker has no batch norm: its score must compare samples across a minibatch
        "order_ranker": mlp(c.latent_dim, c.ranker_hidden, 1, c.dropout, batch_norm=False),
    }


def pairwise_ranking_loss(scores: torch.Tensor, order: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Logistic loss over all pairs of one group (batch) whose injection orders differ:
    mean of ``softplus(-(s_j - s_i))`` for ``order_i < order_j``, i.e. how badly the scores
    fail to rank later injections higher. Zero when a minibatch has no such pair."""
    scores = scores.reshape(-1)
    later = order[:, None] < order[None, :]
    same_group = group[:, None] == group[None, :]
    mask = later & same_group
    if not mask.any():
        return scores.sum() * 0.0
    difference = scores[None, :] - scores[:, None]
    return F.softplus(-difference[mask]).mean()


# --------------------------------------------------------------------------- training
@dataclass
class NormAETrainingParams:
    """Phases, optimisers and model selection (defaults: the paper's code unless noted)."""

    autoencoder_epochs: int = 1000
    adversary_epochs: int = 10
    adversarial_epochs: int = 700
    batch_size: int = 64
    lr_autoencoder: float = 2e-4
    lr_batch_classifier: float = 5e-3
    lr_order_ranker: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.9)
    grad_clip_norm: float = 1.0
    lambda_batch: float = 1.0
    lambda_order: float = 1.0
    qc_reconstruction_weight: float = 100.0
    selection_pca_components: int = 3
    patience: int | None = None
    progress: bool | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> NormAETrainingParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown normae training parameters {unknown}; known: {sorted(known)}")
        out = cls(**params)
        out.betas = tuple(float(b) for b in out.betas)
        return out


class NormAEPlan(TrainingPlan):
    """One minibatch step of the current phase (``self.phase``), for :func:`fit`."""

    def __init__(self, networks: dict[str, nn.Module], params: NormAETrainingParams, all_samples):
        self.networks = networks
        self.params = params
        self.phase = PHASES[0]
        self.all_samples = all_samples  # every sample, for the QC selection score
        ae = [networks[k] for k in ("encoder", "decoder", "mapper")]
        self.autoencoder_parameters = [p for net in ae for p in net.parameters()]
        self.adversary_parameters = [
            p for k in ("batch_classifier", "order_ranker") for p in networks[k].parameters()
        ]
        self.autoencoder_optimiser = torch.optim.Adam(
            self.autoencoder_parameters, lr=params.lr_autoencoder, betas=params.betas
        )
        self.adversary_optimiser = torch.optim.Adam(
            [
                {"params": networks["batch_classifier"].parameters(), "lr": params.lr_batch_classifier},
                {"params": networks["order_ranker"].parameters(), "lr": params.lr_order_ranker},
            ],
            betas=params.betas,
        )

    def modules(self) -> dict[str, nn.Module]:
        return self.networks

    def _reconstruct(self, batch: dict[str, torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        condition = torch.cat([batch["batch_onehot"], batch["order"][:, None]], dim=1)
        return self.networks["decoder"](latent + self.networks["mapper"](condition))

    def _adversary_losses(self, latent: torch.Tensor, batch: dict[str, torch.Tensor]):
        batch_ce = F.cross_entropy(self.networks["batch_classifier"](latent), batch["batch_index"])
        order_rank = pairwise_ranking_loss(
            self.networks["order_ranker"](latent), batch["order"], batch["batch_index"]
        )
        return batch_ce, order_rank

    def _adversary_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            latent = self.networks["encoder"](batch["x"])
        batch_ce, order_rank = self._adversary_losses(latent, batch)
        self.adversary_optimiser.zero_grad()
        (batch_ce + order_rank).backward()
        nn.utils.clip_grad_norm_(self.adversary_parameters, self.params.grad_clip_norm)
        self.adversary_optimiser.step()
        return {"batch_ce": batch_ce, "order_rank": order_rank}

    def _autoencoder_step(self, batch: dict[str, torch.Tensor], adversarial: bool):
        latent = self.networks["encoder"](batch["x"])
        reconstruction = F.l1_loss(self._reconstruct(batch, latent), batch["x"])
        loss = reconstruction
        logged = {"reconstruction": reconstruction}
        if adversarial:
            batch_ce, order_rank = self._adversary_losses(latent, batch)
            loss = loss - self.params.lambda_batch * batch_ce - self.params.lambda_order * order_rank
            logged.update({"ae_batch_ce": batch_ce, "ae_order_rank": order_rank, "ae_loss": loss})
        self.autoencoder_optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.autoencoder_parameters, self.params.grad_clip_norm)
        self.autoencoder_optimiser.step()
        return logged

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int):
        if self.phase == "autoencoder_pretraining":
            return self._autoencoder_step(batch, adversarial=False)
        if self.phase == "adversary_pretraining":
            return self._adversary_step(batch)
        return {**self._adversary_step(batch), **self._autoencoder_step(batch, adversarial=True)}

    def validation_step(self, batch: dict[str, torch.Tensor]):
        latent = self.networks["encoder"](batch["x"])
        return {"qc_reconstruction": F.l1_loss(self._reconstruct(batch, latent), batch["x"])}

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        if self.phase != "adversarial_training":
            return
        corrected = corrected_values(self.networks, self.all_samples["x"]).cpu().numpy()
        distance = qc_pca_distance(
            corrected, self.all_samples["is_qc"].cpu().numpy(), self.params.selection_pca_components
        )
        record["validation_qc_pca_distance"] = distance
        record["validation_selection_score"] = (
            distance + self.params.qc_reconstruction_weight * record["validation_qc_reconstruction"]
        )


def corrected_values(networks: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
    """decoder(encoder(x)): the data without batch and injection-order effects."""
    return apply_in_batches(lambda chunk: networks["decoder"](networks["encoder"](chunk)), x)


# --------------------------------------------------------------------------- high-level API
@dataclass
class NormAEModel:
    """Trained networks plus what is needed to encode new samples the same way."""

    networks: dict[str, nn.Module]
    config: NormAENetworkConfig
    feature_names: list[str]
    batch_categories: list[str]
    order_range: tuple[float, float]
    keys: dict[str, str] = field(default_factory=dict)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        return make_checkpoint(
            MODEL_NAME,
            self.networks,
            self.config.to_dict(),
            feature_names=list(self.feature_names),
            batch_categories=list(self.batch_categories),
            order_range=[float(v) for v in self.order_range],
            keys=dict(self.keys),
            **extra,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> NormAEModel:
        networks = restore_modules(checkpoint, MODEL_NAME, build_networks)
        return cls(
            networks=networks,
            config=NormAENetworkConfig(**checkpoint["config"]),
            feature_names=list(checkpoint["feature_names"]),
            batch_categories=list(checkpoint["batch_categories"]),
            order_range=tuple(checkpoint["order_range"]),
            keys=dict(checkpoint.get("keys", {})),
        )


DEFAULT_KEYS = {"batch": "batch", "order": "injection_order", "qc": "is_qc"}


def _scaled_order(order: np.ndarray, order_range: Sequence[float]) -> np.ndarray:
    low, high = order_range
    return (np.asarray(order, dtype=np.float64) - low) / (high - low if high > low else 1.0)


def _tensors(adata: ad.AnnData, model: NormAEModel, device: torch.device) -> dict[str, torch.Tensor]:
    keys = model.keys or DEFAULT_KEYS
    batches = adata.obs[keys["batch"]].astype(str).to_numpy()
    unknown = sorted(set(batches) - set(model.batch_categories))
    if unknown:
        raise ValueError(
            f"batches {unknown} (obs column '{keys['batch']}') were not seen in training; "
            f"the model knows {model.batch_categories}"
        )
    index = pd.Categorical(batches, categories=model.batch_categories).codes.astype(np.int64)
    order = _scaled_order(adata.obs[keys["order"]].to_numpy(), model.order_range)
    batch_index = torch.from_numpy(index).to(device)
    return {
        "x": torch.from_numpy(dense_matrix(adata)).to(device),
        "batch_index": batch_index,
        "batch_onehot": F.one_hot(batch_index, len(model.batch_categories)).float(),
        "order": torch.from_numpy(order.astype(np.float32)).to(device),
        "is_qc": torch.from_numpy(adata.obs[keys["qc"]].to_numpy(dtype=bool)).to(device),
    }


def train_normae(  # noqa: PLR0913
    adata: ad.AnnData,
    network: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    keys: Mapping[str, str] | None = None,
) -> tuple[NormAEModel, dict[str, Any]]:
    """Train NormAE on every sample of ``adata`` (X standardised per feature).

    Args:
        adata: samples × features, with obs columns for batch, injection order and a
            boolean QC flag (names in ``keys``, defaults ``batch``/``injection_order``/``is_qc``).
        network: :class:`NormAENetworkConfig` fields (sizes, dropout).
        training: :class:`NormAETrainingParams` fields (epochs per phase, learning rates…).
        seed, device: as everywhere in omicsgen.

    Returns:
        ``(model, record)``: the model with the weights of the selected epoch, and a record
        ``{"phases": {phase: TrainingResult dict}, "selected": {...}, "seconds": ...}``.
    """
    keys = {**DEFAULT_KEYS, **(keys or {})}
    params = NormAETrainingParams.from_params(training or {})
    target = resolve_device(device)
    batches = adata.obs[keys["batch"]].astype(str)
    order = adata.obs[keys["order"]].to_numpy(dtype=np.float64)
    config = NormAENetworkConfig.from_params(adata.n_vars, batches.nunique(), network or {})
    torch.manual_seed(seed)  # weight initialisation depends on the seed only
    networks = {name: net.to(target) for name, net in build_networks(config).items()}
    model = NormAEModel(
        networks=networks,
        config=config,
        feature_names=list(adata.var_names.astype(str)),
        batch_categories=sorted(batches.unique()),
        order_range=(float(order.min()), float(order.max())),
        keys=keys,
    )
    data = _tensors(adata, model, target)
    qc = data["is_qc"]
    if not bool(qc.any()):
        raise ValueError(f"no QC samples (obs column '{keys['qc']}'): NormAE selects its epoch on QCs")
    qc_data = {k: v[qc] for k, v in data.items()}
    plan = NormAEPlan(networks, params, data)

    phase_settings = {
        "autoencoder_pretraining": (params.autoencoder_epochs, "reconstruction", None),
        "adversary_pretraining": (params.adversary_epochs, "batch_ce", None),
        "adversarial_training": (params.adversarial_epochs, "selection_score", qc_data),
    }
    results: dict[str, TrainingResult] = {}
    start = time.perf_counter()
    for offset, (phase, (epochs, monitor, validation)) in enumerate(phase_settings.items()):
        if epochs <= 0:
            continue
        plan.phase = phase
        selecting = phase == "adversarial_training"
        run_config = TrainingConfig(
            max_epochs=int(epochs),
            batch_size=params.batch_size,
            patience=params.patience if selecting else None,
            monitor=monitor,
            restore_best=selecting,
            seed=seed + offset,  # a different minibatch order in each phase, still seeded
            device=str(target),
            progress=params.progress,
        )
        results[phase] = fit(plan, data, validation, run_config, description=f"normae {phase}")
    seconds = time.perf_counter() - start
    for net in networks.values():
        net.eval()
    record = {
        "seed": seed,
        "device": str(target),
        "training": asdict(params),
        "network": config.to_dict(),
        "phases": {phase: result.to_dict() for phase, result in results.items()},
        "selected": _selected_epoch(results, params),
        "seconds": seconds,
    }
    return model, record


def _selected_epoch(results: Mapping[str, TrainingResult], params: NormAETrainingParams) -> dict:
    """Which epoch's weights were kept (global epoch counts every phase)."""
    before = sum(r.epochs_run for p, r in results.items() if p != "adversarial_training")
    adversarial = results.get("adversarial_training")
    if adversarial is None:
        return {"selected_epoch": before, "phase": "last epoch (no adversarial training)"}
    row = adversarial.history[adversarial.best_epoch - 1]
    return {
        "selected_epoch": before + adversarial.best_epoch,
        "adversarial_epoch": adversarial.best_epoch,
        "selection_score": row["validation_selection_score"],
        "qc_pca_distance": row["validation_qc_pca_distance"],
        "qc_reconstruction": row["validation_qc_reconstruction"],
        "qc_reconstruction_weight": params.qc_reconstruction_weight,
    }


def history_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every epoch of every phase as one table, with ``phase`` and a global ``epoch``."""
    frames, done = [], 0
    for phase, result in record["phases"].items():
        frame = pd.DataFrame(result["history"]).rename(columns={"epoch": "phase_epoch"})
        frame.insert(0, "epoch", frame["phase_epoch"] + done)
        frame.insert(1, "phase", phase)
        frames.append(frame)
        done += len(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def remove_batch_effects(
    model: NormAEModel, adata: ad.AnnData, device: str = "auto"
) -> dict[str, np.ndarray]:
    """Apply a trained model to ``adata`` (same features, X scaled like the training data).

    Returns arrays on the model's (standardised) scale: ``corrected`` = decoder(latent)
    (``Rec_nobe``), ``reconstructed`` = decoder(latent + batch/order term) (``Rec``),
    ``latent`` (``Codes``).
    """
    features = list(adata.var_names.astype(str))
    if features != model.feature_names:
        missing = [f for f in model.feature_names if f not in set(features)]
        extra = [f for f in features if f not in set(model.feature_names)]
        raise ValueError(
            f"features differ from the model's ({len(model.feature_names)} features): "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
            + ("" if missing or extra else " (same names, different order)")
        )
    target = resolve_device(device)
    networks = {name: net.to(target).eval() for name, net in model.networks.items()}
    data = _tensors(adata, model, target)
    condition = torch.cat([data["batch_onehot"], data["order"][:, None]], dim=1)

    def apply(batch):
        latent = networks["encoder"](batch["x"])
        with_effects = networks["decoder"](latent + networks["mapper"](batch["condition"]))
        return networks["decoder"](latent), with_effects, latent

    corrected, reconstructed, latent = apply_in_batches(apply, {"x": data["x"], "condition": condition})
    return {
        "corrected": corrected.cpu().numpy().astype(np.float64),
        "reconstructed": reconstructed.cpu().numpy().astype(np.float64),
        "latent": latent.cpu().numpy().astype(np.float64),
    }
