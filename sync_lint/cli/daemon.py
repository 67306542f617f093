"""`sync-lint daemon`: start, stop and ask about the warm process that checks run in (`sync_lint.daemon`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import click

from sync_lint import daemon as warm
from sync_lint.api import UsageError
from sync_lint.cli.app import main

_START_WAIT_S = 30.0


@main.group()
def daemon() -> None:
    """A warm process that `check` and `fix` hand their work to (Linux): start-up paid once."""


def _idle_option(func):  # type: ignore[no-untyped-def]
    return click.option("--idle-timeout", type=click.FloatRange(min=1), default=warm.IDLE_TIMEOUT_S, show_default=True,
                        help="Seconds without a check after which the daemon exits.")(func)


@daemon.command()
@_idle_option
def start(idle_timeout: float) -> None:
    """Start a daemon in the background, unless one of this sync-lint runs already."""
    if not warm.supported():
        raise UsageError("the daemon needs Linux")
    running = warm.ask({"kind": "status"})
    if running is not None:
        click.echo(f"sync-lint daemon already running (pid {running['pid']}, {running['socket']})")
        return
    try:
        path = warm.socket_path(create=True)
    except warm.DaemonError as exc:
        raise UsageError(str(exc)) from None
    assert path is not None
    log = path.with_suffix(".log")
    with open(log, "ab") as out:
        logged = out.tell()
        process = subprocess.Popen([sys.executable, "-m", "sync_lint", "daemon", "run", "--idle-timeout",
                                    str(idle_timeout)], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True, cwd="/")
    deadline = time.monotonic() + _START_WAIT_S
    while time.monotonic() < deadline:
        answer = warm.ask({"kind": "status"}, path)
        if answer is not None:
            click.echo(f"sync-lint daemon started (pid {answer['pid']}, {answer['socket']})")
            return
        if process.poll() is not None:
            break
        elsewhere = _listening_elsewhere(log, logged, process.pid, path)
        if elsewhere is not None:
            _stop(process)
            raise UsageError(f"the daemon imported other sync-lint code than this command: it listened on {elsewhere}, "
                             f"not {path}, and was stopped. Is another copy of sync-lint first on the import path "
                             "here (`python -m sync_lint` in a folder holding one)?")
        time.sleep(0.05)
    _stop(process)  # never left running where no check finds it
    raise UsageError(f"the daemon did not start; see {log}")


def _listening_elsewhere(log: Path, offset: int, pid: int, path: Path) -> str | None:
    """The socket the daemon `pid` says (in what it logged past `offset`) it listens on, when not `path`."""
    try:
        with open(log, "rb") as lines:
            lines.seek(offset)
            text = lines.read().decode("utf-8", "replace")
    except OSError:
        return None
    match = re.search(rf"^sync-lint daemon {pid} on (.+)$", text, re.MULTILINE)
    return match.group(1) if match and match.group(1) != str(path) else None


def _stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@daemon.command()
def stop() -> None:
    """Stop the daemon of this sync-lint."""
    answer = warm.ask({"kind": "stop"})
    click.echo(f"sync-lint daemon stopped (pid {answer['stopped']})" if answer else "no sync-lint daemon running")


@daemon.command()
def status() -> None:
    """Say whether a daemon of this sync-lint runs, and what it has done. Exit 1 when none does."""
    answer = warm.ask({"kind": "status"})
    if answer is None:
        click.echo("no sync-lint daemon running")
        sys.exit(1)
    click.echo(f"sync-lint daemon running: pid {answer['pid']}, up {answer['uptime_s']} s, "
               f"{answer['checks']} checks, {answer['socket']}")


@daemon.command()
@_idle_option
def run(idle_timeout: float) -> None:
    """Run the daemon in the foreground (what `start` runs)."""
    try:
        warm.serve(idle_timeout, ready=lambda path: click.echo(f"sync-lint daemon {os.getpid()} on {path}"))
    except warm.DaemonError as exc:
        raise UsageError(str(exc)) from None
