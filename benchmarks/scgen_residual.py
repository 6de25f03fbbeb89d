"""scGen's two prediction rules on the same trained model: decoded (the paper's
``decode(z + delta)``) vs residual (the default, ``x + decode(z + delta) − decode(z)``).

For each held-out type: train ScGen with the pipeline's training defaults (40 epochs at
most, patience 10 on the model input's validation split, seed 0) on every cell but that
type's stimulated ones, predict its control cells both ways, and score both against its
real stimulated cells with omicsgen.metrics.perturbation: R² of per-gene means (top-100
DEGs, all genes), R² of variances (top-100), Pearson Δ (top-100, all) and the energy
distance in a 50-PC space of the real cells. ``--input`` is a perturbation model input
(obs condition = control / stimulated, cell_type, split), as the data-engineering pipeline
writes it.

    python benchmarks/scgen_residual.py --input data/05_model_input/kang/model_input.h5ad \\
        --holdout "CD4T;CD14+Mono;B;NK" --json benchmarks/results/scgen_residual_kang.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import torch

from omicsgen.metrics.perturbation import (
    evaluation_space,
    perturbation_scores,
    response_scores,
    top_degs,
)
from omicsgen.models import ScGen

KEYS = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}


def scores_of(model: ScGen, adata: ad.AnnData, cell_type: str) -> dict[str, dict[str, float]]:
    of_type = (adata.obs["cell_type"].astype(str) == cell_type).to_numpy()
    control = adata[of_type & (adata.obs["condition"] == "control").to_numpy()]
    real = adata[of_type & (adata.obs["condition"] == "stimulated").to_numpy()]
    degs = top_degs(adata, cell_type, 100, "condition", "control", "stimulated", "cell_type")
    space = evaluation_space(control, real)
    rows = {}
    for rule, residual in (("decoded", False), ("residual", True)):
        predicted = model.predict(control, residual=residual)
        r2 = perturbation_scores(predicted, real, degs, n_draws=20)
        response = response_scores(predicted, control, real, degs, space=space)
        rows[rule] = {
            "r2_mean_top100": r2["r2_mean_top100"]["full"], "r2_mean_all": r2["r2_mean_all"]["full"],
            "r2_variance_top100": r2["r2_variance_top100"]["full"],
            "pearson_delta_top100": response["pearson_delta_top100"], "pearson_delta_all": response["pearson_delta_all"],
            "energy_distance": response["energy_distance"],
        }  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True)
    parser.add_argument("--holdout", required=True, help="';'-separated cell types")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adata = ad.read_h5ad(args.input)
    results = {}
    for cell_type in args.holdout.split(";"):
        held = (adata.obs["cell_type"].astype(str) == cell_type) & (adata.obs["condition"] == "stimulated")
        train = adata[~held.to_numpy()].copy()
        ScGen.setup_anndata(train, **KEYS, split_key="split")
        model = ScGen(train, training={"max_epochs": 40, "patience": 10, "batch_size": 32, "seed": 0,
                                       "device": "cpu", "progress": False})
        start = time.perf_counter()
        model.train()
        results[cell_type] = scores_of(model, adata, cell_type)
        print(cell_type, f"{time.perf_counter() - start:.0f} s", json.dumps(
            {rule: {k: round(v, 4) for k, v in row.items()} for rule, row in results[cell_type].items()}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
