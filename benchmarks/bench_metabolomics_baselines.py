"""QC-RSC and SERRF (omicsgen.models.baselines.metabolomics) on the real metabolomics tables
at hand: median QC RSD uncorrected / in-sample / cross-validated, QC PCA distance and batch
accuracy on both scales, and the time of each fit.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_metabolomics_baselines.py [--data ../shared/data]

Each data set is read as the pipeline reads it (validate and join, drop features missing in
over half of the samples or QCs, impute half the feature minimum) — except a one-batch
table (MetNormalizer's demo), which the pipeline refuses (batch correction needs two
batches) and which is read as it is (it has no missing values); a data set that is not
there is skipped. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from omicsgen.metrics import metabolomics as metrics
from omicsgen.models.baselines.metabolomics import CORRECTIONS, cross_validated_qc_rsd
from omicsgen.preprocessing import metabolomics as pp

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"mtbls79_dims": "mtbls79_dims", "metnormalizer_lcms_demo": "metnormalizer_lcms_demo"}


def load(folder: Path):
    data, info = pd.read_csv(folder / "data.csv"), pd.read_csv(folder / "info.csv")
    if info["batch"].nunique() < 2:  # the pipeline's reader refuses one batch: drift correction only
        table = data.set_index("feature")[info["sample_id"]]
        if table.isna().any().any() or (table <= 0).any().any():
            raise SystemExit(f"{folder}: a one-batch table with missing values is not supported here")
        qc = info["class"].astype(str).str.upper().eq("QC").to_numpy()
        return table.to_numpy(float).T, qc, info["batch"].astype(str).to_numpy(), info["injection_order"].to_numpy(float)
    adata = pp.impute_half_minimum(pp.filter_features(pp.metabolomics_to_anndata(data, info)))
    values = np.asarray(adata.layers[pp.INTENSITY_LAYER], dtype=np.float64)
    if adata.uns.get(pp.INPUT_SCALE_KEY) == "log":
        values = np.exp2(values)
    obs = adata.obs
    return values, obs["is_qc"].to_numpy(bool), obs["batch"].astype(str).to_numpy(), obs["injection_order"].to_numpy(float)


def scores(values, is_qc, batches, seed=0) -> dict[str, float]:
    row = {"median QC RSD (%)": metrics.median_qc_rsd(values, is_qc)}
    logged = metrics.log_standardise(values)
    row["QC PCA distance (intensity)"] = metrics.qc_pca_distance(values, is_qc)
    row["QC PCA distance (log-std)"] = metrics.qc_pca_distance(logged, is_qc)
    if len(set(batches)) > 1:
        row["batch acc. (intensity)"] = metrics.batch_accuracy(values, batches, seed=seed)
        row["batch acc. (log-std)"] = metrics.batch_accuracy(logged, batches, seed=seed)
    return row


def markdown(table: pd.DataFrame) -> str:
    head = "| data | " + " | ".join(table.columns) + " |"
    rule = "| --- |" + " --- |" * len(table.columns)
    body = ["| " + name + " | " + " | ".join("" if pd.isna(v) else f"{v:.3f}" for v in row) + " |"
            for name, row in table.iterrows()]  # fmt: skip
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    lines = []
    for name, folder in DATASETS.items():
        path = Path(args.data) / folder
        if not (path / "data.csv").exists():
            print(f"{name}: not found under {args.data}, skipped")
            continue
        values, is_qc, batches, order = load(path)
        head = f"{name}: {values.shape[0]} samples × {values.shape[1]} features, {is_qc.sum()} QCs, {len(set(batches))} batch(es)"
        rows = {"uncorrected": {**scores(values, is_qc, batches), "seconds (fit)": 0.0}}
        for method, correct in CORRECTIONS.items():
            start = time.perf_counter()
            corrected = correct(values, is_qc, batches, order)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            cv = cross_validated_qc_rsd(method, values, is_qc, batches, order, n_folds=args.folds)
            rows[method] = {**scores(corrected, is_qc, batches), "cv median QC RSD (%)": cv["median_qc_rsd"],
                            "seconds (fit)": fit_seconds, f"seconds ({args.folds}-fold CV)": time.perf_counter() - start}  # fmt: skip
        table = pd.DataFrame(rows).T
        lines.append(f"{head}\n\n{markdown(table)}\n")
        print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
