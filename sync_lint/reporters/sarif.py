"""`sarif`: a SARIF 2.1.0 log with one run, for GitHub code scanning and IDEs.

Choices worth knowing:
- `tool.driver.rules` lists every rule in the `rules` mapping handed to the
  reporter (the enabled rules, sorted by code), plus a minimal descriptor for
  any code that appears in the results but not in the mapping. Listing all
  enabled rules, not just those that fired, lets viewers show what was checked.
- Artifacts are named by URIs relative to the repository root (the nearest folder
  above the working directory with `.git`, else the working directory) with
  `uriBaseId` `%SRCROOT%`, which `run.originalUriBaseIds` resolves to the root's
  absolute `file://` URI; a file outside the root keeps an absolute URI. Relative
  URIs are what code scanning matches across runs and machines.
- Each result carries `partialFingerprints.primaryLocationLineHash`, computed as
  GitHub's `codeql-action` computes it (a rolling hash over the 100 non-blank
  characters from the start of the line, with an occurrence count), so an upload
  through the REST API, which computes nothing, does not duplicate alerts, and an
  upload through the action finds the same value and warns about nothing.
- A finding's `level` is `error` in per-step code and `warning` in tests,
  benchmarks, examples and scripts (`sync_lint.ranking`).
- Columns are Unicode code points (`run.columnKind`), the unit the engine
  counts in; SARIF's default would be UTF-16 code units. End columns are
  exclusive in both sync-lint and SARIF, so they carry over unchanged.
- `fixes` is written only for a fix with at least one edit: GitHub rejects a
  fix whose `artifactChanges` is empty.
- File errors become `invocations[0].toolExecutionNotifications`, and make
  `executionSuccessful` false.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sync_lint.diagnostics import (
    DOCS_URL,
    Diagnostic,
    EvidenceStep,
    FileError,
    FileResult,
    Fix,
    Position,
)
from sync_lint.reporters._common import (
    INFORMATION_URI,
    TOOL_NAME,
    RuleMap,
    absolute,
    sorted_diagnostics,
    sorted_errors,
    tool_version,
)

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = "error"
SRCROOT = "%SRCROOT%"


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (the working directory) holding `.git`, else `start`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


class _Uris:
    def __init__(self, root: Path | None) -> None:
        self.root = (root or repository_root()).resolve()

    def location(self, path: str) -> dict[str, str]:
        """An artifactLocation: relative to %SRCROOT% when the file lies below the root."""
        full = Path(absolute(path))
        try:
            relative = full.relative_to(self.root)
        except ValueError:
            try:
                relative = full.resolve().relative_to(self.root)
            except ValueError:
                # as_uri() percent-encodes spaces and other characters a URI may not hold.
                return {"uri": full.as_uri()}
        return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}


_BLOCK = 100
_MASK = (1 << 64) - 1
_FIRST_MOD = pow(37, _BLOCK, 1 << 64)


def line_hashes(text: str) -> dict[int, str]:
    """`primaryLocationLineHash` of every line of `text`, as GitHub's codeql-action computes it.

    A rolling hash (base 37, 64-bit wrap-around) over a window of the next 100 characters,
    counted in UTF-16 code units, skipping spaces and tabs; line endings become `\n`, the end
    of the file is 65535 and then zeros; each value gets `:n`, its n-th occurrence in the file.
    """
    window = [0] * _BLOCK
    line_numbers = [-1] * _BLOCK
    state = {"hash": 0, "index": 0, "line": 0, "start": True, "cr": False}
    counts: dict[str, int] = {}
    out: dict[int, str] = {}

    def output() -> None:
        index = state["index"]
        value = format(state["hash"] & _MASK, "x")
        counts[value] = counts.get(value, 0) + 1
        out.setdefault(line_numbers[index], f"{value}:{counts[value]}")
        line_numbers[index] = -1

    def update(current: int) -> None:
        index = state["index"]
        begin = window[index]
        window[index] = current
        state["hash"] = (37 * state["hash"] + current - _FIRST_MOD * begin) & _MASK
        state["index"] = (index + 1) % _BLOCK

    def process(current: int) -> None:
        if current in (32, 9) or (state["cr"] and current == 10):
            state["cr"] = False
            return
        if current == 13:
            current, state["cr"] = 10, True
        else:
            state["cr"] = False
        if line_numbers[state["index"]] != -1:
            output()
        if state["start"]:
            state["start"] = False
            state["line"] += 1
            line_numbers[state["index"]] = state["line"]
        if current == 10:
            state["start"] = True
        update(current)

    data = text.encode("utf-16-le", errors="surrogatepass")
    for i in range(0, len(data), 2):
        process(data[i] | (data[i + 1] << 8))
    process(65535)
    for _ in range(_BLOCK):
        if line_numbers[state["index"]] != -1:
            output()
        update(0)
    return out


def _file_hashes(path: str, cache: dict[str, dict[int, str]]) -> dict[int, str]:
    if path not in cache:
        try:
            raw = Path(path).read_bytes()
        except OSError:
            cache[path] = {}
        else:
            cache[path] = line_hashes(raw.decode("utf-8", errors="replace"))
    return cache[path]


def _region(start: Position, end: Position) -> dict[str, int]:
    return {
        "startLine": start.row,
        "startColumn": start.column,
        "endLine": end.row,
        "endColumn": end.column,
    }


def _rule_descriptor(code: str, rules: RuleMap, fallback: Diagnostic | None) -> dict[str, Any]:
    rule = rules.get(code)
    if rule is None:
        # A code the caller did not describe (say, an engine-level finding):
        # still give viewers an id, a name and a link.
        name = fallback.name if fallback is not None else code
        return {
            "id": code,
            "name": name,
            "shortDescription": {"text": name},
            "helpUri": (fallback.url if fallback is not None and fallback.url else DOCS_URL.format(code=code)),
            "defaultConfiguration": {"level": LEVEL},
        }
    docs = rule.documentation()
    properties: dict[str, Any] = {
        "fixAvailability": rule.fix_availability,
        "tags": ["performance", "cuda-synchronization"],
    }
    syncs_in = getattr(rule, "syncs_in", None)
    if syncs_in:
        properties["syncsIn"] = syncs_in
    fixed_in = getattr(rule, "fixed_in_torch", None)
    if fixed_in:
        properties["fixedInTorch"] = fixed_in
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": docs},
        # `markdown` lets GitHub render the docs; `text` is what the spec requires.
        "help": {"text": docs, "markdown": docs},
        "helpUri": rule.url(),
        "defaultConfiguration": {"level": LEVEL},
        "properties": properties,
    }


def _fixes(d: Diagnostic, fix: Fix | None, uris: _Uris) -> list[dict[str, Any]] | None:
    if fix is None or not fix.edits:
        return None
    return [
        {
            "description": {"text": fix.message},
            "artifactChanges": [
                {
                    "artifactLocation": uris.location(d.path),
                    "replacements": [
                        {"deletedRegion": _region(e.location, e.end_location), "insertedContent": {"text": e.content}}
                        for e in fix.edits
                    ],
                }
            ],
            "properties": {"applicability": fix.applicability},
        }
    ]


def _result(d: Diagnostic, rule_index: int, uris: _Uris, hashes: dict[str, dict[int, str]]) -> dict[str, Any]:
    from sync_lint.ranking import severity

    text = d.message if not d.evidence else f"{d.message}\nEvidence: {d.evidence}"
    result: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": severity(d.context),
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": uris.location(d.path),
                    "region": _region(d.start, d.end),
                }
            }
        ],
        "properties": {"confidence": d.confidence, "context": d.context},
    }
    line_hash = _file_hashes(d.path, hashes).get(d.start.row) if d.cell is None else None
    if line_hash is not None:
        result["partialFingerprints"] = {"primaryLocationLineHash": line_hash}
    if d.evidence:
        result["properties"]["evidence"] = d.evidence
    if d.hot is not None:
        hot = d.hot.as_dict()
        for step in hot["chain"]:
            filename = step.pop("filename")
            # Like every other location here: relative to %SRCROOT% when inside the repository.
            step.update(uris.location(filename) if filename else {"uri": None})
        result["properties"]["hot"] = hot
    related = [_related(step, index, uris) for index, step in enumerate(d.evidence_steps)]
    if related:
        result["relatedLocations"] = related
    fixes = _fixes(d, d.fix, uris)
    if fixes:
        result["fixes"] = fixes
    return result


def _related(step: EvidenceStep, index: int, uris: _Uris) -> dict[str, Any]:
    """An evidence step as a SARIF related location (a code-scanning UI links each one)."""
    location: dict[str, Any] = {"artifactLocation": uris.location(step.path)}
    if step.row is not None:
        location["region"] = {"startLine": step.row}
    return {"id": index, "message": {"text": step.message}, "physicalLocation": location}


def _notification(error: FileError, index: dict[str, int], uris: _Uris) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": error.message},
        "locations": [{"physicalLocation": {"artifactLocation": uris.location(error.path)}}],
    }
    if error.rule:
        reference: dict[str, Any] = {"id": error.rule}
        if error.rule in index:
            reference["index"] = index[error.rule]
        notification["associatedRule"] = reference
    return notification


def sarif_log(results: list[FileResult], rules: RuleMap, root: Path | None = None) -> dict[str, Any]:
    """The log; `root`: what relative URIs are relative to (default: the repository of the working directory)."""
    uris = _Uris(root)
    hashes: dict[str, dict[int, str]] = {}
    diagnostics = sorted_diagnostics(results)
    errors = sorted_errors(results)

    first_seen: dict[str, Diagnostic] = {}
    for d in diagnostics:
        first_seen.setdefault(d.code, d)
    codes = sorted(set(rules) | set(first_seen))
    descriptors = [_rule_descriptor(code, rules, first_seen.get(code)) for code in codes]
    index = {code: i for i, code in enumerate(codes)}

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": tool_version(),
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        "invocations": [
            {
                "executionSuccessful": not errors,
                "toolExecutionNotifications": [_notification(e, index, uris) for e in errors],
            }
        ],
        "originalUriBaseIds": {SRCROOT: {"uri": uris.root.as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index[d.code], uris, hashes) for d in diagnostics],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(results: list[FileResult], rules: RuleMap, root: Path | None = None) -> str:
    return json.dumps(sarif_log(results, rules, root), indent=2, ensure_ascii=False) + "\n"
