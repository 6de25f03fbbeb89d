"""``FastaDataset``: FASTA files (plain or ``.gz``) in the Kedro catalog.

Loads a list of :class:`omicsgen.preprocessing.sequences.SequenceRecord`; a malformed
file raises :class:`~omicsgen.preprocessing.validate.InputValidationError` naming the
file, the record and the line. Saves write 80-column FASTA (gzip when the name ends in
``.gz``, with a zero timestamp so that the same records give the same bytes).
"""

from __future__ import annotations

import gzip

from kedro.io.core import DatasetError

from omicsgen.datasets._files import FileDataset
from omicsgen.preprocessing.sequences import (
    SequenceRecord,
    SequenceRecords,
    format_fasta,
    parse_fasta,
)


class FastaDataset(FileDataset):
    """Example catalog entry::

    vae.binning_reads:
      type: omicsgen.datasets.fasta_dataset.FastaDataset
      filepath: data/01_raw/simulated_metagenome/reads.fasta.gz
    """

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
        self._make_parent_dir()
        with self._fs.open(path, "wb") as handle:
            handle.write(payload)
