"""Daily use (issue 12): the fifteen defects a new user hit, and ruff's surface.

Each `test_defect_NN_*` fails on the code before the fix. Most drive the click app
in-process; the ones about a terminal or a second process start a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sync_lint
from sync_lint import api
from sync_lint.cli import main

REPO = Path(__file__).resolve().parent.parent
GPU_SRC = 'import torch\nx = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'
GPU_ROW, GPU_COL = 3, 5


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def reported(stdout: str) -> list[tuple[str, int, str]]:
    return [(Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in json.loads(stdout)]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout


def init_repo(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "config", "user.name", "T")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "commit.gpgsign", "false")


# ==========================================================================================
# 1. Excludes and files named on the command line
# ==========================================================================================


def test_defect_01_force_exclude_drops_named_files_that_an_exclude_matches(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.sync-lint]\nextend-exclude = ["benchmarks/"]\n',
                    "benchmarks/bench.py": GPU_SRC, "src/m.py": GPU_SRC})
    named = ("benchmarks/bench.py", "src/m.py")
    plain = invoke("check", "--output-format", "json", "--jobs", "1", *named)
    assert sorted(reported(plain.stdout)) == [("bench.py", GPU_ROW, "SL101"), ("m.py", GPU_ROW, "SL101")]
    forced = invoke("check", "--force-exclude", "--output-format", "json", "--jobs", "1", *named)
    assert reported(forced.stdout) == [("m.py", GPU_ROW, "SL101")]
    # A file in an excluded folder is not rewritten by the fix hook's command either.
    invoke("check", "--force-exclude", "--fix", "--unsafe-fixes", "--jobs", "1", "benchmarks/bench.py")
    assert (project / "benchmarks/bench.py").read_text() == GPU_SRC
    # The config key does the same.
    write(project, {"pyproject.toml": '[tool.sync-lint]\nextend-exclude = ["benchmarks/"]\nforce-exclude = true\n'})
    assert reported(invoke("check", "--output-format", "json", "--jobs", "1", *named).stdout) == [
        ("m.py", GPU_ROW, "SL101")]


def test_defect_01_both_hooks_force_exclude() -> None:
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text()
    entries = re.findall(r"^\s*entry:\s*(.+)$", hooks, re.MULTILINE)
    assert len(entries) == 2 and all("--force-exclude" in entry for entry in entries)


# ==========================================================================================
# 2. The target torch comes from the project, not the environment
# ==========================================================================================


def test_defect_02_target_torch_ignores_the_installed_torch(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sync_lint.config as config

    write(project, {"m.py": GPU_SRC})
    monkeypatch.setattr(config, "installed_torch_version", lambda: "2.13.0")
    plan = api.plan(["m.py"])
    assert plan.settings.target_torch_version == api.NEWEST_MEASURED_TORCH
    assert "default" in plan.settings.target_torch_source


def test_defect_02_target_torch_from_the_projects_pin(project: Path) -> None:
    write(project, {"m.py": GPU_SRC,
                    "pyproject.toml": '[project]\nname = "p"\ndependencies = ["numpy", "torch==2.4.1"]\n'})
    plan = api.plan(["m.py"])
    assert plan.settings.target_torch_version == "2.4.1"
    shown = invoke("check", "--show-settings", "m.py")
    assert shown.exit_code == 0
    assert re.search(r"Target torch: 2\.4\.1 \(from .*pyproject\.toml \(dependency `torch==2\.4\.1`\)\)", shown.stdout)
    # The configuration wins over the pin, and says so.
    write(project, {"sync-lint.toml": 'target-torch-version = "2.9"\n'})
    shown = invoke("check", "--show-settings", "m.py")
    assert "Target torch: 2.9 (from " in shown.stdout and "sync-lint.toml" in shown.stdout


def test_defect_02_requirements_txt_pin(project: Path) -> None:
    write(project, {".git/HEAD": "", "m.py": GPU_SRC, "requirements.txt": "numpy\ntorch == 2.6.0  # cu124\n"})
    assert api.plan(["m.py"]).settings.target_torch_version == "2.6.0"


# ==========================================================================================
# 3 and 12. --statistics
# ==========================================================================================


def test_defect_03_statistics_prints_only_the_table(project: Path) -> None:
    write(project, {"m.py": GPU_SRC})
    for fmt in ("full", "concise"):
        result = invoke("check", "--statistics", "--output-format", fmt, "--jobs", "1", "m.py")
        assert result.exit_code == 1
        assert "m.py:" not in result.stdout, result.stdout
        assert result.stdout.splitlines()[0].split("\t")[:2] == ["1", "SL101"]
        assert "Found 1 error." in result.stdout


def test_defect_12_statistics_marks_only_fixes_that_fix_applies(project: Path) -> None:
    # SL303's only fix here is unsafe: no [*] unless --unsafe-fixes.
    source = "import torch\n\ndef f(dev, x_cpu: torch.Tensor):\n    return x_cpu.to(dev)\n"
    write(project, {"m.py": source})
    rows = invoke("check", "--statistics", "--select", "SL303", "--jobs", "1", "m.py").stdout
    row = next(line for line in rows.splitlines() if "\tSL303\t" in line)
    assert "[*]" not in row, rows
    rows = invoke("check", "--statistics", "--unsafe-fixes", "--select", "SL303", "--jobs", "1", "m.py").stdout
    assert "[*]" in next(line for line in rows.splitlines() if "\tSL303\t" in line)


# ==========================================================================================
# 4. Bad arguments are reported before the run
# ==========================================================================================


def test_defect_04_bad_baseline_and_revision_fail_before_linting(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, {"m.py": GPU_SRC, "bad.json": "{not json"})
    init_repo(project)

    def no_run(*args, **kwargs):
        raise AssertionError("linted before validating the arguments")

    monkeypatch.setattr(api, "run_files", no_run)
    result = invoke("check", "--baseline", "bad.json", "m.py")
    assert result.exit_code == 2 and "bad.json" in result.stderr
    result = invoke("check", "--baseline", "missing.json", "m.py")
    assert result.exit_code == 2 and "missing.json" in result.stderr
    result = invoke("check", "--diff-against", "no-such-rev", "m.py")
    assert result.exit_code == 2 and "no-such-rev" in result.stderr
    result = invoke("check", "-o", "no/such/dir/out.json", "m.py")
    assert result.exit_code == 2 and "no such directory" in result.stderr


# ==========================================================================================
# 5. --diff-against checks only the changed files
# ==========================================================================================


def test_defect_05_diff_against_lints_only_changed_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, {f"m{i}.py": GPU_SRC for i in range(5)})
    write(project, {"pkg/__init__.py": "", "pkg/dev.py": "import torch\n\ndef buf():\n    return torch.zeros(4, device='cuda')\n"})
    init_repo(project)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    write(project, {"m2.py": GPU_SRC + "w = x.max().item()\n",
                    "user.py": "from pkg.dev import buf\nb = buf()\nn = b.sum().item()\n"})
    seen: list[list[str]] = []
    real = api.run_files

    def spy(plan, files, **kwargs):
        seen.append(list(files))
        return real(plan, files, **kwargs)

    monkeypatch.setattr(api, "run_files", spy)
    result = invoke("check", "--diff-against", "HEAD", "--output-format", "json", "--jobs", "1", ".")
    assert sorted(seen[0]) == ["m2.py", "user.py"]
    # Only the changed line is reported; the project index still knows `buf()` returns a GPU tensor.
    assert sorted(reported(result.stdout)) == [("m2.py", 4, "SL101"), ("user.py", 3, "SL101")]


# ==========================================================================================
# 6. verify without torch
# ==========================================================================================


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_defect_06_verify_without_torch_names_torch(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result = invoke("verify", "--device", device)
    assert result.exit_code == 2
    assert "torch is not installed" in result.stderr
    assert "internal error" not in result.stderr and "CUDA" not in result.stderr


# ==========================================================================================
# 7. `rules` prints summaries as written
# ==========================================================================================


def test_defect_07_rules_table_keeps_square_brackets() -> None:
    result = CliRunner().invoke(main, ["rules"], env={"COLUMNS": "300"})
    line = next(line for line in result.stdout.splitlines() if "SL301" in line)
    assert "t[i] = <Python scalar>" in line


# ==========================================================================================
# 8. Nothing to check, and notebooks
# ==========================================================================================


def test_defect_08_no_python_files_found(project: Path) -> None:
    (project / "empty").mkdir()
    write(project, {"notes.txt": "x = 1\n"})
    for args in (["empty"], ["notes.txt"]):
        result = invoke("check", *args)
        assert result.exit_code == 0
        assert "No Python files found" in result.stderr
        assert "All checks passed" not in result.stdout
    assert "not a Python file" in invoke("check", "notes.txt").stderr


def _notebook(cells: list[tuple[str, str]]) -> str:
    return json.dumps({
        "cells": [{"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
                   **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                  for kind, source in cells],
        "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5,
    })


def test_defect_08_notebook_cells_are_linted_and_positions_map_to_cells(project: Path) -> None:
    notebook = _notebook([
        ("markdown", "# Training\n"),
        ("code", "import torch\n%matplotlib inline\nx = torch.zeros(3, device='cuda')\n"),
        ("code", "!nvidia-smi\nfor step in range(3):\n    loss = x.sum().item()\n"),
        ("code", "y = x.max().item()  # noqa: SL101\n"),
    ])
    write(project, {"train.ipynb": notebook})
    result = invoke("check", "--output-format", "json", "--jobs", "1", ".")
    objects = json.loads(result.stdout)
    assert [(o["cell"], o["location"]["row"], o["location"]["column"], o["code"]) for o in objects] == [
        (2, 3, 12, "SL101")]
    concise = invoke("check", "--output-format", "concise", "--jobs", "1", "train.ipynb").stdout
    assert concise.startswith("train.ipynb:cell 2:3:12: SL101")
    # Never rewritten by --fix.
    invoke("check", "--fix", "--unsafe-fixes", "--jobs", "1", "train.ipynb")
    assert (project / "train.ipynb").read_text() == notebook


# ==========================================================================================
# 9. A missing path
# ==========================================================================================


def test_defect_09_missing_path_is_not_no_errors_found(project: Path) -> None:
    result = invoke("check", "nothere.py")
    assert result.exit_code == 2
    assert "nothere.py: no such file or directory" in result.stdout
    assert "No errors found" not in result.stdout and "could not be fully checked" not in result.stdout
    assert "1 path not found" in result.stdout


# ==========================================================================================
# 10. Progress on a terminal whatever the report's destination (see also test_cli.py)
# ==========================================================================================

SLOW = (
    "import sys, time\n"
    "from sync_lint.engine import lint as L\n"
    "real = L.lint_source\n"
    "def slow(*a, **k):\n"
    "    time.sleep(0.1)\n"
    "    return real(*a, **k)\n"
    "L.lint_source = slow\n"
    "import sync_lint.api as api\n"
    "api.lint_source = slow\n"
    "from sync_lint.cli import main\n"
    "sys.argv[0] = 'sync-lint'\n"
    "main()\n"
)
BAR_CHARS = ("━", "checking")


def _stderr_on_a_tty(args: list[str], cwd: Path) -> tuple[int, str]:
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=slave,
                            env=dict(os.environ, NO_COLOR="1", COLUMNS="100"))
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.communicate(timeout=60)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.fixture
def slow_tree(tmp_path: Path) -> Path:
    write(tmp_path, {f"m{i:02}.py": GPU_SRC for i in range(25)})
    return tmp_path


def test_defect_10_progress_with_output_file_and_baseline_create(slow_tree: Path) -> None:
    code, stderr = _stderr_on_a_tty(["-c", SLOW, "check", "--no-cache", "--jobs", "1", "-o", "out.txt", "."], slow_tree)
    assert code == 1 and any(ch in stderr for ch in BAR_CHARS), stderr
    assert "m00.py" in (slow_tree / "out.txt").read_text()
    code, stderr = _stderr_on_a_tty(["-c", SLOW, "baseline", "create", "bl.json", "--jobs", "1", "."], slow_tree)
    assert code == 0 and any(ch in stderr for ch in BAR_CHARS), stderr
    assert "Recorded 25 finding(s)" in stderr


# ==========================================================================================
# 11. The baseline file's mode
# ==========================================================================================


def test_defect_11_baseline_file_gets_the_usual_mode(project: Path) -> None:
    write(project, {"m.py": GPU_SRC})
    old = os.umask(0o022)
    try:
        result = invoke("baseline", "create", "bl.json", "m.py")
    finally:
        os.umask(old)
    assert result.exit_code == 0
    assert stat.S_IMODE((project / "bl.json").stat().st_mode) == 0o644


# ==========================================================================================
# 13. One finding per line and cause
# ==========================================================================================


def test_defect_13_same_line_same_cause_is_one_finding(project: Path) -> None:
    source = (
        "import torch\n\n"
        "def f(kv, n):\n"
        "    cu = torch.zeros(n + 1, dtype=torch.int64, device='cuda')\n"
        "    out = []\n"
        "    for i in range(n):\n"
        "        out.append(kv[cu[i] : cu[i + 1]])\n"
        "    return out\n"
    )
    write(project, {"comm.py": source})
    result = invoke("check", "--output-format", "json", "--jobs", "1", "comm.py")
    objects = json.loads(result.stdout)
    assert [(o["code"], o["location"]["row"], o["occurrences"]) for o in objects] == [("SL104", 7, 2)]
    full = invoke("check", "--jobs", "1", "comm.py").stdout
    assert "2 sites on this line" in full and "Found 1 error." in full


# ==========================================================================================
# 14. --config KEY=VALUE
# ==========================================================================================


def test_defect_14_config_key_value_overrides(project: Path) -> None:
    write(project, {"m.py": GPU_SRC, "sync-lint.toml": 'ignore = ["SL101"]\n'})
    assert invoke("check", "--jobs", "1", "m.py").exit_code == 0
    result = invoke("check", "--config", "ignore = []", "--jobs", "1", "m.py")
    assert result.exit_code == 1, result.output
    shown = invoke("check", "--config", "strict = true", "--show-settings", "m.py").stdout
    assert "strict = true" in shown
    bad = invoke("check", "--config", "strictt = true", "m.py")
    assert bad.exit_code == 2 and "unknown key `strictt`" in bad.stderr
    bad = invoke("check", "--config", "strict = maybe", "m.py")
    assert bad.exit_code == 2 and "KEY = VALUE" in bad.stderr


# ==========================================================================================
# 15. Documented commands work from this repository
# ==========================================================================================


def test_defect_15_docs_promise_only_what_exists() -> None:
    import tomllib

    docs = [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    text = "\n".join(path.read_text(encoding="utf-8") for path in docs)
    assert "readthedocs" not in text
    assert "pip install sync-lint" not in text  # not on a package index
    # One repository URL, the one the code links to.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["urls"]["Repository"] == sync_lint.REPOSITORY
    for url in re.findall(r"https://github\.com/[\w.-]+/sync-lint", text):
        assert url == sync_lint.REPOSITORY
    # The pre-commit `rev:` follows the tag scheme `v` + version.
    revs = set(re.findall(r"^\s*rev:\s*(\S+)", text, re.MULTILINE))
    assert revs == {f"v{sync_lint.__version__}"}, revs
    # Rule links point at files of this repository.
    from sync_lint.registry import all_rules

    for rule in all_rules().values():
        url = rule.url()
        assert url.startswith(f"{sync_lint.REPOSITORY}/blob/v{sync_lint.__version__}/")
        assert (REPO / url.split(f"/blob/v{sync_lint.__version__}/", 1)[1]).is_file(), url


def test_defect_15_the_release_tag_exists_in_a_checkout_with_tags() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tags = git(REPO, "tag", "-l", "v*").split()
    if not tags:
        pytest.skip("this checkout has no tags")
    assert f"v{sync_lint.__version__}" in tags


# ==========================================================================================
# ruff's surface
# ==========================================================================================


def test_add_noqa_suppresses_and_merges(project: Path) -> None:
    write(project, {"m.py": GPU_SRC + "w = x.max().item()  # noqa: SL999\n"})
    result = invoke("check", "--add-noqa", "--jobs", "1", "m.py")
    assert result.exit_code == 0 and "Added 2 noqa directives." in result.stderr
    lines = (project / "m.py").read_text().splitlines()
    assert lines[2] == "v = x.sum().item()  # noqa: SL101"
    assert lines[3] == "w = x.max().item()  # noqa: SL101, SL999"
    assert invoke("check", "--jobs", "1", "m.py").exit_code == 0


def test_show_files_and_quiet(project: Path) -> None:
    write(project, {"a.py": GPU_SRC, "build/b.py": GPU_SRC, "c.txt": ""})
    assert invoke("check", "--show-files", ".").stdout.split() == ["a.py"]
    quiet = invoke("check", "-q", "--output-format", "concise", "--jobs", "1", ".")
    assert quiet.exit_code == 1
    assert quiet.stdout.splitlines() == [f"a.py:{GPU_ROW}:{GPU_COL}: SL101 " + quiet.stdout.split(" SL101 ", 1)[1].splitlines()[0]]


def test_fix_only_and_exit_non_zero_on_fix(project: Path) -> None:
    source = "import torch\nt = torch.zeros(4, device='cuda')\nt[0] = 1\nv = t.sum().item()\n"
    write(project, {"m.py": source, "sync-lint.toml": 'target-torch-version = "2.11"\n'})
    result = invoke("check", "--fix-only", "--jobs", "1", "m.py")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Fixed 1 error.")
    assert "t[0].fill_(1)" in (project / "m.py").read_text()
    write(project, {"m.py": source})
    result = invoke("check", "--fix-only", "--exit-non-zero-on-fix", "--jobs", "1", "m.py")
    assert result.exit_code == 1
    write(project, {"m.py": source.replace("v = t.sum().item()\n", "")})
    assert invoke("check", "--fix", "--jobs", "1", "m.py").exit_code == 0
    write(project, {"m.py": source.replace("v = t.sum().item()\n", "")})
    assert invoke("check", "--fix", "--exit-non-zero-on-fix", "--jobs", "1", "m.py").exit_code == 1


def test_explain_by_rule_name() -> None:
    by_code = invoke("explain", "SL301").stdout
    assert invoke("explain", "scalar-index-assign").stdout == by_code
    assert invoke("explain", "no-such-rule").exit_code == 2


def test_watch_rechecks_on_change(tmp_path: Path) -> None:
    import threading

    write(tmp_path, {"m.py": "x = 1\n"})
    proc = subprocess.Popen([sys.executable, "-m", "sync_lint", "check", "--watch", "--no-cache",
                             "--output-format", "concise", "m.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NO_COLOR="1", SYNC_LINT_WATCH_RUNS="2"))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("All checks passed!" in line for line in lines):
            time.sleep(0.1)
        time.sleep(0.1)
        (tmp_path / "m.py").write_text(GPU_SRC)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    stdout = "".join(lines)
    assert proc.returncode == 1, stderr
    assert stdout.index("All checks passed!") < stdout.index("m.py:3:5: SL101")
    assert "File change detected" in stderr


# ==========================================================================================
# Ranking
# ==========================================================================================


def test_ranking_per_step_first_and_tests_counted_apart(project: Path) -> None:
    write(project, {"a_tests/test_x.py": GPU_SRC, "tests/t.py": GPU_SRC, "benchmarks/b.py": GPU_SRC,
                    "zz/model.py": GPU_SRC})
    full = invoke("check", "--jobs", "1", ".").stdout
    headers = [line.split(":")[0] for line in full.splitlines() if re.match(r"^\S+\.py:\d+:\d+: SL", line)]
    assert headers[0] == "zz/model.py"
    assert set(headers[1:]) == {"a_tests/test_x.py", "tests/t.py", "benchmarks/b.py"}
    assert "Found 4 errors (3 in tests, benchmarks, examples or scripts" in full
    objects = json.loads(invoke("check", "--output-format", "json", "--jobs", "1", ".").stdout)
    severities = {Path(o["filename"]).name: (o["severity"], o["context"]) for o in objects}
    assert severities == {"model.py": ("error", "per-step"), "test_x.py": ("warning", "test"),
                          "t.py": ("warning", "test"), "b.py": ("warning", "benchmark")}


# ==========================================================================================
# SARIF for code scanning
# ==========================================================================================

# Computed with a BigInt port of codeql-action's src/fingerprints.ts under node, for the
# text below (CRLF on line 4, a non-BMP character, a repeated line).
FINGERPRINT_SOURCE = ('import torch\n\ndef f(x):\n    t = torch.zeros(3, device="cuda")  # \u00e9 \U0001F600\r\n'
                      "    return t.sum().item()\n    return t.sum().item()\n")
FINGERPRINTS = {1: "899334fb9ec9c757:1", 2: "29e1663e50671cc6:1", 3: "1573a0fb9fc69634:1", 4: "7b8cfbc1d46a9a7e:1",
                5: "bcb406c4ef2361b3:1", 6: "51e0efd7ecdd6e9b:1", 7: "c129715d7a2bc9a3:1"}


def test_sarif_line_hashes_match_codeql_action() -> None:
    from sync_lint.reporters.sarif import line_hashes

    assert line_hashes(FINGERPRINT_SOURCE) == FINGERPRINTS
    # Whitespace inside a line does not count; identical windows are told apart by occurrence.
    assert line_hashes("a = 1\nb=2\n")[1] == line_hashes("a=1\nb = 2\n")[1]
    repeated = line_hashes("x\n" * 3 + "y\n" * 200)
    assert len(set(repeated.values())) == len(repeated)


def test_sarif_relative_uris_fingerprints_and_schema(project: Path) -> None:
    from test_reporters import sarif_validator

    (project / ".git").mkdir()
    write(project, {"src/model.py": GPU_SRC, "tests/test_model.py": GPU_SRC})
    sub = project / "src"
    os.chdir(sub)  # run from below the root: URIs stay relative to the repository root
    doc = json.loads(invoke("check", "--output-format", "sarif", "--jobs", "1", ".", "../tests").stdout)
    errors = sorted(sarif_validator().iter_errors(doc), key=str)
    assert not errors, errors[0]
    (run,) = doc["runs"]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": project.resolve().as_uri() + "/"}}
    by_uri = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in run["results"]}
    assert set(by_uri) == {"src/model.py", "tests/test_model.py"}
    for uri, result in by_uri.items():
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["uriBaseId"] == "%SRCROOT%"
        from sync_lint.reporters.sarif import line_hashes

        expected = line_hashes((project / uri).read_text())[result["locations"][0]["physicalLocation"]["region"]["startLine"]]
        assert result["partialFingerprints"] == {"primaryLocationLineHash": expected}
        # GitHub's ingestion rules: a ruleId, a message text, a level it knows, at most 10 locations.
        assert result["ruleId"] and result["message"]["text"]
        assert result["level"] in ("error", "warning", "note")
        assert len(result["locations"]) <= 10
    assert by_uri["src/model.py"]["level"] == "error"
    assert by_uri["tests/test_model.py"]["level"] == "warning"


def test_unused_noqa_is_reported_and_fixed(project: Path) -> None:
    source = ("import torch\n"
              "x = torch.ones(3)  # noqa: SL101\n"
              "y = torch.zeros(3, device='cuda')\n"
              "v = y.sum().item()  # noqa: SL101, SL301  # keep me\n"
              "w = 1  # noqa: E501\n")
    write(project, {"m.py": source})
    objects = json.loads(invoke("check", "--output-format", "json", "--jobs", "1", "m.py").stdout)
    assert [(o["code"], o["location"]["row"]) for o in objects] == [("SL900", 2), ("SL900", 4)]
    # Not reported for a rule that did not run.
    assert invoke("check", "--ignore", "SL101,SL301", "--jobs", "1", "m.py").exit_code == 0
    assert invoke("check", "--fix", "--jobs", "1", "m.py").exit_code == 0
    assert (project / "m.py").read_text().splitlines() == [
        "import torch", "x = torch.ones(3)", "y = torch.zeros(3, device='cuda')",
        "v = y.sum().item()  # noqa: SL101  # keep me", "w = 1  # noqa: E501"]
