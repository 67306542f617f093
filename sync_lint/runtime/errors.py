"""Exceptions and warnings raised by the runtime checks.

Kept in a module of their own, free of torch, so that the pytest plugin and the
CLI can catch them on machines where torch is not installed.
"""

from __future__ import annotations


class NoCudaError(RuntimeError):
    """A runtime check needs a CUDA device and none is usable here.

    Raised instead of silently passing: a sync check that cannot measure must not
    look like a check that found nothing. The pytest plugin turns it into a skip.
    """


class GpuSyncError(AssertionError):
    """Code inside a `no_gpu_sync` region made the host wait for the GPU.

    An AssertionError so that pytest reports it as a test failure, not an error.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        # The GuardReport that produced this error, for programmatic inspection.
        self.report = report


class GpuSyncWarning(UserWarning):
    """Issued by `no_gpu_sync(action="warn")` instead of raising."""
