"""scGAN and cscGAN (Marouf et al., Nature Communications 2020) as an AnnData model.

A Wasserstein GAN with gradient penalty on library-size-normalised counts; the networks
are in :mod:`.module`, the training step in :mod:`.plan`::

    from omicsgen.preprocessing.cscgan import preprocess_counts

    cells = preprocess_counts(raw, counts_layer="counts", cell_type_key="cell_type", n_top_genes=500)
    CscGAN.setup_anndata(cells, cell_type_key="cell_type")   # None: the unconditional scGAN
    model = CscGAN(cells, model={"critic_input": "log1p"}, plan={"learning_rate": 1e-3},
                   training={"generator_steps": 2500, "batch_size": 128, "seed": 0})
    model.train()
    model.save("models/cscgan")
    generated = CscGAN.load("models/cscgan").generate(300)     # 300 cells of every type

The model reads X (or ``layer``) of cells scaled to one library size (what
:func:`~omicsgen.preprocessing.cscgan.preprocess_counts` writes) and keeps, in ``state``,
that library size (the generator's output scale), the cell-type encoding and the
cell-type proportions, so that a loaded model generates exactly what the trained one did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from omicsgen.models.base import BaseModel, ConfigSection, label_codes
from omicsgen.models.cscgan.module import Critic, Generator
from omicsgen.models.cscgan.plan import (
    CRITIC_INPUTS,
    CscganPlan,
    PlanConfig,
    flushed_denormals,
    generator_steps_per_epoch,
)
from omicsgen.models.data import CellRows, dense_matrix, expression_matrix, on_device, row_sums
from omicsgen.models.training import TrainingConfig, TrainingResult, seed_everything
from omicsgen.preprocessing.cscgan import PREPROCESSING_KEY
from omicsgen.preprocessing.validate import InputValidationError, check_obs_columns, source_of

#: cells generated per forward pass
GENERATION_BATCH = 1024


@dataclass(frozen=True)
class ModelConfig(ConfigSection):
    """Architecture (defaults are the paper's).

    ``conditional``: cscGAN (conditional batch norm in the generator, a projection critic)
    when a cell-type key is registered; false (or no key) trains the unconditional scGAN.
    ``critic_input``: what the critic sees, ``counts`` (the paper) or ``log1p``.
    """

    conditional: bool = True
    latent_dim: int = 128
    generator_layers: tuple[int, ...] = (256, 512, 1024)
    critic_layers: tuple[int, ...] = (1024, 512, 256)
    critic_input: str = "counts"

    def __post_init__(self) -> None:
        object.__setattr__(self, "generator_layers", tuple(self.generator_layers))
        object.__setattr__(self, "critic_layers", tuple(self.critic_layers))
        if self.critic_input not in CRITIC_INPUTS:
            raise ValueError(f"critic_input must be one of {CRITIC_INPUTS}, not {self.critic_input!r}")


@dataclass
class CscganTrainingConfig(TrainingConfig):
    """The shared training fields, with a GAN's length and defaults.

    ``generator_steps``: generator updates, rounded up to whole passes over the cells
    (one pass = ``ceil(n_cells / (batch_size * n_critic))`` steps; ``fit``'s epochs).
    ``batch_size``: cells per critic update (``fit`` cuts ``n_critic`` of them per step).
    A GAN's losses rank no generator: no early stopping, no best-weights restore.
    """

    generator_steps: int = 1000
    max_epochs: int | None = None
    batch_size: int = 128
    patience: int | None = None
    monitor: str = "critic_loss"
    restore_best: bool = False

    def __post_init__(self) -> None:
        if self.max_epochs is not None:
            raise ValueError("cscgan.training: the length of training is generator_steps, not max_epochs")

    def for_fit(self, n_cells: int, n_critic: int, device: torch.device) -> tuple[TrainingConfig, int]:
        """``fit``'s config (whole passes covering ``generator_steps``) and the steps per pass."""
        per_epoch = generator_steps_per_epoch(n_cells, self.batch_size, n_critic)
        shared = {k: v for k, v in asdict(self).items() if k in TrainingConfig.__dataclass_fields__}
        shared.update(
            max_epochs=max(1, math.ceil(self.generator_steps / per_epoch)),
            batch_size=self.batch_size * n_critic,
            device=str(device),
        )
        return TrainingConfig(**shared), per_epoch


class CscGAN(BaseModel):
    """scGAN / cscGAN over AnnData: ``setup_anndata`` → ``train`` → ``generate``.

    Sections: ``model`` (:class:`ModelConfig`), ``plan`` (:class:`~.plan.PlanConfig`),
    ``training`` (:class:`CscganTrainingConfig`: ``generator_steps``, ``batch_size``,
    ``seed``, ``device``, …). Every cell trains (no validation split).
    """

    name = "cscgan"
    ModelConfig = ModelConfig
    PlanConfig = PlanConfig
    TrainingConfig = CscganTrainingConfig

    @classmethod
    def setup_anndata(cls, adata: ad.AnnData, cell_type_key: str | None = None, layer: str | None = None) -> None:
        """Register the cell-type column (None: the unconditional scGAN, whose cells are
        unlabelled) and the matrix of library-size-normalised cells (``layer``; None = X,
        where :func:`~omicsgen.preprocessing.cscgan.preprocess_counts` puts them)."""
        super().setup_anndata(adata, cell_type_key=cell_type_key, layer=layer)

    # --- what the model knows ------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        """cscGAN (labels condition the networks) rather than the unconditional scGAN."""
        return self.model_config.conditional and self.setup.cell_type_key is not None

    @property
    def cell_types(self) -> list[str]:
        """The conditional model's cell types, in the order of their codes."""
        return [str(t) for t in self.state["cell_types"]]

    @property
    def library_size(self) -> float:
        """Total counts of every generated (and training) cell."""
        return float(self.state["library_size"])

    def _build_modules(self) -> dict[str, torch.nn.Module]:
        config, n_classes = self.model_config, len(self.state["cell_types"])
        generator = Generator(len(self.var_names), config.latent_dim, config.generator_layers, self.library_size, n_classes)
        return {"generator": generator, "critic": Critic(len(self.var_names), config.critic_layers, n_classes)}

    # --- training ----------------------------------------------------------------------------

    def _train(self) -> TrainingResult:
        loading = self.training_config.data_loading
        cells = expression_matrix(self.adata, self.setup.layer, loading)
        if len(cells) == 0:
            raise InputValidationError(f"{source_of(self.adata)}: no cells to train on")
        codes = None
        self.state = {"library_size": _library_size(self.adata, cells), "cell_types": [], "label_probabilities": []}
        if self.conditional:
            self.state["cell_types"], codes = label_codes(self.adata.obs[self.setup.cell_type_key])
            counts = np.bincount(codes, minlength=len(self.state["cell_types"])).astype(np.float64)
            self.state["label_probabilities"] = (counts / counts.sum()).tolist()
        device, plan_config = self.device, self.plan_config
        fit_config, per_epoch = self.training_config.for_fit(len(cells), plan_config.n_critic, device)
        seed_everything(fit_config.seed)
        self.modules = {name: module.to(device) for name, module in self._build_modules().items()}
        probabilities = (
            torch.tensor(self.state["label_probabilities"], dtype=torch.float32, device=device) if codes is not None else None
        )
        plan = CscganPlan(
            self.modules["generator"], self.modules["critic"], plan_config, self.model_config.critic_input,
            probabilities, fit_config.max_epochs * per_epoch, self.training_config.batch_size,
        )  # fmt: skip
        train = {"x": on_device(cells, device)}
        if codes is not None:
            train["y"] = torch.as_tensor(codes, device=device)
        with flushed_denormals():
            result = self._fit(plan, train, None, fit_config, "cscgan" if codes is not None else "scgan")
        result.config["generator_steps"] = plan.generator_steps
        result.config["generator_steps_per_epoch"] = per_epoch
        return result

    # --- generation ----------------------------------------------------------------------------

    def generate(  # noqa: PLR0913
        self,
        n_per_type: Mapping[str, int] | int,
        cell_types: Sequence[str] | None = None,
        seed: int | None = None,
        reference: ad.AnnData | None = None,
        prefix: str = "generated",
        fill_missing: bool = False,
    ) -> ad.AnnData:
        """Generated cells (library-size-normalised, like the training cells) as a new
        AnnData with ``obs["cell_type"]`` and ``obs["generated"] = True`` (cells named
        ``<prefix>_<i>``).

        ``n_per_type``: ``{cell_type: n}``, or ``n`` cells of each of ``cell_types``
        (default: every type the model knows). The conditional cscGAN is asked for each
        type. The unconditional scGAN draws as many cells in all and labels each by its
        nearest real cells of ``reference`` (library-size-normalised cells, e.g.
        :meth:`reference_cells`; default the model's AnnData, i.e. its training cells),
        whose types are then the ones it knows; its genes are matched to the model's by
        name (missing ones are an error listing them, or zeros with ``fill_missing``).
        Registered without a cell-type key, the scGAN takes a number of cells and labels
        them ``unlabelled``. ``seed`` (default the training seed) draws the noise.
        """
        self._require_trained()
        seed = self.training_config.seed if seed is None else int(seed)
        if self.conditional:
            wanted = _requested(n_per_type, cell_types, self.cell_types)
            unknown = [t for t in wanted if t not in self.cell_types]
            if unknown:
                raise ValueError(f"cell type(s) {unknown} not among the model's {self.cell_types}")
            names = np.concatenate([np.repeat(t, n) for t, n in wanted.items()] or [np.array([], dtype=str)])
            codes = np.array([self.cell_types.index(t) for t in names], dtype=np.int64)
            return _generated_anndata(self._sample(len(codes), seed, codes), names, self.var_names, prefix)
        if self.setup.cell_type_key is None:
            if isinstance(n_per_type, Mapping) or cell_types is not None:
                raise ValueError("this scGAN was trained without cell types: ask for a number of cells")
            cells = self._sample(int(n_per_type), seed)
            return _generated_anndata(cells, np.repeat("unlabelled", len(cells)), self.var_names, prefix)
        real, labels = self._labelled_reference(reference, fill_missing)
        wanted = _requested(n_per_type, cell_types, sorted(set(labels)))
        cells = self._sample(int(sum(wanted.values())), seed)
        return _generated_anndata(cells, assign_cell_types(real, labels, cells, seed=seed), self.var_names, prefix)

    def _sample(self, n: int, seed: int, codes: np.ndarray | None = None) -> np.ndarray:
        """``n`` generated cells; noise from a CPU generator seeded with ``seed``."""
        generator = self.modules["generator"].eval()
        noise = torch.Generator(device="cpu").manual_seed(seed)
        outputs = []
        with torch.no_grad(), flushed_denormals():
            for start in range(0, n, GENERATION_BATCH):
                stop = min(start + GENERATION_BATCH, n)
                z = torch.randn(stop - start, generator.latent_dim, generator=noise).to(self.device)
                labels = None if codes is None else torch.from_numpy(codes[start:stop]).to(self.device)
                outputs.append(generator(z, labels).cpu())
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, len(self.var_names)), np.float32)

    def _labelled_reference(self, reference: ad.AnnData | None, fill_missing: bool) -> tuple[np.ndarray, np.ndarray]:
        adata = self.adata if reference is None else reference
        if adata.n_obs == 0:
            raise ValueError(
                "the unconditional scGAN labels generated cells by their nearest real cells: pass "
                "reference= (e.g. model.reference_cells(adata)) or load the model with adata="
            )
        adata = self._aligned(adata, fill_missing)
        check_obs_columns(adata, [self.setup.cell_type_key])
        real = dense_matrix(adata, self.setup.layer)
        _check_scaled(real, self.library_size, adata, "reference cells")
        return real, adata.obs[self.setup.cell_type_key].astype(str).to_numpy()

    def reference_cells(self, adata: ad.AnnData, counts_layer: str | None = "counts", **preprocessing: Any) -> ad.AnnData:
        """Real cells in the model's space, to label the unconditional scGAN's cells by:
        ``adata``'s raw counts (``counts_layer``) preprocessed like the training cells
        (``preprocessing``: ``min_genes_per_cell``, ``min_cells_per_type``), on the model's
        genes (matched by name; missing genes are an error listing them) and scaled to
        its library size."""
        from omicsgen.preprocessing.cscgan import preprocess_counts

        if self.setup.cell_type_key is None:
            raise ValueError("this scGAN was trained without cell types: there is nothing to label its cells with")
        model_space = {"genes": self.var_names, "library_size": self.library_size}
        return preprocess_counts(
            adata, counts_layer=counts_layer, cell_type_key=self.setup.cell_type_key, **{**preprocessing, **model_space}
        )


def _requested(
    n_per_type: Mapping[str, int] | int, cell_types: Sequence[str] | None, known: Sequence[str]
) -> dict[str, int]:
    """``{cell_type: n}`` from a mapping, or from ``n`` and the types (default ``known``)."""
    if isinstance(n_per_type, Mapping):
        if cell_types is not None:
            raise ValueError("give either {cell_type: n} or n with cell_types, not both")
        return {str(t): int(n) for t, n in n_per_type.items()}
    return {str(t): int(n_per_type) for t in (cell_types or known)}


def _check_scaled(cells: np.ndarray | CellRows, library_size: float, adata: ad.AnnData, what: str) -> None:
    totals = row_sums(cells)
    if len(totals) and not np.allclose(totals, library_size, rtol=1e-3):
        raise InputValidationError(
            f"{source_of(adata)}: {what} must each total the library size {library_size:g}, found totals "
            f"{totals.min():g}–{totals.max():g}; scale raw counts with omicsgen.preprocessing.cscgan.preprocess_counts"
        )


def _library_size(adata: ad.AnnData, cells: np.ndarray | CellRows) -> float:
    """The library size ``preprocess_counts`` recorded, else the cells' median total; every
    cell must total it (the generator's output is scaled to it)."""
    recorded = dict(adata.uns.get(PREPROCESSING_KEY) or {}).get("library_size")
    size = float(recorded) if recorded is not None else float(np.median(row_sums(cells)))
    _check_scaled(cells, size, adata, "training cells")
    return size


def _generated_anndata(cells: np.ndarray, cell_types: Sequence[str], gene_names: Sequence[str], prefix: str) -> ad.AnnData:
    obs = pd.DataFrame(index=[f"{prefix}_{i}" for i in range(len(cells))])
    obs["cell_type"] = pd.Categorical(np.asarray(cell_types, dtype=str))
    obs["generated"] = True
    return ad.AnnData(X=sp.csr_matrix(cells.astype(np.float32)), obs=obs, var=pd.DataFrame(index=list(gene_names)))


def assign_cell_types(
    real: np.ndarray, real_labels: Sequence[str], cells: np.ndarray, k: int = 15, n_components: int = 50, seed: int = 0
) -> np.ndarray:
    """Label cells (e.g. from the unconditional scGAN) by their nearest real cells (log1p, PCA)."""
    from sklearn.neighbors import KNeighborsClassifier

    from omicsgen.metrics.generation import ReferenceSpace

    space = ReferenceSpace.fit(real, n_components, seed)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(real))).fit(space.transform(real), np.asarray(real_labels))
    return knn.predict(space.transform(cells))
