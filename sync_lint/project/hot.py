"""Hot paths: the call graph the project index knows, its roots, and what each root reaches.

A *root* is a function that runs per step, batch or request: one named in the
configuration (`hot-paths = ["pkg.mod:Class.method"]`), a `def` marked
`# sync-lint: hot`, and (unless switched off, `hot-path-defaults`) the `forward` of
every `torch.nn.Module` subclass, functions decorated with or handed to
`torch.compile`/`torch.cuda.make_graphed_callables`, and calls made inside
`with torch.cuda.graph(...)`.

The *call graph* is read from the summaries' call sites, each resolved with the
inference's cheap "types" mode (what class a value is an instance of, from
annotations, constructors and `self`):

| call | edge kind |
|---|---|
| `f(x)`, `mod.f(x)`, a nested `def` | `function` |
| `self.m()`, `cls.m()`, `obj.m()` with `obj` of a known class (annotation, constructor, return type) | `method` |
| the same call reaching a subclass's override | `override` |
| `Class(...)` | `constructor` (its `__init__`) |
| `module(x)` on an instance | `instance-call` (`__call__`, else `forward`, and overrides) |
| the same, when a class decorator of the project assigns that method | `replaced` (what it assigns) |
| `super().m()` | `super` |
| `partial(f, ...)(...)`, a name or attribute holding a `functools.partial` | `partial` |
| a project function or bound method passed as an argument | `callback` (the caller is charged with the call) |
| `with cm:` on an instance of a project class: its `__enter__` and `__exit__` (`async with`: `__aenter__`, `__aexit__`) | `context` |

A call site the graph cannot resolve to a project function, and that is not
plainly a call into a library (torch, a tensor method, an import from outside the
project), is *unresolved*: counted, and listed with `--show-unresolved`.

Nothing here imports libcst.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from sync_lint.analysis.facts import Fact, is_exact
from sync_lint.analysis.knowledge import NN_MODULE_CLASSES
from sync_lint.project.index import ProjectIndex
from sync_lint.project.infer import Context, Inference
from sync_lint.project.summary import (CONTEXT_METHODS, CallSite, FunctionInfo, ModuleSummary,
                                      project_op_namespace)
from sync_lint.project.values import Value, render

# Bump when what `edges_of` computes, or how `EdgeCache` stores it, changes: cached edges of older
# formats are recomputed.
GRAPH_FORMAT = 6
DEFAULT_ROOT_KINDS = ("module-forward", "compiled", "cuda-graph")
_MODULE_BASES = NN_MODULE_CLASSES | {"nn.Module"}
_CUDA_GRAPH_CONTEXTS = frozenset({"torch.cuda.graph", "torch.cuda.graphs.graph"})
_COMPILE_DECORATORS = frozenset({"torch.compile", "torch.cuda.make_graphed_callables"})
_MAX_TARGETS = 8  # a call resolving to more functions than this is treated as unresolved


# Edges and unresolved calls are tuples: a one-file check after an edit reads the cached edges of
# every hot function, and tuples unpickle in half the time of frozen dataclasses (the whole of vLLM
# 0.33's edges: 0.11 s against 0.21 s) and take 40% less room in the cache.
class Edge(NamedTuple):
    """A call from a function to another: where it is made, how it was resolved."""

    callee: str  # the qualified function called
    line: int
    kind: str  # see the module docstring
    loop_depth: int = 0
    contexts: tuple[str, ...] = ()  # the `with` context managers around the call site


class Unresolved(NamedTuple):
    function: str  # the qualified caller
    path: str
    line: int
    text: str  # the callee as written (symbolically)


@dataclass(frozen=True)
class Root:
    function: str  # qualified
    why: str  # "config" | "marker" | "module-forward" | "compiled" | "cuda-graph"

    @property
    def label(self) -> str:
        return {"config": "configured", "marker": "`# sync-lint: hot`", "module-forward": "nn.Module forward",
                "compiled": "torch.compile", "cuda-graph": "CUDA graph"}.get(self.why, self.why)


@dataclass
class Reach:
    """What one root reaches: for each function, the call that first reached it (BFS: shortest chains)."""

    root: Root
    parent: dict[str, tuple[str, Edge] | None] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)  # calls from the root
    starts: dict[str, Root] = field(default_factory=dict)  # several roots walked at once: each by function

    def root_of(self, function: str) -> Root:
        """The root whose chain reaches `function` first."""
        current = function
        for _ in range(256):
            step = self.parent.get(current)
            if step is None:
                break
            current = step[0]
        return self.starts.get(current, self.root)

    def chain(self, function: str) -> list[tuple[str, Edge | None]]:
        """[(root, None), (f1, edge root->f1), ..., (function, edge)] along the shortest path."""
        out: list[tuple[str, Edge | None]] = []
        current: str | None = function
        while current is not None:
            step = self.parent.get(current)
            out.append((current, step[1] if step else None))
            current = step[0] if step else None
            if len(out) > 256:
                break
        out.reverse()
        return out


def split_root(spec: str) -> str:
    """`pkg.mod:Class.method` (or `pkg.mod.Class.method`) -> `pkg.mod.Class.method`."""
    module, sep, local = spec.strip().partition(":")
    return f"{module}.{local}" if sep else module


class CallGraph:
    """Edges resolved on demand, one function at a time, memoised (and cached, see `cache`)."""

    def __init__(self, index: ProjectIndex, inference: Inference, cache: "EdgeCache | None" = None) -> None:
        self.index = index
        self.inference = inference
        self.cache = cache
        self._edges: dict[str, tuple[list[Edge], list[Unresolved]]] = {}
        self._packages: set[str] | None = None

    # --- modules and functions ------------------------------------------------------------------
    def calls_in(self, summary: ModuleSummary, local: str) -> list[CallSite]:
        return self.index.calls_in(summary.module, local)

    def packages(self) -> set[str]:
        if self._packages is None:
            self._packages = {module.split(".")[0] for module in self.index.modules}
        return self._packages

    def function(self, qualname: str) -> tuple[ModuleSummary, FunctionInfo] | None:
        return self.index.function(qualname)

    # --- edges --------------------------------------------------------------------------------------
    def edges(self, qualname: str) -> list[Edge]:
        return self._resolved(qualname)[0]

    def unresolved(self, qualname: str) -> list[Unresolved]:
        return self._resolved(qualname)[1]

    def _resolved(self, qualname: str) -> tuple[list[Edge], list[Unresolved]]:
        known = self._edges.get(qualname)
        if known is None:
            cached = self.cache.get(qualname) if self.cache is not None else None
            if cached is not None:
                known = cached
            else:
                self.index.reads.begin()
                try:
                    known = self._compute(qualname)
                finally:
                    deps = self.index.reads.end()
                if self.cache is not None:
                    self.cache.put(qualname, known, deps)
            self._edges[qualname] = known
        return known

    def _compute(self, qualname: str) -> tuple[list[Edge], list[Unresolved]]:
        found = self.function(qualname)
        if found is None:
            return [], []
        summary, info = found
        edges: list[Edge] = []
        unresolved: list[Unresolved] = []
        seen: set[tuple[str, int, str]] = set()
        for call in self.calls_in(summary, info.qualname):
            targets, status = self.resolve(summary, info, call)
            if _enters_context(call):
                # A context manager the graph cannot follow (a library class's inherited `__enter__`,
                # a builtin's) is not a call the code spells: not counted as unresolved.
                targets = [(callee, "context" if kind == "method" else kind) for callee, kind in targets]
                status = "ok" if targets else "external"
            for callee, kind in targets:
                if (callee, call.line, kind) not in seen:
                    seen.add((callee, call.line, kind))
                    edges.append(Edge(callee, call.line, kind, call.loop_depth, call.contexts))
            if status == "unresolved":
                unresolved.append(Unresolved(qualname, summary.path, call.line, render(call.func, 60)))
            for callee in self._callbacks(summary, info, call):
                if (callee, call.line, "callback") not in seen and not any(t[0] == callee for t in targets):
                    seen.add((callee, call.line, "callback"))
                    edges.append(Edge(callee, call.line, "callback", call.loop_depth, call.contexts))
        return edges, unresolved

    def resolve(self, summary: ModuleSummary, info: FunctionInfo, call: CallSite) -> tuple[list[tuple[str, str]], str]:
        """The functions a call site reaches, with the kind of each edge; and "ok", "external" or "unresolved"."""
        func = call.func
        context = Context(summary, info, mode="types")
        inference = self.inference
        if func[0] == "name":
            nested = self._nested(summary, info, func[1])
            if nested is not None:
                return [(nested, "function")], "ok"
        if self.is_partial(summary, info, func):
            return [], "external"  # building a partial calls nothing yet
        if func[0] == "attr" and func[1][0] == "call" and func[1][1] == ("name", "super"):
            return self._super(summary, info, func[2])
        partial = self._partial_target(summary, info, func)
        if partial is not None:
            fact = inference.eval(partial, context)
            if fact.value_kind == "callable" and fact.refs:
                return [(ref, "partial") for ref in sorted(fact.refs)[:_MAX_TARGETS]], "ok"
            return [], self._external_or_unresolved(summary, info, partial)
        receiver = None
        if func[0] == "attr":
            receiver = inference.eval(func[1], context)
            if receiver.is_tensor or receiver.is_unknown_tensor or receiver.value_kind in (
                    "numpy", "device-module", "event", "stream", "python", "dtype", "none", "device",
                    "tuple", "list", "dict"):
                return [], "external"  # a library object, or a builtin container (`[].append`)
            if func[1][0] == "call" and func[1][1][0] == "name" and func[1][1][1] in _BUILTINS:
                return [], "external"  # `set().add`, `dict(...).items`
            if receiver.value_kind == "module" and not (receiver.refs and self._in_project(next(iter(receiver.refs)))) \
                    and not any(project_op_namespace(m) for m in receiver.refs):
                return [], "external"
            callee = inference.attribute(receiver, func[2], "types", 0)
        else:
            callee = inference.eval(func, context)
        kind = callee.value_kind
        if kind == "callable" and callee.refs:
            refs = sorted(callee.refs)
            if len(refs) > _MAX_TARGETS:
                return [], "unresolved"
            direct: set[str] = set()
            if receiver is not None and receiver.value_kind in ("object", "class"):
                direct = {m for m in (self.index.method(c, func[2]) for c in receiver.refs) if m}
            edge_kind = "method" if receiver is not None and receiver.value_kind in ("object", "class") else "function"
            return [(ref, edge_kind if not direct or ref in direct else "override") for ref in refs], "ok"
        if kind == "class" and callee.refs:
            out = []
            for cls in sorted(callee.refs):
                init = self.index.method(cls, "__init__")
                if init is not None:
                    out.append((init, "constructor"))
                post = self.index.method(cls, "__post_init__")
                if post is not None:
                    out.append((post, "constructor"))
            return out, "ok"
        if kind == "object" and callee.refs and any(self.index.klass(c) for c in callee.refs):
            return self._instance_call(callee), "ok"
        if func[0] == "attr" and receiver is not None and receiver.value_kind == "object" and receiver.refs:
            stored = self._stored_partial(receiver.refs, func[2])
            if stored:
                return [(ref, "partial") for ref in stored], "ok"
        if func[0] == "attr" and receiver is not None:
            if receiver.value_kind in ("object", "class") and receiver.refs and \
                    not any(self.index.klass(c) for c in receiver.refs):
                return [], "external"  # a method of a library class
            if receiver.value_kind == "module":
                return [], "external"
        return [], self._external_or_unresolved(summary, info, func)

    def _external_or_unresolved(self, summary: ModuleSummary, info: FunctionInfo, func: Value) -> str:
        spelled = self.index.value_name(summary, func, info.qualname)
        if spelled is not None:
            head = spelled.split(".")[0]
            local_name = func[0] == "name" and "." not in func[1] and (
                func[1] in summary.functions or func[1] in summary.classes or func[1] in summary.globals)
            if not local_name and head not in self.packages() and head not in summary.classes \
                    and head not in summary.functions and head not in summary.globals:
                return "external"
            if func[0] == "name" and func[1] in _BUILTINS:
                return "external"
        return "unresolved"

    def _in_project(self, module: str) -> bool:
        return module.split(".")[0] in self.packages()

    def _nested(self, summary: ModuleSummary, info: FunctionInfo, name: str) -> str | None:
        prefix = info.qualname
        while prefix:
            candidate = f"{prefix}.<locals>.{name}"
            if candidate in summary.functions:
                return summary.qualified(candidate)
            prefix = prefix.rpartition(".<locals>.")[0]
        return None

    def _super(self, summary: ModuleSummary, info: FunctionInfo, name: str) -> tuple[list[tuple[str, str]], str]:
        owner = info.class_name
        if owner is None:
            return [], "unresolved"
        for cls in self.index.mro(summary.qualified(owner))[1:]:
            found = self.index.klass(cls)
            if found is not None and name in found[1].methods:
                return [(f"{cls}.{name}", "super")], "ok"
        return [], "external"  # a library base class (`nn.Module.__init__`)

    def is_partial(self, summary: ModuleSummary, info: FunctionInfo, func: Value) -> bool:
        """Whether `func` names `functools.partial` (so the call builds a callable and runs nothing)."""
        spelled = self.index.value_name(summary, func, info.qualname)
        return spelled in ("functools.partial", "partial") and (spelled != "partial" or
                                                                summary.imports.get("partial") == "functools.partial")

    def _partial_target(self, summary: ModuleSummary, info: FunctionInfo, func: Value) -> Value | None:
        """`f` when the callee is `functools.partial(f, ...)` (directly or through a local name)."""
        candidates = func[1] if func[0] == "join" else (func,)
        for value in candidates:
            if value[0] == "call" and value[2] and self.is_partial(summary, info, value[1]):
                return value[2][0]
        return None

    def _stored_partial(self, classes: frozenset[str], attr: str) -> list[str]:
        """Functions a `self.attr = functools.partial(f, ...)` of these classes holds."""
        related: set[str] = set()
        for cls in classes:
            related.update(self.index.mro(cls))
        out: set[str] = set()
        for summary, store in self.index.stores_of(attr):
            if store.owner is None or summary.qualified(store.owner) not in related:
                continue
            info = summary.functions.get(store.function) if store.function else None
            if info is None:
                continue
            target = self._partial_target(summary, info, store.value)
            if target is not None:
                fact = self.inference.eval(target, Context(summary, info, mode="types"))
                if fact.value_kind == "callable":
                    out.update(fact.refs)
        return sorted(out)[:_MAX_TARGETS]

    def _instance_call(self, instance: Fact) -> list[tuple[str, str]]:
        classes = instance.refs
        out: list[tuple[str, str]] = []
        for cls in sorted(classes):
            method = self.index.method(cls, "__call__") or self.index.method(cls, "forward")
            if method is not None:
                replacement = self.replacement(method)
                if replacement is None:
                    out.append((method, "instance-call"))
                elif replacement:
                    out.append((replacement, "replaced"))
        if is_exact(instance):
            return out[:_MAX_TARGETS]
        name = "__call__" if any(self.index.method(c, "__call__") for c in classes) else "forward"
        for override in sorted(self.inference._overrides(classes, name)):
            if all(override != m for m, _ in out):
                out.append((override, "override"))
        return out[:_MAX_TARGETS]

    def replacement(self, method: str) -> str | None:
        """What a class decorator of the project puts in place of `method` (`Class.forward`): the
        function it assigns (transformers' `use_experts_implementation` sets `experts_class.forward`
        to a dispatcher that runs the decorated body only when `experts_implementation="eager"`), ""
        for a value the graph cannot name, None when no decorator replaces the method. A call reaches
        the replacement, and from there only what the replacement itself calls."""
        cls, _, name = method.rpartition(".")
        found = self.index.klass(cls)
        if found is None:
            return None
        summary, info = found
        for decorator in info.decorators:
            symbol = self.index.resolve(self._spelled_decorator(summary, decorator))
            declared = self.index.summary(symbol.module) if symbol is not None and symbol.kind == "function" else None
            if declared is None:
                continue
            for store in declared.stores:
                if store.attr != name or store.base[0] != "param" or store.function is None or not (
                        store.function == symbol.local or store.function.startswith(f"{symbol.local}.<locals>.")):
                    continue
                local = f"{store.function}.<locals>.{store.value[1]}" if store.value[0] == "name" else ""
                return declared.qualified(local) if local in declared.functions else ""
        return None

    def _callbacks(self, summary: ModuleSummary, info: FunctionInfo, call: CallSite) -> list[str]:
        """Project functions and bound methods passed as arguments (the callee will call them), unless
        the call hands them to another thread or to later (`executor.submit(f)`, `Thread(target=f)`)."""
        name = call.func[2] if call.func[0] == "attr" else call.func[1].rsplit(".", 1)[-1] \
            if call.func[0] == "name" else ""
        if name in _DEFERRED_CALLS:
            return []
        values = [a[1] if a[0] == "*" else a for a in call.args] + [v for _k, v in call.kwargs]
        out: list[str] = []
        for value in values:
            if value[0] == "name" and value[1] not in _BUILTINS or \
                    value[0] == "attr" and value[1][0] == "param":
                fact = self.inference.eval(value, Context(summary, info, mode="types"))
                if fact.value_kind == "callable" and 0 < len(fact.refs) <= _MAX_TARGETS:
                    out.extend(sorted(fact.refs))
        return out

    # --- roots --------------------------------------------------------------------------------------
    def cached_roots(self, configured: Iterable[str] = (),
                     defaults: Iterable[str] = DEFAULT_ROOT_KINDS) -> tuple[list[Root], list[str]]:
        """`roots()`, kept in the project's cache with what finding them read (a warm run reads no
        module summary to find them)."""
        configured, defaults = list(configured), sorted(set(defaults))
        key = roots_key(configured, defaults)
        if self.cache is not None:
            found = self.cache.get(key)
            if found is not None:
                return found  # type: ignore[return-value]
        self.index.reads.begin()
        try:
            value = self.roots(configured, defaults)
        finally:
            deps = self.index.reads.end()
        if self.cache is not None:
            self.cache.put(key, value, deps)  # type: ignore[arg-type]
        return value

    def roots(self, configured: Iterable[str] = (), defaults: Iterable[str] = DEFAULT_ROOT_KINDS,
              modules: Iterable[str] | None = None) -> tuple[list[Root], list[str]]:
        """The roots, and the configured names that resolve to no function of the project.

        Markers, compiled functions and CUDA-graph captures are looked for in `modules` (default:
        every module of the index)."""
        roots: list[Root] = []
        missing: list[str] = []
        seen: set[str] = set()

        def add(function: str, why: str) -> None:
            if function not in seen:
                seen.add(function)
                roots.append(Root(function, why))

        for spec in configured:
            name = split_root(spec)
            found = self.index.resolve(name)
            if found is not None and found.kind == "function":
                add(found.qualname, "config")
            else:
                missing.append(spec)
        defaults = set(defaults)
        candidates = self.index.root_modules()
        for module in sorted(candidates if modules is None else candidates & set(modules)):
            summary = self.index.summary(module)
            if summary is None or self.index.is_template(module):  # a template's code never runs
                continue
            for local, info in summary.functions.items():
                if info.hot_marker:
                    add(summary.qualified(local), "marker")
                elif "compiled" in defaults and any(self._spelled_decorator(summary, d) in _COMPILE_DECORATORS
                                                    for d in info.decorators):
                    add(summary.qualified(local), "compiled")
            if "compiled" in defaults:
                for function, _line, value in summary.compiled:
                    info = summary.functions.get(function) if function else None
                    fact = self.inference.eval(value, Context(summary, info, mode="types"))
                    refs = sorted(fact.refs) if fact.value_kind == "callable" else (
                        [m for m in (self.index.method(c, "forward") for c in sorted(fact.refs)) if m]
                        if fact.value_kind == "object" else [])
                    for ref in refs[:_MAX_TARGETS]:
                        add(ref, "compiled")
            if "cuda-graph" in defaults and summary.captured:
                for call in self.index.module_calls(module):
                    if call.function is not None and any(c in _CUDA_GRAPH_CONTEXTS for c in call.contexts):
                        info = summary.functions.get(call.function)
                        if info is not None:
                            for target, _kind in self.resolve(summary, info, call)[0]:
                                add(target, "cuda-graph")
        if "module-forward" in defaults:
            for cls in sorted(self.module_classes()):
                if self.index.defines_forward(cls):
                    add(f"{cls}.forward", "module-forward")
        return roots, missing

    def _spelled_decorator(self, summary: ModuleSummary, decorator: str) -> str:
        head, _, rest = decorator.partition(".")
        target = summary.imports.get(head) or (summary.qualified(head) if head in summary.functions else head)
        return f"{target}.{rest}" if rest else target

    def module_classes(self) -> set[str]:
        """Every project class deriving from `torch.nn.Module`."""
        for base in _MODULE_BASES:  # a class that starts or stops deriving from one
            self.index.reads.add(f"b:{base.rsplit('.', 1)[-1]}")
        # A template's classes never run (`subclasses` leaves out their subclasses likewise).
        direct = {cls for cls, base in self.index.tables.base_rows()
                  if base in _MODULE_BASES and not self.index.is_template(cls.rpartition(".")[0])}
        out = set(direct)
        for cls in direct:
            out |= self.index.subclasses(cls)
        return out

    # --- reachability --------------------------------------------------------------------------------
    def reach(self, root: Root | list[Root], follow=None) -> Reach:  # type: ignore[no-untyped-def]
        """Breadth-first from the root (or from several at once): every function reached, by a
        shortest chain from the nearest of them.

        `follow(caller, edge)`: whether to go through an edge (default: all)."""
        roots = [root] if isinstance(root, Root) else list(root)
        out = Reach(roots[0], {r.function: None for r in roots}, {r.function: 0 for r in roots},
                    {r.function: r for r in roots})
        # Level by level (the order of a plain queue), so that the cached edges of a whole level are
        # read at once: one query per level instead of one per function (4,300 on a vLLM hot path).
        level = list(dict.fromkeys(r.function for r in roots))
        while level:
            self.prefetch(level)
            following: list[str] = []
            for current in level:
                for edge in self.edges(current):
                    if edge.callee in out.parent or follow is not None and not follow(current, edge):
                        continue
                    out.parent[edge.callee] = (current, edge)
                    out.depth[edge.callee] = out.depth[current] + 1
                    following.append(edge.callee)
            level = following
        return out

    def prefetch(self, qualnames: list[str]) -> None:
        """Read the cached edges of these functions in one go."""
        if self.cache is not None:
            self._edges.update(self.cache.get_many([q for q in qualnames if q not in self._edges]))


def _enters_context(call: CallSite) -> bool:
    """A call site `with` makes: `__enter__`/`__exit__` (or their `async` forms) of its context manager,
    with no argument."""
    return call.func[0] == "attr" and not call.args and not call.kwargs and \
        any(call.func[2] in names for names in CONTEXT_METHODS)


def edge_key(qualname: str) -> str:
    """The name the edges of a function (or a `<roots>` answer) are stored under in the cache."""
    return f"<call-graph:{GRAPH_FORMAT}>{qualname}"


def roots_key(configured: Iterable[str], defaults: Iterable[str]) -> str:
    """The `qualname` the roots are cached under, for these settings (`CallGraph.cached_roots`)."""
    return f"<roots>{list(configured)!r}:{sorted(set(defaults))!r}"


class EdgeCache:
    """Edges of functions kept in the project's cache, each with what resolving it read.

    `ahead`: edges read before this run's index update (`read_edges_ahead`) that still hold, by name."""

    def __init__(self, opened, ahead: dict[str, object] | None = None) -> None:  # type: ignore[no-untyped-def]
        self.opened = opened
        self._ahead = ahead or {}
        self._pending: dict[str, tuple[tuple[list[Edge], list[Unresolved]], frozenset]] = {}

    def get(self, qualname: str) -> tuple[list, list] | None:
        """The edges and unresolved calls of a function (or the roots and missing names of a `<roots>` key)."""
        key = edge_key(qualname)
        found = self._ahead[key] if key in self._ahead else self.opened.result(key, "edges")
        return _decoded(qualname, found) if isinstance(found, tuple) else None

    def get_many(self, qualnames: list[str]) -> dict[str, tuple[list, list]]:
        """`get` of several functions at once: those the cache holds."""
        keys = {edge_key(q): q for q in qualnames}
        found = {key: self._ahead[key] for key in keys if key in self._ahead}
        if len(found) < len(keys):
            found.update(self.opened.results({key: "edges" for key in keys if key not in found}))
        return {keys[key]: _decoded(keys[key], value) for key, value in found.items() if isinstance(value, tuple)}

    def put(self, qualname: str, value: tuple[list, list], deps: frozenset) -> None:
        self._pending[qualname] = (value, deps)

    def save(self) -> None:
        if self.opened.writable and self.opened.facts_saved and self._pending:
            import sqlite3

            try:
                self.opened.store.put_results([(edge_key(q), "edges", _encoded(q, value), deps)
                                               for q, (value, deps) in self._pending.items()],
                                              self.opened.project.generation)
            except sqlite3.OperationalError:  # locked past the timeout: the edges are recomputed next time
                pass
        self._pending.clear()


# A function's edges are stored as plain tuples: a check of one edited file reads those of every
# function the roots reach (4,600 for vLLM 0.33), and tuples unpickle without a call of the named
# tuple's `__new__` each (there, 9 ms instead of 14 for the whole graph). A `<roots>` answer is
# stored as it is.
_new_tuple = tuple.__new__


def _encoded(qualname: str, value: tuple[list, list]) -> tuple:
    if qualname.startswith("<roots>"):
        return value
    edges, unresolved = value
    return tuple(map(tuple, edges)), tuple(map(tuple, unresolved))


def _decoded(qualname: str, value: tuple) -> tuple[list, list]:
    if qualname.startswith("<roots>"):
        return value  # type: ignore[return-value]
    edges, unresolved = value
    return [_new_tuple(Edge, edge) for edge in edges], [_new_tuple(Unresolved, item) for item in unresolved]


# Calls that run a callable they are given on another thread or later, not before they return.
_DEFERRED_CALLS = frozenset({
    "submit", "run_in_executor", "apply_async", "map_async", "add_done_callback", "call_soon", "call_later",
    "call_soon_threadsafe", "create_task", "ensure_future", "Thread", "Process", "Timer", "register",
    "register_forward_hook", "register_forward_pre_hook", "register_hook", "start_new_thread",
})
_BUILTINS = frozenset(
    "len isinstance issubclass print range enumerate zip int float bool str repr list tuple dict set "
    "frozenset sorted reversed min max sum any all abs round hasattr getattr setattr id type format iter next "
    "open divmod hash callable map filter vars dir ord chr bytes bytearray super object delattr "
    "NotImplementedError ValueError RuntimeError TypeError KeyError AssertionError Exception".split()
)
