"""AIF grid search and robust grid search, every training a Dask distributed task.

A grid is a mapping parameter → list of values over :class:`~omicsgen.models.aif.AIFConfig`
fields (loss weights, lr, …) and the training fields ``batch_size`` / ``max_epochs``.
The robust grid search trains each setting with several seeds. Every (setting, seed) is
one task: :func:`grid_point` catches its own errors, so a failing point becomes a row
with its error message instead of sinking the others.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

TRAINING_KEYS = ("batch_size", "max_epochs", "patience")


def expand_grid(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Cartesian product of the grid × seeds; each point has ``setting`` (its index) and ``seed``."""
    names = sorted(grid)
    points = []
    for setting, values in enumerate(itertools.product(*(grid[n] for n in names))):
        for seed in seeds:
            points.append({"setting": setting, "seed": int(seed), "params": dict(zip(names, values, strict=True))})
    return points


def split_point_params(
    params: Mapping[str, Any], model: Mapping[str, Any], training: Mapping[str, Any], seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Base model/training parameters overridden by a grid point's values."""
    model = {**model, **{k: v for k, v in params.items() if k not in TRAINING_KEYS}}
    # Integer training fields come back as floats from a table with missing values.
    training = {**training, **{k: int(v) for k, v in params.items() if k in TRAINING_KEYS}, "seed": seed}
    return model, training


def grid_point(
    adata: ad.AnnData,
    point: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    batch_key: str,
    cell_type_key: str | None,
    reference_batch: str | None,
    n_samples: int,
    score: bool,
) -> dict[str, Any]:
    """Train + correct one grid point; return a flat result row (never raises)."""
    row: dict[str, Any] = {
        "setting": point["setting"],
        "seed": point["seed"],
        **{f"param_{k}": v for k, v in point["params"].items()},
    }
    start = time.perf_counter()
    try:
        from omicsgen.metrics.integration import scib_scores, uncorrected_pca
        from omicsgen.models.aif import LOSS_NAMES, train_and_correct

        model_params, training_params = split_point_params(point["params"], model, training, point["seed"])
        _, result, corrected, _ = train_and_correct(
            adata, batch_key, model_params, training_params, reference_batch, n_samples
        )
        last = result.history[-1]
        row.update(
            epochs_run=result.epochs_run,
            train_loss=last["train_loss"],
            validation_loss=last.get("validation_loss", np.nan),
            **{f"train_{k}": last[f"train_{k}"] for k in LOSS_NAMES},
        )
        if score and cell_type_key is not None:
            pre = uncorrected_pca(adata, batch_key, cell_type_key)
            scores = scib_scores(adata.obs, {"aif": corrected.obsm["X_aif"]}, batch_key, cell_type_key, pre)
            row.update({f"metric_{k}": float(v) for k, v in scores.loc["aif"].items()})
        row["status"], row["error"] = "ok", ""
    except Exception as error:  # noqa: BLE001 — a failed point is data, reported in the table
        row["status"] = "failed"
        row["error"] = f"{type(error).__name__}: {error}"
        row["traceback"] = traceback.format_exc(limit=5)
    row["seconds"] = time.perf_counter() - start
    return row


def run_grid(
    adata: ad.AnnData,
    points: Sequence[Mapping[str, Any]],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    batch_key: str,
    cell_type_key: str | None,
    reference_batch: str | None = None,
    n_samples: int = 20,
    score: bool = True,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
) -> pd.DataFrame:
    """Every point a task on Dask: a fresh ``LocalCluster`` or the cluster at ``scheduler_address``.

    Workers import omicsgen; a LocalCluster's worker processes inherit this process's
    environment (PYTHONPATH included), a real cluster needs omicsgen installed on its workers.
    """
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler_address:
        client = Client(scheduler_address)
    else:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        shared = client.scatter(adata, broadcast=True)
        futures = [
            client.submit(
                grid_point, shared, dict(point), dict(model), dict(training), batch_key, cell_type_key,
                reference_batch, n_samples, score, pure=False, key=f"aif-grid-{point['setting']}-{point['seed']}",
            )  # fmt: skip
            for point in points
        ]
        rows = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    table = pd.DataFrame(rows).sort_values(["setting", "seed"]).reset_index(drop=True)
    if "traceback" not in table:
        table["traceback"] = ""
    return table


def select_best(table: pd.DataFrame, by: str = "train_loss") -> dict[str, Any]:
    """Best setting over its seeds' median: lowest training loss, or highest scIB total.

    ``by``: ``train_loss`` (the paper's criterion) or ``metric_Total`` (integration score).
    Returns the setting, its parameters, the seed of its best run and the medians.
    """
    ok = table[table["status"] == "ok"]
    if ok.empty:
        errors = "; ".join(table["error"].astype(str).unique()[:3])
        raise RuntimeError(f"every grid point failed: {errors}")
    if by not in ok.columns:
        raise ValueError(f"cannot select by '{by}': not in the grid table (columns {sorted(ok.columns)})")
    lower_is_better = by.endswith("loss")
    medians = ok.groupby("setting")[by].median()
    setting = _plain(medians.idxmin() if lower_is_better else medians.idxmax())
    runs = ok[ok["setting"] == setting]
    best_run = runs.loc[runs[by].idxmin() if lower_is_better else runs[by].idxmax()]
    # A column that only the other search varies is NaN here: not a parameter of this setting.
    params = {
        c.removeprefix("param_"): _plain(best_run[c])
        for c in runs.columns
        if c.startswith("param_") and not pd.isna(best_run[c])
    }
    return {
        "selected_by": by,
        "setting": setting,
        "seed": int(best_run["seed"]),
        "params": params,
        "median": float(medians.loc[setting]),
        "n_runs": int(len(runs)),
        "n_failed": int((table["status"] != "ok").sum()),
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
