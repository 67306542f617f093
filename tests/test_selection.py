"""Rule selection: codes, prefixes, ALL, ignore, extend-select, comma lists, per-file-ignores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_lint.cli import main
from sync_lint.registry import all_rules
from sync_lint.selection import SelectionError, enabled_codes, expand_selectors

GPU_SRC = 'x = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'
KNOWN = ["SL101", "SL102", "SL110", "SL201", "SL202", "SL301", "XY001"]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


# ==========================================================================================
# The selection logic
# ==========================================================================================


@pytest.mark.parametrize(
    ("select", "extend", "ignore", "expected"),
    [
        (["ALL"], [], [], KNOWN),
        (["all"], [], [], KNOWN),
        (["SL1"], [], [], ["SL101", "SL102", "SL110"]),
        (["SL10"], [], [], ["SL101", "SL102"]),
        (["SL101"], [], [], ["SL101"]),
        (["sl101", " SL201 "], [], [], ["SL101", "SL201"]),
        (["SL1"], ["SL201"], [], ["SL101", "SL102", "SL110", "SL201"]),
        (["ALL"], [], ["SL1"], ["SL201", "SL202", "SL301", "XY001"]),
        (["ALL"], [], ["SL101", "XY"], ["SL102", "SL110", "SL201", "SL202", "SL301"]),
        # A more specific select beats a broader ignore, and the reverse (as in ruff).
        (["SL1", "SL101"], [], ["SL1"], ["SL101"]),
        (["SL1"], [], ["SL10"], ["SL110"]),
        (["SL1"], ["SL101"], ["SL1"], ["SL101"]),
        # At equal specificity the ignore wins.
        (["SL101"], [], ["SL101"], []),
        ([], ["SL3"], [], ["SL301"]),
    ],
)
def test_enabled_codes(select, extend, ignore, expected) -> None:
    assert enabled_codes(KNOWN, select, extend, ignore) == expected


@pytest.mark.parametrize("bad", ["SL9", "SL1010", "XX", "S L1"])
def test_unknown_selector(bad: str) -> None:
    with pytest.raises(SelectionError, match="Unknown rule selector") as info:
        enabled_codes(KNOWN, [bad])
    assert bad in str(info.value)
    with pytest.raises(SelectionError, match="Unknown rule selector"):
        enabled_codes(KNOWN, ["ALL"], ignore=[bad])
    with pytest.raises(SelectionError, match="Unknown rule selector"):
        expand_selectors([bad], KNOWN)


def test_empty_selectors_are_skipped() -> None:
    assert expand_selectors(["", "  ", "SL2"], KNOWN) == {"SL201", "SL202"}


# ==========================================================================================
# Through the command line
# ==========================================================================================


@pytest.fixture
def gpu_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gpu.py").write_text(GPU_SRC)
    return tmp_path / "gpu.py"


def codes(*args: str) -> list[str]:
    result = invoke("check", "--jobs", "1", "--output-format", "json", *args, "gpu.py")
    assert result.exit_code in (0, 1), result.output
    return [d["code"] for d in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "args",
    [(), ("--select", "ALL"), ("--select", "SL1"), ("--select", "SL101"), ("--select", "sl101"),
     ("--select", "SL1,SL101"), ("--select", "SL101", "--select", "ALL"), ("--select", "SL101, SL1")],
)
def test_selections_that_enable_sl101(gpu_file: Path, args: tuple[str, ...]) -> None:
    assert "SL101" in codes(*args)


@pytest.mark.parametrize(
    "args",
    [("--ignore", "SL101"), ("--ignore", "SL1"), ("--select", "ALL", "--ignore", "SL1"),
     ("--ignore", "SL1,SL101"), ("--select", "SL101", "--ignore", "SL101")],
)
def test_selections_that_disable_sl101(gpu_file: Path, args: tuple[str, ...]) -> None:
    assert "SL101" not in codes(*args)


def test_select_restricts_to_the_selection(gpu_file: Path) -> None:
    other = sorted(c for c in all_rules() if not c.startswith("SL1"))
    if not other:
        pytest.skip("only SL1xx rules are registered")
    # Selecting another rule family drops SL101 ...
    assert "SL101" not in codes("--select", other[0])
    # ... and --extend-select adds it back on top of that selection.
    assert "SL101" in codes("--select", other[0], "--extend-select", "SL101")


def test_extend_select_on_top_of_a_configured_select(gpu_file: Path) -> None:
    (gpu_file.parent / "sync-lint.toml").write_text('select = ["SL101"]\nignore = ["SL1"]\n')
    assert "SL101" in codes()  # SL101 is more specific than SL1
    (gpu_file.parent / "sync-lint.toml").write_text('ignore = ["SL101"]\n')
    assert "SL101" not in codes()
    assert "SL101" not in codes("--extend-select", "SL1")  # less specific than the ignore
    assert "SL101" in codes("--isolated", "--extend-select", "SL101")


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_selector_on_the_command_line(gpu_file: Path, option: str) -> None:
    result = invoke("check", option, "SL101,NOPE7", "gpu.py")
    assert result.exit_code == 2
    assert "Unknown rule selector" in result.stderr and "NOPE7" in result.stderr
    assert result.stdout == ""


def test_per_file_ignores_glob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("src/model.py", "tests/test_model.py", "tests/unit/test_deep.py", "scripts/bench.py", "bench.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(GPU_SRC)
    (tmp_path / "sync-lint.toml").write_text(
        'per-file-ignores = {"tests/**" = ["SL101"], "bench.py" = ["SL1"], "src/other.py" = ["SL101"]}\n'
    )
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    flagged = sorted(Path(d["filename"]).relative_to(tmp_path.resolve()).as_posix()
                     for d in json.loads(result.stdout) if d["code"] == "SL101")
    assert flagged == ["src/model.py"]


def test_a_rule_named_explicitly_but_off_for_the_target_torch_says_why(tmp_path) -> None:
    from click.testing import CliRunner

    from sync_lint.cli import main

    (tmp_path / "t.py").write_text('import torch\nt = torch.zeros(4, device="cuda")\nt[0] = 1\n')
    result = CliRunner().invoke(main, ["check", str(tmp_path / "t.py"), "--select", "SL301", "--jobs", "1",
                                       "--target-torch-version", "2.15", "--output-format", "concise"])
    assert result.exit_code == 0
    assert "SL301 is off for torch 2.15" in result.stderr
    older = CliRunner().invoke(main, ["check", str(tmp_path / "t.py"), "--select", "SL301", "--jobs", "1",
                                      "--target-torch-version", "2.11", "--output-format", "concise"])
    assert older.exit_code == 1 and "SL301" in older.stdout and "is off" not in older.stderr
