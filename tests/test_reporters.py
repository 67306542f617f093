"""Fake rule docs for the reporter tests.

Rules defined in this module use this docstring as their documentation, which
is what ends up in SARIF's `fullDescription`.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4
from rich.cells import cell_len

from sync_lint.diagnostics import Diagnostic, Edit, FileError, FileResult, Fix, Position
from sync_lint.formats import OUTPUT_FORMATS as FORMATS
from sync_lint.reporters import render, render_statistics
from sync_lint.rulekit import Rule

FIXTURES = Path(__file__).parent / "fixtures"
SARIF_SCHEMA = FIXTURES / "sarif-schema-2.1.0.json"

RUFF_KEYS = {
    "cell",
    "code",
    "end_location",
    "filename",
    "fix",
    "location",
    "message",
    "name",
    "noqa_row",
    "severity",
    "url",
}


class ItemSync(Rule):
    code = "SLT001"
    name = "item-sync"
    summary = "`.item()` on a CUDA tensor waits for the GPU."
    triggers = (".item",)
    fix_availability = "sometimes"


class SetItemSync(Rule):
    code = "SLT002"
    name = "scalar-setitem-sync"
    summary = "Writing a Python scalar into a CUDA tensor by index synchronizes."
    triggers = ("[",)
    fix_availability = "sometimes"


RULES: dict[str, type[Rule]] = {ItemSync.code: ItemSync, SetItemSync.code: SetItemSync}

P = Position
TRAIN = "pkg/train.py"
DATA = "pkg/data.py"
BROKEN = "pkg/broken.py"

# train.py, row 12:  "    loss_val = loss.item()"; `loss.item()` is columns 16..27.
ITEM_WITH_SAFE_FIX = Diagnostic(
    code="SLT001",
    name="item-sync",
    message="`loss.item()` copies a CUDA tensor to the host",
    path=TRAIN,
    start=P(12, 16),
    end=P(12, 27),
    evidence="`loss` is on the GPU: assigned from `model(x)` at line 10",
    fix=Fix("safe", "Keep the value on the device", (Edit(0, 6, "detach()", location=P(12, 21), end_location=P(12, 27)),)),
    source_line="    loss_val = loss.item()\n",
)
# train.py, row 20: "    t[0] = 0"; `t[0] = 0` is columns 5..13.
SETITEM_WITH_UNSAFE_FIX = Diagnostic(
    code="SLT002",
    name="scalar-setitem-sync",
    message="`t[0] = 0` writes a Python scalar into a CUDA tensor",
    path=TRAIN,
    start=P(20, 5),
    end=P(20, 13),
    fix=Fix("unsafe", "Use `t[0].fill_(0)`", (Edit(0, 8, "t[0].fill_(0)", location=P(20, 5), end_location=P(20, 13)),)),
    source_line="    t[0] = 0",
    confidence="strict",
)
# data.py, row 3: no fix, no evidence.
PLAIN = Diagnostic(
    code="SLT001",
    name="item-sync",
    message="`batch.item()` copies a CUDA tensor to the host",
    path=DATA,
    start=P(3, 9),
    end=P(3, 21),
    source_line="    n = batch.item()",
)
# data.py, rows 7-8: a span over two lines.
MULTILINE = Diagnostic(
    code="SLT002",
    name="scalar-setitem-sync",
    message="scalar write spans lines",
    path=DATA,
    start=P(7, 5),
    end=P(8, 6),
    source_line="    x[i] = (",
)
PARSE_ERROR = FileError(BROKEN, "failed to parse: invalid syntax at 2:7")
RULE_ERROR = FileError(DATA, "rule crashed: KeyError('x')", rule="SLT002")


def make_results() -> list[FileResult]:
    # Deliberately out of order: reporters must sort.
    return [
        FileResult(TRAIN, [SETITEM_WITH_UNSAFE_FIX, ITEM_WITH_SAFE_FIX], parsed=True),
        FileResult(DATA, [MULTILINE, PLAIN], [RULE_ERROR], parsed=True),
        FileResult(BROKEN, [], [PARSE_ERROR]),
    ]


EXPECTED_ORDER = [PLAIN, MULTILINE, ITEM_WITH_SAFE_FIX, SETITEM_WITH_UNSAFE_FIX]


def test_formats_tuple() -> None:
    assert FORMATS == ("full", "concise", "json", "json-lines", "github", "sarif", "junit")


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        render("xml", make_results(), RULES)


# --- json / json-lines ---------------------------------------------------------


def test_json_has_ruffs_shape() -> None:
    objects = json.loads(render("json", make_results(), RULES))
    assert isinstance(objects, list)
    assert len(objects) == 4
    for obj in objects:
        assert set(obj) == RUFF_KEYS | {"evidence", "evidence_steps", "confidence", "context", "occurrences", "hot"}
        assert list(obj) == sorted(obj)  # ruff's key order
        assert obj["cell"] is None
        assert obj["severity"] == "error"
        assert os.path.isabs(obj["filename"])
        assert obj["url"].endswith(f"/docs/rules/{obj['code']}.md")
    assert [(o["code"], o["location"]["row"]) for o in objects] == [
        (d.code, d.start.row) for d in EXPECTED_ORDER
    ]

    plain, multiline, item, setitem = objects
    assert plain["fix"] is None
    assert plain["evidence"] is None
    assert plain["location"] == {"column": 9, "row": 3}
    assert plain["end_location"] == {"column": 21, "row": 3}
    assert plain["noqa_row"] == 3
    assert plain["name"] == "item-sync"
    assert plain["filename"] == os.path.abspath(DATA)
    assert multiline["end_location"] == {"column": 6, "row": 8}

    assert item["evidence"] == ITEM_WITH_SAFE_FIX.evidence
    assert item["confidence"] == "high"
    assert item["fix"] == {
        "applicability": "safe",
        "edits": [
            {
                "content": "detach()",
                "end_location": {"column": 27, "row": 12},
                "location": {"column": 21, "row": 12},
            }
        ],
        "message": "Keep the value on the device",
    }
    assert setitem["fix"]["applicability"] == "unsafe"
    assert setitem["confidence"] == "strict"


def test_json_leaves_file_errors_out_and_is_an_empty_array_when_clean() -> None:
    text = render("json", make_results(), RULES)
    assert "failed to parse" not in text and "rule crashed" not in text
    assert json.loads(render("json", [FileResult("ok.py")], RULES)) == []


def test_json_lines_match_json() -> None:
    results = make_results()
    lines = render("json-lines", results, RULES).splitlines()
    assert len(lines) == 4
    assert [json.loads(line) for line in lines] == json.loads(render("json", results, RULES))
    assert all(line.startswith('{"cell":null,"code":') for line in lines)  # compact, ruff's order
    assert render("json-lines", [FileResult("ok.py")], RULES) == ""


# --- github --------------------------------------------------------------------

GITHUB_LINE = re.compile(
    r"^::error title=sync-lint \((?P<code>SLT\d+)\),file=(?P<file>[^,]+),line=(?P<line>\d+),"
    r"col=(?P<col>\d+),endLine=(?P<end_line>\d+),endColumn=(?P<end_col>\d+)::(?P<message>.+)$"
)


def test_github_lines() -> None:
    lines = render("github", make_results(), RULES).splitlines()
    annotations = [GITHUB_LINE.match(line) for line in lines[:4]]
    assert all(annotations), lines
    first = annotations[0]
    assert first is not None
    assert first["file"] == os.path.abspath(DATA)
    assert (first["line"], first["col"], first["end_line"], first["end_col"]) == ("3", "9", "3", "21")
    assert first["message"] == f"{DATA}:3:9: SLT001 `batch.item()` copies a CUDA tensor to the host"
    item = annotations[2]
    assert item is not None
    assert item["message"].endswith("%0A  evidence: `loss` is on the GPU: assigned from `model(x)` at line 10")
    # File errors are annotated too, without a rule code in the title.
    assert lines[4:] == [
        f"::error title=sync-lint error,file={os.path.abspath(BROKEN)}::"
        f"{BROKEN}: failed to parse: invalid syntax at 2:7",
        f"::error title=sync-lint error (SLT002),file={os.path.abspath(DATA)}::{DATA}: rule crashed: KeyError('x')",
    ]


def test_github_escaping() -> None:
    d = Diagnostic(
        code="SLT001",
        name="item-sync",
        message="50% of 1,000: bad\r\nnext",
        path="dir,odd:name/f.py",
        start=P(1, 1),
        end=P(1, 2),
        evidence="a%b\nc",
    )
    (line,) = render("github", [FileResult(d.path, [d])], RULES).splitlines()
    abs_file = os.path.abspath(d.path).replace(",", "%2C").replace(":", "%3A")
    assert line == (
        f"::error title=sync-lint (SLT001),file={abs_file},line=1,col=1,endLine=1,endColumn=2::"
        "dir,odd:name/f.py:1:1: SLT001 50%25 of 1,000: bad%0D%0Anext%0A  evidence: a%25b%0Ac"
    )


# --- sarif -----------------------------------------------------------------------

_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _refuse_retrieval(uri: str) -> Any:
    raise NoSuchResource(ref=uri)


def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    # The official schema is draft-04 (it says so in `$schema`); pick the
    # validator from it rather than hard-coding a draft.
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator
    cls.check_schema(schema)
    # No network: every $ref must resolve inside the schema itself.
    registry: Registry = Registry(retrieve=_refuse_retrieval).with_resource(  # type: ignore[call-arg]
        schema["id"], DRAFT4.create_resource(schema)
    )
    # jsonschema does not check `uri` formats without optional extras, so
    # check the two URI formats the schema uses with RFC 3986's character set.
    checker = jsonschema.FormatChecker()
    checker.checks("uri")(lambda v: not isinstance(v, str) or bool(_SCHEME.match(v) and _URI_CHARS.match(v)))
    checker.checks("uri-reference")(lambda v: not isinstance(v, str) or bool(_URI_CHARS.match(v)))
    return cls(schema, registry=registry, format_checker=checker)


def test_sarif_is_valid_and_complete() -> None:
    doc = json.loads(render("sarif", make_results(), RULES))
    validator = sarif_validator()
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, errors[0]

    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "sync-lint"
    assert isinstance(driver["version"], str)
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["SLT001", "SLT002"]
    item_rule = driver["rules"][0]
    assert item_rule["name"] == "item-sync"
    assert item_rule["shortDescription"]["text"] == ItemSync.summary
    assert item_rule["fullDescription"]["text"].startswith("Fake rule docs for the reporter tests.")
    assert item_rule["helpUri"] == ItemSync.url()
    assert item_rule["defaultConfiguration"] == {"level": "error"}

    results = run["results"]
    assert len(results) == 4
    for result, diagnostic in zip(results, EXPECTED_ORDER):
        assert result["ruleId"] == diagnostic.code
        assert rule_ids[result["ruleIndex"]] == diagnostic.code
        assert result["level"] == "error"
        location = result["locations"][0]["physicalLocation"]
        # Relative to the repository root (this checkout), resolved through %SRCROOT%.
        assert location["artifactLocation"] == {"uri": diagnostic.path, "uriBaseId": "%SRCROOT%"}
        assert location["region"] == {
            "startLine": diagnostic.start.row,
            "startColumn": diagnostic.start.column,
            "endLine": diagnostic.end.row,
            "endColumn": diagnostic.end.column,
        }

    plain, multiline, item, setitem = results
    assert "fixes" not in plain and "fixes" not in multiline
    assert item["message"]["text"] == (
        "`loss.item()` copies a CUDA tensor to the host\n"
        "Evidence: `loss` is on the GPU: assigned from `model(x)` at line 10"
    )
    (fix,) = item["fixes"]
    assert fix["description"]["text"] == "Keep the value on the device"
    (change,) = fix["artifactChanges"]
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 12, "startColumn": 21, "endLine": 12, "endColumn": 27},
            "insertedContent": {"text": "detach()"},
        }
    ]
    assert setitem["fixes"][0]["properties"] == {"applicability": "unsafe"}

    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [PARSE_ERROR.message, RULE_ERROR.message]
    assert "associatedRule" not in notes[0]
    assert notes[1]["associatedRule"] == {"id": "SLT002", "index": 1}
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root.startswith("file:///") and root.endswith("/")


def test_sarif_fix_without_edits_is_not_emitted() -> None:
    d = Diagnostic(
        code="SLT001",
        name="item-sync",
        message="m",
        path="a b.py",  # a space must be percent-encoded to be a valid URI
        start=P(1, 1),
        end=P(1, 1),  # empty region: still valid SARIF
        fix=Fix("unsafe", "nothing to edit", ()),
    )
    doc = json.loads(render("sarif", [FileResult(d.path, [d])], RULES))
    assert not list(sarif_validator().iter_errors(doc))
    (result,) = doc["runs"][0]["results"]
    assert "fixes" not in result
    assert "%20" in result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_sarif_describes_codes_missing_from_the_rule_map() -> None:
    d = Diagnostic("SLT999", "mystery", "m", "x.py", P(1, 1), P(1, 2))
    doc = json.loads(render("sarif", [FileResult("x.py", [d])], RULES))
    assert not list(sarif_validator().iter_errors(doc))
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    (result,) = doc["runs"][0]["results"]
    assert rules[result["ruleIndex"]]["id"] == "SLT999"
    assert rules[result["ruleIndex"]]["name"] == "mystery"


def test_sarif_validator_is_live() -> None:
    """A validator that accepts everything would make the tests above worthless."""
    validator = sarif_validator()
    good = json.loads(render("sarif", make_results(), RULES))
    assert validator.is_valid(good)

    wrong_version = json.loads(json.dumps(good))
    wrong_version["version"] = "2.0.0"
    assert not validator.is_valid(wrong_version)

    empty_changes = json.loads(json.dumps(good))
    empty_changes["runs"][0]["results"][2]["fixes"][0]["artifactChanges"] = []
    assert not validator.is_valid(empty_changes)

    bad_region = json.loads(json.dumps(good))
    bad_region["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert not validator.is_valid(bad_region)

    unknown_key = json.loads(json.dumps(good))
    unknown_key["runs"][0]["results"][0]["column"] = 3
    assert not validator.is_valid(unknown_key)

    unencoded_uri = json.loads(json.dumps(good))
    unencoded_uri["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ] = "file:///a b.py"
    assert not validator.is_valid(unencoded_uri)


# --- junit -------------------------------------------------------------------------


def test_junit_counts() -> None:
    text = render("junit", make_results(), RULES)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert root.attrib["name"] == "sync-lint"
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == ("6", "4", "2")

    suites = {suite.attrib["name"]: suite for suite in root.findall("testsuite")}
    assert sorted(suites) == sorted([TRAIN, DATA, BROKEN])
    train = suites[TRAIN]
    assert (train.attrib["tests"], train.attrib["failures"], train.attrib["errors"]) == ("2", "2", "0")
    cases = train.findall("testcase")
    assert [(c.attrib["name"], c.attrib["line"], c.attrib["column"]) for c in cases] == [
        ("org.sync-lint.SLT001", "12", "16"),
        ("org.sync-lint.SLT002", "20", "5"),
    ]
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == ITEM_WITH_SAFE_FIX.message
    assert failure.text is not None
    assert failure.text.startswith(f"{TRAIN}:12:16: {ITEM_WITH_SAFE_FIX.message}")
    assert len(root.findall(".//failure")) == 4
    assert len(root.findall(".//error")) == 2


def test_junit_when_clean_and_with_hostile_text() -> None:
    root = ET.fromstring(render("junit", [FileResult("ok.py")], RULES))
    assert (root.attrib["tests"], root.attrib["failures"]) == ("1", "0")
    (case,) = root.iter("testcase")
    assert case.find("failure") is None

    d = Diagnostic("SLT001", "item-sync", 'a <b> & "c"\x01\nd', "q&a.py", P(1, 1), P(1, 2))
    root = ET.fromstring(render("junit", [FileResult(d.path, [d])], RULES))
    failure = root.find(".//failure")
    assert failure is not None
    assert failure.attrib["message"] == 'a <b> & "c"\ufffd\nd'


# --- concise ---------------------------------------------------------------------------


def test_concise_exact() -> None:
    assert render("concise", make_results(), RULES) == (
        "pkg/data.py:3:9: SLT001 `batch.item()` copies a CUDA tensor to the host\n"
        "pkg/data.py:7:5: SLT002 scalar write spans lines\n"
        "pkg/train.py:12:16: SLT001 [*] `loss.item()` copies a CUDA tensor to the host\n"
        "pkg/train.py:20:5: SLT002 `t[0] = 0` writes a Python scalar into a CUDA tensor\n"
        "error: pkg/broken.py: failed to parse: invalid syntax at 2:7\n"
        "error: pkg/data.py: rule crashed: KeyError('x') [rule SLT002]\n"
        "\n"
        "Found 4 errors.\n"
        "[*] 1 fixable with --fix (1 hidden fix can be enabled with the --unsafe-fixes option).\n"
        "2 files could not be fully checked (see errors above).\n"
    )


def test_concise_with_unsafe_fixes_enabled() -> None:
    text = render("concise", make_results(), RULES, unsafe_fixes=True)
    assert "pkg/train.py:20:5: SLT002 [*] `t[0] = 0`" in text
    assert text.splitlines()[-2] == "[*] 2 fixable with --fix."


def test_clean_run_summary() -> None:
    assert render("concise", [FileResult("ok.py", parsed=True)], RULES) == "All checks passed!\n"
    assert render("full", [FileResult("ok.py", parsed=True)], RULES) == "All checks passed!\n"


def test_summary_when_only_unsafe_fixes() -> None:
    text = render("concise", [FileResult(TRAIN, [SETITEM_WITH_UNSAFE_FIX])], RULES)
    assert text.endswith(
        "Found 1 error.\nNo fixes available (1 hidden fix can be enabled with the --unsafe-fixes option).\n"
    )


# --- full ------------------------------------------------------------------------------


def _block(text: str, header: str) -> list[str]:
    """The lines of the diagnostic whose header starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = lines.index("", start)
    return lines[start:end]


def test_full_code_frame() -> None:
    text = render("full", make_results(), RULES)
    assert "\x1b[" not in text

    block = _block(text, "pkg/train.py:12:16:")
    assert block == [
        "pkg/train.py:12:16: SLT001 [*] `loss.item()` copies a CUDA tensor to the host",
        "  --> pkg/train.py:12:16",
        "   |",
        "12 |     loss_val = loss.item()",
        "   |                ^^^^^^^^^^^",
        "   |",
        "   = evidence: `loss` is on the GPU: assigned from `model(x)` at line 10",
        "   = fix (safe): Keep the value on the device",
        "12 +     loss_val = loss.detach()",
    ]
    source, carets = block[3], block[4]
    # The carets sit exactly under `loss.item()` (columns 16..27, end exclusive).
    assert source[carets.index("^") : carets.rindex("^") + 1] == "loss.item()"

    unsafe = _block(text, "pkg/train.py:20:5:")
    assert unsafe[0] == "pkg/train.py:20:5: SLT002 `t[0] = 0` writes a Python scalar into a CUDA tensor"
    assert "   = fix (unsafe): Use `t[0].fill_(0)`" in unsafe
    assert unsafe[-1] == "20 +     t[0].fill_(0)"
    assert not any("evidence" in line for line in unsafe)

    # A span over several rows is underlined to the end of its first row.
    multiline = _block(text, "pkg/data.py:7:5:")
    assert multiline[3:5] == ["7 |     x[i] = (", "  |     ^^^^^^^^"]

    tail = text.splitlines()[-6:]
    assert tail == [
        "error: pkg/broken.py: failed to parse: invalid syntax at 2:7",
        "error: pkg/data.py: rule crashed: KeyError('x') [rule SLT002]",
        "",
        "Found 4 errors.",
        "[*] 1 fixable with --fix (1 hidden fix can be enabled with the --unsafe-fixes option).",
        "2 files could not be fully checked (see errors above).",
    ]


def test_full_without_preview_and_with_color() -> None:
    plain = render("full", make_results(), RULES, show_fixes_preview=False)
    assert "= fix (safe): Keep the value on the device" in plain
    assert "12 +" not in plain

    colored = render("full", make_results(), RULES, color=True)
    assert "\x1b[" in colored
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", colored)
    assert stripped == render("full", make_results(), RULES)


def test_full_without_color_does_not_import_rich(tmp_path: Path) -> None:
    # A pre-commit hook's output is a pipe: the human format must not pay for rich's import there.
    import subprocess
    import sys

    source = tmp_path / "m.py"
    source.write_text("import torch\n\ndef f(n):\n    return torch.zeros(n, device='cuda').item()\n")
    # An exit handler: a check leaves the process without returning to this code (`exit_without_teardown`).
    code = ("import atexit, sys, runpy; sys.argv = ['sync-lint', 'check', '--isolated', sys.argv[1]]\n"
            "atexit.register(lambda: sys.stderr.write("
            "'RICH=' + str(any(m.split('.')[0] == 'rich' for m in sys.modules))))\n"
            "runpy.run_module('sync_lint', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(source)], capture_output=True, text=True, check=False)
    assert "SL101" in done.stdout and "-->" in done.stdout  # the full format, with its frame
    assert "RICH=False" in done.stderr


def test_full_prints_markup_and_odd_lines_verbatim() -> None:
    wide = Diagnostic(
        code="SLT001",
        name="item-sync",
        message="[bold]not bold[/bold] \\[x]",
        path="[red]w.py",
        start=P(1, 7),
        end=P(1, 13),
        source_line="\t中文 = t.item()  # [dim]x[/dim]" + " " * 200,
    )
    text = render("full", [FileResult(wide.path, [wide])], RULES, width=40)
    lines = text.splitlines()
    assert lines[0] == "[red]w.py:1:7: SLT001 [bold]not bold[/bold] \\[x]"
    source = next(line for line in lines if line.startswith("1 |"))
    carets = next(line for line in lines if "^" in line)
    assert "[dim]x[/dim]" in source  # neither interpreted nor wrapped at width=40
    # The tab and the two double-width characters are accounted for: the
    # carets start at the terminal cell where `t.item` starts.
    assert "\t" not in source
    assert carets.index("^") == cell_len(source[: source.index("t.item")])
    assert carets.count("^") == len("t.item")


# --- statistics ---------------------------------------------------------------------------


def test_statistics_rows() -> None:
    results = make_results() + [FileResult("pkg/more.py", [replace(PLAIN, path="pkg/more.py")])]
    # SLT002's fix is unsafe: `--fix` alone would not apply it (issue 12, defect 12).
    assert render_statistics(results, RULES) == (
        "3\tSLT001\t[*] item-sync\n"
        "2\tSLT002\t[ ] scalar-setitem-sync\n"
    )
    assert render_statistics(results, RULES, unsafe_fixes=True) == (
        "3\tSLT001\t[*] item-sync\n"
        "2\tSLT002\t[*] scalar-setitem-sync\n"
    )
    assert render_statistics([FileResult("ok.py")], RULES) == ""
    only_plain = [FileResult(DATA, [PLAIN])]
    assert render_statistics(only_plain, RULES) == "1\tSLT001\titem-sync\n"


def test_statistics_only_in_human_formats() -> None:
    results = make_results()
    stats = render_statistics(results, RULES)
    concise = render("concise", results, RULES, statistics=True)
    assert stats.rstrip("\n") in concise
    assert concise.index("SLT001\t[*] item-sync") < concise.index("Found 4 errors.")
    full = render("full", results, RULES, statistics=True)
    assert re.search(r"^2\s+SLT001\s+\[\*\] item-sync$", full, re.MULTILINE)
    for fmt in ("json", "json-lines", "github", "sarif", "junit"):
        assert render(fmt, results, RULES, statistics=True) == render(fmt, results, RULES), fmt
