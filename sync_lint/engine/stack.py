"""Running one file's analysis on a thread with a deep stack.

Following a value through a repository nests deeply: a field stored from the return
of a function whose argument is another field is a handful of Python frames per
step, and some steps pass through C (sort keys, `functools.partial`), which uses
the C stack. Python's default limit of 1000 frames, and the main thread's stack,
are too small for that; a thread with a large stack and a matching limit is not.
The stack is reserved address space: only the pages a deep file touches are used.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

STACK_BYTES = 512 * 1024 * 1024
RECURSION_LIMIT = 50_000


def call_with_deep_stack(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` on a thread with a deep stack; its exception, if any, is re-raised here."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    outcome: list = []

    def target() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:  # re-raised in the caller's thread
            outcome.append((False, exc))

    previous = threading.stack_size()
    threading.stack_size(STACK_BYTES)
    try:
        thread = threading.Thread(target=target, name="sync-lint-file")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
