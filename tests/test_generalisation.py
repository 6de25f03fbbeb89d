"""benchmarks/generalisation.py declares its datasets as valid registry entries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from omicsgen.registry import parse_registry

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "generalisation.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("generalisation", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_declarations_parse_with_the_registry(tmp_path):
    bench = _benchmark()
    declared = bench.declarations(tmp_path / "sim", shared_dir=tmp_path / "shared")
    # conf/local/datasets.yml is merged key by key into conf/base/datasets.yml ("soft" merge)
    base = yaml.safe_load((ROOT / "conf" / "base" / "datasets.yml").read_text())["datasets"]
    merged = {name: {**(base.get(name) or {}), **entry} for name, entry in declared.items()}
    specs = parse_registry({**base, **merged}, ROOT)
    assert set(bench.DATASETS) <= set(specs)
    assert specs["pbmc_batches"].methods == ("aif", "vae")
    for name in declared:
        spec = specs[name]
        if "entry" not in bench.DATASETS[name]:
            continue
        assert spec.kind == bench.DATASETS[name]["entry"]["kind"]
        assert all(Path(p).is_absolute() for p in spec.files.values())
    # shipped datasets only add methods (merged with conf/base/datasets.yml)
    assert declared["pbmc_batches"] == {"methods": ["aif", "vae"]}
    # one held-out check per kind
    held = {bench._kind(n) for n, s in bench.DATASETS.items() if s["held_out"]}
    assert held == {"perturbation", "scrna_batches", "metabolomics"}
