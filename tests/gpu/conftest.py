"""GPU tests share one GPU: one test module at a time, even under pytest-xdist.

The suite runs with a worker per core, and `--dist loadfile` gives each GPU test
module its own worker. Two processes timing host blocking on the same GPU disturb
each other (one's queued sleep kernels and copies delay the other's), so each
module holds a file lock while it runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import fcntl
except ImportError:  # not POSIX: no other worker to wait for is assumed
    fcntl = None  # type: ignore[assignment]


@pytest.fixture(scope="module", autouse=True)
def one_gpu_module_at_a_time() -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(Path(tempfile.gettempdir()) / "sync-lint-gpu-tests.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
