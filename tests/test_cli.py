"""The command line, end to end: packaging, formats, exit codes, bad input, progress.

Most tests drive the click app in-process (`CliRunner`, `--jobs 1`); the ones
about a real process (console script, running without torch, progress bars on
a terminal) start a subprocess.
"""

from __future__ import annotations

import json
import os
import pty
import select as select_module
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import sync_lint
from sync_lint import registry
from sync_lint.cli import main
from sync_lint.registry import all_rules
from sync_lint.rulekit import Rule

REPO = Path(__file__).resolve().parent.parent
GPU_SRC = 'x = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'
CPU_SRC = "import torch\nx = torch.zeros(3)\nv = x.sum().item()\n"
# Where SL101 fires in GPU_SRC: the `x.sum().item()` call on line 2.
GPU_ROW = 2
GPU_COL = GPU_SRC.splitlines()[1].index("x.sum()") + 1


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def findings(stdout: str) -> list[tuple[str, int, int, str]]:
    """(file name, row, column, code) for every entry of a JSON report, in report order."""
    return [
        (Path(d["filename"]).name, d["location"]["row"], d["location"]["column"], d["code"])
        for d in json.loads(stdout)
    ]


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    write(root, {"gpu.py": GPU_SRC, "host.py": CPU_SRC})
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def fresh_registry():
    all_rules.cache_clear()
    yield
    all_rules.cache_clear()


def scripts_env() -> dict[str, str]:
    return dict(os.environ, NO_COLOR="1")


def run_py(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=scripts_env(), capture_output=True,
                          text=True, timeout=120, **kwargs)


# ==========================================================================================
# 1. Packaging
# ==========================================================================================


def test_python_dash_m_version(tmp_path: Path) -> None:
    done = run_py(["-m", "sync_lint", "--version"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sync_lint.__version__ in done.stdout
    assert "sync-lint" in done.stdout


def _console_script() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "sync-lint"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("sync-lint", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    assert found, "the `sync-lint` console script is not installed"
    return found


def test_console_script_version_and_check(tmp_path: Path) -> None:
    script = _console_script()
    done = subprocess.run([script, "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sync_lint.__version__ in done.stdout
    write(tmp_path, {"gpu.py": GPU_SRC})
    done = subprocess.run([script, "check", "--select", "SL101", "--output-format", "concise", "gpu.py"],
                          capture_output=True, text=True, cwd=tmp_path, env=scripts_env(), timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"gpu.py:{GPU_ROW}:{GPU_COL}: SL101" in done.stdout


# A wrapper that makes `import torch` impossible and records every attempt.
NO_TORCH = textwrap.dedent(
    r"""
    import importlib.abc, sys
    attempts = []
    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                attempts.append(name)
                raise ImportError(f"import of {name} blocked by the test")
            return None
    sys.meta_path.insert(0, BlockTorch())
    sys.modules.pop("torch", None)
    from sync_lint.cli import main
    code = 0
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stderr.write("TORCH-ATTEMPTS=" + ",".join(attempts) + "\n")
    sys.stderr.write("TORCH-LOADED=" + str("torch" in sys.modules) + "\n")
    sys.exit(code)
    """
)


def test_linter_runs_without_torch(tmp_path: Path) -> None:
    files = {f"m{i}.py": GPU_SRC for i in range(4)}
    files["host.py"] = CPU_SRC
    write(tmp_path, files)
    for jobs in ("1", "2"):
        done = run_py(["-c", NO_TORCH, "check", "--select", "SL101", "--output-format", "json",
                       "--jobs", jobs, "."], cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "TORCH-ATTEMPTS=\n" in done.stderr
        assert "TORCH-LOADED=False" in done.stderr
        assert sorted(findings(done.stdout)) == sorted((f"m{i}.py", GPU_ROW, GPU_COL, "SL101") for i in range(4))
    # The blocker itself works: the same wrapper reports an attempt when code imports torch.
    probe = NO_TORCH.replace("from sync_lint.cli import main", "from sync_lint.cli import main\ntry:\n    import torch\nexcept ImportError:\n    pass")
    done = run_py(["-c", probe, "--version"], cwd=tmp_path)
    assert "TORCH-ATTEMPTS=torch" in done.stderr


def test_no_top_level_rules_module_is_installed(tmp_path: Path) -> None:
    code = "import importlib.util, sync_lint.rules; print(importlib.util.find_spec('rules')); print(sync_lint.rules.__name__)"
    done = run_py(["-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "sync_lint.rules"]


# ==========================================================================================
# 5. Output wiring
# ==========================================================================================


def _check_format(fmt: str, stdout: str) -> None:
    if fmt in ("full", "concise"):
        assert f"gpu.py:{GPU_ROW}:{GPU_COL}: SL101" in stdout
        assert "host.py" not in stdout
    elif fmt == "json":
        assert findings(stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]
    elif fmt == "json-lines":
        rows = [json.loads(line) for line in stdout.splitlines()]
        assert [(Path(r["filename"]).name, r["location"]["row"], r["code"]) for r in rows] == [("gpu.py", GPU_ROW, "SL101")]
    elif fmt == "github":
        lines = stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith("::error ")
        assert f"line={GPU_ROW}" in lines[0] and f"col={GPU_COL}" in lines[0] and "SL101" in lines[0]
        assert "gpu.py" in lines[0]
    elif fmt == "sarif":
        doc = json.loads(stdout)
        results = doc["runs"][0]["results"]
        assert [r["ruleId"] for r in results] == ["SL101"]
        region = results[0]["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (GPU_ROW, GPU_COL)
        assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("gpu.py")
    elif fmt == "junit":
        root = ET.fromstring(stdout)
        failures = root.findall(".//failure")
        assert len(failures) == 1
        assert "SL101" in ET.tostring(root, encoding="unicode")
        assert any("gpu.py" in (case.get("classname") or "") + (case.get("name") or "") for case in root.iter("testcase"))
    else:  # pragma: no cover
        raise AssertionError(fmt)


ALL_FORMATS = ["full", "concise", "json", "json-lines", "github", "sarif", "junit"]


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_every_format_through_the_cli(project: Path, fmt: str) -> None:
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", fmt, ".")
    assert result.exit_code == 1, result.output
    _check_format(fmt, result.stdout)


def test_formats_list_matches_the_reporters() -> None:
    from sync_lint.formats import OUTPUT_FORMATS as FORMATS

    assert sorted(FORMATS) == sorted(ALL_FORMATS)


def test_output_format_from_config_file(project: Path) -> None:
    (project / "sync-lint.toml").write_text('output-format = "json"\n')
    result = invoke("check", "--select", "SL101", "--jobs", "1", ".")
    assert findings(result.stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]


@pytest.mark.parametrize("fmt", ["full", "json", "sarif"])
def test_output_file_gets_the_report_and_stdout_stays_empty(project: Path, fmt: str) -> None:
    expected = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", fmt, ".").stdout
    out = project.parent / "report.out"
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", fmt, "--output-file", str(out), ".")
    assert result.exit_code == 1
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    _check_format(fmt, text)
    if fmt != "sarif":  # SARIF may carry run-specific values such as timestamps
        assert text == expected


def test_unwritable_output_file_is_a_clear_error(project: Path) -> None:
    target = project / "no" / "such" / "dir" / "report.json"
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "-o", str(target), ".")
    assert result.exit_code == 2
    assert str(target) in result.stderr
    assert "Traceback" not in result.output


def test_statistics_counts_per_rule(project: Path) -> None:
    write(project, {"three.py": GPU_SRC + "w = x.max().item()\nu = x.min().item()\n"})
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", "--statistics", ".")
    assert result.exit_code == 1
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\tSL101" in line]
    assert len(rows) == 1
    assert int(rows[0][0]) == 4  # one in gpu.py, three in three.py
    assert rows[0][-1].strip().endswith("item")


def test_statistics_keep_machine_output_parseable(project: Path) -> None:
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "--statistics", ".")
    assert findings(result.stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]
    assert any(line.split("\t")[:2] == ["1", "SL101"] for line in result.stderr.splitlines())


def test_stdin_with_stdin_filename() -> None:
    result = invoke("check", "--select", "SL101", "--output-format", "concise", "--stdin-filename", "pkg/from_stdin.py",
                    "-", input=GPU_SRC)
    assert result.exit_code == 1, result.output
    assert f"pkg/from_stdin.py:{GPU_ROW}:{GPU_COL}: SL101" in result.stdout
    result = invoke("check", "--select", "SL101", "--output-format", "concise", "-", input=CPU_SRC)
    assert result.exit_code == 0, result.output


# ==========================================================================================
# 9. rules / explain
# ==========================================================================================


def test_rules_text_lists_every_rule() -> None:
    result = invoke("rules")
    assert result.exit_code == 0
    for rule in all_rules().values():
        assert rule.code in result.stdout
    assert "SL101" in result.stdout and "item" in result.stdout


def test_rules_json() -> None:
    result = invoke("rules", "--output-format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    by_code = {row["code"]: row for row in rows}
    assert set(by_code) == set(all_rules())
    item = all_rules()["SL101"]
    assert by_code["SL101"]["name"] == item.name
    assert by_code["SL101"]["summary"] == item.summary
    assert by_code["SL101"]["fix"] == item.fix_availability


@pytest.mark.parametrize("spelling", ["SL101", "sl101"])
def test_explain(spelling: str) -> None:
    result = invoke("explain", spelling)
    assert result.exit_code == 0
    assert result.stdout.strip() == all_rules()["SL101"].documentation().strip()
    assert "SL101" in result.stdout


def test_explain_unknown_rule() -> None:
    result = invoke("explain", "SL999")
    assert result.exit_code == 2
    assert "SL999" in result.stderr
    assert result.stdout == ""


# ==========================================================================================
# 10. Exit codes
# ==========================================================================================


def test_exit_codes(project: Path) -> None:
    assert invoke("check", "--select", "SL101", "--jobs", "1", "host.py").exit_code == 0
    assert invoke("check", "--select", "SL101", "--jobs", "1", "gpu.py").exit_code == 1
    zero = invoke("check", "--select", "SL101", "--jobs", "1", "--exit-zero", "--output-format", "concise", "gpu.py")
    assert zero.exit_code == 0
    assert "SL101" in zero.stdout  # still reported
    assert invoke("check", "--no-such-flag", ".").exit_code == 2
    assert invoke("check", "--output-format", "xml", ".").exit_code == 2
    assert invoke("check", "--jobs", "0", ".").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


def test_exit_zero_does_not_hide_errors(project: Path) -> None:
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--exit-zero", "gpu.py", "missing.py")
    assert result.exit_code == 2


# ==========================================================================================
# 11. Bad input
# ==========================================================================================


def test_syntax_error_is_sl000_and_other_files_are_linted(project: Path) -> None:
    # (A file is only parsed when it contains an enabled rule's trigger, here `.item(`,
    # and some GPU evidence, here `_gpu`.)
    write(project, {"broken.py": "ok = t_gpu.item()\nx = = 1\n"})
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    assert result.exit_code == 1, result.output
    got = findings(result.stdout)
    # CPython's parser puts the error at the second `=`.
    assert ("broken.py", 2, "x = = 1".index("= 1") + 1, "SL000") in got
    assert ("gpu.py", GPU_ROW, GPU_COL, "SL101") in got


def test_syntax_error_position_in_the_full_report(project: Path) -> None:
    write(project, {"broken.py": "def f(:\n    return t_gpu.item()\n"})
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", "broken.py")
    assert result.exit_code == 1
    assert f"broken.py:1:{'def f(:'.index(':') + 1}: SL000" in result.stdout


def test_non_utf8_file_is_one_clear_line_and_the_run_continues(project: Path) -> None:
    write(project, {"latin.py": b"x = 1\ns = '\xff\xfe caf\xe9'\n"})
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    assert result.exit_code == 2
    assert findings(result.stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]
    lines = [line for line in result.stderr.splitlines() if "latin.py" in line]
    assert len(lines) == 1
    assert "decode" in lines[0] or "encoding" in lines[0] or "utf-8" in lines[0].lower()
    assert "Traceback" not in result.output
    concise = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", ".")
    assert sum("latin.py" in line for line in concise.output.splitlines()) == 1
    assert f"gpu.py:{GPU_ROW}:{GPU_COL}: SL101" in concise.stdout


def test_latin1_file_with_coding_cookie_works(project: Path) -> None:
    source = "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n" + GPU_SRC
    (project / "cookie.py").write_bytes(source.encode("latin-1"))
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "cookie.py")
    assert result.exit_code == 1, result.output
    assert result.stderr == ""
    assert findings(result.stdout) == [("cookie.py", GPU_ROW + 2, GPU_COL, "SL101")]


def test_utf8_bom_and_crlf_file_works(project: Path) -> None:
    (project / "bom.py").write_bytes(b"\xef\xbb\xbf" + GPU_SRC.replace("\n", "\r\n").encode())
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "bom.py")
    assert result.exit_code == 1, result.output
    assert findings(result.stdout) == [("bom.py", GPU_ROW, GPU_COL, "SL101")]


def test_unreadable_file_real_permissions(project: Path) -> None:
    locked = project / "locked.py"
    locked.write_text(GPU_SRC)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not stop reads here")
        result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    finally:
        locked.chmod(0o644)
    assert result.exit_code == 2
    assert findings(result.stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]
    assert sum("locked.py" in line for line in result.stderr.splitlines()) == 1


def test_unreadable_file_simulated(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs everywhere (root included): reading the file raises PermissionError."""
    write(project, {"locked.py": GPU_SRC})
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.py":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", ".")
    assert result.exit_code == 2
    lines = [line for line in result.stdout.splitlines() if "locked.py" in line]
    assert len(lines) == 1 and "ermission" in lines[0]
    assert f"gpu.py:{GPU_ROW}:{GPU_COL}: SL101" in result.stdout


def test_missing_file_is_named(project: Path) -> None:
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "gpu.py", "nope/missing.py")
    assert result.exit_code == 2
    assert findings(result.stdout) == [("gpu.py", GPU_ROW, GPU_COL, "SL101")]
    lines = [line for line in result.stderr.splitlines() if "nope/missing.py" in line]
    assert len(lines) == 1 and "no such file" in lines[0]


class Boom(Rule):
    code = "XB001"
    name = "boom"
    summary = "A rule that crashes."
    triggers = (".item(",)

    def visit_Call(self, node) -> None:
        raise RuntimeError("kaboom")


def test_crashing_rule_is_reported_and_the_run_continues(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fresh_registry: None) -> None:
    monkeypatch.setattr(registry, "plugin_rules", lambda: [Boom])
    write(project, {"other.py": GPU_SRC})
    result = invoke("check", "--select", "SL101,XB001", "--jobs", "1", "--output-format", "concise", ".")
    assert result.exit_code == 2
    errors = [line for line in result.stdout.splitlines() if "XB001" in line]
    # Every parsed file has a call, so the rule crashes once in each of them.
    assert sorted(Path(line.split(": ")[1]).name for line in errors) == ["gpu.py", "host.py", "other.py"]
    assert all("kaboom" in line for line in errors)
    # SL101 still ran on both files, in the same walk as the broken rule.
    assert f"gpu.py:{GPU_ROW}:{GPU_COL}: SL101" in result.stdout
    assert f"other.py:{GPU_ROW}:{GPU_COL}: SL101" in result.stdout
    json_run = invoke("check", "--select", "SL101,XB001", "--jobs", "1", "--output-format", "json", ".")
    assert sorted(findings(json_run.stdout)) == [("gpu.py", GPU_ROW, GPU_COL, "SL101"), ("other.py", GPU_ROW, GPU_COL, "SL101")]
    assert sum("XB001" in line for line in json_run.stderr.splitlines()) == 3


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and folder of the project but sync-lint's own cache."""
    paths = [p for p in sorted(root.rglob("*")) if ".sync-lint-cache" not in p.relative_to(root).parts]
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in paths if p.is_file()
    } | {str(p.relative_to(root)) + "/": (b"", 0) for p in paths if p.is_dir()}


@pytest.mark.parametrize("fmt", ["full", "json"])
def test_check_never_writes(project: Path, fmt: str) -> None:
    write(project, {
        "pkg/fixable.py": GPU_SRC + "y = x.cpu()\n",
        "pkg/noqa.py": GPU_SRC.replace(".item()", ".item()  # noqa: SL101"),
        "pkg/broken.py": "x = = 1\n",
        "pkg/typed.pyi": "def f() -> int: ...\n",
        "sync-lint.toml": 'extend-exclude = ["nothing"]\n',
    })
    before = _snapshot(project)
    result = invoke("check", "--jobs", "1", "--output-format", fmt, "--statistics", ".")
    assert result.exit_code == 1
    result = invoke("check", "--jobs", "2", "--output-format", fmt, ".")
    assert result.exit_code == 1
    assert _snapshot(project) == before
    # The only thing a check adds is the project index's cache, which git ignores.
    added = {p.name for p in project.iterdir()} - {p.split("/")[0] for p in before}
    assert added == {".sync-lint-cache"}
    assert (project / ".sync-lint-cache" / ".gitignore").read_text().splitlines()[-1] == "*"


# ==========================================================================================
# 13. A real process on a small tree
# ==========================================================================================


def test_real_subprocess_check_json(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/pkg/model.py": "import torch\n\ndef f():\n" + textwrap.indent(GPU_SRC, "    "),
        "src/pkg/host.py": CPU_SRC,
        "src/pkg/alias.py": 'import torch as th\nbuf = th.ones(4, device="cuda")\nn = buf.max().item()\n',
        "src/pkg/skipped.py": "# sync-lint: skip-file\n" + GPU_SRC,
        "src/README.txt": GPU_SRC,
    })
    done = run_py(["-m", "sync_lint", "check", "--select", "SL101", "--output-format", "json", "src"], cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    got = sorted(findings(done.stdout))
    assert got == [("alias.py", 3, "n = buf.max().item()".index("buf") + 1, "SL101"),
                   ("model.py", 5, GPU_COL + 4, "SL101")]
    for entry in json.loads(done.stdout):
        assert Path(entry["filename"]).is_absolute()
        assert Path(entry["filename"]).exists()


# ==========================================================================================
# 14. Progress bar
# ==========================================================================================

# Slows every file down so that the run lasts longer than the one second after which
# a progress bar may appear.
SLOW = textwrap.dedent(
    r"""
    import sys, time
    import sync_lint.api as api
    _process_file = api._process_file
    def slow(*args, **kwargs):
        time.sleep(0.06)
        return _process_file(*args, **kwargs)
    api._process_file = slow
    from sync_lint.cli import main
    main(sys.argv[1:])
    """
)
BAR_CHARS = ("━", "checking", "\x1b[?25l")


@pytest.fixture
def slow_tree(tmp_path: Path) -> Path:
    write(tmp_path, {f"m{i:02}.py": GPU_SRC for i in range(25)})
    return tmp_path


def _run_with_stderr_on_a_tty(args: list[str], cwd: Path) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select_module.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout, _ = proc.communicate(timeout=60)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_no_progress_bar_when_stderr_is_not_a_tty(slow_tree: Path) -> None:
    done = run_py(["-c", SLOW, "check", "--select", "SL101", "--jobs", "1", "--output-format", "full", "."], cwd=slow_tree)
    assert done.returncode == 1, done.stderr
    assert not any(ch in done.stderr for ch in BAR_CHARS), done.stderr


def test_progress_bar_in_machine_formats_on_a_tty(slow_tree: Path) -> None:
    """The bar goes to stderr, so a machine format on stdout stays parseable (issue 12, defect 10)."""
    code, stdout, stderr = _run_with_stderr_on_a_tty(
        ["-c", SLOW, "check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "."], slow_tree)
    assert code == 1, stderr
    assert len(json.loads(stdout)) == 25
    assert any(ch in stderr for ch in BAR_CHARS), stderr


def test_progress_bar_detection_is_live(slow_tree: Path) -> None:
    """Control for the two tests above: a human format on a terminal does show the bar."""
    code, stdout, stderr = _run_with_stderr_on_a_tty(
        ["-c", SLOW, "check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", "."], slow_tree)
    assert code == 1, stderr
    assert any(ch in stderr for ch in BAR_CHARS), stderr
    code, _, stderr = _run_with_stderr_on_a_tty(
        ["-c", SLOW, "check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", "--no-progress", "."],
        slow_tree)
    assert code == 1
    assert not any(ch in stderr for ch in BAR_CHARS), stderr


def test_rules_shows_sl301_active_for_torch_2_13_and_2_14() -> None:
    for version in ("2.13", "2.14.1"):
        result = invoke("rules", "--output-format", "json", "--target-torch-version", version)
        by_code = {row["code"]: row for row in json.loads(result.stdout)}
        assert by_code["SL301"]["active"] and by_code["SL301"]["fixed_in_torch"] == "2.15"
        assert result.stderr == ""  # within the releases the evidence covers: nothing to say


def test_a_target_beyond_the_checked_releases_is_noted_once_on_stderr(tmp_path) -> None:
    (tmp_path / "t.py").write_text('import torch\nt = torch.zeros(4, device="cuda")\nt[0] = 1\n')
    result = invoke("check", str(tmp_path / "t.py"), "--jobs", "1", "--target-torch-version", "2.16",
                    "--output-format", "concise")
    notes = [line for line in result.stderr.splitlines() if line.startswith("sync-lint: note:")]
    assert notes == [
        "sync-lint: note: SL301 is off for torch 2.16: PyTorch 2.15 removed the sync, and releases after 2.15.0 "
        "were not checked; use --target-torch-version to lint for an older torch",
        "sync-lint: note: SL302 (host scalars stored through a tensor index) is off for torch 2.16: PyTorch 2.15 "
        "removed the sync, and releases after 2.15.0 were not checked; use --target-torch-version to lint for an "
        "older torch",
    ]
    assert "SL301" not in result.stdout
    listed = invoke("rules", "--target-torch-version", "2.16")
    assert listed.stderr.count("SL301 is off for torch 2.16") == 1
