"""What a fixed file must satisfy, checked from the outside (not by the fixer itself).

Shared by the fuzz test (`test_fix_fuzz.py`), the long fuzz run
(`benchmarks/fuzz_fixes.py`) and the corpus run (`benchmarks/fix_corpus.py`):

- it still compiles, if it compiled before;
- every changed line lies on the rows of a fix edit the linter reported, or is an
  inserted `import` line (the fixer's own import insertion);
- fixing it again changes nothing;
- no function reads a global name that is not bound at run time (an import under
  `if TYPE_CHECKING:` binds nothing) where it did not before, and a module that
  kept torch out of its import-time work (imported inside functions or only
  under TYPE_CHECKING) gets no module-level `import torch`; both read with the
  standard library's `symtable`, independently of the fixer's own scopes;
- the file's shape is kept: BOM, coding cookie, newline kinds, encoding.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import io
import re
import symtable
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

BOM = b"\xef\xbb\xbf"
COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
IMPORT_LINE = re.compile(r"^[ \t]*import [\w.]+(?: as \w+)?[ \t]*(?:\r\n|\r|\n)?$")
IMPORT_PREFIX = re.compile(r"import [\w.]+(?: as \w+)?; ")
TARGET_TORCH = "2.11"


def compiles(source: str | bytes) -> bool:
    try:
        compile(source, "<checked>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _lines(text: str) -> list[str]:
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def non_local_lines(before: str, after: str, rows: Iterable[tuple[int, int]]) -> list[int]:
    """Rows of `before` (1-based) that changed outside every fix edit's rows and are no import insertion."""
    old, new = _lines(before), _lines(after)
    covered = {row for first, last in rows for row in range(first, last + 1)}
    bad: list[int] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert":
            imports_only = all(IMPORT_LINE.match(line) or not line.strip() for line in new[j1:j2])
            if not imports_only and not {i1, i1 + 1} & covered:  # an edit may grow its statement by lines
                bad.append(i1 + 1)
            continue
        kept = [line for line in new[j1:j2] if not IMPORT_LINE.match(line)]
        if [IMPORT_PREFIX.sub("", line, count=1) for line in kept] == old[i1:i2]:
            continue  # import lines among the old ones, or `import torch; ` before a one-line body
        bad.extend(row for row in range(i1 + 1, i2 + 1) if row not in covered)
    return bad


def newline_kinds(data: bytes) -> set[str]:
    crlf = data.count(b"\r\n")
    kinds = set()
    if crlf:
        kinds.add("CRLF")
    if data.count(b"\n") > crlf:
        kinds.add("LF")
    if data.count(b"\r") > crlf:
        kinds.add("CR")
    return kinds


def encoding_of(data: bytes) -> str:
    try:
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError:
        return "utf-8"


def shape_problems(before: bytes, after: bytes) -> list[str]:
    """How the fixed bytes lost the file's shape (BOM, cookie, newlines, encoding); empty if kept."""
    problems = []
    if before.startswith(BOM) != after.startswith(BOM):
        problems.append("BOM changed")
    cookies = [[m.group(1) if (m := COOKIE.match(line)) else None for line in data.splitlines()[:2]]
               for data in (before, after)]
    if cookies[0] != cookies[1]:
        problems.append("coding cookie changed")
    added = newline_kinds(after) - newline_kinds(before)
    if added:
        problems.append(f"newline kinds added: {sorted(added)}")
    encoding = encoding_of(before)
    try:
        after.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        problems.append(f"does not decode as {encoding}")
    return problems


def _runtime_module_names(tree: ast.Module) -> tuple[set[str], bool]:
    """(names module-level code binds at run time, whether it binds any under TYPE_CHECKING)."""
    names: set[str] = set()
    deferred = False

    def visit(body: Sequence[ast.stmt]) -> None:
        nonlocal deferred
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
            elif isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                deferred = True
                visit(stmt.orelse if "not" not in ast.unparse(stmt.test) else stmt.body)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names.update("*" if a.name == "*" else (a.asname or a.name.split(".")[0]) for a in stmt.names)
            else:
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                        names.add(node.id)
                for field_name in ("body", "orelse", "finalbody", "handlers"):
                    block = getattr(stmt, field_name, None)
                    if block:
                        visit([s for s in block if isinstance(s, ast.stmt)] or
                              [s for h in block for s in getattr(h, "body", [])])
    visit(tree.body)
    return names, deferred


def unbound_globals(text: str) -> set[tuple[str, str]]:
    """(scope, name) for every global name a function or class reads that nothing binds at run time."""
    tree = ast.parse(text)
    bound, _ = _runtime_module_names(tree)
    if "*" in bound:
        return set()
    known = bound | set(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__builtins__"}
    out = set()
    tables = list(symtable.symtable(text, "<checked>", "exec").get_children())
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_referenced() and symbol.is_global() and symbol.get_name() not in known:
                out.add((table.get_name(), symbol.get_name()))
    return out


def imports_torch_at_import_time(text: str) -> tuple[bool, bool]:
    """(module-level code imports torch at run time, the module imports torch somewhere else)."""
    tree = ast.parse(text)
    top = any(isinstance(s, ast.Import) and any(a.name.split(".")[0] == "torch" for a in s.names)
              for s in _top_level(tree.body))
    anywhere = any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "torch" for a in n.names)
                   for n in ast.walk(tree))
    return top, anywhere


def _top_level(body: Sequence[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at import time (inside top-level if/try, outside TYPE_CHECKING)."""
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            out += _top_level(stmt.orelse if "not" not in ast.unparse(stmt.test) else stmt.body)
        elif isinstance(stmt, (ast.If, ast.Try)):
            out += _top_level(stmt.body) + _top_level(stmt.orelse)
            out += [s for h in getattr(stmt, "handlers", []) for s in _top_level(h.body)]
        else:
            out.append(stmt)
    return out


@dataclass
class Verdict:
    """One text fixed and checked: the properties it broke, the fixer's refusals, the fixes applied."""

    failures: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    applied: int = 0
    fixed: str = ""


@lru_cache(maxsize=1)
def _rules_and_settings():  # type: ignore[no-untyped-def]
    from sync_lint.config import Settings
    from sync_lint.registry import builtin_rules

    rules = sorted((r for r in builtin_rules() if r.active_for_torch(TARGET_TORCH)), key=lambda r: r.code)
    return rules, Settings(target_torch_version=TARGET_TORCH)


def check_text(text: str, path: str = "fuzzed.py") -> Verdict:
    """Fix `text` with every built-in rule (unsafe fixes too) and check the properties above."""
    from sync_lint.engine import lint_source
    from sync_lint.fix import fix_source, is_applicable

    rules, settings = _rules_and_settings()
    verdict = Verdict(fixed=text)
    try:
        first = lint_source(text, path, rules, settings)
        outcome = fix_source(text, path, rules, settings, unsafe=True, first=first)
    except Exception as exc:  # noqa: BLE001 - a crash is what is being looked for
        verdict.failures.append(f"crash: {type(exc).__name__}: {exc}")
        return verdict
    verdict.fixed = fixed = outcome.new_source
    verdict.applied = sum(outcome.applied.values())
    verdict.refusals = [e.message for e in outcome.errors]
    if not outcome.changed:
        return verdict
    if compiles(text) and not compiles(fixed):
        verdict.failures.append("the fixed text does not compile")
    rows = [(e.location.row, e.end_location.row) for d in first.diagnostics if is_applicable(d, True)
            for e in d.fix.edits if e.location and e.end_location]  # type: ignore[union-attr]
    bad = non_local_lines(text, fixed, rows)
    if bad:
        verdict.failures.append(f"changed lines outside every fix edit: {bad[:5]}")
    if compiles(text) and compiles(fixed):
        introduced = unbound_globals(fixed) - unbound_globals(text)
        if introduced:
            verdict.failures.append(f"reads names not bound at run time: {sorted(introduced)}")
        top_before, lazily = imports_torch_at_import_time(text)
        if lazily and not top_before and imports_torch_at_import_time(fixed)[0]:
            verdict.failures.append("a module that imported torch lazily now imports it at import time")
    try:
        again = fix_source(fixed, path, rules, settings, unsafe=True)
    except Exception as exc:  # noqa: BLE001
        verdict.failures.append(f"crash on the second fix: {type(exc).__name__}: {exc}")
        return verdict
    if again.new_source != fixed:
        verdict.failures.append("a second fix changed the text again")
    return verdict

