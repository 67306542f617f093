"""Reading a libcst tree without rebuilding it.

libcst's `visit` reconstructs and re-validates every node, even for a visitor that
changes nothing; these helpers read a node's syntactic fields directly, skipping the
ones that hold only whitespace, punctuation and operators, which no rule looks at.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import libcst as cst

SKIPPED_FIELDS = frozenset({
    "whitespace_before", "whitespace_after", "whitespace_before_colon", "whitespace_after_colon",
    "whitespace_before_test", "whitespace_after_test", "whitespace_after_for", "whitespace_before_in",
    "whitespace_after_in", "whitespace_after_if", "whitespace_after_else", "whitespace_before_else",
    "whitespace_after_def", "whitespace_after_class", "whitespace_before_params", "whitespace_after_name",
    "whitespace_before_args", "whitespace_after_func", "whitespace_after_star", "whitespace_after_arg",
    "whitespace_before_indicator", "whitespace_after_indicator", "whitespace_after_return",
    "whitespace_after_assert", "whitespace_after_del", "whitespace_after_import", "whitespace_after_from",
    "whitespace_after_with", "whitespace_after_as", "whitespace_before_as", "whitespace_after_await",
    "whitespace_after_lambda", "whitespace_after_raise", "whitespace_before_from", "whitespace_after_global",
    "whitespace_after_nonlocal", "whitespace_after_walrus", "whitespace_before_walrus", "whitespace_after_yield",
    "whitespace_after_except", "whitespace_after_match", "whitespace_after_case", "whitespace_after_keyword",
    "whitespace_after_dot", "whitespace_before_dot", "whitespace_after_equal", "whitespace_before_equal",
    "whitespace_before_expression", "whitespace_before_value", "whitespace_after_value",
    "whitespace_before_name", "whitespace_after_cases", "whitespace_before_if", "whitespace_before_patterns",
    "lpar", "rpar", "comma", "leading_lines", "lines_after_decorators", "header", "footer", "semicolon",
    "colon", "equal", "dot", "lbracket", "rbracket", "lbrace", "rbrace", "operator", "newline",
    "trailing_whitespace", "first_line", "empty_lines", "asynchronous", "star_tok", "walrus",
})
# Evaluation order where it differs from field order: a comprehension's `for` binds
# before its element is evaluated.
FIELD_ORDER: dict[type, tuple[str, ...]] = {
    cst.ListComp: ("for_in", "elt"),
    cst.SetComp: ("for_in", "elt"),
    cst.GeneratorExp: ("for_in", "elt"),
    cst.DictComp: ("for_in", "key", "value"),
}
_FIELDS_CACHE: dict[type, tuple[str, ...]] = {}


def walk_fields(node_type: type) -> tuple[str, ...]:
    """The fields of `node_type` worth descending into, in evaluation order."""
    fields = _FIELDS_CACHE.get(node_type)
    if fields is None:
        fields = FIELD_ORDER.get(node_type) or tuple(
            f.name for f in dataclasses.fields(node_type) if f.name not in SKIPPED_FIELDS
        )
        _FIELDS_CACHE[node_type] = fields
    return fields


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every syntactic node below it (no whitespace or punctuation)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for name in walk_fields(type(current)):
            value = getattr(current, name)
            if isinstance(value, cst.CSTNode):
                stack.append(value)
            elif isinstance(value, (tuple, list)):
                stack.extend(child for child in value if isinstance(child, cst.CSTNode))
