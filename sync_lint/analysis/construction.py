"""Which methods of a class run only while an instance is being built.

A module's constructor may run inside `with torch.device(d):` (vLLM's model loader builds
every model in one, and PyTorch documents it as the way to build a module on a device),
so a factory with no `device=` there allocates on a device only the builder knows. The
same holds for the helpers the constructor calls: `self._compute_cos_sin_cache()` from
`__init__`. A method is taken for such a helper when the class only calls it
(`self.<method>(...)`), every such call is inside `__init__` or another such helper, and
nothing reads it otherwise (`self.forward = self.forward_cpu` hands it on to run later).

The per-file analysis asks this of a libcst class, the project summaries of an `ast` one
(summaries never import libcst): one front end each, one rule.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from sync_lint.ast_walk import push_children as push_ast_children

if TYPE_CHECKING:
    import libcst as cst

_CONSTRUCTOR = "__init__"


def construction_methods(cls: "cst.ClassDef") -> frozenset[str]:
    """`__init__` and the methods of the libcst class `cls` that only it (directly or through each
    other) calls."""
    import libcst as cst

    body = list(cls.body.body) if isinstance(cls.body, cst.IndentedBlock) else []
    methods = {s.name.value: s for s in body if isinstance(s, cst.FunctionDef)}
    if _CONSTRUCTOR not in methods:
        return frozenset()
    # A method named outside the methods (a class attribute `forward = _impl`) runs whenever its holder calls it.
    escaped = {n.value for s in body if not isinstance(s, cst.FunctionDef) for n in _cst_nodes(s)
               if isinstance(n, cst.Name)}
    uses = {name: _cst_self_uses(method) for name, method in methods.items()}
    return _closure(uses, escaped)


def construction_methods_ast(cls: ast.ClassDef) -> frozenset[str]:
    """The same, of an `ast` class."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    methods = {s.name: s for s in cls.body if isinstance(s, functions)}
    if not cls.bases or _CONSTRUCTOR not in methods:  # no module: summaries ask this of every class
        return frozenset()
    escaped = {n.id for s in cls.body if not isinstance(s, functions) for n in ast.walk(s) if isinstance(n, ast.Name)}
    uses = {name: _ast_self_uses(method) for name, method in methods.items()}
    return _closure(uses, escaped)


def _closure(uses: dict[str, tuple[set[str], set[str]]], escaped: set[str]) -> frozenset[str]:
    """From each method's (calls through `self`, other reads of `self` attributes and strings): the
    constructor and the methods only it and such methods call, none of them read otherwise."""
    if _CONSTRUCTOR not in uses:
        return frozenset()
    escaped = escaped | {name for _called, read in uses.values() for name in read}
    callers: dict[str, set[str]] = {}
    for name, (called, _read) in uses.items():
        for used in called:
            callers.setdefault(used, set()).add(name)
    found = {_CONSTRUCTOR}
    grew = True
    while grew:
        grew = False
        for name, by in callers.items():
            if name in uses and name not in found and name not in escaped and by <= found:
                found.add(name)
                grew = True
    return frozenset(found)


def _cst_self_uses(method: "cst.FunctionDef") -> tuple[set[str], set[str]]:
    """The attributes of the method's first parameter it calls (`self.m(...)`), and those it reads
    otherwise, with every string in it (`getattr(self, "m")` reads `m` too)."""
    import libcst as cst

    from sync_lint.syntax import push_children

    params = method.params.params
    receiver = params[0].name.value if params else None

    def on_receiver(node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == receiver

    called: set[str] = set()
    read: set[str] = set()
    stack: list[cst.CSTNode] = [method.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call) and on_receiver(node.func):
            called.add(node.func.attr.value)  # type: ignore[attr-defined]
            stack.extend(node.args)
            continue
        if on_receiver(node):
            read.add(node.attr.value)  # type: ignore[attr-defined]
        elif isinstance(node, cst.SimpleString):
            read.add(node.value.strip("'\""))
        push_children(node, stack)
    return called, read


def _ast_self_uses(method: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], set[str]]:
    receiver = method.args.args[0].arg if method.args.args else None

    def on_receiver(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == receiver

    called: set[str] = set()
    read: set[str] = set()
    stack: list[ast.AST] = list(method.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call) and on_receiver(node.func):
            called.add(node.func.attr)  # type: ignore[attr-defined]
            stack.extend(node.args)
            stack.extend(node.keywords)
            continue
        if on_receiver(node):
            read.add(node.attr)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            read.add(node.value)
        push_ast_children(node, stack)
    return called, read


def _cst_nodes(node: "cst.CSTNode") -> list["cst.CSTNode"]:
    from sync_lint.syntax import descendants

    return list(descendants(node))
