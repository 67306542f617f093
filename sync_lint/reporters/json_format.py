"""`json` and `json-lines`: ruff's JSON diagnostic objects, plus two extra keys.

The object layout matches `ruff check --output-format json`, so tools that read
ruff's output read ours: `cell`, `code`, `end_location`, `filename`, `fix`,
`location`, `message`, `name`, `noqa_row`, `severity`, `url`, and sync-lint's
own `confidence` and `evidence`. Keys are sorted alphabetically, as ruff's are.
File errors are not part of this output: the CLI reports them on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from sync_lint.diagnostics import Diagnostic, FileResult, Fix, Position
from sync_lint.reporters._common import (
    RuleMap,
    absolute,
    rule_name,
    rule_url,
    sorted_diagnostics,
)


def _location(position: Position) -> dict[str, int]:
    return {"column": position.column, "row": position.row}


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "edits": [
            {"content": e.content, "end_location": _location(e.end_location), "location": _location(e.location)}
            for e in fix.edits
        ],
        "message": fix.message,
    }


def diagnostic_object(d: Diagnostic, rules: RuleMap) -> dict[str, Any]:
    return {
        "cell": None,
        "code": d.code,
        "confidence": d.confidence,
        "end_location": _location(d.end),
        "evidence": d.evidence,
        "evidence_steps": [
            {"filename": absolute(step.path), "message": step.message, "row": step.row} for step in d.evidence_steps
        ],
        "filename": absolute(d.path),
        "fix": _fix(d.fix),
        "location": _location(d.start),
        "message": d.message,
        "name": rule_name(d, rules),
        # ruff always names a row for `# noqa`; the diagnostic's own row is where
        # a suppression comment goes when the engine did not pick another one.
        "noqa_row": d.noqa_row if d.noqa_row is not None else d.start.row,
        "severity": "error",
        "url": rule_url(d.code, rules, d.url),
    }


def render_json(results: list[FileResult], rules: RuleMap) -> str:
    objects = [diagnostic_object(d, rules) for d in sorted_diagnostics(results)]
    return json.dumps(objects, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_json_lines(results: list[FileResult], rules: RuleMap) -> str:
    lines = [
        json.dumps(diagnostic_object(d, rules), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        for d in sorted_diagnostics(results)
    ]
    return "".join(line + "\n" for line in lines)
