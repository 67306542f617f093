"""Many files: one task per file, spread over worker processes when it pays.

The work is split by cost (a file's size stands for it): the biggest files start
first, each on its own, and the small ones follow in batches sized to a fraction of
the total, so no core sits idle at the end while one huge file is still running.
"""

from __future__ import annotations

import gc
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


def file_size(item: Any) -> int:
    """The cost of a task: the size of its file (the first element of a tuple task), 0 if unknown."""
    path = item[0] if isinstance(item, tuple) else item
    try:
        return os.stat(path).st_size
    except (OSError, TypeError, ValueError):
        return 0


def _run_batch(task: Callable[[Any], T], batch: list[tuple[int, Any]],
               after_batch: Callable[[], None] | None = None) -> list[tuple[int, T]]:
    results = [(index, task(item)) for index, item in batch]
    if after_batch is not None:
        after_batch()
    return results


def batches_by_cost(paths: Sequence[Any], jobs: int, cost: Callable[[Any], int] = file_size) -> list[list[tuple[int, Any]]]:
    """(index, path) batches, costliest first; each batch costs at most about 1/(8 * jobs) of the
    total, except a single file that costs more on its own."""
    costs = [max(1, cost(p)) for p in paths]
    budget = max(1, sum(costs) // (jobs * 8))
    batches: list[list[tuple[int, Any]]] = []
    current: list[tuple[int, Any]] = []
    spent = 0
    for index in sorted(range(len(paths)), key=lambda i: -costs[i]):
        if current and (spent + costs[index] > budget or len(current) >= 16):
            batches.append(current)
            current, spent = [], 0
        current.append((index, paths[index]))
        spent += costs[index]
    if current:
        batches.append(current)
    return batches


def _start_worker(collector: tuple[bool, tuple[int, ...]], initializer: Callable[..., None], initargs: tuple) -> None:
    # The parent's collector settings (`sync_lint.__main__`), also where workers are spawned, not forked.
    enabled, threshold = collector
    gc.set_threshold(*threshold)
    if not enabled:
        gc.disable()
    initializer(*initargs)


def run_per_file(
    paths: Sequence[str],
    task: Callable[[str], T],
    *,
    initializer: Callable[..., None],
    initargs: tuple,
    jobs: int | None = None,
    on_result: Callable[[T], None] | None = None,
    serial_below: int = 4,
    after_batch: Callable[[], None] | None = None,
    before_pool: Callable[[], None] | None = None,
) -> list[T]:
    """`task(path)` for every path, results in input order (`on_result` is told in the order they finish).

    `initializer(*initargs)` sets up each worker's state once (so a task ships only
    a path); with one job, or fewer than `serial_below` files, everything runs in
    this process. `after_batch()` runs in the worker after each batch of tasks (in this
    process, once at the end), before the batch's results are handed back. `before_pool()` runs
    before worker processes are started, when they are.
    """
    jobs = jobs or os.cpu_count() or 1
    results: list[T] = []
    if jobs == 1 or len(paths) < serial_below:
        initializer(*initargs)
        for path in paths:
            result = task(path)
            results.append(result)
            if on_result:
                on_result(result)
        if after_batch is not None:
            after_batch()
        return results
    slots: list[Any] = [None] * len(paths)
    if before_pool is not None:
        before_pool()
    with ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker,
                             initargs=((gc.isenabled(), gc.get_threshold()), initializer, initargs)) as pool:
        pending = {pool.submit(_run_batch, task, batch, after_batch) for batch in batches_by_cost(paths, jobs)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                for index, result in future.result():
                    slots[index] = result
                    if on_result:
                        on_result(result)
    return slots
