"""Bringing a project's index up to date in a forked child while this process loads the parser.

A check of a few edited files in a warm project starts with two independent pieces of work: the
index update (a `stat` of every file, summaries of the edited ones with the stdlib `ast`, the
cache's bookkeeping) and loading the rules, which imports libcst, then parsing the edited files.
Neither needs the other. On Linux, with a core to spare, a child process forked before either does
the update and hands the `Project` back through a pipe, as `update_project` would have returned
it, while this process imports and parses.

A daemon's child (`sync_lint/daemon.py`) has libcst loaded already, and still parses the files
while its own child updates. A process with other threads (an editor server's) never forks here.
Only small checks use it (a whole-project run's update summarises in a pool of its own, and
remembers the summaries in this process for its workers). A child that fails, or is killed, hands
back nothing, and the update is then done here as before: the cache stays consistent either way,
since concurrent and interrupted updates are safe (`ProjectStore`).
"""

from __future__ import annotations

import os
import pickle
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from sync_lint.project.build import Project


def can_fork() -> bool:
    """Whether a child can do the update alongside: Linux (fork is the safe default there) and more
    than one core the process may use."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores > 1


class PendingUpdate:
    """An update running in a child; `result()` waits for it (or does it here if the child failed)."""

    def __init__(self, pid: int, pipe: int, again: Callable[[], "Project"]) -> None:
        self._pid = pid
        self._pipe = pipe
        self._again = again

    def result(self) -> "Project":
        chunks = []
        with os.fdopen(self._pipe, "rb") as incoming:
            while chunk := incoming.read(1 << 16):
                chunks.append(chunk)
        os.waitpid(self._pid, 0)
        try:
            kind, value = pickle.loads(b"".join(chunks))
        except Exception:  # nothing came back (killed, out of memory): update here
            return self._again()
        if kind == "project":
            return value  # type: ignore[no-any-return]
        # The child raised: raise the same error here, where it is reported as any update's.
        return self._again()

    def done(self) -> bool:
        """Whether the child has handed back its update (or ended): `result()` would not wait."""
        return bool(select.select([self._pipe], [], [], 0)[0])

    def abandon(self) -> None:
        """Stop waiting for the child (this process is ending: an error, Ctrl-C) without redoing its
        work; a child still running finishes its update, which is safe to interrupt or to keep."""
        os.close(self._pipe)
        os.waitpid(self._pid, 0)


def start_update(update: Callable[..., "Project"], root: Path, settings: Any, **options: Any) -> PendingUpdate:
    """`update(root, settings, **options)` in a forked child."""
    sys.stdout.flush()
    sys.stderr.flush()
    incoming, outgoing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code, never runs its exit handlers
        status = 0
        try:
            os.close(incoming)
            try:
                payload: tuple[str, object] = ("project", update(root, settings, **options))
            except BaseException as exc:  # the parent redoes the update and reports the error itself
                payload = ("error", repr(exc))
                status = 1
            with os.fdopen(outgoing, "wb") as out:
                out.write(pickle.dumps(payload))
        finally:
            os._exit(status)
    os.close(outgoing)
    return PendingUpdate(pid, incoming, lambda: update(root, settings, **options))
