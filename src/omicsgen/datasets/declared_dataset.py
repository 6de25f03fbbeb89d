"""The raw file of a dataset declared in ``datasets.yml``, for the ``{dataset}.raw`` factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from omicsgen.datasets.anndata_dataset import SOURCE_FILE_KEY, AnnDataDataset

_SEQUENCE_SUFFIXES = (".fasta", ".fa", ".fna", ".fasta.gz", ".fa.gz", ".fna.gz")


class DeclaredDataset(AbstractDataset):
    """Reads one file of a declared dataset: ``file`` (h5ad, cells × features CSV/TSV or
    FASTA) or, for metabolomics, ``data`` / ``info`` (CSV tables). Read-only."""

    def __init__(self, dataset: str, part: str = "file", metadata: dict[str, Any] | None = None):
        self._dataset = dataset
        self._part = part
        self.metadata = metadata

    def _path(self) -> str:
        from omicsgen.registry import active_registry

        registry = active_registry()
        if self._dataset not in registry:
            raise DatasetError(
                f"dataset '{self._dataset}' is not declared in datasets.yml; declared: {sorted(registry)}. "
                "Add an entry under 'datasets:' in conf/local/datasets.yml"
            )
        self._spec = registry[self._dataset]
        files = self._spec.files
        if self._part not in files:
            raise DatasetError(f"datasets.{self._dataset} has no '{self._part}' file (it has {sorted(files)})")
        return files[self._part]

    def _describe(self) -> dict[str, Any]:
        try:
            return {"dataset": self._dataset, "part": self._part, "filepath": self._path()}
        except DatasetError:
            return {"dataset": self._dataset, "part": self._part}

    def load(self) -> Any:
        path = self._path()
        if not Path(path).is_file():
            raise DatasetError(
                f"datasets.{self._dataset}: file {path} does not exist; fix the path in datasets.yml"
            )
        lower = path.lower()
        if lower.endswith(".h5ad"):
            return AnnDataDataset(filepath=path, backed="auto").load()
        if lower.endswith(_SEQUENCE_SUFFIXES):
            from omicsgen.datasets.fasta_dataset import FastaDataset

            return FastaDataset(filepath=path).load()
        if lower.endswith((".csv", ".tsv")):
            if self._part == "file":  # cells × features: the key columns annotate, the rest must be numeric
                from omicsgen.preprocessing.feature_table import read_samples_by_features

                keys = self._spec.keys
                annotations = [keys[k] for k in ("cell_type", "batch", "condition") if keys.get(k)] + ["split"]
                return read_samples_by_features(path, annotations)
            table = pd.read_csv(path)
            table.attrs[SOURCE_FILE_KEY] = path
            return table
        raise DatasetError(
            f"datasets.{self._dataset}: cannot read {path}; use .h5ad, .csv/.tsv or FASTA (.fasta, .fa, .fna, .gz)"
        )

    def save(self, data: Any) -> None:
        raise DatasetError(f"the raw files of dataset '{self._dataset}' are read-only")

    def _exists(self) -> bool:
        try:
            return Path(self._path()).is_file()
        except DatasetError:
            return False
