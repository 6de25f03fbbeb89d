"""NormAE figures (matplotlib, Agg backend): PCA by batch with QCs highlighted, QC RSD
distributions, and the training curves of the three phases."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from omicsgen.metrics.metabolomics import pca_embedding, qc_rsd  # noqa: E402


def pca_by_batch(versions: Mapping[str, np.ndarray], batches: np.ndarray, is_qc: np.ndarray):
    """One PCA panel per version of the data; samples coloured by batch, QCs as black-edged stars."""
    categories = sorted(set(batches))
    colours = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(versions), figsize=(5 * len(versions), 4.5), squeeze=False)
    for ax, (name, values) in zip(axes[0], versions.items(), strict=True):
        scores = pca_embedding(values, 2)
        for i, batch in enumerate(categories):
            chosen = batches == batch
            colour = colours(i % colours.N)
            ax.scatter(*scores[chosen & ~is_qc].T, s=14, color=colour, alpha=0.7, label=str(batch))
            ax.scatter(*scores[chosen & is_qc].T, s=70, marker="*", color=colour, edgecolors="black", linewidths=0.6)
        ax.set_title(name)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    axes[0][-1].legend(title="batch (★ = QC)", fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def qc_rsd_distribution(versions: Mapping[str, np.ndarray], is_qc: np.ndarray, input_scale: str = "intensity"):
    """Histogram of per-feature QC RSD (%) for each version, medians marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rsds = {name: qc_rsd(values, is_qc, input_scale) for name, values in versions.items()}
    finite = np.concatenate([r[np.isfinite(r)] for r in rsds.values()])
    bins = np.linspace(0, np.quantile(finite, 0.99), 60)
    for i, (name, rsd) in enumerate(rsds.items()):
        rsd = rsd[np.isfinite(rsd)]
        ax.hist(rsd, bins=bins, histtype="step", linewidth=1.5, color=f"C{i}", label=f"{name} (median {np.median(rsd):.1f}%)")
        ax.axvline(np.median(rsd), color=f"C{i}", linestyle="--", linewidth=1)
    ax.set_xlabel("RSD across QC samples (%)")
    ax.set_ylabel("features")
    ax.legend()
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame):
    """Losses per global epoch, one panel per logged quantity, phases shaded."""
    skip = {"epoch", "phase", "phase_epoch", "seconds"}
    columns = [c for c in history.columns if c not in skip and history[c].notna().any()]
    n_cols = 3
    n_rows = max(1, -(-len(columns) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5 * n_cols, 3.2 * n_rows), squeeze=False)
    bounds = history.groupby("phase", sort=False)["epoch"].agg(["min", "max"])
    for ax, column in zip(axes.flat, columns, strict=False):
        ax.plot(history["epoch"], history[column], linewidth=1)
        for i, (_, (low, high)) in enumerate(bounds.iterrows()):
            ax.axvspan(low - 0.5, high + 0.5, color=f"C{i}", alpha=0.08)
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("epoch")
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.suptitle("NormAE training (shading: " + " → ".join(bounds.index) + ")", fontsize=10)
    fig.tight_layout()
    return fig
