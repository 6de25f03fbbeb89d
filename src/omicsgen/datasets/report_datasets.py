"""Reporting datasets that a summary can read back, and that tolerate absence.

The summary report reads every method's metrics and figures. A method that was not run
has no files: these datasets load ``None`` then, so the report lists it as not run
instead of failing.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset


class OptionalJSONDataset(JSONDataset):
    """``json.JSONDataset`` whose ``load`` returns ``None`` when the file does not exist."""

    def load(self) -> Any:
        return super().load() if self._exists() else None


class OptionalCSVDataset(CSVDataset):
    """``pandas.CSVDataset`` whose ``load`` returns ``None`` when the file does not exist."""

    def load(self) -> Any:
        return super().load() if self._exists() else None


class FigureDataset(AbstractDataset[Any, bytes | None]):
    """Save a matplotlib figure as PNG (and close it); load the PNG bytes, or ``None``.

    Catalog::

        scgen.figure_training_curves:
          type: omicsgen.datasets.FigureDataset
          filepath: data/08_reporting/scgen/training_curves.png
          save_args: {dpi: 120}
    """

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._path = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._save_args = {"dpi": 120, "bbox_inches": "tight", **(save_args or {})}
        self.metadata = metadata

    @property
    def _full_path(self) -> str:
        return str(self._path) if self._protocol == "file" else f"{self._protocol}://{self._path}"

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._full_path, "save_args": self._save_args}

    def load(self) -> bytes | None:
        if not self._fs.exists(self._full_path):
            return None
        with self._fs.open(self._full_path, "rb") as handle:
            return handle.read()

    def save(self, data: Any) -> None:
        import matplotlib.pyplot as plt

        if not hasattr(data, "savefig"):
            raise DatasetError(f"FigureDataset saves matplotlib figures, got {type(data).__name__}")
        buffer = io.BytesIO()
        data.savefig(buffer, format="png", **self._save_args)
        plt.close(data)
        self._fs.makedirs(str(self._path.parent), exist_ok=True)
        with self._fs.open(self._full_path, "wb") as handle:
            handle.write(buffer.getvalue())

    def _exists(self) -> bool:
        return self._fs.exists(self._full_path)
