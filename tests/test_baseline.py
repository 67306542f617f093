from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sync_lint.baseline import (
    BASELINE_VERSION,
    BaselineError,
    create_baseline,
    load_baseline,
)
from sync_lint.diagnostics import Diagnostic, Position

SOURCE = """\
import torch

x = torch.zeros(3, device="cuda")
v = x.sum().item()
print(v)
"""


def read_lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def diag(
    path: Path | str, row: int, code: str = "SL101", column: int = 5
) -> Diagnostic:
    return Diagnostic(
        code=code,
        name="tensor-item",
        message=f"{code} finding",
        path=str(path),
        start=Position(row, column),
        end=Position(row, column + 6),
    )


def find_rows(path: Path, needle: str) -> list[int]:
    return [
        i for i, line in enumerate(read_lines(str(path)), start=1) if needle in line
    ]


def findings(
    path: Path, needle: str = ".item()", code: str = "SL101"
) -> list[Diagnostic]:
    """What a checker would report: one diagnostic per line containing `needle`."""
    return [diag(path, row, code) for row in find_rows(path, needle)]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "train.py").write_text(SOURCE, encoding="utf-8")
    return root


def test_round_trip_absorbs_every_finding(project: Path) -> None:
    baseline_path = project / "baseline.json"
    diagnostics = findings(project / "train.py")

    assert create_baseline(diagnostics, baseline_path, read_lines) == 1

    result = load_baseline(baseline_path).filter(diagnostics, read_lines)
    assert result.new == []
    assert result.matched == 1
    assert result.stale == []


def test_file_format(project: Path) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    document = json.loads(baseline_path.read_text(encoding="utf-8"))
    assert document["tool"] == "sync-lint"
    assert document["version"] == BASELINE_VERSION
    [entry] = document["entries"]
    assert entry["file"] == "train.py"
    assert entry["code"] == "SL101"
    assert entry["line"] == 4
    assert entry["message"] == "SL101 finding"
    assert entry["occurrence"] == 0
    assert len(entry["fingerprint"]) == 64


def test_output_is_deterministic(project: Path) -> None:
    other = project / "pkg" / "model.py"
    other.parent.mkdir()
    other.write_text("a = b.item()\nc = d.item()\n", encoding="utf-8")
    diagnostics = (
        findings(project / "train.py") + findings(other) + [diag(other, 1, "SL102")]
    )

    create_baseline(diagnostics, project / "one.json", read_lines)
    create_baseline(list(reversed(diagnostics)), project / "two.json", read_lines)

    one = (project / "one.json").read_bytes()
    assert one == (project / "two.json").read_bytes()
    files = [(e["file"], e["line"], e["code"]) for e in json.loads(one)["entries"]]
    assert files == sorted(files)
    assert ("pkg/model.py", 1, "SL102") in files


def test_shifted_lines_stay_matched(project: Path) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    shifted = "# a new header\nimport os\n\n\n" + SOURCE + "\ndef later():\n    pass\n"
    (project / "train.py").write_text(shifted, encoding="utf-8")
    diagnostics = findings(project / "train.py")
    assert diagnostics[0].start.row == 8

    result = load_baseline(baseline_path).filter(diagnostics, read_lines)
    assert (result.new, result.matched, result.stale) == ([], 1, [])


def test_reindenting_and_blank_lines_around_the_finding_stay_matched(
    project: Path,
) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    edited = SOURCE.replace("v = x.sum().item()\n", "\n\nv  =  x.sum().item()   \n\n")
    (project / "train.py").write_text(edited, encoding="utf-8")

    result = load_baseline(baseline_path).filter(
        findings(project / "train.py"), read_lines
    )
    assert (result.new, result.matched) == ([], 1)


def test_editing_the_flagged_line_makes_the_finding_new(project: Path) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    edited = SOURCE.replace("v = x.sum().item()", "v = x.mean().item()")
    (project / "train.py").write_text(edited, encoding="utf-8")
    diagnostics = findings(project / "train.py")

    result = load_baseline(baseline_path).filter(diagnostics, read_lines)
    assert result.new == diagnostics
    assert result.matched == 0
    # The old entry no longer matches anything: --show-stale lists it.
    [stale] = result.stale
    assert (stale.file, stale.code, stale.line) == ("train.py", "SL101", 4)


def test_editing_a_neighbouring_line_keeps_the_finding_matched(project: Path) -> None:
    # Code added or changed right next to an accepted finding is an unrelated
    # edit: the flagged line itself is unchanged, so the second tier matches it.
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    edited = SOURCE.replace('device="cuda"', 'device="cuda:1"')
    (project / "train.py").write_text(edited, encoding="utf-8")
    diagnostics = findings(project / "train.py")

    result = load_baseline(baseline_path).filter(diagnostics, read_lines)
    assert (result.new, result.matched, result.stale) == ([], len(diagnostics), [])


def test_baseline_without_line_fingerprints_still_matches_exactly(project: Path) -> None:
    # Files written before the second tier existed carry no line_fingerprint.
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)
    document = json.loads(baseline_path.read_text())
    for entry in document["entries"]:
        del entry["line_fingerprint"]
    baseline_path.write_text(json.dumps(document))
    result = load_baseline(baseline_path).filter(findings(project / "train.py"), read_lines)
    assert result.new == []


def test_other_rule_on_the_same_line_is_new(project: Path) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    extra = diag(project / "train.py", 4, code="SL102")
    result = load_baseline(baseline_path).filter(
        findings(project / "train.py") + [extra], read_lines
    )
    assert (result.new, result.matched) == ([extra], 1)


def test_fixed_finding_becomes_stale(project: Path) -> None:
    baseline_path = project / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    result = load_baseline(baseline_path).filter([], read_lines)
    assert result.new == []
    assert [(e.file, e.line) for e in result.stale] == [("train.py", 4)]


DUPLICATED = """\
for batch in loader:
    loss = model(batch).item()
    log(loss)
for batch in loader:
    loss = model(batch).item()
    log(loss)
"""


def test_identical_findings_match_as_a_multiset(project: Path) -> None:
    path = project / "loop.py"
    path.write_text(DUPLICATED, encoding="utf-8")
    baseline_path = project / "baseline.json"
    assert create_baseline(findings(path), baseline_path, read_lines) == 2

    entries = json.loads(baseline_path.read_text(encoding="utf-8"))["entries"]
    assert entries[0]["fingerprint"] == entries[1]["fingerprint"]
    assert [e["occurrence"] for e in entries] == [0, 1]

    # A third copy: the two entries absorb two findings, the last one is new.
    path.write_text(DUPLICATED + DUPLICATED.split("\n", 3)[3], encoding="utf-8")
    diagnostics = findings(path)
    assert len(diagnostics) == 3
    result = load_baseline(baseline_path).filter(diagnostics, read_lines)
    assert result.new == [diagnostics[2]]
    assert (result.matched, result.stale) == (2, [])

    # Back to one copy: one entry is left over.
    path.write_text(DUPLICATED.split("\n", 3)[3], encoding="utf-8")
    result = load_baseline(baseline_path).filter(findings(path), read_lines)
    assert (result.new, result.matched) == ([], 1)
    assert [e.occurrence for e in result.stale] == [1]


def test_relative_and_absolute_paths_give_the_same_entry(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = project / "pkg"
    package.mkdir()
    (package / "model.py").write_text(SOURCE, encoding="utf-8")
    baseline_path = project / "baseline.json"
    create_baseline(findings(package / "model.py"), baseline_path, read_lines)

    # Checked later from inside pkg/, with paths relative to that cwd.
    monkeypatch.chdir(package)
    relative = findings(Path("model.py"))
    assert not Path(relative[0].path).is_absolute()
    result = load_baseline(Path("../baseline.json")).filter(relative, read_lines)
    assert (result.new, result.matched) == ([], 1)

    entries = json.loads(baseline_path.read_text(encoding="utf-8"))["entries"]
    assert entries[0]["file"] == "pkg/model.py"


def test_entries_are_relative_to_the_baseline_directory(project: Path) -> None:
    baseline_path = project / "config" / "sync-lint" / "baseline.json"
    create_baseline(findings(project / "train.py"), baseline_path, read_lines)

    entries = json.loads(baseline_path.read_text(encoding="utf-8"))["entries"]
    assert entries[0]["file"] == "../../train.py"
    result = load_baseline(baseline_path).filter(findings(Path("train.py")), read_lines)
    assert result.matched == 1


def test_moving_the_whole_project_keeps_matches(project: Path, tmp_path: Path) -> None:
    create_baseline(
        findings(project / "train.py"), project / "baseline.json", read_lines
    )

    moved = tmp_path / "moved"
    shutil.copytree(project, moved)
    result = load_baseline(moved / "baseline.json").filter(
        findings(moved / "train.py"), read_lines
    )
    assert result.matched == 1


def test_checked_paths_limit_stale_entries(project: Path) -> None:
    other = project / "other.py"
    other.write_text("y = z.item()\n", encoding="utf-8")
    baseline_path = project / "baseline.json"
    create_baseline(
        findings(project / "train.py") + findings(other), baseline_path, read_lines
    )

    # Only other.py was checked this time (and its finding is fixed).
    result = load_baseline(baseline_path).filter(
        [], read_lines, checked_paths=[str(other)]
    )
    assert [e.file for e in result.stale] == ["other.py"]


def test_create_overwrites_atomically(project: Path) -> None:
    baseline_path = project / "baseline.json"
    baseline_path.write_text("old contents", encoding="utf-8")

    assert create_baseline([], baseline_path, read_lines) == 0

    assert json.loads(baseline_path.read_text(encoding="utf-8"))["entries"] == []
    assert sorted(p.name for p in project.iterdir()) == ["baseline.json", "train.py"]


def test_create_failure_raises_and_leaves_no_temp_file(project: Path) -> None:
    target = project / "taken"
    target.mkdir()
    (target / "keep").write_text("", encoding="utf-8")

    with pytest.raises(BaselineError, match="cannot write baseline .*taken"):
        create_baseline(findings(project / "train.py"), target, read_lines)
    assert sorted(p.name for p in project.iterdir()) == ["taken", "train.py"]


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("{not json", "not valid JSON"),
        ([], "not a sync-lint baseline"),
        ({"tool": "other", "version": 1, "entries": []}, "not a sync-lint baseline"),
        (
            {"tool": "sync-lint", "version": 99, "entries": []},
            "unsupported baseline version 99",
        ),
        ({"tool": "sync-lint", "version": 1}, "'entries' must be a list"),
        (
            {"tool": "sync-lint", "version": 1, "entries": ["x"]},
            "entry 0 is not an object",
        ),
        (
            {
                "tool": "sync-lint",
                "version": 1,
                "entries": [{"file": "a.py", "code": "SL1"}],
            },
            "entry 0 needs str field 'fingerprint'",
        ),
        (
            {
                "tool": "sync-lint",
                "version": 1,
                "entries": [
                    {"file": "a", "code": "S", "fingerprint": "f", "occurrence": True}
                ],
            },
            "entry 0 needs int field 'occurrence'",
        ),
    ],
)
def test_load_rejects_malformed_files(
    tmp_path: Path, contents: object, message: str
) -> None:
    path = tmp_path / "bad.json"
    text = contents if isinstance(contents, str) else json.dumps(contents)
    path.write_text(text, encoding="utf-8")

    with pytest.raises(BaselineError, match=message) as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(BaselineError, match="baseline file not found") as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)
