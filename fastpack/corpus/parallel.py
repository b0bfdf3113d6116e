"""An ordered, bounded parallel map: results come back in task order with at most `max_pending` in flight.

`multiprocessing.Pool.imap` reads its whole input iterator ahead of the workers, so memory grows
with the corpus; here the producer blocks once `max_pending` tasks are in flight, so memory stays
flat. With one worker everything runs in this process (no pool start-up for small inputs).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def worker_pool(workers: int, initializer: Callable[..., None], initargs: tuple = ()) -> Iterator[Optional[Any]]:
    """A process pool of `workers`, or None (with `initializer` run here) when workers <= 1."""
    if workers <= 1:
        initializer(*initargs)
        yield None
        return
    # forkserver, not fork: this process may hold threads (tqdm's monitor, numba, torch), and a fork
    # copies their locks in whatever state they are in (Python 3.12 warns; it can deadlock).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    pool = context.Pool(workers, initializer, initargs)
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def ordered_map(pool: Optional[Any], func: Callable[[Any], Any], tasks: Iterable[Any], max_pending: int) -> Iterator[Any]:
    """func(task) for each task, in task order; a worker's exception is re-raised here."""
    if pool is None:
        for task in tasks:
            yield func(task)
        return
    pending: deque = deque()
    for task in tasks:
        pending.append(pool.apply_async(func, (task,)))
        if len(pending) >= max_pending:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
