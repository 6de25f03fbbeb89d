"""Figures of the cscgan method (matplotlib, Agg backend): one function per figure kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    names = sorted(set(labels))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def umap_overlay(embedding: np.ndarray, cell_types: Sequence[str], generated: Sequence[bool]) -> plt.Figure:
    """Two panels of one UMAP of real and generated cells: by cell type, by real/generated."""
    cell_types, generated = np.asarray(cell_types, dtype=str), np.asarray(generated, dtype=bool)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    colours = _colours(cell_types)
    for name, colour in colours.items():
        for is_generated, marker in ((False, "o"), (True, "x")):
            mask = (cell_types == name) & (generated == is_generated)
            left.scatter(*embedding[mask].T, s=6, marker=marker, color=colour, alpha=0.6,
                         label=name if not is_generated else None, linewidths=0.6)
    left.set_title("by cell type (o real, x generated)")
    left.legend(markerscale=3, fontsize=8, loc="best")
    order = np.random.default_rng(0).permutation(len(embedding))  # neither set painted over the other
    palette = np.where(generated[order], "tab:red", "tab:blue")
    right.scatter(*embedding[order].T, s=5, c=palette, alpha=0.5)
    right.scatter([], [], c="tab:blue", label=f"real ({int((~generated).sum())})")
    right.scatter([], [], c="tab:red", label=f"generated ({int(generated.sum())})")
    right.legend(markerscale=3, fontsize=8)
    right.set_title("real vs generated")
    for axis in (left, right):
        axis.set_xlabel("UMAP 1")
        axis.set_ylabel("UMAP 2")
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure


def marker_violins(
    real: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], genes: Sequence[str], cell_types: Sequence[str]
) -> plt.Figure:
    """One panel per marker gene: log1p expression per cell type, real (left) vs generated (right).

    ``real``/``generated`` map a gene to a dict-like of cell type → values.
    """
    n = len(genes)
    columns = min(3, max(n, 1))
    rows = int(np.ceil(max(n, 1) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.2 * rows), squeeze=False)
    for axis, gene in zip(axes.ravel(), genes, strict=False):
        positions, data, colours = [], [], []
        for i, cell_type in enumerate(cell_types):
            for offset, source, colour in ((-0.2, real, "tab:blue"), (0.2, generated, "tab:red")):
                values = np.log1p(source[gene][cell_type])
                if len(values) > 1 and np.ptp(values) > 0:
                    positions.append(i + offset)
                    data.append(values)
                    colours.append(colour)
        if data:
            parts = axis.violinplot(data, positions=positions, widths=0.38, showmedians=True, showextrema=False)
            for body, colour in zip(parts["bodies"], colours, strict=True):
                body.set_facecolor(colour)
                body.set_alpha(0.6)
        axis.set_xticks(range(len(cell_types)))
        axis.set_xticklabels(cell_types, rotation=35, ha="right", fontsize=8)
        axis.set_title(f"{gene} (blue real, red generated)", fontsize=9)
        axis.set_ylabel("log1p(normalised)")
    for axis in axes.ravel()[n:]:
        axis.axis("off")
    figure.tight_layout()
    return figure
