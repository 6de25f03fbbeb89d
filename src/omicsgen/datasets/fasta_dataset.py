"""``FastaDataset``: FASTA files (plain or ``.gz``) in the Kedro catalog.

Loads a list of :class:`omicsgen.preprocessing.sequences.SequenceRecord`; a malformed
file raises :class:`~omicsgen.preprocessing.validate.InputValidationError` naming the
file, the record and the line. Saves write 80-column FASTA (gzip when the name ends in
``.gz``, with a zero timestamp so that the same records give the same bytes).
"""

from __future__ import annotations

import gzip
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

from omicsgen.preprocessing.sequences import (
    SequenceRecord,
    SequenceRecords,
    format_fasta,
    parse_fasta,
)


class FastaDataset(AbstractDataset[list, list]):
    """Example catalog entry::

    vae.binning_reads:
      type: omicsgen.datasets.fasta_dataset.FastaDataset
      filepath: data/01_raw/simulated_metagenome/reads.fasta.gz
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}

    @property
    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def _compressed(self) -> bool:
        return self._filepath.suffix == ".gz"

    def load(self) -> SequenceRecords:
        path = self._path
        if not self._fs.exists(path):
            raise DatasetError(f"FASTA file not found: '{path}'")
        with self._fs.open(path, "rb") as handle:
            payload = handle.read()
        if self._compressed():
            payload = gzip.decompress(payload)
        try:
            text = payload.decode("ascii")
        except UnicodeDecodeError as err:
            raise DatasetError(f"'{path}' is not a text FASTA file ({err})") from err
        return parse_fasta(text, source=path)

    def save(self, data: list[SequenceRecord]) -> None:
        payload = format_fasta(data).encode("ascii")
        if self._compressed():
            payload = gzip.compress(payload, mtime=0)
        path = self._path
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "wb") as handle:
            handle.write(payload)

    def _exists(self) -> bool:
        return self._fs.exists(self._path)
