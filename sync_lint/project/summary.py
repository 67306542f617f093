"""A per-file summary: what one module tells the rest of the project, from one `ast` parse.

Classes (bases, decorators, declared fields), functions (parameters with their
annotations, what they return), every call site with its arguments, every store
to an attribute (`self.x = ...`, `obj.x = ...`, `setattr(obj, "x", ...)`), dict
entries with string keys, module-level names and imports. Values are symbolic
(`values.py`): a summary never looks at another file, so it can be cached by the
file's content alone and rebuilt in parallel.

Inside a function, a local variable read where one assignment to it must have run
last (an assignment before it in the same block or an enclosing one, and no other
assignment in between or around a loop) stands for that assignment's value:
`x = x.to(device)` then `f(x)` passes the moved tensor, not the parameter. Anywhere
else it stands for every value assigned to it in that function (a join). Either way a
call argument or a stored value is expressed over parameters, globals and calls only.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from sync_lint.analysis.construction import construction_methods_ast
from sync_lint.analysis.knowledge import (
    CPU_PLATFORM_FLAGS,
    CUDA_ONLY_FUNCTIONS,
    EMPTY_CONTAINERS,
    MAPPING_TYPES,
    FUNCTION_RUNNERS,
    FUNCTION_WRAPPERS,
    MODEL_LOADERS,
    NN_NON_MODULES,
    OTHER_DEVICE_TYPES,
    OTHER_PLATFORM_FLAGS,
    OTHER_PLATFORM_TESTS,
    SEQUENCE_TYPES,
    device_kind,
    pins_where_available,
)
from sync_lint.analysis.knowledge import FACTORIES as _FACTORIES
from sync_lint.project.mentions import module_mentions
from sync_lint.project.values import (
    BUILT_ON_KEY,
    MAX_DEPTH,
    MAX_JOIN,
    NONE,
    OFF_CUDA,
    UNKNOWN,
    Value,
    dotted_parts,
    join,
    off_cuda_if,
)

_BUILTINS = frozenset(dir(builtins))

# Bump when the summary format changes: cached summaries of older formats are rebuilt.
SUMMARY_FORMAT = 73

_DATACLASS_DECORATORS = frozenset({"dataclass", "dataclasses.dataclass", "attr.s", "attrs.define", "attr.define",
                                   "define", "frozen", "attrs.frozen", "pydantic.dataclasses.dataclass"})
_FIELD_BASES = frozenset({"NamedTuple", "typing.NamedTuple", "BaseModel", "pydantic.BaseModel", "TypedDict",
                          "typing.TypedDict", "msgspec.Struct", "Struct"})


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "posonly" | "pos" | "kwonly" | "star" | "starstar"
    annotation: tuple[str, ...]  # type names after unwrapping Optional/Union/strings
    default: Value | None


@dataclass
class FunctionInfo:
    qualname: str  # within the module: "f", "C.m", "f.<locals>.g"
    name: str
    line: int
    end_line: int
    params: tuple[Param, ...]
    returns: tuple[Value, ...]
    decorators: tuple[str, ...]
    class_name: str | None  # the class's qualname for a method
    returns_annotation: tuple[str, ...] = ()
    is_generator: bool = False
    # What a generator yields (`yield v`: v; `yield from vs`: an element of vs).
    yields: tuple[Value, ...] = ()
    # `# sync-lint: hot` on the `def` line (or the line above it or its decorators): a hot-path root.
    hot_marker: bool = False
    # The (first, last) lines of the `for`/`while` loops in the body (not in nested functions).
    loops: tuple[tuple[int, int], ...] = ()
    # (parameter, first line, last line): lines that run only when the parameter is not None
    # (`if p is not None:`, after `if p is None: return`), the parameter not rebound before the test,
    # on its line, or later in a loop around it.
    guards: tuple[tuple[str, int, int], ...] = ()
    # The same for lines that run only when the parameter is true (`if check_inputs:`).
    truth_guards: tuple[tuple[str, int, int], ...] = ()
    # The same for lines that run only when the parameter is None (`if max_len is None:`, the `else`
    # of `if mask is not None:`): an explicit `is None` test, not a truth test.
    none_guards: tuple[tuple[str, int, int], ...] = ()
    # (count, equal, first line, last line): lines that run only when the number of arguments the
    # `*args` parameter collects is `count` (equal) or is not (`if len(caches) == 1:`, its `else`, and
    # what follows it when it leaves): transformers' `EncoderDecoderCache(*caches)` takes a legacy
    # tuple in one argument and two caches in two.
    count_guards: tuple[tuple[int, bool, int, int], ...] = ()
    # (test line, first line, last line): blocks that run on some calls only, whatever decides it (the
    # arms of an `if`, `except` handlers, `case`s, the rest of a block after an `if` whose body ends in
    # return, break or continue: see `_leaves_early`).
    branches: tuple[tuple[int, int, int], ...] = ()
    # (line, parameter): a call on that line takes the parameter, unrebound, for its device
    # (`torch.tensor(..., device=device)`, `x.to(device)`): a call that leaves it None copies nothing.
    device_params: tuple[tuple[int, str], ...] = ()
    # (line, parameter): a call on that line takes the parameter's own device for its device
    # (`torch.arange(n, device=counts.device)`, `d = x.device; y.to(d)`): the body treats the parameter
    # as a tensor on the device it computes on, an accelerator by convention (`ProjectView.param`).
    placed_params: tuple[tuple[int, str], ...] = ()
    # (line, parameter, kernel): the parameter, unrebound, is an argument of a launch `kernel[grid](...)`
    # on that line; a launch of a Triton kernel takes only device tensors (`Inference._launched`).
    launched_params: tuple[tuple[int, str, Value], ...] = ()
    # A method that runs only while an instance of its class is built (`construction_methods`):
    # what it calls runs then too, so what those calls allocate with no `device=` is on the
    # builder's device when the class is an `nn.Module`.
    construction: bool = False
    # A predicate of where the code runs: True when the function returns a test that holds only off CUDA
    # (SGLang's `use_torch_reference(device)`: `return device.type != "cuda"`), False when it returns one
    # that fails only there (`off_cuda_test`), None otherwise.
    off_cuda_result: bool | None = None
    # (first line, last line, context): blocks that run where a called project function returned what the
    # context names (`off_cuda_if`: `if use_torch_reference(buf.device):`, and what follows such an `if`
    # whose body leaves), off CUDA when that function is a predicate of it; not in nested functions.
    predicate_arms: tuple[tuple[int, int, str], ...] = ()

    def device_params_at(self, line: int) -> frozenset[str]:
        """The parameters a call on `line` takes for its device (`device=param`, `.to(param)`)."""
        return frozenset(name for at, name in self.device_params if at == line)

    def branch_at(self, line: int) -> int | None:
        """The line of the outermost test that decides whether `line` runs; None when it runs on every call."""
        tests = [test for test, first, last in self.branches if first <= line <= last]
        return min(tests) if tests else None

    def guarded(self, line: int, none: "frozenset[str]", false: "frozenset[str]" = frozenset()) -> bool:
        """Whether `line` cannot run when the parameters in `none` are None and those in `false` are false."""
        return any(param in none and first <= line <= last for param, first, last in self.guards) \
            or any((param in none or param in false) and first <= line <= last
                   for param, first, last in self.truth_guards)

    def ruled_out_by_count(self, line: int, count: int | None) -> bool:
        """Whether `line` cannot run on a call that gives the `*args` parameter `count` arguments
        (`count_guards`); never when the count is unknown."""
        return count is not None and any(first <= line <= last and (count == n) != equal
                                         for n, equal, first, last in self.count_guards)

    def runs_only_when_none(self, line: int, params: "frozenset[str]") -> bool:
        """Whether `line` runs only when one of `params` is None (`none_guards`)."""
        return any(param in params and first <= line <= last for param, first, last in self.none_guards)

    @property
    def kind(self) -> str:
        if self.class_name is None:
            return "function"
        if "staticmethod" in self.decorators:
            return "staticmethod"
        if "classmethod" in self.decorators:
            return "classmethod"
        return "method"


@dataclass
class ClassInfo:
    qualname: str
    name: str
    line: int
    end_line: int
    bases: tuple[Value, ...]
    decorators: tuple[str, ...]
    # Declared fields in order: (name, annotation types, default or None, line).
    fields: tuple[tuple[str, tuple[str, ...], Value | None, int], ...]
    methods: tuple[str, ...]
    # Plain class attributes (`x = value` in the class body): (name, value, line).
    attributes: tuple[tuple[str, Value, int], ...] = ()

    @property
    def fields_by_position(self) -> bool:
        """A dataclass-like class: its constructor takes its declared fields in order."""
        return any(d.rsplit(".", 1)[-1] in {x.rsplit(".", 1)[-1] for x in _DATACLASS_DECORATORS}
                   for d in self.decorators)

    def field_base(self, spelled_bases: list[str]) -> bool:
        """A class whose base makes its constructor take its fields (NamedTuple, pydantic, msgspec...)."""
        return any(b in _FIELD_BASES or b.rsplit(".", 1)[-1] in {x.rsplit(".", 1)[-1] for x in _FIELD_BASES}
                   for b in spelled_bases)


@dataclass(frozen=True)
class CallSite:
    function: str | None  # qualname of the enclosing function; None at module or class level
    line: int
    func: Value
    args: tuple[Value, ...]  # a `*x` argument is ("*", x)
    kwargs: tuple[tuple[str, Value], ...]  # a `**x` argument is ("**", x)
    loop_depth: int  # enclosing `for`/`while` loops within the function
    # The context managers of the `with` blocks enclosing the call within its function, as spelled
    # through the module's imports (`torch.cuda.graph`, `gpu_sync_allowed`), innermost last; and
    # `OFF_CUDA` where a test says the code runs off CUDA (no accelerator, another one, a tensor not on CUDA).
    contexts: tuple[str, ...] = ()
    # `cls(...)` in a classmethod, filed under the class's name: it constructs whichever class the
    # method is called on, a subclass that inherits the factory too.
    by_cls: bool = False


# `nn.Module` methods that store a tensor under a name read back as an attribute.
_MODULE_STATE_REGISTRATIONS = frozenset({"register_buffer", "register_parameter"})
# Methods that set each keyword as an attribute of the object: diffusers' `DiffusionPipeline.register_modules(
# vae=vae, transformer=transformer, scheduler=scheduler)` (a `setattr` loop the summary cannot read).
_KEYWORD_REGISTRATIONS = frozenset({"register_modules"})


def _wraps_module_state(value: Value) -> bool:
    """`nn.Parameter(t)`, `Buffer(t)`: a value already made module state, by the last name it calls."""
    if value[0] != "call":
        return False
    func = value[1]
    last = func[2] if func[0] == "attr" else func[1] if func[0] == "name" else None
    return isinstance(last, str) and last.rsplit(".", 1)[-1] in NN_NON_MODULES


@dataclass(frozen=True)
class Store:
    """`base.attr = value` (also augmented, annotated, `setattr` with a literal name, and
    `base.attr.append(v)`, a list holding `v`)."""

    function: str | None
    line: int
    base: Value
    attr: str
    value: Value
    owner: str | None = None  # the class, when `base` is the `self` of one of its methods
    declared: tuple[str, ...] = ()  # the annotation's types of `self.attr: str | None = value`


@dataclass(frozen=True)
class Entry:
    """`container["key"] = value`, `"key": value` in a dict display, or `dict(key=value)`."""

    function: str | None
    line: int
    key: str
    value: Value


@dataclass
class ModuleSummary:
    path: str
    module: str
    is_package: bool
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)
    # Modules a module-level `import a.b.c` loads besides the name it binds (`a`): an import for its
    # side effects (`import vllm.v1.worker.cpu.shm`, which replaces torch functions) names one.
    loaded: list[str] = field(default_factory=list)
    globals: dict[str, Value] = field(default_factory=dict)
    global_lines: dict[str, int] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    calls: list[CallSite] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    # Function-local imports: (function qualname, local name) -> qualified name.
    local_imports: dict[tuple[str, str], str] = field(default_factory=dict)
    error: str | None = None  # why the file could not be summarised
    # The template this module says it was generated from (`modular_x.py` for transformers'
    # generated `modeling_x.py`): that template's classes are never what runs.
    generated_from: str | None = None
    # What this module's stores say about each attribute on their own (see project/conventions.py):
    # attr -> (GPU stores, CPU stores, informative stores, (line, reason) of a GPU one, of a CPU one).
    conventions: dict[str, tuple] | None = None
    # Callables handed to `torch.compile(...)`/`torch.cuda.make_graphed_callables(...)`:
    # (enclosing function or None, line, the value passed).
    compiled: list[tuple[str | None, int, Value]] = field(default_factory=list)
    # Lines of call sites inside `with torch.cuda.graph(...)` (captured into a CUDA graph).
    captured: list[int] = field(default_factory=list)
    # Custom operators the module registers with PyTorch: op name -> the callable that implements it
    # (`direct_register_custom_op(op_name="x", op_func=f)`, `@torch.library.custom_op("ns::x")`), so that
    # a call `torch.ops.<ns>.x(...)` is a call of that function.
    custom_ops: dict[str, Value] = field(default_factory=dict)
    # The names the module mentions in code that runs (module level, class bodies, methods, root
    # functions), and in the body of each other module-level function (`mentions.py`).
    mentions: tuple[str, ...] = ()  # sorted, as every set in a summary (its text is compared)
    function_mentions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The names it mentions other than as a callee, anywhere: functions that may be called unseen.
    value_mentions: tuple[str, ...] = ()

    def qualified(self, local: str) -> str:
        return f"{self.module}.{local}" if self.module else local


def map_lines(summary: ModuleSummary, to: Callable[[int], int]) -> ModuleSummary:
    """A copy of `summary` with every line number `n` it records replaced by `to(n)`.

    Every field above that holds a line is mapped here, in a fixed order: a field added with a
    line in it must be added here too, or an edit that only moves lines (a comment inserted at
    the top) would keep answers whose evidence points at the old line."""

    def pairs(spans: tuple) -> tuple:
        return tuple((to(first), to(last)) for first, last in spans)

    def guards(spans: tuple) -> tuple:
        return tuple((name, to(first), to(last)) for name, first, last in spans)

    def function(info: FunctionInfo) -> FunctionInfo:
        return replace(info, line=to(info.line), end_line=to(info.end_line), loops=pairs(info.loops),
                       returns=tuple(value(v) for v in info.returns),
                       yields=tuple(value(v) for v in info.yields),
                       params=tuple(replace(p, default=value(p.default)) if p.default is not None else p
                                    for p in info.params),
                       guards=guards(info.guards), truth_guards=guards(info.truth_guards),
                       none_guards=guards(info.none_guards),
                       count_guards=tuple((n, equal, to(first), to(last))
                                          for n, equal, first, last in info.count_guards),
                       branches=tuple((to(test), to(first), to(last)) for test, first, last in info.branches),
                       device_params=tuple((to(line), name) for line, name in info.device_params),
                       placed_params=tuple((to(line), name) for line, name in info.placed_params),
                       launched_params=tuple((to(line), name, value(k)) for line, name, k in info.launched_params),
                       predicate_arms=tuple((to(first), to(last), c) for first, last, c in info.predicate_arms))

    def klass(info: ClassInfo) -> ClassInfo:
        return replace(info, line=to(info.line), end_line=to(info.end_line),
                       fields=tuple((n, a, value(d) if d is not None else d, to(line)) for n, a, d, line in info.fields),
                       attributes=tuple((n, value(v), to(line)) for n, v, line in info.attributes))

    def example(found: tuple | None) -> tuple | None:
        return (to(found[0]), *found[1:]) if found else found

    # A device test (`on`) keeps its line in a value. Values share parts: each is mapped once, so
    # that the copy shares them as the summary does.
    value = functools.partial(_map_value_lines, to=to, mapped={})

    conventions = None if summary.conventions is None else {
        attr: (*counts[:3], example(counts[3]), example(counts[4])) for attr, counts in summary.conventions.items()}
    return replace(
        summary,
        global_lines={name: to(line) for name, line in summary.global_lines.items()},
        classes={name: klass(info) for name, info in summary.classes.items()},
        functions={name: function(info) for name, info in summary.functions.items()},
        calls=map_call_lines(summary.calls, to, value),
        stores=[replace(store, line=to(store.line), base=value(store.base), value=value(store.value))
                for store in summary.stores],
        entries=[replace(entry, line=to(entry.line), value=value(entry.value)) for entry in summary.entries],
        conventions=conventions,
        compiled=[(function, to(line), value(v)) for function, line, v in summary.compiled],
        globals={name: value(v) for name, v in summary.globals.items()},
        captured=[to(line) for line in summary.captured],
    )


def map_call_lines(calls: Iterable[CallSite], to: Callable[[int], int],
                   value: Callable[[Value], Value] | None = None) -> list[CallSite]:
    """Call sites with every line number `n` they record replaced by `to(n)` (see `map_lines`)."""
    if value is None:
        value = functools.partial(_map_value_lines, to=to, mapped={})
    return [replace(call, line=to(call.line), func=value(call.func), args=tuple(value(a) for a in call.args),
                    kwargs=tuple((k, value(v)) for k, v in call.kwargs)) for call in calls]


def _map_value_lines(value: Value, to: Callable[[int], int], mapped: dict[int, Value]) -> Value:
    """`value` with the line of every device test in it (`("on", ..., line)`) replaced by `to(line)`.
    `mapped`: the values mapped so far, by `id` (they are alive: the summary holds them)."""
    if not isinstance(value, tuple) or not value:
        return value
    found = mapped.get(id(value))
    if found is not None:
        return found
    if len(value) == 6 and value[0] == "on" and isinstance(value[5], int):
        out: Value = ("on", _map_value_lines(value[1], to, mapped), *value[2:5], to(value[5]))
    else:
        out = tuple(_map_value_lines(part, to, mapped) for part in value)
    mapped[id(value)] = out
    return out


# ==========================================================================================
# Building
# ==========================================================================================


def summarize(source: str | bytes, path: str, module: str, is_package: bool = False) -> ModuleSummary:
    """The summary of one module's text; a file that does not parse gives an empty summary with `error`."""
    summary = ModuleSummary(path=path, module=module, is_package=is_package)
    from sync_lint.discovery import template_named

    summary.generated_from = template_named(source if isinstance(source, bytes) else source[:1024].encode())
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        summary.error = f"{type(exc).__name__}: {exc}"
        return summary
    text = source if isinstance(source, str) else source.decode("utf-8", "replace")
    try:
        _Summarizer(summary, has_walrus=":=" in text, text=text).module(tree)
        summary.mentions, summary.function_mentions, summary.value_mentions = \
            module_mentions(tree, list(_module_statements(tree.body)))
    except RecursionError:
        summary.error = "too deeply nested to summarise"
    return summary


def dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


# An annotation's entry for the type of a container's elements (`list[Batch]` -> ("list", "[]Batch")):
# the values of a mapping, the elements of a sequence or set, of a `tuple[X, ...]`.
ELEMENT = "[]"


def _holds_with_a_gpu(test: ast.expr) -> bool:
    """A flag true wherever pinned memory exists (`PIN_MEMORY`, `is_pin_memory_available()`)."""
    return pins_where_available(dotted(test.func if isinstance(test, ast.Call) else test))


def _holds_a_list(value: Value) -> bool:
    """Whether a value is (or may be) a list display or comprehension, which `.append` grows."""
    if value[0] == "join":
        return any(_holds_a_list(v) for v in value[1])
    return value[0] in ("tuple", "listof") or value == ("lit", "list")


def _holds_a_dict(value: Value) -> bool:
    """Whether a value is (or may be: `d = None`, then `d = {}` in a branch) a dict display, or `dict()`,
    which stores into it fill."""
    if value[0] == "join":
        return any(_holds_a_dict(v) for v in value[1])
    return value[0] == "dict" or value == ("call", ("name", "dict"), (), ())


def _with_stores(value: Value, stored: list[tuple[str | None, Value]]) -> Value:
    """The dict `value` (each dict of a join) holding what was `stored` into it, by key."""
    if value[0] == "join":
        return ("join", tuple(_with_stores(v, stored) if _holds_a_dict(v) else v for v in value[1]))
    entries: dict[str | None, Value] = dict(value[1]) if value[0] == "dict" else {}
    for key, element in stored:
        entries[key] = join([entries[key], element]) if key in entries else element
    return ("dict", tuple(entries.items()))


def _declared_mapping(node: ast.AnnAssign) -> tuple[str, ...] | None:
    """The annotation of `name: dict[K, V] = {}`, an empty mapping declared with the type of its values
    (`("dict", "[]V")`); None for any other annotated assignment. Lists are left to their appends, which
    say more (which device) than `list[Tensor]`."""
    if node.value is None or not _empty_container(node.value):
        return None
    declared = annotation_types(node.annotation)
    containers = {t.rsplit(".", 1)[-1] for t in declared if not t.startswith(ELEMENT)}
    if not containers or not containers <= MAPPING_TYPES or not any(t.startswith(ELEMENT) for t in declared):
        return None
    return declared


def _empty_container(node: ast.expr) -> bool:
    """`{}`, `[]`, `dict()`, `defaultdict(list)`, `OrderedDict()`: a container with nothing in it yet."""
    if isinstance(node, ast.Dict):
        return not node.keys
    if isinstance(node, ast.List):
        return not node.elts
    if isinstance(node, ast.Call) and not node.keywords:
        name = (dotted(node.func) or "").rsplit(".", 1)[-1]
        return name in EMPTY_CONTAINERS and not node.args or name == "defaultdict"
    return False


def _element_annotation(container: str, index: ast.AST) -> ast.AST | None:
    """The annotation of the elements of `container[index]`, when it has one kind of element."""
    items = index.elts if isinstance(index, ast.Tuple) else [index]
    if container in SEQUENCE_TYPES and len(items) == 1:
        return items[0]
    if container in MAPPING_TYPES and len(items) == 2:
        return items[1]
    if container in ("tuple", "Tuple") and len(items) == 2 and isinstance(items[1], ast.Constant) \
            and items[1].value is Ellipsis:
        return items[0]
    return None


def annotation_types(node: ast.AST | None) -> tuple[str, ...]:
    """The type names an annotation allows, `Optional`/`Union`/`| None`/strings unwrapped.

    `Optional[torch.Tensor]` -> ("torch.Tensor",); `ForwardBatch | None` -> ("ForwardBatch",);
    `"ForwardBatch"` -> ("ForwardBatch",); `List[torch.Tensor]` -> ("List", "[]torch.Tensor"): a
    container's one kind of element follows it, marked with `ELEMENT`.
    """
    if node is None:
        return ()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return ()
    if isinstance(node, ast.Constant) and node.value is None:
        return ()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return annotation_types(node.left) + annotation_types(node.right)
    if isinstance(node, ast.Subscript):
        head = dotted(node.value) or ""
        last = head.rsplit(".", 1)[-1]
        if last in ("Optional", "Union"):
            inner = node.slice
            elements = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return tuple(t for e in elements for t in annotation_types(e))
        if last == "Annotated":
            inner = node.slice
            first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
            return annotation_types(first)
        element = _element_annotation(last, node.slice)
        elements = tuple(ELEMENT + t for t in annotation_types(element) if not t.startswith(ELEMENT)) \
            if element is not None else ()
        return ((head,) if head else ()) + elements
    name = dotted(node)
    return (name,) if name else ()


def _nested_types(types: tuple[str, ...], qualname: str, nested: set[str]) -> tuple[str, ...]:
    """Type names spelled in the body of class `qualname`, where the short name of a class nested
    in it (`chunked: Chunked | None`) denotes that class: qualified through the outer class, as a
    name of the module would be."""

    def qualify(type_name: str) -> str:
        marker = ELEMENT if type_name.startswith(ELEMENT) else ""
        name = type_name[len(marker):]
        return f"{marker}{qualname}.{name}" if name.partition(".")[0] in nested else type_name

    return tuple(qualify(t) for t in types) if nested else types


@dataclass(frozen=True)
class _Place:
    """Where a statement stands in its scope's body: for each block from the body down, (the block,
    the statement's index in it, whether that statement is a loop); and its order in the body."""

    path: tuple[tuple[int, int, bool], ...]
    order: int

    def dominates(self, other: "_Place") -> bool:
        """Whether this statement runs before `other` on every way to it: it precedes `other`, or a
        statement holding `other`, in one block."""
        depth = len(self.path) - 1
        if depth >= len(other.path) or self.path[:depth] != other.path[:depth]:
            return False
        block, index, _loop = self.path[depth]
        other_block, other_index, _other_loop = other.path[depth]
        return block == other_block and index < other_index

    def loops_without(self, start: "_Place | None") -> list[tuple[tuple[int, int, bool], ...]]:
        """The loops holding this statement (itself included) that do not hold `start`."""
        return [self.path[:depth + 1] for depth, (_block, _index, loop) in enumerate(self.path)
                if loop and (start is None or start.path[:depth + 1] != self.path[:depth + 1])]


class _Scope:
    """A function's local names: each with every value it is given, and where."""

    def __init__(self, qualname: str | None, params: set[str], class_name: str | None) -> None:
        self.qualname = qualname
        self.params = params
        self.class_name = class_name
        self.assigned: dict[str, list[tuple[str, object]]] = {}
        self.places: dict[str, list[_Place | None]] = {}  # beside `assigned`: None when not one statement's
        self.statements: dict[int, _Place] = {}  # id(statement) -> its place
        self.blocks: dict[int, list[ast.stmt]] = {}  # id(block) -> the block (what a place's path names)
        self.reaching: dict[tuple[str, int], Value] = {}  # (name, which assignment) -> its value
        # id(block) -> the parameter whose being None the block runs on (`if x is None:`'s body, `if x is
        # not None:`'s `else`), for fallbacks (`_fallbacks`).
        self.none_blocks: dict[int, str] = {}
        self.fallbacks: dict[tuple[str, tuple[int, ...]], Value] = {}
        self.joined: dict[tuple[str, tuple[int, ...]], Value] = {}  # `_joined_reaching`'s answers
        self.globals: set[str] = set()
        # The stores of names the function declares `global` (a module's singleton set on first use):
        # (name, how, source, place), read once the function is summarised (`_function_globals`).
        self.global_stores: list[tuple[str, str, object, "_Place | None"]] = []
        # name -> what `name.append(v)` / `.extend(vs)` / `.insert(i, v)` add to it in this function.
        # `.append`/`.extend`/`.insert` by method name; a subscript store as ("store", key).
        self.added: dict[str, list[tuple[str | tuple[str, str | None], ast.expr, "_Place | None"]]] = {}
        self._added_values: dict[tuple[str, str], list] = {}
        self._resolved: dict[str, Value] = {}
        self._resolving: set[str] = set()
        self._first: dict[str, Value] = {}  # while a name is resolved: its first source that does not read it
        # name -> `("fieldsof", self, method, args, kwargs)` for a dict that a loop over `fields(self)` fills
        # with each field moved by `method` (`_field_copies`).
        self.field_copies: dict[str, Value] = {}
        # The function a nested function is defined in: the names it assigns are the nested one's free
        # names (`compute = partial(f, k=v)`, then `def step(x): return compute(x)`).
        self.enclosing: _Scope | None = None

    def assign(self, name: str, how: str, source: object, place: "_Place | None" = None) -> None:
        """`place`: the statement that binds the name whenever it runs (None: a binding that may or may
        not happen when its statement runs, or at another time: a loop target, a walrus, `except as`)."""
        if name not in self.globals:
            self.assigned.setdefault(name, []).append((how, source))
            self.places.setdefault(name, []).append(place)
        elif self.qualname is not None:
            self.global_stores.append((name, how, source, place))


class _Summarizer:
    def __init__(self, summary: ModuleSummary, has_walrus: bool = True, text: str | None = None) -> None:
        self.s = summary
        self.scope = _Scope(None, set(), None)  # the module scope
        self.loop_depth = 0
        self.self_reads = 0  # how often a name was read inside its own value
        self.has_walrus = has_walrus
        self.generator = False  # set when the walk meets a `yield` in the current function
        # Inside `with torch.device(d):` a factory without `device=` allocates on `d`.
        self.default_device: ast.expr | None = None
        self.contexts: list[str] = []  # the `with` context managers around the current statement
        self.loops: list[tuple[int, int]] = []  # the loops of the current function
        self.predicate_arms: list[tuple[int, int, str]] = []  # the current function's (`FunctionInfo`)
        self.lines = text.splitlines() if text is not None else []
        # Whether a method may copy its dataclass's fields (`_field_copies`): most modules never call `fields`.
        self.mentions_fields = text is None or "fields(" in text
        self._path: list[tuple[int, int, bool]] = []  # pass 1: the place of the statement being collected
        self._at: _Place | None = None
        # A module global -> the values functions store into it (`global x; x = X()`), with their lines.
        self.function_globals: dict[str, list[tuple[Value, int]]] = {}
        self.use: tuple[_Scope, _Place | None] | None = None  # pass 2: the statement being read, and its scope
        self._chain = 0  # assignments whose values are being read, one inside the other
        # What the device tests around the statement prove (`if x.device.type == "cpu":`): a name or
        # dotted name -> (device, how, the test as the evidence reads it, its line); see `_device_tests`.
        self.narrowed: dict[str, tuple[str, str, str, int]] = {}
        # The variables of the comprehensions around the expression being read: `u` in
        # `[torch.cat([u, pad]) for u in masks]` is an element of `masks`, not a name of the function.
        self.comprehension_names: dict[str, Value] = {}
        # Names an `isinstance` test around the statement proves are no tensors (`else:` of
        # `if isinstance(o, torch.Tensor):`, the arm of `isinstance(o, dict)`), with the test's line.
        self.not_tensors: dict[str, int] = {}
        self.type_tested: frozenset[str] = frozenset()  # the names an `isinstance` test around it checks

    # --- module ---------------------------------------------------------------------------
    def module(self, tree: ast.Module) -> None:
        self._collect(tree.body, self.scope)
        self._body(tree.body, self.scope, class_name=None, prefix="")
        self.use = None  # a global's value is what every function reading it may see
        for name, sources in self.scope.assigned.items():
            if name in self.s.classes or name in self.s.functions:
                continue
            self.s.globals[name] = self._name_value(name, self.scope)
        for name, stored in self.function_globals.items():
            if name in self.s.classes or name in self.s.functions:
                continue
            # DeepSpeed's `ds_accelerator = None`, set by `get_accelerator()` to the platform's
            # accelerator object on first use: every function reading the global may see either.
            module_value = self.s.globals.get(name)
            self.s.globals[name] = join([*([module_value] if module_value is not None else []),
                                         *(value for value, _line in stored)])
            if module_value is None:
                self.s.global_lines.setdefault(name, min((line for _value, line in stored if line), default=0))
        # Where each global is first bound (evidence points there).
        for node in sorted(_module_statements(tree.body), key=lambda n: n.lineno):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
            else:
                continue
            for name in names:
                if name in self.s.globals:
                    self.s.global_lines.setdefault(name, node.lineno)

    # --- pass 1: what each scope binds ------------------------------------------------------
    def _collect(self, body: list[ast.stmt], scope: _Scope) -> None:
        saved = self._at
        scope.blocks[id(body)] = body
        for index, statement in enumerate(body):
            self._path.append((id(body), index, isinstance(statement, _LOOPS)))
            self._at = scope.statements[id(statement)] = _Place(tuple(self._path), len(scope.statements))
            try:
                self._collect_statement(statement, scope)
            finally:
                self._path.pop()
        self._at = saved

    def _collect_statement(self, node: ast.stmt, scope: _Scope) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._collect_target(target, ("value", (node.value, self.default_device)), scope, self._at)
        elif isinstance(node, ast.AnnAssign):
            declared = _declared_mapping(node)
            if declared is not None and isinstance(node.target, ast.Name):
                # `attn_metadata: dict[str, FlashAttentionMetadata] = {}`, filled through keys known only at
                # run time (`attn_metadata[layer_name] = ...`): the declaration says what its entries are.
                scope.assign(node.target.id, "decl", declared, self._at)
            elif node.value is not None:
                self._collect_target(node.target, ("value", (node.value, self.default_device)), scope, self._at)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                scope.assign(node.target.id, "aug", node, self._at)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            iterated = self._enumerated(node)
            if iterated is not None:
                # `for i, layer in enumerate(self.layers)`: `layer` is an element of `self.layers` itself,
                # so a call of it is a call of a layer (as in `for layer in self.layers`).
                index, element = node.target.elts  # type: ignore[attr-defined]
                self._collect_target(index, ("item", (("iter", node.iter), 0)), scope)
                self._collect_target(element, ("iter", iterated), scope)
            elif (zipped := self._zipped(node)) is not None:
                # `for x, m in zip(xs, masks)`: each name is an element of its own iterable.
                for element, iterable in zip(node.target.elts, zipped):  # type: ignore[attr-defined]
                    self._collect_target(element, ("iter", iterable), scope)
            else:
                self._collect_target(node.target, ("iter", node.iter), scope)
            self._collect(node.body, scope)
            self._collect(node.orelse, scope)
        elif isinstance(node, (ast.While, ast.If)):
            if isinstance(node, ast.If):
                tested = _compared_with_none(node.test)
                if tested is not None and tested[0] in scope.params:
                    scope.none_blocks[id(node.body if tested[1] else node.orelse)] = tested[0]
            self._collect(node.body, scope)
            self._collect(node.orelse, scope)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._collect_target(item.optional_vars, ("value", (item.context_expr, self.default_device)), scope)
            saved = self.default_device
            self.default_device = self._device_context(node, scope) or saved
            self._collect(node.body, scope)
            self.default_device = saved
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self._collect(node.body, scope)
            for handler in node.handlers:
                if handler.name:
                    scope.assign(handler.name, "unknown", None)
                self._collect(handler.body, scope)
            self._collect(node.orelse, scope)
            self._collect(node.finalbody, scope)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                self._collect(case.body, scope)
        elif isinstance(node, ast.Assert):
            asserted = _asserted_class(node.test)
            if asserted is not None and asserted[0] in scope.assigned:
                # `attn_metadata = attn_metadata[self.prefix]`, then `assert isinstance(attn_metadata,
                # GDNAttentionMetadata)`: from here on an object of that class.
                scope.assign(asserted[0], "decl", asserted[1], self._at)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self._collect_import(node, scope)
        elif isinstance(node, ast.Expr) and scope.qualname is not None:
            self._collect_list_add(node.value, scope)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            scope.globals.update(node.names)
            for name in node.names:
                scope.assigned.pop(name, None)
                scope.places.pop(name, None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.assign(node.name, "def", node, self._at)
            if not isinstance(node, ast.ClassDef) and scope.qualname is not None:
                self._collect_nonlocal(node, scope)
        # Walrus targets inside expressions bind in the enclosing function.
        if self.has_walrus:
            for child in _expressions_of(node):
                for sub in _walk_expression(child):
                    if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                        scope.assign(sub.target.id, "value", (sub.value, self.default_device))

    def _collect_list_add(self, node: ast.expr, scope: _Scope) -> None:
        """`out.append(v)` (or `.extend(vs)`, `.insert(i, v)`) on a local name: the list holds what was
        added, wherever it goes (`return out`, `f(out)`), as the binder says within the function."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _LIST_ADDS
                and isinstance(node.func.value, ast.Name) and not node.keywords
                and not any(isinstance(a, ast.Starred) for a in node.args)):
            return
        method = node.func.attr
        if len(node.args) == (2 if method == "insert" else 1):
            scope.added.setdefault(node.func.value.id, []).append((method, node.args[-1], self._at))

    def _filled(self, name: str, value: Value, scope: _Scope, added: list) -> Value:
        """A local dict (`out = {}`, `dict()`, a display) with what `out[key] = v` stores into it anywhere
        in the function: `("dict", entries)`, an entry's key None where it is known only at run time
        (a loop over another dict's items), as the binder's dicts are."""
        stored = [entry for entry in added if isinstance(entry[0], tuple)]
        if not stored:
            return value
        return _with_stores(value, self._added_values_of(name, "stores", scope, stored,
                                                         lambda how, element: (how[1], element)))

    def _added_values_of(self, name: str, kind: str, scope: _Scope, entries: list,
                         read: Callable[[object, Value], object]) -> list:
        """`read(how, value)` for each value added to the local `name` (`entries` of `scope.added`), each
        read where it is added, from a fresh depth as `_reaching` does: it is kept for every read, and
        one cut short under a deep first read would be cut for all. Memoised per name and `kind`."""
        cached = scope._added_values.get((name, kind))
        if cached is not None:
            return cached
        added = scope.added[name]
        saved_use = self.use
        del scope.added[name]  # while they are read: a value added may read the container itself
        resolved = name in scope._resolved  # ... and would leave its ungrown value there
        try:
            cached = []
            for how, node, place in entries:
                self.use = (scope, place)
                cached.append(read(how, self.value(node, scope, 0)))
        finally:
            self.use = saved_use
            scope.added[name] = added
            if not resolved:
                scope._resolved.pop(name, None)
        scope._added_values[(name, kind)] = cached
        return cached

    def _collect_nonlocal(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope) -> None:
        """A nested function's `nonlocal x; x = v` assigns the enclosing function's `x`."""
        names: set[str] = set()
        assignments: list[ast.Assign | ast.AnnAssign] = []
        for child in _walk_statements(node.body):
            if isinstance(child, ast.Nonlocal):
                names.update(child.names)
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and child.value is not None:
                assignments.append(child)
        for assignment in assignments:
            targets = assignment.targets if isinstance(assignment, ast.Assign) else [assignment.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names or isinstance(target, (ast.Tuple, ast.List)):
                    self._collect_target_named(target, ("value", (assignment.value, self.default_device)), scope,
                                               names)

    def _collect_target_named(self, target: ast.expr, source: tuple[str, object], scope: _Scope,
                              names: set[str]) -> None:
        if isinstance(target, ast.Name):
            if target.id in names:
                scope.assign(target.id, source[0], source[1])
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                if not isinstance(element, ast.Starred):
                    self._collect_target_named(element, ("item", (source, index)), scope, names)

    def _collect_target(self, target: ast.expr, source: tuple[str, object], scope: _Scope,
                        place: _Place | None = None) -> None:
        if isinstance(target, ast.Name):
            scope.assign(target.id, source[0], source[1], place)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self._collect_target(element.value, ("unknown", None), scope, place)
                else:
                    self._collect_target(element, ("item", (source, index)), scope, place)
        elif isinstance(target, ast.Starred):
            self._collect_target(target.value, ("unknown", None), scope, place)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and source[0] == "value" \
                and scope.qualname is not None:
            # `out[k] = v.to(device)` into a local dict: it holds what was stored (`_grown`), as the
            # binder says within the function.
            key = target.slice.value if isinstance(target.slice, ast.Constant) and \
                isinstance(target.slice.value, str) else None
            value_node = source[1][0]  # type: ignore[index]
            scope.added.setdefault(target.value.id, []).append((("store", key), value_node, place or self._at))

    def _collect_import(self, node: ast.Import | ast.ImportFrom, scope: _Scope) -> None:
        if scope.qualname is None and isinstance(node, ast.Import):
            self.s.loaded.extend(alias.name for alias in node.names if not alias.asname and "." in alias.name)
        for local, target in self._import_targets(node):
            if local == "*":
                if scope.qualname is None:
                    self.s.star_imports.append(target)
                continue
            if scope.qualname is None:
                self.s.imports[local] = target
            else:
                self.s.local_imports[(scope.qualname, local)] = target
            scope.assign(local, "import", target, self._at)

    def _import_targets(self, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out.append((alias.asname, alias.name))
                else:
                    head = alias.name.split(".")[0]
                    out.append((head, head))
            return out
        base = node.module or ""
        if node.level:
            parts = self.s.module.split(".") if self.s.module else []
            # A package's own module name is the package; a plain module's parent is its package.
            keep = len(parts) - node.level + (1 if self.s.is_package else 0)
            if keep < 0:
                return out
            base = ".".join([*parts[:keep], *([base] if base else [])])
        for alias in node.names:
            if alias.name == "*":
                out.append(("*", base))
            else:
                out.append((alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name))
        return out

    # --- resolving names --------------------------------------------------------------------
    def _name_value(self, name: str, scope: _Scope, level: int = 0) -> Value:
        """What a name stands for in `scope`: a comprehension's variable, a parameter, the join of what it
        is assigned, or a global."""
        if not self.comprehension_names:
            return self._scope_name_value(name, scope, level)
        bound = self.comprehension_names.get(name)
        if bound is not None:
            return bound
        # The sources of a local are read where they are assigned, outside the comprehension.
        saved, self.comprehension_names = self.comprehension_names, {}
        try:
            return self._scope_name_value(name, scope, level)
        finally:
            self.comprehension_names = saved

    def _scope_name_value(self, name: str, scope: _Scope, level: int) -> Value:
        if name in scope.globals:
            return ("name", name)
        if name in scope.params and name not in scope.assigned:
            return ("param", name)
        sources = scope.assigned.get(name)
        if sources is None:
            if scope.enclosing is not None and name not in scope.params and level <= MAX_DEPTH:
                return self._free_name_value(name, scope.enclosing, level)
            return ("name", name)
        if self.use is not None and self.use[0] is scope and self.use[1] is not None and level <= MAX_DEPTH:
            reaching = self._reaching(name, scope, self.use[1], level)
            if reaching is not None:
                return self._grown(name, reaching, scope, level)
        cached = scope._resolved.get(name)
        if cached is not None:
            return cached
        if name in scope._resolving:
            # `x = x.to(device)`, `t = t.pin_memory()`: the name read inside its own value stands for
            # what it held first (its first source that does not read itself), or the parameter.
            self.self_reads += 1
            first = scope._first.get(name)
            if first is not None:
                return first
            return ("param", name) if name in scope.params else UNKNOWN
        if level > MAX_DEPTH:
            return UNKNOWN
        scope._resolving.add(name)
        saved_use = self.use
        try:
            values = []
            for (how, source), place in zip(sources, scope.places[name]):
                self_reads = self.self_reads
                self.use = (scope, place)  # a source is read where it is assigned
                value = self._source_value(how, source, scope, level + 1)
                values.append(value)
                if name not in scope._first and self.self_reads == self_reads and _size(value, _SMALL) <= _SMALL:
                    scope._first[name] = value
            if name in scope.params:
                values.append(("param", name))
            result = join(values)
        finally:
            self.use = saved_use
            scope._resolving.discard(name)
            scope._first.pop(name, None)
        result = self._grown(name, result, scope, level)
        scope._resolved[name] = result
        return result

    def _grown(self, name: str, value: Value, scope: _Scope, level: int) -> Value:
        """`value` of a local list, joined with what the function adds to it anywhere (`.append`,
        `.extend`, `.insert`): `out = []` with `out.append(torch.zeros(n, device=d))` in a loop is a
        list of GPU tensors where it is returned or passed on. Only a list display or comprehension
        grows: `out = torch.tensor(out)` after the appends is a new object."""
        added = scope.added.get(name)
        if not added or level > MAX_DEPTH:
            return value
        if _holds_a_dict(value):
            return self._filled(name, value, scope, added)
        if not _holds_a_list(value):
            return value
        appended = [entry for entry in added if entry[0] in _LIST_ADDS]
        if not appended:
            return value
        grown = self._added_values_of(
            name, "appends", scope, appended, lambda how, element: ("listof", ("iter", element) if how == "extend" else element))
        return join([value, *grown])

    def _reaching(self, name: str, scope: _Scope, at: _Place, level: int) -> Value | None:
        """The value of the one assignment to `name` that must have run last before `at` (or the
        parameter, when none can have run); None when that is not known from the block structure."""
        places = scope.places[name]
        if None in places:
            return None
        last: int | None = None
        for index, place in enumerate(places):
            if place.dominates(at) and (last is None or place.order > places[last].order):  # type: ignore[union-attr]
                last = index
        start = places[last] if last is not None else None
        loops = at.loops_without(start)
        fallbacks: list[int] = []
        joined: list[int] = []  # besides `last`: the assignments that may run last before `at`
        for index, place in enumerate(places):
            if index == last:
                continue
            if start is not None and place.order < start.order:  # type: ignore[union-attr]
                continue  # overwritten by `start` before `at`
            if any(place.path[:len(loop)] == loop for loop in loops):  # type: ignore[union-attr]
                return None  # later in a loop that comes back to `at` without passing `start`
            if place.order < at.order:  # type: ignore[union-attr]
                if last is None and any(scope.none_blocks.get(block) == name for block, _i, _l in place.path):
                    fallbacks.append(index)  # `if x is None: x = ...` before `at`
                    continue
                if _overwritten(scope.blocks, place, at, name):  # type: ignore[arg-type]
                    continue  # rebound (or left) on every way from it to `at`, or in another arm
                joined.append(index)  # between them, in a branch: it may or may not have run
        if fallbacks:
            return None if joined else self._fallbacks(name, tuple(fallbacks), scope)
        if joined:
            # No one assignment runs last on every way to `at`, but these are the only ones that can:
            # `m = None` in one arm, `m = cpu_mask` then `if ...: m = None else: m = m.to(device)` in
            # the other reach it as `None` or the device copy, never as the host mask.
            if start is not None:
                if not _overwritten(scope.blocks, start, at, name):
                    joined.append(last)  # type: ignore[arg-type]
            elif name in scope.params and not _bound_before(scope.blocks, at, name):
                return None
            return self._joined_reaching(name, tuple(sorted(joined)), scope)
        if last is None:
            return ("param", name) if name in scope.params else None
        key = (name, last)
        cached = scope.reaching.get(key)
        if cached is not None:
            return cached
        if self._chain > MAX_DEPTH:
            return None  # a long chain of rebindings: the join
        how, source = scope.assigned[name][last]
        saved, self.use = self.use, (scope, start)
        self_reads = self.self_reads
        self._chain += 1
        try:
            # From a fresh depth, whatever the depth of the read: the value is kept for every read
            # it reaches, and one cut short under a deep read would be cut short for all of them.
            value = self._source_value(how, source, scope, 0)
        finally:
            self._chain -= 1
            self.use = saved
        if self.self_reads == self_reads:  # not a value cut short by a name read inside its own
            scope.reaching[key] = value
        return value

    def _joined_reaching(self, name: str, which: tuple[int, ...], scope: _Scope) -> Value | None:
        """The join of the values of these assignments to `name`, each read where it is made."""
        return self._joined_assignments(name, which, scope, scope.joined, fallback=False)

    def _fallbacks(self, name: str, which: tuple[int, ...], scope: _Scope) -> Value | None:
        """A parameter read after blocks that run only when it is None and rebind it there (`if x is
        None: x = torch.arange(n)`): the parameter, or each such value, marked as given only where the
        parameter is None (`unlessgiven`), so the index can drop it where every call passes one."""
        return self._joined_assignments(name, which, scope, scope.fallbacks, fallback=True)

    def _joined_assignments(self, name: str, which: tuple[int, ...], scope: _Scope,
                            memo: dict[tuple[str, tuple[int, ...]], Value], fallback: bool) -> Value | None:
        """The join of assignments `which` to `name`, each read where it is made (`fallback`: beside the
        parameter, each marked `unlessgiven`); remembered in `memo` unless a read inside was cut short."""
        key = (name, which)
        cached = memo.get(key)
        if cached is not None:
            return cached
        if self._chain > MAX_DEPTH:
            return None
        values: list[Value] = [("param", name)] if fallback else []
        saved = self.use
        self_reads = self.self_reads
        self._chain += 1
        try:
            for index in which:
                how, source = scope.assigned[name][index]
                self.use = (scope, scope.places[name][index])
                value = self._source_value(how, source, scope, 0)
                values.append(("unlessgiven", name, value) if fallback else value)
        finally:
            self._chain -= 1
            self.use = saved
        joined = join(values)
        if self.self_reads == self_reads:
            memo[key] = joined
        return joined

    def _free_name_value(self, name: str, enclosing: _Scope, level: int) -> Value:
        """A nested function's free name that the function around it assigns: what it may hold when the
        nested one runs (any of its values there: the nested one may run after each). A parameter of
        that function stays a name, which the index reads as the enclosing function's parameter."""
        if name not in enclosing.assigned:
            return self._name_value(name, enclosing, level + 1) if enclosing.enclosing is not None and \
                name not in enclosing.params else ("name", name)
        saved, self.use = self.use, None
        try:
            value = self._name_value(name, enclosing, level + 1)
        finally:
            self.use = saved
        return _params_as_names(value)

    def _source_value(self, how: str, source: object, scope: _Scope, level: int) -> Value:
        if how == "value":
            node, default = source  # type: ignore[misc]
            saved, self.default_device = self.default_device, default
            try:
                return self.value(node, scope, level)
            finally:
                self.default_device = saved
        if how == "iter":
            return ("iter", self.value(source, scope, level))  # type: ignore[arg-type]
        if how == "item":
            inner, index = source  # type: ignore[misc]
            whole = self._source_value(inner[0], inner[1], scope, level)
            if whole[0] == "tuple" and index < len(whole[1]):
                return whole[1][index]
            return ("item", whole, index)
        if how == "aug":
            node: ast.AugAssign = source  # type: ignore[assignment]
            # `loss /= num_steps` combines what `loss` held before it with the operand, read where the
            # statement runs: not the operand alone (a tensor divided by a count is no number).
            operands = (self.value(node.target, scope, level), self.value(node.value, scope, level))
            return ("op", operands, "bit") if isinstance(node.op, _BITWISE) else ("op", operands)
        if how == "import":
            return ("name", source)  # a qualified module or object name
        if how == "def":
            return ("name", source.name)  # type: ignore[attr-defined]
        if how == "decl":
            return ("decl", source)
        return UNKNOWN

    # --- pass 2: what each scope does ----------------------------------------------------------
    def _body(self, body: list[ast.stmt], scope: _Scope, class_name: str | None, prefix: str) -> None:
        saved, saved_types = self.narrowed, self.not_tensors
        off_cuda = 0  # the off-CUDA regions this block opened
        try:
            for index, statement in enumerate(body):
                self._statement(statement, scope, class_name, prefix)
                if isinstance(statement, ast.If) and not statement.orelse and _exits(statement.body):
                    # `if device.type != "cpu": return ...`: what follows runs only when the test failed.
                    self._narrow(_device_tests(statement.test)[1], body[index + 1:], statement.lineno)
                    self._not_tensors(_type_tests(statement.test)[1], body[index + 1:], statement.lineno)
                    after = self._off_cuda_contexts(statement.test)[1]  # `if x.is_cuda: return kernel(x)`
                    if after is not None:
                        self.contexts.append(after)
                        off_cuda += 1
                        self._predicate_arm(body[index + 1:], after)
        finally:
            self.narrowed, self.not_tensors = saved, saved_types
            del self.contexts[len(self.contexts) - off_cuda:]

    def _typed_return(self, value: Value, scope: _Scope) -> Value:
        """A return in code that runs only when a parameter is no tensor: none on a call that passes one
        (OLMo-core's `move_to_device(o, device)` ends in `else: return o`, after `isinstance(o, Tensor)`)."""
        for name, line in sorted(self.not_tensors.items()):
            if name in scope.params and name not in scope.assigned:
                value = ("on", value, name, "type", f"`{name}` is no tensor", line)
        return value

    def _not_tensors(self, names: list[str], region: list[ast.stmt], line: int) -> None:
        """Add the names an `isinstance` test (at `line`) proves are no tensors in `region`, except
        those `region` rebinds."""
        if names:
            rebound = _rebound(region)
            self.not_tensors = {**self.not_tensors, **{n: line for n in names if n not in rebound}}

    def _narrow(self, tests: list[tuple[str, str, str, str]], region: list[ast.stmt], line: int) -> None:
        """Add what `tests` (of the test at `line`) prove to the statements of `region`, except for
        names `region` rebinds."""
        if not tests:
            return
        rebound = _rebound(region)
        narrowed = dict(self.narrowed)
        for key, device, how, text in tests:
            if key in ("self", "cls"):
                continue  # `self.device.type == "cpu"` says where the module's device is, not that it is a tensor
            if key not in rebound and key.split(".", 1)[0] not in rebound:
                narrowed[key] = (device, how, text, line)
        self.narrowed = narrowed

    def _if(self, node: ast.If, scope: _Scope, class_name: str | None, prefix: str) -> None:
        when_true, when_false = _device_tests(node.test)
        untyped_true, untyped_false = _type_tests(node.test)
        holds, fails = self._off_cuda_contexts(node.test)
        saved, saved_types, saved_tested = self.narrowed, self.not_tensors, self.type_tested
        self.type_tested = saved_tested | _isinstance_names(node.test)
        try:
            self._narrow(when_true, node.body, node.lineno)
            self._not_tensors(untyped_true, node.body, node.lineno)
            self._arm(node.body, holds, scope, class_name, prefix)
            self.narrowed, self.not_tensors = saved, saved_types
            self._narrow(when_false, node.orelse, node.lineno)
            self._not_tensors(untyped_false, node.orelse, node.lineno)
            self._arm(node.orelse, fails, scope, class_name, prefix)
        finally:
            self.narrowed, self.not_tensors, self.type_tested = saved, saved_types, saved_tested

    def _arm(self, block: list[ast.stmt], context: str | None, scope: _Scope, class_name: str | None,
             prefix: str) -> None:
        if context is not None:
            self.contexts.append(context)
            self._predicate_arm(block, context)
        try:
            self._body(block, scope, class_name, prefix)
        finally:
            if context is not None:
                self.contexts.pop()

    def _predicate_arm(self, block: list[ast.stmt], context: str) -> None:
        if block and context != OFF_CUDA:  # the checked file reads the plain tests itself (`SyntaxMarks`)
            self.predicate_arms.append((block[0].lineno, _last_line(block), context))

    def _off_cuda_contexts(self, test: ast.expr) -> tuple[str | None, str | None]:
        """The contexts of the code where `test` holds and where it fails: `OFF_CUDA` where the test
        says that code runs off CUDA (`off_cuda_test`); for a call of a function that may be a predicate
        of it (`if use_torch_reference(buf.device):`), `off_cuda_if(name, result)`, which holds where the
        function's `off_cuda_result` is `result` (the index decides); else None."""
        found = off_cuda_test(test)
        if found is not None:
            return (OFF_CUDA, None) if found else (None, OFF_CUDA)
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        call = test.operand if negated else test  # type: ignore[attr-defined]
        if not isinstance(call, ast.Call):
            return None, None
        name = self._torch_name(call.func)
        if name is None or name.split(".", 1)[0] in ("self", "cls"):
            return None, None
        if "." not in name:  # a function of this module, or a builtin (`isinstance`)
            if name in _BUILTINS:
                return None, None
            name = f"{self.s.module}.{name}"
        return off_cuda_if(name, not negated), off_cuda_if(name, negated)

    def _statement(self, node: ast.stmt, scope: _Scope, class_name: str | None, prefix: str) -> None:
        saved = self.use
        self.use = (scope, scope.statements.get(id(node)))
        try:
            self._statement_in_place(node, scope, class_name, prefix)
        finally:
            self.use = saved

    def _statement_in_place(self, node: ast.stmt, scope: _Scope, class_name: str | None, prefix: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(node, scope, class_name, prefix)
            return
        if isinstance(node, ast.ClassDef):
            self._class(node, scope, prefix)
            return
        if isinstance(node, ast.Return) and node.value is not None and scope.qualname is not None:
            info = self.s.functions.get(scope.qualname)
            if info is not None:
                info.returns = (*info.returns, self._typed_return(self.value(node.value, scope), scope))
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self._stores(node, scope)
        loops = isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        for expression in _expressions_of(node):
            self._calls_in(expression, scope)
        if isinstance(node, (ast.With, ast.AsyncWith)):
            self._context_calls(node, scope)
        saved = self.default_device
        pushed = 0
        if isinstance(node, (ast.With, ast.AsyncWith)):
            self.default_device = self._device_context(node, scope) or saved
            for item in node.items:
                expression = item.context_expr
                # `with (nullcontext() if nccl else gpu_sync_allowed()):` names both context managers.
                for call in ((expression.body, expression.orelse) if isinstance(expression, ast.IfExp)
                             else (expression,)):
                    name = self._torch_name(call.func if isinstance(call, ast.Call) else call)
                    if name:
                        self.contexts.append(name)
                        pushed += 1
        if loops:
            self.loop_depth += 1
            if scope.qualname is not None:
                self.loops.append((node.lineno, node.end_lineno or node.lineno))
        if isinstance(node, ast.If):
            self._if(node, scope, class_name, prefix)
        else:
            for block in _blocks_of(node):
                self._body(block, scope, class_name, prefix)
        if loops:
            self.loop_depth -= 1
        if pushed:
            del self.contexts[-pushed:]
        self.default_device = saved

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, outer: _Scope, class_name: str | None,
                  prefix: str, construction: bool = False) -> FunctionInfo:
        if construction:  # see `construction_methods`: factories with no `device=` are on the builder's device
            saved_device, self.default_device = self.default_device, _BuiltOn(class_name or "")
            try:
                built = self._function(node, outer, class_name, prefix)
            finally:
                self.default_device = saved_device
            built.construction = True
            return built
        qualname = f"{prefix}{node.name}"
        decorators = tuple(d for d in (_decorator_name(x) for x in node.decorator_list) if d)
        accessors = (f"{node.name}.setter", f"{node.name}.deleter")
        accessor = next((d.rsplit(".", 1)[1] for d in decorators if d in accessors), None)
        if accessor is not None and qualname in self.s.functions:
            # A property's setter or deleter shares its name: the getter keeps it (reading the
            # attribute runs the getter), the accessor gets a name of its own.
            qualname = f"{qualname}.<{accessor}>"
        args = node.args
        params: list[Param] = []
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        scope = _Scope(qualname, {a.arg for a in (*positional, *args.kwonlyargs)}, class_name)
        if outer is not None and outer.qualname is not None and qualname.startswith(f"{outer.qualname}.<locals>."):
            scope.enclosing = outer
        if args.vararg:
            scope.params.add(args.vararg.arg)
        if args.kwarg:
            scope.params.add(args.kwarg.arg)
        saved_path, self._path = self._path, []
        self._collect(node.body, scope)
        self._path = saved_path
        if class_name is not None and positional and self.mentions_fields:
            scope.field_copies = {name: ("fieldsof", ("param", positional[0].arg), method,
                                         tuple(self.value(a, scope) for a in call.args),
                                         tuple((k.arg, self.value(k.value, scope)) for k in call.keywords if k.arg))
                                  for name, (method, call) in _field_copies(node.body, positional[0].arg).items()}
        for index, arg in enumerate(positional):
            kind = "posonly" if index < len(args.posonlyargs) else "pos"
            default = defaults[index]
            params.append(Param(arg.arg, kind, annotation_types(arg.annotation),
                                self.value(default, outer) if default is not None else None))
        if args.vararg:
            params.append(Param(args.vararg.arg, "star", (), None))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            params.append(Param(arg.arg, "kwonly", annotation_types(arg.annotation),
                                self.value(default, outer) if default is not None else None))
        if args.kwarg:
            params.append(Param(args.kwarg.arg, "starstar", (), None))
        info = FunctionInfo(
            qualname=qualname, name=node.name, line=node.lineno, end_line=node.end_lineno or node.lineno,
            params=tuple(params), returns=(), decorators=decorators, class_name=class_name,
            returns_annotation=annotation_types(node.returns), hot_marker=self._hot_marker(node),
        )
        self.s.functions[qualname] = info
        for decorator in node.decorator_list:
            self._calls_in(decorator, outer)
            op = _registered_op(decorator, node.name, self._torch_name)
            if op is not None and outer.qualname is None and class_name is None:
                self.s.custom_ops.setdefault(op, ("name", node.name))
        saved = self.loop_depth, self.generator, self.contexts, self.loops, self.narrowed, self.predicate_arms, \
            self.not_tensors, self.type_tested
        self.loop_depth, self.generator, self.contexts, self.loops, self.narrowed = 0, False, [], [], {}
        self.not_tensors, self.type_tested = {}, frozenset()
        self.predicate_arms = []
        self._body(node.body, scope, class_name=None, prefix=f"{qualname}.<locals>.")
        self._function_globals(scope)
        info.is_generator = self.generator
        info.loops = tuple(self.loops)
        info.predicate_arms = tuple(self.predicate_arms)
        named = {p.name for p in params if p.kind not in ("star", "starstar")}
        info.guards, info.truth_guards, info.none_guards = _guards(node.body, named)
        if args.vararg:
            info.count_guards = _count_guards(node.body, args.vararg.arg)
        info.branches = _branches(node.body, frozenset(named))
        info.off_cuda_result = _off_cuda_result(node.body)
        self.loop_depth, self.generator, self.contexts, self.loops, self.narrowed, self.predicate_arms, \
            self.not_tensors, self.type_tested = saved
        return info

    def _function_globals(self, scope: _Scope) -> None:
        """What the function stores into the module globals it declares `global`, as the module sees
        it: a value that reads the function's parameters says nothing outside the call, and is left out."""
        if scope.qualname is None or not scope.global_stores:
            return
        saved_use = self.use
        try:
            for name, how, source, place in scope.global_stores:
                self.use = (scope, place)
                value = self._source_value(how, source, scope, 1)
                if value != UNKNOWN and not _reads_a_param(value):
                    anchor = source[0] if how == "value" else source  # type: ignore[index]
                    self.function_globals.setdefault(name, []).append((value, getattr(anchor, "lineno", 0)))
        finally:
            self.use = saved_use

    def _hot_marker(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """`# sync-lint: hot` on the `def` line, a decorator line, or the line just above them."""
        if not self.lines:
            return False
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        body = node.body[0].lineno if node.body else node.lineno
        for row in range(max(first - 1, 1), min(body, len(self.lines) + 1)):
            line = self.lines[row - 1]
            if "sync-lint:" in line and _HOT_MARKER.search(line):
                if row == first - 1 and line.lstrip()[:1] != "#":
                    continue  # a comment at the end of the previous statement
                return True
        return False

    def _class(self, node: ast.ClassDef, outer: _Scope, prefix: str) -> None:
        qualname = f"{prefix}{node.name}"
        nested = {s.name for s in node.body if isinstance(s, ast.ClassDef)}
        fields: list[tuple[str, tuple[str, ...], Value | None, int]] = []
        attributes: list[tuple[str, Value, int]] = []
        methods: list[str] = []
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                default = self.value(statement.value, outer) if statement.value is not None else None
                declared = _nested_types(annotation_types(statement.annotation), qualname, nested)
                fields.append((statement.target.id, declared, default, statement.lineno))
            elif isinstance(statement, ast.Assign) and _attrs_field(statement.value) and \
                    len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
                # `lens = attr.ib()`: an attrs field without an annotation.
                default = next((k.value for k in statement.value.keywords if k.arg == "default"), None)  # type: ignore[attr-defined]
                fields.append((statement.targets[0].id, (), self.value(default, outer) if default is not None else None,
                               statement.lineno))
            elif isinstance(statement, ast.Assign):
                value = self.value(statement.value, outer)
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        attributes.append((target.id, value, statement.lineno))
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.append(statement.name)
        self.s.classes[qualname] = ClassInfo(
            qualname=qualname, name=node.name, line=node.lineno, end_line=node.end_lineno or node.lineno,
            # `Builder[FlashMeta]` derives from `Builder`: its type arguments say nothing of its methods.
            bases=tuple(self.value(b.value if isinstance(b, ast.Subscript) else b, outer) for b in node.bases),
            decorators=tuple(d for d in (_decorator_name(x) for x in node.decorator_list) if d),
            fields=tuple(fields), methods=tuple(methods), attributes=tuple(attributes),
        )
        built = construction_methods_ast(node)
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(statement, outer, qualname, prefix=f"{qualname}.", construction=statement.name in built)
            elif isinstance(statement, ast.ClassDef):
                self._class(statement, outer, prefix=f"{qualname}.")
            else:
                for expression in _expressions_of(statement):
                    self._calls_in(expression, outer)

    # --- stores and calls ---------------------------------------------------------------------
    def _stores(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign, scope: _Scope) -> None:
        if isinstance(node, ast.Assign):
            targets = node.targets
            value_node = node.value
        else:
            if node.value is None:
                return
            targets = [node.target]
            value_node = node.value
        if isinstance(node, ast.AnnAssign) and _empty_container(value_node):
            # `self.requests: dict[str, Request] = {}`: filled later through keys the summary cannot
            # follow, so the declaration is what says what the container holds.
            declared = annotation_types(node.annotation)
            if any(t.startswith(ELEMENT) for t in declared):
                self._store(node.target, value_node, scope, value=("decl", declared))
                return
        declared = annotation_types(node.annotation) if isinstance(node, ast.AnnAssign) else ()
        for target in targets:
            self._store(target, value_node, scope, augmented=isinstance(node, ast.AugAssign), declared=declared)

    def _device_context(self, node: ast.With | ast.AsyncWith, scope: _Scope) -> ast.expr | None:
        """`d` for `with torch.device(d):`, which makes factories allocate on `d`; `x.device` for `with
        x.device:` (a `torch.device` is a context manager of its own: SGLang built a batch's tensors under
        `with out_cache_loc.device:`); `dev` for `with dev:` where every value the function gives `dev` is
        one of those."""
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and call.args and self._torch_name(call.func) == "torch.device":
                return call.args[0]
            if _device_attribute(call):
                return call
            sources = scope.assigned.get(call.id) if isinstance(call, ast.Name) else None
            if sources and all(how == "value" and isinstance(source, tuple) and (
                    isinstance(source[0], ast.Call) and self._torch_name(source[0].func) == "torch.device"
                    or _device_attribute(source[0])) for how, source in sources):
                return call
        return None

    def _bind_comprehension(self, generator: ast.comprehension, scope: _Scope, level: int) -> None:
        """Bind a comprehension's variables as a `for` loop binds its targets (`_collect`), each to an
        element of what it iterates; a later `for` of the comprehension sees the earlier ones."""
        bound: dict[str, Value] = {}
        loop, target = generator.iter, generator.target
        whole = self.value(loop, scope, level)
        if _size(whole, _BOUND_ITERABLE) > _BOUND_ITERABLE:
            # Too large to copy into every read of the variable: transformers' gated delta rule rebinds
            # `query, key, value = [f(x) for x in (query, key, value)]` four times over, each copy holding
            # all the values before it, until one iterable counted over a million parts.
            return
        iterated = self._enumerated(generator)
        if isinstance(loop, ast.Call) and isinstance(loop.func, ast.Attribute) and loop.func.attr == "items" \
                and not loop.args and isinstance(target, ast.Tuple) and len(target.elts) == 2:
            # `{k: f(v, k) for k, v in outputs.items()}`: a key is no element of a model output's tensors
            # (transformers' Whisper compared each key with `==` and was told it tested a GPU tensor).
            self._bind_names(target.elts[0], UNKNOWN, bound)
            self._bind_names(target.elts[1], ("item", ("iter", whole), 1), bound)
        elif iterated is not None:
            index, element = target.elts  # type: ignore[attr-defined]
            self._bind_names(index, ("item", ("iter", whole), 0), bound)
            self._bind_names(element, ("iter", self.value(iterated, scope, level)), bound)
        elif (zipped := self._zipped(generator)) is not None:
            for element, iterable in zip(target.elts, zipped):  # type: ignore[attr-defined]
                self._bind_names(element, ("iter", self.value(iterable, scope, level)), bound)
        else:
            self._bind_names(target, ("iter", whole), bound)
        self.comprehension_names.update(bound)

    def _bind_names(self, target: ast.expr, value: Value, bound: dict[str, Value]) -> None:
        if isinstance(target, ast.Name):
            bound[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self._bind_names(element.value, UNKNOWN, bound)
                else:
                    self._bind_names(element, value[1][index] if value[0] == "tuple" and index < len(value[1])
                                     else ("item", value, index), bound)

    def _zipped(self, node: ast.For | ast.AsyncFor | ast.comprehension) -> list[ast.expr] | None:
        """The iterables of `for a, b in zip(xs, ys)` (the builtin, one name per iterable); None otherwise."""
        loop, target = node.iter, node.target
        if not (isinstance(loop, ast.Call) and isinstance(loop.func, ast.Name) and loop.func.id == "zip"
                and "zip" not in self.s.imports and not loop.keywords and isinstance(target, ast.Tuple)
                and len(target.elts) == len(loop.args) and len(loop.args) > 1):
            return None
        if any(isinstance(a, ast.Starred) for a in loop.args) or any(isinstance(e, ast.Starred) for e in target.elts):
            return None
        return list(loop.args)

    def _enumerated(self, node: ast.For | ast.AsyncFor | ast.comprehension) -> ast.expr | None:
        """`x` of `for i, element in enumerate(x)` (the builtin, not a name the module binds)."""
        loop, target = node.iter, node.target
        if isinstance(loop, ast.Call) and isinstance(loop.func, ast.Name) and loop.func.id == "enumerate" \
                and "enumerate" not in self.s.imports and len(loop.args) == 1 \
                and not isinstance(loop.args[0], ast.Starred) and isinstance(target, ast.Tuple) \
                and len(target.elts) == 2 and not any(isinstance(e, ast.Starred) for e in target.elts):
            return loop.args[0]
        return None

    def _torch_name(self, func: ast.expr) -> str | None:
        name = dotted(func)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self.s.imports.get(head, head)
        return f"{target}.{rest}" if rest else target

    def _store(self, target: ast.expr, value_node: ast.expr, scope: _Scope, augmented: bool = False,
               value: Value | None = None, declared: tuple[str, ...] = ()) -> None:
        if value is None:
            value = self.value(value_node, scope)
            if augmented:
                value = ("op", (value,))
        if isinstance(target, ast.Attribute):
            base = self.value(target.value, scope)
            self.s.stores.append(Store(scope.qualname, target.lineno, base, target.attr, value, self._owner(base, scope),
                                       declared))
        elif isinstance(target, ast.Subscript):
            key = target.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.s.entries.append(Entry(scope.qualname, target.lineno, key.value, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                if not isinstance(element, ast.Starred):
                    part = value[1][index] if value[0] == "tuple" and index < len(value[1]) else ("item", value, index)
                    self._store(element, value_node, scope, value=part)

    def _owner(self, base: Value, scope: _Scope) -> str | None:
        """The class whose instance `base` is, when it is the `self` of a method of that class."""
        info = self.s.functions.get(scope.qualname) if scope.qualname else None
        if info is None or info.class_name is None or info.kind != "method" or not info.params:
            return None
        return info.class_name if base == ("param", info.params[0].name) else None

    def _calls_in(self, expression: ast.expr, scope: _Scope) -> None:
        for node in _walk_expression(expression, _COMPREHENSIONS):
            kind = type(node)
            if kind in _COMPREHENSIONS:
                self._comprehension_calls(node, scope)  # type: ignore[arg-type]
            elif kind is ast.Call:
                self._call(node, scope)
                # `dict(key=value)`, and `fields.update(key=value)` (vLLM's multimodal field configs)
                if isinstance(node.func, ast.Name) and node.func.id == "dict" or \
                        isinstance(node.func, ast.Attribute) and node.func.attr == "update":
                    for keyword in node.keywords:
                        if keyword.arg is not None:
                            self.s.entries.append(Entry(scope.qualname, keyword.value.lineno, keyword.arg,
                                                        self.value(keyword.value, scope)))
            elif kind is ast.Dict:
                for key, item in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        self.s.entries.append(Entry(scope.qualname, key.lineno, key.value, self.value(item, scope)))
            elif kind is ast.Yield or kind is ast.YieldFrom:
                self.generator = True
                info = self.s.functions.get(scope.qualname) if scope.qualname is not None else None
                if info is not None and node.value is not None:
                    value = self.value(node.value, scope)
                    info.yields = (*info.yields, ("iter", value) if kind is ast.YieldFrom else value)

    def _comprehension_calls(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
                             scope: _Scope) -> None:
        """The calls of a comprehension, with its variables bound: `[self.layer(x) for x in xs]` passes an
        element of `xs`."""
        saved = self.comprehension_names
        self.comprehension_names = dict(saved)
        try:
            for generator in node.generators:
                self._calls_in(generator.iter, scope)
                self._bind_comprehension(generator, scope, 0)
                for test in generator.ifs:
                    self._calls_in(test, scope)
            for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
                self._calls_in(part, scope)
        finally:
            self.comprehension_names = saved

    def _context_calls(self, node: ast.With | ast.AsyncWith, scope: _Scope) -> None:
        """`with cm:` calls `type(cm).__enter__(cm)` on entry and `__exit__` on leaving (`__aenter__` and
        `__aexit__` for `async with`): call sites of both, on the item's line, made outside the block.
        A context manager of a library (`torch.no_grad()`) is left out, as its calls are."""
        names = CONTEXT_METHODS[isinstance(node, ast.AsyncWith)]
        for item in node.items:
            manager = self.value(item.context_expr, scope)
            for name in names:
                func = ("attr", manager, name)
                if not _external(func, self.s.imports):
                    self.s.calls.append(CallSite(scope.qualname, item.context_expr.lineno, func, (), (),
                                                 self.loop_depth, tuple(self.contexts)))

    def _device_params(self, node: ast.Call, scope: _Scope) -> None:
        devices = [k.value for k in node.keywords if k.arg == "device"]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "to" and node.args:
            devices.append(node.args[0])
        info = self.s.functions.get(scope.qualname) if devices and scope.qualname else None
        if info is None:
            return
        for device in devices:
            value = self.value(device, scope) if isinstance(device, (ast.Name, ast.Attribute)) else None
            if value is not None and value[0] == "param":
                info.device_params = (*info.device_params, (node.lineno, value[1]))
            elif value is not None and value[0] == "attr" and value[2] == "device" and value[1][0] == "param":
                info.placed_params = (*info.placed_params, (node.lineno, value[1][1]))

    def _launched_params(self, node: ast.Call, scope: _Scope, kernel_node: ast.expr) -> None:
        """`kernel[grid](x, cu_seqlens=cu_seqlens)`, or a call of a function that takes CUDA tensors only
        (`flash_attn_varlen_func(q, k, v, cu_seqlens_q, ...)`): the parameters handed to it, as they
        came. None of a launch behind a device test: vLLM's `mamba_get_block_table_tensor(block_table,
        seq_lens)` launches its kernel after `if not block_table.is_cuda: return <the CPU way>` (its CPU
        unit tests pass CPU tensors), so the launch proves nothing of either parameter on the other calls."""
        info = self.s.functions.get(scope.qualname) if scope.qualname else None
        if info is None or self.narrowed:
            return
        kernel = self.value(kernel_node, scope)
        for argument in (*node.args, *(k.value for k in node.keywords)):
            # Nor of one whose type a test around the launch tells apart (`if not isinstance(n, int):`).
            if isinstance(argument, ast.Name) and argument.id not in self.type_tested:
                value = self.value(argument, scope)
                if value[0] == "param":
                    info.launched_params = (*info.launched_params, (node.lineno, value[1], kernel))

    def _call(self, node: ast.Call, scope: _Scope) -> None:
        self._list_field_add(node, scope)
        if isinstance(node.func, ast.Subscript):
            self._launched_params(node, scope, node.func.value)
        elif self._torch_name(node.func) in CUDA_ONLY_FUNCTIONS:
            self._launched_params(node, scope, node.func)
        func = self.value(node.func, scope)
        info = self.s.functions.get(scope.qualname) if func[0] == "param" and scope.qualname else None
        by_cls = info is not None and info.kind == "classmethod" and bool(info.params) and \
            func[1] == info.params[0].name and info.class_name is not None and "." not in info.class_name
        if by_cls:
            # `cls(...)` in a classmethod: a constructor call of the class, filed under its name.
            func = ("name", info.class_name)
        if self._torch_name(node.func) == "dataclasses.replace":
            # Filed under its own name (not with every `str.replace`): it stores into a project class.
            func = ("name", "dataclasses.replace")
        self._device_params(node, scope)
        self._custom_op(node, scope)
        wrapped = self._wrapped_function(func)
        if wrapped is not None:
            # `step = torch.compile(step)` or `partial(loss_fn, mask)`, then `step(x)`: a call of the function
            # it wraps, with what the wrapper bound first (`functools.partial`) and then these arguments.
            target, bound_args, bound_kwargs = wrapped
            args, kwargs = self._arguments(node, scope)
            self.s.calls.append(CallSite(scope.qualname, node.lineno, target, (*bound_args, *args),
                                         (*bound_kwargs, *kwargs), self.loop_depth, tuple(self.contexts)))
            # (the call stays a call site of its own too: the hot paths name a `partial`'s edge so)
        runner = FUNCTION_RUNNERS.get(self._torch_name(node.func) or "")
        if runner is not None and node.args and not isinstance(node.args[0], ast.Starred):
            # `checkpoint(layer, hidden, mask, use_reentrant=False)` runs `layer(hidden, mask)`.
            args, kwargs = self._arguments(node, scope)
            self.s.calls.append(CallSite(scope.qualname, node.lineno, args[0], args[1:],
                                         tuple((k, v) for k, v in kwargs if k not in runner), self.loop_depth,
                                         tuple(self.contexts)))
            return
        if _external(func, self.s.imports) and not torch_op_name(self._torch_name(node.func)):
            if node.args and self._torch_name(node.func) in _COMPILERS:
                self.s.compiled.append((scope.qualname, node.lineno, self.value(node.args[0], scope)))
            return
        if func[0] == "name" and func[1] == "setattr" and len(node.args) == 3:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                base = self.value(node.args[0], scope)
                self.s.stores.append(Store(scope.qualname, node.lineno, base, name.value,
                                           self.value(node.args[2], scope), self._owner(base, scope)))
        elif func[0] == "attr" and func[2] in _MODULE_STATE_REGISTRATIONS and len(node.args) >= 2:
            # `self.register_buffer("inv_freq", t)` stores `t` as `self.inv_freq` (`nn.Module.__getattr__`
            # returns it), where it moves with the module: as `self.inv_freq = nn.Buffer(t)` would.
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.isidentifier():
                base = func[1]
                value = self.value(node.args[1], scope)
                held = value if value == NONE or _wraps_module_state(value) else \
                    ("call", ("name", "torch.nn.Buffer"), (value,), ())
                self.s.stores.append(Store(scope.qualname, node.lineno, base, name.value, held,
                                           self._owner(base, scope)))
        elif func[0] == "attr" and func[2] in _KEYWORD_REGISTRATIONS:
            base = func[1]
            for keyword in node.keywords:
                if keyword.arg is not None:
                    self.s.stores.append(Store(scope.qualname, node.lineno, base, keyword.arg,
                                               self.value(keyword.value, scope), self._owner(base, scope)))
        args, kwargs = self._arguments(node, scope)
        self.s.calls.append(CallSite(scope.qualname, node.lineno, func, args, kwargs, self.loop_depth,
                                     tuple(self.contexts), by_cls))
        if self.contexts and any(c in _CUDA_GRAPH_CONTEXTS for c in self.contexts):
            self.s.captured.append(node.lineno)
        if args and args[0][0] != "*" and self._torch_name(node.func) == "functools.partial":
            # `functools.partial(f, a, k=v)` passes `a` and `k` to `f`: a call site of `f` (the arguments
            # of later calls of the partial are not followed).
            self.s.calls.append(CallSite(scope.qualname, node.lineno, args[0], args[1:], kwargs, self.loop_depth,
                                         tuple(self.contexts)))

    def _arguments(self, node: ast.Call, scope: _Scope) -> tuple[tuple[Value, ...], tuple[tuple[str, Value], ...]]:
        """The values a call passes: positional (a `*x` as `("*", x)`), then keyword (`**x` under `"**"`)."""
        args = tuple(("*", self.value(a.value, scope)) if isinstance(a, ast.Starred) else self.value(a, scope)
                     for a in node.args)
        kwargs = tuple((k.arg if k.arg is not None else "**",
                        scope.field_copies[k.value.id] if k.arg is None and isinstance(k.value, ast.Name)
                        and k.value.id in scope.field_copies else self.value(k.value, scope)) for k in node.keywords)
        return args, kwargs

    def _wrapped_function(self, func: Value) -> tuple[Value, tuple[Value, ...], tuple[tuple[str, Value], ...]] | None:
        """For a callee that is a function wrapped by `torch.compile`, a `torch.func` transform or
        `functools.partial` (spelled in the call, or held by the local it calls): the function, and the
        arguments the wrapper binds before the call's own (only `partial` binds any). None otherwise."""
        if func[0] == "join":  # `step = torch.compile(step)` on one path: the wrapped function either way
            wrapped = [self._wrapped_function(option) for option in func[1]]
            found = {w[0] for w in wrapped if w is not None}
            if len(found) == 1 and all(w is None and option in found or w is not None and w[1:] == ((), ())
                                       for option, w in zip(func[1], wrapped)):
                return found.pop(), (), ()
            return None
        bound_args: tuple[Value, ...] = ()
        bound_kwargs: tuple[tuple[str, Value], ...] = ()
        unwrapped = False
        for _ in range(3):  # `grad_and_value(partial(f, k=v))`: a wrapper of a wrapper
            if func[0] != "call" or not func[2] or func[2][0][0] in ("*", "?"):
                break
            wrapper = self._qualified_value(func[1])
            if wrapper == "functools.partial":
                bound_args, bound_kwargs = (*func[2][1:], *bound_args), (*func[3], *bound_kwargs)
            elif wrapper not in FUNCTION_WRAPPERS:
                break
            func, unwrapped = func[2][0], True
        return (func, bound_args, bound_kwargs) if unwrapped else None

    def _qualified_value(self, value: Value) -> str | None:
        """`torch.compile` for the value of `torch.compile` (or of `compile` after `from torch import
        compile`), through the module's imports; None for a value that is no dotted name."""
        parts = dotted_parts(value)
        if parts is None:
            return None
        return ".".join([self.s.imports.get(parts[0], parts[0]), *parts[1:]])

    def _list_field_add(self, node: ast.Call, scope: _Scope) -> None:
        """`self.wrappers.append(w)` (or `.extend(ws)`, `.insert(i, w)`), in any method: the field is a list
        holding what was added, as a store `self.wrappers = [w]` would say (SGLang grows its FlashInfer
        wrappers this way, outside `__init__`). Lists a function builds for itself are the binder's."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in _LIST_ADDS and isinstance(func.value, ast.Attribute)
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            return
        added = node.args[1] if func.attr == "insert" and len(node.args) == 2 else \
            node.args[0] if func.attr != "insert" and len(node.args) == 1 else None
        if added is None:
            return
        value = self.value(added, scope)
        element = ("iter", value) if func.attr == "extend" else value
        base = self.value(func.value.value, scope)
        self.s.stores.append(Store(scope.qualname, node.lineno, base, func.value.attr, ("listof", element),
                                   self._owner(base, scope)))

    def _custom_op(self, node: ast.Call, scope: _Scope) -> None:
        """`direct_register_custom_op("x", f)`, `register_custom_op(f, op_name="x")`,
        `torch.library.custom_op("ns::x", f)`: `torch.ops.<ns>.x(...)` calls `f`."""
        name = self._torch_name(node.func)
        if name is None or not name.rsplit(".", 1)[-1].endswith(_REGISTERS):
            return
        keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        op_node = keywords.get("op_name", keywords.get("name"))
        func_node = keywords.get("op_func", keywords.get("fn"))
        if positional and isinstance(positional[0], ast.Constant):
            op_node = op_node or positional[0]
            func_node = func_node or (positional[1] if len(positional) > 1 else None)
        elif positional:
            func_node = func_node or positional[0]
        if func_node is None:
            return
        op = _op_name(op_node) if op_node is not None else (
            func_node.id if isinstance(func_node, ast.Name) else None)
        if op is not None:
            self.s.custom_ops.setdefault(op, self.value(func_node, scope))

    # --- expressions -----------------------------------------------------------------------
    def value(self, node: ast.expr | None, scope: _Scope, level: int = 0) -> Value:
        """The symbolic value of an expression in `scope`."""
        if node is None or level > MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, _BuiltOn):
            return ("built", node.owner)
        level += 1
        if self.narrowed and isinstance(node, (ast.Name, ast.Attribute)):
            key = dotted(node)
            found = self.narrowed.get(key) if key is not None else None
            if found is not None:
                inner = self._name_value(node.id, scope, level) if isinstance(node, ast.Name) else \
                    ("attr", self.value(node.value, scope, level), node.attr)
                return ("on", inner, *found)
        if isinstance(node, ast.Name):
            return self._name_value(node.id, scope, level)
        if isinstance(node, ast.Attribute):
            return ("attr", self.value(node.value, scope, level), node.attr)
        if isinstance(node, ast.Call):
            named = getattr_name(node)
            if named is not None:  # `getattr(batch, "seq_lens", None)`: the attribute
                return ("attr", self.value(node.args[0], scope, level), named)
            args = tuple(("*", self.value(a.value, scope, level)) if isinstance(a, ast.Starred)
                         else self.value(a, scope, level) for a in node.args)
            kwargs = tuple((k.arg if k.arg is not None else "**", self.value(k.value, scope, level))
                           for k in node.keywords)
            if self.default_device is not None and not any(k.arg == "device" for k in node.keywords):
                name = self._torch_name(node.func)
                if name is not None and name.startswith("torch.") and name[6:] in _FACTORIES:
                    kwargs = (*kwargs, ("device", self.value(self.default_device, scope, level)))
                elif isinstance(node.func, ast.Attribute) and node.func.attr in MODEL_LOADERS and \
                        not isinstance(self.default_device, _BuiltOn) and \
                        not any(k.arg == "device_map" for k in node.keywords):
                    # `with torch.device(d): model = AutoModel.from_pretrained(name)` loads the model onto `d`.
                    kwargs = (*kwargs, (BUILT_ON_KEY, self.value(self.default_device, scope, level)))
            return ("call", self.value(node.func, scope, level), args, kwargs)
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, (str, int)) and not isinstance(key.value, bool):
                key_value: Value = ("key", key.value)
            else:
                key_value = self.value(key, scope, level) if not isinstance(key, ast.Slice) else ("lit", "slice")
            return ("sub", self.value(node.value, scope, level), key_value)
        if isinstance(node, ast.Constant):
            v = node.value
            if v is None:
                return NONE
            if isinstance(v, bool):
                return ("lit", "bool", v)
            if isinstance(v, (int, float, complex)):
                return ("lit", "number")
            if isinstance(v, str) and len(v) <= 24:
                return ("lit", "str", v)  # short strings can be device names ("cuda:0")
            return ("lit", "str")
        if isinstance(node, ast.Compare) and (
                all(isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for op in node.ops) or
                any(isinstance(o, ast.Constant) and (o.value is None or isinstance(o.value, str))
                    or isinstance(o, ast.JoinedStr) for o in [node.left, *node.comparators])):
            # Identity and membership tests give a Python bool whatever their operands hold
            # (`self.prefix_len_ptr is not None` of a GPU tensor is not a GPU value), and so does a
            # comparison with None or a string (`target != None`, `device == "disk"`: a tensor does not
            # implement it, Python compares identities).
            return ("lit", "bool")
        if isinstance(node, ast.Compare):
            return ("op", tuple(self.value(o, scope, level) for o in [node.left, *node.comparators]), "cmp")
        if isinstance(node, ast.BinOp):
            operands = tuple(self.value(o, scope, level) for o in [node.left, node.right])
            return ("op", operands, "bit") if isinstance(node.op, _BITWISE) else ("op", operands)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return ("lit", "bool")
            operand = (self.value(node.operand, scope, level),)
            return ("op", operand, "bit") if isinstance(node.op, ast.Invert) else ("op", operand)
        if isinstance(node, ast.BoolOp):
            operands = [self.value(v, scope, level) for v in node.values]
            if isinstance(node.op, ast.And) and any(v[0] != "lit" for v in operands):
                return ("and", tuple(operands[-MAX_JOIN:]))
            return join(operands)
        if isinstance(node, ast.IfExp):
            if _holds_with_a_gpu(node.test):  # `cpu.pin_memory() if PIN_MEMORY else cpu`
                return self.value(node.body, scope, level)
            return join([self.value(node.body, scope, level), self.value(node.orelse, scope, level)])
        if isinstance(node, (ast.Tuple, ast.List)):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                return ("lit", "list")
            return ("tuple", tuple(self.value(e, scope, level) for e in node.elts))
        if isinstance(node, ast.Dict):
            entries = tuple((k.value, self.value(v, scope, level)) for k, v in zip(node.keys, node.values)
                            if isinstance(k, ast.Constant) and isinstance(k.value, str))
            return ("dict", entries)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.DictComp)):
            # Elements alike: `[torch.zeros(n, device=d) for _ in range(k)]` holds GPU tensors. A dict's
            # values alike, keys unknown: read back through `.values()`, `.items()`, `.get(k)`.
            saved = self.comprehension_names
            self.comprehension_names = dict(saved)
            try:
                for generator in node.generators:
                    self._bind_comprehension(generator, scope, level)
                return ("listof", self.value(node.value if isinstance(node, ast.DictComp) else node.elt,
                                             scope, level))
            finally:
                self.comprehension_names = saved
        if isinstance(node, ast.SetComp):
            return ("lit", "list")
        if isinstance(node, ast.Set):
            return ("lit", "set")
        if isinstance(node, ast.JoinedStr):
            return ("lit", "str")
        if isinstance(node, ast.NamedExpr):
            return self.value(node.value, scope, level)
        if isinstance(node, ast.Await):
            return self.value(node.value, scope, level)
        if isinstance(node, ast.Lambda):
            return ("lambda",)
        if isinstance(node, ast.Starred):
            return ("*", self.value(node.value, scope, level))
        return UNKNOWN


# `a & b`, `a | b`, `a ^ b` (and `~a`): a mask when an operand is one.
_BITWISE = (ast.BitAnd, ast.BitOr, ast.BitXor)

_HOT_MARKER = re.compile(r"#\s*sync-lint:\s*hot\b")
# Calls that hand a callable to a compiler or CUDA-graph capture: the callable is a hot root.
_COMPILERS = frozenset({"torch.compile", "torch.cuda.make_graphed_callables"})
_CUDA_GRAPH_CONTEXTS = frozenset({"torch.cuda.graph", "torch.cuda.graphs.graph"})
# The methods a `with` statement calls, by whether it is `async with`.
CONTEXT_METHODS = (("__enter__", "__exit__"), ("__aenter__", "__aexit__"))

# Calls that can never reach a function of the project: builtins and the libraries
# whose APIs the torch tables already describe. Leaving them out keeps summaries small.
_BUILTIN_CALLS = frozenset(
    "len isinstance issubclass print range enumerate zip int float bool str repr list tuple dict set "
    "frozenset sorted reversed min max sum any all abs round hasattr getattr id type format iter next "
    "open divmod hash callable map filter vars dir ord chr bytes bytearray super object".split()
)
_EXTERNAL_ROOTS = frozenset(
    "torch numpy math os sys re json time logging typing collections itertools dataclasses warnings inspect "
    "abc enum copy pathlib contextlib threading traceback random string textwrap pickle struct "
    "operator heapq bisect weakref uuid socket subprocess shutil tempfile argparse asyncio".split()
)


# Functions that register a custom operator with PyTorch, by the end of their name: vLLM's and SGLang's
# `direct_register_custom_op`, SGLang's `register_custom_op`, `torch.library.custom_op`.
_REGISTERS = "custom_op"
# Operator namespaces of PyTorch itself: their operators are not the project's.
TORCH_OP_NAMESPACES = frozenset({"aten", "prims", "prim", "quantized", "_c10d_functional", "c10d_functional",
                                  "_c10d_functional_autograd", "c10d", "profiler", "_quantized", "higher_order"})


_LIST_ADDS = frozenset({"append", "extend", "insert"})


def _op_name(node: ast.expr) -> str | None:
    """The operator a registration names: `"x"`, or `"ns::x"` (and `"ns::x.overload"`)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    name = node.value.rsplit("::", 1)[-1].split(".", 1)[0].split("(", 1)[0].strip()
    return name if name.isidentifier() else None


def _registered_op(decorator: ast.expr, function: str, torch_name: Callable[[ast.expr], str | None]) -> str | None:
    """The operator a decorator registers the function as: `@torch.library.custom_op("ns::x", ...)`,
    `@register_custom_op(...)` (named after the function unless `op_name=` says otherwise)."""
    call = decorator if isinstance(decorator, ast.Call) else None
    name = torch_name(call.func if call is not None else decorator)
    if name is None or not name.rsplit(".", 1)[-1].endswith(_REGISTERS):
        return None
    if call is None:
        return function
    named = [k.value for k in call.keywords if k.arg in ("op_name", "name")] or call.args[:1]
    if named and isinstance(named[0], ast.Constant):
        return _op_name(named[0])
    return function


def torch_op_name(name: str | None) -> str | None:
    """The operator `torch.ops.<ns>.<op>` (or `.<op>.<overload>`) calls, for a namespace not PyTorch's own."""
    if name is None or not name.startswith("torch.ops."):
        return None
    parts = name.split(".")
    if len(parts) not in (4, 5) or parts[2] in TORCH_OP_NAMESPACES:
        return None
    return parts[3]


def project_op_namespace(name: str) -> bool:
    """`torch.ops.<ns>` for a namespace not PyTorch's own: its operators may be the project's."""
    parts = name.split(".")
    return len(parts) == 3 and parts[0] == "torch" and parts[1] == "ops" and parts[2] not in TORCH_OP_NAMESPACES


def _params_as_names(value: object) -> Any:
    """`value` with each `("param", p)` read as `("name", p)`: a value of the function around a nested
    one, read in the nested one (whose own parameters those are not)."""
    if not isinstance(value, tuple):
        return value
    if len(value) == 2 and value[0] == "param" and isinstance(value[1], str):
        return ("name", value[1])
    return tuple(_params_as_names(part) for part in value)


def _external(func: Value, imports: dict[str, str]) -> bool:
    if func[0] == "name":
        return func[1] in _BUILTIN_CALLS and func[1] not in imports
    root = func
    while root[0] in ("attr", "call", "sub"):
        root = root[1]
    if root[0] != "name":
        return False
    target = imports.get(root[1], root[1] if func[0] != "name" else "")
    return target.split(".")[0] in _EXTERNAL_ROOTS and not target.startswith("functools")


_ATTRS_FIELDS = frozenset({"attr.ib", "attr.attrib", "attr.field", "attrs.field"})


def _attrs_field(node: ast.expr) -> bool:
    """`attr.ib(...)`, `attr.attrib(...)`, `attrs.field(...)`: a field declared without an annotation."""
    return isinstance(node, ast.Call) and dotted(node.func) in _ATTRS_FIELDS


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    return dotted(node)


# Child fields of statements that hold nested statement lists (blocks) and expressions.
_BLOCK_FIELDS = ("body", "orelse", "finalbody")
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SKIP_FIELDS = frozenset({"body", "orelse", "finalbody", "handlers", "cases", "ctx", "type_comment", "type_params"})
_STATEMENT_FIELDS: dict[type, tuple[str, ...]] = {}
_EXPRESSION_FIELDS: dict[type, tuple[str, ...]] = {}
# Fields that hold no sub-expression (names, operators, literal values).
_LEAF_FIELDS = frozenset({"ctx", "id", "attr", "arg", "op", "ops", "value_str", "kind", "conversion", "level",
                          "name", "names", "module", "type_comment", "is_async"})


def _blocks_of(node: ast.stmt) -> list[list[ast.stmt]]:
    kind = type(node)
    fields = _STATEMENT_BLOCKS.get(kind)
    if fields is None:  # looked up once per statement type: every statement of a project asks
        fields = _STATEMENT_BLOCKS[kind] = tuple(f for f in _BLOCK_FIELDS if f in kind._fields)
    blocks = [getattr(node, f) for f in fields]
    if kind is ast.Try or kind is _TRY_STAR:
        blocks.extend(h.body for h in node.handlers)  # type: ignore[attr-defined]
    elif kind is ast.Match:
        blocks.extend(c.body for c in node.cases)  # type: ignore[attr-defined]
    return blocks


_STATEMENT_BLOCKS: dict[type, tuple[str, ...]] = {}
_TRY_STAR = getattr(ast, "TryStar", ast.Try)


def _expressions_of(node: ast.stmt) -> list[ast.expr]:
    """The expressions a statement evaluates itself (not those of its nested blocks)."""
    kind = type(node)
    fields = _STATEMENT_FIELDS.get(kind)
    if fields is None:
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            fields = ()
        else:
            fields = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
        _STATEMENT_FIELDS[kind] = fields
    out: list[ast.expr] = []
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.expr):
            out.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.expr):
                    out.append(item)
                elif isinstance(item, ast.withitem):
                    out.append(item.context_expr)
    return out


def _expression_fields(kind: type) -> tuple[str, ...]:
    fields = _EXPRESSION_FIELDS.get(kind)
    if fields is None:
        fields = () if kind is ast.Lambda or kind is ast.Constant or kind is ast.Name else tuple(
            f for f in kind._fields if f not in _LEAF_FIELDS
        )
        _EXPRESSION_FIELDS[kind] = fields
    return fields


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _walk_expression(node: ast.AST, leaves: tuple[type, ...] = ()):  # type: ignore[no-untyped-def]
    """Every node of an expression, not entering lambdas (their bodies run later, elsewhere), nor the
    nodes of a type in `leaves` (yielded, their parts not)."""
    stack = [node]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        yield current
        kind = type(current)
        if kind in leaves:
            continue
        for name in _expression_fields(kind):
            value = getattr(current, name)
            if value is None:
                continue
            if type(value) is list:
                for item in value:
                    if item is not None and not isinstance(item, (str, int)):
                        push(item)
            elif isinstance(value, ast.AST):
                push(value)


def _module_statements(body: list[ast.stmt]):  # type: ignore[no-untyped-def]
    """Every statement of a module body and its blocks, not entering functions or classes."""
    stack: list[ast.stmt] = list(body)
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in _blocks_of(current):
                stack.extend(block)


def _overwritten(blocks: dict[int, list[ast.stmt]], place: _Place, at: _Place, name: str) -> bool:
    """Whether the assignment at `place` cannot be what `name` holds at `at` (a later statement): it
    sits in another arm of an `if` or `match` than `at`, or every way on from it rebinds `name` or
    leaves the function before reaching `at`. Loops and `try` between them answer no (a way back, a
    handler), and so do `break` and `continue` (a way around the rebinding)."""
    depth = next((d for d, (mine, theirs) in enumerate(zip(place.path, at.path)) if mine != theirs), None)
    if depth is None:  # one holds the other
        return False
    if place.path[depth][0] != at.path[depth][0]:  # two blocks of the statement holding both
        owner_block, owner_index, _loop = place.path[depth - 1]
        return isinstance(blocks[owner_block][owner_index], (ast.If, ast.Match))
    for level in range(len(place.path) - 1, depth - 1, -1):
        block, index, loop = place.path[level]
        if level < len(place.path) - 1 and (loop or not isinstance(blocks[block][index], (ast.If, ast.With))):
            return False  # from inside a loop or a `try`, the way on is not only the rest of the block
        statements = blocks[block]
        rest = statements[index + 1:at.path[depth][1]] if level == depth else statements[index + 1:]
        if _block_binds(rest, name):
            return True
    return False


def _bound_before(blocks: dict[int, list[ast.stmt]], at: _Place, name: str) -> bool:
    """Whether every way from the function's start to `at` binds `name` (or leaves before it)."""
    for level, (block, index, loop) in enumerate(at.path):
        if _block_binds(blocks[block][:index], name):
            return True
        if loop or not isinstance(blocks[block][index], (ast.If, ast.With)) and level < len(at.path) - 1:
            return False
    return False


def _block_binds(statements: list[ast.stmt], name: str) -> bool:
    """Whether running these statements in order binds `name`, or leaves the function, on every way
    through them, before any `break` or `continue` could skip the rest."""
    for statement in statements:
        found = _statement_binds(statement, name)
        if found is not None:
            return found
    return False


def _statement_binds(node: ast.stmt, name: str) -> bool | None:
    """True: the statement binds `name` or leaves the function on every way through it; False: a way
    may jump out of the block around the rest (`break`, `continue`); None: it may complete without
    binding `name`."""
    kind = type(node)
    if kind is ast.Assign:
        return True if any(_binds_name(target, name) for target in node.targets) else None
    if kind is ast.AnnAssign:
        return True if node.value is not None and _binds_name(node.target, name) else None
    if kind is ast.Return or kind is ast.Raise:
        return True
    if kind is ast.Break or kind is ast.Continue:
        return False
    if kind is ast.If:
        body, orelse = _block_binds(node.body, name), _block_binds(node.orelse, name)
        if body and orelse:
            return True
        return None if not _jumps(node) else False
    if kind is ast.With or kind is ast.AsyncWith:
        return True if _block_binds(node.body, name) else (False if _jumps(node) else None)
    return False if _jumps(node) else None


def _binds_name(target: ast.expr, name: str) -> bool:
    if isinstance(target, ast.Name):
        return target.id == name
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_binds_name(element, name) for element in target.elts)
    return isinstance(target, ast.Starred) and _binds_name(target.value, name)


def _jumps(node: ast.stmt) -> bool:
    """Whether a `break` or `continue` inside the statement (not in a loop of its own) may leave it."""
    stack = list(_blocks_of(node)) if not isinstance(node, _LOOPS) else []
    while stack:
        for statement in stack.pop():
            if isinstance(statement, (ast.Break, ast.Continue)):
                return True
            if not isinstance(statement, (*_LOOPS, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.extend(_blocks_of(statement))
    return False


_Guards = tuple[tuple[str, int, int], ...]  # (parameter, first line, last line)


def _guards(body: list[ast.stmt], params: set[str]) -> tuple[_Guards, _Guards, _Guards]:
    """The blocks of a function body that run only when a parameter is not None (`guards`), those
    that run only when it is true (`truth_guards`), and those that run only when it is None
    (`none_guards`): one walk of the body for all three."""
    stores: dict[str, list[int]] = {}
    loops: list[tuple[int, int]] = []
    conditionals: list[ast.IfExp] = []
    tests: list[tuple[ast.If, list[ast.stmt], int]] = []
    # `self.x` tested for None, directly or through a local bound once from it (`x = self.x`): the
    # guard's name is "self.x", and a store to `self.x` in the function makes it no guard.
    fields: dict[str, tuple[str, int]] = {}  # local -> ("self.x", the line binding it)
    bound: dict[str, list[int]] = {}  # local -> lines that store it
    stored_fields: set[str] = set()  # "self.x" stored somewhere in the function
    for node in _walk_statements(body):
        kind = type(node)
        if kind is ast.Name:
            if isinstance(node.ctx, ast.Store):
                bound.setdefault(node.id, []).append(node.lineno)
                if node.id in params:
                    stores.setdefault(node.id, []).append(node.lineno)
        elif kind is ast.Attribute:
            field_name = _self_field(node)
            if field_name is not None and isinstance(node.ctx, ast.Store):
                stored_fields.add(field_name)
        elif kind is ast.Assign:
            field_name = _self_field(node.value)
            if field_name is not None and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                fields[node.targets[0].id] = (field_name, node.lineno)
        elif kind is ast.IfExp:
            conditionals.append(node)
        elif kind is ast.For or kind is ast.AsyncFor or kind is ast.While:
            loops.append((node.lineno, node.end_lineno or node.lineno))

    def usable(param: str, line: int) -> bool:
        """The test at `line` still sees the argument: no store before it or on its line (a walrus), and
        none later in a loop around it (the next pass would test the new value)."""
        lines = stores.get(param, ())
        return param in params and all(store > line for store in lines) and not any(
            first <= line <= last and any(first <= store <= last for store in lines) for first, last in loops)

    def field(name: str, line: int) -> str | None:
        """The `self.x` a test at `line` reads, never stored in the function: by name, or through a local
        bound from it once before the test (the fallback may bind it again), outside any loop around it."""
        if name.startswith("self."):
            return None if name in stored_fields else name
        target, alias = fields.get(name, (None, 0))
        lines = bound.get(name, ())
        before = [store for store in lines if store <= line]
        if target is None or target in stored_fields or name in params or before != [alias] or alias == line or \
                any(first <= line <= last and any(first <= store <= last for store in lines) for first, last in loops):
            return None
        return target

    _collect_tests(body, tests)
    if not tests and not conditionals:
        return (), (), ()

    def guarded(proves: Callable[[ast.expr], tuple[set[str], set[str]]], fields_too: bool = False) -> _Guards:
        def tested(name: str, line: int) -> str | None:
            """The parameter (or, `fields_too`, the `self.x`) a test at `line` of `name` is about."""
            if usable(name, line):
                return name
            return field(name, line) if fields_too else None

        out: list[tuple[str, int, int]] = []
        for statement, block, position in tests:
            when_true, when_false = proves(statement.test)
            for name in when_true:
                if (param := tested(name, statement.lineno)) is not None:
                    out.append((param, statement.body[0].lineno, _last_line(statement.body)))
            for name in when_false:
                if (param := tested(name, statement.lineno)) is None:
                    continue
                if statement.orelse:
                    out.append((param, statement.orelse[0].lineno, _last_line(statement.orelse)))
                if _exits(statement.body) and position + 1 < len(block):
                    out.append((param, block[position + 1].lineno, _last_line(block)))
        # `attention_mask.sum(-1).tolist() if attention_mask is not None else [n] * b`
        for node in conditionals:
            when_true, when_false = proves(node.test)
            body, orelse = _arm_lines(node.body, node.orelse), _arm_lines(node.orelse, node.body)
            for name in when_true:
                if body is not None and (param := tested(name, node.lineno)) is not None:
                    out.append((param, *body))
            for name in when_false:
                if orelse is not None and (param := tested(name, node.lineno)) is not None:
                    out.append((param, *orelse))
        return tuple(sorted(set(out)))  # sets of names above: sorted, so a summary is the same in every process

    # A field only where the line runs when it is None (a fallback for a host mirror that is missing).
    return guarded(_not_none_when), guarded(_true_when), guarded(_none_when, fields_too=True)


def _count_guards(body: list[ast.stmt], star: str) -> tuple[tuple[int, bool, int, int], ...]:
    """The blocks of a function body that run only when its `*args` parameter `star` holds a number of
    arguments, or any other number: `if len(star) == n:` (or `!=`), not after a store to `star`."""
    if any(isinstance(node, ast.Name) and node.id == star and isinstance(node.ctx, ast.Store)
           for node in _walk_statements(body)):
        return ()
    tests: list[tuple[ast.If, list[ast.stmt], int]] = []
    _collect_tests(body, tests)
    out: list[tuple[int, bool, int, int]] = []
    for statement, block, position in tests:
        counted = _length_compared(statement.test, star)
        if counted is None:
            continue
        count, equal = counted
        out.append((count, equal, statement.body[0].lineno, _last_line(statement.body)))
        if statement.orelse:
            out.append((count, not equal, statement.orelse[0].lineno, _last_line(statement.orelse)))
        if _exits(statement.body) and position + 1 < len(block):
            out.append((count, not equal, block[position + 1].lineno, _last_line(block)))
    return tuple(out)


def _length_compared(test: ast.expr, name: str) -> tuple[int, bool] | None:
    """(n, True) for `len(name) == n`, (n, False) for `len(name) != n`; None for any other test."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
        return None
    left, right = test.left, test.comparators[0]
    if isinstance(left, ast.Constant):
        left, right = right, left
    if isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len" \
            and len(left.args) == 1 and not left.keywords and isinstance(left.args[0], ast.Name) \
            and left.args[0].id == name and isinstance(right, ast.Constant) and type(right.value) is int:
        return right.value, isinstance(test.ops[0], ast.Eq)
    return None


def _field_copies(body: list[ast.stmt], self_name: str) -> dict[str, tuple[str, ast.Call]]:
    """The dicts a method fills with each of its dataclass's fields moved to a device, by name, with
    the moving method (`to`, `cuda`) and its call: LMDeploy's `ModelInputs.to_device` runs

        for f in fields(self):
            k = f.name
            v = getattr(self, k)
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=non_blocking)
            out_dict[k] = v
        return ModelInputs(**out_dict)

    so each tensor field of what it builds is the same field of `self`, moved."""
    out: dict[str, tuple[str, ast.Call]] = {}
    for loop in _statements_of(body):
        if not (isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call)
                and _last_name(loop.iter.func) == "fields" and len(loop.iter.args) == 1
                and isinstance(loop.iter.args[0], ast.Name) and loop.iter.args[0].id == self_name):
            continue
        field = loop.target.id
        names = {field + ".name"}  # what spells the field's name: `f.name`, or a name given it
        read: set[str] = set()  # the names holding `getattr(self, <the field's name>)`
        moves: dict[str, ast.Call] = {}
        for statement in _statements_of(loop.body):
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
                continue
            target, value = statement.targets[0], statement.value
            if isinstance(target, ast.Name) and ast.unparse(value) in names:
                names.add(target.id)
            elif isinstance(target, ast.Name) and isinstance(value, ast.Call) and _last_name(value.func) == "getattr" \
                    and len(value.args) >= 2 and isinstance(value.args[0], ast.Name) and value.args[0].id == self_name \
                    and ast.unparse(value.args[1]) in names:
                read.add(target.id)
            elif isinstance(target, ast.Name) and target.id in read and isinstance(value, ast.Call) \
                    and isinstance(value.func, ast.Attribute) and value.func.attr in ("to", "cuda") \
                    and isinstance(value.func.value, ast.Name) and value.func.value.id == target.id:
                moves[target.id] = value
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                    and ast.unparse(target.slice) in names and isinstance(value, ast.Name) and value.id in moves:
                move = moves[value.id]
                out[target.value.id] = (move.func.attr, move)  # type: ignore[attr-defined]
    return out


def _last_name(func: ast.expr) -> str | None:
    """The last name a called expression spells: `fields` for `fields` and for `dataclasses.fields`; None
    for anything else than a name or an attribute."""
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _statements_of(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a block and of the blocks nested in it, in order, not those of nested functions
    or classes."""
    out: list[ast.stmt] = []
    for statement in body:
        out.append(statement)
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in _blocks_of(statement):
                out.extend(_statements_of(block))
    return out


def _arm_lines(arm: ast.expr, other: ast.expr) -> tuple[int, int] | None:
    """The lines of one arm of `a if test else b`, as a guard's span; None for an arm without a call
    that shares a line with the other (`grid_thws.tolist() if lst is None else lst` on one line: the
    guards are by line, and the line's sync is in the arm that calls)."""
    first, last = arm.lineno, arm.end_lineno or arm.lineno
    shared = first <= (other.end_lineno or other.lineno) and other.lineno <= last
    if shared and not any(isinstance(n, ast.Call) for n in ast.walk(arm)):
        return None
    return first, last


def _device_attribute(node: ast.expr) -> bool:
    """`x.device`: a tensor's device, or an object's (a `torch.device` either way)."""
    return isinstance(node, ast.Attribute) and node.attr == "device"


def _self_field(node: ast.expr) -> str | None:
    """`self.x` as "self.x"; None for any other expression."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return None


def _proved(test: ast.expr, atom: Callable[[ast.expr], tuple[set[str], set[str]]]) -> tuple[set[str], set[str]]:
    """What a test proves of names when it is true, and when it is false, through `not`, `and` and
    `or`; `atom` says it for any other test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        when_true, when_false = _proved(test.operand, atom)
        return when_false, when_true
    if isinstance(test, ast.BoolOp):
        parts = [_proved(value, atom) for value in test.values]
        if isinstance(test.op, ast.And):  # all true
            return set().union(*(p[0] for p in parts)), set()
        return set(), set().union(*(p[1] for p in parts))  # `or`: all false
    return atom(test)


def _not_none_when(test: ast.expr) -> tuple[set[str], set[str]]:
    """The names a test proves not None when it is true, and when it is false."""
    return _proved(test, _not_none_atom)


def _none_when(test: ast.expr) -> tuple[set[str], set[str]]:
    """The names a test proves None when it is true, and when it is false (`x is None`, `x is not None`)."""
    return _proved(test, _none_atom)


def _none_atom(test: ast.expr) -> tuple[set[str], set[str]]:
    compared = _compared_with_none(test)
    if compared is None:
        return set(), set()
    name, is_none = compared
    return ({name}, set()) if is_none else (set(), {name})


def _compared_with_none(test: ast.expr) -> tuple[str, bool] | None:
    """`x is None`: ("x", True); `x is not None`: ("x", False); `self.x` as "self.x"; None for any other test."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 \
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None \
            and isinstance(test.ops[0], (ast.Is, ast.IsNot)):
        name = test.left.id if isinstance(test.left, ast.Name) else _self_field(test.left)
        if name is not None:
            return name, isinstance(test.ops[0], ast.Is)
    return None


def _asserted_class(test: ast.expr) -> tuple[str, tuple[str, ...]] | None:
    """(name, the class's spelling) for `isinstance(name, Cls)` with one class of the project's own (not
    a builtin, nor a torch or NumPy type, whose test says less than the value's own source)."""
    if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "isinstance"
            and len(test.args) == 2 and isinstance(test.args[0], ast.Name)
            and isinstance(test.args[1], (ast.Name, ast.Attribute))):
        return None
    types = annotation_types(test.args[1])
    if len(types) != 1 or types[0] in _BUILTINS or types[0].split(".")[0] in ("torch", "np", "numpy", "typing") \
            or types[0] == "Tensor":
        return None
    return test.args[0].id, types


def _not_none_atom(test: ast.expr) -> tuple[set[str], set[str]]:
    if isinstance(test, ast.Name):
        return {test.id}, set()
    compared = _compared_with_none(test)
    if compared is not None:
        name, is_none = compared
        return (set(), {name}) if is_none else ({name}, set())
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "isinstance" \
            and test.args and isinstance(test.args[0], ast.Name):
        return {test.args[0].id}, set()
    return set(), set()


def _branches(body: list[ast.stmt], params: frozenset[str] = frozenset()) -> tuple[tuple[int, int, int], ...]:
    """The blocks of a function body that run on some calls only (see `FunctionInfo.branches`);
    `params`: the function's parameters (see `_leaves_early`)."""
    out: list[tuple[int, int, int]] = []
    _collect_branches(body, params, out)
    return tuple(sorted(set(out)))


# The two walks below are module functions, not closures that call themselves: such a closure is a
# reference cycle (the function, its cell), which kept every function body's statements alive until
# the collector ran; a cold vLLM run left millions of `ast` nodes for it to find.
def _collect_branches(block: list[ast.stmt], params: frozenset[str], out: list[tuple[int, int, int]]) -> None:
    for position, statement in enumerate(block):
        if isinstance(statement, ast.If):
            out.append((statement.lineno, statement.body[0].lineno, _last_line(statement.body)))
            if statement.orelse:
                out.append((statement.lineno, statement.orelse[0].lineno, _last_line(statement.orelse)))
            if _leaves_early(statement.body, params) and position + 1 < len(block):
                out.append((statement.lineno, block[position + 1].lineno, _last_line(block)))
        elif isinstance(statement, (ast.Try, _TRY_STAR)):
            out.extend((h.lineno, h.body[0].lineno, _last_line(h.body)) for h in statement.handlers)
        elif isinstance(statement, ast.Match):
            out.extend((case.pattern.lineno, case.body[0].lineno, _last_line(case.body)) for case in statement.cases)
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in _blocks_of(statement):
                _collect_branches(inner, params, out)


def _collect_tests(block: list[ast.stmt], out: list[tuple[ast.If, list[ast.stmt], int]]) -> None:
    """Every `if` of a body outside nested scopes, with its block and its position there."""
    for position, statement in enumerate(block):
        if isinstance(statement, ast.If):
            out.append((statement, block, position))
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in _blocks_of(statement):
                _collect_tests(inner, out)


def _leaves_early(block: list[ast.stmt], params: frozenset[str] = frozenset()) -> bool:
    """Whether an `if` body ends by leaving the function or the loop on a normal pass (`return`,
    `break`, `continue`), so that the rest of the block after it runs on some calls only; or hands
    back one of the function's own parameters from an `if` nested in it (`_hands_back`).

    A `raise` is no such end: after `if bad: raise ValueError(...)` the lines run on every pass that
    succeeds. Nor is any other `return` nested deeper in the body: `get_vision_window_index` returns
    indices its callers precomputed from an `if` inside an `if`, which almost no caller does, and
    counting every nested return dropped ten real chains through it on transformers 5.23."""
    if block and isinstance(block[-1], (ast.Return, ast.Continue, ast.Break)):
        return True
    return _hands_back(block, params)


def _hands_back(block: list[ast.stmt], params: frozenset[str]) -> bool:
    """Whether `block` returns one of the function's parameters (`return pe`, the name perhaps rebound
    to a converted copy of it) from an `if` in it, at any depth of `if`s. That is a cache hit, or an
    input already in shape: transformers' `extend_pe(x, pe)`
    returns the table it was given when it is long enough (`self.pe = self.extend_pe(x, self.pe)`),
    so the rebuild after it, with its host-to-device copy, runs only for a longer input."""
    for statement in block:
        if isinstance(statement, ast.Return) and isinstance(statement.value, ast.Name) \
                and statement.value.id in params:
            return True
        if isinstance(statement, ast.If) and (_hands_back(statement.body, params)
                                              or _hands_back(statement.orelse, params)):
            return True
    return False


def getattr_name(node: ast.Call) -> str | None:
    """`name` for `getattr(obj, "name")` or `getattr(obj, "name", default)`: a read of the attribute
    (the default stands in only where an object has none, which a class declaring it never lacks)."""
    if not (isinstance(node.func, ast.Name) and node.func.id == "getattr" and 2 <= len(node.args) <= 3
            and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
        return None
    name = node.args[1]
    return name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) and \
        name.value.isidentifier() else None


def off_cuda_test(test: ast.expr) -> bool | None:
    """True for a test that holds only where the code runs off CUDA, False for one that fails only
    there, None for any other, read as `analysis/marks.py`'s `host_only_test` reads it on libcst: a
    test that the platform has no accelerator (`current_platform.is_cpu()`, SGLang's `is_cpu()` and
    `_is_cpu`) or is another one (`is_npu()`, `_is_npu`, `self.is_npu`, ...), `x.is_cuda` and
    `x.device.type == "cuda"` (false off CUDA), `x.device.type == "mps"` and other machines' types (true);
    through `not`, an `and` whose holding says so and an `or` whose failing does."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = off_cuda_test(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        # An `and` that holds, each part holds; an `or` that fails, each part fails.
        wanted = isinstance(test.op, ast.And)
        return wanted if any(off_cuda_test(value) is wanted for value in test.values) else None
    if isinstance(test, ast.Call) and not test.args and not test.keywords:
        name = _last_name(test.func)
        return True if name == "is_cpu" or name in OTHER_PLATFORM_TESTS else None
    if isinstance(test, ast.Name):
        return True if test.id in CPU_PLATFORM_FLAGS or test.id in OTHER_PLATFORM_FLAGS else None
    if isinstance(test, ast.Attribute) and (test.attr in CPU_PLATFORM_FLAGS or test.attr in OTHER_PLATFORM_FLAGS
                                            or test.attr in OTHER_PLATFORM_TESTS):
        return True  # `self._is_npu`, `self.is_npu` (not `x.is_cpu`: a tensor's, true on a CUDA machine too)
    if isinstance(test, ast.Attribute) and test.attr == "is_cuda" and dotted(test.value) is not None:
        return False
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
        sides = (test.left, test.comparators[0])
        typed = [side for side in sides if isinstance(side, ast.Attribute) and side.attr == "type"
                 and dotted(side.value) is not None]
        named = next((side.value for side in sides if isinstance(side, ast.Constant) and isinstance(side.value, str)),
                     None)
        if typed and named == "cuda":
            return isinstance(test.ops[0], ast.NotEq)  # `x.device.type != "cuda"`
        if typed and named in OTHER_DEVICE_TYPES and isinstance(test.ops[0], ast.Eq):
            return True  # `x.device.type == "mps"`: another machine's path
    return None


def _off_cuda_result(body: list[ast.stmt]) -> bool | None:
    """`FunctionInfo.off_cuda_result` of a function each of whose `return`s hands back a test
    `off_cuda_test` reads the same way, and whose body cannot end without one or a `raise`: one
    `return device.type != "cuda"`, or a dispatch helper's loop over its arguments
    (`for v in args: if isinstance(v, torch.Tensor): return v.is_cuda`, then `raise`)."""
    if not body or not isinstance(body[-1], (ast.Return, ast.Raise)):
        return None
    last = off_cuda_test(body[-1].value) if isinstance(body[-1], ast.Return) and body[-1].value is not None \
        else None
    if last is None and isinstance(body[-1], ast.Return):
        return None  # the last return is no such test: no walk for the other returns of most functions
    results = {off_cuda_test(node.value) if node.value is not None else None for node in _returns(body)}
    return results.pop() if len(results) == 1 else None


def _returns(body: list[ast.stmt]) -> list[ast.Return]:
    """The `return` statements of a function body, not those of functions or classes nested in it."""
    out: list[ast.Return] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            out.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.expr)):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _true_when(test: ast.expr) -> tuple[set[str], set[str]]:
    """The names a test proves true when it is true, and when it is false (`if p:`, `if not p: return`)."""
    return _proved(test, lambda atom: ({atom.id}, set()) if isinstance(atom, ast.Name) else (set(), set()))


# `isinstance(x, T)` with T one of these (its last name) proves `x` is no tensor.
_NOT_TENSOR_TYPES = frozenset("dict list tuple set frozenset int float bool str bytes Mapping MutableMapping "
                              "Sequence MutableSequence Number".split())
_TENSOR_TYPES = frozenset({"Tensor", "Parameter"})


def _isinstance_test(node: ast.AST) -> tuple[str, list[ast.expr]] | None:
    """(name, the types) of `isinstance(name, T)` or `isinstance(name, (T, U))`; None for anything else."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
            and len(node.args) == 2 and not node.keywords and isinstance(node.args[0], ast.Name)):
        return None
    kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
    return node.args[0].id, kinds


def _isinstance_names(test: ast.expr) -> frozenset[str]:
    """The names a test checks the type of (`isinstance(n, int)`, also under `not`, `and`, `or`)."""
    return frozenset(found[0] for node in ast.walk(test) if (found := _isinstance_test(node)) is not None)


def _type_tests(test: ast.expr) -> tuple[list[str], list[str]]:
    """The names an `isinstance` test proves are no tensors when it holds, and when it fails, through
    `not`, `and` and `or`: `isinstance(o, dict)` holds only for a non-tensor, `isinstance(o, torch.Tensor)`
    fails only for one."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        when_true, when_false = _type_tests(test.operand)
        return when_false, when_true
    if isinstance(test, ast.BoolOp):
        parts = [_type_tests(value) for value in test.values]
        if isinstance(test.op, ast.And):
            return [n for part in parts for n in part[0]], []
        return [], [n for part in parts for n in part[1]]
    found = _isinstance_test(test)
    if found is None:
        return [], []
    name, kinds = found
    lasts = [(dotted(k) or "").rsplit(".", 1)[-1] for k in kinds]
    if lasts and all(last in _NOT_TENSOR_TYPES for last in lasts):
        return [name], []
    if lasts and all(last in _TENSOR_TYPES for last in lasts):
        return [], [name]
    return [], []


def _device_tests(test: ast.expr) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """What a test proves about devices when it is true, and when it is false, through `not`, `and`
    and `or` (as `analysis/narrowing.py` reads it for one file): (key, "cpu" or "gpu", how, text), how
    being "tensor" (`x.device.type == ...`: `x`, if a tensor), "shows" (`x.is_cuda`: `x` is a tensor)
    or "device" (`device.type == ...`, `x.device == ...`: a device value), and text the reason the
    evidence gives (the test, and whether it held)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        when_true, when_false = _device_tests(test.operand)
        return when_false, when_true
    if isinstance(test, ast.BoolOp):
        parts = [_device_tests(value) for value in test.values]
        if isinstance(test.op, ast.And):  # all hold when it is true; when it is false, any may not
            return [t for part in parts for t in part[0]], []
        return [], [t for part in parts for t in part[1]]
    if isinstance(test, ast.Attribute) and test.attr in ("is_cuda", "is_cpu"):
        key = dotted(test.value)
        if key is None:
            return [], []
        if test.attr == "is_cuda":
            return [(key, "gpu", "shows", f"`{key}.is_cuda` holds")], []
        # Not the CPU: taken for the accelerator (as `narrowing.py` reads it).
        return [(key, "cpu", "shows", f"`{key}.is_cpu` holds")], [(key, "gpu", "shows", f"`{key}.is_cpu` is false")]
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
        return [], []
    left, right = test.left, test.comparators[0]
    if not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
        left, right = right, left
    if not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
        return [], []
    device = device_kind(right.value)
    subject = _compared_device(left)
    if device is None or subject is None:
        return [], []
    spelled, keys = subject
    equal = isinstance(test.ops[0], ast.Eq)
    operator = "==" if equal else "!="
    named = [(key, device, how, f"`{spelled} {operator} {right.value!r}` {'holds' if equal else 'is false'}")
             for key, how in keys]
    other = [(key, "gpu", how, f"`{spelled} {operator} {right.value!r}` {'is false' if equal else 'holds'}")
             for key, how in keys] if device == "cpu" else []
    return (named, other) if equal else (other, named)


def _compared_device(node: ast.expr) -> tuple[str, list[tuple[str, str]]] | None:
    """How a compared device is spelled, and the keys it narrows: `x.device.type`, `str(x.device)` and
    `x.device` narrow the tensor `x` and the device `x.device`; `device.type`, `str(device)` and
    `device` the device `device`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and \
            len(node.args) == 1 and not node.keywords:
        found = _compared_device(node.args[0])
        return (f"str({found[0]})", found[1]) if found is not None else None
    if isinstance(node, ast.Attribute) and node.attr == "type":
        node = node.value
        suffix = ".type"
    else:
        suffix = ""
    if isinstance(node, ast.Attribute) and node.attr == "device":
        key = dotted(node.value)
        if key is None:
            return None
        return f"{key}.device{suffix}", [(key, "tensor"), (f"{key}.device", "device")]
    key = dotted(node)
    return (f"{key}{suffix}", [(key, "device")]) if key is not None else None


def _rebound(region: list[ast.stmt]) -> set[str]:
    """The names and dotted names `region` assigns (there a narrowing no longer holds)."""
    out: set[str] = set()
    for statement in region:
        for node in ast.walk(statement):
            if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
                key = dotted(node)
                if key is not None:
                    out.add(key)
            elif isinstance(node, ast.NamedExpr):
                out.add(node.target.id)
    return out


def _exits(block: list[ast.stmt]) -> bool:
    return bool(block) and isinstance(block[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break))


def _last_line(block: list[ast.stmt]) -> int:
    return block[-1].end_lineno or block[-1].lineno


def _walk_statements(body: list[ast.stmt]):  # type: ignore[no-untyped-def]
    """Every node of a function body, not entering nested functions, classes or lambdas.

    (`ast.iter_child_nodes` does the same field by field; the fields per node type are
    looked up once, as for expressions, which halves the cost of this walk, run on every function.)"""
    stack: list[ast.AST] = list(body)
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        yield current
        for name in _expression_fields(type(current)):
            value = getattr(current, name, None)
            if value is None:
                continue
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _NESTED_SCOPES):
                        push(item)
            elif isinstance(value, ast.AST) and not isinstance(value, _NESTED_SCOPES):
                push(value)


_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


# The most parts (tuples) a first value may have to stand in for a name read inside its own value:
# kernels that rebind accumulators line after line (`acc = acc * a + b`) would otherwise nest each
# value in the next.
_SMALL = 48
# The largest value of what a comprehension iterates that its variable is bound to (`_bind_comprehension`).
_BOUND_ITERABLE = 1000


def _size(value: object, limit: int) -> int:
    """How many tuples `value` is made of, counted up to just past `limit`."""
    if not isinstance(value, tuple):
        return 0
    count = 1
    for part in value:
        if count > limit:
            break
        count += _size(part, limit - count)
    return count


class _BuiltOn(ast.expr):
    """The default device of a factory in a constructor of class `owner`: the device it is built on
    (`with torch.device(d):` around the construction), which the index resolves once it knows whether
    `owner` is an `nn.Module`."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner


def _reads_a_param(value: object) -> bool:
    """Whether a symbolic value reads a parameter of the function it was made in."""
    if not isinstance(value, tuple):
        return False
    if value[:1] == ("param",):
        return True
    return any(_reads_a_param(part) for part in value[1:])
