"""scGAN and cscGAN (Marouf et al., Nature Communications 2020) in PyTorch.

A Wasserstein GAN with gradient penalty on library-size-normalised counts:

* :class:`Generator`: noise → 256 → 512 → 1024 (Linear without bias → (conditional)
  batch norm → ReLU) → genes (Linear → ReLU) → :class:`LibrarySizeNormalisation`, which
  rescales every generated cell to the training library size (20,000 by default).
* :class:`Critic`: genes → 1024 → 512 → 256 (Linear → ReLU) → scalar. The conditional
  critic adds a projection term ``<embed(label), features>`` (Miyato & Koyama 2018) to the
  unconditional linear output — the original's configuration names this critic but never
  calls it; here it is the one used.
* :class:`CscganPlan`: one ``training_step`` of :func:`omicsgen.models.training.fit` is ONE
  generator step: the minibatch it receives holds ``n_critic`` real minibatches, each used
  for one critic update, followed by one generator update. So ``fit``'s epoch is a pass over
  the real cells, i.e. ``ceil(n_cells / (batch_size * n_critic))`` generator steps.

Labels for generated cells are drawn from the real cell-type proportions, each proportion
kept with its own label (the original sorted the proportions and lost the pairing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from omicsgen.models.checkpoint import make_checkpoint, restore_modules
from omicsgen.models.data import dense_matrix
from omicsgen.models.training import (
    TrainingConfig,
    TrainingPlan,
    TrainingResult,
    fit,
    resolve_device,
    seed_everything,
)

MODEL_NAME = "cscgan"


@dataclass
class CscganConfig:
    """Architecture and optimisation of scGAN/cscGAN (defaults are the paper's)."""

    n_genes: int
    cell_types: list[str] = field(default_factory=list)  # empty → unconditional scGAN
    latent_dim: int = 128
    generator_layers: tuple[int, ...] = (256, 512, 1024)
    critic_layers: tuple[int, ...] = (1024, 512, 256)
    library_size: float = 20000.0
    gradient_penalty: float = 10.0
    n_critic: int = 5
    learning_rate: float = 1e-4
    final_learning_rate: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.9)
    amsgrad: bool = True
    critic_input: str = "counts"  # "counts" (the paper) or "log1p": what the critic sees

    def __post_init__(self) -> None:
        if self.critic_input not in ("counts", "log1p"):
            raise ValueError(f"critic_input must be 'counts' or 'log1p', not {self.critic_input!r}")

    @property
    def conditional(self) -> bool:
        return len(self.cell_types) > 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["generator_layers"] = list(self.generator_layers)
        out["critic_layers"] = list(self.critic_layers)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CscganConfig:
        values = dict(values)
        for key in ("generator_layers", "critic_layers", "betas"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


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
    def __init__(self, config: CscganConfig) -> None:
        super().__init__()
        n_classes = len(config.cell_types)
        self.latent_dim = config.latent_dim
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = config.latent_dim
        for size in config.generator_layers:
            linear = nn.Linear(width, size, bias=False)
            nn.init.xavier_uniform_(linear.weight)
            self.linears.append(linear)
            self.norms.append(ConditionalBatchNorm(size, n_classes))
            width = size
        self.output = nn.Linear(width, config.n_genes)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.lsn = LibrarySizeNormalisation(config.library_size)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        for linear, norm in zip(self.linears, self.norms, strict=True):
            h = torch.relu(norm(linear(h), labels))
        return self.lsn(torch.relu(self.output(h)))


class Critic(nn.Module):
    def __init__(self, config: CscganConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = config.n_genes
        for size in config.critic_layers:
            linear = nn.Linear(width, size)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU()]
            width = size
        self.features = nn.Sequential(*layers)
        self.output = nn.Linear(width, 1)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        n_classes = len(config.cell_types)
        self.projection = nn.Embedding(n_classes, width) if n_classes else None
        if self.projection is not None:
            nn.init.xavier_uniform_(self.projection.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        score = self.output(h).squeeze(1)
        if self.projection is not None and labels is not None:
            score = score + (self.projection(labels) * h).sum(dim=1)
        return score


def build_modules(config: Mapping[str, Any] | CscganConfig) -> dict[str, nn.Module]:
    config = config if isinstance(config, CscganConfig) else CscganConfig.from_dict(config)
    return {"generator": Generator(config), "critic": Critic(config)}


class CscganPlan(TrainingPlan):
    """WGAN-GP: per ``training_step`` ``n_critic`` critic updates, then one generator update."""

    def __init__(
        self,
        generator: Generator,
        critic: Critic,
        config: CscganConfig,
        label_probabilities: torch.Tensor | None,
        total_generator_steps: int,
        batch_size: int,
    ) -> None:
        self.generator = generator
        self.critic = critic
        self.config = config
        self.label_probabilities = label_probabilities
        self.total_generator_steps = max(total_generator_steps, 1)
        self.batch_size = batch_size
        options = {"lr": config.learning_rate, "betas": tuple(config.betas), "amsgrad": config.amsgrad}
        self.critic_optimiser = torch.optim.Adam(critic.parameters(), **options)
        self.generator_optimiser = torch.optim.Adam(generator.parameters(), **options)
        self.generator_steps = 0

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def learning_rate(self) -> float:
        """Exponential decay from ``learning_rate`` to ``final_learning_rate`` over training."""
        c = self.config
        progress = min(self.generator_steps / self.total_generator_steps, 1.0)
        return c.learning_rate * (c.final_learning_rate / c.learning_rate) ** progress

    def _noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=device)

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
        """What the critic sees; with ``log1p`` the Wasserstein distance (and its gradient
        penalty) is measured between log-expression profiles, which trains much faster."""
        return torch.log1p(cells) if self.config.critic_input == "log1p" else cells

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


@dataclass
class CscganModel:
    """A trained (cs)cGAN: the networks plus what is needed to generate named cells."""

    config: CscganConfig
    generator: Generator
    critic: Critic
    gene_names: list[str]
    label_probabilities: list[float]  # aligned with config.cell_types

    def checkpoint(self) -> dict[str, Any]:
        return make_checkpoint(
            MODEL_NAME,
            {"generator": self.generator, "critic": self.critic},
            self.config.to_dict(),
            gene_names=list(self.gene_names),
            label_probabilities=list(self.label_probabilities),
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> CscganModel:
        modules = restore_modules(dict(checkpoint), MODEL_NAME, build_modules)
        return cls(
            config=CscganConfig.from_dict(checkpoint["config"]),
            generator=modules["generator"],
            critic=modules["critic"],
            gene_names=list(checkpoint["gene_names"]),
            label_probabilities=list(checkpoint["label_probabilities"]),
        )


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


def generator_steps_per_epoch(n_cells: int, batch_size: int, n_critic: int) -> int:
    return math.ceil(n_cells / (batch_size * n_critic))


def train_cscgan(  # noqa: PLR0913
    adata: ad.AnnData,
    cell_type_key: str | None = "cell_type",
    generator_steps: int = 1000,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "auto",
    progress: bool | None = None,
    **architecture: Any,
) -> tuple[CscganModel, TrainingResult]:
    """Train on ``adata.X`` (library-size-normalised, not logged).

    ``cell_type_key=None`` trains the unconditional scGAN. ``generator_steps`` is rounded
    up to whole passes over the cells (see the module docstring). ``architecture`` sets
    any other :class:`CscganConfig` field.
    """
    torch_device = resolve_device(device)
    cell_types: list[str] = []
    labels = None
    if cell_type_key is not None:
        categories = pd.Categorical(adata.obs[cell_type_key].astype(str))
        cell_types = [str(c) for c in categories.categories]
        labels = torch.as_tensor(categories.codes.astype(np.int64), device=torch_device)
    config = CscganConfig(n_genes=adata.n_vars, cell_types=cell_types, **architecture)
    seed_everything(seed)
    modules = build_modules(config)
    generator, critic = (modules[k].to(torch_device) for k in ("generator", "critic"))
    if labels is not None:
        counts = np.bincount(labels.cpu().numpy(), minlength=len(cell_types)).astype(np.float64)
        probabilities = (counts / counts.sum()).tolist()
        label_probs = torch.tensor(probabilities, dtype=torch.float32, device=torch_device)
    else:
        probabilities, label_probs = [], None
    per_epoch = generator_steps_per_epoch(adata.n_obs, batch_size, config.n_critic)
    epochs = max(1, math.ceil(generator_steps / per_epoch))
    plan = CscganPlan(generator, critic, config, label_probs, epochs * per_epoch, batch_size)
    train = {"x": torch.from_numpy(dense_matrix(adata)).to(torch_device)}
    if labels is not None:
        train["y"] = labels
    training = TrainingConfig(
        max_epochs=epochs,
        batch_size=batch_size * config.n_critic,
        patience=None,
        monitor="critic_loss",
        restore_best=False,  # a GAN's critic loss does not rank generators
        seed=seed,
        device=str(torch_device),
        progress=progress,
    )
    with flushed_denormals():
        result = fit(plan, train, config=training, description="cscgan" if cell_types else "scgan")
    result.config["generator_steps"] = plan.generator_steps
    result.config["generator_steps_per_epoch"] = per_epoch
    model = CscganModel(config, generator, critic, list(map(str, adata.var_names)), probabilities)
    return model, result


def generate_cells(
    model: CscganModel,
    cells_per_type: Mapping[str, int] | int,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample cells (library-size-normalised, like the training data).

    A conditional model takes ``{cell_type: n}``; an unconditional one an ``int``. Returns
    the cells × genes matrix and the cell-type label of each cell (``None`` if unconditional).
    """
    torch_device = resolve_device(device)
    generator = model.generator.to(torch_device).eval()
    if model.config.conditional:
        if not isinstance(cells_per_type, Mapping):
            raise ValueError("a conditional cscGAN needs {cell_type: number of cells}")
        unknown = [t for t in cells_per_type if t not in model.config.cell_types]
        if unknown:
            raise ValueError(f"cell type(s) {unknown} not among the model's {model.config.cell_types}")
        names = np.concatenate([np.repeat(str(t), int(n)) for t, n in cells_per_type.items()])
        codes = np.array([model.config.cell_types.index(t) for t in names], dtype=np.int64)
    else:
        total = int(sum(cells_per_type.values())) if isinstance(cells_per_type, Mapping) else int(cells_per_type)
        names, codes = None, None
        n = total
    n = len(codes) if codes is not None else n
    generator_rng = torch.Generator(device="cpu").manual_seed(seed)
    outputs = []
    with torch.no_grad(), flushed_denormals():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            z = torch.randn(stop - start, model.config.latent_dim, generator=generator_rng).to(torch_device)
            labels = None if codes is None else torch.from_numpy(codes[start:stop]).to(torch_device)
            outputs.append(generator(z, labels).cpu())
    cells = torch.cat(outputs).numpy() if outputs else np.zeros((0, model.config.n_genes), np.float32)
    return cells, names


def generated_anndata(
    cells: np.ndarray, cell_types: Sequence[str] | None, gene_names: Sequence[str], prefix: str = "generated"
) -> ad.AnnData:
    """Generated cells as AnnData: ``obs["cell_type"]`` and ``obs["generated"] = True``."""
    obs = pd.DataFrame(index=[f"{prefix}_{i}" for i in range(len(cells))])
    obs["cell_type"] = pd.Categorical(
        np.asarray(cell_types, dtype=str) if cell_types is not None else np.repeat("unlabelled", len(cells))
    )
    obs["generated"] = True
    return ad.AnnData(X=sp.csr_matrix(cells.astype(np.float32)), obs=obs, var=pd.DataFrame(index=list(gene_names)))


def preprocess_counts(  # noqa: PLR0913
    adata: ad.AnnData,
    counts_layer: str | None = "counts",
    cell_type_key: str = "cell_type",
    min_cells_per_gene: int = 3,
    min_genes_per_cell: int = 10,
    library_size: float = 20000.0,
    n_top_genes: int | None = None,
    min_cells_per_type: int = 0,
) -> ad.AnnData:
    """scGAN's preprocessing of raw counts → a new AnnData whose X the GAN trains on.

    Counts are validated (non-negative integers), cells with fewer than
    ``min_genes_per_cell`` expressed genes and then genes seen in fewer than
    ``min_cells_per_gene`` cells are dropped (the original's order), optionally only the
    ``n_top_genes`` most variable genes (Seurat flavour on log1p of normalised counts) are
    kept, and every cell is scaled to ``library_size`` total counts (no log). The gene subset is chosen before scaling, so
    every real cell sums to ``library_size`` exactly like the LSN layer's output.
    Cell types with fewer than ``min_cells_per_type`` cells are removed with a warning.
    """
    import logging
    import warnings

    import scanpy as sc

    from omicsgen.preprocessing.validate import (
        InputValidationError,
        check_counts,
        check_obs_columns,
        source_of,
    )

    source = source_of(adata)
    if counts_layer is not None and counts_layer not in adata.layers:
        raise InputValidationError(
            f"{source}: counts layer '{counts_layer}' missing; layers are {list(adata.layers.keys()) or 'none'}"
        )
    check_obs_columns(adata, [cell_type_key])
    check_counts(adata, counts_layer)
    counts = adata.X if counts_layer is None else adata.layers[counts_layer]
    out = ad.AnnData(
        X=sp.csr_matrix(counts, dtype=np.float32),
        obs=pd.DataFrame({cell_type_key: adata.obs[cell_type_key].astype(str).to_numpy()}, index=adata.obs_names),
        var=pd.DataFrame(index=adata.var_names),
    )
    sc.pp.filter_cells(out, min_genes=min_genes_per_cell)
    if out.n_obs == 0:
        raise InputValidationError(f"{source}: no cell has {min_genes_per_cell} expressed genes")
    sc.pp.filter_genes(out, min_cells=min_cells_per_gene)
    if n_top_genes is not None and n_top_genes < out.n_vars:
        scaled = sc.pp.normalize_total(out, target_sum=library_size, copy=True)
        sc.pp.log1p(scaled)
        sc.pp.highly_variable_genes(scaled, n_top_genes=n_top_genes, flavor="seurat")
        out = out[:, scaled.var["highly_variable"].to_numpy()].copy()
        # a cell without counts in the subset cannot be scaled to the library size
        out = out[np.asarray(out.X.sum(axis=1)).ravel() > 0].copy()
    sizes = out.obs[cell_type_key].value_counts()
    too_small = sorted(str(t) for t, n in sizes.items() if n < min_cells_per_type)
    logger = logging.getLogger(__name__)
    for cell_type in too_small:
        message = (
            f"{source}: cell type '{cell_type}' has {sizes[cell_type]} cells, fewer than "
            f"min_cells_per_type={min_cells_per_type}: excluded from training and generation"
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    out = out[~out.obs[cell_type_key].isin(too_small).to_numpy()].copy()
    if out.obs[cell_type_key].nunique() == 0:
        raise InputValidationError(f"{source}: every cell type has fewer than {min_cells_per_type} cells")
    sc.pp.normalize_total(out, target_sum=library_size)
    out.X = sp.csr_matrix(out.X, dtype=np.float32)
    out.obs[cell_type_key] = pd.Categorical(out.obs[cell_type_key])
    out.uns["cscgan_preprocessing"] = {
        "library_size": float(library_size),
        "excluded_cell_types": too_small,
        "n_top_genes": -1 if n_top_genes is None else int(n_top_genes),
    }
    return out


def assign_cell_types(
    real: np.ndarray, real_labels: Sequence[str], cells: np.ndarray, k: int = 15, n_components: int = 50, seed: int = 0
) -> np.ndarray:
    """Label cells (e.g. from the unconditional scGAN) by their nearest real cells (log1p, PCA)."""
    from sklearn.neighbors import KNeighborsClassifier

    from omicsgen.metrics.generation import ReferenceSpace

    space = ReferenceSpace.fit(real, n_components, seed)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(real))).fit(space.transform(real), np.asarray(real_labels))
    return knn.predict(space.transform(cells))
