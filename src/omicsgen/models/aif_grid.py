"""AIF grid search and robust grid search, every training a Dask distributed task.

A grid is a mapping parameter → list of values over the fields of :class:`AIF`'s
``model``, ``plan`` and ``training`` sections (loss weights, lr, batch_size, …); each
value goes to the section whose dataclass has that field. The robust grid search trains
each setting with several seeds. Every (setting, seed) is one task: :func:`grid_point`
catches its own errors, so a failing point becomes a row with its error message instead of
sinking the others.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.models.base import ConfigSection

SECTIONS = ("model", "plan", "training")


@dataclass
class GridSearchConfig(ConfigSection):
    """The ``grid_search`` section.

    Attributes:
        grid: Parameter → values, trained with the training seed only.
        robust: Parameter → values, each setting trained with every seed of ``robust_seeds``.
        robust_seeds: Seeds of the robust grid search (the paper: 10).
        score: scIB metrics per point (needed for ``select_by: metric_Total``).
        select_by: ``train_loss`` (the paper's criterion) or ``metric_Total``.
        scheduler_address: A Dask scheduler (e.g. ``tcp://10.0.0.5:8786``); None starts a
            ``LocalCluster`` of ``n_workers`` processes.
        n_workers: LocalCluster workers.
    """

    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    robust: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    robust_seeds: Sequence[int] = ()
    score: bool = True
    select_by: str = "train_loss"
    scheduler_address: str | None = None
    n_workers: int = 2


def expand_grid(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Cartesian product of the grid × seeds; each point has ``setting`` (its index) and ``seed``."""
    names = sorted(grid)
    points = []
    for setting, values in enumerate(itertools.product(*(grid[n] for n in names))):
        for seed in seeds:
            points.append({"setting": setting, "seed": int(seed), "params": dict(zip(names, values, strict=True))})
    return points


def _section_fields() -> dict[str, tuple[str, Any]]:
    """Field name → (section, default) over AIF's three section dataclasses."""
    from omicsgen.models.aif import AIF

    owners: dict[str, tuple[str, Any]] = {}
    for section, config in zip(SECTIONS, (AIF.ModelConfig, AIF.PlanConfig, AIF.TrainingConfig), strict=True):
        for f in fields(config):
            owners[f.name] = (section, f.default)
    return owners


def split_point_params(
    params: Mapping[str, Any], sections: Mapping[str, Mapping[str, Any]], seed: int
) -> dict[str, dict[str, Any]]:
    """AIF's ``model``/``plan``/``training`` sections overridden by a grid point's values
    (each in the section that has the field) and its seed."""
    owners = _section_fields()
    unknown = sorted(set(params) - set(owners))
    if unknown:
        raise ValueError(f"aif grid: unknown parameter(s) {unknown}; known: {sorted(owners)}")
    out = {name: dict(sections.get(name) or {}) for name in SECTIONS}
    for key, value in params.items():
        section, default = owners[key]
        # Integer fields come back as floats from a table with missing values.
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[section][key] = value
    out["training"]["seed"] = int(seed)
    return out


def grid_point(
    adata: ad.AnnData,
    point: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    correction: Mapping[str, Any],
    cell_type_key: str | None,
    score: bool,
) -> dict[str, Any]:
    """Train + correct one grid point on ``adata`` (registered with ``AIF.setup_anndata``);
    return a flat result row (never raises)."""
    row: dict[str, Any] = {
        "setting": point["setting"],
        "seed": point["seed"],
        **{f"param_{k}": v for k, v in point["params"].items()},
    }
    start = time.perf_counter()
    try:
        from omicsgen.metrics.integration import scib_scores
        from omicsgen.models.aif import AIF, LOSS_NAMES
        from omicsgen.models.baselines.integration import uncorrected_pca

        model = AIF(adata, **split_point_params(point["params"], sections, point["seed"]))
        result = model.train()
        corrected = model.correct(**correction)
        last = result.history[-1]
        row.update(
            epochs_run=result.epochs_run,
            train_loss=last["train_loss"],
            validation_loss=last.get("validation_loss", np.nan),
            **{f"train_{k}": last[f"train_{k}"] for k in LOSS_NAMES},
        )
        if score and cell_type_key is not None:
            batch_key = model.setup.batch_key
            pre = uncorrected_pca(adata, batch_key, cell_type_key)
            scores = scib_scores(adata.obs, {"aif": corrected.obsm[AIF.latent_key]}, batch_key, cell_type_key, pre)
            row.update({f"metric_{k}": float(v) for k, v in scores.loc["aif"].items()})
        row["status"], row["error"] = "ok", ""
    except Exception as error:  # noqa: BLE001 — a failed point is data, reported in the table
        row["status"] = "failed"
        row["error"] = f"{type(error).__name__}: {error}"
        row["traceback"] = traceback.format_exc(limit=5)
    row["seconds"] = time.perf_counter() - start
    return row


def run_grid(  # noqa: PLR0913
    adata: ad.AnnData,
    points: Sequence[Mapping[str, Any]],
    sections: Mapping[str, Mapping[str, Any]],
    correction: Mapping[str, Any],
    cell_type_key: str | None,
    score: bool = True,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
) -> pd.DataFrame:
    """Every point a task on Dask: a fresh ``LocalCluster`` or the cluster at ``scheduler_address``.

    ``adata`` is registered with ``AIF.setup_anndata``; ``sections`` are AIF's ``model``,
    ``plan``, ``training``; ``correction`` the keyword arguments of :meth:`AIF.correct`.
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
                grid_point, shared, dict(point), {k: dict(v) for k, v in sections.items()}, dict(correction),
                cell_type_key, score, pure=False, key=f"aif-grid-{point['setting']}-{point['seed']}",
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
