"""Suppression: `# noqa` comments, file-level directives, allowed-sync contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_lint.cli import main
from sync_lint.config import Settings
from sync_lint.engine import lint_source
from sync_lint.registry import all_rules
from sync_lint.suppression import file_directives, noqa_codes

SETUP = 'x = torch.zeros(3, device="cuda")\n'
SYNC = "v = x.sum().item()"
SETTINGS = Settings(target_torch_version="2.11")


def rows(source: str, **settings: object) -> list[int]:
    result = lint_source(source, "m.py", [all_rules()["SL101"]], SETTINGS.override(**settings))
    assert not result.errors
    return [d.start.row for d in result.diagnostics if d.code == "SL101"]


def test_unsuppressed_baseline() -> None:
    assert rows(SETUP + SYNC + "\n") == [2]


# ==========================================================================================
# noqa
# ==========================================================================================


@pytest.mark.parametrize(
    "comment",
    ["# noqa", "#noqa", "# NOQA", "# noqa: SL101", "# NOQA:SL101", "#noqa:sl101", "# noqa:SL101",
     "# noqa: SL102, SL101", "# noqa: SL102,SL101", "# noqa: SL102 SL101", "# type: ignore  # noqa: SL101",
     "# noqa: SL101 -- startup only"],
)
def test_noqa_suppresses(comment: str) -> None:
    assert rows(f"{SETUP}{SYNC}  {comment}\n") == []


@pytest.mark.parametrize("comment", ["# noqa: SL102", "# noqa:SL1", "# noqa: SL1010", "# no qa", "# nosec"])
def test_noqa_for_other_codes_does_not_suppress(comment: str) -> None:
    assert rows(f"{SETUP}{SYNC}  {comment}\n") == [2]


def test_noqa_only_covers_its_own_line() -> None:
    source = f"{SETUP}{SYNC}\nw = x.max().item()  # noqa: SL101\n# noqa\n{SYNC}\n"
    assert rows(source) == [2, 5]


def test_noqa_on_either_line_of_a_multiline_finding() -> None:
    start = f"{SETUP}v = (x.sum()  # noqa: SL101\n     .item())\n"
    end = f"{SETUP}v = (x.sum()\n     .item())  # noqa: SL101\n"
    plain = f"{SETUP}v = (x.sum()\n     .item())\n"
    assert rows(plain) == [2]
    assert rows(start) == []
    assert rows(end) == []


def test_noqa_codes_parsing() -> None:
    assert noqa_codes("x = 1") is None
    assert noqa_codes("x = 1  # a comment") is None
    assert noqa_codes("x = 1  # noqa") == frozenset()
    assert noqa_codes("x = 1  # noqa: SL101,sl102") == frozenset({"SL101", "SL102"})


# ==========================================================================================
# File-level directives
# ==========================================================================================


@pytest.mark.parametrize("directive", ["# sync-lint: skip-file", "#sync-lint: skip-file", "  # sync-lint: noqa"])
def test_skip_file(directive: str) -> None:
    assert rows(f"{directive}\n{SETUP}{SYNC}\n") == []
    assert rows(f"{SETUP}{SYNC}\n{directive}\n") == []


def test_skip_file_must_be_its_own_comment_line() -> None:
    assert rows(f"{SETUP}{SYNC}  # sync-lint: skip-file\n") == [2]
    assert rows(f"{SETUP}s = 'sync-lint: skip-file'\n{SYNC}\n") == [3]


def test_file_level_code_list() -> None:
    assert rows(f"# sync-lint: noqa: SL101\n{SETUP}{SYNC}\n") == []
    assert rows(f"# sync-lint: noqa: SL102\n{SETUP}{SYNC}\n") == [3]
    assert file_directives("# sync-lint: noqa: SL101, SL102\n").ignored_codes == {"SL101", "SL102"}
    assert file_directives("x = 1\n").skip is False


def test_skip_file_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "skipped.py").write_text(f"# sync-lint: skip-file\n{SETUP}{SYNC}\n")
    (tmp_path / "kept.py").write_text(f"{SETUP}{SYNC}  # noqa: SL102\n")
    result = CliRunner().invoke(main, ["check", "--select", "SL101", "--jobs", "1", "--output-format", "json", "."])
    assert [Path(d["filename"]).name for d in json.loads(result.stdout)] == ["kept.py"]


# ==========================================================================================
# Allowed-sync contexts
# ==========================================================================================


@pytest.mark.parametrize(
    "with_line",
    [
        "with gpu_sync_allowed():",
        "with vllm_utils.gpu_sync_allowed():",
        "with a.b.gpu_sync_allowed(reason='startup'):",
        "with gpu_sync_allowed() as token:",
        "with open('f') as fh, gpu_sync_allowed():",
        "with gpu_sync_allowed:",
    ],
)
def test_default_allowed_context(with_line: str) -> None:
    source = f"{SETUP}{with_line}\n    {SYNC}\n    if True:\n        {SYNC}\n{SYNC}\n"
    assert rows(source) == [6]  # only the call after the block


@pytest.mark.parametrize(
    "with_line",
    ["with torch.no_grad():", "with gpu_sync_forbidden():", "with sync_allowed():", "with contextlib.suppress(Exception):"],
)
def test_other_contexts_do_not_allow(with_line: str) -> None:
    assert rows(f"{SETUP}{with_line}\n    {SYNC}\n") == [3]


def test_nested_with_blocks() -> None:
    source = (
        f"{SETUP}with gpu_sync_allowed():\n"
        f"    with torch.no_grad():\n"
        f"        {SYNC}\n"
        f"    {SYNC}\n"
        f"with torch.no_grad():\n"
        f"    with gpu_sync_allowed():\n"
        f"        {SYNC}\n"
        f"    {SYNC}\n"
    )
    assert rows(source) == [9]


def test_error_paths_are_not_findings() -> None:
    # The message of a `raise` or an `assert` is built only on the way to an exception; the test
    # that decides to raise runs every time (vLLM's `group_by_length`).
    source = (
        f"{SETUP}if x.sum().item() != 3:\n"
        f"    raise ValueError(f'mismatch: {{x.sum().item()}}')\n"
        f"assert x.max().item() > 0, f'empty: {{x.min().item()}}'\n"
        f"if x.numel() == 0:\n"
        f"    raise RuntimeError('x') from ValueError(x.sum().item())\n"
        f"{SYNC}\n"
    )
    assert rows(source) == [2, 4, 7]


def test_configured_allowed_context() -> None:
    source = f"{SETUP}with warmup():\n    {SYNC}\nwith gpu_sync_allowed():\n    {SYNC}\n"
    assert rows(source) == [3]
    assert rows(source, allowed_sync_contexts=("warmup", "gpu_sync_allowed")) == []
    # Configuring the list replaces the default.
    assert rows(source, allowed_sync_contexts=("warmup",)) == [5]
    assert rows(f"{SETUP}with utils.warmup():\n    {SYNC}\n", allowed_sync_contexts=("warmup",)) == []
