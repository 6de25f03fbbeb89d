"""``VAE``: a plain VAE embedding any samples × features AnnData (cells × genes, reads × k-mers).

The network follows the bioinformatics tutorial's VAE, as also used by LRBinner and VAMB
for metagenomic binning: fully connected encoder and decoder; a Gaussian posterior
``q(z|x) = N(μ, σ²)``; the decoder outputs a reconstruction through a sigmoid (inputs
scaled to [0, 1], such as k-mer compositions) or linearly (anything else, such as
log-normalised expression).

The tutorial and LRBinner pass the log-variance through a softplus, which makes it
non-negative, i.e. forces every posterior variance to be at least 1; VAMB removed that
as a numerical-stability hack it no longer needed. The default here is an unconstrained
log-variance; ``logvar_activation="softplus"`` reproduces the tutorial.

::

    VAE.setup_anndata(adata, cell_type_key="cell_type", layer=None, split_key="split")
    model = VAE(adata, model={"latent_dim": 16}, plan={"beta": 1.0}, training={"max_epochs": 200})
    model.train()
    embedded = model.embed()                       # a copy with obsm["X_vae"] (latent means)
    model.save("models/vae")
    model = VAE.load("models/vae")
    new = model.embed(new_cells)                   # features matched by name
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import anndata as ad
import numpy as np
import torch

from omicsgen.models.base import BaseModel, ConfigSection, label_codes
from omicsgen.models.data import (
    CellRows,
    expression_matrix,
    nonfinite,
    on_device,
    take_rows,
    value_range,
)
from omicsgen.models.nn import ACTIVATIONS
from omicsgen.models.training import TrainingResult, apply_in_batches
from omicsgen.models.vae.module import Decoder, Encoder
from omicsgen.models.vae.plan import VAEPlanConfig, VAETrainingPlan
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_obs_columns,
    preview,
    source_of,
)

LOGVAR_ACTIVATIONS = ("none", "softplus")
OUTPUT_ACTIVATIONS = ("auto", "sigmoid", "linear")
LIKELIHOODS = ("gaussian", "negative_binomial")


@dataclass(frozen=True)
class VAEModelConfig(ConfigSection):
    """The ``model`` section (the architecture; the feature count comes from the data).

    Attributes:
        hidden_dims: Widths of the encoder's hidden layers; the decoder mirrors them.
        latent_dim: Width of z (the tutorial uses 8, VAMB 32).
        dropout: Dropout after every hidden activation.
        activation: One of :data:`omicsgen.models.nn.ACTIVATIONS` (``leaky_relu``, ``relu``, …).
        batch_norm: Batch norm in every hidden layer.
        logvar_activation: ``"none"`` (unconstrained log σ²) or ``"softplus"`` (tutorial).
        output_activation: ``"sigmoid"``, ``"linear"`` or ``"auto"`` (sigmoid when every
            training value lies in [0, 1]); ``auto`` is resolved by training and the
            resolved value is what a saved model stores.
        likelihood: ``"gaussian"`` (squared error on the matrix the encoder reads) or
            ``"negative_binomial"``: the decoder gives each feature's share of a sample's
            raw counts (registered as ``counts_layer``), scaled by its library size, with
            a dispersion per feature (scVI's count model). The encoder still reads X.
    """

    hidden_dims: list[int] = field(default_factory=lambda: [128, 128])
    latent_dim: int = 8
    dropout: float = 0.1
    activation: str = "leaky_relu"
    batch_norm: bool = True
    logvar_activation: str = "none"
    output_activation: str = "auto"
    likelihood: str = "gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_dims", [int(h) for h in self.hidden_dims])
        checks = {
            "activation": (self.activation, tuple(ACTIVATIONS)),
            "logvar_activation": (self.logvar_activation, LOGVAR_ACTIVATIONS),
            "output_activation": (self.output_activation, OUTPUT_ACTIVATIONS),
            "likelihood": (self.likelihood, LIKELIHOODS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"vae {name} must be one of {allowed}, got {value!r}")
        if self.latent_dim < 1 or not self.hidden_dims:
            raise ValueError(
                f"vae needs latent_dim ≥ 1 and at least one hidden layer; got "
                f"latent_dim={self.latent_dim}, hidden_dims={self.hidden_dims}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"vae dropout must be in [0, 1), got {self.dropout}")


def resolve_output_activation(requested: str, matrix: np.ndarray) -> str:
    """``auto`` → ``sigmoid`` when every value lies in [0, 1], else ``linear``."""
    if requested not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"vae output_activation must be one of {OUTPUT_ACTIVATIONS}, got {requested!r}")
    low, high = value_range(matrix)
    in_unit_interval = len(matrix) > 0 and low >= 0.0 and high <= 1.0
    if requested == "auto":
        return "sigmoid" if in_unit_interval else "linear"
    if requested == "sigmoid" and not in_unit_interval:
        raise ValueError(
            f"vae output_activation 'sigmoid' needs inputs scaled to [0, 1]; "
            f"values span [{low:g}, {high:g}]"
        )
    return requested


def check_features(
    adata: ad.AnnData, layer: str | None = None, min_samples: int = 2, loading: str = "memory"
) -> np.ndarray | CellRows:
    """The matrix to embed (X or ``layer``: dense float32, or :class:`CellRows` when
    ``loading`` streams it), checked: at least ``min_samples`` samples and one feature,
    unique feature names, finite values (scanned blockwise when streamed)."""
    source = source_of(adata)
    if adata.n_obs < min_samples or adata.n_vars < 1:
        raise InputValidationError(f"{source}: need at least {min_samples} samples and 1 feature, got {adata.shape}")
    duplicated = adata.var_names[adata.var_names.duplicated()]
    if len(duplicated):
        raise InputValidationError(f"{source}: duplicated feature names {preview(duplicated.unique())}")
    matrix = expression_matrix(adata, layer, loading)
    count, rows, cols = nonfinite(matrix)
    if count:
        raise InputValidationError(
            f"{source}: {count} NaN/inf values in samples {preview(adata.obs_names[rows])}, "
            f"features {preview(adata.var_names[cols])}"
        )
    return matrix


def check_counts_layer(adata: ad.AnnData, layer: str | None, loading: str = "memory") -> np.ndarray | CellRows:
    """The raw counts a ``negative_binomial`` likelihood models, checked: registered, finite,
    non-negative (scanned blockwise when streamed)."""
    source = source_of(adata)
    if layer is None:
        raise InputValidationError(
            f"{source}: likelihood 'negative_binomial' models raw counts; register their layer with "
            "VAE.setup_anndata(counts_layer=...) (pipeline: vae.cells.input.counts_layer, e.g. counts)"
        )
    if layer not in adata.layers:
        raise InputValidationError(
            f"{source}: counts layer '{layer}' missing (vae.cells.input.counts_layer); "
            f"layers are {list(adata.layers.keys()) or 'none'}"
        )
    counts = check_features(adata, layer, loading=loading)
    low, _ = value_range(counts)
    if low < 0:
        raise InputValidationError(
            f"{source}: layers['{layer}'] must hold counts for likelihood 'negative_binomial' but has "
            f"negative values (min {low:g}); set vae.cells.input.counts_layer to the raw counts"
        )
    return counts


class VAE(BaseModel):
    """Embeds the samples of an AnnData into the posterior means of a VAE.

    Sections: ``model`` (:class:`VAEModelConfig`), ``plan``
    (:class:`~omicsgen.models.vae.plan.VAEPlanConfig`), ``training``
    (:class:`~omicsgen.models.training.TrainingConfig`).
    """

    name: ClassVar[str] = "vae"
    ModelConfig: ClassVar[type[ConfigSection]] = VAEModelConfig
    PlanConfig: ClassVar[type[ConfigSection]] = VAEPlanConfig
    latent_key: ClassVar[str] = "X_vae"

    @classmethod
    def setup_anndata(
        cls,
        adata: ad.AnnData,
        cell_type_key: str | None = None,
        layer: str | None = None,
        split_key: str | None = "split",
        counts_layer: str | None = None,
        batch_key: str | None = None,
    ) -> None:
        """Register the matrix to embed (X, or ``layer``) and the ``train``/``validation``
        column (``split_key``; absent: every sample trains). ``cell_type_key`` (optional)
        names the known labels; the model does not use them, clustering scores do.
        ``counts_layer``: the raw counts a ``negative_binomial`` likelihood models.
        ``batch_key`` (optional): the decoder reads each sample's batch, so the latent
        space need not hold the batches' differences (scVI's ``batch_key``)."""
        super().setup_anndata(
            adata, cell_type_key=cell_type_key, layer=layer, split_key=split_key, counts_layer=counts_layer,
            batch_key=batch_key,
        )

    # --- training ----------------------------------------------------------------------

    def _build_modules(self) -> dict[str, torch.nn.Module]:
        config = self.model_config
        if config.output_activation == "auto":
            raise RuntimeError("vae output_activation 'auto' is resolved from the data by train()")
        stack = {"activation": config.activation, "batch_norm": config.batch_norm, "dropout": config.dropout}
        n_features = len(self.var_names)
        return {
            "encoder": Encoder(
                n_features, config.hidden_dims, config.latent_dim,
                softplus_logvar=config.logvar_activation == "softplus", **stack,
            ),
            "decoder": Decoder(
                config.latent_dim, config.hidden_dims, n_features,
                sigmoid_output=config.output_activation == "sigmoid",
                count_output=config.likelihood == "negative_binomial",
                n_batches=len(self.state.get("batch_categories", [])), **stack,
            ),
        }  # fmt: skip

    def _train(self) -> TrainingResult:
        matrix = check_features(self.adata, self.setup.layer, loading=self.training_config.data_loading)
        self.model_config = dataclasses.replace(
            self.model_config,
            output_activation=resolve_output_activation(self.model_config.output_activation, matrix),
        )
        train_rows, validation_rows = self._split(self.adata)
        if train_rows.sum() < 2:
            raise InputValidationError(
                f"{source_of(self.adata)}: obs column '{self.setup.split_key}' marks {int(train_rows.sum())} "
                "samples as 'train'; at least 2 are needed"
            )
        device = self.device
        sources = {"x": on_device(matrix, device)}
        if self.setup.batch_key:
            check_obs_columns(self.adata, [self.setup.batch_key])
            categories, codes = label_codes(self.adata.obs[self.setup.batch_key])
            self.state = {"batch_categories": categories}
            sources["batch"] = torch.from_numpy(codes).to(device)
        # Seed before building the networks: same seed → same initial weights → same latent.
        torch.manual_seed(self.training_config.seed)
        self.modules = {name: module.to(device) for name, module in self._build_modules().items()}
        plan = VAETrainingPlan(self.modules["encoder"], self.modules["decoder"], self.plan_config)
        if self.model_config.likelihood == "negative_binomial":
            counts = check_counts_layer(self.adata, self.setup.counts_layer, self.training_config.data_loading)
            sources["counts"] = on_device(counts, device)

        def rows(mask: np.ndarray) -> dict[str, torch.Tensor | CellRows]:
            return {key: take_rows(source, mask) for key, source in sources.items()}

        validation = rows(validation_rows) if validation_rows.any() else None
        return self._fit(plan, rows(train_rows), validation, self.training_config, "vae")

    # --- the verb ----------------------------------------------------------------------

    def get_latent_representation(
        self, adata: ad.AnnData | None = None, fill_missing: bool = False, batch_size: int = 1024
    ) -> np.ndarray:
        """Posterior means μ(x), samples × ``latent_dim``, of ``adata`` (default: the training
        AnnData); its features are matched to the model's by name (missing ones are an
        error listing them; ``fill_missing=True`` fills zeros, with a warning)."""
        self._require_trained()
        matrix = check_features(
            self._aligned(adata, fill_missing), self.setup.layer, min_samples=1, loading=self.training_config.data_loading
        )
        encoder = self.modules["encoder"].eval()
        means = apply_in_batches(lambda x: encoder(x)[0], on_device(matrix, self.device), batch_size)
        return means.cpu().numpy()

    def embed(
        self,
        adata: ad.AnnData | None = None,
        key_added: str = "X_vae",
        fill_missing: bool = False,
        batch_size: int = 1024,
    ) -> ad.AnnData:
        """A copy of ``adata`` (default: the training AnnData), all its features kept, with
        the latent means in ``obsm[key_added]`` (see :meth:`get_latent_representation`)."""
        source = self.adata if adata is None else adata
        out = source.copy()
        out.obsm[key_added] = self.get_latent_representation(source, fill_missing, batch_size)
        return out
