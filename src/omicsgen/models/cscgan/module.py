"""scGAN / cscGAN networks (Marouf et al., Nature Communications 2020): torch modules only.

* :class:`Generator`: noise → 256 → 512 → 1024 (Linear without bias → (conditional)
  batch norm → ReLU) → genes (Linear → ReLU) → :class:`LibrarySizeNormalisation`, which
  rescales every generated cell to the training library size (20,000 by default).
* :class:`Critic`: genes → 1024 → 512 → 256 (Linear → ReLU) → scalar. The conditional
  critic adds a projection term ``<embed(label), features>`` (Miyato & Koyama 2018) to the
  unconditional linear output — the original's configuration names this critic but never
  calls it; here it is the one used.

``n_classes = 0`` builds the unconditional scGAN's networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are looked up per class (Dumoulin et al. 2016).

    With ``n_classes == 0`` it is ordinary batch norm with one learnt scale and shift.
    Moving averages use momentum 0.001, the original's decay of 0.999.
    """

    def __init__(self, n_features: int, n_classes: int = 0) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features, affine=False, momentum=0.001, eps=1e-5)
        rows = max(n_classes, 1)
        self.scale = nn.Embedding(rows, n_features)
        self.shift = nn.Embedding(rows, n_features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes == 0 or labels is None:
            labels = torch.zeros(len(x), dtype=torch.long, device=x.device)
        return self.norm(x) * self.scale(labels) + self.shift(labels)


class LibrarySizeNormalisation(nn.Module):
    """Rescale every cell to ``library_size`` total counts (the LSN layer; no weights)."""

    def __init__(self, library_size: float) -> None:
        super().__init__()
        self.library_size = float(library_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.library_size / (x.sum(dim=1, keepdim=True) + torch.finfo(x.dtype).eps))


class Generator(nn.Module):
    """Noise (and a cell-type label) → a cell of ``n_genes`` summing to ``library_size``."""

    def __init__(  # noqa: PLR0913
        self,
        n_genes: int,
        latent_dim: int = 128,
        layers: Sequence[int] = (256, 512, 1024),
        library_size: float = 20000.0,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = latent_dim
        for size in layers:
            linear = nn.Linear(width, size, bias=False)
            nn.init.xavier_uniform_(linear.weight)
            self.linears.append(linear)
            self.norms.append(ConditionalBatchNorm(size, n_classes))
            width = size
        self.output = nn.Linear(width, n_genes)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.lsn = LibrarySizeNormalisation(library_size)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        for linear, norm in zip(self.linears, self.norms, strict=True):
            h = torch.relu(norm(linear(h), labels))
        return self.lsn(torch.relu(self.output(h)))


class Critic(nn.Module):
    """A cell (and its label) → a Wasserstein critic score.

    The hidden stack is built layer by layer (each Linear re-initialised right after it is
    made), not with :func:`omicsgen.models.nn.mlp`, which creates every Linear first: the
    random draws would come in another order and the initial weights would differ.
    """

    def __init__(self, n_genes: int, layers: Sequence[int] = (1024, 512, 256), n_classes: int = 0) -> None:
        super().__init__()
        stack: list[nn.Module] = []
        width = n_genes
        for size in layers:
            linear = nn.Linear(width, size)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            stack += [linear, nn.ReLU()]
            width = size
        self.features = nn.Sequential(*stack)
        self.output = nn.Linear(width, 1)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.projection = nn.Embedding(n_classes, width) if n_classes else None
        if self.projection is not None:
            nn.init.xavier_uniform_(self.projection.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        score = self.output(h).squeeze(1)
        if self.projection is not None and labels is not None:
            score = score + (self.projection(labels) * h).sum(dim=1)
        return score
