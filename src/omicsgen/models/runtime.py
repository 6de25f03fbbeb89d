"""CPU threads for torch, BLAS and numba, set once per run by the project.

torch's OpenMP threads spin while they wait: on a machine busy with other work, small
networks run 3–100× slower with more threads than free cores. A run therefore sets one
thread count for every library (``runtime.threads``; default: the CPUs this process may
use), and every training record says which count produced its numbers.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

# threadpoolctl limits live as long as their controller object
_blas_limit: Any = None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; cgroup quotas are not seen)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(setting: Any = "auto") -> int:
    if setting in (None, "auto"):
        return available_cpus()
    try:
        threads = int(setting)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        raise ValueError(f"runtime.threads must be 'auto' or a positive integer, got {setting!r}")
    return threads


def set_threads(setting: Any = "auto") -> dict[str, int]:
    """Apply one thread count to torch (intra- and inter-op), BLAS (threadpoolctl), numba
    (at most the pool it launched) and to the OpenMP/BLAS variables subprocesses (Dask
    workers, notebook kernels) inherit."""
    global _blas_limit
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    threads = resolve_threads(setting)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # settable once per process, before inter-op work starts
        pass
    _blas_limit = threadpool_limits(limits=threads, user_api="blas")
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    # NUMBA_NUM_THREADS stays as numba read it at import: numba re-reads it and refuses a
    # value that differs from the thread pool it has launched
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    record = {"threads": threads, "torch_interop_threads": torch.get_num_interop_threads(), "available_cpus": available_cpus()}
    logger.info("threads: %d (torch, BLAS, numba; %d CPUs available)", threads, record["available_cpus"])
    return record


def current_threads() -> int:
    import torch

    return torch.get_num_threads()


#: processes for independent trainings (``runtime.processes``); set per run by the project
_processes: int | None = None


def resolve_processes(setting: Any = "auto", threads: int | None = None) -> int:
    """``auto`` → the CPUs this process may use divided by the threads per process."""
    if setting in (None, "auto"):
        return max(1, available_cpus() // max(threads or current_threads(), 1))
    processes = resolve_threads(setting)  # the same rule: a positive integer
    return processes


def set_processes(setting: Any = "auto") -> int:
    global _processes
    _processes = resolve_processes(setting)
    logger.info("independent trainings: up to %d processes", _processes)
    return _processes


def current_processes() -> int:
    """The processes set for this run (1 outside a run: the API trains where it is called)."""
    return _processes or 1


#: a process holding less than this skips the cyclic garbage collection after a node
COLLECT_ABOVE_BYTES = 1 << 30


def resident_bytes() -> int:
    """This process's resident memory now (0 where /proc is not available)."""
    import os

    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_memory() -> None:
    """Hand memory freed by the last step back to the operating system.

    glibc keeps freed heap pages for reuse, so after a node that built and dropped large
    arrays the process stays as large as its peak; ``malloc_trim`` returns them (as Dask
    workers do between tasks), keeping a long run's footprint near what it holds. Arrays
    caught in reference cycles (AnnData and its views point at each other) are freed by a
    full garbage collection first, but only above :data:`COLLECT_ABOVE_BYTES`: with torch,
    scanpy and numba loaded one collection scans millions of objects (0.3–0.5 s), which
    after every node of a small run cost more than the run's training.
    """
    import ctypes
    import gc

    if resident_bytes() > COLLECT_ABOVE_BYTES:
        gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap, where freed ones are reused
MMAP_THRESHOLD_BYTES = 256 << 20
#: free memory at the heap's top the allocator keeps rather than hands back at once
TRIM_THRESHOLD_BYTES = 512 << 20
_freed_memory_retained = False


def retain_freed_memory() -> bool:
    """Let glibc keep and reuse the large blocks a training step frees, instead of returning
    them to the kernel after every step.

    A step frees and re-allocates gradients and activations of ~22 MB per gene-wide layer
    (scGen on 7,000 genes). By default glibc maps blocks above a threshold that adapts
    between 128 KB and 32 MB, and trims the heap's free top above twice that, handing the
    memory back to the kernel; every page of the next step's blocks is then faulted in
    again. Whether it happens depends on the heap's history: in some epochs up to 380,000
    minor faults and 0.5–0.7 s of system time made a 1.9 s scGen epoch take 2.4–2.6 s
    (benchmarks/scgen.md, "Sparse gene input, the loss, dropout and freed memory"). Fixed thresholds of 256 MB (blocks
    larger than that are still mapped and unmapped on their own) and 512 MB (free heap
    top kept) end that; :func:`release_memory` still returns everything between nodes.
    Applied once per process; returns whether glibc took it (False elsewhere).
    """
    global _freed_memory_retained
    if _freed_memory_retained:
        return True
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    _freed_memory_retained = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _freed_memory_retained
