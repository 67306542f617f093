"""The fixer's self-check: before a pass's edits are kept, prove they stayed where they belong.

Like black's AST-equivalence check, on every pass that changed the text:

1. the fixed text compiles (Python's own parser and compiler, not only libcst's);
2. the module's syntax tree is unchanged outside the edited statements: each
   tree is dumped with the statements an edit touches masked (a compound
   statement whose header was edited keeps its body, which is compared), and
   with the import statements the fixer inserted left out; the two dumps must
   be equal, statement for statement (an edit that writes a second statement
   fails). A fix may edit several statements (SL501 derives a value on the
   device and drops the copy in the statement that moved it), never others;
3. every name an edit introduced (read in the new text, not in the text the edit
   replaced) is bound at run time where it is read: a parameter, an import or
   assignment of that function that comes before it, a module-level binding
   not under `if TYPE_CHECKING:`, or a builtin.

A failure makes the fixer leave the file as it was and name the rule(s) whose
fix failed (`passes.py`). Only passes with edits pay for the check.
"""

from __future__ import annotations

import ast
import bisect
from dataclasses import dataclass
from typing import Sequence

from sync_lint.fix.edits import Placed
from sync_lint.fix.scopes import ScopeTree

_BLOCKS = ("body", "orelse", "finalbody", "handlers")
_EDITED = "<edited>"

Span = tuple[int, int]


@dataclass(frozen=True)
class Verdict:
    """The result of checking one pass: the new text's scopes, or why the edits are refused."""

    tree: ScopeTree | None
    problem: str | None = None


def check_pass(before: ScopeTree, new_text: str, edits: Sequence[Placed], spans: Sequence[Span]) -> Verdict:
    """Check the edits that turned `before`'s text into `new_text` (`spans`: where each edit's text now lies)."""
    try:
        after = ScopeTree.parse(new_text)
    except (SyntaxError, ValueError) as exc:
        return Verdict(None, f"the fixed text does not compile: {syntax_error_reason(exc)}")
    except RecursionError:
        return Verdict(None, "the fixed text is too deeply nested to compile")
    problem = _compile_problem(before, after)
    if problem is None:
        problem = _tree_problem(before, after, edits, spans)
    if problem is None:
        problem = _name_problem(before, after, edits, spans)
    return Verdict(after, problem)


def syntax_error_reason(exc: BaseException) -> str:
    """What a SyntaxError (or ValueError, for null bytes) says, in one line."""
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} at line {exc.lineno}"
    return str(exc) or type(exc).__name__


def _compile_problem(before: ScopeTree, after: ScopeTree) -> str | None:
    """Errors only the compiler finds (`return` outside a function, ...), unless the original has them too."""
    try:
        compile(after.tree, "<fixed>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        try:
            compile(before.tree, "<original>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return None
        return f"the fixed text does not compile: {syntax_error_reason(exc)}"
    except RecursionError:
        return "the fixed text is too deeply nested to compile"
    return None


# --- 2. the tree outside the edited statements ------------------------------------------------
def _tree_problem(before: ScopeTree, after: ScopeTree, edits: Sequence[Placed], spans: Sequence[Span]) -> str | None:
    old_spans = [(e.start, e.end) for e in edits if not e.is_import]
    new_spans = [span for e, span in zip(edits, spans) if not e.is_import]
    inserted = [span for e, span in zip(edits, spans) if e.is_import]
    old = _block(before.tree.body, before, old_spans, [])
    new = _block(after.tree.body, after, new_spans, inserted)
    if old == new:
        return None
    return f"the module's syntax tree changed outside the edited statements ({_first_difference(old, new)})"


def _touches(span: Span, start: int, end: int) -> bool:
    if span[0] == span[1]:
        return start <= span[0] < end
    return span[0] < end and start < span[1]


def _inside(span: Span, start: int, end: int) -> bool:
    return start <= span[0] and span[1] <= end


def _block(nodes: Sequence[ast.AST], tree: ScopeTree, spans: Sequence[Span], inserted: Sequence[Span]) -> list:
    """A block as comparable data: unedited statements dumped, edited ones masked."""
    out: list = []
    for node in nodes:
        if not hasattr(node, "lineno"):  # `case` clauses carry no position
            item = _whole(node, tree, spans, inserted)
        else:
            start, end = tree.offsets.start(node), tree.offsets.end(node)
            if isinstance(node, ast.Import) and any(span[0] <= start and end <= span[1] for span in inserted):
                continue  # an import the fixer inserted
            touching = [span for span in spans if _touches(span, start, end)]
            item = ast.dump(node) if not touching else _edited(node, tree, touching, inserted)
        out.append(item)
    return out


def _edited(node: ast.AST, tree: ScopeTree, spans: Sequence[Span], inserted: Sequence[Span]) -> object:
    blocks = [name for name in _BLOCKS if getattr(node, name, None)]
    if isinstance(node, ast.Match):
        blocks.append("cases")
    if not blocks:
        return _EDITED
    children = [child for name in blocks for child in getattr(node, name)]
    header_edited = any(
        not any(_inside(span, tree.offsets.start(c), tree.offsets.end(c)) for c in children if hasattr(c, "lineno"))
        for span in spans
    )
    return (type(node).__name__, _EDITED if header_edited else _header(node),
            [_block(getattr(node, name), tree, spans, inserted) for name in blocks])


def _whole(node: ast.AST, tree: ScopeTree, spans: Sequence[Span], inserted: Sequence[Span]) -> object:
    """A `case` clause: its pattern and guard as they are, its body as a block."""
    return (type(node).__name__, _header(node), _block(getattr(node, "body", []), tree, spans, inserted))


def _header(node: ast.AST) -> list[str]:
    out = []
    for name, value in ast.iter_fields(node):
        if name in (*_BLOCKS, "cases"):
            continue
        if isinstance(value, list):
            out.append(f"{name}=[{', '.join(ast.dump(v) if isinstance(v, ast.AST) else repr(v) for v in value)}]")
        else:
            out.append(f"{name}={ast.dump(value) if isinstance(value, ast.AST) else repr(value)}")
    return out


def _first_difference(old: list, new: list) -> str:
    for index, (a, b) in enumerate(zip(old, new)):
        if a != b:
            return f"statement {index + 1} of the module differs"
    return f"the module has {len(new)} statements instead of {len(old)}"


# --- 3. names the edits introduced -------------------------------------------------------------
def _name_problem(before: ScopeTree, after: ScopeTree, edits: Sequence[Placed], spans: Sequence[Span]) -> str | None:
    old_uses = sorted(before.uses, key=lambda u: u.offset)
    new_uses = sorted(after.uses, key=lambda u: u.offset)
    old_offsets = [u.offset for u in old_uses]
    new_offsets = [u.offset for u in new_uses]
    for edit, (start, end) in zip(edits, spans):
        if edit.is_import:
            continue
        replaced = {u.name for u in old_uses[bisect.bisect_left(old_offsets, edit.start):
                                             bisect.bisect_left(old_offsets, edit.end)]}
        for use in new_uses[bisect.bisect_left(new_offsets, start):bisect.bisect_left(new_offsets, end)]:
            if use.name in replaced:
                continue
            why = after.unbound(use)
            if why is not None:
                return f"the edit at line {after.offsets.row(use.offset)} reads a name that is not bound at run time: {why}"
    return None
