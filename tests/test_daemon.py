"""The daemon (`sync_lint/daemon.py`): a check handed to it prints what the same check prints alone,
with the same exit status, through the caller's streams, directory and environment; Ctrl-C in the
caller reaches it; `stop` ends it; a daemon that does not take a check leaves it to the caller."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fixture_support import wait_until_gone
from sync_lint import daemon

pytestmark = pytest.mark.skipif(not daemon.supported(), reason="the daemon runs on Linux only")

SOURCE = "import torch\n\n\ndef total():\n    x = torch.ones(3, device='cuda')\n    return x.sum().item()\n"
CLEAN = "def total(values):\n    return sum(values)\n"


def _sync_lint(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sync_lint", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "step.py").write_text(SOURCE)
    (root / "clean.py").write_text(CLEAN)
    return root


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A daemon of this code in a folder of the test's own; the environment that finds it."""
    folder = tmp_path / "daemons"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("SYNC_LINT_DAEMON_DIR", str(folder))
    monkeypatch.delenv("SYNC_LINT_NO_DAEMON", raising=False)
    env = dict(os.environ)
    started = _sync_lint("daemon", "start", "--idle-timeout", "300", env=env, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "daemon started" in started.stdout
    yield env
    _sync_lint("daemon", "stop", env=env, cwd=tmp_path)


def _checks() -> int:
    answer = daemon.ask({"kind": "status"})
    assert answer is not None, "the daemon stopped answering"
    return int(answer["checks"])


@pytest.mark.parametrize("output_format", ["concise", "json", "full"])
def test_a_check_through_the_daemon_prints_what_it_prints_alone(running, project: Path, output_format: str) -> None:
    args = ("check", "step.py", "clean.py", "--output-format", output_format, "--cache-dir", str(project / "c"))
    alone = _sync_lint(*args, "--no-daemon", env=running, cwd=project)
    before = _checks()
    through = _sync_lint(*args, env=running, cwd=project)
    assert _checks() == before + 1  # the daemon ran it, in the caller's directory (relative paths)
    assert alone.returncode == through.returncode == 1
    assert "SL101" in through.stdout
    assert through.stdout == alone.stdout
    assert through.stderr == alone.stderr


def test_a_clean_check_and_stdin_go_through_the_daemon_too(running, project: Path) -> None:
    before = _checks()
    clean = _sync_lint("check", "clean.py", "--isolated", env=running, cwd=project)
    piped = _sync_lint("check", "-", "--stdin-filename", "piped.py", "--isolated", "--output-format", "concise",
                       env=running, cwd=project, stdin=SOURCE)
    assert _checks() == before + 2
    assert clean.returncode == 0 and "All checks passed" in clean.stdout
    assert piped.returncode == 1 and "piped.py:6:" in piped.stdout and "SL101" in piped.stdout


def test_the_daemon_reads_the_callers_environment(running, project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache-from-env"
    env = dict(running, SYNC_LINT_CACHE_DIR=str(cache))
    before = _checks()
    done = _sync_lint("check", "step.py", env=env, cwd=project)
    assert _checks() == before + 1
    assert done.returncode == 1
    assert (cache / "index.sqlite").exists() or any(cache.rglob("index.sqlite"))


def test_ctrl_c_in_the_caller_stops_the_check_in_the_daemon(running, project: Path) -> None:
    watching = subprocess.Popen([sys.executable, "-m", "sync_lint", "check", "--watch", "step.py", "--isolated",
                                 "--output-format", "concise"],
                                env=running, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watching.stdout is not None
        deadline = time.monotonic() + 60
        while "SL101" not in watching.stdout.readline():  # the first check is done; the loop waits for a change
            assert time.monotonic() < deadline and watching.poll() is None
        answer = daemon.ask({"kind": "status"})
        assert answer is not None and answer["running"] == 1
        watching.send_signal(signal.SIGINT)
        status = watching.wait(timeout=30)
    finally:
        watching.kill()
    assert status == 1  # `--watch` ends with the last check's status: findings
    deadline = time.monotonic() + 30
    while daemon.ask({"kind": "status"})["running"]:  # type: ignore[index]
        assert time.monotonic() < deadline, "the check went on in the daemon after Ctrl-C"
        time.sleep(0.1)


def test_stop_ends_the_daemon_and_checks_run_alone_again(running, project: Path, tmp_path: Path) -> None:
    path = daemon.socket_path()
    assert path is not None and path.exists()
    stopped = _sync_lint("daemon", "stop", env=running, cwd=tmp_path)
    assert "daemon stopped" in stopped.stdout
    assert not path.exists()
    assert daemon.ask({"kind": "status"}) is None
    done = _sync_lint("check", "step.py", "--isolated", env=running, cwd=project)
    assert done.returncode == 1 and "SL101" in done.stdout
    assert _sync_lint("daemon", "status", env=running, cwd=tmp_path).returncode == 1


def test_a_daemon_that_takes_no_check_leaves_it_to_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "daemons"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("SYNC_LINT_DAEMON_DIR", str(folder))
    monkeypatch.delenv("SYNC_LINT_NO_DAEMON", raising=False)
    path = daemon.socket_path()
    assert path is not None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def refuse() -> None:  # what a daemon shutting down, or of other code, does: close without a child
        conn, _ = listener.accept()
        conn.recv(1 << 16)
        conn.close()

    refusing = threading.Thread(target=refuse)
    refusing.start()
    try:
        assert daemon.run_in_daemon(["check", "nothing.py"]) is None
    finally:
        refusing.join(timeout=10)
        listener.close()
    path.unlink()
    assert daemon.run_in_daemon(["check", "nothing.py"]) is None  # no socket at all


def test_a_folder_others_may_open_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("SYNC_LINT_DAEMON_DIR", str(folder))
    assert daemon.socket_path() is None
    with pytest.raises(daemon.DaemonError, match="only this user"):
        daemon.socket_path(create=True)


def test_a_daemon_that_never_starts_the_check_fails_it_rather_than_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "daemons"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("SYNC_LINT_DAEMON_DIR", str(folder))
    monkeypatch.delenv("SYNC_LINT_NO_DAEMON", raising=False)
    monkeypatch.setattr(daemon, "_START_TIMEOUT_S", 0.5)
    path = daemon.socket_path()
    assert path is not None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)  # a wedged daemon: the connection is queued and never answered
    try:
        started = time.monotonic()
        assert daemon.run_in_daemon(["check", "nothing.py"]) == 2
        assert time.monotonic() - started < 10
    finally:
        listener.close()
    assert "started no check" in capsys.readouterr().err


def test_a_daemon_importing_other_code_than_its_starter_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    # `python -m sync_lint daemon start` in a folder holding another copy of sync-lint: the command
    # runs that copy, the daemon (started in `/`) the installed one, which listens where the command
    # does not look. It was left running, unreachable, for its whole idle timeout.
    import shutil

    repo = Path(__file__).resolve().parents[1]
    client = tmp_path / "checkout"
    shutil.copytree(Path(daemon.__file__).parent, client / "sync_lint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "rules", client / "sync_lint" / "rules", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)  # an installed sync-lint holds its rules already
    folder = tmp_path / "daemons"
    folder.mkdir(mode=0o700)
    env = {**os.environ, "SYNC_LINT_DAEMON_DIR": str(folder)}
    env.pop("SYNC_LINT_NO_DAEMON", None)
    started = _sync_lint("daemon", "start", "--idle-timeout", "300", env=env, cwd=client)
    assert started.returncode == 2
    assert "imported other sync-lint code" in started.stderr and "was stopped" in started.stderr
    logged = "".join(log.read_text() for log in folder.glob("*.log"))
    pid = int(logged.split("sync-lint daemon ")[1].split()[0])
    if not wait_until_gone(lambda: os.kill(pid, 0), timeout=10):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the daemon was left running")


_IMPORTS_AFTER_WARM_UP = """
import sys
from pathlib import Path

from sync_lint import daemon

daemon.warm_up()
before = set(sys.modules)
from sync_lint.__main__ import run_here

step = Path("step.py")
# A cold check, then checks after an edit (the index updated in a forked child), in each output format
# and as a fix.
for round_, extra in enumerate([[], ["--output-format", "json"], ["--output-format", "full"], ["--diff"]]):
    if round_:
        step.write_text(step.read_text() + f"# edit {round_}\\n")
    sys.argv = ["sync-lint", "check", "step.py", "clean.py", "--exit-zero", *extra]
    try:
        run_here()
    except SystemExit:
        pass
print("NEW", sorted(name for name in set(sys.modules) - before if name.split(".")[0] in
                    ("sync_lint", "libcst", "click", "rich")))
"""


def test_a_check_imports_nothing_the_daemon_has_not_imported(project: Path) -> None:
    # Each check is a child the daemon forks: a module it imports is imported again for every check.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_LINT_")}
    done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER_WARM_UP], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "SL102" in done.stdout or "item" in done.stdout, done.stdout  # the checks ran and found the sync
    assert done.stdout.splitlines()[-1] == "NEW []"
