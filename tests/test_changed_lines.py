from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sync_lint.changed_lines import (
    ChangedLines,
    ChangedLinesError,
    changed_lines,
    filter_diagnostics,
    parse_diff,
)
from sync_lint.diagnostics import Diagnostic, Position

TEN_LINES = "".join(f"line{i}\n" for i in range(1, 11))


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return result.stdout


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def commit_all(repo: Path, message: str = "commit") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def added(changed: ChangedLines, path: str, upto: int = 20) -> list[int]:
    return [row for row in range(1, upto + 1) if changed.contains(path, row)]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Hermetic git: no variables leaking in from a hook that runs these tests,
    # and no discovery of a repository above tmp_path.
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    write(root / "a.py", TEN_LINES)
    write(root / "pkg" / "mod.py", TEN_LINES)
    commit_all(root, "base")
    return root


def test_modified_and_added_lines(repo: Path) -> None:
    lines = TEN_LINES.splitlines(keepends=True)
    lines[2] = "changed3\n"
    lines.insert(6, "inserted\n")
    write(repo / "a.py", "".join(lines))

    changed = changed_lines("HEAD", repo)

    assert added(changed, "a.py") == [3, 7]
    assert added(changed, "pkg/mod.py") == []


def test_deletion_only_hunk_adds_no_lines(repo: Path) -> None:
    write(repo / "a.py", TEN_LINES.replace("line4\n", ""))

    assert added(changed_lines("HEAD", repo), "a.py") == []


def test_deleted_file_has_no_lines(repo: Path) -> None:
    (repo / "a.py").unlink()

    changed = changed_lines("HEAD", repo)

    assert added(changed, "a.py") == []


def test_committed_and_uncommitted_changes_since_rev_count(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    write(repo / "a.py", TEN_LINES.replace("line2\n", "committed\n"))
    commit_all(repo)
    write(
        repo / "a.py", (repo / "a.py").read_text().replace("line9\n", "uncommitted\n")
    )

    assert added(changed_lines(base, repo), "a.py") == [2, 9]
    assert added(changed_lines("HEAD", repo), "a.py") == [9]
    assert added(changed_lines("HEAD~1", repo), "a.py") == [2, 9]


def test_staged_new_file_counts_entirely(repo: Path) -> None:
    write(repo / "staged.py", "one\ntwo\nthree\n")
    git(repo, "add", "staged.py")

    assert added(changed_lines("HEAD", repo), "staged.py") == [1, 2, 3]


def test_untracked_file_counts_entirely_unless_ignored(repo: Path) -> None:
    write(repo / ".gitignore", "ignored.py\n")
    write(repo / "new" / "fresh.py", "one\n")
    write(repo / "ignored.py", "one\n")

    changed = changed_lines("HEAD", repo)

    assert changed.contains("new/fresh.py", 1)
    assert changed.contains("new/fresh.py", 500)
    assert not changed.contains("ignored.py", 1)


def test_renamed_file_counts_only_changed_hunks_under_new_name(repo: Path) -> None:
    git(repo, "mv", "pkg/mod.py", "pkg/renamed.py")
    write(repo / "pkg" / "renamed.py", TEN_LINES.replace("line5\n", "edited5\n"))

    changed = changed_lines("HEAD", repo)

    assert added(changed, "pkg/renamed.py") == [5]
    assert added(changed, "pkg/mod.py") == []


def test_committed_rename(repo: Path) -> None:
    git(repo, "mv", "a.py", "b.py")
    commit_all(repo)

    assert added(changed_lines("HEAD~1", repo), "b.py") == []


@pytest.mark.parametrize(
    "name", ["with space.py", "dir with space/x y.py", 'quo"te.py', "ünï.py"]
)
def test_unusual_file_names(repo: Path, name: str) -> None:
    write(repo / name, TEN_LINES)
    commit_all(repo)
    write(repo / name, TEN_LINES.replace("line6\n", "changed6\n"))

    changed = changed_lines("HEAD", repo)

    assert added(changed, name) == [6]
    assert changed.contains(str(repo / name), 6)


def test_untracked_file_with_space(repo: Path) -> None:
    write(repo / "new dir" / "a b.py", "x\n")

    assert changed_lines("HEAD", repo).contains("new dir/a b.py", 1)


def test_added_line_that_looks_like_a_header(repo: Path) -> None:
    # In -U0 output the added line "++ b/a.py" reads "+++ b/a.py".
    write(
        repo / "pkg" / "mod.py",
        TEN_LINES.replace("line1\n", "++ b/a.py\n").replace("line8\n", "changed8\n"),
    )

    changed = changed_lines("HEAD", repo)

    assert added(changed, "pkg/mod.py") == [1, 8]
    assert added(changed, "a.py") == []


def test_from_a_subdirectory(repo: Path) -> None:
    write(repo / "pkg" / "mod.py", TEN_LINES.replace("line4\n", "changed4\n"))
    subdir = repo / "pkg"

    changed = changed_lines("HEAD", subdir)

    # Paths are relative to the cwd given, or absolute.
    assert added(changed, "mod.py") == [4]
    assert added(changed, str(subdir / "mod.py")) == [4]
    assert added(changed, "../pkg/mod.py") == [4]
    assert added(changed, "../a.py") == []


def test_paths_outside_the_repository_are_not_changed(
    repo: Path, tmp_path: Path
) -> None:
    outside = write(tmp_path / "outside.py", "x\n")

    assert not changed_lines("HEAD", repo).contains(str(outside), 1)


def test_unknown_revision(repo: Path) -> None:
    with pytest.raises(ChangedLinesError, match="unknown revision 'no-such-branch'"):
        changed_lines("no-such-branch", repo)


def test_option_like_revision_is_rejected(repo: Path) -> None:
    with pytest.raises(ChangedLinesError, match="unknown revision '--output=x'"):
        changed_lines("--output=x", repo)
    assert not (repo / "x").exists()


def test_revision_without_commits(tmp_path: Path, repo: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")

    with pytest.raises(ChangedLinesError, match="unknown revision 'HEAD'"):
        changed_lines("HEAD", empty)


def test_outside_a_git_repository(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    with pytest.raises(ChangedLinesError, match="not a git repository: .*plain"):
        changed_lines("HEAD", plain)


def diag(path: str, start: tuple[int, int], end: tuple[int, int]) -> Diagnostic:
    return Diagnostic(
        code="SL101",
        name="tensor-item",
        message="finding",
        path=path,
        start=Position(*start),
        end=Position(*end),
    )


def test_filter_diagnostics_keeps_spans_touching_changed_lines(repo: Path) -> None:
    write(repo / "a.py", TEN_LINES.replace("line5\n", "changed5\n"))
    changed = changed_lines("HEAD", repo)
    on_line = diag("a.py", (5, 1), (5, 4))
    spanning = diag("a.py", (4, 3), (6, 2))
    before = diag("a.py", (3, 1), (3, 9))
    # Ends at column 1 of line 5: covers nothing on it.
    ending_before = diag("a.py", (4, 1), (5, 1))
    other_file = diag("pkg/mod.py", (5, 1), (5, 4))

    kept = filter_diagnostics(
        [on_line, spanning, before, ending_before, other_file], changed
    )

    assert kept == [on_line, spanning]


def test_parse_diff_hunk_counts() -> None:
    diff = (
        "diff --git a/x.py b/x.py\n"
        "--- a/x.py\n"
        "+++ b/x.py\n"
        "@@ -1 +1 @@\n"
        "@@ -3,0 +4,2 @@ def f():\n"
        "@@ -9,2 +10,0 @@\n"
        "diff --git a/gone.py b/gone.py\n"
        "deleted file mode 100644\n"
        "--- a/gone.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        'diff --git "a/t\\tab.py" "b/t\\tab.py"\n'
        '--- "a/t\\tab.py"\n'
        '+++ "b/t\\tab.py"\n'
        "@@ -2 +2 @@\n"
        'diff --git "a/\\303\\274.py" "b/\\303\\274.py"\n'
        '--- "a/\\303\\274.py"\n'
        '+++ "b/\\303\\274.py"\n'
        "@@ -1 +1 @@\n"
    )

    assert parse_diff(diff) == {"x.py": {1, 4, 5}, "t\tab.py": {2}, "ü.py": {1}}
