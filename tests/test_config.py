"""Configuration: where it is found, what it may say, how the command line overrides it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_lint.cli import main
from sync_lint.config import OPTIONS, ConfigError, Settings, find_config, load_config_file, resolve_settings

GPU_SRC = 'x = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def sl101_files(*args: str) -> list[str]:
    """Names of the files in which SL101 fired (concise output keeps this format-independent)."""
    result = invoke("check", "--jobs", "1", "--output-format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return sorted(Path(d["filename"]).name for d in json.loads(result.stdout) if d["code"] == "SL101")


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/outside (the cwd, no config) and tmp/project/src/pkg/mod.py with one SL101."""
    (tmp_path / "outside").mkdir()
    mod = tmp_path / "project" / "src" / "pkg" / "mod.py"
    mod.parent.mkdir(parents=True)
    mod.write_text(GPU_SRC)
    monkeypatch.chdir(tmp_path / "outside")
    return tmp_path


def mod_path(layout: Path) -> str:
    return str(layout / "project" / "src" / "pkg" / "mod.py")


# ==========================================================================================
# Finding the file
# ==========================================================================================


def test_pyproject_found_by_walking_up_from_the_linted_path(layout: Path) -> None:
    assert sl101_files(mod_path(layout)) == ["mod.py"]
    (layout / "project" / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.sync-lint]\nignore = ["SL101"]\n')
    assert sl101_files(mod_path(layout)) == []
    assert sl101_files(str(layout / "project" / "src")) == []
    assert find_config(Path(mod_path(layout))) == layout / "project" / "pyproject.toml"


def test_pyproject_without_our_table_is_skipped(layout: Path) -> None:
    (layout / "project" / "src" / "pyproject.toml").write_text('[tool.black]\nline-length = 100\n')
    (layout / "project" / "sync-lint.toml").write_text('ignore = ["SL101"]\n')
    assert find_config(Path(mod_path(layout))) == layout / "project" / "sync-lint.toml"
    assert sl101_files(mod_path(layout)) == []


def test_sync_lint_toml(layout: Path) -> None:
    (layout / "project" / "src" / "sync-lint.toml").write_text('ignore = ["SL1"]\n')
    assert sl101_files(mod_path(layout)) == []
    settings = load_config_file(layout / "project" / "src" / "sync-lint.toml")
    assert settings.ignore == ("SL1",)
    assert settings.root == (layout / "project" / "src").resolve()


def test_sync_lint_toml_beats_pyproject_in_the_same_directory(layout: Path) -> None:
    project = layout / "project"
    (project / "pyproject.toml").write_text('[tool.sync-lint]\nignore = ["SL101"]\n')
    (project / "sync-lint.toml").write_text('select = ["SL101"]\n')
    assert find_config(project) == project / "sync-lint.toml"
    assert sl101_files(mod_path(layout)) == ["mod.py"]


def test_nearest_config_wins(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text('select = ["SL101"]\n')
    (layout / "project" / "src" / "pkg" / "pyproject.toml").write_text('[tool.sync-lint]\nignore = ["SL101"]\n')
    assert sl101_files(mod_path(layout)) == []


def test_no_config_anywhere_uses_defaults(layout: Path) -> None:
    settings = resolve_settings([Path(mod_path(layout))], None)
    assert settings.config_path is None
    assert settings == Settings(root=settings.root)


def test_explicit_config_path(layout: Path) -> None:
    other = layout / "elsewhere" / "custom.toml"
    other.parent.mkdir()
    other.write_text('ignore = ["SL101"]\n')
    # A config next to the code would say the opposite; --config wins.
    (layout / "project" / "sync-lint.toml").write_text('select = ["SL101"]\n')
    assert sl101_files("--config", str(other), mod_path(layout)) == []
    py = layout / "elsewhere" / "pyproject.toml"
    py.write_text('[tool.sync-lint]\nignore = ["SL101"]\n')
    assert sl101_files("--config", str(py), mod_path(layout)) == []


def test_missing_explicit_config(layout: Path) -> None:
    result = invoke("check", "--config", "nope.toml", mod_path(layout))
    assert result.exit_code == 2
    assert "nope.toml" in result.stderr


def test_isolated_ignores_every_config_file(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text('ignore = ["SL101"]\nbogus-key = 1\n')
    assert sl101_files("--isolated", mod_path(layout)) == ["mod.py"]
    assert invoke("check", mod_path(layout)).exit_code == 2  # the broken file is read without --isolated


# ==========================================================================================
# The command line overrides the file
# ==========================================================================================


def test_cli_output_format_overrides_file(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text('output-format = "json"\n')
    as_file = invoke("check", "--select", "SL101", "--jobs", "1", mod_path(layout))
    assert json.loads(as_file.stdout)[0]["code"] == "SL101"
    as_flag = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "concise", mod_path(layout))
    assert "mod.py:2:5: SL101" in as_flag.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(as_flag.stdout)


def test_cli_select_overrides_file_select(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text('ignore = ["SL1"]\n')
    assert sl101_files(mod_path(layout)) == []
    assert sl101_files("--select", "SL101", mod_path(layout)) == ["mod.py"]  # more specific than the file's SL1
    (layout / "project" / "sync-lint.toml").write_text('select = ["SL101"]\n')
    assert sl101_files("--ignore", "SL101", mod_path(layout)) == []


def test_cli_strict_and_jobs_override_file(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text("strict = true\njobs = 3\n")
    from sync_lint.api import plan as plan_run

    plan = plan_run([mod_path(layout)])
    assert plan.settings.strict is True and plan.settings.jobs == 3
    plan = plan_run([mod_path(layout)], strict=False, target_torch_version="2.5")
    assert plan.settings.strict is False and plan.settings.target_torch_version == "2.5"


def test_config_per_file_ignores_anchor_at_the_config_directory(layout: Path) -> None:
    (layout / "project" / "sync-lint.toml").write_text('per-file-ignores = {"src/pkg/*.py" = ["SL101"]}\n')
    assert sl101_files(mod_path(layout)) == []
    (layout / "project" / "sync-lint.toml").write_text('per-file-ignores = {"other/*.py" = ["SL101"]}\n')
    assert sl101_files(mod_path(layout)) == ["mod.py"]


def test_allowed_sync_contexts_from_config(layout: Path) -> None:
    Path(mod_path(layout)).write_text(
        'x = torch.zeros(3, device="cuda")\nwith startup_phase():\n    v = x.sum().item()\n'
    )
    assert sl101_files(mod_path(layout)) == ["mod.py"]
    (layout / "project" / "sync-lint.toml").write_text('allowed-sync-contexts = ["startup_phase"]\n')
    assert sl101_files(mod_path(layout)) == []


# ==========================================================================================
# Bad configuration
# ==========================================================================================


def _check_fails(layout: Path, file_name: str, text: str) -> str:
    (layout / "project" / file_name).write_text(text)
    result = invoke("check", "--jobs", "1", mod_path(layout))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.parametrize("file_name,prefix", [("sync-lint.toml", ""), ("pyproject.toml", "[tool.sync-lint]\n")])
def test_unknown_key_names_the_key(layout: Path, file_name: str, prefix: str) -> None:
    stderr = _check_fails(layout, file_name, prefix + 'selekt = ["SL101"]\n')
    assert "selekt" in stderr and "unknown" in stderr.lower()
    assert file_name in stderr


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('select = "SL101"', "select"),
        ("ignore = [1, 2]", "ignore"),
        ('respect-gitignore = "yes"', "respect-gitignore"),
        ("strict = 1", "strict"),
        ("jobs = 0", "jobs"),
        ('jobs = "many"', "jobs"),
        ("jobs = true", "jobs"),
        ('per-file-ignores = ["tests/*"]', "per-file-ignores"),
        ('per-file-ignores = {"tests/*" = "SL101"}', "per-file-ignores"),
        ('output-format = "xml"', "output-format"),
        ('cpu-name-patterns = ["("]', "cpu-name-patterns"),
        ('cpu-modules = ["(cpu"]', "cpu-modules"),
        ("target-torch-version = 2.5", "target-torch-version"),
        ("allowed-sync-contexts = 3", "allowed-sync-contexts"),
        ('sync-prone-attributes = ["x"]', "sync-prone-attributes"),
        ('exclude = ["[z-a]"]', "exclude"),
        ('extend-exclude = ["ok", "[z-a]"]', "extend-exclude"),
        ('per-file-ignores = {"[z-a]" = ["SL101"]}', "per-file-ignores"),
    ],
)
def test_bad_values_name_the_key(layout: Path, line: str, key: str) -> None:
    stderr = _check_fails(layout, "sync-lint.toml", line + "\n")
    assert f"`{key}`" in stderr
    assert "sync-lint.toml" in stderr


def test_every_option_is_validated() -> None:
    """Each declared key rejects a value of the wrong type (a table is wrong for all but the maps)."""
    for option in OPTIONS:
        bad = 42 if option.kind in ("glob-map", "str-map") else {"a": {"b": 1}}
        with pytest.raises(ConfigError, match=f"`{option.key}`"):
            from sync_lint.config import settings_from_table

            settings_from_table({option.key: bad}, "test.toml", Path.cwd(), None)


def test_unknown_selector_in_config(layout: Path) -> None:
    stderr = _check_fails(layout, "sync-lint.toml", 'select = ["SL9Z"]\n')
    assert "Unknown rule selector" in stderr and "SL9Z" in stderr
    stderr = _check_fails(layout, "sync-lint.toml", 'per-file-ignores = {"*.py" = ["NOPE1"]}\n')
    assert "Unknown rule selector" in stderr and "NOPE1" in stderr


@pytest.mark.parametrize("file_name", ["sync-lint.toml", "pyproject.toml"])
def test_invalid_toml_names_the_file(layout: Path, file_name: str) -> None:
    stderr = _check_fails(layout, file_name, "[tool.sync-lint\nselect = [\n")
    assert str(layout / "project" / file_name) in stderr
    assert "TOML" in stderr


def test_invalid_toml_via_config_flag(layout: Path) -> None:
    bad = layout / "bad.toml"
    bad.write_text("select = ['SL101'\n")
    result = invoke("check", "--config", str(bad), mod_path(layout))
    assert result.exit_code == 2
    assert "bad.toml" in result.stderr and "TOML" in result.stderr


def test_broken_pyproject_of_another_tool_is_not_our_error(layout: Path) -> None:
    (layout / "project" / "pyproject.toml").write_text("[tool.black\nline-length = 100\n")
    (layout / "sync-lint.toml").write_text('ignore = ["SL101"]\n')
    assert sl101_files(mod_path(layout)) == []  # the walk went past it to the file above


def test_non_table_sections(layout: Path) -> None:
    stderr = _check_fails(layout, "pyproject.toml", 'tool = { sync-lint = 3 }\n')
    assert "table" in stderr
    for odd in ('tool = "odd"\n', "tool = 3\n"):
        (layout / "project" / "pyproject.toml").write_text(odd)
        assert sl101_files(mod_path(layout)) == ["mod.py"]  # not ours: skipped
        # Named explicitly it is read, and simply holds no settings.
        assert sl101_files("--config", str(layout / "project" / "pyproject.toml"), mod_path(layout)) == ["mod.py"]


def test_load_config_file_values() -> None:
    # Direct unit check of the conversions (lists become tuples, maps become pairs).
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sync-lint.toml"
        path.write_text(
            'select = ["SL1"]\nextend-select = ["SL101"]\nignore = []\n'
            'per-file-ignores = {"tests/**" = ["SL101"], "a.py" = []}\n'
            'allowed-sync-contexts = ["a", "b"]\nstrict = true\njobs = 2\nrespect-gitignore = false\n'
        )
        settings = load_config_file(path)
    assert settings.select == ("SL1",) and settings.extend_select == ("SL101",)
    assert settings.per_file_ignores == (("tests/**", ("SL101",)), ("a.py", ()))
    assert settings.allowed_sync_contexts == ("a", "b")
    assert settings.strict is True and settings.jobs == 2 and settings.respect_gitignore is False
    assert settings.config_path == path.resolve()
