"""Import aliases: which local names stand for which modules and functions.

`import torch as th` makes `th.nonzero` mean `torch.nonzero`;
`from torch import nonzero as nz` makes `nz` mean `torch.nonzero`. The table is
filled as the engine's single walk meets import statements, so a rule asking
about a call sees every import that precedes it.

We deliberately avoid libcst's QualifiedNameProvider: full scope analysis costs
about 6x the parse on a real corpus, and this linter only needs module aliases.
"""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from sync_lint.analysis.provider import Provider
from sync_lint.syntax import dotted_name

# Names that, when a file never binds them, are almost always these modules.
# Code snippets (stdin, docs, notebooks exported to .py) often omit imports.
_IMPLICIT = {"torch": "torch", "np": "numpy", "numpy": "numpy"}


_SEQUENCE_TARGETS = (cst.Tuple, cst.List)


def bound_names(target: cst.CSTNode) -> Iterator[str]:
    """The plain names an assignment target binds (`a` and `b` in `a, *b = ...`)."""
    target_type = type(target)  # concrete types: an ABC `isinstance` costs more than the rest
    if target_type is cst.Name:
        yield target.value  # type: ignore[attr-defined]
    elif target_type in _SEQUENCE_TARGETS:
        for element in target.elements:  # type: ignore[attr-defined]
            yield from bound_names(element.value)
    elif target_type is cst.StarredElement:
        yield from bound_names(target.value)  # type: ignore[attr-defined]


class ImportTable(Provider):
    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}
        # Names the file binds to something other than an import (assignments, loop
        # and `with` targets); they shadow the implicit defaults above.
        self._shadowed: set[str] = set()
        # `resolve` per expression node, while the table stays as it is. The node is kept
        # with its answer so that its id cannot be reused by another node meanwhile.
        self._resolved: dict[int, tuple[cst.BaseExpression, str | None]] = {}

    # --- filled by the walk -----------------------------------------------------------
    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._aliases[alias.asname.name.value] = full
            else:
                # `import torch.nn.functional` binds `torch`.
                head = full.split(".")[0]
                self._aliases[head] = head
        self._resolved.clear()

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative:
            return
        module = dotted_name(node.module) if node.module is not None else None
        if module is None or isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self._aliases[local] = f"{module}.{name}"
        self._resolved.clear()

    def shadow(self, target: cst.CSTNode) -> None:
        for name in bound_names(target):
            if name not in self._aliases and name not in self._shadowed:
                self._shadowed.add(name)
                self._resolved.clear()

    def _shadow_assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.shadow(target.target)

    def _shadow_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self.shadow(node.target)

    def _shadow_named_expr(self, node: cst.NamedExpr) -> None:
        self.shadow(node.target)

    def _shadow_with_item(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.shadow(node.asname.name)

    def _shadow_loop_target(self, node: cst.For | cst.CompFor) -> None:
        self.shadow(node.target)

    def _shadow_handler(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        if node.name is not None:
            self.shadow(node.name.name)

    # --- queried by rules and the device analysis ---------------------------------------
    def resolve(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name an expression refers to, e.g. `torch.nn.functional.one_hot`."""
        known = self._resolved.get(id(expr))
        if known is not None and known[0] is expr:
            return known[1]
        name = dotted_name(expr)
        qualified = self.qualify(name) if name is not None else None
        self._resolved[id(expr)] = (expr, qualified)
        return qualified

    def qualify(self, name: str) -> str | None:
        """The qualified name a dotted name written in this file refers to (None: not an import)."""
        head, _, rest = name.partition(".")
        target = self._aliases.get(head)
        if target is None:
            if head in self._shadowed:
                return None
            target = _IMPLICIT.get(head)
            if target is None:
                return None
        return f"{target}.{rest}" if rest else target

    def local_name(self, module: str) -> str:
        """The name this file uses for `module` (`th` after `import torch as th`), for fixes to write."""
        for local, target in self._aliases.items():
            if target == module:
                return local
        return module

    ENTER = {
        cst.ExceptHandler: _shadow_handler,
        cst.ExceptStarHandler: _shadow_handler,
    }
    LEAVE = {
        cst.Import: add_import,
        cst.ImportFrom: add_import_from,
        cst.Assign: _shadow_assign,
        cst.AnnAssign: _shadow_ann_assign,
        cst.NamedExpr: _shadow_named_expr,
        cst.WithItem: _shadow_with_item,
    }
    AFTER_FIELD = {
        (cst.For, "iter"): _shadow_loop_target,
        (cst.CompFor, "iter"): _shadow_loop_target,
    }
