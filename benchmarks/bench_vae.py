"""VAE vs PCA(50) clustering of Kang PBMCs over seeds, with the pipeline's own node functions.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_vae.py --seeds 0 1 2

Needs ``data/05_model_input/kang/model_input.h5ad`` (``kedro run --pipelines vae`` or the
``kang`` data engineering makes it). Uses ``conf/base/parameters/vae.yml``; prints one
JSON line per seed and clustering setting: ARI/NMI of Leiden and HDBSCAN vs cell types
and the silhouette of cell types, for the VAE latent and for PCA, plus the training time.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import yaml

from omicsgen.datasets import AnnDataDataset
from omicsgen.pipelines.modelling.vae import nodes
from omicsgen.pipelines.reporting.vae.nodes import clustering_metrics

ROOT = Path(__file__).resolve().parents[1]


def summary(metrics: dict) -> dict:
    out = {}
    for name in ("vae", "pca"):
        scores = metrics[name]
        out[name] = {
            "leiden_ari": round(scores["leiden"]["ari"], 3),
            "leiden_nmi": round(scores["leiden"]["nmi"], 3),
            "leiden_clusters": scores["leiden"]["n_clusters"],
            "leiden_resolution": scores["leiden"].get("resolution"),
            "hdbscan_ari": round(scores["hdbscan"]["ari"], 3),
            "hdbscan_noise": round(scores["hdbscan"]["noise_fraction"], 3),
            "silhouette": round(scores["silhouette"], 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--fixed-resolution", type=float, default=0.5,
                        help="also score Leiden at this one resolution for both embeddings")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "conf/base/parameters/vae.yml").read_text())["vae"]
    # the cells section as a run on kang resolves it (labels = cell types, sections complete)
    base = nodes.bind_dataset(params, {"kind": "perturbation", "keys": {"cell_type": "cell_type"}})
    cells = nodes.choose_cells(
        AnnDataDataset(filepath=str(ROOT / "data/05_model_input/kang/model_input.h5ad")).load(), base
    )
    for seed in args.seeds:
        section = {**base, "training": {**base["training"], "seed": seed}}
        start = time.perf_counter()
        checkpoint, training = nodes.train(cells, section)
        seconds = time.perf_counter() - start
        embedded = nodes.add_pca_baseline(nodes.embed(checkpoint, cells, section), section)
        fixed = copy.deepcopy(section)
        fixed["clustering"]["leiden"]["resolution"] = args.fixed_resolution
        for label, settings in (("resolution grid (default)", section), (f"resolution {args.fixed_resolution}", fixed)):
            clustered = nodes.cluster(embedded, settings)
            row = {"seed": seed, "leiden": label, "train_seconds": round(seconds, 1),
                   "epochs": training["epochs_run"], **summary(clustering_metrics(clustered, section))}
            print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
