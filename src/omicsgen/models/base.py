"""The model class every method's AnnData API derives from (scvi-tools' shape).

A method is three roles: its network (``module.py``, torch modules only), its training
plan (``plan.py``, one minibatch step) and its model class (``model.py``), which derives
from :class:`BaseModel`::

    ScGen.setup_anndata(adata, condition_key="condition", control="control",
                        stimulated="stimulated", cell_type_key="cell_type")
    model = ScGen(adata, model={"n_latent": 100}, plan={"lr": 1e-3}, training={"max_epochs": 40})
    model.train()
    model.save("models/scgen")
    model = ScGen.load("models/scgen", adata=new_cells)     # genes checked by name
    predicted = model.predict(control_cells)                 # AnnData, keys documented

``BaseModel`` owns what every method does the same way: the keys registered once per
AnnData, the three parameter sections (``model``, ``plan``, ``training``, each read by a
dataclass that rejects unknown keys), seed and device, the train/validation split, gene
alignment by name, and saving/loading (state dicts + config + var names, read back with
``weights_only=True``).
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from omicsgen.models.training import TrainingConfig, TrainingResult, resolve_device
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_obs_columns,
    preview,
    source_of,
)

logger = logging.getLogger(__name__)

#: ``adata.uns`` key holding the keys registered by ``setup_anndata``
SETUP_KEY = "_omicsgen_setup"
CHECKPOINT_FILE = "model.pt"
FORMAT_VERSION = 2


class ConfigSection:
    """A parameter section as a dataclass: defaults in one place, unknown keys rejected."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None, section: str = ""):
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            where = f"{section}: " if section else ""
            raise ValueError(f"{where}unknown parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**params)


@dataclass(frozen=True)
class AnnDataSetup:
    """Where a method finds what it needs in an AnnData (``setup_anndata``'s arguments).

    ``layer``: the matrix the network reads (None = X); ``split_key``: obs column with
    ``train``/``validation`` (absent: every cell trains); ``counts_layer``: raw counts for
    a count likelihood (the VAE's negative binomial).
    """

    condition_key: str | None = None
    control: str | None = None
    stimulated: str | None = None
    cell_type_key: str | None = None
    batch_key: str | None = None
    order_key: str | None = None
    qc_key: str | None = None
    split_key: str | None = "split"
    layer: str | None = None
    counts_layer: str | None = None

    def columns(self) -> list[str]:
        return [c for c in (self.condition_key, self.cell_type_key, self.batch_key, self.order_key, self.qc_key) if c]


def split_masks(adata: ad.AnnData, split_key: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) row masks from ``obs[split_key]`` ∈ {train, validation}.
    Without the column every row trains. Any other value is an error naming the column."""
    if split_key is None or split_key not in adata.obs:
        return np.ones(adata.n_obs, dtype=bool), np.zeros(adata.n_obs, dtype=bool)
    split = adata.obs[split_key].astype(str).to_numpy()
    unknown = sorted(set(split) - {"train", "validation"})
    if unknown:
        raise InputValidationError(
            f"{source_of(adata)}: obs column '{split_key}' must hold 'train' or 'validation', found {preview(unknown)}"
        )
    return split == "train", split == "validation"


def label_codes(labels: Sequence, categories: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Labels (e.g. an obs column of batches or cell types) as strings → (their categories,
    each label's int64 code). Categories are the sorted distinct labels unless given; a
    label outside given categories gets code -1 (callers check for unknown labels first)."""
    strings = np.asarray(labels).astype(str)
    categorical = pd.Categorical(strings, categories=sorted(set(strings)) if categories is None else list(categories))
    return [str(c) for c in categorical.categories], np.asarray(categorical.codes, dtype=np.int64)


def align_genes(adata: ad.AnnData, var_names: Sequence[str], fill_missing: bool = False) -> ad.AnnData:
    """``adata`` with exactly ``var_names``, in that order (matched by name).

    Missing genes are an error listing them; with ``fill_missing`` they are added as zeros,
    with a warning. Extra genes are dropped.
    """
    var_names = [str(v) for v in var_names]
    if list(adata.var_names) == var_names:
        return adata
    present = set(adata.var_names)
    missing = [g for g in var_names if g not in present]
    if missing and not fill_missing:
        raise InputValidationError(
            f"{source_of(adata)}: {len(missing)} of the model's {len(var_names)} genes are missing: "
            f"{preview(missing)} (fill_missing=True adds them as zeros)"
        )
    if missing:
        logger.warning("%s: %d genes missing, filled with zeros: %s", source_of(adata), len(missing), preview(missing))
        zeros = ad.AnnData(
            X=sp.csr_matrix((adata.n_obs, len(missing)), dtype=np.float32),
            obs=adata.obs[[]], var=pd.DataFrame(index=pd.Index(missing)),
        )  # fmt: skip
        for layer in adata.layers:
            zeros.layers[layer] = zeros.X.copy()
        adata = ad.concat([adata, zeros], axis=1, merge="first", uns_merge="first")
    return adata[:, var_names].copy()


def _plain(value: Any) -> Any:
    """Config values as JSON-like plain values (tuples → lists), for weights_only loading."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file beside ``path``, then rename: a killed save leaves the
    previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class BaseModel:
    """AnnData-facing model: keys registered once, train, save/load, latent.

    A subclass sets ``name``, the keys it needs (``required_keys``), its config dataclasses
    (``ModelConfig``, ``PlanConfig``), and implements ``_build_modules`` and ``_train``;
    it adds its verb (``predict``, ``correct``, ``generate``, ``embed``).
    """

    name: ClassVar[str] = "model"
    required_keys: ClassVar[tuple[str, ...]] = ()
    ModelConfig: ClassVar[type[ConfigSection]]
    PlanConfig: ClassVar[type[ConfigSection]]
    #: the ``training`` section's dataclass (a method with more fields subclasses it)
    TrainingConfig: ClassVar[type[TrainingConfig]] = TrainingConfig
    #: obsm key of the latent representation (None: the method has no latent)
    latent_key: ClassVar[str | None] = None

    # --- AnnData registration ---------------------------------------------------------

    @classmethod
    def setup_anndata(cls, adata: ad.AnnData, **keys: Any) -> None:
        """Register where the method finds its inputs, once per AnnData (in
        ``adata.uns["_omicsgen_setup"]``); checks that the columns and layer exist."""
        setup = AnnDataSetup(**keys)
        missing = [k for k in cls.required_keys if getattr(setup, k) is None]
        if missing:
            raise ValueError(f"{cls.__name__}.setup_anndata needs {missing}")
        check_obs_columns(adata, setup.columns())
        for layer in (setup.layer, setup.counts_layer):
            if layer is not None and layer not in adata.layers:
                raise InputValidationError(
                    f"{source_of(adata)}: layer '{layer}' missing; layers are {list(adata.layers.keys()) or 'none'}"
                )
        adata.uns[SETUP_KEY] = {k: v for k, v in asdict(setup).items() if v is not None}

    @classmethod
    def registered_setup(cls, adata: ad.AnnData) -> AnnDataSetup:
        if SETUP_KEY not in adata.uns:
            raise ValueError(
                f"{source_of(adata)}: call {cls.__name__}.setup_anndata(adata, ...) first "
                f"(it needs {list(cls.required_keys) or 'no keys'})"
            )
        setup = AnnDataSetup(**{k: v for k, v in dict(adata.uns[SETUP_KEY]).items() if k in AnnDataSetup.__dataclass_fields__})
        missing = [k for k in cls.required_keys if getattr(setup, k) is None]
        if missing:
            raise ValueError(f"{source_of(adata)}: {cls.__name__} needs {missing}; call {cls.__name__}.setup_anndata again")
        return setup

    # --- construction -----------------------------------------------------------------

    def __init__(
        self,
        adata: ad.AnnData,
        model: Mapping[str, Any] | None = None,
        plan: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ):
        self.setup = self.registered_setup(adata)
        self.model_config = self.ModelConfig.from_params(model, f"{self.name}.model")
        self.plan_config = self.PlanConfig.from_params(plan, f"{self.name}.plan")
        self.training_config = self.TrainingConfig.from_params(dict(training or {}))
        self.adata = adata
        self.var_names = [str(v) for v in adata.var_names]
        self.modules: dict[str, nn.Module] = {}
        #: method-specific plain values saved with the weights (label encodings, deltas …)
        self.state: dict[str, Any] = {}
        self.training_result: TrainingResult | None = None
        #: where resumable training checkpoints go (every ``training.checkpoint_every`` epochs)
        self.checkpoint_dir: Path | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.training_config.device)

    def _build_modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _train(self) -> TrainingResult:
        """Build ``self.modules`` and train them on ``self.adata``; return the record."""
        raise NotImplementedError

    def train(self, checkpoint_dir: str | Path | None = None, **training: Any) -> TrainingResult:
        """Train on the AnnData given at construction; ``training`` overrides the
        ``training`` section (``max_epochs``, ``batch_size``, ``patience``, ``seed``, ``device``,
        ``checkpoint_every``, ``resume``). With ``checkpoint_dir``, a resumable checkpoint is
        written there every ``checkpoint_every`` epochs (and resumed from with ``resume``)."""
        if checkpoint_dir is not None:
            self.checkpoint_dir = Path(checkpoint_dir)
        if training:
            self.training_config = self.TrainingConfig.from_params({**asdict(self.training_config), **training})
        self.training_result = self._train()
        for module in self.modules.values():
            module.eval()
        return self.training_result

    def fingerprint(self) -> dict[str, Any]:
        """What a resumable training checkpoint must match: architecture, plan and genes."""
        import hashlib

        def digest(names: Sequence[str]) -> str:
            return hashlib.sha256("\n".join(map(str, names)).encode()).hexdigest()[:16]

        return _plain({
            "model": asdict(self.model_config), "plan": asdict(self.plan_config),
            "n_genes": len(self.var_names), "genes_sha256": digest(self.var_names),
            "n_cells": int(self.adata.n_obs), "cells_sha256": digest(self.adata.obs_names),
        })  # fmt: skip

    def _fit(self, plan: Any, train: Any, validation: Any, config: TrainingConfig, description: str) -> TrainingResult:
        """The shared loop (:func:`omicsgen.models.training.fit`) with this model's resumable
        checkpoint: ``<checkpoint_dir>/<description>.pt`` when ``checkpoint_dir`` is set."""
        from omicsgen.models.training import fit

        path = None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / f"{description}.pt"
        return fit(plan, train, validation, config, description, checkpoint_path=path, fingerprint=self.fingerprint())

    def _require_trained(self) -> None:
        if not self.modules:
            raise RuntimeError(f"{type(self).__name__} is not trained: call train() or load() first")

    # --- data --------------------------------------------------------------------------

    def _split(self, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
        return split_masks(adata, self.setup.split_key)

    def _aligned(self, adata: ad.AnnData | None, fill_missing: bool = False) -> ad.AnnData:
        """``adata`` (default: the training AnnData) with the model's genes in its order."""
        return align_genes(self.adata if adata is None else adata, self.var_names, fill_missing)

    def get_latent_representation(self, adata: ad.AnnData | None = None, fill_missing: bool = False) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no latent representation")

    # --- persistence -------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """State dicts (copied to CPU; the live modules stay where they are), the three
        config sections, the registered keys, the var names and the method's state."""
        self._require_trained()
        return {
            "model": self.name,
            "format_version": FORMAT_VERSION,
            "config": _plain({
                "model": asdict(self.model_config), "plan": asdict(self.plan_config),
                "training": asdict(self.training_config),
            }),  # fmt: skip
            "setup": _plain(asdict(self.setup)),
            "var_names": list(self.var_names),
            "state_dict": {
                name: {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
                for name, module in self.modules.items()
            },
            "state": copy.deepcopy(_plain_state(self.state)),
            "training_result": _plain(self.training_result.to_dict()) if self.training_result else None,
        }

    def save(self, directory: str | Path, overwrite: bool = True) -> Path:
        """Write ``<directory>/model.pt`` (atomically)."""
        path = Path(directory) / CHECKPOINT_FILE
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (overwrite=False)")
        atomic_torch_save(self.checkpoint(), path)
        return path

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any], adata: ad.AnnData | None = None, device: str = "auto"):
        """Rebuild a saved model. ``adata`` (optional) is aligned to the saved genes by name."""
        if checkpoint.get("model") != cls.name:
            raise ValueError(f"checkpoint is for model {checkpoint.get('model')!r}, not {cls.name!r}")
        if checkpoint.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"checkpoint format {checkpoint.get('format_version')!r} is not {FORMAT_VERSION}; retrain and save again"
            )
        var_names = list(checkpoint["var_names"])
        if adata is None:
            adata = ad.AnnData(X=sp.csr_matrix((0, len(var_names)), dtype=np.float32), var=pd.DataFrame(index=var_names))
        else:
            aligned = align_genes(adata, var_names)
            # the model's keys go on a new AnnData sharing the data, never on the caller's
            adata = ad.AnnData(
                X=aligned.X, obs=aligned.obs, var=aligned.var, layers=dict(aligned.layers),
                obsm=dict(aligned.obsm), uns=dict(aligned.uns),
            )  # fmt: skip
        adata.uns[SETUP_KEY] = dict(checkpoint["setup"])
        config = checkpoint["config"]
        model = cls(adata, config["model"], config["plan"], {**config["training"], "device": device})
        model.state = dict(checkpoint.get("state") or {})
        model.modules = model._build_modules()
        for name, module in model.modules.items():
            module.load_state_dict(checkpoint["state_dict"][name])
            module.to(model.device).eval()
        if checkpoint.get("training_result"):
            model.training_result = TrainingResult(**checkpoint["training_result"])
        return model

    @classmethod
    def load(cls, directory: str | Path, adata: ad.AnnData | None = None, device: str = "auto"):
        """Load ``<directory>/model.pt`` with ``torch.load(weights_only=True)``."""
        path = Path(directory)
        path = path / CHECKPOINT_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no saved {cls.name} model at {path}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path} is not a readable omicsgen checkpoint: {error}") from error
        return cls.from_checkpoint(checkpoint, adata, device)


def _plain_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Method state as tensors / plain values (arrays become tensors)."""
    out = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, Mapping):
            out[key] = _plain_state(value)
        else:
            out[key] = _plain(value)
    return out
