"""Start-up: `--version`, `rules` and `explain` load no parser; the rule catalogue they read stands
for the registry exactly, and only while it is current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync_lint import catalogue
from sync_lint.config import Settings
from sync_lint.registry import all_rules

PROBE = """
import sys
from sync_lint.cli import main
try:
    main({args!r})
except SystemExit:
    pass
print("LOADED:" + ",".join(sorted(m for m in ("libcst", "sync_lint.rules", "sync_lint.engine", "pathspec")
                                  if m in sys.modules)),
      file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["rules", "--output-format", "json"], ["explain", "SL101"],
                                  ["rules", "--output-format", "json", "--target-torch-version", "2.16"]])
def test_info_commands_import_no_parser(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, check=True)
    assert "LOADED:\n" in done.stderr, done.stderr
    assert done.stdout


def test_the_catalogue_is_the_registry() -> None:
    known = catalogue.builtin_catalogue()
    assert known is not None, "stale catalogue: run `python -m sync_lint.docs`"
    rules = all_rules()
    assert list(known) == list(rules)
    for code, rule in rules.items():
        info = known[code]
        assert catalogue.describe(info_as_rule(info)) == catalogue.describe(rule)
        for target in (None, "2.0", "2.11", "2.13", "2.15", "2.16", "3.0"):
            assert info.active_for_torch(target) == rule.active_for_torch(target)
            assert info.torch_notes(target) == rule.torch_notes(target)
        # The prefilter reads the same triggers from either (a configured sync-prone call adds its name).
        for settings in (Settings(), Settings(sync_prone_calls=(("pkg.mod.plan_all", "copies"),))):
            assert info.triggers_for(settings) == rule.triggers_for(settings)
    assert "plan_all(" in known["SL502"].triggers_for(Settings(sync_prone_calls=(("pkg.mod.plan_all", "x"),)))


def info_as_rule(info: catalogue.RuleInfo):  # type: ignore[no-untyped-def]
    """A RuleInfo seen through `describe`, which reads a rule class's attributes."""
    from sync_lint.versions import TorchGate

    class View:
        code, name, summary, identity = info.code, info.name, info.summary, info.identity
        fix_availability, fixed_in_torch, torch_checked_through = (
            info.fix_availability, info.fixed_in_torch, info.torch_checked_through)
        partial_torch_gates = tuple(TorchGate(*g) for g in info.partial_gates)
        triggers, triggered_by_configured_calls = info.triggers, info.triggered_by_configured_calls
        needs_gpu_evidence, project_rule = info.needs_gpu_evidence, info.project_rule
        documentation = staticmethod(info.documentation)
        url = staticmethod(info.url)

    return View


def test_a_stale_catalogue_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "source_digest", lambda: "something else")
    assert catalogue.builtin_catalogue() is None


def test_an_installed_rule_pack_turns_the_catalogue_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert catalogue.builtin_catalogue() is not None
    info = tmp_path / "a_pack-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[console_scripts]\na = a:main\n\n[ sync_lint.rules ]\na = a.rules\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert catalogue.builtin_catalogue() is None


def test_another_group_or_a_zipped_path_is_read_as_importlib_metadata_reads_it(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile
    from importlib import metadata

    info = tmp_path / "other-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[console_scripts]\nsync_lint.rules = a:main\n")
    archive = tmp_path / "packs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[sync_lint.rules]\nz = z.rules\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert catalogue.rule_pack_installed() is False
    monkeypatch.syspath_prepend(str(archive))
    assert catalogue.rule_pack_installed() is True
    assert [ep.name for ep in metadata.entry_points(group="sync_lint.rules")] == ["z"]


def test_the_executable_answers_version_without_the_command_line_library() -> None:
    probe = ("import sys\nsys.argv = ['sync-lint', '--version']\nfrom sync_lint.__main__ import main\n"
             "status = main()\nprint('click' in sys.modules, status, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("sync-lint, version ")
    assert done.stderr.strip() == "False 0"


def test_the_executable_runs_without_automatic_collection() -> None:
    # What a check makes is freed by reference counting (`tests/test_collector.py`).
    probe = ("import gc, sys\nsys.argv = ['sync-lint', 'rules']\nfrom sync_lint.__main__ import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(gc.isenabled(), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_the_executable_passes_the_exit_status_on() -> None:
    # `python -m sync_lint` and the console script exit with the command's status (1: findings).
    done = subprocess.run([sys.executable, "-m", "sync_lint", "check", "--isolated", "-", "--stdin-filename", "x.py"],
                          input="import torch\nx = torch.zeros(3, device='cuda')\nx.item()\n",
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stderr


def test_a_check_answered_from_the_cache_imports_no_parser(tmp_path) -> None:
    """A warm one-file check (pre-commit on an unchanged file) reads its result from the cache: it
    loads neither libcst nor the rules, and reports what the first run found."""
    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "step.py").write_text(
        "import torch\n\n\ndef step(n):\n    x = torch.zeros(n, device='cuda')\n    return x.sum().item()\n")
    args = ["check", "pkg/step.py", "--cache-dir", str(tmp_path / "cache"), "--output-format", "concise"]
    probe = f"import os; os.chdir({str(project)!r})\n" + PROBE.format(args=args)
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert {"libcst", "sync_lint.rules"} <= loaded(first.stderr), first.stderr
    second = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert not {"libcst", "sync_lint.rules"} & loaded(second.stderr), second.stderr
    # Nor pathspec, with only the default excludes and no .gitignore to read.
    assert "pathspec" not in loaded(second.stderr), second.stderr
    assert "pkg/step.py:6:" in second.stdout and second.stdout == first.stdout
    # An edit is checked again, with the rules.
    (project / "pkg" / "step.py").write_text((project / "pkg" / "step.py").read_text() + "# edited\n")
    third = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "libcst" in loaded(third.stderr) and "pkg/step.py:6:" in third.stdout


def loaded(stderr: str) -> set[str]:
    line = next(line for line in stderr.splitlines() if line.startswith("LOADED:"))
    return set(filter(None, line[len("LOADED:"):].split(",")))


def test_python_dash_m_does_not_import_the_working_directorys_modules(tmp_path: Path) -> None:
    # The editor client starts `python -m sync_lint server` in the workspace. Without `site` (as in
    # a bare virtual environment, where nothing imports `typing` first) the workspace's own
    # `typing.py` would be what `import typing` finds.
    import site

    import sync_lint

    (tmp_path / "typing.py").write_text("raise ImportError('the working directory typing.py was imported')\n")
    source_root = str(Path(sync_lint.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": os.pathsep.join([source_root, *site.getsitepackages()]), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-S", "-m", "sync_lint", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "check" in done.stdout


def test_a_check_leaves_without_teardown_after_its_exit_handlers_and_output(tmp_path) -> None:
    # `exit_without_teardown`: the status is the command's, the exit handlers ran, and every line
    # printed before `os._exit` reached the pipe; the code after the command never runs.
    source = tmp_path / "m.py"
    source.write_text("import torch\nx = torch.zeros(3, device='cuda')\nx.item()\n")
    probe = ("import atexit, sys\nsys.argv = ['sync-lint', 'check', '--isolated', '--no-daemon', sys.argv[1]]\n"
             "atexit.register(lambda: sys.stderr.write('HANDLER RAN'))\n"
             "from sync_lint.__main__ import main\nmain()\nsys.stderr.write('RETURNED')")
    done = subprocess.run([sys.executable, "-c", probe, str(source)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "SL101" in done.stdout and "Found 1 error" in done.stdout
    assert "HANDLER RAN" in done.stderr and "RETURNED" not in done.stderr


def test_the_editor_server_collects_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    # A check runs without automatic collection; the server lives for a whole editor session.
    import gc

    pytest.importorskip("pygls", reason="the editor server needs sync-lint[server]")

    import sync_lint.server.lsp as lsp
    from sync_lint.server import main as serve

    seen: list[bool] = []
    monkeypatch.setattr(lsp, "start_server", lambda: seen.append(gc.isenabled()))
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    gc.disable()
    try:
        serve()
    finally:
        gc.set_threshold(*threshold)
        if not enabled:
            gc.disable()
    assert seen == [True]


def test_the_runtime_commands_run_with_the_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    # `verify` and `trace` run torch and the code under test in the process a check runs without it.
    import gc

    from click.testing import CliRunner

    pytest.importorskip("torch", reason="`sync-lint verify` needs torch")
    import sync_lint.runtime.verify as verify
    from sync_lint.cli import main

    seen: list[bool] = []

    def run_verification(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        raise SystemExit(0)

    monkeypatch.setattr(verify, "run_verification", run_verification)
    enabled = gc.isenabled()
    gc.disable()
    try:
        CliRunner().invoke(main, ["verify", "--device", "cpu", "--no-cold", "--trials", "1"])
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    assert seen == [True]


def test_watch_collects_garbage_after_each_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A check runs without automatic collection; `--watch` runs check after check in one process.
    import sync_lint.cli.check as check

    events: list[str] = []
    snapshots = iter(range(100))
    monkeypatch.setattr(check, "run_check", lambda **options: events.append("run") or 0)
    monkeypatch.setattr(check, "_snapshot", lambda paths, options: {"m.py": next(snapshots)})
    monkeypatch.setattr(check.gc, "collect", lambda: events.append("collect") or 0)
    assert check.watch({"paths": ("m.py",)}, poll=0, max_runs=2) == 0
    assert events == ["run", "collect", "run", "collect"]


def test_a_check_of_a_file_no_rule_could_report_in_imports_no_parser(tmp_path) -> None:
    """A file whose text holds no rule's trigger (a table of constants, an `__init__.py` of imports)
    is decided from the catalogue: checked after an edit, it loads neither libcst nor the rules, in a
    project whose other files have findings."""
    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (project / "pkg" / "__init__.py").write_text("from pkg.consts import NAMES\n")
    (project / "pkg" / "consts.py").write_text('NAMES = {"a": 1}\n')
    (project / "pkg" / "step.py").write_text(
        "import torch\n\n\ndef step(n):\n    x = torch.zeros(n, device='cuda')\n    return x.sum().item()\n")
    cache = str(tmp_path / "cache")
    whole = subprocess.run([sys.executable, "-m", "sync_lint", "check", ".", "--cache-dir", cache, "--no-daemon",
                            "--output-format", "concise"], cwd=project, capture_output=True, text=True)
    assert "pkg/step.py:6:" in whole.stdout, whole.stderr
    (project / "pkg" / "consts.py").write_text('NAMES = {"a": 1, "b": 2}\n')
    args = ["check", "pkg/consts.py", "--cache-dir", cache, "--no-daemon", "--output-format", "concise"]
    edited = subprocess.run([sys.executable, "-c", f"import os; os.chdir({str(project)!r})\n" + PROBE.format(args=args)],
                            capture_output=True, text=True, check=True)
    assert not {"libcst", "sync_lint.rules"} & loaded(edited.stderr), edited.stderr
    assert "All checks passed" in edited.stdout or "No errors" in edited.stdout, edited.stdout
