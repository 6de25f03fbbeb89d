"""Synthetic data, deterministic by seed: for tests, and for scaling experiments.

- :func:`simulate_scrna_counts`: negative-binomial UMI counts with cell types (marker
  genes), batches (gene-wise effects and library-size shifts) and a control/stimulated
  condition whose response differs by cell type. Generated in chunks, so millions of
  cells fit in memory as a sparse matrix.
- :func:`simulate_metabolomics`: intensities (features × samples) with batch shifts,
  injection-order drift within batches, pooled QC samples, missing values and two
  biological classes, in NormAE's ``data.csv``/``info.csv`` layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def _cell_type_names(n: int) -> list[str]:
    return [f"type_{chr(ord('A') + i)}" if i < 26 else f"type_{i}" for i in range(n)]


def simulate_scrna_counts(  # noqa: PLR0913
    n_cells: int = 1000,
    n_genes: int = 500,
    n_cell_types: int = 4,
    n_batches: int = 2,
    n_markers: int = 20,
    n_response_genes: int = 30,
    batch_effect_sd: float = 0.5,
    dispersion: float = 0.2,
    mean_library_size: float = 2000.0,
    seed: int = 0,
    chunk_size: int = 50_000,
    counts_layer: str | None = "counts",
) -> ad.AnnData:
    """Simulate UMI counts (cells × genes) from a gamma-Poisson (negative binomial) model.

    log mean of gene g in cell c = base_g + marker effect(type_c, g) + batch effect(batch_c, g)
    + stimulation response(type_c, g) if c is stimulated; counts ~ NB(library_c · softmax, φ).

    The stimulation response has a shared part (all types, scaled by a per-type strength in
    [0.3, 1.5]) and a type-specific part, so a perturbation model has to transfer it.

    Returns an AnnData with integer counts in ``X`` (float32, CSR) and, unless
    ``counts_layer`` is None, a copy in ``layers[counts_layer]``;
    ``obs``: ``cell_type``, ``batch``, ``condition``; ``var``: ``marker_of`` (cell type or
    ""), ``response_gene``; ``uns["simulation"]``: the parameters and true effects.
    The result depends only on the arguments (``chunk_size`` included).
    """
    if n_markers * n_cell_types + n_response_genes > n_genes:
        raise ValueError(
            f"n_genes={n_genes} too small for {n_cell_types} types × {n_markers} markers "
            f"+ {n_response_genes} response genes"
        )
    seeds = np.random.SeedSequence(seed)
    design_seed, *chunk_seeds = seeds.spawn(1 + (n_cells + chunk_size - 1) // chunk_size)
    rng = np.random.default_rng(design_seed)
    types = _cell_type_names(n_cell_types)
    batches = [f"batch_{i}" for i in range(n_batches)]

    base = rng.normal(-1.0, 1.2, n_genes)
    genes = rng.permutation(n_genes)
    type_effect = np.zeros((n_cell_types, n_genes))
    marker_of = np.array([""] * n_genes, dtype=object)
    for t in range(n_cell_types):
        markers = genes[t * n_markers : (t + 1) * n_markers]
        type_effect[t, markers] = rng.uniform(1.5, 3.0, n_markers)
        marker_of[markers] = types[t]
    response_genes = genes[n_cell_types * n_markers : n_cell_types * n_markers + n_response_genes]
    shared_response = np.zeros(n_genes)
    shared_response[response_genes] = rng.uniform(1.0, 2.5, n_response_genes)
    type_strength = rng.uniform(0.3, 1.5, n_cell_types)
    specific_response = np.zeros((n_cell_types, n_genes))
    for t in range(n_cell_types):
        chosen = rng.choice(response_genes, size=max(1, n_response_genes // 3), replace=False)
        specific_response[t, chosen] = rng.normal(0.0, 0.8, len(chosen))
    response = type_strength[:, None] * shared_response[None, :] + specific_response
    batch_effect = rng.normal(0.0, batch_effect_sd, (n_batches, n_genes))
    batch_library = rng.uniform(0.7, 1.4, n_batches)
    type_probs = rng.dirichlet(np.full(n_cell_types, 5.0))

    blocks, obs_blocks = [], []
    for chunk_index, chunk_seed in enumerate(chunk_seeds):
        n = min(chunk_size, n_cells - chunk_index * chunk_size)
        crng = np.random.default_rng(chunk_seed)
        cell_type = crng.choice(n_cell_types, size=n, p=type_probs)
        batch = crng.integers(0, n_batches, size=n)
        stimulated = crng.random(n) < 0.5
        log_mean = base[None, :] + type_effect[cell_type] + batch_effect[batch]
        log_mean += stimulated[:, None] * response[cell_type]
        proportions = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
        proportions /= proportions.sum(axis=1, keepdims=True)
        library = mean_library_size * batch_library[batch] * crng.lognormal(0.0, 0.3, n)
        mu = proportions * library[:, None]
        rate = crng.gamma(shape=1.0 / dispersion, scale=mu * dispersion)
        counts = crng.poisson(rate).astype(np.float32)
        blocks.append(sp.csr_matrix(counts))
        obs_blocks.append(
            pd.DataFrame(
                {
                    "cell_type": np.asarray(types)[cell_type],
                    "batch": np.asarray(batches)[batch],
                    "condition": np.where(stimulated, "stimulated", "control"),
                }
            )
        )
    counts = sp.vstack(blocks, format="csr")
    obs = pd.concat(obs_blocks, ignore_index=True)
    obs.index = [f"cell_{i}" for i in range(n_cells)]
    for column in ("cell_type", "batch", "condition"):
        obs[column] = pd.Categorical(obs[column])
    var = pd.DataFrame(
        {"marker_of": marker_of.astype(str), "response_gene": np.isin(np.arange(n_genes), response_genes)},
        index=[f"gene_{i}" for i in range(n_genes)],
    )
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    if counts_layer:
        adata.layers[counts_layer] = counts.copy()
    adata.uns["simulation"] = {
        "model": "negative binomial (gamma-Poisson)",
        "seed": seed,
        "dispersion": dispersion,
        "batch_effect_sd": batch_effect_sd,
        "response_strength_by_type": dict(zip(types, type_strength.round(4).tolist(), strict=True)),
    }
    return adata


def simulate_metabolomics(  # noqa: PLR0913
    n_features: int = 200,
    n_batches: int = 3,
    samples_per_batch: int = 30,
    qc_every: int = 5,
    class_labels: tuple[str, str] = ("case", "control"),
    batch_shift_sd: float = 0.4,
    drift_sd: float = 0.3,
    class_effect: float = 0.8,
    missing_fraction: float = 0.03,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate an untargeted metabolomics run in NormAE's table format.

    Samples are injected batch after batch; within each batch a pooled QC is injected
    first and then every ``qc_every`` injections. On the log scale, intensity =
    feature level + class effect (a third of the features, QCs at the midpoint) + batch
    shift + smooth injection-order drift (feature-specific linear and quadratic terms) +
    noise. Missing values are mostly low intensities (below the detection limit) plus a
    few at random.

    Returns:
        ``(data, info)``: ``data`` has a ``feature`` column then one column per sample;
        ``info`` has ``sample_id``, ``batch``, ``class`` (``QC`` for QCs),
        ``injection_order`` and ``injection.order`` (NormAE's spelling).
    """
    rng = np.random.default_rng(seed)
    level = rng.normal(10.0, 1.5, n_features)
    effect = np.zeros(n_features)
    affected = rng.choice(n_features, size=n_features // 3, replace=False)
    effect[affected] = rng.choice([-1.0, 1.0], size=len(affected)) * class_effect
    batch_shift = rng.normal(0.0, batch_shift_sd, (n_batches, n_features))
    drift_linear = rng.normal(0.0, drift_sd, (n_batches, n_features))
    drift_quadratic = rng.normal(0.0, drift_sd / 2, (n_batches, n_features))

    rows, samples = [], []
    order = 0
    for b in range(n_batches):
        labels = rng.permutation(np.resize(class_labels, samples_per_batch))
        sequence: list[str] = []
        for i, label in enumerate(labels):
            if i % qc_every == 0:
                sequence.append("QC")
            sequence.append(str(label))
        sequence.append("QC")
        for k, label in enumerate(sequence):
            order += 1
            position = k / max(1, len(sequence) - 1) - 0.5  # -0.5 … 0.5 within the batch
            sign = 0.0 if label == "QC" else (1.0 if label == class_labels[0] else -1.0)
            log_value = (
                level
                + sign * effect / 2
                + batch_shift[b]
                + drift_linear[b] * position
                + drift_quadratic[b] * (position**2 - 1 / 12)
                + rng.normal(0.0, 0.1, n_features)
            )
            samples.append(log_value)
            rows.append(
                {
                    "sample_id": f"b{b + 1:02d}_{order:04d}_{label}",
                    "batch": b + 1,
                    "class": label,
                    "injection_order": order,
                }
            )
    log_values = np.asarray(samples)
    detection_limit = np.quantile(log_values, missing_fraction * 0.7)
    missing = (log_values < detection_limit) | (rng.random(log_values.shape) < missing_fraction * 0.3)
    intensities = np.exp(log_values)
    intensities[missing] = np.nan
    # a feature must be observed somewhere, or the table would be invalid input
    for f in np.flatnonzero(np.isnan(intensities).all(axis=0)):
        intensities[0, f] = np.exp(log_values[0, f])
    info = pd.DataFrame(rows)
    info["injection.order"] = info["injection_order"]
    data = pd.DataFrame(intensities.T, columns=info["sample_id"])
    data.insert(0, "feature", [f"feature_{i:04d}" for i in range(n_features)])
    return data, info


def write_scrna_h5ad(path: str | Path, counts_layer: str | None = None, **simulation: Any) -> ad.AnnData:
    """Simulate cells (:func:`simulate_scrna_counts` arguments) and write them as an h5ad a
    user would bring: raw counts in X and, by default, no counts layer. Returns the AnnData.

    ``python -m omicsgen.preprocessing.simulate cells.h5ad --n-cells 10000`` does the same
    from the shell.
    """
    adata = simulate_scrna_counts(**simulation, counts_layer=counts_layer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path, compression="gzip")
    return adata


def write_metabolomics_csv(data: pd.DataFrame, info: pd.DataFrame, directory: str | Path) -> None:
    """Write a simulated (or any) table pair as ``data.csv`` and ``info.csv``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data.to_csv(directory / "data.csv", index=False)
    info.to_csv(directory / "info.csv", index=False)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write simulated scRNA-seq counts (counts in X) as h5ad.")
    parser.add_argument("path")
    parser.add_argument("--n-cells", type=int, default=10_000)
    parser.add_argument("--n-genes", type=int, default=2_000)
    parser.add_argument("--n-cell-types", type=int, default=5)
    parser.add_argument("--n-batches", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--counts-layer", default=None, help="also keep the counts in this layer")
    args = parser.parse_args(argv)
    adata = write_scrna_h5ad(
        args.path, counts_layer=args.counts_layer, n_cells=args.n_cells, n_genes=args.n_genes,
        n_cell_types=args.n_cell_types, n_batches=args.n_batches, seed=args.seed,
    )  # fmt: skip
    print(f"wrote {args.path}: {adata.n_obs:,} cells × {adata.n_vars:,} genes")


if __name__ == "__main__":
    main()
