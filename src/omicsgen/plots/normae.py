"""NormAE figures (matplotlib, Agg backend): PCA by batch with QCs highlighted, QC RSD
distributions, and the training curves of the three phases."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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
