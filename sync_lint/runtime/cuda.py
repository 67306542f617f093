"""Finding torch and a CUDA device, lazily.

The linter must work without torch, so nothing here imports torch at module
import time: every function imports it on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from types import ModuleType

from sync_lint.runtime.errors import NoCudaError

NO_CUDA_PREFIX = "no CUDA device"


def import_torch() -> ModuleType:
    """Import and return torch; raises ImportError when it is not installed.

    A function (not a top-level import) so tests can monkeypatch it to simulate a
    machine without torch.
    """
    return importlib.import_module("torch")


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used in this process, or None when it can."""
    try:
        torch = import_torch()
    except ImportError:
        return "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False"
    except Exception as exc:  # a broken driver raises instead of returning False
        return f"torch.cuda.is_available() failed: {exc}"
    return None


def cuda_available() -> bool:
    """True when torch is installed and sees at least one CUDA device."""
    return cuda_unavailable_reason() is None


def no_cuda_message(what: str, reason: str) -> str:
    # One wording everywhere, so skip reasons and error messages are greppable.
    return f"{NO_CUDA_PREFIX}: {what} needs a GPU to measure host blocking ({reason})"


def require_cuda(what: str = "this runtime check") -> ModuleType:
    """Return torch, or raise NoCudaError saying what needed the GPU and why."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise NoCudaError(no_cuda_message(what, reason))
    return import_torch()


def cuda_unavailable_reason_isolated(timeout_s: float = 120.0) -> str | None:
    """Like `cuda_unavailable_reason`, but probes in a child process.

    `sync-lint trace` uses this before running a user program: probing in-process
    would import torch and initialise the CUDA driver before the program had a
    chance to set CUDA_VISIBLE_DEVICES or fork, changing what it does.
    """
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    probe = (
        "import sys, torch\n"
        "ok = torch.cuda.is_available()\n"
        "sys.stdout.write('ok' if ok else 'torch.cuda.is_available() is False')\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"probing CUDA in a child process failed: {exc}"
    out = done.stdout.strip()
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"probing CUDA in a child process failed: {tail[0]}"
    return None if out == "ok" else out
