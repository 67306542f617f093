"""`python -m sync_lint` and the `sync-lint` executable: `--version` answered before anything is imported,
and `check` handed to a running daemon (`daemon.py`) before the parser is.

The version is what editors and pre-commit ask most often, and importing click alone
costs about as much as starting Python; every other command goes to the click group.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: see `__main__` below on the working directory's modules
if TYPE_CHECKING:
    from typing import Callable, NoReturn


def main() -> object:
    """Run the command line; the return value is the exit status (the console script exits with it)."""
    if sys.argv[1:] == ["--version"]:
        from sync_lint import __version__

        sys.stdout.write(f"sync-lint, version {__version__}\n")
        return 0
    if len(sys.argv) > 1 and sys.argv[1] in ("check", "fix") and "--no-daemon" not in sys.argv:
        from sync_lint.daemon import run_in_daemon

        status = run_in_daemon(sys.argv[1:])
        if status is not None:
            return status
    if len(sys.argv) > 1 and sys.argv[1] in ("check", "fix"):
        exit_without_teardown(run_here)
    return run_here()


def exit_without_teardown(run: Callable[[], object]) -> NoReturn:
    """Run the command, then end the process without freeing what it built.

    A project check holds millions of objects at its end (summaries, solved facts, call graphs),
    and the interpreter frees them one by one when it exits: 23 s of a 338 s cold check of vLLM
    0.33 (`--jobs 1`), 31 s with the collector run less often. The exit handlers still run (the
    `--no-cache` folders are removed) and the output is flushed; the status is what `sys.exit`
    would have made it."""
    import os

    os._exit(finish(run))


def finish(run: Callable[[], object], interrupted: int | None = None) -> int:
    """Run the command, then the exit handlers, and flush the output; return the status `sys.exit`
    would have given. `interrupted`: the status of a Ctrl-C (None: it propagates)."""
    import atexit

    try:
        status = exit_status(run())
    except SystemExit as exc:
        status = exit_status(exc.code)
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        status = interrupted
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
    return status


def exit_status(code: object) -> int:
    """What `sys.exit(code)` would have made the process's status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def run_here() -> object:
    """Run the command line in this process (also what a daemon's child runs for its caller)."""
    import gc

    # No automatic collection. A check allocates millions of objects that live for the whole run
    # (summaries, facts, call sites), which the collector scanned twice each (young, then middle
    # generation) and hardly ever found garbage in: a check leaves no cycles of its own behind
    # (`tests/test_collector.py`), so reference counting frees what it drops. On a cold vLLM 0.33
    # run (--jobs 2) the collector still took 6 s of each check worker's CPU time with thresholds of
    # (200000, 30, 30); without it the run took 7-11% less time, its largest process about as much memory.
    gc.disable()
    from sync_lint.cli.app import main as group

    return group()


if __name__ == "__main__":
    # `python -m sync_lint` puts the working directory first on the module path, where a checked
    # project's own `typing.py` or `enum.py` would shadow the standard library's modules the linter
    # imports next (the linter never imports the code it checks). The editor client starts the
    # server this way, in the workspace.
    import os

    if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    raise SystemExit(main())
