"""Which names are bound at run time, where: the scopes of a text, read with `ast`.

The fixer asks two questions of a text. Before it writes `torch.full(...)` into a
function: which name, if any, binds `torch` at that point at run time (the
function's own `import torch as th`, the module's `import torch`), and does the
module keep torch out of its import-time work (a lazy import inside a function, an
import under `if TYPE_CHECKING:`)? After it edited the text: is every name the
edits introduced bound at run time where it is used (`fix/selfcheck.py`)?

`ast` rather than libcst: it parses several times faster and gives what is needed
here, the scope each name lives in. Positions are turned into offsets of the
decoded text (ast counts columns in UTF-8 bytes).
"""

from __future__ import annotations

import ast
import bisect
import builtins
from dataclasses import dataclass, field
from typing import Iterator

from sync_lint.fix.edits import TextLines

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__loader__",
                                         "__package__", "__builtins__", "__path__", "__annotations__"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


class Offsets:
    """ast (line, UTF-8 byte column) -> offset into the decoded text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = TextLines(text).starts

    def offset(self, line: int, column: int) -> int:
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.text)
        row = self.text[start:end]
        if row.isascii():
            return start + column
        return start + len(row.encode("utf-8")[:column].decode("utf-8", errors="ignore"))

    def line_start(self, offset: int) -> int:
        """The offset of the start of the line that holds `offset`."""
        return self.starts[self.row(offset) - 1]

    def row(self, offset: int) -> int:
        """The 1-based line number of `offset`."""
        return bisect.bisect_right(self.starts, offset)

    def start(self, node: ast.AST) -> int:
        """Where a node starts; a decorated definition starts at its first decorator."""
        first = min([node, *getattr(node, "decorator_list", ())], key=lambda n: (n.lineno, n.col_offset))
        return self.offset(first.lineno, first.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Binding:
    """One statement binding a name: where it starts, whether it runs, which module it imports."""

    offset: int
    runtime: bool  # False under `if TYPE_CHECKING:`
    module: str | None = None  # `import torch as th` binds `th` to "torch"
    dotted: str | None = None  # `import torch.nn` binds `torch` and makes `torch.nn` usable
    parameter: bool = False


@dataclass(eq=False)
class Scope:
    kind: str  # "module", "function", "lambda", "class", "comprehension"
    node: ast.AST
    parent: "Scope | None"
    start: int = 0  # the offsets its body covers
    end: int = 0
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    star_import: bool = False

    def bind(self, name: str, binding: Binding) -> None:
        """Record a binding; a name declared `global` here is bound in the module."""
        scope = self
        if name in self.globals:
            while scope.parent is not None:
                scope = scope.parent
        scope.bindings.setdefault(name, []).append(binding)

    def visible_chain(self) -> Iterator["Scope"]:
        """This scope, then the ones its names resolve in (class bodies do not enclose functions)."""
        yield self
        scope = self.parent
        while scope is not None:
            if scope.kind != "class":
                yield scope
            scope = scope.parent


@dataclass(frozen=True)
class Use:
    """A name read: `torch` in `torch.full(...)`."""

    name: str
    offset: int
    scope: Scope


def _is_type_checking(test: ast.expr) -> bool | None:
    """True for `TYPE_CHECKING` / `typing.TYPE_CHECKING`, False for their negation, else None."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _is_type_checking(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return None


class ScopeTree:
    """The scopes of one parsed text, with every binding and every name read."""

    def __init__(self, tree: ast.Module, offsets: Offsets) -> None:
        self.tree = tree
        self.offsets = offsets
        self.module = Scope("module", tree, None, 0, len(offsets.text))
        self.scopes: list[Scope] = [self.module]
        self.uses: list[Use] = []
        self._visit_body(tree.body, self.module, True)

    @classmethod
    def parse(cls, text: str) -> "ScopeTree":
        """Raises SyntaxError (and ValueError, RecursionError) like `ast.parse`."""
        return cls(ast.parse(text), Offsets(text))

    # --- queries ---------------------------------------------------------------------
    def scope_at(self, offset: int) -> Scope:
        """The innermost function, lambda or class body that contains `offset`."""
        best = self.module
        for scope in self.scopes:
            if scope.kind != "comprehension" and scope.start <= offset < scope.end and scope.start >= best.start:
                best = scope
        return best

    def module_spelling(self, module: str, offset: int) -> str | None:
        """The name that reaches `module` at run time at `offset`, or None.

        `import torch as th` gives "th"; `import torch` and `import torch.nn` give "torch";
        a function's own import counts only if it comes before `offset`.
        """
        for scope in self.scope_at(offset).visible_chain():
            for name, bindings in scope.bindings.items():
                for binding in bindings:
                    if not binding.runtime or (scope.kind != "module" and binding.offset >= offset):
                        continue
                    if binding.module == module:
                        return name
                    if binding.dotted is not None and (binding.dotted + ".").startswith(module + "."):
                        return module
        return None

    def imports_lazily(self, module: str) -> bool:
        """The text imports `module` somewhere, but not at run time at module level."""
        found = False
        for scope in self.scopes:
            for bindings in scope.bindings.values():
                for binding in bindings:
                    names = (binding.module or "", binding.dotted or "")
                    if not any(n == module or n.startswith(module + ".") for n in names):
                        continue
                    if scope is self.module and binding.runtime:
                        return False
                    found = True
        return found

    def enclosing_function(self, offset: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The innermost `def` whose body contains `offset` (lambdas and classes are looked through)."""
        for scope in self.scope_at(offset).visible_chain():
            if scope.kind == "function":
                return scope.node  # type: ignore[return-value]
        return None

    def reaches(self, name: str, offset: int) -> bool:
        """Whether `name`, read at `offset`, is bound at run time there."""
        return self.unbound(Use(name, offset, self.scope_at(offset))) is None

    def unbound(self, use: Use) -> str | None:
        """Why `use.name` may not be bound at run time where it is read; None when it is."""
        name = use.name
        first = True
        scope: Scope | None = use.scope
        while scope is not None:
            if scope.kind == "class" and not first:
                scope = scope.parent
                continue
            first = False
            if name in scope.globals and scope is not self.module:
                scope = self.module
                continue
            bindings = scope.bindings.get(name, [])
            if scope.kind in ("function", "lambda", "comprehension") and bindings:
                ordered = scope.kind == "function"
                if any(b.parameter or (b.runtime and (not ordered or b.offset < use.offset)) for b in bindings):
                    return None
                return f"`{name}` is local to the function but not bound before it is used"
            if any(b.runtime for b in bindings) or (scope is self.module and scope.star_import):
                return None
            if bindings and scope is self.module:
                return f"`{name}` is bound only under `if TYPE_CHECKING:`"
            scope = scope.parent
        return None if name in _BUILTINS else f"`{name}` is not bound"

    # --- building ----------------------------------------------------------------------
    def _new_scope(self, kind: str, node: ast.AST, parent: Scope, body: list[ast.AST] | ast.AST) -> Scope:
        nodes = body if isinstance(body, list) else [body]
        start = self.offsets.start(nodes[0]) if nodes else self.offsets.end(node)
        scope = Scope(kind, node, parent, start, self.offsets.end(node))
        self.scopes.append(scope)
        return scope

    def _visit_body(self, body: list[ast.stmt], scope: Scope, runtime: bool) -> None:
        for stmt in body:
            self._visit(stmt, scope, runtime)

    def _visit(self, node: ast.AST, scope: Scope, runtime: bool) -> None:  # noqa: C901 - one case per node kind
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            self._definition(node, scope, runtime)
        elif isinstance(node, ast.Lambda):
            self._visit_all([*node.args.defaults, *(d for d in node.args.kw_defaults if d)], scope, runtime)
            inner = self._new_scope("lambda", node, scope, node.body)
            self._parameters(node.args, inner)
            self._visit(node.body, inner, True)
        elif isinstance(node, _COMPREHENSIONS):
            self._comprehension(node, scope, runtime)
        elif isinstance(node, ast.If) and _is_type_checking(node.test) is not None:
            checking = bool(_is_type_checking(node.test))
            self._visit(node.test, scope, runtime)
            self._visit_body(node.body, scope, runtime and not checking)
            self._visit_body(node.orelse, scope, runtime and checking)
        elif isinstance(node, ast.Import):
            start = self.offsets.start(node)
            for alias in node.names:
                if alias.asname:
                    scope.bind(alias.asname, Binding(start, runtime, module=alias.name))
                else:
                    head = alias.name.split(".")[0]
                    scope.bind(head, Binding(start, runtime, module=head, dotted=alias.name))
        elif isinstance(node, ast.ImportFrom):
            start = self.offsets.start(node)
            base = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    scope.star_import = True
                else:
                    scope.bind(alias.asname or alias.name, Binding(start, runtime, module=f"{base}.{alias.name}"))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if isinstance(node, ast.Global):
                scope.globals.update(node.names)
        elif isinstance(node, ast.Name):
            offset = self.offsets.offset(node.lineno, node.col_offset)
            if isinstance(node.ctx, ast.Load):
                self.uses.append(Use(node.id, offset, scope))
            else:
                scope.bind(node.id, Binding(offset, runtime))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.bind(node.name, Binding(self.offsets.start(node), runtime))
            self._visit_all(list(ast.iter_child_nodes(node)), scope, runtime)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            scope.bind(node.name, Binding(self.offsets.start(node), runtime))
            self._visit_all(list(ast.iter_child_nodes(node)), scope, runtime)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bind(node.rest, Binding(self.offsets.start(node), runtime))
            self._visit_all(list(ast.iter_child_nodes(node)), scope, runtime)
        else:
            self._visit_all(list(ast.iter_child_nodes(node)), scope, runtime)

    def _visit_all(self, nodes: list[ast.AST], scope: Scope, runtime: bool) -> None:
        for child in nodes:
            self._visit(child, scope, runtime)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, scope: Scope,
                    runtime: bool) -> None:
        self._visit_all(list(node.decorator_list), scope, runtime)
        if isinstance(node, ast.ClassDef):
            self._visit_all([*node.bases, *node.keywords], scope, runtime)
            inner = self._new_scope("class", node, scope, node.body)
        else:
            args = node.args
            annotations = [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                  args.vararg, args.kwarg) if a is not None and a.annotation]
            self._visit_all([*args.defaults, *(d for d in args.kw_defaults if d), *annotations,
                             *([node.returns] if node.returns else [])], scope, runtime)
            inner = self._new_scope("function", node, scope, node.body)
            self._parameters(args, inner)
        scope.bind(node.name, Binding(self.offsets.start(node), runtime))
        self._visit_body(node.body, inner, True)

    def _parameters(self, args: ast.arguments, scope: Scope) -> None:
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                scope.bind(arg.arg, Binding(scope.start, True, parameter=True))

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, scope: Scope,
                       runtime: bool) -> None:
        generators = node.generators
        self._visit(generators[0].iter, scope, runtime)  # evaluated in the enclosing scope
        inner = self._new_scope("comprehension", node, scope, node)
        for index, generator in enumerate(generators):
            self._visit(generator.target, inner, True)
            if index:
                self._visit(generator.iter, inner, True)
            self._visit_all(list(generator.ifs), inner, True)
        elements = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self._visit_all(elements, inner, True)
