"""Walking a stdlib `ast` tree with each node type's fields looked up once.

`ast.walk` and `ast.iter_child_nodes` go through `ast.iter_fields` for every node, a
generator per node; the project summaries walk every node of every module of a
project more than once, so the per-type field lists are kept here instead. Fields
that never hold a node worth visiting (expression contexts, operators) are skipped.
"""

from __future__ import annotations

import ast
from typing import Iterator

# Fields whose nodes carry no names: expression contexts and operators.
_LEAF_FIELDS = frozenset({"ctx", "op", "ops"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def push_children(node: ast.AST, stack: list[ast.AST]) -> None:
    """Push the child nodes of `node` onto `stack` (as `ast.iter_child_nodes` lists them, less
    contexts and operators)."""
    kind = type(node)
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = () if kind is ast.Constant else \
            tuple(f for f in kind._fields if f not in _LEAF_FIELDS)
    for name in fields:
        value = getattr(node, name, None)
        if type(value) is list:
            stack.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            stack.append(value)


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under `node`, `node` first and each node before its children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        push_children(current, stack)
