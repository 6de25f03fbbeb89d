"""Seeded subsamples that keep scoring bounded on large data.

Scores whose cost grows faster than the cells (kNN graphs, pairwise distances, classifiers
cross-validated on every cell) run on at most a documented number of cells; the caller
records in ``metrics.json`` that it did.
"""

from __future__ import annotations

import numpy as np


def rng_choice(members: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """``members``, or a seeded subsample of ``limit`` of them."""
    if len(members) <= limit:
        return members
    return np.random.default_rng(seed).choice(members, limit, replace=False)


def stratified_subsample(labels, max_cells: int | None, seed: int = 0, min_per_label: int = 10) -> np.ndarray:
    """Sorted row indices of at most about ``max_cells`` rows, each label in proportion.

    Every label keeps at least ``min(its rows, min_per_label)`` rows, so a rare cell type or
    batch is still there to be scored (the total can exceed ``max_cells`` by those few).
    ``max_cells=None`` or more than the rows: every row.
    """
    labels = np.asarray(labels).astype(str)
    if max_cells is None or len(labels) <= max_cells:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    fraction = max_cells / len(labels)
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = min(len(members), max(int(len(members) * fraction), min_per_label))
        kept.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(kept))


def subsample_note(n_rows: int, kept: np.ndarray, max_cells: int | None, parameter: str) -> dict | None:
    """What ``metrics.json`` says when scoring used a subsample (None when it did not)."""
    if len(kept) >= n_rows:
        return None
    return {"cells": int(len(kept)), "of": int(n_rows), "max_cells": max_cells, "parameter": parameter}
