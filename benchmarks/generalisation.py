"""Cross-dataset benchmark: every method on every dataset of its kind, with its baselines.

The datasets are declared the way a user declares theirs ("Bring your own data"): a copy of
the project (conf/, pyproject.toml, the shipped raw data) gets a ``conf/local/datasets.yml``
naming the shipped datasets, the real public datasets of ``../shared/data`` that fit a kind,
and simulated data written by ``omicsgen.preprocessing.simulate``. Each (method, dataset) is
then one ``kedro run --pipelines <method> --namespaces <dataset>`` in that copy, one at a
time, with 1 thread and MLflow tracking off; its ``metrics.json`` gives the numbers of the
method and of its baselines, and the summary report's own target definitions
(``omicsgen.report.LEADS``) say which targets are met.

One dataset per kind is a held-out check: it was not used to choose any default and is
reported apart from the mean and worst case over the others.

    python benchmarks/generalisation.py                       # everything, default parameters
    python benchmarks/generalisation.py --methods scgen,vae --datasets kang,sim_perturbation
    python benchmarks/generalisation.py --quick               # test-env-sized parameters: a smoke run
    python benchmarks/generalisation.py --report-only         # rebuild JSON/markdown from the runs on disk

Writes ``benchmarks/results/generalisation.json`` and ``benchmarks/generalisation.md``
(``--quick``: ``generalisation_quick.*``). Run data stays in ``--workdir``
(default ``/tmp/omicsgen-generalisation``), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "data").resolve()
QUIET_FLAG = Path("/tmp/omicsgen_quiet")  # another engineer is timing something: wait

# ------------------------------------------------------------------------------ datasets
#: name → how it is declared. ``entry`` is the datasets.yml entry as a user writes it (only
#: the keys whose columns differ from the kind's defaults; here none do). ``file`` paths
#: starting with ``shared:`` or ``sim:`` are resolved when the project copy is made.
DATASETS: dict[str, dict[str, Any]] = {
    # perturbation (scGen, cscGAN, VAE)
    "kang": {
        "source": "shipped", "held_out": False,
        "note": "Kang 2018 IFN-β PBMCs, scGen's validation file (1,975 cells × 6,998 HVGs); the defaults were chosen on it",
    },
    "kang_harmony": {
        "source": "shared", "held_out": True,
        "entry": {"kind": "perturbation", "file": "shared:kang_pbmc_harmony_subset/kang_pbmc_harmony_subset.h5ad",
                  "description": "Kang 2018, Harmony's 2,000-cell draw (raw counts, all 9,015 genes, marker-derived types)"},
        "note": "another draw of the same study, raw counts of all genes, cell types from markers (approximate)",
    },
    "sim_perturbation": {
        "source": "simulated", "held_out": False,
        "entry": {"kind": "perturbation", "file": "sim:sim_perturbation.h5ad",
                  "description": "simulated NB counts, 5 types, type-dependent stimulation response (counts in X)"},
        "simulate": {"n_cells": 2000, "n_genes": 2000, "n_cell_types": 5, "n_batches": 1, "seed": 0},
        "note": "negative-binomial counts with a known type-dependent response",
    },
    # scrna_batches (AIF; VAE allowed, so it also embeds them)
    "pbmc_batches": {
        "source": "shipped", "held_out": False, "methods": ["aif", "vae"],
        "note": "10x PBMCs, three chemistries (1,200 cells); the defaults were chosen on it",
    },
    "baron_species": {
        "source": "shared", "held_out": True, "methods": ["aif", "vae"],
        "entry": {"kind": "scrna_batches", "file": "shared:baron_pancreas_human_mouse/baron_pancreas_human_mouse.h5ad",
                  "description": "Baron 2016 pancreas, human vs mouse (328 cells, 5 types); batch = species"},
        "note": "species as the batch: very strong effect, few cells, many genes",
    },
    "sim_batches": {
        "source": "simulated", "held_out": False, "methods": ["aif", "vae"],
        "entry": {"kind": "scrna_batches", "file": "sim:sim_batches.h5ad",
                  "description": "simulated NB counts, 5 types, 3 batches (counts in X)"},
        "simulate": {"n_cells": 2000, "n_genes": 2000, "n_cell_types": 5, "n_batches": 3, "seed": 1},
        "note": "negative-binomial counts with known types and batch effects (half the cells also stimulated)",
    },
    # metabolomics (NormAE)
    "mtbls79": {
        "source": "shipped", "held_out": False,
        "note": "MTBLS79 DIMS, 172 samples, 8 batches, 38 QCs; the defaults were chosen on it",
    },
    "sim_metabolomics": {
        "source": "simulated", "held_out": False,
        "entry": {"kind": "metabolomics", "files": {"data": "sim:sim_metabolomics/data.csv", "info": "sim:sim_metabolomics/info.csv"},
                  "description": "simulated LC-MS table: 4 batches, drift, QCs every 5th injection, case/control"},
        "simulate_metabolomics": {"n_features": 500, "n_batches": 4, "samples_per_batch": 40, "seed": 0},
        "note": "known batch shifts and drift (simulate_metabolomics defaults, 500 features, 4 × 40 samples)",
    },
    "sim_metabolomics_strong": {
        "source": "simulated", "held_out": True,
        "entry": {"kind": "metabolomics",
                  "files": {"data": "sim:sim_metabolomics_strong/data.csv", "info": "sim:sim_metabolomics_strong/info.csv"},
                  "description": "simulated LC-MS table: 6 batches, twice the batch shift and drift"},
        "simulate_metabolomics": {"n_features": 500, "n_batches": 6, "samples_per_batch": 25, "batch_shift_sd": 0.8,
                                  "drift_sd": 0.6, "seed": 1},
        "note": "stronger batch shifts and drift, more and smaller batches",
    },
    "metnormalizer_lcms": {
        "source": "shared", "held_out": False, "expect_failure": True,
        "entry": {"kind": "metabolomics",
                  "files": {"data": "shared:metnormalizer_lcms_demo/data.csv", "info": "shared:metnormalizer_lcms_demo/info.csv"},
                  "description": "MetNormalizer LC-MS demo: one batch, 23 QCs"},
        "note": "a single analytical batch: NormAE (batch classifier, ComBat) cannot run; declared and run to record the check's message",
    },
}  # fmt: skip

#: shared files not declared, and why
NOT_DECLARED = {
    "mtbls79_dims": "byte-identical to the shipped mtbls79 (data.csv, info.csv)",
    "pbmc_three_chemistries": "byte-identical to the shipped pbmc_batches file",
    "kang_pbmc_ifnb": "byte-identical to the shipped kang file",
}

#: method → the kinds it runs on in this benchmark (the registry decides per dataset)
METHODS = ("scgen", "cscgan", "vae", "normae", "aif")

#: cscGAN's per-type worst case counts the types with at least this many real cells
CSCGAN_MIN_TYPE_CELLS = 100


def _kind(name: str) -> str:
    spec = DATASETS[name]
    if "entry" in spec:
        return spec["entry"]["kind"]
    return {"kang": "perturbation", "pbmc_batches": "scrna_batches", "mtbls79": "metabolomics"}[name]


def runs_for(method: str, dataset: str) -> bool:
    """Whether ``method`` runs on ``dataset`` (its declared methods, else its kind's defaults)."""
    from omicsgen.registry import KINDS

    methods = DATASETS[dataset].get("methods") or KINDS[_kind(dataset)]["default"]
    return method in methods


def declarations(sim_dir: Path, shared_dir: Path = SHARED) -> dict[str, Any]:
    """The ``datasets:`` mapping written to ``conf/local/datasets.yml`` (absolute paths)."""

    def resolve(path: str) -> str:
        if path.startswith("shared:"):
            return str(shared_dir / path.removeprefix("shared:"))
        if path.startswith("sim:"):
            return str(sim_dir / path.removeprefix("sim:"))
        return path

    out: dict[str, Any] = {}
    for name, spec in DATASETS.items():
        if "entry" in spec:
            entry = json.loads(json.dumps(spec["entry"]))
            if "file" in entry:
                entry["file"] = resolve(entry["file"])
            if "files" in entry:
                entry["files"] = {k: resolve(v) for k, v in entry["files"].items()}
        else:
            entry = None  # shipped: declared in conf/base/datasets.yml; only methods may be added
        if spec.get("methods"):
            entry = {**(entry or {}), "methods": list(spec["methods"])}
        if entry is not None:
            out[name] = entry
    return out


def write_simulated(sim_dir: Path) -> None:
    from omicsgen.preprocessing.simulate import simulate_metabolomics, write_metabolomics_csv

    sim_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in DATASETS.items():
        if "simulate" in spec:
            path = sim_dir / f"{name}.h5ad"
            if not path.exists():  # as a user would: the module's command line, counts in X
                args = spec["simulate"]
                subprocess.run(
                    [sys.executable, "-m", "omicsgen.preprocessing.simulate", str(path),
                     *[f"--{k.replace('_', '-')}={v}" for k, v in args.items()]],
                    check=True,
                )  # fmt: skip
        if "simulate_metabolomics" in spec:
            target = sim_dir / name
            if not (target / "info.csv").exists():
                data, info = simulate_metabolomics(**spec["simulate_metabolomics"])
                write_metabolomics_csv(data, info, target)


def make_project(workdir: Path, quick: bool) -> Path:
    """A project copy (like tests/conftest.py's ``copy_project``) with the datasets declared
    in ``conf/local/datasets.yml``; ``quick`` also puts conf/test's parameters in conf/local."""
    project = workdir / "project"
    # the configuration is copied afresh on every call: a workdir kept from an earlier run
    # must not run today's code with yesterday's defaults
    for environment in ("base", "test"):
        shutil.rmtree(project / "conf" / environment, ignore_errors=True)
        shutil.copytree(REPO / "conf" / environment, project / "conf" / environment)
    (project / "conf" / "local").mkdir(exist_ok=True)
    if not (project / "pyproject.toml").exists():
        shutil.copy(REPO / "conf" / "README.md", project / "conf" / "README.md")
        shutil.copytree(REPO / "data" / "01_raw", project / "data" / "01_raw")
        shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
        (project / "src").mkdir()
    if quick:
        shutil.copytree(REPO / "conf" / "test" / "parameters", project / "conf" / "local" / "parameters", dirs_exist_ok=True)
    sim_dir = workdir / "simulated"
    write_simulated(sim_dir)
    text = yaml.safe_dump({"datasets": declarations(sim_dir)}, sort_keys=False, allow_unicode=True)
    (project / "conf" / "local" / "datasets.yml").write_text(
        "# Written by benchmarks/generalisation.py: the benchmark's datasets, declared as a user would.\n" + text
    )
    return project


# ---------------------------------------------------------------------------------- runs


def wait_for_quiet() -> None:
    waited = 0
    while QUIET_FLAG.exists():
        if waited == 0:
            print(f"  {QUIET_FLAG} exists: waiting", flush=True)
        time.sleep(30)
        waited += 30
    if waited:
        print(f"  waited {waited} s", flush=True)


def run_one(project: Path, method: str, dataset: str, params: str = "") -> dict[str, Any]:
    """One ``kedro run`` of ``method`` on ``dataset`` in the project copy (``params``: more
    ``--params`` overrides, comma-separated)."""
    command = [
        "kedro", "run", "--pipelines", method, "--namespaces", dataset,
        "--params", ",".join(filter(None, ["runtime.threads=1,runtime.processes=1,runtime.tracking.enabled=false", params])),
    ]  # fmt: skip
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "COLUMNS": "200"}  # fmt: skip
    log = project.parent / "logs" / f"{dataset}.{method}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    wait_for_quiet()
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "src", "conf"))  # the installed package is the working tree
    start = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.run(command, cwd=project, env=env, stdout=handle, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    record = {"command": " ".join(command), "returncode": proc.returncode, "wall_s": round(wall, 1),
              "commit": commit + ("+uncommitted src/conf changes" if dirty else ""),
              "log": str(log), "finished": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    if proc.returncode != 0:
        record["error"] = error_of(log.read_text(errors="replace"))
    return record


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def error_of(text: str) -> str:
    """The last exception of a Kedro log, with the lines its message wraps onto."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception)\b.*:", line)]
    if not starts:
        return next((line.strip() for line in reversed(lines) if line.strip()), "")[:600]
    message = [lines[starts[-1]].strip()]
    for line in lines[starts[-1] + 1 :]:
        if not line.strip() or line[0] in " │╭╰[":
            break
        message.append(line.strip())
    return " ".join(message)[:600]


# ------------------------------------------------------------------------------ numbers


def _num(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("mean")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else None


def headline(method: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the tables: ``{"columns": [...], "rows": {row: {column: value}}}``
    plus method-specific facts. Keys as the method's metrics.json writes them."""
    if method == "scgen":
        summary = metrics["mean_over_held_out_types"]
        top = next(k for k in summary["scgen"] if re.fullmatch(r"r2_mean_top\d+", k))
        n = top.removeprefix("r2_mean_top")
        columns = [top, f"pearson_delta_top{n}", "energy_distance"]
        rows = {name: {c: _num(v.get(c)) for c in columns} for name, v in summary.items() if isinstance(v, dict)}
        return {"columns": columns, "rows": rows, "held_out_types": list(metrics.get("held_out", {})),
                "primary": (top, "higher")}  # fmt: skip
    if method == "cscgan":
        generation = metrics["generation"]
        overall = generation["overall"]
        worst, worst_type = None, None
        for cell_type, comparisons in (generation.get("per_cell_type") or {}).items():
            rr = comparisons.get("real_vs_real") or {}
            n_cells = (rr.get("n_reference") or 0) + (rr.get("n_query") or 0)
            auc = _num((comparisons.get("real_vs_generated") or {}).get("classifier_auc"))
            if n_cells >= CSCGAN_MIN_TYPE_CELLS and auc is not None and (worst is None or auc > worst):
                worst, worst_type = auc, cell_type
        rows = {
            "cscgan": {"auc_overall": _num(overall["real_vs_generated"].get("classifier_auc")),
                       f"worst_type_auc_ge{CSCGAN_MIN_TYPE_CELLS}": worst},
            "real_vs_real": {"auc_overall": _num((overall.get("real_vs_real") or {}).get("classifier_auc"))},
        }  # fmt: skip
        return {"columns": ["auc_overall", f"worst_type_auc_ge{CSCGAN_MIN_TYPE_CELLS}"], "rows": rows,
                "worst_type": worst_type, "excluded_cell_types": generation.get("excluded_cell_types"),
                "primary": ("auc_overall", "lower")}  # fmt: skip
    if method == "vae":
        rows = {name: {"leiden_ari": _num(metrics[name]["leiden"].get("ari"))} for name in ("vae", "pca") if name in metrics}
        return {"columns": ["leiden_ari"], "rows": rows, "n_labels": metrics.get("n_labels"), "primary": ("leiden_ari", "higher")}
    if method == "normae":
        columns = ["qc_pca_distance", "median_qc_rsd", "batch_accuracy"]
        versions = metrics["metrics"]
        rows = {name: {c: _num(v.get(c)) for c in columns} for name, v in versions.items() if isinstance(v, dict)}
        return {"columns": columns, "rows": rows, "primary": ("qc_pca_distance", "lower")}
    if method == "aif":
        columns = ["Total", "KMeans ARI"]
        rows = {name: {c: _num(v.get(c)) for c in columns} for name, v in metrics.items() if isinstance(v, dict) and "Total" in v}
        return {"columns": columns, "rows": rows, "primary": ("Total", "higher")}
    raise ValueError(method)


def targets(method: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary report's targets for this metrics.json (``omicsgen.report.LEADS``)."""
    from omicsgen.report import LEADS

    lead = LEADS[method](metrics, {})
    out = []
    for target in lead.targets if lead else []:
        text = re.sub(r"<[^>]+>", "", target.text)
        out.append({"target": text.split(":")[0].strip(), "detail": text, "met": target.met})
    return out


#: the one target of each method that the markdown table shows per dataset (all are in the JSON)
PRIMARY_TARGET = {
    "scgen": "scGen ≥ every baseline, top-",
    "cscgan": "generated-vs-real AUC ≤",
    "vae": "VAE Leiden ARI ≥ PCA",
    "normae": "NormAE below ComBat on QC distance in PCA space",
    "aif": "AIF total ≥ every baseline",
}


PRIMARY_TARGET_TEXT = {
    "scgen": "scGen's R² of top-DEG means ≥ every baseline (mean over held-out types)",
    "cscgan": "generated-vs-real classifier AUC ≤ 0.65 overall",
    "vae": "VAE Leiden ARI ≥ PCA's",
    "normae": "NormAE's QC PCA distance below ComBat's",
    "aif": "AIF's scIB total ≥ every baseline's",
}


def collect(project: Path, method: str, dataset: str) -> dict[str, Any]:
    path = project / "data" / "08_reporting" / dataset / method / "metrics.json"
    metrics = json.loads(path.read_text())
    return {"metrics_json": str(path), **headline(method, metrics), "targets": targets(method, metrics)}


# ------------------------------------------------------------------------------ summary

ROW_LABELS = {
    "scgen": "scGen", "gene_arithmetic": "gene arithmetic", "pca_arithmetic": "PCA arithmetic",
    "mean_response": "mean response", "null": "null", "cscgan": "cscGAN", "real_vs_real": "real vs real",
    "vae": "VAE", "pca": "PCA", "normae": "NormAE", "uncorrected": "uncorrected", "combat": "ComBat",
    "qc_rsc": "QC-RSC", "serrf": "SERRF", "aif": "AIF", "harmony": "Harmony",
}  # fmt: skip
COLUMN_LABELS = {
    "energy_distance": "energy dist.", "auc_overall": "AUC", "leiden_ari": "Leiden ARI",
    "qc_pca_distance": "QC PCA dist.", "median_qc_rsd": "QC RSD %", "batch_accuracy": "batch acc.",
    "Total": "scIB total", "KMeans ARI": "ARI",
}  # fmt: skip


def _column_label(column: str) -> str:
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    if m := re.fullmatch(r"r2_mean_top(\d+)", column):
        return f"R² top-{m[1]}"
    if m := re.fullmatch(r"pearson_delta_top(\d+)", column):
        return f"Pearson Δ top-{m[1]}"
    if m := re.fullmatch(r"worst_type_auc_ge(\d+)", column):
        return f"worst type AUC (≥{m[1]} cells)"
    return column


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


#: which way is better, per column (regexes)
BETTER = {r"r2_mean_top\d+|pearson_delta_top\d+|leiden_ari|Total|KMeans ARI": "higher",
          r"energy_distance|auc_overall|worst_type_auc_ge\d+|qc_pca_distance|median_qc_rsd|batch_accuracy": "lower"}


def better_of(column: str) -> str:
    return next(way for pattern, way in BETTER.items() if re.fullmatch(pattern, column))


def summarise(method: str, results: dict[str, Any]) -> dict[str, Any]:
    """Mean and worst case of every number over the development datasets and, apart, over
    the held-out ones; the primary target met per dataset."""
    done = {d: r for d, r in results.items() if r.get("rows")}
    summary: dict[str, Any] = {}
    for group, held in (("development", False), ("held_out", True)):
        names = [d for d in done if DATASETS[d]["held_out"] is held]
        if not names:
            continue
        columns = done[names[0]]["columns"]
        mean: dict[str, dict[str, float]] = {}
        worst: dict[str, dict[str, float]] = {}
        for column in columns:
            pick = min if better_of(column) == "higher" else max
            rows = {row for d in names for row in done[d]["rows"]}
            for row in rows:
                values = [done[d]["rows"].get(row, {}).get(column) for d in names]
                if values and all(v is not None for v in values):
                    mean.setdefault(column, {})[row] = sum(values) / len(values)
                    worst.setdefault(column, {})[row] = pick(values)
        summary[group] = {
            "datasets": names, "primary_metric": done[names[0]]["primary"][0], "mean": mean, "worst": worst,
            "primary_target": PRIMARY_TARGET[method],
            "primary_target_met": {d: _primary_met(method, done[d]) for d in names},
        }  # fmt: skip
    return summary


def _primary_met(method: str, result: dict[str, Any]) -> bool | None:
    for target in result.get("targets", []):
        if target["target"].startswith(PRIMARY_TARGET[method]):
            return target["met"]
    return None


def _mark(met: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[met]


def _table(method: str, column: str, done: dict[str, Any], summary: dict[str, Any], first: bool) -> list[str]:
    """Datasets × (method, baselines) for one number; mean and worst case below."""
    rows = []
    for r in done.values():
        rows += [n for n in r["rows"] if n not in rows and r["rows"][n].get(column) is not None]
    way = "↑" if better_of(column) == "higher" else "↓"
    header = ["dataset", *(ROW_LABELS.get(n, n) for n in rows)]
    if first:
        header += ["primary target met", "all targets met", "wall"]
    lines = [f"**{_column_label(column)}** ({way} better)", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]  # fmt: skip
    for group in ("development", "held_out"):
        names = [d for d in done if DATASETS[d]["held_out"] is (group == "held_out")]
        for d in names:
            r = done[d]
            cells = [_fmt(r["rows"].get(n, {}).get(column)) for n in rows]
            if first:
                met = [t["met"] for t in r["targets"] if t["met"] is not None]
                cells += [_mark(_primary_met(method, r)), f"{sum(met)}/{len(met)}", f"{r['run']['wall_s']:.0f} s"]
            lines.append(f"| {d}{' †' if group == 'held_out' else ''} | " + " | ".join(cells) + " |")
        s = summary.get(group)
        if s and len(s["datasets"]) > 1:
            label = "development" if group == "development" else "held out"
            pad = ["", "", ""] if first else []
            for what in ("mean", "worst"):
                values = s[what].get(column, {})
                lines.append(f"| *{what}, {label} ({len(s['datasets'])})* | "
                             + " | ".join([*(_fmt(values.get(n)) for n in rows), *pad]) + " |")  # fmt: skip
    return [*lines, ""]


def summary_table(report: dict[str, Any]) -> list[str]:
    """One row per (method, dataset): the primary number of the method, its best baseline,
    the primary target; then the mean and worst case per method and group."""
    lines = ["| method | dataset | metric | method | best baseline | primary target met | all targets met |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    notes = []
    for method, results in report["results"].items():
        for d, r in results.items():
            if not r.get("rows"):
                error = (r.get("run", {}).get("error") or r.get("error", "")).split(":")[0]
                lines.append(f"| {ROW_LABELS[method]} | {d} | – | no result ({error}) | | | |")
                continue
            column = r["primary"][0]
            mine = r["rows"].get(method, {}).get(column)
            others = {n: v.get(column) for n, v in r["rows"].items() if n != method and v.get(column) is not None}
            if method == "cscgan":
                best = f"real vs real {_fmt(others.get('real_vs_real'))} (control)"
            elif others:
                name = (max if better_of(column) == "higher" else min)(others, key=others.get)
                best = f"{ROW_LABELS.get(name, name)} {_fmt(others[name])}"
            else:
                best = "–"
            met = [t["met"] for t in r["targets"] if t["met"] is not None]
            lines.append(
                f"| {ROW_LABELS[method]} | {d}{' †' if DATASETS[d]['held_out'] else ''} | {_column_label(column)} | "
                f"{_fmt(mine)} | {best} | {_mark(_primary_met(method, r))} | {sum(met)}/{len(met)} |"
            )
        for group, s in report["summary"].get(method, {}).items():
            column = s["primary_metric"]
            if method in s["mean"].get(column, {}):
                notes.append(
                    f"{ROW_LABELS[method]}, {'held out' if group == 'held_out' else 'development'} "
                    f"({len(s['datasets'])}): mean {_fmt(s['mean'][column][method])}, "
                    f"worst {_fmt(s['worst'][column][method])}"
                )
    return [*lines, "", "Mean and worst case of the method's number: " + "; ".join(notes) + ".", ""]


def markdown(report: dict[str, Any]) -> str:
    quick = report["quick"]
    lines = [
        "# Generalisation: every method on every dataset of its kind",
        "",
        f"Generated by `{report['command']}` on {report['date']} (runs at commit {', '.join(report['run_commits'])}; "
        "each run's commit is in the JSON); "
        + ("**quick** (conf/test-sized parameters, a smoke run: the numbers say nothing about quality); "
           if quick else "default parameters; ")
        + "each row is one `kedro run --pipelines <method> --namespaces <dataset> --params "
        "runtime.threads=1,runtime.processes=1,runtime.tracking.enabled=false` in a copy of the project whose "
        "`conf/local/datasets.yml` declares the datasets (below). Numbers from each run's "
        "`data/08_reporting/<dataset>/<method>/metrics.json`; targets are the summary report's own "
        "(`omicsgen.report`). Held-out datasets (†) were not used to choose any default; they are "
        "summarised apart (mean / worst rows per group, shown where a group has two or more datasets). "
        "Wall times (whole pipeline: data engineering, training, baselines, metrics, figures) are "
        "upper bounds: 2 shared cores.",
        "",
        "## Summary",
        "",
        *summary_table(report),
        "## Datasets",
        "",
        "| dataset | kind | source | methods | note |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, info in report["datasets"].items():
        lines.append(
            f"| {name}{' †' if info['held_out'] else ''} | {info['kind']} | {info['source']} | "
            f"{', '.join(info['methods'])} | {info['note']} |"
        )
    lines += ["", "Not declared: " + "; ".join(f"`{k}` ({v})" for k, v in NOT_DECLARED.items()) + ".", ""]
    for method, results in report["results"].items():
        if not results:
            continue
        lines += [f"## {ROW_LABELS.get(method, method)}", ""]
        done = {d: r for d, r in results.items() if r.get("rows")}
        summary = report["summary"].get(method, {})
        if done:
            lines += [f"Primary target: {PRIMARY_TARGET_TEXT[method]}.", ""]
            for i, column in enumerate(next(iter(done.values()))["columns"]):
                lines += _table(method, column, done, summary, first=i == 0)
            lines += ["Every target of the summary report, per dataset:", ""]
            for d, r in done.items():
                lines.append(f"- **{d}**: " + "; ".join(f"{_mark(t['met'])} {t['detail']}" for t in r["targets"]))
            for d, r in done.items():
                if method == "cscgan":
                    lines.append(f"- {d}: worst type {r.get('worst_type')}; cell types excluded from training "
                                 f"(< min_cells_per_type): {', '.join(r.get('excluded_cell_types') or []) or 'none'}")  # fmt: skip
                if method == "scgen":
                    lines.append(f"- {d}: held-out type {', '.join(r.get('held_out_types', []))}")
        for d, r in results.items():
            if not r.get("rows"):
                error = r.get("run", {}).get("error") or r.get("error", "")
                lines += ["", f"- **{d}**: no result (exit {r.get('run', {}).get('returncode')}): `{error}`"]
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all five)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default: all declared)")
    parser.add_argument("--quick", action="store_true", help="conf/test-sized parameters: a smoke run of minutes")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omicsgen-generalisation"))
    parser.add_argument("--report-only", action="store_true", help="no runs: rebuild the outputs from the runs on disk")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (markdown beside benchmarks/)")
    parser.add_argument("--params", default="", help="more kedro --params for every run, e.g. vae.cells.model.likelihood=negative_binomial")
    args = parser.parse_args(argv)

    methods = [m for m in args.methods.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = [m for m in methods if m not in METHODS] + [d for d in datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown: {unknown}; methods {list(METHODS)}, datasets {list(DATASETS)}")
    workdir = (args.workdir / ("quick" if args.quick else "full")).resolve()
    # a quick (smoke) run's outputs stay in the work directory, beside its runs
    output = args.output or (workdir / "generalisation.json" if args.quick else REPO / "benchmarks" / "results" / "generalisation.json")
    markdown_path = (
        output.with_suffix(".md") if args.output or args.quick else REPO / "benchmarks" / "generalisation.md"
    )
    project = make_project(workdir, args.quick)

    previous = json.loads(output.read_text()) if output.exists() else {}
    results: dict[str, dict[str, Any]] = previous.get("results", {})
    for method in METHODS:
        for dataset in DATASETS:
            if method not in methods or dataset not in datasets or not runs_for(method, dataset):
                continue
            entry = results.setdefault(method, {}).get(dataset, {})
            if not args.report_only:
                print(f"{method} on {dataset} …", flush=True)
                entry = {"run": run_one(project, method, dataset, args.params)}
                print(f"  exit {entry['run']['returncode']} in {entry['run']['wall_s']} s", flush=True)
            if entry.get("run", {}).get("returncode") not in (0, None) and Path(entry["run"]["log"]).exists():
                entry["run"]["error"] = error_of(Path(entry["run"]["log"]).read_text(errors="replace"))
            if entry.get("run", {}).get("returncode") == 0:
                try:
                    entry.update(collect(project, method, dataset))
                except (OSError, KeyError, ValueError, StopIteration) as exc:
                    entry["error"] = f"metrics.json not read: {exc!r}"
            if entry:
                results[method][dataset] = entry
            _write(output, markdown_path, args, results, project)
    _write(output, markdown_path, args, results, project)
    print(f"wrote {output} and {markdown_path}")
    return 0


def _write(output: Path, markdown_path: Path, args: argparse.Namespace, results: dict, project: Path) -> None:
    commit = _git("rev-parse", "--short", "HEAD")
    ordered = {m: {d: results[m][d] for d in DATASETS if d in results.get(m, {})} for m in METHODS if results.get(m)}
    report = {
        "command": "python benchmarks/generalisation.py" + (" --quick" if args.quick else "")
        + (f" --params {args.params}" if args.params else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": commit,
        "run_commits": sorted({e["run"].get("commit", "?") for r in ordered.values() for e in r.values() if "run" in e}),
        "quick": args.quick,
        "project_copy": str(project),
        "datasets": {
            name: {"kind": _kind(name), "source": spec["source"], "held_out": spec["held_out"], "note": spec["note"],
                   "methods": [m for m in METHODS if runs_for(m, name)], "declared": declarations(Path("<sim>")).get(name)}
            for name, spec in DATASETS.items()
        },  # fmt: skip
        "not_declared": NOT_DECLARED,
        "results": ordered,
        "summary": {m: summarise(m, r) for m, r in ordered.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1, default=str) + "\n")
    markdown_path.write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
