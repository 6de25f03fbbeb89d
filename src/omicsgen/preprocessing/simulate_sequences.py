"""Synthetic metagenomes, deterministic by seed: random genomes of distinct composition
and reads (or contigs) sampled from them, for testing composition-based binning.

Each genome is an order-``markov_order`` Markov chain over ACGT: a GC content drawn per
genome and, for every context, next-base probabilities drawn from a Dirichlet centred
on that GC content. Genomes therefore differ in GC and in their oligonucleotide
preferences — the signal k-mer binning relies on — while reads of one genome vary only
by sampling. Reads come from either strand (reverse complemented with probability ½)
with independent substitution errors.
"""

from __future__ import annotations

import bisect

import numpy as np

from omicsgen.preprocessing.sequences import BASES, SequenceRecord, reverse_complement

#: header pattern that recovers the true genome of a simulated read
SOURCE_PATTERN = r"source=(\S+)"
_LETTERS = np.frombuffer(BASES.encode("ascii"), dtype=np.uint8)


def simulate_genomes(  # noqa: PLR0913
    n_genomes: int = 5,
    genome_length: int = 100_000,
    markov_order: int = 2,
    gc_range: tuple[float, float] = (0.35, 0.65),
    concentration: float = 20.0,
    seed: int = 0,
) -> dict[str, str]:
    """``{"genome_0": "ACGT…", …}``; higher ``concentration`` → genomes closer to i.i.d. bases."""
    if n_genomes < 1 or genome_length < 1 or markov_order < 0:
        raise ValueError(
            f"need n_genomes ≥ 1, genome_length ≥ 1, markov_order ≥ 0; got {n_genomes}, "
            f"{genome_length}, {markov_order}"
        )
    rng = np.random.default_rng(seed)
    n_contexts = 4**markov_order
    genomes = {}
    # GC contents spread over the range, in random order, so genomes differ in GC for sure.
    gc_values = rng.permutation(np.linspace(*gc_range, n_genomes))
    for g, gc in enumerate(gc_values):
        centre = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])  # A C G T
        transitions = rng.dirichlet(concentration * centre, size=n_contexts)
        # Plain-Python lists and bisect: this sequential loop is 20× faster than per-step numpy.
        cumulative = np.cumsum(transitions, axis=1)
        cumulative[:, -1] = 1.0
        thresholds = cumulative.tolist()
        uniforms = rng.random(genome_length).tolist()
        codes = np.empty(genome_length, dtype=np.uint8)
        codes[:markov_order] = rng.integers(0, 4, markov_order)
        context = 0
        for j in range(markov_order):
            context = context * 4 + int(codes[j])
        generated = codes.tolist()
        for i in range(markov_order, genome_length):
            base = bisect.bisect_right(thresholds[context], uniforms[i])
            generated[i] = base
            context = (context * 4 + base) % n_contexts
        codes = np.asarray(generated, dtype=np.uint8)
        genomes[f"genome_{g}"] = _LETTERS[codes].tobytes().decode("ascii")
    return genomes


def sample_reads(  # noqa: PLR0913
    genomes: dict[str, str],
    reads_per_genome: int | list[int] = 200,
    read_length: int = 1000,
    length_sd: float = 0.0,
    error_rate: float = 0.0,
    seed: int = 0,
) -> list[SequenceRecord]:
    """Reads from random positions and strands; the description records the truth.

    Headers look like ``>read_000007 source=genome_2 start=5120 strand=-``
    (:data:`SOURCE_PATTERN` recovers the genome). Reads are shuffled across genomes.
    """
    rng = np.random.default_rng(seed)
    names = list(genomes)
    counts = [reads_per_genome] * len(names) if isinstance(reads_per_genome, int) else list(reads_per_genome)
    if len(counts) != len(names):
        raise ValueError(f"reads_per_genome has {len(counts)} entries for {len(names)} genomes")
    substitution = {b: [c for c in BASES if c != b] for b in BASES}
    drawn = []
    for name, count in zip(names, counts, strict=True):
        genome = genomes[name]
        for _ in range(count):
            length = int(round(read_length + length_sd * rng.standard_normal())) if length_sd else read_length
            length = max(1, min(length, len(genome)))
            start = int(rng.integers(0, len(genome) - length + 1))
            read = genome[start : start + length]
            strand = "+"
            if rng.random() < 0.5:
                read, strand = reverse_complement(read), "-"
            if error_rate:
                errors = np.flatnonzero(rng.random(length) < error_rate)
                letters = list(read)
                for i in errors:
                    letters[i] = substitution[letters[i]][int(rng.integers(0, 3))]
                read = "".join(letters)
            drawn.append((name, start, strand, read))
    order = rng.permutation(len(drawn))
    return [
        SequenceRecord(f"read_{i:06d}", f"source={drawn[j][0]} start={drawn[j][1]} strand={drawn[j][2]}", drawn[j][3])
        for i, j in enumerate(order)
    ]


def simulate_metagenome(  # noqa: PLR0913
    n_genomes: int = 5,
    genome_length: int = 100_000,
    reads_per_genome: int | list[int] = 200,
    read_length: int = 1000,
    length_sd: float = 0.0,
    error_rate: float = 0.0,
    markov_order: int = 2,
    gc_range: tuple[float, float] = (0.35, 0.65),
    concentration: float = 20.0,
    seed: int = 0,
) -> list[SequenceRecord]:
    """Genomes (:func:`simulate_genomes`) then reads (:func:`sample_reads`), one seed for both."""
    genome_seed, read_seed = np.random.SeedSequence(seed).spawn(2)
    genomes = simulate_genomes(
        n_genomes, genome_length, markov_order, tuple(gc_range), concentration,
        seed=int(genome_seed.generate_state(1)[0]),
    )
    return sample_reads(
        genomes, reads_per_genome, read_length, length_sd, error_rate,
        seed=int(read_seed.generate_state(1)[0]),
    )


#: How ``data/01_raw/simulated_metagenome/reads.fasta.gz`` was made (uneven abundances,
#: GC contents within 0.45–0.55, so GC alone does not separate the genomes).
SHIPPED_METAGENOME = {
    "n_genomes": 6,
    "genome_length": 60_000,
    "reads_per_genome": [400, 300, 250, 200, 150, 100],
    "read_length": 1000,
    "length_sd": 200.0,
    "error_rate": 0.02,
    "markov_order": 2,
    "gc_range": (0.45, 0.55),
    "concentration": 100.0,
    "seed": 7,
}


def main(argv: list[str] | None = None) -> None:
    """``python -m omicsgen.preprocessing.simulate_sequences OUT.fasta[.gz]``: the shipped reads."""
    import argparse
    import gzip
    from pathlib import Path

    from omicsgen.preprocessing.sequences import format_fasta

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", help="FASTA file to write (.gz for gzip)")
    args = parser.parse_args(argv)
    payload = format_fasta(simulate_metagenome(**SHIPPED_METAGENOME)).encode("ascii")
    # mtime 0: the same reads give the same bytes (as FastaDataset writes them)
    Path(args.output).write_bytes(gzip.compress(payload, mtime=0) if args.output.endswith(".gz") else payload)


if __name__ == "__main__":
    main()
