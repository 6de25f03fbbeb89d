"""Checkpoints: a state dict plus the plain-value config needed to rebuild the network.

Only tensors and JSON-like values go in, so ``torch.load(weights_only=True)`` can read
them back (see ``omicsgen.datasets.TorchCheckpointDataset``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

FORMAT_VERSION = 1


def make_checkpoint(
    model: str, modules: dict[str, nn.Module], config: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """``{"model", "format_version", "config", "state_dict": {name: state}, **extra}``.

    ``extra`` must hold plain values or tensors only (gene names, label encodings, deltas).
    """
    return {
        "model": model,
        "format_version": FORMAT_VERSION,
        "config": dict(config),
        "state_dict": {name: module.state_dict() for name, module in modules.items()},
        **extra,
    }


def restore_modules(
    checkpoint: dict[str, Any], model: str, build: Callable[[dict[str, Any]], dict[str, nn.Module]]
) -> dict[str, nn.Module]:
    """Rebuild the networks with ``build(config)`` and load their weights (eval mode)."""
    if checkpoint.get("model") != model:
        raise ValueError(f"checkpoint is for model {checkpoint.get('model')!r}, not {model!r}")
    modules = build(checkpoint["config"])
    for name, module in modules.items():
        module.load_state_dict(checkpoint["state_dict"][name])
        module.eval()
    return modules
