"""Recording *where* syncs happen: sync-debug-mode warnings and GPU trace hooks.

Timing (busy.py) says *whether* the host waited; this module says on which user
line. Two sources:

* `torch.cuda.set_sync_debug_mode("warn")`: PyTorch warns "called a
  synchronizing CUDA operation" from its two C++ sync helpers. The warning's own
  filename is the C++ file, so we capture the *Python* stack when the warning is
  shown and take the first frame outside torch and sync_lint.runtime. It misses
  `torch.cuda.synchronize()`, `Event.synchronize()` and pageable copies.
* optionally, `torch.cuda._gpu_trace` callbacks (private API, the one the CUDA
  sanitizer uses), which also fire for device and event syncs. Activating them is
  process-wide and irreversible (every later allocation calls into Python), hence
  opt-in.

Neither is thread-safe: debug mode and the warnings machinery are process-global.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType, TracebackType
from typing import Any, Callable

from sync_lint.runtime.sites import first_user_site, site_skip_roots

Site = tuple[str, int]

SYNC_WARNING_TEXT = "synchronizing CUDA operation"
_SYNC_WARNING_RE = r".*synchronizing CUDA operation"
# Printed by torch the first time debug mode is switched on; noise for our users.
_PROTOTYPE_RE = r"Synchronization debug mode is a prototype"

_GPU_TRACE_ACTIVE = False


def _activate_gpu_trace(torch: ModuleType) -> bool:
    global _GPU_TRACE_ACTIVE
    if not _GPU_TRACE_ACTIVE:
        try:
            torch._C._activate_gpu_trace()
        except Exception:  # private API: absent or changed in this torch
            return False
        _GPU_TRACE_ACTIVE = True
    return True


class SyncCapture:
    """Context manager: while active, records the user site of every sync.

    `debug_sites` gets one entry per sync-debug warning (None when no user frame
    was found); `trace_sites` one (kind, site) per GPU-trace callback, kind being
    "device_sync", "stream_sync" or "event_sync".
    """

    def __init__(self, torch: ModuleType, gpu_trace: bool = False) -> None:
        self._torch = torch
        self._want_trace = gpu_trace
        self._skip = site_skip_roots()
        self.debug_sites: list[Site | None] = []
        self.trace_sites: list[tuple[str, Site | None]] = []
        self.gpu_trace_active = False
        self._prev_mode: int | None = None
        self._catcher: Any = None
        self._prev_show: Callable[..., Any] | None = None
        self._registered: list[tuple[Any, Callable[..., None]]] = []

    # -- warnings ----------------------------------------------------------
    def _show(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if SYNC_WARNING_TEXT in str(message):
            self.debug_sites.append(first_user_site(sys._getframe(1), self._skip))
            return
        # Anything else goes where it would have gone (pytest's recorder, stderr).
        assert self._prev_show is not None
        self._prev_show(message, category, filename, lineno, file, line)

    # -- gpu trace -----------------------------------------------------------
    def _trace_callback(self, kind: str) -> Callable[..., None]:
        def callback(*_args: object) -> None:
            self.trace_sites.append((kind, first_user_site(sys._getframe(1), self._skip)))

        return callback

    def _register_trace(self) -> None:
        if not _activate_gpu_trace(self._torch):
            return
        try:
            from torch.cuda import _gpu_trace
        except ImportError:
            return
        for kind, registry_name in (
            ("device_sync", "DeviceSynchronizationCallbacks"),
            ("stream_sync", "StreamSynchronizationCallbacks"),
            ("event_sync", "EventSynchronizationCallbacks"),
        ):
            registry = getattr(_gpu_trace, registry_name, None)
            if registry is None or not hasattr(registry, "callback_list"):
                continue
            callback = self._trace_callback(kind)
            registry.add_callback(callback)
            self._registered.append((registry, callback))
        self.gpu_trace_active = bool(self._registered)

    def _unregister_trace(self) -> None:
        for registry, callback in self._registered:
            try:
                registry.callback_list.remove(callback)
            except ValueError:
                pass
        self._registered.clear()

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> SyncCapture:
        cuda = self._torch.cuda
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.filterwarnings("ignore", message=_PROTOTYPE_RE)
        # "always": the default action shows a warning once per location, and the
        # C++ location is the same for every sync; we need every occurrence. First
        # in the filter list, so `-W error` does not turn it into an exception.
        warnings.filterwarnings("always", message=_SYNC_WARNING_RE)
        self._prev_show = warnings.showwarning
        warnings.showwarning = self._show
        self._prev_mode = int(cuda.get_sync_debug_mode())
        cuda.set_sync_debug_mode("warn")
        if self._want_trace:
            self._register_trace()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._unregister_trace()
            if self._prev_mode is not None:
                self._torch.cuda.set_sync_debug_mode(self._prev_mode)
        finally:
            # catch_warnings restores showwarning and the filters.
            self._catcher.__exit__(exc_type, exc, tb)
