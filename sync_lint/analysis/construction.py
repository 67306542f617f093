"""Which methods of a class run only while an instance is being built.

A module's constructor may run inside `with torch.device(d):` (vLLM's model loader builds
every model in one, and PyTorch documents it as the way to build a module on a device),
so a factory with no `device=` there allocates on a device only the builder knows. The
same holds for the helpers the constructor calls: `self._compute_cos_sin_cache()` from
`__init__`. A method is taken for such a helper when the class only calls it
(`self.<method>(...)`), every such call is inside `__init__` or another such helper, and
nothing reads it otherwise (`self.forward = self.forward_cpu` hands it on to run later).
"""

from __future__ import annotations

import libcst as cst

_CONSTRUCTOR = "__init__"


def construction_methods(cls: cst.ClassDef) -> frozenset[str]:
    """`__init__` and the methods of `cls` that only it (directly or through each other) calls."""
    methods = {statement.name.value: statement for statement in _body(cls)
               if isinstance(statement, cst.FunctionDef)}
    if _CONSTRUCTOR not in methods:
        return frozenset()
    callers: dict[str, set[str]] = {}
    # A method read without being called (`self.forward = self.forward_cpu`, a callback handed on) or
    # named outside the methods (a class attribute `forward = _impl`) runs whenever its holder calls it.
    escaped = {used for statement in _body(cls) if not isinstance(statement, cst.FunctionDef)
               for used in _names(statement)}
    for name, method in methods.items():
        called, read = _self_uses(method)
        escaped |= read
        for used in called:
            callers.setdefault(used, set()).add(name)
    found = {_CONSTRUCTOR}
    grew = True
    while grew:
        grew = False
        for name, by in callers.items():
            if name in methods and name not in found and name not in escaped and by <= found:
                found.add(name)
                grew = True
    return frozenset(found)


def _body(cls: cst.ClassDef) -> list[cst.CSTNode]:
    return list(cls.body.body) if isinstance(cls.body, cst.IndentedBlock) else []


def _self_uses(method: cst.FunctionDef) -> tuple[set[str], set[str]]:
    """The attributes of the method's first parameter it calls (`self.m(...)`), and those it reads
    otherwise, with every string in it (`getattr(self, "m")` reads `m` too)."""
    params = method.params.params
    receiver = params[0].name.value if params else None
    called: set[str] = set()
    read: set[str] = set()
    stack: list[cst.CSTNode] = [method.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call) and _on(node.func, receiver):
            called.add(node.func.attr.value)  # type: ignore[attr-defined]
            stack.extend(node.args)
            stack.append(node.func.value)  # type: ignore[attr-defined]
            continue
        if _on(node, receiver):
            read.add(node.attr.value)  # type: ignore[attr-defined]
        elif isinstance(node, cst.SimpleString):
            read.add(node.value.strip("'\""))
        stack.extend(node.children)
    return called, read


def _on(node: cst.CSTNode, receiver: str | None) -> bool:
    """`<receiver>.<attr>`."""
    return isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == receiver


def _names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
        stack.extend(current.children)
    return found
