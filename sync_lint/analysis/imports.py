"""Import aliases: which local names stand for which modules and functions.

`import torch as th` makes `th.nonzero` mean `torch.nonzero`;
`from torch import nonzero as nz` makes `nz` mean `torch.nonzero`. The table is
filled as the engine's single walk meets import statements, so a rule asking
about a call sees every import that precedes it.

We deliberately avoid libcst's QualifiedNameProvider: full scope analysis costs
about 6x the parse on a real corpus (see the peer study), and this linter only
needs module aliases.
"""

from __future__ import annotations

import libcst as cst

# Names that, when a file never binds them, are almost always these modules.
# Code snippets (stdin, docs, notebooks exported to .py) often omit imports.
_IMPLICIT = {"torch": "torch", "np": "numpy", "numpy": "numpy"}


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` for an Attribute chain of Names; None for anything else."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def _module_path(node: cst.BaseExpression | None) -> str | None:
    if node is None:
        return None
    return dotted_name(node)


class ImportTable:
    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}
        # Names the file binds to something other than an import (assignments,
        # parameters, defs); they shadow the implicit defaults above.
        self._shadowed: set[str] = set()

    # --- filled by the engine ---------------------------------------------------
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

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative:
            return
        module = _module_path(node.module)
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

    def shadow(self, name: str) -> None:
        if name not in self._aliases:
            self._shadowed.add(name)

    # --- queried by rules and the device analysis ---------------------------------
    def resolve(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name an expression refers to, e.g. `torch.nn.functional.one_hot`."""
        name = dotted_name(expr)
        if name is None:
            return None
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
