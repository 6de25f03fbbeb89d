"""``OverlapRunner``: the project's default runner (``kedro run``; see ``omicsgen.cli``).

A small network trains fastest on one CPU thread, so a second core only helps by doing
something else at the same time. This runner schedules nodes as Kedro's ThreadRunner does
(every node whose inputs are ready starts), with one rule that keeps a run exactly what a
sequential run computes: **one node body at a time in this process** (scanpy, matplotlib
and the global random generators are not thread-safe). Only nodes tagged
:data:`TRAINING_TAG` leave this process: their function runs in a spawned worker process
of its own, with the run's thread count (up to ``runtime.processes`` at once), and while
they train the other nodes, other trainings included, go on. Hooks, loading and saving
stay here.

Every training seeds itself, and every other node is a function of its inputs, so the
numbers are those of ``kedro run --runner SequentialRunner`` (tested); only the order of the
log lines differs. With ``runtime.processes: 1`` nothing overlaps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from kedro.runner.runner import AbstractRunner

#: nodes with this tag train in a worker process
TRAINING_TAG = "training"


class _OneBodyAtATime(ThreadPoolExecutor):
    """Runs every submitted task while holding ``lock``."""

    def __init__(self, max_workers: int, lock: threading.Lock):
        super().__init__(max_workers=max_workers, thread_name_prefix="node")
        self._lock = lock

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        def locked() -> Any:
            with self._lock:
                return fn(*args, **kwargs)

        return super().submit(locked)


class _InWorker:
    """A node function that runs in a worker process of its own (which exits with the
    training, taking its memory along); this thread gives up the lock while it waits, so
    that other nodes run. ``slots`` bounds the trainings running at once."""

    def __init__(self, function: Callable, slots: threading.Semaphore, lock: threading.Lock):
        self.function, self.slots, self.lock = function, slots, lock
        self.__name__ = getattr(function, "__name__", "node")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)
        self.__module__ = getattr(function, "__module__", __name__)
        self.__doc__ = getattr(function, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from omicsgen.models.parallel import submit, worker_pool

        self.lock.release()
        try:
            with self.slots, worker_pool(1) as pool:
                _LIVE_POOLS.add(pool)
                try:
                    return submit(pool, self.function, *args, **kwargs).result()
                finally:
                    _LIVE_POOLS.discard(pool)
        finally:
            self.lock.acquire()


#: worker pools of trainings in progress (terminated if the run fails)
_LIVE_POOLS: set = set()


class OverlapRunner(AbstractRunner):
    """Trainings (nodes tagged ``training``) in worker processes, overlapping each other and
    the rest of the run; every other node in this process, one at a time."""

    def __init__(self, is_async: bool = False, processes: int | None = None):
        super().__init__(is_async=False)
        self._processes = processes

    def _get_executor(self, max_workers: int) -> Executor | None:
        return self._executor

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        from omicsgen.models.runtime import current_processes

        processes = self._processes or current_processes()
        trainings = [n for n in pipeline.nodes if TRAINING_TAG in n.tags]
        if processes <= 1 or not trainings:
            SequentialRunner()._run(pipeline, catalog, hook_manager, run_id)
            return
        lock, slots = threading.Lock(), threading.Semaphore(processes)
        nodes = [
            n._copy(func=_InWorker(n.func, slots, lock)) if TRAINING_TAG in n.tags else n for n in pipeline.nodes
        ]
        # a thread per node that may be waiting at once; only the lock's holder computes here
        self._executor = _OneBodyAtATime(max_workers=len(nodes), lock=lock)
        try:
            super()._run(Pipeline(nodes), catalog, hook_manager, run_id)
        finally:
            for pool in list(_LIVE_POOLS):  # a failed run leaves no training behind
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
