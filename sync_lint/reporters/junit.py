"""`junit`: JUnit XML for CI dashboards, laid out as ruff lays it out.

One `<testsuite>` per file with findings, one failing `<testcase>` per
diagnostic. Like ruff, files without findings are not listed; when nothing at
all was found, a single passing test case says so, so that the report is never
an empty (and, to some CI parsers, suspicious) document. File errors become
`<error>` test cases: JUnit's own way to say "this could not be checked".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import groupby

from sync_lint.diagnostics import Diagnostic, FileError, FileResult
from sync_lint.reporters._common import TOOL_NAME, sorted_diagnostics, sorted_errors

# XML 1.0 cannot carry most C0 control characters, not even as character
# references; ElementTree would write them and produce an unparsable file.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _suite(parent: ET.Element, name: str, tests: int, failures: int, errors: int) -> ET.Element:
    return ET.SubElement(
        parent,
        "testsuite",
        name=_xml_text(name),
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        package=f"org.{TOOL_NAME}",
    )


def _failure_case(suite: ET.Element, d: Diagnostic) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        name=f"org.{TOOL_NAME}.{d.code}",
        classname=_xml_text(d.path),
        line=str(d.start.row),
        column=str(d.start.column),
    )
    failure = ET.SubElement(case, "failure", message=_xml_text(d.message))
    body = f"{d.display_location}: {d.message}"
    if d.evidence:
        body += f"\nevidence: {d.evidence}"
    failure.text = _xml_text(body)


def _error_case(suite: ET.Element, error: FileError) -> None:
    name = f"org.{TOOL_NAME}.{error.rule}" if error.rule else f"org.{TOOL_NAME}"
    case = ET.SubElement(suite, "testcase", name=name, classname=_xml_text(error.path))
    element = ET.SubElement(case, "error", message=_xml_text(error.message))
    element.text = _xml_text(f"{error.path}: {error.message}")


def render_junit(results: list[FileResult]) -> str:
    diagnostics = sorted_diagnostics(results)
    errors = sorted_errors(results)
    root = ET.Element(
        "testsuites",
        name=TOOL_NAME,
        tests=str(len(diagnostics) + len(errors) or 1),
        failures=str(len(diagnostics)),
        errors=str(len(errors)),
    )

    if not diagnostics and not errors:
        suite = _suite(root, TOOL_NAME, tests=1, failures=0, errors=0)
        ET.SubElement(suite, "testcase", name="No errors found", classname=TOOL_NAME)

    by_path: dict[str, tuple[list[Diagnostic], list[FileError]]] = {}
    for path, group in groupby(diagnostics, key=lambda d: d.path):
        by_path.setdefault(path, ([], []))[0].extend(group)
    for error in errors:
        by_path.setdefault(error.path, ([], []))[1].append(error)

    for path in sorted(by_path):
        file_diagnostics, file_errors = by_path[path]
        suite = _suite(
            root,
            path,
            tests=len(file_diagnostics) + len(file_errors),
            failures=len(file_diagnostics),
            errors=len(file_errors),
        )
        for d in file_diagnostics:
            _failure_case(suite, d)
        for error in file_errors:
            _error_case(suite, error)

    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
