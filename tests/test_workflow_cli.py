"""Baselines and changed-lines mode through the real CLI (`check --baseline`, `--diff-against`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_lint.cli import main

GPU = 'import torch\nx = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'


def run(*args: str):
    return CliRunner().invoke(main, [*args, "--jobs", "1", "--target-torch-version", "2.11"])


def rows(result) -> list[tuple[str, int]]:
    return [(Path(d["filename"]).name, d["location"]["row"]) for d in json.loads(result.stdout)]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.invalid")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text(GPU)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_baseline_round_trip_reports_only_new_findings(repo: Path) -> None:
    created = CliRunner().invoke(main, ["baseline", "create", "baseline.json", ".", "--jobs", "1"])
    assert created.exit_code == 0 and "Recorded 1 finding" in created.stderr
    clean = run("check", ".", "--baseline", "baseline.json", "--output-format", "json")
    assert clean.exit_code == 0 and json.loads(clean.stdout) == []
    # Shift the old finding down and add a new one: only the new one is reported.
    (repo / "pkg" / "model.py").write_text('"""doc"""\n\n' + GPU + "w = x.max().item()\n")
    result = run("check", ".", "--baseline", "baseline.json", "--output-format", "json")
    assert result.exit_code == 1
    assert rows(result) == [("model.py", 6)]


def test_show_stale_lists_entries_that_match_nothing(repo: Path) -> None:
    CliRunner().invoke(main, ["baseline", "create", "baseline.json", ".", "--jobs", "1"])
    (repo / "pkg" / "model.py").write_text(GPU.replace("v = x.sum().item()", "v = x.sum()"))
    result = run("check", ".", "--baseline", "baseline.json", "--show-stale", "--output-format", "json")
    assert result.exit_code == 0
    assert "stale baseline entry: pkg/model.py:3: SL101" in result.stderr


def test_missing_baseline_file_is_a_usage_error(repo: Path) -> None:
    result = run("check", ".", "--baseline", "nope.json")
    assert result.exit_code == 2 and "nope.json" in result.stderr


def test_diff_against_reports_only_changed_lines(repo: Path) -> None:
    (repo / "pkg" / "model.py").write_text(GPU + "w = x.max().item()\n")
    (repo / "pkg" / "new.py").write_text(GPU)  # untracked: every line counts as added
    result = run("check", ".", "--diff-against", "HEAD", "--output-format", "json")
    assert result.exit_code == 1
    assert sorted(rows(result)) == [("model.py", 4), ("new.py", 3)]


def test_diff_against_from_a_subdirectory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "pkg" / "model.py").write_text(GPU + "w = x.max().item()\n")
    monkeypatch.chdir(repo / "pkg")
    result = run("check", ".", "--diff-against", "HEAD", "--output-format", "json")
    assert rows(result) == [("model.py", 4)]


def test_diff_against_follows_a_rename(repo: Path) -> None:
    git(repo, "mv", "pkg/model.py", "pkg/renamed.py")
    (repo / "pkg" / "renamed.py").write_text(GPU + "w = x.max().item()\n")
    result = run("check", ".", "--diff-against", "HEAD", "--output-format", "json")
    assert rows(result) == [("renamed.py", 4)]


def test_diff_against_errors_are_clear(repo: Path, tmp_path_factory: pytest.TempPathFactory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = run("check", ".", "--diff-against", "no-such-rev")
    assert unknown.exit_code == 2 and "unknown revision 'no-such-rev'" in unknown.stderr
    outside = tmp_path_factory.mktemp("not-a-repo")
    (outside / "m.py").write_text(GPU)
    monkeypatch.chdir(outside)
    result = run("check", ".", "--diff-against", "HEAD")
    assert result.exit_code == 2 and "not a git repository" in result.stderr
