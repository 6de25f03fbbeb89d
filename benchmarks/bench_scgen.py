"""Benchmark: omicsgen scGen vs the reference scGen (theislab/scgen on scvi-tools 1.4).

Both train on the same cells (the ``train`` split of the Kang model input, minus the
held-out type's stimulated cells), with the same architecture (2 × 800 hidden, latent
100, dropout 0.2, KL weight 5e-5), batch 32, the same fixed number of epochs and no early
stopping; both predict the held-out type's control cells with their own latent
arithmetic. Each side runs in its own subprocess (clean peak memory; the reference in its
own virtual environment), one after the other for every held-out type, so the per-epoch
times are measured under the same machine load. Scores (R² of per-gene means over the top
DEGs and all genes, bootstrap of 100 × 80% of cells) use omicsgen.metrics.perturbation
for both.

    python benchmarks/bench_scgen.py                       # CD4T held out
    python benchmarks/bench_scgen.py --holdout all         # leave-one-type-out, 7 types

``--own-defaults`` compares the two as each is meant to be used instead: ours with the
pipeline's parameters (conf/base/parameters/scgen.yml: its validation split drives early
stopping), the reference as its perturbation tutorial trains it (``max_epochs=100,
batch_size=32, early_stopping=True, early_stopping_patience=25`` on its own 90/10 split);
both get every cell but the held-out type's stimulated ones. ``--input`` takes any model
input with obs ``condition`` (control / stimulated), ``cell_type`` and ``split`` (what the
data-engineering pipeline writes for a perturbation dataset)::

    python benchmarks/bench_scgen.py --own-defaults --repeats 0 --precision 32 \
        --input <workdir>/data/05_model_input/sim_perturbation/model_input.h5ad --holdout type_C
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = "/work/venv-scgen-ref/bin/python"
KEYS = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}


def model_input(path: str | None = None):
    """The Kang model input as the data-engineering pipeline builds it (base parameters):
    ``kedro run --to-outputs=kang.model_input`` writes it; or the model input at ``path``."""
    import anndata as ad

    path = Path(path) if path else ROOT / "data/05_model_input/kang/model_input.h5ad"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `kedro run --to-outputs=kang.model_input` first")
    return ad.read_h5ad(path)


def write_inputs(adata, cell_type: str, directory: Path, keep_validation: bool = False) -> tuple[Path, Path]:
    """The training cells (the train split, or with ``keep_validation`` every cell and the
    split column) and the held-out type's control cells, as .h5ad files for either side."""
    import anndata as ad

    from omicsgen.metrics.perturbation import cells_of
    from omicsgen.preprocessing import hold_out_condition

    train, _ = hold_out_condition(adata, cell_type, KEYS["stimulated"])
    if not keep_validation:
        train = train[train.obs["split"].astype(str) == "train"]
    control = cells_of(adata, cell_type, "control")
    paths = directory / f"train_{cell_type}.h5ad", directory / f"control_{cell_type}.h5ad"
    columns = ["condition", "cell_type"] + (["split"] if keep_validation else [])
    for part, path in zip((train, control), paths, strict=True):
        ad.AnnData(X=part.X.copy(), obs=part.obs[columns].copy(), var=part.var[[]].copy()).write_h5ad(path)
    return paths


def run_ours(args) -> None:
    """Worker: train our scGen on --train, predict --predict, write --out.json/.h5ad."""
    import anndata as ad
    import torch

    from omicsgen.models import ScGen

    if args.threads:
        torch.set_num_threads(args.threads)
    train, control = ad.read_h5ad(args.train), ad.read_h5ad(args.predict)
    start = time.perf_counter()
    if args.own_defaults:  # the pipeline's parameters, its validation split driving early stopping
        import yaml

        params = yaml.safe_load((ROOT / "conf/base/parameters/scgen.yml").read_text())["scgen"]
        ScGen.setup_anndata(train, **KEYS, split_key="split")
        model = ScGen(train, model=params["model"], plan={**params["plan"], "precision": args.precision},
                      training={**params["training"], "seed": args.seed, "device": "cpu", "progress": False})
    else:
        ScGen.setup_anndata(train, **KEYS, split_key=None)
        model = ScGen(
            train,
            plan={"precision": args.precision, "adam_eps": args.adam_eps, "weight_decay": args.weight_decay},
            training={"max_epochs": args.epochs, "batch_size": args.batch_size, "patience": None,
                      "seed": args.seed, "device": "cpu", "progress": False},
        )  # fmt: skip
    result = model.train()  # also computes delta (balanced pools of the training cells)
    record = {
        "epoch_seconds": [row["seconds"] for row in result.history],
        "epoch_cpu_seconds": [row["cpu_seconds"] for row in result.history],
        "seconds": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
    }
    if not args.timing_only:
        model.predict(control).write_h5ad(args.out + ".h5ad")
    record["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out + ".json").write_text(json.dumps(record))


def run_side(side: str, train: Path, control: Path, out: Path, args, timing_only: bool) -> dict:
    if side.startswith("ours"):
        command = [sys.executable, __file__, "--worker", "--precision", side.split(":")[1],
                   "--adam-eps", str(args.adam_eps), "--weight-decay", str(args.weight_decay)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    else:
        command = [args.reference_python, str(ROOT / "benchmarks/scgen_reference.py")]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command += [
        "--train", str(train), "--predict", str(control), "--out", str(out),
        "--epochs", str(args.timing_epochs if timing_only else args.epochs),
        "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--threads", str(args.threads),
    ] + (["--timing-only"] if timing_only else []) + (["--own-defaults"] if args.own_defaults and not timing_only else [])
    env["OMP_NUM_THREADS"] = str(args.threads or os.cpu_count())
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return json.loads(Path(str(out) + ".json").read_text())


def score(adata, predicted_path: Path, cell_type: str, n_draws: int, seed: int) -> dict:
    import anndata as ad

    from omicsgen.metrics.perturbation import cells_of, perturbation_scores, top_degs

    predicted = ad.read_h5ad(predicted_path)
    predicted.var_names = adata.var_names
    real = cells_of(adata, cell_type, "stimulated")
    scores = perturbation_scores(predicted, real, top_degs(adata, cell_type, 100, **KEYS), n_draws, 0.8, seed)
    return {k: v["mean"] for k, v in scores.items()} | {k + "_sd": v["sd"] for k, v in scores.items()}


def steady_median(runs: list[list[float]]) -> float:
    """Median epoch time, skipping each run's first (warm-up) epoch when it has more."""
    return statistics.median(t for run in runs for t in (run[1:] if len(run) > 1 else run))


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holdout", default="CD4T", help="a cell type, a comma list, or 'all'")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs for the quality runs")
    parser.add_argument("--timing-epochs", type=int, default=3, help="epochs per timing repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats (0: none)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-draws", type=int, default=100)
    parser.add_argument("--reference-python", default=REFERENCE_PYTHON)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--precision", default="32,bf16-mixed",
        help="comma list of our training precisions to run ('32', 'bf16-mixed')",
    )
    parser.add_argument("--adam-eps", type=float, default=0.01, help="our Adam eps (torch's default: 1e-8)")
    parser.add_argument("--weight-decay", type=float, default=1e-6, help="our Adam weight decay")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--input", help="model input .h5ad (default: the Kang model input)")
    parser.add_argument("--own-defaults", action="store_true",
                        help="each side at its own defaults (ours: the pipeline's; the reference: its tutorial's)")
    # worker mode (ours, in a subprocess)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--predict", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--timing-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_ours(args)

    sides = [f"ours:{p}" for p in args.precision.split(",")] + ([] if args.skip_reference else ["reference"])
    adata = model_input(args.input)
    types = (
        sorted(adata.obs["cell_type"].astype(str).unique()) if args.holdout == "all" else args.holdout.split(",")
    )
    print(f"data: {adata.n_obs} cells x {adata.n_vars} genes; held out: {types}; epochs {args.epochs}, "
          f"batch {args.batch_size}, torch threads {args.threads or 'default'}", flush=True)
    results: dict = {"settings": vars(args), "timing": {}, "held_out": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train, control = write_inputs(adata, types[0], tmp)
        epoch_runs: dict[str, list[list[float]]] = {side: [] for side in sides}
        cpu_runs: dict[str, list[list[float]]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:  # interleaved: ours, reference, ours, reference, ...
                record = run_side(side, train, control, tmp / f"timing_{side}_{repeat}", args, True)
                epoch_runs[side].append(record["epoch_seconds"])
                cpu_runs[side].append(record["epoch_cpu_seconds"])
                print(f"timing repeat {repeat + 1} {side}: {[round(t, 2) for t in record['epoch_seconds']]} s/epoch", flush=True)
        for cell_type in types:
            train, control = write_inputs(adata, cell_type, tmp, keep_validation=args.own_defaults)
            entry = {}
            for side in sides:
                record = run_side(side, train, control, tmp / f"{side}_{cell_type}", args, False)
                # the quality runs are timed too (same interleaving: ours, reference)
                epoch_runs[side].append(record["epoch_seconds"])
                cpu_runs[side].append(record["epoch_cpu_seconds"])
                entry[side] = {
                    "epochs": len(record["epoch_seconds"]),
                    "seconds_per_epoch": steady_median([record["epoch_seconds"]]),
                    "peak_memory_mb": record["peak_memory_mb"],
                    **score(adata, Path(str(tmp / f"{side}_{cell_type}") + ".h5ad"), cell_type, args.n_draws, args.seed),
                }
                print(f"{cell_type} {side}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in entry[side].items() if not k.endswith("_sd")), flush=True)
            results["held_out"][cell_type] = entry
    for side in sides:
        results["timing"][side] = {
            "median_seconds_per_epoch": steady_median(epoch_runs[side]),
            "median_cpu_seconds_per_epoch": steady_median(cpu_runs[side]),
            "runs": epoch_runs[side],
            "cpu_runs": cpu_runs[side],
        }
    print("\n== summary ==")
    timing = results["timing"]
    for side in sides:
        print(f"{side}: median {timing[side]['median_seconds_per_epoch']:.2f} s/epoch wall, "
              f"{timing[side]['median_cpu_seconds_per_epoch']:.2f} s/epoch CPU")
    for side in sides[:-1] if "reference" in sides else []:
        wall = timing["reference"]["median_seconds_per_epoch"] / timing[side]["median_seconds_per_epoch"]
        cpu = timing["reference"]["median_cpu_seconds_per_epoch"] / timing[side]["median_cpu_seconds_per_epoch"]
        timing[f"speedup_{side}"] = {"wall": wall, "cpu": cpu}
        print(f"speed-up of {side} (reference / ours per epoch): {wall:.2f}x wall, {cpu:.2f}x CPU time")
    header = f"{'held out':<12}" + "".join(f"{side + ' ' + m:>26}" for side in sides for m in ("top100", "all"))
    print(header)
    for cell_type, entry in results["held_out"].items():
        print(f"{cell_type:<12}" + "".join(
            f"{entry[side][k]:>26.3f}" for side in sides for k in ("r2_mean_top100", "r2_mean_all")))
    if len(types) > 1:
        print(f"{'mean':<12}" + "".join(
            f"{statistics.mean(e[side][k] for e in results['held_out'].values()):>26.3f}"
            for side in sides for k in ("r2_mean_top100", "r2_mean_all")))
    for side in sides:
        peak = max(e[side]["peak_memory_mb"] for e in results["held_out"].values())
        print(f"peak memory {side}: {peak:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
