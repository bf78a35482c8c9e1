"""The machine's other cores for the CPU-bound steps: adapting records and the embedded
summarizer run in a pool of worker processes, while this process stays the one DuckDB writer.

Why processes: both steps are pure Python, so threads would share one core under the GIL.
Why the spawn start method: this process holds a DuckDB connection and its threads, which a
forked worker would inherit mid-flight; a fork server would outlive a killed parent. Spawned
workers are this process's own children, and each watches it and ends when it is gone. Why
a floor (`MIN_ITEMS`): a pool costs about a second to start, which a tick of
a few interactions (a test, a webhook batch) would only lose.

Results come back in input order, so what is stored is the same as one process would store
(tested), and `TRACEWATCH_WORKERS=1` turns the pool off.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

WORKERS_ENV = "TRACEWATCH_WORKERS"
MIN_ITEMS = 256  # fewer items than this are done in this process: a pool would cost more
CHUNK = 32  # items a worker takes at a time: large enough to pay for the pickling round trip

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """Worker processes: $TRACEWATCH_WORKERS, else the cores this process may run on."""
    raw = os.environ.get(WORKERS_ENV)
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{WORKERS_ENV}={raw!r}: give a whole number of processes, 1 or more")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    cur: list[T] = []
    for item in items:
        cur.append(item)
        if len(cur) >= size:
            yield cur
            cur = []
    if cur:
        yield cur


def _start_worker(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker that goes when its parent goes. A pool's workers wait on a queue whose both
    ends they hold, so a parent that is killed (kill -9, the OOM killer) never wakes them:
    a thread watches the parent and ends the worker when it is gone (also when it went
    while this worker was still starting)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1)

    threading.Thread(target=watch, name="tracewatch-parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


class WorkerPool:
    """A process pool started on first use, that maps a function over chunks in order with
    a bounded number in flight (so a long input is never all in memory at once)."""

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.workers = workers
        self._initializer = initializer
        self._initargs = initargs
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=ctx,
                initializer=_start_worker,
                initargs=(os.getpid(), self._initializer, self._initargs),
            )
        return self._pool

    def submit(self, fn: Callable[[list[T]], R], chunk: list[T]) -> Future[R]:
        return self._executor().submit(fn, chunk)

    def map_ordered(self, fn: Callable[[list[T]], R], parts: Iterable[list[T]]) -> Iterator[R]:
        """fn over each part, results in order, at most four parts per worker in flight."""
        ahead = self.workers * 4
        pending: deque[Future[R]] = deque()
        for part in parts:
            pending.append(self.submit(fn, part))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


__all__ = ["CHUNK", "MIN_ITEMS", "WORKERS_ENV", "WorkerPool", "chunks", "worker_count"]
