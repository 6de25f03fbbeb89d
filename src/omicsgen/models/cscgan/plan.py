"""The WGAN-GP training plan of scGAN / cscGAN.

One ``training_step`` of :func:`omicsgen.models.training.fit` is ONE generator step: the
minibatch it receives holds ``n_critic`` real minibatches, each used for one critic
update, followed by one generator update. So ``fit``'s epoch is a pass over the real
cells, i.e. ``ceil(n_cells / (batch_size * n_critic))`` generator steps.

Labels for generated cells are drawn from the real cell-type proportions, each proportion
kept with its own label (the original sorted the proportions and lost the pairing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from omicsgen.models.base import ConfigSection
from omicsgen.models.cscgan.module import Critic, Generator
from omicsgen.models.training import TrainingPlan

CRITIC_INPUTS = ("counts", "log1p")


@dataclass(frozen=True)
class PlanConfig(ConfigSection):
    """Losses and optimiser (defaults are the paper's).

    ``learning_rate`` decays exponentially to ``final_learning_rate`` over training; both
    networks use Adam with ``betas`` and ``amsgrad``. ``n_critic`` critic updates per
    generator update; ``gradient_penalty`` weighs the WGAN-GP penalty.
    """

    gradient_penalty: float = 10.0
    n_critic: int = 5
    learning_rate: float = 1e-4
    final_learning_rate: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.9)
    amsgrad: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))


class _StepCount:
    """The plan's generator-step count as a resumable state."""

    def __init__(self, plan: CscganPlan) -> None:
        self.plan = plan

    def state_dict(self) -> dict[str, int]:
        return {"generator_steps": self.plan.generator_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.plan.generator_steps = int(state["generator_steps"])


class CscganPlan(TrainingPlan):
    """WGAN-GP: per ``training_step`` ``n_critic`` critic updates, then one generator update.

    ``critic_input`` is what the critic sees: ``counts`` (the paper) or ``log1p`` (one of
    :data:`CRITIC_INPUTS`), with
    which the Wasserstein distance (and its gradient penalty) is measured between
    log-expression profiles, which trains much faster.
    """

    def __init__(  # noqa: PLR0913
        self,
        generator: Generator,
        critic: Critic,
        config: PlanConfig,
        critic_input: str,
        label_probabilities: torch.Tensor | None,
        total_generator_steps: int,
        batch_size: int,
    ) -> None:
        self.generator = generator
        self.critic = critic
        self.config = config
        self.critic_input = critic_input
        self.label_probabilities = label_probabilities
        self.total_generator_steps = max(total_generator_steps, 1)
        self.batch_size = batch_size
        options = {"lr": config.learning_rate, "betas": tuple(config.betas), "amsgrad": config.amsgrad}
        self.critic_optimiser = torch.optim.Adam(critic.parameters(), **options)
        self.generator_optimiser = torch.optim.Adam(generator.parameters(), **options)
        self.generator_steps = 0

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def stateful(self) -> dict[str, Any]:
        """Both optimisers and the generator-step count (the learning rate's position in its
        decay), so that a resumed run goes on as an uninterrupted one."""
        return {**super().stateful(), "steps": _StepCount(self)}

    def learning_rate(self) -> float:
        """Exponential decay from ``learning_rate`` to ``final_learning_rate`` over training."""
        c = self.config
        progress = min(self.generator_steps / self.total_generator_steps, 1.0)
        return c.learning_rate * (c.final_learning_rate / c.learning_rate) ** progress

    def _noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.generator.latent_dim, device=device)

    def sample_labels(self, n: int, device: torch.device) -> torch.Tensor | None:
        if self.label_probabilities is None:
            return None
        return torch.multinomial(self.label_probabilities, n, replacement=True).to(device)

    def _gradient_penalty(self, real, fake, labels) -> torch.Tensor:
        alpha = torch.rand(len(real), 1, device=real.device)
        mixed = (real + alpha * (fake - real)).requires_grad_(True)
        (gradients,) = torch.autograd.grad(self.critic(mixed, labels).sum(), mixed, create_graph=True)
        return ((gradients.norm(2, dim=1) - 1.0) ** 2).mean()

    def critic_view(self, cells: torch.Tensor) -> torch.Tensor:
        """What the critic sees (``critic_input``)."""
        return torch.log1p(cells) if self.critic_input == "log1p" else cells

    def _critic_update(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        # Fakes share the real minibatch's labels, so that real, fake and interpolated cells
        # are scored under the same class projection (as in the original's penalty term).
        with torch.no_grad():
            fake = self.critic_view(self.generator(self._noise(len(real), real.device), labels))
        real = self.critic_view(real)
        distance = self.critic(real, labels).mean() - self.critic(fake, labels).mean()
        penalty = self._gradient_penalty(real, fake, labels)
        loss = -distance + self.config.gradient_penalty * penalty
        self.critic_optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimiser.step()
        return {"critic_loss": loss.detach(), "wasserstein": distance.detach(), "gradient_penalty": penalty.detach()}

    def _generator_update(self, device: torch.device) -> torch.Tensor:
        labels = self.sample_labels(self.batch_size, device)
        fake = self.generator(self._noise(self.batch_size, device), labels)
        loss = -self.critic(self.critic_view(fake), labels).mean()
        self.generator_optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.generator_optimiser.step()
        return loss.detach()

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        lr = self.learning_rate()
        for optimiser in (self.critic_optimiser, self.generator_optimiser):
            for group in optimiser.param_groups:
                group["lr"] = lr
        x, y = batch["x"], batch.get("y")
        # batch norm in training mode needs ≥ 2 cells, so a short last batch gives fewer updates
        n_chunks = max(1, min(self.config.n_critic, len(x) // 2))
        records = []
        for index in torch.arange(len(x), device=x.device).tensor_split(n_chunks):
            records.append(self._critic_update(x[index], None if y is None else y[index]))
        generator_loss = self._generator_update(x.device)
        self.generator_steps += 1
        out = {key: torch.stack([r[key] for r in records]).mean() for key in records[0]}
        out["generator_loss"] = generator_loss
        out["learning_rate"] = lr
        return out


def generator_steps_per_epoch(n_cells: int, batch_size: int, n_critic: int) -> int:
    """Generator steps in one pass over ``n_cells`` real cells."""
    return math.ceil(n_cells / (batch_size * n_critic))


@contextmanager
def flushed_denormals():
    """Flush denormal floats to zero while a GAN trains or generates on the CPU.

    The ReLU → library-size-normalisation output and the critic's gradients drift into
    denormal range during training; x86 CPUs compute on denormals 10-100x slower, which
    made each generator step ~30x dearer after a few dozen steps (measured: 48 steps took
    132 CPU-s without, 4.5 CPU-s with). Values below ~1e-38 change no result that matters.
    """
    enabled = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            torch.set_flush_denormal(False)
