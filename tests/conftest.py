"""Shared fixtures: small simulated data and a throw-away copy of the Kedro project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# The test networks are tiny: one thread is as fast as two on an idle machine and far
# faster on a busy one (spinning OpenMP threads). Set before torch/numba are imported;
# subprocesses (kedro viz, Dask workers, notebook kernels) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RAW_DATA = PROJECT_ROOT / "data" / "01_raw"


def copy_project(destination: Path) -> Path:
    """Copy what a Kedro run needs (conf, shipped raw data, pyproject) to ``destination``."""
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir()
    shutil.copytree(RAW_DATA, destination / "data" / "01_raw")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    # Kedro wants the source dir to exist; the package itself is imported as installed.
    (destination / "src").mkdir()
    return destination


def run_kedro(project: Path, env: str = "test", **run_kwargs):
    """Run a pipeline of the project copy in ``project`` with a real KedroSession."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        return session.run(**run_kwargs)


def project_registry(project: Path = PROJECT_ROOT, env: str = "test") -> dict:
    """Put the dataset registry of ``project``'s ``env`` in force (as a run of it would) and
    return it: ``{name: DatasetSpec}``."""
    from omicsgen import registry

    root, parameters = registry.read_parameters(project, env=env)
    specs = registry.parse_registry(parameters.get("datasets"), root)
    registry.activate(specs, parameters, root)
    return specs


@pytest.fixture
def kedro_project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the project (conf + data/01_raw) in a temporary directory."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def kang():
    import anndata as ad

    return ad.read_h5ad(RAW_DATA / "kang_pbmc_ifnb" / "kang_pbmc_ifnb.h5ad")


@pytest.fixture(scope="session")
def pbmc_batches():
    import anndata as ad

    return ad.read_h5ad(RAW_DATA / "pbmc_three_chemistries" / "pbmc_three_chemistries.h5ad")


@pytest.fixture(scope="session")
def simulated_counts():
    from omicsgen.preprocessing import simulate_scrna_counts

    return simulate_scrna_counts(n_cells=600, n_genes=300, n_cell_types=3, n_batches=2, seed=7)


@pytest.fixture(autouse=True)
def _fresh_dataset_registry():
    """Each test starts without a dataset registry in force (a session puts its own in)."""
    from omicsgen import registry

    registry._active = None
    yield
    registry._active = None
