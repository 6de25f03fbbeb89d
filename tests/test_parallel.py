"""Independent trainings in worker processes give the numbers they give in-process."""

from __future__ import annotations

import anndata as ad
import torch

from omicsgen.models import runtime
from omicsgen.models.parallel import run_in_processes
from omicsgen.pipelines.modelling.cscgan.nodes import _train
from omicsgen.preprocessing.cscgan import preprocess_counts
from omicsgen.preprocessing.simulate import simulate_scrna_counts

PARAMS = {
    "input": {"cell_type_key": "cell_type"},
    "model": {"latent_dim": 8, "generator_layers": [16], "critic_layers": [16]},
    "plan": {},
}


def test_two_gans_in_two_processes_equal_the_same_gans_in_one(tmp_path):
    """Also from a backed file: the workers reopen it and stream from it."""
    raw = simulate_scrna_counts(n_cells=300, n_genes=60, n_cell_types=2, n_markers=10, n_response_genes=10, seed=6)
    prepared = preprocess_counts(raw, min_cells_per_gene=1, min_genes_per_cell=1, library_size=1000,
                                 n_top_genes=None, min_cells_per_type=10)  # fmt: skip
    # a backed file, as large data comes: its HDF5 handle cannot be pickled, workers reopen it
    prepared.write_h5ad(tmp_path / "cells.h5ad")
    cells = ad.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    params = {**PARAMS, "checkpoint_dir": str(tmp_path)}
    jobs = [
        (cells, params, {"generator_steps": 6, "batch_size": 16, "seed": seed, "progress": False}, f"run{seed}")
        for seed in (0, 1)
    ]  # fmt: skip
    runtime.set_threads(1)
    in_process = run_in_processes(_train, jobs, processes=1)
    in_workers = run_in_processes(_train, jobs, processes=2)
    for (here, here_record), (there, there_record) in zip(in_process, in_workers, strict=True):
        assert there_record["threads"] == here_record["threads"] == 1
        assert [r["train_generator_loss"] for r in there_record["history"]] == [
            r["train_generator_loss"] for r in here_record["history"]
        ]
        for name, weights in here["state_dict"].items():
            for key, value in weights.items():
                assert torch.equal(value, there["state_dict"][name][key]), (name, key)
    # different seeds, different GANs: the comparison above is not trivially true
    first, second = (dict(result[0]["state_dict"]["generator"]) for result in in_process)
    assert any(not torch.equal(first[key], second[key]) for key in first)


def test_processes_default_to_cores_over_threads(monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 8)
    assert runtime.resolve_processes("auto", threads=2) == 4
    assert runtime.resolve_processes("auto", threads=16) == 1
    assert runtime.resolve_processes(3, threads=1) == 3
