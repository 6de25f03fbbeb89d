"""Clustering quality against known labels: ARI, NMI, silhouette, per-bin precision/recall."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score


def _as_str(labels: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    return np.asarray(pd.Series(labels).astype(str))


def agreement(truth: Sequence, clusters: Sequence, noise_label: str | None = "noise") -> dict[str, Any]:
    """ARI and NMI of ``clusters`` vs ``truth`` over all samples.

    Noise (HDBSCAN's unclustered samples) counts as one more cluster, so leaving samples
    unclustered is penalised, not hidden; its fraction is reported as well.
    """
    truth, clusters = _as_str(truth), _as_str(clusters)
    noise = float(np.mean(clusters == noise_label)) if noise_label is not None else 0.0
    n_clusters = len(set(clusters) - ({noise_label} if noise_label is not None else set()))
    return {
        "ari": float(adjusted_rand_score(truth, clusters)),
        "nmi": float(normalized_mutual_info_score(truth, clusters)),
        "n_clusters": n_clusters,
        "noise_fraction": noise,
    }


def label_silhouette(embedding: np.ndarray, labels: Sequence, seed: int = 0, max_samples: int = 5000) -> float:
    """Mean silhouette width of the known labels in an embedding (Euclidean), in [-1, 1]."""
    labels = _as_str(labels)
    if len(set(labels)) < 2:
        raise ValueError("silhouette needs at least 2 distinct labels")
    sample = min(max_samples, len(labels))
    return float(silhouette_score(embedding, labels, sample_size=sample, random_state=seed))


def bin_purity(truth: Sequence, bins: Sequence, noise_label: str | None = "noise") -> dict[str, Any]:
    """Per-bin precision and recall of predicted bins against true sources (genomes).

    Each bin is matched to the source most of its members come from: precision is the
    fraction of the bin from that source, recall the fraction of that source's samples
    in the bin (over all samples, unbinned ones included). Noise is not a bin.

    Returns:
        ``{"bins": [{bin, source, size, precision, recall}], "mean_precision",
        "mean_recall", "weighted_precision", "binned_fraction", "sources_recovered"}``
        where a source is recovered when some bin has precision ≥ 0.9 and recall ≥ 0.5 for it.
    """
    truth, bins = _as_str(truth), _as_str(bins)
    table = pd.crosstab(pd.Series(bins, name="bin"), pd.Series(truth, name="source"))
    if noise_label is not None:
        table = table.drop(index=noise_label, errors="ignore")
    source_sizes = pd.Series(truth).value_counts()
    rows = []
    for bin_name, counts in table.iterrows():
        source = counts.idxmax()
        size = int(counts.sum())
        rows.append(
            {
                "bin": str(bin_name),
                "source": str(source),
                "size": size,
                "precision": float(counts[source] / size),
                "recall": float(counts[source] / source_sizes[source]),
            }
        )
    recovered = {r["source"] for r in rows if r["precision"] >= 0.9 and r["recall"] >= 0.5}
    sizes = np.array([r["size"] for r in rows], dtype=float)
    precisions = np.array([r["precision"] for r in rows])
    return {
        "bins": rows,
        "mean_precision": float(precisions.mean()) if rows else 0.0,
        "mean_recall": float(np.mean([r["recall"] for r in rows])) if rows else 0.0,
        "weighted_precision": float((precisions * sizes).sum() / sizes.sum()) if rows else 0.0,
        "binned_fraction": float(sizes.sum() / len(truth)),
        "sources_recovered": len(recovered),
        "n_sources": int(len(source_sizes)),
    }
