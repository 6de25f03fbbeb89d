"""Training curves of any method: one column per trained model, one row per metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SPLITS = ("train", "validation")
NOT_METRICS = {"epoch", "phase", "phase_epoch", "seconds", "cpu_seconds"}


def metric_names(history: Sequence[Mapping[str, float]]) -> list[str]:
    """The metrics a history logged, without their ``train_``/``validation_`` prefix."""
    names: list[str] = []
    for key in history[0] if history else ():
        name = key.split("_", 1)[1] if key.split("_", 1)[0] in SPLITS else key
        if key not in NOT_METRICS and name not in names:
            names.append(name)
    return names


def training_curves(  # noqa: PLR0913
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    metrics: Sequence[str] | None = None,
    *,
    steps_per_epoch: int = 1,
    x_label: str = "epoch",
    log_scale: bool = False,
    title: str | None = None,
) -> plt.Figure:
    """Train and validation curves per epoch (× ``steps_per_epoch`` on the x axis).

    ``histories`` maps a run's name (a held-out type, a model) to its per-epoch rows
    (``TrainingResult.history``); ``metrics`` defaults to everything the first run logged.
    Rows with a ``phase`` (NormAE's three phases) get the phases shaded.
    """
    metrics = list(metrics or metric_names(next(iter(histories.values()))))
    # several runs: a column each, a row per metric; one run: its metrics wrapped in rows of 3
    n_cols = len(histories) if len(histories) > 1 else min(3, len(metrics))
    n_rows = len(metrics) if len(histories) > 1 else -(-len(metrics) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 2.8 * n_rows), squeeze=False)
    panels = iter(axes.T.flat if len(histories) > 1 else axes.flat)
    for run, history in histories.items():
        x = np.array([row["epoch"] for row in history]) * steps_per_epoch
        phases = [row.get("phase") for row in history]
        for metric in metrics:
            ax = next(panels)
            for key, label in ((f"train_{metric}", "train"), (f"validation_{metric}", "validation"), (metric, None)):
                values = [row.get(key, np.nan) for row in history]
                if any(v is not None and np.isfinite(v) for v in values):
                    ax.plot(x, values, label=label, linewidth=1)
            for index, phase in enumerate(dict.fromkeys(p for p in phases if p)):
                inside = x[[p == phase for p in phases]]
                ax.axvspan(inside.min() - 0.5, inside.max() + 0.5, color=f"C{index}", alpha=0.08, label=phase)
            ax.set_title(f"{run}: {metric}", fontsize=9)
            ax.set_xlabel(x_label, fontsize=8)
            if log_scale:
                ax.set_yscale("log")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False)
    for ax in panels:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96) if title else None)
    return fig
