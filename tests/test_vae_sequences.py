"""FASTA parsing, canonical k-mers, composition vectors and the metagenome simulator."""

from __future__ import annotations

import gzip
import re
from itertools import product

import numpy as np
import pytest

from omicsgen.datasets.fasta_dataset import FastaDataset
from omicsgen.preprocessing.sequences import (
    SequenceRecord,
    canonical_kmers,
    format_fasta,
    kmer_composition,
    minmax_scale,
    parse_fasta,
    read_fasta,
    reverse_complement,
    sequences_to_anndata,
)
from omicsgen.preprocessing.simulate_sequences import (
    SHIPPED_METAGENOME,
    SOURCE_PATTERN,
    simulate_genomes,
    simulate_metagenome,
)
from omicsgen.preprocessing.validate import InputValidationError
from tests.conftest import RAW_DATA


def test_canonical_kmer_counts_match_theory():
    # 4^k / 2 pairs, plus the reverse-complement palindromes (only for even k): 4^(k/2) / 2
    assert len(canonical_kmers(3)) == 32
    assert len(canonical_kmers(4)) == 136
    for kmer in canonical_kmers(4):
        assert kmer <= reverse_complement(kmer)


def test_composition_is_strand_independent_and_counts_correctly():
    sequence = "AACGTTTGCAN" * 5 + "GATTACA"
    forward = kmer_composition([sequence], k=3)
    reverse = kmer_composition([reverse_complement(sequence)], k=3)
    np.testing.assert_allclose(forward, reverse)
    assert forward.sum() == pytest.approx(1.0)
    # brute force: count canonical 3-mers, skipping windows with N
    columns = {kmer: i for i, kmer in enumerate(canonical_kmers(3))}
    expected = np.zeros(32)
    for i in range(len(sequence) - 2):
        window = sequence[i : i + 3]
        if "N" not in window:
            expected[columns[min(window, reverse_complement(window))]] += 1
    np.testing.assert_allclose(forward[0], expected / expected.sum())


def test_every_kmer_has_a_column():
    k = 2
    sequences = ["".join(p) for p in product("ACGT", repeat=k)]
    composition = kmer_composition(sequences, k=k)
    assert (composition.sum(axis=1) == 1).all()
    assert set(np.argmax(composition, axis=1)) == set(range(len(canonical_kmers(k))))


def test_minmax_scaling_to_unit_interval():
    matrix = np.array([[0.1, 5.0, 1.0], [0.3, 5.0, 3.0], [0.2, 5.0, 2.0]])
    scaled = minmax_scale(matrix)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(scaled[:, 0], [0.0, 1.0, 0.5])
    assert (scaled[:, 1] == 0.0).all()  # constant feature


def test_fasta_roundtrip_multiline_and_gzip(tmp_path):
    records = [SequenceRecord("r1", "source=g1", "ACGT" * 50), SequenceRecord("r2", "", "GGCCA")]
    text = format_fasta(records, width=60)
    assert parse_fasta(text) == records
    path = tmp_path / "reads.fasta.gz"
    FastaDataset(filepath=str(path)).save(records)
    assert gzip.decompress(path.read_bytes()).decode() == format_fasta(records)
    loaded = FastaDataset(filepath=str(path)).load()
    assert list(loaded) == records and loaded.source == str(path)
    assert list(read_fasta(path)) == records


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no FASTA records"),
        ("ACGT\n>r1\nACGT\n", "line 1 holds sequence before any '>' header"),
        (">r1\nACGT\n>r1\nACGA\n", "duplicated record identifiers 'r1'"),
        (">r1\n>r2\nACGT\n", "record 'r1' (line 1) has an empty sequence"),
        (">r1\nACGT\n>r2 x\nAC9T\n", "record 'r2' (line 3) has characters that are not nucleotide codes: '9'"),
        (">\nACGT\n", "line 1 is a header without an identifier"),
    ],
)
def test_bad_fasta_names_file_record_and_value(text, message):
    with pytest.raises(InputValidationError, match="reads.fa: .*" + re.escape(message)):
        parse_fasta(text, source="reads.fa")


def test_short_or_unlabelled_sequences_are_rejected():
    records = parse_fasta(">a source=g1\nACGTACGT\n>b source=g2\nAC\n", source="x.fa")
    with pytest.raises(InputValidationError, match=r"x.fa: records shorter than 4 bases .*'b'"):
        sequences_to_anndata(records, k=4)
    records = parse_fasta(">a source=g1\nACGTACGT\n>b\nACGTTT\n", source="x.fa")
    with pytest.raises(InputValidationError, match=r"x.fa: label pattern .* matches no label in records 'b'"):
        sequences_to_anndata(records, k=3, label_pattern=SOURCE_PATTERN)
    records = parse_fasta(">a\nNNNNNN\n", source="x.fa")
    with pytest.raises(InputValidationError, match="x.fa: sequences 0 have no valid 3-mer"):
        sequences_to_anndata(records, k=3)


def test_sequences_to_anndata_layout():
    records = simulate_metagenome(n_genomes=3, genome_length=5000, reads_per_genome=10, read_length=300, seed=1)
    adata = sequences_to_anndata(records, k=3, label_pattern=SOURCE_PATTERN)
    assert adata.shape == (30, 32)
    assert adata.X.min() == 0.0 and adata.X.max() == 1.0
    np.testing.assert_allclose(adata.layers["frequency"].sum(axis=1), 1.0, rtol=1e-5)
    assert sorted(adata.obs["source"].unique()) == ["genome_0", "genome_1", "genome_2"]
    assert list(adata.var_names[:2]) == ["AAA", "AAC"]


def test_simulator_is_deterministic_and_genomes_differ_in_composition():
    a = simulate_genomes(n_genomes=3, genome_length=20_000, concentration=20, seed=3)
    b = simulate_genomes(n_genomes=3, genome_length=20_000, concentration=20, seed=3)
    assert a == b
    assert a != simulate_genomes(n_genomes=3, genome_length=20_000, concentration=20, seed=4)
    composition = kmer_composition(list(a.values()), k=4)
    distances = np.abs(composition[:, None, :] - composition[None, :, :]).sum(axis=2)
    assert distances[np.triu_indices(3, 1)].min() > 0.1


def test_reads_come_from_both_strands_with_truth_in_headers():
    records = simulate_metagenome(n_genomes=2, genome_length=3000, reads_per_genome=[30, 10], read_length=200, seed=0)
    strands = [r.description.split("strand=")[1] for r in records]
    assert 5 < strands.count("-") < 35
    sources = [r.description.split()[0] for r in records]
    assert sources.count("source=genome_0") == 30 and sources.count("source=genome_1") == 10


def test_shipped_reads_are_reproducible():
    shipped = RAW_DATA / "simulated_metagenome" / "reads.fasta.gz"
    regenerated = format_fasta(simulate_metagenome(**SHIPPED_METAGENOME))
    assert gzip.decompress(shipped.read_bytes()).decode("ascii") == regenerated
