"""``TorchCheckpointDataset``: model checkpoints as state dict + rebuild config.

A checkpoint is a plain dict ``{"state_dict": ..., "config": {...}, ...}`` of tensors
and JSON-like values. It is loaded with ``torch.load(weights_only=True)``: a checkpoint
received from someone else can never execute code on load.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)


class TorchCheckpointDataset(AbstractVersionedDataset[dict, dict]):
    """Save and load ``dict`` checkpoints (state dicts and plain config) with torch.

    Torch is imported inside ``load``/``save`` so that building the catalog stays fast.
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def load(self) -> dict:
        import torch

        load_path = get_filepath_str(self._get_load_path(), self._protocol)
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
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise DatasetError(f"'{load_path}' is not an omicsgen checkpoint (no 'state_dict')")
        return checkpoint

    def save(self, data: dict) -> None:
        import torch

        if not isinstance(data, dict) or "state_dict" not in data:
            raise DatasetError("TorchCheckpointDataset saves dicts with a 'state_dict' key")
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        buffer = io.BytesIO()
        torch.save(data, buffer)
        payload = buffer.getvalue()
        if self._protocol == "file":
            target = Path(save_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as tmp:
                    tmp.write(payload)
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        else:
            with self._fs.open(save_path, mode="wb") as handle:
                handle.write(payload)
        self._fs.invalidate_cache(save_path)

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)
