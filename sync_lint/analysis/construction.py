"""Which methods of a class run only while an instance is being built.

A module's constructor may run inside `with torch.device(d):` (vLLM's model loader builds
every model in one, and PyTorch documents it as the way to build a module on a device),
so a factory with no `device=` there allocates on a device only the builder knows. The
same holds for the helpers the constructor calls: `self._compute_cos_sin_cache()` from
`__init__`. A method is taken for such a helper when every `self.<method>` in the class
is inside `__init__` or inside another such helper.
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
    for name, method in methods.items():
        for used in _self_attributes(method):
            if used in methods:
                callers.setdefault(used, set()).add(name)
    # A reference from code outside the methods (a class attribute `forward = _impl`) is a use too.
    outside = {used for statement in _body(cls) if not isinstance(statement, cst.FunctionDef)
               for used in _names(statement) if used in methods}
    found = {_CONSTRUCTOR}
    grew = True
    while grew:
        grew = False
        for name, by in callers.items():
            if name not in found and name not in outside and by <= found:
                found.add(name)
                grew = True
    return frozenset(found)


def _body(cls: cst.ClassDef) -> list[cst.CSTNode]:
    return list(cls.body.body) if isinstance(cls.body, cst.IndentedBlock) else []


def _self_attributes(method: cst.FunctionDef) -> set[str]:
    """Every `<first parameter>.<attr>` the method reads, and every string in it: `getattr(self, "m")`
    uses `m` too."""
    params = method.params.params
    receiver = params[0].name.value if params else None
    found: set[str] = set()
    stack: list[cst.CSTNode] = [method.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == receiver:
            found.add(node.attr.value)
        elif isinstance(node, cst.SimpleString) and receiver is not None:
            found.add(node.value.strip("'\""))  # `getattr(self, "_build")`
        stack.extend(node.children)
    return found


def _names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
        stack.extend(current.children)
    return found
