"""The pre-commit hooks, run end to end by `pre-commit run`.

pre-commit installs a hook repository at a commit, so the tests snapshot this
checkout's files (tracked and untracked, minus ignored) into a temporary
repository with one commit, and each test project's `.pre-commit-config.yaml`
points at it. pre-commit then pip-installs sync-lint into its own virtualenv
(once for the module: same repository, same commit), which needs PyPI access for
the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

PRE_COMMIT = shutil.which("pre-commit")

pytestmark = pytest.mark.skipif(
    PRE_COMMIT is None, reason="pre-commit is not installed (pip install pre-commit)"
)


def git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, check=True
    ).stdout


def init_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    # When these tests run inside a git hook, GIT_DIR and friends point at the
    # outer repository; the temporary ones must not inherit them.
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-commit copy of this checkout, as try-repo needs."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip(f"{REPO_ROOT} is not a git checkout")
    listing = git(
        REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    snapshot = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listing.split(b"\0")):
        source = REPO_ROOT / os.fsdecode(name)
        # Deleted but still tracked files are listed too.
        if source.is_file():
            target = snapshot / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    init_repo(snapshot)
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot")
    return snapshot


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache for this module: both hooks share one installed environment."""
    return tmp_path_factory.mktemp("pre-commit-home")


def run_hook(hook_repo: Path, home: Path, project: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit run HOOK` in `project`, whose config pins the snapshot repository at its commit.

    The repository and revision are the same for every call, so pre-commit installs
    sync-lint into its environment once and reuses it.
    """
    assert PRE_COMMIT is not None
    rev = git(hook_repo, "rev-parse", "HEAD").decode().strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n"
        "      - id: sync-lint\n      - id: sync-lint-fix\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [PRE_COMMIT, "run", "--color", "never", hook, "--files", *files],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
    )


def make_project(path: Path, files: dict[str, str]) -> Path:
    init_repo(path)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    git(path, "add", "--", *files)
    return path


def test_sync_lint_hook_reports_a_sync(hook_repo: Path, hook_home: Path, tmp_path: Path) -> None:
    source = 'import torch\nx = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'
    project = make_project(tmp_path / "project", {"f.py": source})

    result = run_hook(hook_repo, hook_home, project, "sync-lint", "f.py")

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "SL101" in output
    assert (project / "f.py").read_text(encoding="utf-8") == source


def test_sync_lint_fix_hook_applies_the_safe_fix(hook_repo: Path, hook_home: Path, tmp_path: Path) -> None:
    source = 'import torch\nt = torch.zeros(4, device="cuda")\nt[0] = 1\n'
    project = make_project(tmp_path / "project", {"f.py": source, "pyproject.toml": _TARGET_211})

    result = run_hook(hook_repo, hook_home, project, "sync-lint-fix", "f.py")

    output = result.stdout + result.stderr
    # pre-commit fails a hook that modified files, so the user reviews the fix.
    assert result.returncode != 0, output
    fixed = (project / "f.py").read_text(encoding="utf-8")
    assert "t[0].fill_(1)" in fixed, output
    assert "t[0] = 1" not in fixed


# The hook's environment has no torch; the project says which torch it lints for.
_TARGET_211 = '[tool.sync-lint]\ntarget-torch-version = "2.11"\n'


def test_hooks_honour_excludes_for_files_pre_commit_names(hook_repo: Path, hook_home: Path, tmp_path: Path) -> None:
    """Issue 12, defect 1: `extend-exclude` holds for `pre-commit run --all-files` (both hooks)."""
    source = 'import torch\nt = torch.zeros(4, device="cuda")\nt[0] = 1\n'
    project = make_project(tmp_path / "project", {
        "pyproject.toml": _TARGET_211 + 'extend-exclude = ["benchmarks/"]\n',
        "lib.py": "x = 1\n",
    })
    (project / "benchmarks").mkdir()
    (project / "benchmarks" / "bench.py").write_text(source, encoding="utf-8")
    git(project, "add", "--", "benchmarks/bench.py")

    for hook in ("sync-lint", "sync-lint-fix"):
        (project / ".pre-commit-config.yaml").unlink(missing_ok=True)
        rev = git(hook_repo, "rev-parse", "HEAD").decode().strip()
        (project / ".pre-commit-config.yaml").write_text(
            f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n"
            "      - id: sync-lint\n      - id: sync-lint-fix\n", encoding="utf-8")
        assert PRE_COMMIT is not None
        result = subprocess.run([PRE_COMMIT, "run", "--color", "never", hook, "--all-files"], cwd=project,
                                capture_output=True, text=True, timeout=900,
                                env={**os.environ, "PRE_COMMIT_HOME": str(hook_home)})
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "SL301" not in output
        assert (project / "benchmarks" / "bench.py").read_text(encoding="utf-8") == source
