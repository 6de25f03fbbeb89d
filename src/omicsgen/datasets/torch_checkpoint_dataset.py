"""``TorchCheckpointDataset``: model checkpoints as state dict + rebuild config.

A checkpoint is a plain dict ``{"state_dict": ..., "config": {...}, ...}`` of tensors
and JSON-like values. It is loaded with ``torch.load(weights_only=True)``: a checkpoint
received from someone else can never execute code on load.
"""

from __future__ import annotations

import io
from typing import Any

from kedro.io.core import DatasetError

from omicsgen.datasets._files import VersionedFileDataset


def _is_checkpoint(data: Any) -> bool:
    """A checkpoint (a dict with ``state_dict``) or a non-empty dict of them (e.g. scGen's
    ``{held-out type: checkpoint}``)."""
    if not isinstance(data, dict):
        return False
    return "state_dict" in data or (bool(data) and all(isinstance(v, dict) and "state_dict" in v for v in data.values()))


class TorchCheckpointDataset(VersionedFileDataset):
    """Save and load ``dict`` checkpoints (state dicts and plain config) with torch.

    Torch is imported inside ``load``/``save`` so that building the catalog stays fast.
    """

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def load(self) -> dict:
        import torch

        load_path = self._load_path()
        if not self._fs.exists(load_path):
            raise DatasetError(f"checkpoint file not found: '{load_path}'")
        with self._fs.open(load_path, mode="rb") as handle:
            buffer = io.BytesIO(handle.read())
        try:
            checkpoint = torch.load(buffer, map_location="cpu", weights_only=True)
        except Exception as err:
            raise DatasetError(
                f"Could not load checkpoint '{load_path}' with weights_only=True "
                f"({type(err).__name__}: {err}). It is corrupt or contains objects other "
                "than tensors and plain values."
            ) from err
        if not _is_checkpoint(checkpoint):
            raise DatasetError(f"'{load_path}' is not an omicsgen checkpoint (no 'state_dict')")
        return checkpoint

    def save(self, data: dict) -> None:
        import torch

        if not _is_checkpoint(data):
            raise DatasetError(
                "TorchCheckpointDataset saves dicts with a 'state_dict' key, or dicts of them (name → checkpoint)"
            )
        self._write_atomically(self._save_path(), lambda path: torch.save(data, path))
