"""Many files: one task per file, spread over worker processes when it pays."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def run_per_file(
    paths: Sequence[str],
    task: Callable[[str], T],
    *,
    initializer: Callable[..., None],
    initargs: tuple,
    jobs: int | None = None,
    on_result: Callable[[T], None] | None = None,
    serial_below: int = 4,
) -> list[T]:
    """`task(path)` for every path, results in input order.

    `initializer(*initargs)` sets up each worker's state once (so a task ships only
    a path); with one job, or fewer than `serial_below` files, everything runs in
    this process.
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
        return results
    chunksize = max(1, min(16, len(paths) // (jobs * 8) or 1))
    with ProcessPoolExecutor(max_workers=jobs, initializer=initializer, initargs=initargs) as pool:
        for result in pool.map(task, paths, chunksize=chunksize):
            results.append(result)
            if on_result:
                on_result(result)
    return results
