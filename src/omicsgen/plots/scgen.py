"""scGen figures: predicted vs real mean expression, strongest-DEG violins, training curves.

Each function returns a matplotlib Figure with one panel per held-out cell type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _panels(n: int, width: float = 4.0, height: float = 3.6):
    columns = min(n, 4)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def mean_expression_scatter(
    panels: Sequence[Mapping[str, Any]], n_labels: int = 10
) -> plt.Figure:
    """Per panel: ``title``, ``real`` and ``predicted`` per-gene means, ``genes``, ``degs``
    (highlighted, the first ``n_labels`` labelled), ``r2_all`` and ``r2_top``."""
    fig, axes = _panels(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        real, predicted = np.asarray(panel["real"]), np.asarray(panel["predicted"])
        genes = list(panel["genes"])
        deg_index = [genes.index(g) for g in panel["degs"]]
        ax.scatter(real, predicted, s=4, c="0.6", alpha=0.6, linewidths=0, label="all genes")
        ax.scatter(real[deg_index], predicted[deg_index], s=10, c="tab:red", label="top DEGs")
        for i in deg_index[:n_labels]:
            ax.annotate(genes[i], (real[i], predicted[i]), fontsize=7, xytext=(2, 2), textcoords="offset points")
        limit = float(max(real.max(), predicted.max())) * 1.05
        ax.plot([0, limit], [0, limit], "k--", lw=0.8)
        ax.set(
            xlabel="real stimulated: mean expression", ylabel="predicted: mean expression",
            title=f"{panel['title']}\nR² all {panel['r2_all']:.3f} · top DEGs {panel['r2_top']:.3f}",
        )
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def deg_violins(panels: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """Per panel: ``title``, ``gene`` and ``groups`` (name → expression values)."""
    fig, axes = _panels(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        names = list(panel["groups"])
        values = [np.asarray(panel["groups"][n], dtype=float) for n in names]
        ax.violinplot(values, showmedians=True)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set(ylabel=f"{panel['gene']} (log-normalised)", title=f"{panel['title']}: {panel['gene']}")
    fig.tight_layout()
    return fig
