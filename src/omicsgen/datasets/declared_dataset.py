"""The raw file of a dataset declared in ``datasets.yml``, for the ``{dataset}.raw`` factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from omicsgen.datasets.anndata_dataset import SOURCE_FILE_KEY, AnnDataDataset

_SEQUENCE_SUFFIXES = (".fasta", ".fa", ".fna", ".fasta.gz", ".fa.gz", ".fna.gz")


def _cell_table(path: str) -> ad.AnnData:
    """cells × features CSV/TSV: first column the cell names, numeric columns the
    features, any other column an obs annotation."""
    table = pd.read_csv(path, sep="\t" if path.endswith(".tsv") else ",", index_col=0)
    numeric = table.select_dtypes(include="number")
    adata = ad.AnnData(
        X=numeric.to_numpy(dtype=np.float32),
        obs=table.drop(columns=numeric.columns),
        var=pd.DataFrame(index=numeric.columns.astype(str)),
    )
    adata.obs_names = table.index.astype(str)
    return adata


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
        files = registry[self._dataset].files
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
            return AnnDataDataset(filepath=path).load()
        if lower.endswith(_SEQUENCE_SUFFIXES):
            from omicsgen.datasets.fasta_dataset import FastaDataset

            return FastaDataset(filepath=path).load()
        if lower.endswith((".csv", ".tsv")):
            if self._part == "file":
                adata = _cell_table(path)
                adata.uns[SOURCE_FILE_KEY] = path
                return adata
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
