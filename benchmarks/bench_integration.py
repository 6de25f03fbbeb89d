"""AIF vs ComBat, Harmony and scVI on the shipped PBMC chemistries: scIB metrics + wall time.

Every method sees the same preprocessed cells (``pbmc_batches.model_input``, written by
``kedro run --pipelines aif`` or the data-engineering pipeline). scIB metrics come from
scib-metrics' Benchmarker, unscaled, PCR against the uncorrected PCA-50; classical methods
are scored on PCA-50, scVI on its 30-d latent, AIF on its latent (``embedding: latent``).

scVI is a benchmark-only peer: it runs in a subprocess of a separate venv (default
``/work/venv-aif-bench``, with scvi-tools installed against the same torch 2.13.0 CPU
wheel) so the runtime environment never sees scvi-tools.

    PYTHONPATH=src python benchmarks/bench_integration.py [--aif-params conf/base/parameters/aif.yml]
        [--scvi-python /work/venv-aif-bench/bin/python] [--out benchmarks/results/aif_integration.csv]

``--scvi-worker IN OUT`` is the subprocess entry point (reads counts, writes the latent).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_INPUT = ROOT / "data" / "05_model_input" / "pbmc_batches" / "model_input.h5ad"


def scvi_worker(source: str, destination: str, seed: int, max_epochs: int) -> None:
    """Runs inside the scvi-tools venv: train scVI (30 latent dims) on raw counts."""
    import anndata as ad
    import scvi

    scvi.settings.seed = seed
    adata = ad.read_h5ad(source)
    scvi.model.SCVI.setup_anndata(adata, batch_key="batch")  # X holds the raw counts
    model = scvi.model.SCVI(adata, n_latent=30)
    start = time.perf_counter()
    model.train(max_epochs=max_epochs, accelerator="cpu", enable_progress_bar=False)
    latent = model.get_latent_representation()
    np.savez(destination, latent=latent, seconds=time.perf_counter() - start)


def run_scvi(adata, python: str, seed: int, max_epochs: int | None) -> tuple[np.ndarray, float]:
    import anndata as ad

    epochs = max_epochs or min(400, round(20000 / adata.n_obs * 20))  # scvi-tools' default rule, capped
    with tempfile.TemporaryDirectory() as tmp:
        source, destination = Path(tmp) / "in.h5ad", Path(tmp) / "out.npz"
        ad.AnnData(adata.layers["counts"], obs=adata.obs[["batch"]].astype(str)).write_h5ad(source)
        start = time.perf_counter()
        subprocess.run(
            [python, __file__, "--scvi-worker", str(source), str(destination), "--seed", str(seed),
             "--scvi-epochs", str(epochs)],
            check=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        result = np.load(destination)
        return result["latent"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(MODEL_INPUT))
    parser.add_argument("--aif-params", default=str(ROOT / "conf" / "base" / "parameters" / "aif.yml"))
    parser.add_argument("--aif-override", default="{}", help="JSON merged into aif.model / plan / training / "
                        'correction, e.g. \'{"plan": {"gamma": 5}, "training": {"max_epochs": 60}}\'')  # fmt: skip
    parser.add_argument("--scvi-python", default="/work/venv-aif-bench/bin/python")
    parser.add_argument("--scvi-epochs", type=int, default=None)
    parser.add_argument("--skip-scvi", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "aif_integration.csv"))
    parser.add_argument("--scvi-worker", nargs=2, metavar=("IN", "OUT"))
    args = parser.parse_args()
    if args.scvi_worker:
        scvi_worker(*args.scvi_worker, seed=args.seed, max_epochs=args.scvi_epochs)
        return

    import anndata as ad
    import pandas as pd
    import yaml

    from omicsgen.metrics.integration import pca_embedding, scib_scores
    from omicsgen.models import AIF
    from omicsgen.models.baselines.integration import BASELINES

    params = yaml.safe_load(Path(args.aif_params).read_text())["aif"]
    override = json.loads(args.aif_override)
    for section in ("model", "plan", "training", "correction"):
        params[section] = {**params.get(section, {}), **override.get(section, {})}
    adata = ad.read_h5ad(args.data)
    embeddings, seconds = {}, {}
    for name in ("uncorrected", "combat", "harmony"):
        start = time.perf_counter()
        embeddings[name] = BASELINES[name](adata, "batch", "cell_type", n_pcs=50, seed=args.seed)
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {seconds[name]:.1f} s", flush=True)

    start = time.perf_counter()
    registered = adata.copy()
    AIF.setup_anndata(registered, batch_key="batch", layer=params.get("layer"))
    training = {**params["training"], "seed": args.seed, "progress": False}
    model = AIF(registered, model=params["model"], plan=params["plan"], training=training)
    result = model.train()
    corrected = model.correct(**params["correction"])
    if params.get("embedding", "latent") == "corrected_pca":  # as the pipeline scores it
        embeddings["aif"] = pca_embedding(corrected.layers["aif_corrected"], 50, args.seed)
    else:
        embeddings["aif"] = corrected.obsm["X_aif"]
    seconds["aif"] = time.perf_counter() - start
    print(f"aif: {seconds['aif']:.1f} s ({result.epochs_run} epochs)", flush=True)

    if not args.skip_scvi:
        embeddings["scvi"], seconds["scvi"] = run_scvi(adata, args.scvi_python, args.seed, args.scvi_epochs)
        print(f"scvi: {seconds['scvi']:.1f} s (subprocess)", flush=True)

    scores = scib_scores(adata.obs, embeddings, "batch", "cell_type", embeddings["uncorrected"])
    scores["wall_seconds"] = pd.Series(seconds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out)
    print(scores[["Batch correction", "Bio conservation", "Total", "KMeans ARI", "wall_seconds"]].round(3).to_string())
    print(json.dumps({"aif_" + section: params[section] for section in ("model", "plan", "training", "correction")}))


if __name__ == "__main__":
    sys.exit(main())
