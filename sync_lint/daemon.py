"""A warm process for `sync-lint check`: the imports done once, each check a forked child of it.

A check of one file in a warm project spends more than half its wall time before it reads a line:
starting Python, click, libcst (about 0.2 s, most of it building libcst's node classes) and the
rule pack. `sync-lint daemon start` pays that once. The daemon imports what a check needs, then
waits on a Unix socket. `sync-lint check` (and `fix`) looks for a daemon of the same code first;
when one answers, it hands over its arguments, working directory, environment, umask and its
standard streams themselves (the file descriptors, so a terminal stays a terminal), and the daemon
forks a child that runs the command as this process would have, then sends back the exit status.
Ctrl-C in the caller reaches the child.

Only imports are kept between checks: each child starts from the state the imports left, and
reads the project, its configuration and its cache as a fresh process does, so a check through
the daemon prints what it would have printed alone. A daemon is found by the signature of the
code it runs (the one the cache keys results by, `fingerprint.py`, with the interpreter): after an
upgrade or an edit of a rule, checks stop using it, and it exits at its next wake-up.

The socket lives in a folder only its user may enter (`$XDG_RUNTIME_DIR/sync-lint`, else
`/tmp/sync-lint-<uid>`, or `$SYNC_LINT_DAEMON_DIR`), and the daemon serves only callers of its
own user. Linux only, like the index update in a forked child.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable

# How long a daemon with nothing to do stays up (`sync-lint daemon start --idle-timeout`).
IDLE_TIMEOUT_S = 3 * 60 * 60
# How often an idle daemon wakes up to see whether its code changed or its time is up.
_WAKE_S = 10.0
_HEADER = struct.Struct("!I")  # the length of a request's JSON
_PID = struct.Struct("!cq")  # b"P", the child serving the request
_STATUS = struct.Struct("!ci")  # b"R", the child's exit status
_MAX_REQUEST = 1 << 20
# How long a caller waits for the daemon to fork the child of its check (a daemon stopped with
# SIGSTOP, or swapped out, must not hang a commit hook for ever).
_START_TIMEOUT_S = 30.0


class DaemonError(Exception):
    """The daemon cannot run here (a platform without it, a folder someone else owns)."""


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "send_fds")


def _folder() -> Path:
    explicit = os.environ.get("SYNC_LINT_DAEMON_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "sync-lint"
    import tempfile  # only here: the caller's start-up is what the daemon saves

    return Path(tempfile.gettempdir()) / f"sync-lint-{os.getuid()}"


def _private_folder(create: bool) -> Path | None:
    """The socket's folder, made if asked; None when it is missing, or not this user's alone."""
    folder = _folder()
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(f"cannot create {folder}: {exc.strerror or exc}") from None
    try:
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        if create:
            raise DaemonError(f"{folder} must be a folder that only this user can open (mode 700)")
        return None
    return folder


def code_signature() -> str:
    """What a daemon and its caller must share: sync-lint's code and the interpreter running it."""
    from sync_lint.fingerprint import code_files, stat_digest

    return stat_digest(code_files(), f"daemon:{sys.executable}:{sys.version}")


def socket_path(signature: str | None = None, *, create: bool = False) -> Path | None:
    folder = _private_folder(create)
    if folder is None:
        return None
    # A Unix socket's path is limited to 107 bytes: a short name.
    return folder / f"{(signature or code_signature())[:20]}.sock"


# --- the caller's side -------------------------------------------------------------------------
def _exchange(path: Path, request: dict[str, Any], fds: tuple[int, ...] = (), *,
              timeout: float | None = 2.0) -> socket.socket | None:
    """A connection to the daemon at `path` with `request` sent (and `fds` passed); None when none answers."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(timeout)
        client.connect(str(path))
        body = json.dumps(request).encode("utf-8")
        socket.send_fds(client, [_HEADER.pack(len(body)) + body], list(fds))
        client.settimeout(None)
        return client
    except OSError:
        client.close()
        return None


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def run_in_daemon(argv: list[str]) -> int | None:
    """Run the command line `argv` (without the program name) in a daemon of this code; its exit
    status, or None when no daemon took it (then the caller runs it itself)."""
    if not supported() or os.environ.get("SYNC_LINT_NO_DAEMON"):
        return None
    try:  # no daemon at all, the common case: decided before the code's signature is computed
        if not any(name.endswith(".sock") for name in os.listdir(_folder())):
            return None
    except OSError:
        return None
    path = socket_path()
    if path is None or not path.exists():
        return None
    request = {
        "kind": "run", "argv0": sys.argv[0], "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
        "umask": _umask(),
        "streams": [[stream.encoding, stream.errors] if stream is not None else None
                    for stream in (sys.stdin, sys.stdout, sys.stderr)],
    }
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    conn = _exchange(path, request, (0, 1, 2))
    if conn is None:
        return None
    with conn:
        conn.settimeout(_START_TIMEOUT_S)
        try:
            started = _read_exactly(conn, _PID.size)
        except TimeoutError:
            # Not run here: a child forked late would check as well, on the same streams.
            sys.stderr.write(f"sync-lint: error: the daemon at {path} started no check in {_START_TIMEOUT_S:.0f} s; "
                             "stop it (`sync-lint daemon stop`, or kill it) or check with --no-daemon\n")
            return 2
        if started is None:
            return None  # refused (other code, shutting down) before a child started: run here
        conn.settimeout(None)
        _tag, pid = _PID.unpack(started)
        forward = _forward_signals(pid)
        try:
            ended = _read_exactly(conn, _STATUS.size)
        finally:
            forward()
    if ended is None:
        sys.stderr.write(f"sync-lint: error: the daemon's check (process {pid}) ended without an exit status\n")
        return 2
    return int(_STATUS.unpack(ended)[1])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _forward_signals(pid: int) -> Callable[[], None]:
    """Send Ctrl-C and termination on to the child doing the work; returns what undoes it."""
    def send(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    previous = {signum: signal.signal(signum, send) for signum in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return restore


def ask(request: dict[str, Any], path: Path | None = None) -> dict[str, Any] | None:
    """A control request (`status`, `stop`) to the daemon of this code; its answer, None when none answers."""
    path = path or socket_path()
    if path is None or not path.exists():
        return None
    conn = _exchange(path, request)
    if conn is None:
        return None
    with conn:
        conn.settimeout(5.0)
        try:
            header = _read_exactly(conn, _HEADER.size)
            if header is None:
                return None
            body = _read_exactly(conn, _HEADER.unpack(header)[0])
        except OSError:
            return None
    return json.loads(body) if body is not None else None


# --- the daemon's side -------------------------------------------------------------------------
def warm_up() -> None:
    """Import what a check imports, and nothing that reads the disk or the environment besides
    sync-lint's own code."""
    import importlib

    import sync_lint.cli.check  # noqa: F401  (registers `check`, `fix`, `baseline`; imports the API)
    from sync_lint import api

    api._rule_classes()  # the rule pack, and libcst with it
    # Every module a check imports, or each child imports it again (`test_daemon`: a check imports
    # nothing the daemon has not). `sync_lint.__main__` too: the daemon itself runs as `__main__`.
    for name in ("sync_lint.__main__", "sync_lint.engine.lint", "sync_lint.engine.parallel", "sync_lint.engine.stack",
                 "sync_lint.engine.unused_noqa", "libcst.native", "sync_lint.discovery", "sync_lint.catalogue",
                 "sync_lint.project.build", "sync_lint.project.background", "sync_lint.project.ahead",
                 "sync_lint.project.infer", "sync_lint.project.store", "sync_lint.project.hot",
                 "sync_lint.project.view", "sync_lint.hotpaths", "sync_lint.fix.passes", "sync_lint.reporters.full",
                 "sync_lint.reporters.concise", "sync_lint.reporters.json_format", "sync_lint.reporters.github",
                 "sync_lint.reporters.sarif", "rich.console", "rich.progress", "rich.text", "sqlite3",
                 "concurrent.futures.process"):
        importlib.import_module(name)
    from sync_lint.project.store import summary_fingerprint, tool_fingerprint

    # Digests of this code's contents, which every project check reads: a daemon serves only
    # callers that run the same code (`code_signature`), and it exits when that code changes.
    tool_fingerprint()
    summary_fingerprint()


def serve(idle_timeout: float = IDLE_TIMEOUT_S, *, ready: Callable[[Path], None] | None = None) -> None:
    """Listen until idle for `idle_timeout` seconds, asked to stop, or this code changed on disk."""
    if not supported():
        raise DaemonError("the daemon needs Linux")
    signature = code_signature()
    path = socket_path(signature, create=True)
    assert path is not None
    warm_up()
    import gc

    gc.collect()
    gc.freeze()  # the children share these pages: no collection in them should touch them
    # The daemon itself lives on between checks (each child turns collection off again, `run_here`).
    gc.enable()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if path.exists():
        if ask({"kind": "status"}, path) is not None:
            raise DaemonError(f"a daemon of this code is running already ({path})")
        path.unlink()
    listener.bind(str(path))
    listener.listen(64)
    bound = path.stat().st_ino
    started = last = time.monotonic()
    served = 0
    children: set[int] = set()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if ready is not None:
        ready(path)
    try:
        while True:
            readable, _, _ = select.select([listener], [], [], _WAKE_S)
            _reap(children)
            now = time.monotonic()
            if not readable:
                if code_signature() != signature:
                    return  # the code changed: a caller of the new code finds no daemon, and runs alone
                if not children and now - last > idle_timeout:
                    return
                continue
            conn, _ = listener.accept()
            last = now
            with conn:
                request, fds = _receive(conn)
                kind = request.get("kind") if request is not None else None
                if kind == "run" and len(fds) == 3:
                    served += 1
                    children.add(_fork_check(conn, request, fds))
                elif kind == "status":
                    _answer(conn, {"pid": os.getpid(), "uptime_s": round(now - started, 1), "checks": served,
                                   "running": len(children), "socket": str(path), "python": sys.executable})
                elif kind == "stop":
                    _answer(conn, {"stopped": os.getpid()})
                    return
                _close(fds)
    finally:
        try:
            if path.stat().st_ino == bound:  # not a socket another daemon has bound since
                path.unlink()
        except OSError:
            pass
        listener.close()


def _reap(children: set[int]) -> None:
    """Forget the children that ended (collecting their status, so none is left a zombie)."""
    while children:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


def _receive(conn: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """A request and the file descriptors passed with it (the caller's to close, whatever came)."""
    conn.settimeout(5.0)
    fds: list[int] = []
    try:
        if not _same_user(conn):
            return None, fds
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
        if len(data) < _HEADER.size:
            return None, fds
        size = _HEADER.unpack(data[:_HEADER.size])[0]
        if size > _MAX_REQUEST:
            return None, fds
        body = data[_HEADER.size:]
        if len(body) < size:
            rest = _read_exactly(conn, size - len(body))
            if rest is None:
                return None, fds
            body += rest
        return json.loads(body), fds
    except (OSError, ValueError):
        return None, fds


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _answer(conn: socket.socket, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode("utf-8")
    try:
        conn.sendall(_HEADER.pack(len(body)) + body)
    except OSError:
        pass


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _fork_check(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    """Fork the child that runs `request`; its pid."""
    pid = os.fork()
    if pid != 0:
        return pid  # the daemon: the child owns the connection and the streams now
    status = 2
    try:
        conn.sendall(_PID.pack(b"P", os.getpid()))
        status = _run_as_caller(request, fds)
    except BaseException as exc:  # never return into the daemon's loop
        try:
            os.write(2, f"sync-lint: error: the daemon could not run the check: {exc!r}\n".encode())
        except OSError:
            pass
    finally:
        try:
            conn.sendall(_STATUS.pack(b"R", status))
        except OSError:
            pass
        os._exit(status)


def _run_as_caller(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become the caller's process (streams, directory, environment), run its
    command line, and return its exit status."""
    import io

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    streams = request.get("streams") or [None, None, None]
    for target, name in enumerate(("stdin", "stdout", "stderr")):
        encoding, errors = streams[target] or ("utf-8", "strict")
        raw = io.FileIO(target, "r" if target == 0 else "w", closefd=False)
        buffered = io.BufferedReader(raw) if target == 0 else io.BufferedWriter(raw)
        wrapper = io.TextIOWrapper(buffered, encoding=encoding, errors=errors,
                                   line_buffering=target == 2 or raw.isatty(), write_through=target == 2)
        setattr(sys, name, wrapper)
        setattr(sys, f"__{name}__", wrapper)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(int(request["umask"]))
    sys.argv = [request.get("argv0") or "sync-lint", *request["argv"]]
    from sync_lint.__main__ import finish, run_here

    return finish(run_here, interrupted=2)


