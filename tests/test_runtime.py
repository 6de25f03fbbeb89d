"""Threads are set once per run, in a fresh process as `kedro run` starts it."""

from __future__ import annotations

import os
import subprocess
import sys


def test_threads_apply_in_a_fresh_process_without_thread_variables():
    """numba refuses a NUMBA_NUM_THREADS that differs from the pool it launched; a run that
    sets threads must leave it alone and still compile and run parallel numba code."""
    code = (
        "import numba, numpy as np\n"
        "from omicsgen.models.runtime import set_threads\n"
        "record = set_threads(1)\n"
        "import torch\n"
        "assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1\n"
        "@numba.njit(parallel=True)\n"
        "def total(x):\n"
        "    s = 0.0\n"
        "    for i in numba.prange(x.shape[0]):\n"
        "        s += x[i]\n"
        "    return s\n"
        "assert total(np.ones(1000)) == 1000.0\n"
        "numba.core.config.reload_config()\n"
        "assert total(np.ones(10)) == 10.0\n"
        "print(record['threads'])\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("1")


def test_retained_freed_memory_is_reused_without_page_faults():
    """A training step frees and re-allocates gradient-sized blocks; by default glibc returns
    them to the kernel and every page faults in again. After retain_freed_memory it reuses them.
    (Blocks of 44 MB: above glibc's largest adaptive threshold, 32 MB, so the default always
    returns them; below it, whether it does depends on the history of the heap.)"""
    code = (
        "import resource, sys, torch\n"
        "from omicsgen.models.runtime import retain_freed_memory\n"
        "if sys.argv[1] == 'retain':\n"
        "    assert retain_freed_memory()\n"
        "def step():\n"
        "    a, b = torch.ones(6998, 1600), torch.ones(6998, 1600)\n"
        "    del a, b\n"
        "for _ in range(3):\n"
        "    step()\n"
        "start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20):\n"
        "    step()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)\n"
    )
    faults = {
        mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True).stdout)
        for mode in ("default", "retain")
    }
    pages_touched = 20 * 2 * 6998 * 1600 * 4 // os.sysconf("SC_PAGE_SIZE")
    assert faults["default"] > 0.9 * pages_touched  # the default: faulted in again, step after step
    assert faults["retain"] < 0.3 * pages_touched  # measured 2-20 %: the heap settles over the first steps
