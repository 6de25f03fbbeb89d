"""Reporting datasets that a summary can read back, and that tolerate absence.

The summary report reads every method's metrics and figures. A method that was not run
has no files: these datasets load ``None`` then, so the report lists it as not run
instead of failing.
"""

from __future__ import annotations

import io
from typing import Any

from kedro.io.core import DatasetError
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from omicsgen.datasets._files import FileDataset


class OptionalJSONDataset(JSONDataset):
    """``json.JSONDataset`` whose ``load`` returns ``None`` when the file does not exist."""

    def load(self) -> Any:
        return super().load() if self._exists() else None


class OptionalCSVDataset(CSVDataset):
    """``pandas.CSVDataset`` whose ``load`` returns ``None`` when the file does not exist."""

    def load(self) -> Any:
        return super().load() if self._exists() else None


class FigureDataset(FileDataset):
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
        super().__init__(filepath=filepath, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._save_args = {"dpi": 120, "bbox_inches": "tight", **(save_args or {})}

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "save_args": self._save_args}

    def load(self) -> bytes | None:
        if not self._fs.exists(self._path):
            return None
        with self._fs.open(self._path, "rb") as handle:
            return handle.read()

    def save(self, data: Any) -> None:
        import matplotlib.pyplot as plt

        if not hasattr(data, "savefig"):
            raise DatasetError(f"FigureDataset saves matplotlib figures, got {type(data).__name__}")
        buffer = io.BytesIO()
        data.savefig(buffer, format="png", **self._save_args)
        plt.close(data)
        self._make_parent_dir()
        with self._fs.open(self._path, "wb") as handle:
            handle.write(buffer.getvalue())
