"""Reading libcst nodes: names, literals, call arguments, and the fields worth walking.

Every layer above uses these (the analyses, the engine, the rule kit); they read a
node and never build one. libcst's own `visit` reconstructs and re-validates every
node, even for a visitor that changes nothing, so `walk_fields` and `descendants`
read a node's syntactic fields directly, skipping those that hold only whitespace,
punctuation and operators.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import libcst as cst

# --- names and literals ------------------------------------------------------------------


# libcst's node classes derive from an ABC, whose `isinstance` is slow; the helpers
# read on every node compare concrete types (libcst never subclasses a concrete node).
_ATTRIBUTE, _NAME = cst.Attribute, cst.Name


def dotted_name(expr: cst.CSTNode) -> str | None:
    """`a.b.c` for an Attribute chain of Names; None for anything else."""
    if type(expr) is _NAME:
        return expr.value  # type: ignore[attr-defined]
    parts: list[str] = []
    while type(expr) is _ATTRIBUTE:
        parts.append(expr.attr.value)  # type: ignore[attr-defined]
        expr = expr.value  # type: ignore[attr-defined]
    if type(expr) is not _NAME:
        return None
    parts.append(expr.value)  # type: ignore[attr-defined]
    return ".".join(reversed(parts))


def bool_literal(expr: cst.CSTNode | None) -> bool | None:
    """True or False for the literals `True` / `False`; None for anything else."""
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


def is_true_literal(expr: cst.CSTNode | None) -> bool:
    return bool_literal(expr) is True


def is_false_literal(expr: cst.CSTNode | None) -> bool:
    return bool_literal(expr) is False


def is_none_literal(expr: cst.CSTNode | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def literal_string(expr: cst.CSTNode) -> str | None:
    """The text of a string literal (an f-string's literal parts only); None otherwise."""
    if isinstance(expr, cst.SimpleString):
        return expr.evaluated_value if isinstance(expr.evaluated_value, str) else None
    if isinstance(expr, cst.FormattedString):
        return "".join(p.value for p in expr.parts if isinstance(p, cst.FormattedStringText))
    return None


def literal_number(expr: cst.CSTNode) -> float | None:
    """The value of an int/float/bool literal, signs included; None for anything else."""
    sign = 1
    while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        sign = -sign if isinstance(expr.operator, cst.Minus) else sign
        expr = expr.expression
    # Not `ast.literal_eval`: each call of it leaves a reference cycle (its nested helpers) behind.
    if isinstance(expr, cst.Integer):
        return sign * float(int(expr.value.replace("_", ""), 0))
    if isinstance(expr, cst.Float):
        return sign * float(expr.value.replace("_", ""))
    flag = bool_literal(expr)
    return None if flag is None else float(flag)


# --- calls ------------------------------------------------------------------------------------


def call_name(node: cst.Call) -> str | None:
    """`foo` for `x.foo(...)` or `foo(...)`: the last name of the callee."""
    func = node.func
    if type(func) is _ATTRIBUTE:
        return func.attr.value  # type: ignore[attr-defined]
    if type(func) is _NAME:
        return func.value  # type: ignore[attr-defined]
    return None


def method_receiver(node: cst.Call) -> cst.BaseExpression | None:
    """`x` for `x.foo(...)`; None for a plain function call."""
    func = node.func
    return func.value if type(func) is _ATTRIBUTE else None  # type: ignore[attr-defined]


def get_arg(node: cst.Call, name: str, position: int | None = None) -> cst.Arg | None:
    """The argument passed as keyword `name` or at `position` (0-based)."""
    positional = 0
    for arg in node.args:
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg
            continue
        if arg.star:
            return None
        if position is not None and positional == position:
            return arg
        positional += 1
    return None


def positional_args(node: cst.Call) -> list[cst.Arg]:
    return [a for a in node.args if a.keyword is None and not a.star]


def keyword_value(node: cst.Call, name: str) -> cst.BaseExpression | None:
    """The value passed as keyword `name`, if any."""
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


# --- walking ----------------------------------------------------------------------------------

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
        push_children(current, stack)


def push_children(node: cst.CSTNode, stack: list[cst.CSTNode]) -> None:
    """Push `node`'s syntactic children onto `stack` (its fields, not whitespace or punctuation).
    Cheaper than `node.children`, which rebuilds the node to collect them."""
    for name in walk_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            stack.append(value)
        elif isinstance(value, (tuple, list)):
            stack.extend(child for child in value if isinstance(child, cst.CSTNode))
