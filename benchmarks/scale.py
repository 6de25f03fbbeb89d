"""The cost curve: simulated cells × 2,000 genes through data engineering, one scGen epoch
and one VAE epoch, at several sizes. Writes benchmarks/scale.md and benchmarks/scale.png.

    python benchmarks/scale.py --cells 10000 100000 1000000 --work /tmp/omicsgen-scale

Per size, in a project copy whose ``conf/local/datasets.yml`` declares the simulated file
(as a user would):

1. ``kedro run --pipelines data_engineering --namespaces sim`` (the shipped catalog: files
   larger than 512 MiB stay on disk and are processed block by block; ``conf/local``
   keeps ``sim.normalised`` and ``sim.primary`` in memory, as handles to scratch files, so
   that 1M cells need ~30 GB of disk instead of ~57 GB);
2. a Python process that loads ``sim.model_input`` through the catalog's dataset and trains
   scGen (the published architecture, batch 32, with its latent delta) and the VAE (the
   shipped ``vae.cells`` network, batch 128) for one epoch each, streaming when the data
   is large (``training.data_loading: auto``).

Each phase runs in its own process under ``/usr/bin/time``: wall time and peak RSS are the
process's own. One torch thread (the project's default). Not a test: timings depend on
the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENES = 2000


def simulate(path: Path, n_cells: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "omicsgen.preprocessing.simulate", str(path), "--n-cells", str(n_cells),
         "--n-genes", str(GENES), "--n-cell-types", "5"],
        check=True,
    )  # fmt: skip


def project_for(work: Path, cells_file: Path, n_cells: int) -> Path:
    project = work / f"project_{n_cells}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    # at atlas scale every saved layer is a copy of the matrix on disk (13 GB at 1M cells):
    # the two that only add annotations stay handles to the step's scratch file instead
    (project / "conf" / "local" / "catalog.yml").write_text(
        "sim.normalised: {type: MemoryDataset, copy_mode: assign}\n"
        "sim.primary: {type: MemoryDataset, copy_mode: assign}\n"
    )
    (project / "conf" / "local" / "datasets.yml").write_text(
        "datasets:\n  kang: null\n  pbmc_batches: null\n  mtbls79: null\n  simulated_metagenome: null\n"
        f"  sim:\n    kind: perturbation\n    file: {cells_file}\n"
    )
    return project


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, peak RSS GB, stdout) of one process."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", *command], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    wall, kib = re.findall(r"TIME ([\d.]+) (\d+)", result.stderr)[-1]
    return float(wall), int(kib) / 2**20, result.stdout


def train_one_epoch(project: Path) -> dict:
    """Phase 2, in its own process: one scGen and one VAE epoch on the model input."""
    import yaml

    from omicsgen.datasets import AnnDataDataset
    from omicsgen.models import VAE, ScGen
    from omicsgen.models.runtime import set_threads

    set_threads(1)
    model_input = project / "data" / "05_model_input" / "sim" / "model_input.h5ad"
    start = time.perf_counter()
    adata = AnnDataDataset(filepath=str(model_input), backed="auto").load()
    scgen_params = yaml.safe_load((ROOT / "conf/base/parameters/scgen.yml").read_text())["scgen"]
    vae_params = yaml.safe_load((ROOT / "conf/base/parameters/vae.yml").read_text())["vae"]["cells"]
    common = {"max_epochs": 1, "patience": None, "progress": False, "checkpoint_every": None}
    ScGen.setup_anndata(adata, condition_key="condition", control="control", stimulated="stimulated",
                        cell_type_key="cell_type")  # fmt: skip
    scgen = ScGen(adata, scgen_params["model"], scgen_params["plan"],
                  {**scgen_params["training"], **common, "device": "cpu"})  # fmt: skip
    scgen_start = time.perf_counter()
    scgen_result = scgen.train()
    scgen_seconds = time.perf_counter() - scgen_start
    VAE.setup_anndata(adata)
    vae = VAE(adata, vae_params["model"], vae_params["plan"], {**vae_params["training"], **common, "device": "cpu"})
    vae_start = time.perf_counter()
    vae_result = vae.train()
    vae_seconds = time.perf_counter() - vae_start
    return {
        "backed": bool(adata.isbacked), "n_obs": int(adata.n_obs),
        "scgen_epoch_s": scgen_result.seconds_per_epoch, "scgen_with_delta_s": scgen_seconds,
        "vae_epoch_s": vae_result.seconds_per_epoch, "vae_s": vae_seconds,
        "total_s": time.perf_counter() - start,
    }  # fmt: skip


def measure(work: Path, n_cells: int, only: str | None = None, previous: dict | None = None) -> dict:
    """Both phases; ``only="de"`` or ``"train"`` measures one and keeps the other from
    ``previous`` (``train`` reuses the project's data-engineering outputs)."""
    cells_file = work / f"cells_{n_cells}.h5ad"
    simulate(cells_file, n_cells)
    project = work / f"project_{n_cells}"
    row = {"cells": n_cells, **(previous or {})}
    if only != "train":
        project = project_for(work, cells_file, n_cells)
        kedro = str(Path(sys.executable).with_name("kedro"))
        row["de_s"], row["de_peak_gb"], _ = timed(
            [kedro, "run", "--pipelines", "data_engineering", "--namespaces", "sim", "--params",
             "runtime.tracking.enabled=false"], project,
        )  # fmt: skip
    if only != "de":
        row["train_s"], row["train_peak_gb"], out = timed([sys.executable, __file__, "--train", str(project)], project)
        row.update(json.loads(out.strip().splitlines()[-1]))
        shutil.rmtree(project / "data", ignore_errors=True)  # tens of GB at 1M cells
    if "de_s" in row and "train_s" in row:
        row["total_s"] = row["de_s"] + row["train_s"]
        row["peak_gb"] = max(row["de_peak_gb"], row["train_peak_gb"])
        row["us_per_cell"] = row["total_s"] / n_cells * 1e6
    return row


def write_report(rows: list[dict], markdown: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["cells"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    cells = [r["cells"] for r in rows]
    left.plot(cells, [r["us_per_cell"] for r in rows], "o-")
    left.set(xscale="log", xlabel="cells", ylabel="µs per cell (DE + 1 scGen + 1 VAE epoch)")
    right.plot(cells, [r["de_peak_gb"] for r in rows], "o-", label="data engineering")
    right.plot(cells, [r["train_peak_gb"] for r in rows], "s-", label="training")
    right.axhline(8, color="grey", linestyle=":", label="target 8 GB")
    right.set(xscale="log", xlabel="cells", ylabel="peak RSS (GB)")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(markdown.with_suffix(".png"), dpi=110)
    lines = [
        "# Cost curve: simulated cells × 2,000 genes",
        "",
        f"`{command}` — data engineering (`kedro run --pipelines data_engineering`), then one scGen",
        "epoch (published network, batch 32, plus its latent delta) and one VAE epoch (batch 128),",
        "each phase in its own process; 1 torch thread; peak RSS per process (`/usr/bin/time`).",
        "",
        "| cells | data engineering s | DE peak GB | scGen epoch s | VAE epoch s | training process s | training peak GB | streamed | total s | µs per cell |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cells']:,} | {r['de_s']:.0f} | {r['de_peak_gb']:.2f} | {r['scgen_epoch_s']:.1f} | "
            f"{r['vae_epoch_s']:.1f} | {r['train_s']:.0f} | {r['train_peak_gb']:.2f} | {'yes' if r['backed'] else 'no'} | "
            f"{r['total_s']:.0f} | {r['us_per_cell']:.0f} |"
        )
    lines += ["", f"![cost curve]({markdown.with_suffix('.png').name})", "", "```json", json.dumps(rows, indent=1), "```", ""]
    markdown.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/omicsgen-scale"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "scale.md")
    parser.add_argument("--only", choices=["de", "train"], help="measure one phase, keep the other's numbers")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        print(json.dumps(train_one_epoch(args.train)))
        return
    results = args.results
    rows = {r["cells"]: r for r in (json.loads(results.read_text()) if results.exists() else [])}
    for n_cells in args.cells:
        rows[n_cells] = measure(args.work, n_cells, args.only, rows.get(n_cells))
        print(json.dumps(rows[n_cells]), flush=True)
        results.write_text(json.dumps(sorted(rows.values(), key=lambda r: r["cells"]), indent=1))
    complete = [row for row in rows.values() if "total_s" in row]
    if complete:
        write_report(complete, args.out, "python benchmarks/scale.py --cells " + " ".join(str(r["cells"]) for r in complete))


if __name__ == "__main__":
    main()
