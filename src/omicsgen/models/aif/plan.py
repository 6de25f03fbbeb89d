"""AIF's training plan: the losses, their weighting variants and the three optimisers.

Encoder/decoder objective (weights α, ρ, β, γ, δ, μ as in the original)::

    mse + α·kl + ρ·class + β·class_rec − γ·aux + δ·gen − μ·proj

where ``proj`` is the cosine similarity between a cell and its latent decoded under a
randomly drawn other batch label (the "proj boost" constraint). After the encoder/decoder
step, the auxiliary learns to predict the batch from ``z`` and the discriminator to tell
cells from reconstructions (every ``adversary_every`` epochs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from omicsgen.models.base import ConfigSection
from omicsgen.models.nn import reparameterise
from omicsgen.models.training import TrainingPlan

LOSS_NAMES = ("mse", "kl", "class", "class_rec", "aux", "gen", "proj")
WEIGHTINGS = ("intrinsic", "norm", "rel_dyn")
AUX_OBJECTIVES = ("maximize", "confusion")


@dataclass
class AIFPlanConfig(ConfigSection):
    """Loss weights, variant switches and optimiser of AIF (the ``plan`` section).

    The variants are independent switches that combine freely: ``weighting``,
    ``weighted_ce``, ``mu > 0`` (proj boost), ``adversary_every`` (aux dis delayed),
    ``decay_exp``.

    Attributes:
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
    """

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

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"aif weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.aux_objective not in AUX_OBJECTIVES:
            raise ValueError(f"aif aux_objective must be one of {AUX_OBJECTIVES}, got {self.aux_objective!r}")
        if int(self.adversary_every) != self.adversary_every or self.adversary_every < 1:
            raise ValueError(f"aif adversary_every must be a positive integer, got {self.adversary_every!r}")
        self.adversary_every = int(self.adversary_every)
        if not 0 < self.dynamic_ratio <= 1:
            raise ValueError(f"aif dynamic_ratio must be in (0, 1], got {self.dynamic_ratio}")


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


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """Mean over cells of KL(N(mean, exp(log_var)) ‖ N(0, prior_sigma² I)), summed over
    latent dimensions (``nn.kl_to_standard_normal`` is the σ = 1 case)."""
    sigma2 = prior_sigma**2
    return 0.5 * ((log_var.exp() + mean.pow(2)) / sigma2 - 1.0 - log_var + np.log(sigma2)).sum(1).mean()


class _Weighting:
    """The plan's loss scales and per-epoch loss history as a resumable state."""

    def __init__(self, plan: AIFPlan):
        self.plan = plan

    def state_dict(self) -> dict[str, Any]:
        return {"scales": dict(self.plan.scales), "loss_history": [dict(row) for row in self.plan.loss_history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.plan.scales = dict(state["scales"])
        self.plan.loss_history = [dict(row) for row in state["loss_history"]]


class AIFPlan(TrainingPlan):
    """One minibatch step: encoder/decoder, then auxiliary and discriminator (when due)."""

    def __init__(  # noqa: PLR0913
        self,
        modules: dict[str, nn.Module],
        config: AIFPlanConfig,
        prior_sigma: float,
        max_epochs: int,
        ce_weights: torch.Tensor | None = None,
    ):
        self.nets = modules
        self.config = config
        self.prior_sigma = prior_sigma
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

    def stateful(self) -> dict[str, Any]:
        """The three optimisers and the loss scales with their history (a resumed run
        re-weights as an uninterrupted one)."""
        return {**{f"optimiser_{name}": o for name, o in self.optimisers.items()}, "weighting": _Weighting(self)}

    def _losses(self, x: torch.Tensor, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        cvae, aux, dis = self.nets["cvae"], self.nets["aux"], self.nets["dis"]
        mean, log_var, batch_logits = cvae.encode(x)
        z = reparameterise(mean, log_var)
        x_rec = cvae.decode(z, batch)
        kl = gaussian_kl(mean, log_var, self.prior_sigma)
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
