"""AIF settings side by side on one model input: each variant trains the conf/base preset
with the variant's model/plan/training/correction values on top, corrects every cell, and
all are scored together by scib-metrics (unscaled; PCR against the uncorrected PCA-50;
exact kNN), both as the pipeline scores AIF (PCA-50 of the corrected expression) and on
the latent code (``<variant>_latent``). One thread.

The model inputs are data-engineering outputs: ``kedro run --to-outputs=pbmc_batches.model_input``
for the shipped data, or a generalisation run's project copy for the others.

    python benchmarks/aif_settings.py data/05_model_input/pbmc_batches/model_input.h5ad batch cell_type \\
        '{"30 epochs": {"training": {"max_epochs": 30}}, "default": {}}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anndata as ad
import torch
import yaml

from omicsgen.metrics.integration import pca_embedding, scib_scores
from omicsgen.models.aif import AIF

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("model", "plan", "training", "correction")


def main() -> None:
    path, batch_key, cell_type_key, variants = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    torch.set_num_threads(1)
    preset = yaml.safe_load((ROOT / "conf/base/parameters/aif.yml").read_text())["aif"]
    cells = ad.read_h5ad(path)
    uncorrected = pca_embedding(cells.X, 50, 0)
    embeddings = {"uncorrected": uncorrected}
    for name, variant in variants.items():
        adata = cells.copy()
        AIF.setup_anndata(adata, batch_key=batch_key, layer=None)
        sections = {key: {**preset[key], **variant.get(key, {})} for key in SECTIONS}
        sections["training"]["device"] = "cpu"
        start = time.perf_counter()
        model = AIF(adata, **{key: sections[key] for key in ("model", "plan", "training")})
        model.train()
        corrected = model.correct(adata, batch_key=batch_key, **sections["correction"])
        embeddings[name] = pca_embedding(corrected.layers["aif_corrected"], 50, 0)
        embeddings[f"{name}_latent"] = corrected.obsm["X_aif"]
        print(f"{name}: trained and corrected in {time.perf_counter() - start:.0f} s", flush=True)
    scores = scib_scores(cells.obs, embeddings, batch_key, cell_type_key, uncorrected, neighbors="exact")
    print(scores[["Batch correction", "Bio conservation", "Total", "KMeans ARI"]].round(3).to_string())


if __name__ == "__main__":
    main()
