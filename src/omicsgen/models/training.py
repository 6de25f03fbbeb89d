"""The one training loop every omicsgen model uses.

A model supplies a :class:`TrainingPlan`: what one minibatch step does (its own
losses, optimisers and, for adversarial models, several updates per step) and how a
validation batch is scored. :func:`fit` does everything else the same way for every
method: seeding, device choice, minibatches cut from in-memory tensors (no per-cell
DataLoader: indexing a tensor with a permutation is what makes small-data training
fast), epoch averages, validation, early stopping with best-weights restore, a
progress bar, the per-epoch history, wall time and peak memory.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import resource
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from omicsgen.models.data import BUFFER_CELLS, CHUNK_CELLS, CellRows
from omicsgen.models.runtime import retain_freed_memory

logger = logging.getLogger(__name__)

@dataclass
class TrainingConfig:
    """How to train; the same fields for every method.

    Attributes:
        max_epochs: Upper bound on passes over the training data.
        batch_size: Cells (samples) per minibatch.
        patience: Epochs without improvement of ``monitor`` before stopping;
            ``None`` trains for ``max_epochs``.
        min_delta: Smallest decrease of ``monitor`` that counts as an improvement.
        monitor: Metric watched for early stopping and best-weights restore. It is read
            from the validation metrics if there is validation data, else from training.
        restore_best: Load the weights of the best epoch at the end.
        seed: Seeds Python, NumPy and torch, and the minibatch order.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        progress: Show a progress bar; ``None`` shows it only in an interactive terminal.
        checkpoint_every: Epochs between resumable checkpoints (networks, optimisers,
            schedulers, random-generator states, history), written atomically to the
            ``checkpoint_path`` given to :func:`fit`; ``None`` writes none.
        resume: Continue from that checkpoint when it exists (same configuration required).
        data_loading: ``auto`` (stream large or backed data, else one dense tensor),
            ``memory`` or ``stream`` (see :mod:`omicsgen.models.data`); the same numbers
            either way while the cells fit one buffer.
    """

    max_epochs: int = 100
    batch_size: int = 32
    patience: int | None = 10
    min_delta: float = 0.0
    monitor: str = "loss"
    restore_best: bool = True
    seed: int = 0
    device: str = "auto"
    progress: bool | None = None
    checkpoint_every: int | None = 10
    resume: bool = False
    data_loading: str = "auto"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainingConfig:
        """Build from a parameters mapping, rejecting unknown keys (typos in YAML)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown training parameters {unknown}; known: {sorted(known)}")
        return cls(**params)


@dataclass
class TrainingResult:
    """What a training run records: config, seed, device, history and timing."""

    config: dict[str, Any]
    device: str
    threads: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    peak_memory_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingPlan:
    """What a model does in one minibatch step; subclass and override the ``*_step`` methods.

    ``training_step`` computes losses, calls ``backward`` and steps its optimisers, and
    returns the scalar metrics to log (tensors or floats). ``validation_step`` runs under
    ``torch.no_grad`` in eval mode. ``modules`` lists every network whose weights are
    trained (snapshotted for best-weights restore, switched between train and eval).
    """

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        raise NotImplementedError

    def validation_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, Any]:
        raise NotImplementedError

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Hook for schedulers and loss re-weighting; ``record`` holds this epoch's metrics."""

    def stateful(self) -> dict[str, Any]:
        """Everything a resumed training must get back besides the networks: by default
        every optimiser and learning-rate scheduler the plan holds as an attribute."""
        return {
            name: value
            for name, value in vars(self).items()
            if isinstance(value, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler))
        }


def package_versions() -> dict[str, str]:
    """The versions a run's numbers depend on (recorded with every training)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": sys.version.split()[0]}
    for package in ("omicsgen", "torch", "numpy", "scipy", "scanpy", "anndata", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU. An unavailable CUDA request is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but CUDA is not available")
    return resolved


def seed_everything(seed: int) -> None:
    """Same seed, same data, same parameters → the same numbers (on the same device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def peak_memory_mb(device: torch.device) -> float:
    """Peak resident memory of this process (CPU), or peak allocated CUDA memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _show_progress(requested: bool | None) -> bool:
    if requested is not None:
        return requested
    return sys.stderr.isatty() and not os.environ.get("CI")


def _cut(
    tensors: Mapping[str, Any], batch_size: int, generator: torch.Generator | None, shuffle: bool
) -> Iterator[dict[str, torch.Tensor]]:
    n = len(next(iter(tensors.values())))
    device = next(iter(tensors.values())).device
    order = torch.randperm(n, generator=generator).to(device) if shuffle else None
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if shuffle and stop - start < 2 <= n:
            continue
        if order is None:
            yield {k: v[start:stop] for k, v in tensors.items()}
        else:
            index = order[start:stop]
            yield {k: v[index] for k, v in tensors.items()}


def _buffers(n: int, generator: torch.Generator | None, shuffle: bool, buffer_cells: int) -> Iterator[np.ndarray]:
    """Row positions, a buffer at a time: shuffled, chunks of contiguous rows in random
    order; else every row in order."""
    if not shuffle:
        for start in range(0, n, buffer_cells):
            yield np.arange(start, min(start + buffer_cells, n))
        return
    n_chunks = -(-n // CHUNK_CELLS)
    chunks = torch.randperm(n_chunks, generator=generator).numpy()
    per_buffer = max(buffer_cells // CHUNK_CELLS, 1)
    for start in range(0, n_chunks, per_buffer):
        # sorted: read in file order; the cells are shuffled within the buffer anyway
        yield np.sort(np.concatenate(
            [np.arange(c * CHUNK_CELLS, min((c + 1) * CHUNK_CELLS, n)) for c in chunks[start : start + per_buffer]]
        ))  # fmt: skip


def minibatches(
    tensors: Mapping[str, torch.Tensor | CellRows],
    batch_size: int,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    buffer_cells: int = BUFFER_CELLS,
) -> Iterator[dict[str, torch.Tensor]]:
    """Cut minibatches from tensors (or :class:`CellRows`) sharing their first dimension.

    When shuffling, a final batch of one sample is skipped: batch norm cannot train on it.
    Rows of a backed file are read a buffer at a time: all at once when they fit in
    ``buffer_cells`` (the same minibatches as in memory), else buffers of contiguous chunks
    in random order, shuffled within each buffer.
    """
    n = len(next(iter(tensors.values())))
    if not any(isinstance(v, CellRows) and v.backed for v in tensors.values()):
        yield from _cut(tensors, batch_size, generator, shuffle)
        return

    def read(positions: np.ndarray) -> dict[str, Any]:
        return {
            k: v.in_memory(positions) if isinstance(v, CellRows) else v[torch.from_numpy(positions).to(v.device)]
            for k, v in tensors.items()
        }

    if n <= buffer_cells:
        yield from _cut(read(np.arange(n)), batch_size, generator, shuffle)
        return
    for positions in _buffers(n, generator, shuffle, buffer_cells):
        yield from _cut(read(positions), batch_size, generator, shuffle)


def _epoch_means(
    plan_step, batches: Iterator[dict[str, torch.Tensor]]
) -> dict[str, float]:
    totals: dict[str, torch.Tensor | float] = {}
    seen = 0
    for batch in batches:
        size = len(next(iter(batch.values())))
        for key, value in plan_step(batch).items():
            value = value.detach() if isinstance(value, torch.Tensor) else value
            totals[key] = totals.get(key, 0.0) + value * size
        seen += size
    return {key: float(total) / max(seen, 1) for key, total in totals.items()}


def _set_mode(plan: TrainingPlan, training: bool) -> None:
    for module in plan.modules().values():
        module.train(training)


RESUME_FORMAT = "omicsgen-resume-1"
#: config fields that may differ between a killed run and its resumption
_VOLATILE = ("resume", "progress", "checkpoint_every", "max_epochs", "device", "data_loading")


class ResumeError(ValueError):
    """A training checkpoint that cannot be resumed from (corrupt, or another configuration)."""


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _identity(config: TrainingConfig, fingerprint: Mapping[str, Any] | None) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: the training configuration (less
    what may change between runs) and the caller's fingerprint (architecture, genes, …)."""
    return {
        "training": {k: v for k, v in asdict(config).items() if k not in _VOLATILE},
        "fingerprint": dict(fingerprint or {}),
    }


def save_training_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_training_checkpoint(path: Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ResumeError(f"{path}: not a readable training checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ResumeError(f"{path}: not an omicsgen training checkpoint (format {state.get('format') if isinstance(state, dict) else None!r})")
    if state["identity"] != dict(identity):
        saved, wanted = state["identity"], dict(identity)
        differ = sorted(
            f"{section}.{key}"
            for section in ("training", "fingerprint")
            for key in set(saved.get(section, {})) | set(wanted.get(section, {}))
            if saved.get(section, {}).get(key) != wanted.get(section, {}).get(key)
        )
        raise ResumeError(
            f"{path} was written by another configuration ({', '.join(differ)} differ: checkpoint "
            f"{ {k: saved.get(k.split('.')[0], {}).get(k.split('.', 1)[1]) for k in differ} }, this run "
            f"{ {k: wanted.get(k.split('.')[0], {}).get(k.split('.', 1)[1]) for k in differ} }); "
            "delete it or set training.resume: false"
        )
    return state


def fit(
    plan: TrainingPlan,
    train: Mapping[str, torch.Tensor | CellRows],
    validation: Mapping[str, torch.Tensor | CellRows] | None = None,
    config: TrainingConfig | None = None,
    description: str = "training",
    checkpoint_path: str | Path | None = None,
    fingerprint: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train ``plan`` on minibatches of ``train``; score ``validation`` after each epoch.

    Tensors must already be on the plan's device (see :func:`resolve_device`). History
    rows have ``epoch``, ``train_<metric>``, ``validation_<metric>``, ``seconds`` (wall)
    and ``cpu_seconds`` (process CPU time, all threads).

    With ``checkpoint_path`` and ``config.checkpoint_every``, a resumable checkpoint is
    written every that many epochs; with ``config.resume`` a run continues from it and ends
    with the same weights and history as an uninterrupted run (same seed, threads, device).
    ``fingerprint`` (architecture, genes, …) must match the checkpoint's, or resuming stops
    with an error naming what differs.
    """
    from tqdm.auto import tqdm

    config = config or TrainingConfig()
    seed_everything(config.seed)
    retain_freed_memory()
    device = next(iter(train.values())).device
    generator = torch.Generator().manual_seed(config.seed)
    key = f"{'validation' if validation else 'train'}_{config.monitor}"
    # numbers are reproducible at a given thread count: record it
    result = TrainingResult(
        config=asdict(config), device=str(device), threads=torch.get_num_threads(), versions=package_versions()
    )
    best_state: dict[str, dict[str, torch.Tensor]] | None = None
    epochs_since_best = 0
    first_epoch = 1
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    identity = _identity(config, fingerprint)
    if config.resume and checkpoint_path is not None and checkpoint_path.exists():
        saved = load_training_checkpoint(checkpoint_path, identity)
        for name, module in plan.modules().items():
            module.load_state_dict(saved["modules"][name])
        for name, item in plan.stateful().items():
            item.load_state_dict(saved["stateful"][name])
        _set_rng_state(saved["rng"], generator)
        result.history = list(saved["history"])
        result.best_value, result.best_epoch = saved["best_value"], saved["best_epoch"]
        epochs_since_best, best_state = saved["epochs_since_best"], saved["best_state"]
        first_epoch = int(saved["epoch"]) + 1
        logger.info("%s: resuming from %s after epoch %d", description, checkpoint_path, first_epoch - 1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    logger.info(
        "%s: %d training / %d validation samples, batch %d, up to %d epochs, seed %d, device %s",
        description,
        len(next(iter(train.values()))),
        len(next(iter(validation.values()))) if validation else 0,
        config.batch_size,
        config.max_epochs,
        config.seed,
        device,
    )

    start = time.perf_counter()
    bar = tqdm(
        range(first_epoch, config.max_epochs + 1),
        desc=description,
        unit="epoch",
        disable=not _show_progress(config.progress),
        leave=False,
    )
    for epoch in bar:
        epoch_start, epoch_cpu_start = time.perf_counter(), time.process_time()
        _set_mode(plan, True)
        record: dict[str, float] = {"epoch": epoch}
        train_metrics = _epoch_means(
            lambda batch, e=epoch: plan.training_step(batch, e),
            minibatches(train, config.batch_size, generator),
        )
        record.update({f"train_{k}": v for k, v in train_metrics.items()})
        if validation:
            _set_mode(plan, False)
            with torch.no_grad():
                valid_metrics = _epoch_means(
                    plan.validation_step,
                    minibatches(validation, max(config.batch_size, 1024), shuffle=False),
                )
            record.update({f"validation_{k}": v for k, v in valid_metrics.items()})
        plan.on_epoch_end(epoch, record)
        record["seconds"] = time.perf_counter() - epoch_start
        # CPU time of this process: on a shared machine it shows the work, not the wait
        record["cpu_seconds"] = time.process_time() - epoch_cpu_start
        result.history.append(record)
        bar.set_postfix({k: f"{record[k]:.4g}" for k in (f"train_{config.monitor}", key) if k in record})

        if key not in record:
            raise KeyError(f"monitored metric '{key}' not produced; epoch metrics: {sorted(record)}")
        value = record[key]
        if not np.isfinite(value):
            raise FloatingPointError(f"{description}: {key} became {value} at epoch {epoch}")
        if result.best_value is None or value < result.best_value - config.min_delta:
            result.best_value, result.best_epoch, epochs_since_best = value, epoch, 0
            if config.restore_best:
                best_state = {
                    name: copy.deepcopy(module.state_dict()) for name, module in plan.modules().items()
                }
        else:
            epochs_since_best += 1
            if config.patience is not None and epochs_since_best >= config.patience:
                result.stopped_early = True
                break
        if checkpoint_path is not None and config.checkpoint_every and epoch % config.checkpoint_every == 0:
            save_training_checkpoint(checkpoint_path, {
                "format": RESUME_FORMAT, "identity": identity, "epoch": epoch,
                "modules": {name: module.state_dict() for name, module in plan.modules().items()},
                "stateful": {name: item.state_dict() for name, item in plan.stateful().items()},
                "rng": _rng_state(generator), "history": result.history,
                "best_value": result.best_value, "best_epoch": result.best_epoch,
                "epochs_since_best": epochs_since_best, "best_state": best_state,
            })  # fmt: skip
    bar.close()

    if best_state is not None:
        for name, module in plan.modules().items():
            module.load_state_dict(best_state[name])
    _set_mode(plan, False)
    result.epochs_run = len(result.history)
    result.seconds = time.perf_counter() - start
    result.seconds_per_epoch = result.seconds / max(result.epochs_run, 1)
    result.peak_memory_mb = peak_memory_mb(device)
    logger.info(
        "%s: %d epochs in %.1f s (%.3f s/epoch), best %s %.5g at epoch %s%s",
        description,
        result.epochs_run,
        result.seconds,
        result.seconds_per_epoch,
        key,
        result.best_value,
        result.best_epoch,
        ", stopped early" if result.stopped_early else "",
    )
    return result


def apply_in_batches(
    function, tensors: Mapping[str, torch.Tensor | CellRows] | torch.Tensor | CellRows, batch_size: int = 1024
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Evaluate ``function`` over row chunks without gradients and concatenate the outputs.

    ``function`` receives a tensor (or a dict of tensors) and returns a tensor or a tuple.
    """
    single = isinstance(tensors, (torch.Tensor, CellRows))
    data = {"x": tensors} if single else dict(tensors)
    outputs = []
    with torch.no_grad():
        for batch in minibatches(data, batch_size, shuffle=False):
            outputs.append(function(batch["x"] if single else batch))
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))
    return torch.cat(outputs)
