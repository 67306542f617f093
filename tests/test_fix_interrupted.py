"""`--fix` runs that are killed midway, or run twice at once, never leave a damaged file.

Every file of the tree must end either as it was or as the fully fixed text the
library computes for it: the fixer writes each file whole and atomically (a
temporary file, then `os.replace`), and only if it is unchanged on disk since it
was read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixture_support import FIXTURES, wait_until_gone
from sync_lint import api

SOURCE = (FIXTURES / "SL304" / "positive.py").read_text(encoding="utf-8")
ARGS = ["-m", "sync_lint", "check", "--fix", "--unsafe-fixes", "--isolated", "--target-torch-version", "2.11",
        "--no-progress", "--output-format", "concise", "--exit-zero"]


def _variants() -> list[str]:
    """The fixture in a few shapes: LF, CRLF, and a copy with its own body so no two files are alike."""
    return [SOURCE, SOURCE.replace("\n", "\r\n"), SOURCE.replace("scale", "factor")]


@pytest.fixture(scope="module")
def expected() -> dict[str, str]:
    """Each variant -> its fully fixed text, from the library."""
    plan = api.plan(isolated=True, target_torch_version="2.11")
    out = {}
    for text in _variants():
        report = api.run_source(plan, text, "m.py", fix=api.FixMode(unsafe=True))
        assert report.source_output is not None and report.source_output != text
        out[text] = report.source_output
    return out


def _tree(root: Path, copies: int) -> dict[Path, str]:
    variants = _variants()
    files = {}
    for index in range(copies):
        path = root / f"pkg{index % 4}" / f"m{index}.py"
        path.parent.mkdir(exist_ok=True)
        text = variants[index % len(variants)]
        path.write_bytes(text.encode("utf-8"))
        files[path] = text
    return files


def _start(root: Path, jobs: int) -> subprocess.Popen:
    # A session of its own: the signal goes to the run and its worker processes, as a
    # terminal's would.
    return subprocess.Popen([sys.executable, *ARGS, "--jobs", str(jobs), str(root)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _states(files: dict[Path, str], expected: dict[str, str]) -> dict[str, int]:
    """How many files are original and how many fixed; fails on any other content."""
    counts = {"original": 0, "fixed": 0}
    for path, text in files.items():
        now = path.read_bytes().decode("utf-8")
        if now == text:
            counts["original"] += 1
        else:
            assert now == expected[text], f"{path.name} is neither its original nor its fixed text"
            counts["fixed"] += 1
    return counts


def _wait_for_a_change(files: dict[Path, str], proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(path.read_bytes() != text.encode("utf-8") for path, text in files.items()):
            return
        time.sleep(0.005)
    raise AssertionError("the fix run changed no file in time" if proc.poll() is None else
                         f"the fix run ended before it was interrupted: {proc.stderr.read()!r}")  # type: ignore[union-attr]


def _wait_for_group(pgid: int, timeout: float = 30.0) -> None:
    """Until no process of the run is left (workers included), so nothing writes after the check."""
    if not wait_until_gone(lambda: os.killpg(pgid, 0), timeout):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_fix_run_leaves_each_file_original_or_fixed(tmp_path, expected, sig):
    files = _tree(tmp_path, 40)
    proc = _start(tmp_path, jobs=2)
    try:
        _wait_for_a_change(files, proc)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
    finally:
        _wait_for_group(proc.pid)
        proc.stderr.close()  # type: ignore[union-attr]
    counts = _states(files, expected)
    assert counts["fixed"] >= 1 and counts["original"] >= 1, counts  # it really was stopped midway


def test_two_concurrent_fix_runs_never_corrupt_a_file(tmp_path, expected):
    files = _tree(tmp_path, 16)
    procs = [_start(tmp_path, jobs=1) for _ in range(2)]
    errors = [proc.communicate(timeout=300)[1].decode() for proc in procs]
    assert all(proc.returncode in (0, 2) for proc in procs), errors  # 2: a file skipped as changed on disk
    assert "Traceback" not in "".join(errors)
    # Each file was written by one run; where the other had read it first, it saw the
    # change on disk and skipped it.
    assert _states(files, expected) == {"original": 0, "fixed": 16}
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p not in files]
    assert leftovers == []


def test_an_interrupt_mid_write_leaves_the_file_and_no_temporary(tmp_path, monkeypatch):
    from sync_lint import source as source_module

    target = tmp_path / "m.py"
    target.write_text("x = 1\n")
    original = source_module.read_source(str(target))

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(source_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        source_module.write_source(original, "x = 2\n")
    assert target.read_text() == "x = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]
