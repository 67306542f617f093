"""`sarif`: a SARIF 2.1.0 log with one run, for GitHub code scanning and IDEs.

Choices worth knowing:
- `tool.driver.rules` lists every rule in the `rules` mapping handed to the
  reporter (the enabled rules, sorted by code), plus a minimal descriptor for
  any code that appears in the results but not in the mapping. Listing all
  enabled rules, not just those that fired, lets viewers show what was checked.
- Artifacts are named by absolute `file://` URIs, as ruff does; they need no
  `uriBaseId`, and GitHub maps them back onto the checkout.
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


def artifact_uri(path: str) -> str:
    # as_uri() percent-encodes spaces and other characters a URI may not hold.
    return Path(absolute(path)).as_uri()


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


def _fixes(d: Diagnostic, fix: Fix | None) -> list[dict[str, Any]] | None:
    if fix is None or not fix.edits:
        return None
    return [
        {
            "description": {"text": fix.message},
            "artifactChanges": [
                {
                    "artifactLocation": {"uri": artifact_uri(d.path)},
                    "replacements": [
                        {"deletedRegion": _region(e.location, e.end_location), "insertedContent": {"text": e.content}}
                        for e in fix.edits
                    ],
                }
            ],
            "properties": {"applicability": fix.applicability},
        }
    ]


def _result(d: Diagnostic, rule_index: int) -> dict[str, Any]:
    text = d.message if not d.evidence else f"{d.message}\nEvidence: {d.evidence}"
    result: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": LEVEL,
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(d.path)},
                    "region": _region(d.start, d.end),
                }
            }
        ],
        "properties": {"confidence": d.confidence},
    }
    if d.evidence:
        result["properties"]["evidence"] = d.evidence
    related = [_related(step, index) for index, step in enumerate(d.evidence_steps)]
    if related:
        result["relatedLocations"] = related
    fixes = _fixes(d, d.fix)
    if fixes:
        result["fixes"] = fixes
    return result


def _related(step: EvidenceStep, index: int) -> dict[str, Any]:
    """An evidence step as a SARIF related location (a code-scanning UI links each one)."""
    location: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(step.path)}}
    if step.row is not None:
        location["region"] = {"startLine": step.row}
    return {"id": index, "message": {"text": step.message}, "physicalLocation": location}


def _notification(error: FileError, index: dict[str, int]) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": error.message},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri(error.path)}}}],
    }
    if error.rule:
        reference: dict[str, Any] = {"id": error.rule}
        if error.rule in index:
            reference["index"] = index[error.rule]
        notification["associatedRule"] = reference
    return notification


def sarif_log(results: list[FileResult], rules: RuleMap) -> dict[str, Any]:
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
                "toolExecutionNotifications": [_notification(e, index) for e in errors],
            }
        ],
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index[d.code]) for d in diagnostics],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(results: list[FileResult], rules: RuleMap) -> str:
    return json.dumps(sarif_log(results, rules), indent=2, ensure_ascii=False) + "\n"
