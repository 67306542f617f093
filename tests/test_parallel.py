"""Work split by cost: every file once, the costliest first, a huge file in a batch of its own."""

from __future__ import annotations

from sync_lint.engine.parallel import batches_by_cost, run_per_file


def test_batches_hold_every_file_once_costliest_first() -> None:
    costs = {f"f{i}.py": size for i, size in enumerate([10, 5000, 20, 30, 40, 10, 10, 900, 10, 10] * 5)}
    paths = list(costs)
    batches = batches_by_cost(paths, jobs=2, cost=costs.__getitem__)
    flat = [index for batch in batches for index, _ in batch]
    assert sorted(flat) == list(range(len(paths)))
    assert [paths[i] for batch in batches for i, p in batch] == [p for batch in batches for _, p in batch]
    order = [costs[paths[i]] for i in flat]
    assert order == sorted(order, reverse=True)
    huge = [batch for batch in batches if any(costs[p] == 5000 for _, p in batch)]
    assert all(len(batch) == 1 for batch in huge)
    assert len(batches) < len(paths)  # the small ones are batched


def _double(item: str) -> str:
    return item * 2


def _nothing() -> None:
    pass


def test_results_come_back_in_input_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    paths = []
    for i, size in enumerate([3, 300, 30, 3000, 1, 100]):
        path = tmp_path / f"{i}.py"
        path.write_text("x" * size)
        paths.append(str(path))
    seen: list[str] = []
    results = run_per_file(paths, _double, initializer=_nothing, initargs=(), jobs=2, on_result=seen.append)
    assert results == [p * 2 for p in paths]
    assert sorted(seen) == sorted(results)


def _collector(_path: str) -> tuple[bool, tuple[int, ...]]:
    import gc

    return gc.isenabled(), gc.get_threshold()


def test_workers_collect_garbage_as_the_parent_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gc
    import multiprocessing

    import sync_lint.engine.parallel as parallel

    paths = []
    for i in range(6):
        (tmp_path / f"{i}.py").write_text("x = 1\n")
        paths.append(str(tmp_path / f"{i}.py"))
    before = gc.get_threshold()
    real_pool = parallel.ProcessPoolExecutor
    # Spawned workers start from Python's defaults: only what the pool is told carries the setting.
    parallel.ProcessPoolExecutor = lambda **kwargs: real_pool(mp_context=multiprocessing.get_context("spawn"),
                                                              **kwargs)
    enabled = gc.isenabled()
    try:
        gc.set_threshold(12345, 17, 19)
        results = run_per_file(paths, _collector, initializer=_nothing, initargs=(), jobs=2)
        gc.disable()  # as the executable runs a check
        off = run_per_file(paths, _collector, initializer=_nothing, initargs=(), jobs=2)
    finally:
        gc.set_threshold(*before)
        if enabled:
            gc.enable()
        parallel.ProcessPoolExecutor = real_pool
    assert set(results) == {(True, (12345, 17, 19))}
    assert set(off) == {(False, (12345, 17, 19))}


def test_before_pool_runs_only_when_workers_are_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The API waits there for a merge thread: a process must not fork while a thread is in SQLite."""
    import multiprocessing

    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.py"
        path.write_text("x")
        paths.append(str(path))
    calls: list[int] = []

    def before() -> None:
        calls.append(len(multiprocessing.active_children()))

    assert run_per_file(paths, _double, initializer=_nothing, initargs=(), jobs=2, before_pool=before) \
        == [p * 2 for p in paths]
    assert calls == [0]  # once, before any worker was started
    run_per_file(paths[:2], _double, initializer=_nothing, initargs=(), jobs=2, before_pool=before)
    run_per_file(paths, _double, initializer=_nothing, initargs=(), jobs=1, before_pool=before)
    assert calls == [0]  # in this process: no pool
