"""Which names a module mentions, and where: what tells code that runs from code that never does.

A module-level function that nothing in the project names (no call, no reference
as a value, no string that could look it up) runs only if code outside the
project calls it. In a serving engine or a model library that is a reference
implementation nobody imports, a test helper without a test, or an export patch
nobody installs; read one by one, the syncs found in such functions were mostly
code that never runs. So the index asks, for a finding's function, whether any
code that itself runs mentions its name (`ProjectIndex.unreferenced`).

A mention is a name read (`f`, not `f = ...`) that the module binds (by a
definition, an assignment at module level or an import anywhere), an attribute of
such a name (`mod.f`, `torch.ops.vllm.f`), a string that is an identifier
(`__all__ = ["f"]`, `getattr(mod, "f")`), and the original name of an import
renamed with `as`. A function's locals and `self.x` are left out: they cannot name
another module's function, and they are most of a module's names (the name table
would hold three times as many rows). Names only: resolving which `f` a mention
means would cost a resolution per mention, and a wrong "nobody calls it" hides a
real sync, while a wrong "somebody does" only keeps what is reported now.

Where a mention is decides whether it counts:
- at module level, in a class body or in a method: that code runs (methods are
  reached through objects, which the name tables do not follow), so these are
  the module's *root* mentions;
- in a module-level function's body: it counts only if that function is itself
  referenced (`function_mentions`), so a chain of dead helpers is dead;
- a function's decorators, defaults and annotations run when the module is
  imported: root mentions.

A function that something outside the project's code calls by convention is a
root itself, and so are the names its body mentions: a decorated function (a
decorator registers it: `@pytest.fixture`, `@register_patch`, `@app.route`), a
test (`test_*`), a dunder (`__getattr__` of a module), `main` (console-script
entry points are declared in packaging metadata, not in code).

The mentions other than as a callee are kept apart too (`value_mentions`): a
function handed on as a value (`callbacks.append(f)`, `partial(f, ...)`,
`register_forward_hook(self.hook)`) may be called with arguments no call site
shows, so what its call sites pass proves nothing about every call
(`Inference.always_unset`). `self.m` counts, as `"self.m"`, when `m` is a
method of a class of the module, and only for the methods of that class's
hierarchy (a pipeline base class handing on `self.forward` says nothing of a
model's `forward`).
"""

from __future__ import annotations

import ast
import re

from sync_lint.ast_walk import push_children, walk

_IDENTIFIER = re.compile(r"[A-Za-z_]\w{0,79}\Z")
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Calls that look at a function without calling it or handing it on: no value mention.
_LOOKS_AT = frozenset({"signature", "getfullargspec", "getsource", "hasattr", "callable", "isinstance", "id",
                       "type", "ismethod", "isfunction", "iscoroutinefunction", "isgeneratorfunction"})


def is_root_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A module-level function that code outside the project calls by convention (see the module's text)."""
    name = node.name
    return bool(node.decorator_list) or name.startswith("test") or name == "main" or \
        (name.startswith("__") and name.endswith("__"))


def module_mentions(tree: ast.Module, module_level: list[ast.stmt]) \
        -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]]:
    """(root mentions, mentions in the body of each module-level function that is not a root, the
    mentions anywhere other than as a callee), each sorted: a summary's text must be the same in
    every process (sets print in a hash-seeded order).

    The third are names handed on as values (`callbacks.append(f)`, `partial(f, ...)`,
    `register_hook(self.hook)`): a function mentioned so may be called where no call site shows its
    arguments. An attribute is kept with the name its chain starts from (`"kernels.forward"`,
    `"Model.forward"`), and `self.m` and `cls.m` count, as `"self.m"`, when `m` is a method of a
    class of this module: each names the functions of one module or class hierarchy, not every
    function named `m`.
    Strings do not: short method names are common words (`"uva"`, an option's value, is no
    mention of `NonUvaBuffer.uva`).

    `module_level` is every statement of the module body and its blocks (`if`, `try`, `with`), not
    entering definitions: the `def`s among them are the module-level functions."""
    bound = _module_bindings(module_level)
    functions: dict[str, _Found] = {}
    skipped: set[int] = set()  # ids of the bodies' statements read per function
    for node in module_level:
        if isinstance(node, _FUNCTIONS) and not is_root_function(node):
            found = functions.setdefault(node.name, _Found())
            for statement in node.body:
                for child in _walk(statement):
                    found.see(child)
                skipped.add(id(statement))
    root = _Found()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, _FUNCTIONS) and node.body and id(node.body[0]) in skipped:
            # Its decorators, defaults and annotations run at import; its body was read above.
            for part in (*node.decorator_list, node.args, node.returns):
                if part is not None:
                    for child in _walk(part):
                        root.see(child)
            continue
        if type(node) in _SEEN:
            root.see(node)
        push_children(node, stack)
    bound |= root.imported
    for found in functions.values():
        bound |= found.imported
    methods = {statement.name for node in module_level if isinstance(node, ast.ClassDef)
               for statement in node.body if isinstance(statement, _FUNCTIONS)}
    values = set(root.values(bound, methods)).union(*(found.values(bound, methods) for found in functions.values()))
    return root.mentions(bound), {name: found.mentions(bound) for name, found in functions.items()}, \
        tuple(sorted(values))


def _walk(node: ast.AST):  # type: ignore[no-untyped-def]
    """The nodes under `node` that `_Found.see` reads, each before its children (a call before its callee)."""
    return (child for child in walk(node) if type(child) in _SEEN)


def _module_bindings(module_level: list[ast.stmt]) -> set[str]:
    """The names module-level statements bind (definitions and assignment targets; imports are
    collected with the mentions)."""
    bound: set[str] = set()
    for node in module_level:
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound.update(n.id for target in node.targets for n in ast.walk(target) if type(n) is ast.Name)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            bound.update(n.id for n in ast.walk(node.target) if type(n) is ast.Name)
    return bound


# The node types `_Found.see` reads.
_SEEN = frozenset({ast.Call, ast.Name, ast.Attribute, ast.Constant, ast.alias})


class _Found:
    """What one stretch of code mentions, before it is known which names the module binds."""

    __slots__ = ("names", "attributes", "strings", "imported", "callees", "value_names", "value_attributes")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.attributes: set[tuple[str, str]] = set()  # (the name the chain starts from, the attribute)
        self.strings: set[str] = set()
        self.imported: set[str] = set()  # names an import here binds
        # The ids of the nodes called (`f` of `f(x)`): a walk meets a call before its callee.
        self.callees: set[int] = set()
        self.value_names: set[str] = set()  # names read other than as a callee
        self.value_attributes: set[tuple[str, str]] = set()  # the same for attributes

    def see(self, node: ast.AST) -> None:
        kind = type(node)
        if kind is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            self.callees.add(id(func))
            name = func.id if type(func) is ast.Name else func.attr if type(func) is ast.Attribute else None
            if name in _LOOKS_AT:  # `inspect.signature(self.forward)` reads it, calls nothing
                self.callees.update(id(argument) for argument in node.args)  # type: ignore[attr-defined]
        elif kind is ast.Name:
            if type(node.ctx) is not ast.Store:  # type: ignore[attr-defined]
                self.names.add(node.id)  # type: ignore[attr-defined]
                if id(node) not in self.callees:
                    self.value_names.add(node.id)  # type: ignore[attr-defined]
        elif kind is ast.Attribute:
            base = node.value  # type: ignore[attr-defined]
            while type(base) is ast.Attribute:
                base = base.value
            if type(base) is ast.Name:
                self.attributes.add((base.id, node.attr))  # type: ignore[attr-defined]
                if id(node) not in self.callees and type(node.ctx) is not ast.Store:  # type: ignore[attr-defined]
                    # `self.decoder.forward` is another object's method: only `self.m` is one of ours.
                    direct = base is node.value  # type: ignore[attr-defined]
                    root = base.id if direct or base.id not in ("self", "cls") else "<attribute>"
                    self.value_attributes.add((root, node.attr))  # type: ignore[attr-defined]
        elif kind is ast.Constant:
            value = node.value  # type: ignore[attr-defined]
            if type(value) is str and _IDENTIFIER.match(value):
                self.strings.add(value)
        elif kind is ast.alias:
            name = node.name  # type: ignore[attr-defined]
            if node.asname:  # type: ignore[attr-defined]
                self.imported.add(node.asname)  # type: ignore[attr-defined]
                self.strings.add(name.rsplit(".", 1)[-1])
            else:
                self.imported.add(name.split(".", 1)[0])

    def values(self, bound: set[str], methods: set[str]) -> set[str]:
        """What this stretch mentions other than as a callee (`module_mentions`)."""
        return {*(self.value_names & bound),
                *(f"{base}.{attr}" for base, attr in self.value_attributes if base in bound),
                *(f"self.{attr}" for base, attr in self.value_attributes
                  if base in ("self", "cls") and attr in methods)}

    def mentions(self, bound: set[str]) -> tuple[str, ...]:
        return tuple(sorted({*(self.names & bound), *(attr for base, attr in self.attributes if base in bound),
                             *self.strings}))
