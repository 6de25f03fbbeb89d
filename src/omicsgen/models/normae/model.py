"""NormAE over AnnData: samples × features (standardised per feature), with obs columns for
the batch, the injection order and a boolean QC flag::

    NormAE.setup_anndata(adata, batch_key="batch", order_key="injection_order", qc_key="is_qc")
    model = NormAE(adata, model={"latent_dim": 100}, training={"adversarial_epochs": 200})
    model.train()
    corrected = model.correct()            # layers normae_corrected / normae_reconstructed, obsm X_normae
    model.save("models/normae")
    model = NormAE.load("models/normae")
    new = model.correct(new_samples)       # new samples of the batches the model was trained on

Training has three phases, each a call of the shared :func:`omicsgen.models.training.fit`:
autoencoder pre-training, adversary pre-training, then alternating adversarial training in
which the epoch minimising ``mean QC distance in a PCA of the corrected data +
qc_reconstruction_weight × QC L1 reconstruction loss`` is kept.

The outputs are on the model's (standardised) scale; the original NormAE inverse-standardised
them twice, here :func:`omicsgen.preprocessing.restore_original_scale` is applied once, by the
caller.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import anndata as ad
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from omicsgen.models.base import SETUP_KEY, AnnDataSetup, BaseModel, ConfigSection, label_codes
from omicsgen.models.data import dense_matrix
from omicsgen.models.normae.module import NormAEModule
from omicsgen.models.normae.plan import PHASES, NormAEPlan, NormAEPlanConfig
from omicsgen.models.training import TrainingConfig, TrainingResult, apply_in_batches
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_obs_columns,
    preview,
    source_of,
)

#: layer of :meth:`NormAE.correct`'s output holding the reconstruction with the batch and
#: injection-order effects (the original ``Rec``)
RECONSTRUCTED_KEY = "normae_reconstructed"


@dataclass(frozen=True)
class NormAEModelConfig(ConfigSection):
    """Sizes of the networks (``model:``). Defaults: the paper's autoencoder (1000-1000 → 500);
    the decoder mirrors the encoder."""

    encoder_hidden: tuple[int, ...] = (1000, 1000)
    latent_dim: int = 500
    mapper_hidden: tuple[int, ...] = (500,)
    classifier_hidden: tuple[int, ...] = (250,)
    ranker_hidden: tuple[int, ...] = (250,)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("encoder_hidden", "mapper_hidden", "classifier_hidden", "ranker_hidden"):
            object.__setattr__(self, name, tuple(int(units) for units in getattr(self, name)))


@dataclass
class NormAETrainingConfig(TrainingConfig):
    """``training:``, the shared fields with NormAE's three phases in place of ``max_epochs``.

    Attributes:
        autoencoder_epochs, adversary_epochs, adversarial_epochs: epochs of the three
            phases (0 skips a phase); defaults: the paper's code.
        patience, min_delta, monitor, restore_best: apply to the adversarial phase, whose
            epoch minimising ``validation_<monitor>`` is kept (``selection_score``;
            ``qc_pca_distance`` or ``qc_reconstruction`` select on one part of it).
        seed: phase ``i`` shuffles its minibatches with ``seed + i``.
    """

    max_epochs: int | None = None
    batch_size: int = 64
    patience: int | None = None
    monitor: str = "selection_score"
    autoencoder_epochs: int = 1000
    adversary_epochs: int = 10
    adversarial_epochs: int = 700

    def __post_init__(self) -> None:
        if self.max_epochs is not None:
            raise ValueError(
                "normae.training: NormAE trains in three phases; set autoencoder_epochs, adversary_epochs "
                f"and adversarial_epochs instead of max_epochs (got max_epochs={self.max_epochs})"
            )


class NormAE(BaseModel):
    """NormAE (Rong et al., Analytical Chemistry 2020): adversarial removal of batch effects
    and injection-order drift from untargeted metabolomics data.

    An autoencoder learns a latent code of each sample; two adversaries read that code, a
    batch classifier (cross-entropy) and an injection-order ranker (pairwise logistic
    ranking loss within each batch). The encoder is trained to fool both, so the code keeps
    biology but not batch or drift. The corrected data is ``decoder(latent)``.

    ``state`` keeps the batch categories and the injection-order range of the training
    data, so a loaded model encodes new samples of known batches identically; a batch it
    never saw is an error naming it.
    """

    name = "normae"
    required_keys = ("batch_key", "order_key", "qc_key")
    ModelConfig = NormAEModelConfig
    PlanConfig = NormAEPlanConfig
    TrainingConfig = NormAETrainingConfig
    latent_key = "X_normae"

    @classmethod
    def setup_anndata(  # type: ignore[override]
        cls, adata: ad.AnnData, *, batch_key: str, order_key: str, qc_key: str = "is_qc", layer: str | None = None
    ) -> None:
        """Register the batch, injection-order and boolean QC columns (and the matrix:
        ``layer``, None = X). Every sample trains; the QCs select the kept epoch."""
        super().setup_anndata(
            adata, batch_key=batch_key, order_key=order_key, qc_key=qc_key, layer=layer, split_key=None
        )

    # --- training ------------------------------------------------------------------------

    @property
    def module(self) -> NormAEModule:
        return self.modules["module"]

    @property
    def selected(self) -> dict:
        """The kept epoch: ``selected_epoch`` (counting every phase), ``adversarial_epoch``
        and its selection score and parts."""
        return dict(self.state.get("selected", {}))

    def _build_modules(self) -> dict[str, nn.Module]:
        n_batches = len(self.state["batch_categories"])
        return {"module": NormAEModule(len(self.var_names), n_batches, **asdict(self.model_config))}

    def _train(self) -> TrainingResult:
        adata, setup, config = self.adata, self.setup, self.training_config
        batches = sorted(adata.obs[setup.batch_key].astype(str).unique())
        if len(batches) < 2:
            raise InputValidationError(
                f"{source_of(adata)}: NormAE needs at least two batches, obs column '{setup.batch_key}' has {preview(batches)}"
            )
        is_qc = adata.obs[setup.qc_key].to_numpy(dtype=bool)
        if not is_qc.any():
            raise InputValidationError(
                f"{source_of(adata)}: no QC samples (obs column '{setup.qc_key}'): NormAE selects its epoch on QCs"
            )
        order = adata.obs[setup.order_key].to_numpy(dtype=np.float64)
        self.state = {"batch_categories": batches, "order_range": [float(order.min()), float(order.max())]}
        device = self.device
        torch.manual_seed(config.seed)  # weight initialisation depends on the seed only
        self.modules = {name: module.to(device) for name, module in self._build_modules().items()}
        data = {**self._tensors(adata, setup), "is_qc": torch.from_numpy(is_qc).to(device)}
        qc_data = {key: values[data["is_qc"]] for key, values in data.items()}
        plan = NormAEPlan(self.module, self.plan_config, data)

        # (epochs, monitored metric, validation data) of each phase
        phases = dict(zip(PHASES, (
            (config.autoencoder_epochs, "reconstruction", None),
            (config.adversary_epochs, "batch_ce", None),
            (config.adversarial_epochs, config.monitor, qc_data),
        ), strict=True))  # fmt: skip
        results: dict[str, TrainingResult] = {}
        start = time.perf_counter()
        for offset, (phase, (epochs, monitor, validation)) in enumerate(phases.items()):
            if epochs <= 0:
                continue
            plan.phase = phase
            selecting = phase == PHASES[-1]
            # the shared fields for one phase (self.TrainingConfig is the whole section)
            phase_config = TrainingConfig(
                max_epochs=int(epochs),
                batch_size=config.batch_size,
                patience=config.patience if selecting else None,
                min_delta=config.min_delta,
                monitor=monitor,
                restore_best=config.restore_best and selecting,
                seed=config.seed + offset,  # a different minibatch order in each phase, still seeded
                device=str(device),
                progress=config.progress,
                checkpoint_every=config.checkpoint_every,
                resume=config.resume,
            )
            results[phase] = self._fit(plan, data, validation, phase_config, f"normae_{phase}")
        self.state["selected"] = self._selection(results)
        return self._combined_result(results, time.perf_counter() - start)

    def _selection(self, results: dict[str, TrainingResult]) -> dict:
        """Which epoch's weights were kept (``selected_epoch`` counts every phase)."""
        before = sum(result.epochs_run for phase, result in results.items() if phase != PHASES[-1])
        adversarial = results.get(PHASES[-1])
        if adversarial is None:
            return {"selected_epoch": before, "phase": "last epoch (no adversarial training)"}
        kept = adversarial.best_epoch if self.training_config.restore_best else adversarial.epochs_run
        row = adversarial.history[kept - 1]
        return {
            "selected_epoch": before + kept,
            "adversarial_epoch": kept,
            "selection_score": row["validation_selection_score"],
            "qc_pca_distance": row["validation_qc_pca_distance"],
            "qc_reconstruction": row["validation_qc_reconstruction"],
            "qc_reconstruction_weight": self.plan_config.qc_reconstruction_weight,
            "corrected_batch_mean_spread": row["validation_corrected_batch_mean_spread"],
            "selection_batch_weight": self.plan_config.selection_batch_weight,
        }

    def _combined_result(self, results: dict[str, TrainingResult], seconds: float) -> TrainingResult:
        """The three phases as one record: every epoch with its ``phase``, its
        ``phase_epoch`` and a global ``epoch``; the best epoch is the kept one."""
        history, done = [], 0
        for phase, result in results.items():
            for row in result.history:
                rest = {key: value for key, value in row.items() if key != "epoch"}
                history.append({"epoch": done + row["epoch"], "phase": phase, "phase_epoch": row["epoch"], **rest})
            done += result.epochs_run
        adversarial, first = results.get(PHASES[-1]), next(iter(results.values()), None)
        return TrainingResult(
            config=asdict(self.training_config),
            device=str(self.device),
            threads=first.threads if first else torch.get_num_threads(),
            versions=first.versions if first else {},
            history=history,
            best_epoch=self.state["selected"]["selected_epoch"],
            best_value=adversarial.best_value if adversarial else None,
            epochs_run=len(history),
            stopped_early=bool(adversarial and adversarial.stopped_early),
            seconds=seconds,
            seconds_per_epoch=seconds / max(len(history), 1),
            peak_memory_mb=max((result.peak_memory_mb for result in results.values()), default=0.0),
        )

    # --- applying ------------------------------------------------------------------------

    def _setup_of(self, adata: ad.AnnData) -> AnnDataSetup:
        """The keys registered on ``adata`` (``setup_anndata``), else the model's own."""
        return self.registered_setup(adata) if SETUP_KEY in adata.uns else self.setup

    def _tensors(self, adata: ad.AnnData, setup: AnnDataSetup) -> dict[str, torch.Tensor]:
        """X, batch index and one-hot, injection order scaled by the training range."""
        check_obs_columns(adata, [setup.batch_key, setup.order_key])
        categories: Sequence[str] = list(self.state["batch_categories"])
        batches = adata.obs[setup.batch_key].astype(str).to_numpy()
        unknown = sorted(set(batches) - set(categories))
        if unknown:
            raise InputValidationError(
                f"{source_of(adata)}: batches {unknown} (obs column '{setup.batch_key}') were not seen in "
                f"training; the model knows {categories}"
            )
        low, high = self.state["order_range"]
        order = (adata.obs[setup.order_key].to_numpy(dtype=np.float64) - low) / (high - low if high > low else 1.0)
        device = self.device
        batch_index = torch.from_numpy(label_codes(batches, categories)[1]).to(device)
        return {
            "x": torch.from_numpy(dense_matrix(adata, setup.layer)).to(device),
            "batch_index": batch_index,
            "batch_onehot": F.one_hot(batch_index, len(categories)).float(),
            "order": torch.from_numpy(order.astype(np.float32)).to(device),
        }

    def _outputs(self, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(corrected, reconstructed, latent) of ``adata`` (the model's genes), float64."""
        self._require_trained()
        data = self._tensors(adata, self._setup_of(adata))
        module = self.module.eval()
        outputs = apply_in_batches(
            lambda batch: module(batch["x"], batch["batch_onehot"], batch["order"]),
            {key: data[key] for key in ("x", "batch_onehot", "order")},
        )
        return tuple(values.cpu().numpy().astype(np.float64) for values in outputs)

    def correct(
        self, adata: ad.AnnData | None = None, key_added: str = "normae_corrected", fill_missing: bool = False
    ) -> ad.AnnData:
        """A copy of ``adata`` (default: the training data) with the model's features, and

        - ``layers[key_added]``: decoder(latent), the data without batch and injection-order
          effects (the original ``Rec_nobe``);
        - ``layers["normae_reconstructed"]``: the reconstruction with them (``Rec``);
        - ``obsm["X_normae"]``: the latent code (``Codes``).

        Values are on the model's (standardised) scale. ``adata``'s keys are those it was
        set up with (:meth:`setup_anndata`), else the model's; its batches must be among
        the training batches. Features are matched by name (``fill_missing``: absent
        ones are zeros, with a warning).
        """
        corrected = self._aligned(adata, fill_missing).copy()
        values, reconstructed, latent = self._outputs(corrected)
        corrected.layers[key_added] = values
        corrected.layers[RECONSTRUCTED_KEY] = reconstructed
        corrected.obsm[self.latent_key] = latent
        return corrected

    def get_latent_representation(self, adata: ad.AnnData | None = None, fill_missing: bool = False) -> np.ndarray:
        """The latent code (samples × ``latent_dim``) of ``adata`` (default: the training data)."""
        return self._outputs(self._aligned(adata, fill_missing))[2]
