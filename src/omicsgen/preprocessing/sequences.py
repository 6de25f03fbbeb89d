"""DNA sequences for composition-based binning: FASTA in, k-mer composition vectors out.

- :func:`parse_fasta` / :func:`read_fasta` / :func:`format_fasta`: plain-Python FASTA
  (multi-line records, ``.gz`` files), checked record by record.
- :func:`canonical_kmers`: the k-mers with a sequence and its reverse complement merged
  into one feature (136 for k=4, 32 for k=3), since a read is as likely to come from
  either strand.
- :func:`kmer_composition`: per sequence, the frequency of each canonical k-mer (k-mers
  containing N or other ambiguity codes are skipped).
- :func:`minmax_scale`: each feature scaled to [0, 1] over the data set, as the tutorial
  (and LRBinner) scale composition before the VAE.
- :func:`sequences_to_anndata`: all of the above as a samples × k-mers AnnData.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.preprocessing.validate import SOURCE_FILE_KEY, InputValidationError, preview

BASES = "ACGT"
#: IUPAC nucleotide codes accepted in sequences; all but ACGT break a k-mer.
IUPAC = set("ACGTUNRYKMSWBDHV-.")
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i
_CODE[ord("U")] = _CODE[ord("u")] = 3


@dataclass(frozen=True)
class SequenceRecord:
    """One FASTA record: ``>identifier description`` and its sequence (upper case)."""

    identifier: str
    description: str
    sequence: str


class SequenceRecords(list):
    """A list of :class:`SequenceRecord` that remembers the file it was read from."""

    def __init__(self, records: Iterable[SequenceRecord] = (), source: str = "<in-memory FASTA>") -> None:
        super().__init__(records)
        self.source = source


def parse_fasta(text: str, source: str = "<in-memory FASTA>") -> SequenceRecords:
    """Parse FASTA text; every problem names ``source``, the record and the line.

    Raises:
        InputValidationError: no records, text before the first header, an empty
            identifier, a duplicated identifier, an empty sequence, or characters that are
            not IUPAC nucleotide codes.
    """
    records = SequenceRecords(source=source)
    header: tuple[str, str, int] | None = None
    chunks: list[str] = []

    def close() -> None:
        if header is None:
            return
        identifier, description, line_no = header
        sequence = "".join(chunks).upper()
        if not sequence:
            raise InputValidationError(f"{source}: record '{identifier}' (line {line_no}) has an empty sequence")
        bad = sorted(set(sequence) - IUPAC)
        if bad:
            raise InputValidationError(
                f"{source}: record '{identifier}' (line {line_no}) has characters that are not "
                f"nucleotide codes: {preview(bad)}"
            )
        records.append(SequenceRecord(identifier, description, sequence))

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            close()
            fields = line[1:].split(maxsplit=1)
            if not fields:
                raise InputValidationError(f"{source}: line {line_no} is a header without an identifier")
            header = (fields[0], fields[1] if len(fields) > 1 else "", line_no)
            chunks = []
        elif header is None:
            raise InputValidationError(
                f"{source}: line {line_no} holds sequence before any '>' header; is this a FASTA file?"
            )
        else:
            chunks.append(line.replace(" ", ""))
    close()
    if not records:
        raise InputValidationError(f"{source}: no FASTA records found")
    identifiers = pd.Series([r.identifier for r in records])
    duplicated = identifiers[identifiers.duplicated()]
    if len(duplicated):
        raise InputValidationError(f"{source}: duplicated record identifiers {preview(duplicated.unique())}")
    return records


def read_fasta(path: str | Path) -> SequenceRecords:
    """Read a FASTA file (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return parse_fasta(handle.read(), source=str(path))


def format_fasta(records: Iterable[SequenceRecord], width: int = 80) -> str:
    lines = []
    for record in records:
        lines.append(f">{record.identifier} {record.description}".rstrip())
        lines.extend(record.sequence[i : i + width] for i in range(0, len(record.sequence), width))
    return "\n".join(lines) + "\n"


def reverse_complement(sequence: str) -> str:
    return sequence.translate(str.maketrans("ACGTacgtN", "TGCAtgcaN"))[::-1]


def canonical_kmers(k: int) -> list[str]:
    """Sorted canonical k-mers: the lexicographically smaller of each k-mer and its reverse complement."""
    if not 1 <= k <= 8:
        raise ValueError(f"k must be between 1 and 8, got {k}")
    return sorted({min(kmer, reverse_complement(kmer)) for kmer in map("".join, product(BASES, repeat=k))})


def _canonical_index(k: int) -> np.ndarray:
    """For every k-mer code (base-4 number, A=0 … T=3) the column of its canonical k-mer."""
    columns = {kmer: i for i, kmer in enumerate(canonical_kmers(k))}
    index = np.empty(4**k, dtype=np.int64)
    for code, kmer in enumerate(map("".join, product(BASES, repeat=k))):
        index[code] = columns[min(kmer, reverse_complement(kmer))]
    return index


def kmer_composition(sequences: Sequence[str], k: int = 4) -> np.ndarray:
    """Frequencies of canonical k-mers (rows sum to 1), sequences × ``len(canonical_kmers(k))``.

    K-mers overlapping a non-ACGT character are skipped. A sequence without a single
    valid k-mer is an error (its composition is undefined).
    """
    index = _canonical_index(k)
    n_columns = int(index.max()) + 1
    weights = 4 ** np.arange(k - 1, -1, -1)
    out = np.zeros((len(sequences), n_columns), dtype=np.float64)
    for row, sequence in enumerate(sequences):
        codes = _CODE[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows < 4).all(axis=1)
        kmer_codes = windows[valid].astype(np.int64) @ weights
        out[row] = np.bincount(index[kmer_codes], minlength=n_columns)
    totals = out.sum(axis=1, keepdims=True)
    empty = np.flatnonzero(totals[:, 0] == 0)
    if len(empty):
        raise InputValidationError(
            f"sequences {preview(empty.tolist())} have no valid {k}-mer (shorter than k or all ambiguous)"
        )
    return out / totals


def minmax_scale(matrix: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1] over the rows; constant columns become 0."""
    low = matrix.min(axis=0, keepdims=True)
    span = matrix.max(axis=0, keepdims=True) - low
    return np.divide(matrix - low, span, out=np.zeros_like(matrix, dtype=np.float64), where=span > 0)


def sequences_to_anndata(  # noqa: PLR0913
    records: Sequence[SequenceRecord],
    k: int = 4,
    scale: bool = True,
    label_pattern: str | None = None,
    label_key: str = "source",
    min_length: int = 0,
    source: str | None = None,
) -> ad.AnnData:
    """Sequences → samples × canonical k-mers AnnData.

    ``X`` holds the composition scaled to [0, 1] per k-mer (``scale``) and
    ``layers["frequency"]`` the unscaled frequencies; ``obs`` has ``length``, ``gc`` and,
    when ``label_pattern`` (a regex with one group, searched in the description) is
    given, ``obs[label_key]``: the known origin of each sequence, for scoring bins.

    Raises:
        InputValidationError: naming ``source`` and the records, for records shorter than
            ``min_length`` / ``k``, or descriptions the label pattern does not match.
    """
    source = source or getattr(records, "source", "<in-memory FASTA>")
    short = [r.identifier for r in records if len(r.sequence) < max(k, min_length)]
    if short:
        raise InputValidationError(
            f"{source}: records shorter than {max(k, min_length)} bases (k={k}, min_length={min_length}): "
            f"{preview(short)}"
        )
    sequences = [r.sequence for r in records]
    try:
        frequencies = kmer_composition(sequences, k)
    except InputValidationError as err:
        raise InputValidationError(f"{source}: {err}") from None
    obs = pd.DataFrame(
        {
            "length": [len(s) for s in sequences],
            "gc": [(s.count("G") + s.count("C")) / max(1, len(s)) for s in sequences],
        },
        index=[r.identifier for r in records],
    )
    if label_pattern:
        pattern = re.compile(label_pattern)
        matches = [pattern.search(f"{r.identifier} {r.description}") for r in records]
        unmatched = [r.identifier for r, m in zip(records, matches, strict=True) if m is None]
        if unmatched:
            raise InputValidationError(
                f"{source}: label pattern {label_pattern!r} matches no label in records {preview(unmatched)}"
            )
        obs[label_key] = pd.Categorical([m.group(1) for m in matches])
    matrix = minmax_scale(frequencies) if scale else frequencies
    adata = ad.AnnData(
        X=matrix.astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=canonical_kmers(k)),
        layers={"frequency": frequencies.astype(np.float32)},
    )
    adata.uns["kmers"] = {"k": k, "canonical": True, "scaled": "minmax" if scale else "none"}
    adata.uns[SOURCE_FILE_KEY] = source
    return adata
