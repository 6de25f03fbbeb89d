"""Independent trainings side by side, one process each.

On a CPU, a small network trains fastest on one thread (more threads spin against each
other), so a second core is only used by training something else at the same time. A
node with independent trainings (scGen's models per held-out type) hands them to
:func:`run_in_processes`: each job runs in a fresh spawned
process with the run's thread count, and the results come back in job order. Every
training seeds itself, so a job gives the same numbers in a worker as in the calling
process (same seed, data, parameters, threads and device).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from omicsgen.models.runtime import current_processes, current_threads, set_threads

logger = logging.getLogger(__name__)


def _start_worker(threads: int, level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s [worker] %(name)s: %(message)s")
    set_threads(threads)


class _BackedFile:
    """A backed AnnData sent to a worker: HDF5 handles cannot be pickled, so the worker
    reopens the file (read-only) and gets the annotations as they are here."""

    def __init__(self, adata: Any):
        self.filename = str(adata.filename)
        self.obs, self.var, self.uns, self.obsm = adata.obs, adata.var, dict(adata.uns), dict(adata.obsm)

    def open(self) -> Any:
        from omicsgen.preprocessing.backed import read_backed

        adata = read_backed(self.filename)
        adata.obs, adata.var, adata.uns = self.obs, self.var, self.uns
        for key, value in self.obsm.items():
            adata.obsm[key] = value
        return adata


def _portable(value: Any) -> Any:
    return _BackedFile(value) if getattr(value, "isbacked", False) else value


def _opened(value: Any) -> Any:
    return value.open() if isinstance(value, _BackedFile) else value


def _call(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    return function(*map(_opened, args), **{key: _opened(value) for key, value in kwargs.items()})


def submit(pool: ProcessPoolExecutor, function: Callable[..., Any], *args: Any, **kwargs: Any):
    """``pool.submit(function, *args, **kwargs)``, backed AnnData arguments reopened in the worker."""
    return pool.submit(_call, function, tuple(map(_portable, args)), {k: _portable(v) for k, v in kwargs.items()})


def run_in_processes(
    function: Callable[..., Any], jobs: Sequence[tuple], processes: int | None = None
) -> list[Any]:
    """``[function(*job) for job in jobs]``, in up to ``processes`` worker processes
    (default: the run's ``runtime.processes``). With one process or one job, everything
    runs here. ``function`` and the jobs must be picklable (module-level functions,
    AnnData, dicts)."""
    processes = min(current_processes() if processes is None else processes, len(jobs))
    if processes <= 1:
        return [function(*job) for job in jobs]
    logger.info("%d trainings in %d processes (%d thread(s) each)", len(jobs), processes, current_threads())
    with worker_pool(processes) as pool:
        futures = [submit(pool, function, *job) for job in jobs]
        return [future.result() for future in futures]


def worker_pool(processes: int) -> ProcessPoolExecutor:
    """``processes`` spawned workers, each with the run's thread count and log level."""
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=get_context("spawn"),  # a fork would copy torch's thread pools mid-state
        initializer=_start_worker,
        initargs=(current_threads(), logging.getLogger().getEffectiveLevel()),
    )
