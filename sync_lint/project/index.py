"""The project index: every module's summary, and the tables that join them.

It answers structural questions only: which module defines a qualified name
(following re-exports through `__init__` and star imports), the class hierarchy,
and where the stores, call sites and dict entries that mention a name are. What a
value *is* (a GPU tensor, an instance of `ForwardBatch`) is the inference's job
(`infer.py`), which asks these tables.

Summaries can live in memory (tests, small projects) or be loaded on demand from
the cache (`store.py`): the index only needs a way to get a module's summary and
the small name tables built when the project was summarised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable

from sync_lint.analysis.facts import MODULE_MOVES
from sync_lint.project.deps import Dep, Reads
from sync_lint.project.parts import ReadSummary, calls_by_function, part_label, symbol_label
from sync_lint.project.summary import (
    CallSite,
    ClassInfo,
    Entry,
    FunctionInfo,
    ModuleSummary,
    Store,
    torch_op_name,
)
from sync_lint.project.values import OFF_CUDA, OFF_CUDA_IF, Value, dotted_parts, predicate_of

if TYPE_CHECKING:
    from sync_lint.project.infer import FactCache


def callee_name(func: Value) -> str | None:
    """The name a call site is filed under: `f` for `f(...)` and `x.f(...)`; the operator for
    `torch.ops.<ns>.<op>.<overload>(...)`."""
    if func[0] == "name":
        return func[1] if func[1] == "dataclasses.replace" else func[1].rsplit(".", 1)[-1]
    if func[0] == "attr":
        if func[2] == "default" and func[1][0] == "attr" and _under_torch_ops(func[1][1]):
            return func[1][2]
        return func[2]
    if func[0] == "sub" and func[1][0] == "name" and "." not in func[1][1]:
        return func[1][1]  # `TABLE[key](...)`: filed under the table, whose functions it may call
    built = _constructed_object(func)
    if built is not None:
        return built  # `model = Net().cuda()`, then `model(x)`: filed under the class, whose object it calls
    return None


def _constructed_object(func: Value) -> str | None:
    """`Net` for a callee that is an object built by a class spelled so (`Net(cfg)`, moved or not:
    `Net(cfg).to(device)`); None otherwise."""
    while func[0] == "call" and func[1][0] == "attr" and func[1][2] in MODULE_MOVES:
        func = func[1][1]
    if func[0] != "call" or func[1][0] not in ("name", "attr"):
        return None
    name = func[1][1] if func[1][0] == "name" else func[1][2]
    name = name.rsplit(".", 1)[-1]
    return name if name[:1].isupper() else None


def _under_torch_ops(value: Value) -> bool:
    """`torch.ops.<ns>`: the namespace of an operator."""
    return value[0] == "attr" and value[1][0] == "attr" and value[1][2] == "ops" and value[1][1] == ("name", "torch")


def callee_names(func: Value) -> list[str]:
    """Every name a call site is filed under: a local that holds one of several callables
    (`fn = self.default; if c: fn = TABLE[k]`; `fn(...)`) under each alternative's name."""
    parts = func[1] if func[0] == "join" else (func,)
    return sorted({n for part in parts if (n := callee_name(part)) is not None})


@dataclass
class NameTables:
    """Which modules mention a name, built once per project (small: names and module names)."""

    calls: dict[str, set[str]] = field(default_factory=dict)  # callee name -> modules with such call sites
    stores: dict[str, set[str]] = field(default_factory=dict)  # attribute -> modules storing it
    entries: dict[str, set[str]] = field(default_factory=dict)  # dict key -> modules
    classes: dict[str, set[str]] = field(default_factory=dict)  # class name -> modules defining one
    bases: dict[str, set[str]] = field(default_factory=dict)  # class qualname -> base names as spelled
    # Where hot-path roots may be, so that finding them reads no summary of a module without any:
    # function (local name, or `<module>` for compiled or captured calls) -> modules.
    roots: dict[str, set[str]] = field(default_factory=dict)
    forwards: dict[str, set[str]] = field(default_factory=dict)  # class qualname defining `forward` -> module
    # Template module (`pkg.modular_x`) -> the modules that say they were generated from it.
    generated: dict[str, set[str]] = field(default_factory=dict)
    # Multimodal input key -> "gpu module:line" / "cpu module:line" for each declaration (`multimodal_fields`).
    inputs: dict[str, set[str]] = field(default_factory=dict)
    ops: dict[str, set[str]] = field(default_factory=dict)  # custom operator -> modules registering it
    # Name -> modules that mention it other than as a callee (`mentions.py`; calls are in `calls`).
    mentions: dict[str, set[str]] = field(default_factory=dict)
    importers: dict[str, set[str]] = field(default_factory=dict)  # module -> modules that import it
    # Function name (its last part) -> modules defining a predicate function of that name (one whose
    # `off_cuda_result` is set): most calls in a tested arm are of no predicate, told without a summary.
    predicates: dict[str, set[str]] = field(default_factory=dict)
    # Class name (the last part, as annotated) -> modules with a function that calls a parameter
    # annotated with it (`def next_token(model: GPT, ...)`, then `model(x)`): callers of its `forward`.
    typed: dict[str, set[str]] = field(default_factory=dict)
    # Class attribute -> modules with a class that sets it to a name (`infer_state_class = InferState`):
    # what a subclass may put there is looked for only where one does.
    slots: dict[str, set[str]] = field(default_factory=dict)
    # Method name -> modules with a class method of that name a call may reach by keyword (`keyword_interface`).
    methods: dict[str, set[str]] = field(default_factory=dict)

    def add(self, summary: ModuleSummary) -> None:
        for kind, name, value in table_rows(summary):
            getattr(self, kind).setdefault(name, set()).add(value)

    def replace(self, summary: ModuleSummary, old: ModuleSummary | None) -> None:
        """Use this summary's rows instead of those of `old` (the module's previous summary)."""
        for kind, name, value in table_rows(old) if old is not None else ():
            getattr(self, kind).get(name, set()).discard(value)
        self.add(summary)

    def base_rows(self) -> list[tuple[str, str]]:
        return [(cls, base) for cls, bases in self.bases.items() for base in bases]

    def call_sites(self, name: str) -> list[tuple[str, list[CallSite]]] | None:
        """None: the call sites are in the summaries themselves (kept in memory)."""
        return None

    def module_calls(self, module: str) -> list[CallSite] | None:
        """None: the call sites are in the summaries themselves (kept in memory)."""
        return None


# The cache files call sites whose callee has no name (`make()(x)`, `for f in fs: f(x)`) under this key,
# which no name lookup asks for: the call graph reads a module's call sites whole.
UNNAMED_CALLS = "<unnamed>"


def calls_by_name(summary: ModuleSummary) -> dict[str, list[CallSite]]:
    grouped: dict[str, list[CallSite]] = {}
    for call in summary.calls:
        for name in callee_names(call.func) or [UNNAMED_CALLS]:
            grouped.setdefault(name, []).append(call)
    return grouped


# Methods of torch's and the libraries' classes that project classes define too: a call of one on an
# object of unknown class is as likely the library's.
LIBRARY_METHODS = frozenset({
    "state_dict", "load_state_dict", "named_parameters", "named_buffers", "named_modules", "named_children",
    "register_buffer", "register_parameter", "register_forward_hook", "register_forward_pre_hook",
    "add_module", "get_submodule", "zero_grad", "extra_repr", "get_input_embeddings", "set_input_embeddings",
    "get_output_embeddings", "set_output_embeddings", "from_pretrained", "save_pretrained", "to_dict",
    "to_json_string", "batch_decode", "apply_chat_template", "prepare_inputs_for_generation",
    "tie_weights", "resize_token_embeddings", "post_init", "init_weights",
    "get_seq_length", "get_max_cache_shape", "reorder_cache", "load_weights",
})
# Methods of torch's and the libraries' classes of a common name that a call on an object of unknown class
# reaches as likely as a project method of that name, whatever it passes (`model.generate(input_ids=...)`).
_LIBRARY_ENTRY_POINTS = frozenset({"forward", "__call__", "generate", "step", "backward"})
# How many project methods of one name may take a call by its keywords (`keyword_methods`) for it to
# count as a call of them: a family of vocoders, not every model's `encode`.
MAX_KEYWORD_METHODS = 2


def interface_name(name: str) -> bool:
    """A method name distinctive enough that a call of it on an object of unknown class is taken for a
    call of the project's methods of that name: two words or more, public, not one of the library
    methods that project classes also define. A private method is its own class's business: in
    transformers, dozens of audio models each define `_get_feat_extract_output_lengths` and call
    their own tower's through an attribute of unknown class."""
    return not name.startswith("_") and "_" in name and len(name) >= 8 and name not in LIBRARY_METHODS


def interface_keywords(info: FunctionInfo, call: CallSite | None = None) -> frozenset[str]:
    """The distinctive parameter names (`interface_name`) of the method that the call passes by keyword
    (all of them, without a call)."""
    named = {p.name for p in info.params if p.kind in ("pos", "kwonly") and interface_name(p.name)}
    if call is None:
        return frozenset(named)
    return frozenset(name for name, _value in call.kwargs if name in named)


def keyword_interface(info: FunctionInfo) -> bool:
    """A public method of a name too common to link a call by (`inference`) that a call on an object of
    unknown class may still reach by naming one of its distinctive parameters: CosyVoice calls its
    vocoder, built from a YAML file, with `self.hift.inference(speech_feat=mel, finalize=...)`."""
    return info.class_name is not None and not info.name.startswith("_") and not interface_name(info.name) \
        and info.name not in LIBRARY_METHODS and info.name not in _LIBRARY_ENTRY_POINTS \
        and bool(interface_keywords(info))


def table_rows(summary: ModuleSummary) -> list[tuple[str, str, str]]:
    """(table, name, value) rows a module adds to the name tables."""
    module = summary.module
    rows = []
    for call in summary.calls:
        for name in callee_names(call.func):
            rows.append(("calls", name, module))
    rows += [("stores", store.attr, module) for store in summary.stores]
    rows += [("entries", entry.key, module) for entry in summary.entries]
    for local, info in summary.classes.items():
        rows.append(("classes", info.name, module))
        for base in info.bases:
            spelled = spelled_name(summary, base)
            if spelled is not None:
                rows.append(("bases", summary.qualified(local), spelled))
        if "forward" in info.methods:
            rows.append(("forwards", summary.qualified(local), module))
        rows += [("slots", name, module) for name, value, _line in info.attributes if value[0] == "name"]
    # A superset of the root candidates (any decorator named like a compile); the call graph decides.
    rows += [("roots", local, module) for local, info in summary.functions.items()
             if info.hot_marker or any(d.rsplit(".", 1)[-1] in ROOT_DECORATOR_NAMES for d in info.decorators)]
    if summary.compiled or summary.captured:
        rows.append(("roots", "<module>", module))
    rows += [("inputs", key, f"{'cpu' if on_cpu else 'gpu'} {module}:{line}")
             for key, on_cpu, line in multimodal_fields(summary)]
    rows += [("ops", op, module) for op in summary.custom_ops]
    rows += [("typed", name, module) for name in sorted(called_parameter_classes(summary))]
    called = {row[1] for row in rows if row[0] == "calls"}
    mentioned = set(summary.mentions).union(*summary.function_mentions.values())
    handed_on = {name.rpartition(".")[2] for name in summary.value_mentions}  # `self.m` under `m`
    rows += [("mentions", name, module) for name in (mentioned - called) | handed_on]
    rows += [("importers", imported, module) for imported in imported_modules(summary)]
    rows += [("predicates", local.rpartition(".")[2], module) for local, info in summary.functions.items()
             if info.off_cuda_result is not None]
    rows += [("methods", info.name, module) for info in summary.functions.values() if keyword_interface(info)]
    if summary.generated_from and summary.generated_from.endswith(".py"):
        package = module.rpartition(".")[0] if not summary.is_package else module
        template = summary.generated_from[:-3]
        rows.append(("generated", f"{package}.{template}" if package else template, module))
    return rows


def called_parameter_classes(summary: ModuleSummary) -> set[str]:
    """The class names (last parts) that annotate parameters the module's functions call as objects
    (`model: GPT`, then `model(x)`)."""
    out: set[str] = set()
    for call in summary.calls:
        if call.func[0] != "param" or call.function is None:
            continue
        info = summary.functions.get(call.function)
        param = next((p for p in info.params if p.name == call.func[1]), None) if info is not None else None
        for name in param.annotation if param is not None else ():
            last = name.rsplit(".", 1)[-1]
            if last[:1].isupper():
                out.add(last)
    return out


def imported_modules(summary: ModuleSummary) -> set[str]:
    """The modules of the module's own package that it may import: each imported name in its top-level
    package and that name's parent (`from pkg.a import f` imports `pkg.a`, or `pkg.a.f` if `f` is a
    module). Outside imports are left out: only whether a project module is imported at all is asked."""
    top = summary.module.split(".", 1)[0]
    out: set[str] = set()
    for target in (*summary.imports.values(), *summary.local_imports.values(), *summary.star_imports,
                   *summary.loaded):
        if target.split(".", 1)[0] == top:
            out.add(target)
            out.add(target.rpartition(".")[0] or target)
    out.discard(summary.module)
    return out


MULTIMODAL_FIELD_CONFIG = "MultiModalFieldConfig"


def multimodal_fields(summary: ModuleSummary) -> list[tuple[str, bool, int]]:
    """vLLM's multimodal input fields the module declares, (key, kept on the CPU, line):
    `dict(pixel_values=MultiModalFieldConfig.batched("image"), image_grid_thw=MultiModalFieldConfig
    .batched("image", keep_on_cpu=True))`. vLLM's model runner moves every such input of a batch to
    the device before the model reads it, except those declared `keep_on_cpu=True`."""
    found = []
    for entry in summary.entries:
        value = entry.value
        if value[0] != "call":
            continue
        spelled = spelled_name(summary, value[1]) or ""
        if spelled.rpartition(".")[0].rsplit(".", 1)[-1] != MULTIMODAL_FIELD_CONFIG:
            continue
        on_cpu = any(name == "keep_on_cpu" and argument == ("lit", "bool", True) for name, argument in value[3])
        found.append((entry.key, on_cpu, entry.line))
    return found


# Last parts of the decorators that make a function a hot root (`torch.compile`, ...).
ROOT_DECORATOR_NAMES = frozenset({"compile", "make_graphed_callables"})
# Name tables read whole (every name at once): any row of theirs that changes touches `t:<table>`.
WHOLE_TABLES = frozenset({"roots"})
# Touched when a base that names a class under another name may have come or gone
# (`ProjectStore.renamed_bases_touched`): what `ProjectIndex._renamed_bases` reads of the whole project.
RENAMED_BASES = "t:renamed-bases"


def spelled_name(summary: ModuleSummary, value: Value, function: str | None = None) -> str | None:
    """The qualified dotted name a value spells through the module's imports (`torch.zeros`), if any."""
    spelled = dotted_parts(value)
    if spelled is None:
        return None
    head, parts = spelled[0], spelled[1:]
    if "." in head:  # an import the summary already resolved
        base = head
    else:
        local = None
        if function:  # a name imported in the function, or a class or function defined in its body
            local = summary.local_imports.get((function, head)) or nested_name(summary, function, head)
        base = local or summary.imports.get(head)
        if base is None:
            if head in summary.classes or head in summary.functions or head in summary.globals:
                base = summary.qualified(head)
            else:
                base = head
    return ".".join([base, *parts])


def nested_name(summary: ModuleSummary, function: str, name: str) -> str | None:
    """The qualified name of the class or function `name` defined in the body of `function` or of a
    function it is nested in (`f.<locals>.Inner`), which shadows a module-level one of that name."""
    scope = function
    while scope:
        candidate = f"{scope}.<locals>.{name}"
        if candidate in summary.classes or candidate in summary.functions:
            return summary.qualified(candidate)
        scope = scope.rpartition(".<locals>.")[0]
    return None


@dataclass(frozen=True)
class Symbol:
    """What a qualified name denotes in the project."""

    kind: str  # "module" | "class" | "function" | "global"
    module: str
    local: str  # the qualname within the module ("" for a module)

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.local}" if self.local else self.module


class KeptAnswers:
    """Answers of the index's that are not facts (the classes deriving from a class), kept in the
    cache as facts are and dropped with what they read (`deps.py`): a warm run reads them instead of
    computing them again. Without a cache, each is computed once per process."""

    def __init__(self, reads: Reads, cache: FactCache | None = None) -> None:
        self._reads = reads
        self.cache = cache
        self._known: dict[tuple, Any] = {}
        self._solved: list[tuple[tuple, Any, frozenset]] = []

    def __call__(self, key: tuple, compute: Callable[[], Any]) -> Any:
        self._reads.add(key)
        if key in self._known:
            return self._known[key]
        value = self.cache.fact(key) if self.cache is not None else None
        if value is None:
            self._reads.begin()
            try:
                value = compute()
            finally:
                deps = self._reads.end()
            if self.cache is not None:
                self._solved.append((key, value, deps))
        self._known[key] = value
        return value

    def solved(self) -> list[tuple[tuple, Any, frozenset]]:
        """The answers computed since the last call, each with what it read (for the cache)."""
        out, self._solved = self._solved, []
        return out

    def forget(self) -> None:
        """Drop what this process found or solved (the index changed under it)."""
        self._known.clear()
        self._solved = []


class ProjectIndex:
    def __init__(self, modules: Iterable[str], load: Callable[[str], ModuleSummary | None], tables: NameTables,
                 root: str = "", reads: Reads | None = None) -> None:
        self.modules = frozenset(modules)
        self._load = load
        self._summaries: dict[str, ModuleSummary | None] = {}
        self._read_summaries: dict[str, ReadSummary] = {}
        self._calls_in: dict[str, dict[str | None, list[CallSite]]] = {}
        self.tables = tables
        self.root = root
        # What each answer reads (see deps.py); the inference shares this recorder.
        self.reads = reads if reads is not None else Reads(enabled=False)
        self._symbols: dict[str, tuple[Symbol | None, Dep | None]] = {}
        self._predicates: dict[str, tuple[bool | None, Dep | None]] = {}  # `off_cuda_if` function -> its result
        self._subclasses: dict[str, tuple[frozenset[str], Dep | None]] = {}  # class -> classes deriving from it directly
        # Answers costly to find, kept across runs in the cache of the inference made over this index.
        self.kept = KeptAnswers(self.reads)
        self._bases_by_name: dict[str, list[tuple[str, str]]] | None = None
        self._renamed: dict[str, tuple[dict[str, set[str]], Dep | None]] = {}
        self._mro: dict[str, tuple[list[str], Dep | None]] = {}
        self._by_name: dict[str, tuple[dict, dict, dict]] = {}
        self._stored_callables: dict[str, dict[str, list[tuple[Store, int, Value]]]] = {}
        self._unreferenced: dict[tuple[str, str], tuple[bool, Dep | None]] = {}
        self._deciding: set[tuple[str, str]] = set()
        self._tentative: list[tuple[str, str]] = []

    @classmethod
    def from_summaries(cls, summaries: Iterable[ModuleSummary], root: str = "") -> "ProjectIndex":
        by_module = {s.module: s for s in summaries}
        tables = NameTables()
        for summary in by_module.values():
            tables.add(summary)
        return cls(by_module, by_module.get, tables, root)

    # --- modules ---------------------------------------------------------------------------
    def summary(self, module: str) -> ModuleSummary | None:
        """The module's summary as answers read it: the parts they read are recorded (`parts.py`);
        that it does not exist is read here (a module removed or moved to another file changes
        every part)."""
        found = self._read_summaries.get(module)
        if found is None:
            summary = self._summary(module)
            if summary is None:
                self.reads.add(f"m:{module}")
                return None
            found = self._read_summaries[module] = ReadSummary(summary, self.reads)
        return found  # type: ignore[return-value]  # reads as a ModuleSummary

    def _summary(self, module: str) -> ModuleSummary | None:
        if module not in self._summaries:
            self._summaries[module] = self._load(module) if module in self.modules else None
        return self._summaries[module]

    def replace(self, summary: ModuleSummary) -> None:
        """Use `summary` for its module (a file being edited, newer than the cache)."""
        old = self._summary(summary.module)
        self.modules = self.modules | {summary.module}
        self.tables.replace(summary, old)
        self._summaries[summary.module] = summary
        self._read_summaries.pop(summary.module, None)
        self._calls_in.pop(summary.module, None)
        self._symbols.clear()
        self._predicates.clear()
        self._subclasses.clear()
        self.kept.forget()
        self._bases_by_name = None
        self._renamed.clear()
        self._mro.clear()
        self._by_name.pop(summary.module, None)
        self._stored_callables.pop(summary.module, None)
        self._unreferenced.clear()

    # --- names ---------------------------------------------------------------------------------
    def resolve(self, dotted: str) -> Symbol | None:
        """What `pkg.mod.Name` (or `pkg.mod.Class.method`) denotes, following re-exports."""
        return self.reads.memo(self._symbols, "resolve", dotted, lambda: self._guarded_resolve(dotted))

    def _guarded_resolve(self, dotted: str) -> Symbol | None:
        self._symbols[dotted] = (None, None)  # an import cycle back to `dotted` resolves to nothing
        try:
            return self._resolve(dotted) or self._in_namespace_package(dotted)
        finally:
            del self._symbols[dotted]

    def _in_namespace_package(self, dotted: str) -> Symbol | None:
        """`megatron.core.x` where `megatron/` is a namespace package (no `__init__.py`) above the top
        package `core`: the files are named from their top package (`core.x`, see roots.py), while the
        project's code imports them through the namespace. The folder must be the one the file is in."""
        head, _, rest = dotted.partition(".")
        if not rest or head in self.modules:
            return None
        found = self.resolve(rest)
        if found is None:
            return None
        summary = self._summary(found.module)
        spelled = found.module.replace(".", "/")
        if summary is None or not (summary.path.startswith(f"{head}/{spelled}.") or
                                   summary.path.startswith(f"{head}/{spelled}/__init__.")):
            return None
        return found

    def _resolve(self, dotted: str) -> Symbol | None:
        # Resolving reads only which names a module defines and imports (`s:`), and which modules
        # exist (also when absent: a module added later would change the answer).
        if dotted.startswith("torch.ops."):
            return self._custom_op(dotted)
        self.reads.add(f"s:{dotted}")
        if dotted in self.modules:
            return Symbol("module", dotted, "")
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            self.reads.add(f"s:{module}")
            if module not in self.modules:
                continue
            summary = self._summary(module)
            if summary is None:
                return None
            local = ".".join(parts[cut:])
            head, _, rest = local.partition(".")
            # What the module defines or imports under these names (`parts.py`), not the whole module.
            self.reads.add(symbol_label(module, local))
            if rest:
                self.reads.add(symbol_label(module, head))
            if local in summary.classes:
                return Symbol("class", module, local)
            if local in summary.functions:
                return Symbol("function", module, local)
            target = summary.imports.get(head)
            # A name the module only imports (`from .core import Batch` in an `__init__`) is a
            # re-export: it denotes what it imports, not a global of this module.
            reexport = target is not None and summary.globals.get(head) == ("name", target)
            if not rest and head in summary.globals and not reexport:
                return Symbol("global", module, head)
            if target is not None and target != dotted:
                return self.resolve(f"{target}.{rest}" if rest else target)
            self.reads.add(symbol_label(module, "*"))  # a star import added later may define it
            for star in summary.star_imports:
                if star not in self.modules and self._in_namespace_package(star) is None:
                    # A module the project does not hold: asking it for `local` would ask this module
                    # again for `<star>.<local>`, a name one part longer each time, without end.
                    continue
                found = self.resolve(f"{star}.{local}")
                if found is not None:
                    return found
            return None
        return None

    def _custom_op(self, dotted: str) -> Symbol | None:
        """The project function implementing `torch.ops.<ns>.<op>` (or `.<op>.<overload>`): the one
        a module registers under that name (the namespace is not checked: one project, one library)."""
        op = torch_op_name(dotted)
        if op is None:
            return None
        self.reads.add(f"n:ops:{op}")
        for module in sorted(self.tables.ops.get(op, ())):
            summary = self.summary(module)
            implementation = summary.custom_ops.get(op) if summary is not None else None
            if implementation is None:
                continue
            if implementation[0] == "name" and implementation[1] in summary.functions:
                return Symbol("function", module, implementation[1])
            spelled = spelled_name(summary, implementation)
            found = self.resolve(spelled) if spelled is not None and not spelled.startswith("torch.") else None
            if found is not None and found.kind == "function":
                return found
        return None

    def custom_ops_of(self, summary: ModuleSummary, function: str) -> set[str]:
        """The operators the module registers a module-level function of its own as."""
        return {op for op, value in summary.custom_ops.items() if value == ("name", function)}

    def function(self, qualname: str) -> tuple[ModuleSummary, FunctionInfo] | None:
        symbol = self.resolve(qualname)
        if symbol is None or symbol.kind != "function":
            return None
        summary = self.summary(symbol.module)
        return (summary, summary.functions[symbol.local]) if summary is not None else None

    def klass(self, qualname: str) -> tuple[ModuleSummary, ClassInfo] | None:
        symbol = self.resolve(qualname)
        if symbol is None or symbol.kind != "class":
            return None
        summary = self.summary(symbol.module)
        return (summary, summary.classes[symbol.local]) if summary is not None else None

    # --- the class hierarchy --------------------------------------------------------------------
    def bases(self, class_qualname: str) -> list[str]:
        """The project classes a class derives from directly (external bases are left out)."""
        found = self.klass(class_qualname)
        if found is None:
            return []
        summary, info = found
        out = []
        for base in info.bases:
            name = self.value_name(summary, base)
            symbol = self.resolve(name) if name else None
            if symbol is not None and symbol.kind == "class":
                out.append(symbol.qualname)
        return out

    def mro(self, class_qualname: str) -> list[str]:
        """The class and its project ancestors, nearest first (depth-first, each once)."""
        return self.reads.memo(self._mro, "mro", class_qualname, lambda: self._mro_of(class_qualname))

    def _mro_of(self, class_qualname: str) -> list[str]:
        out: list[str] = []
        stack = [class_qualname]
        while stack and len(out) < 64:
            current = stack.pop(0)
            if current in out:
                continue
            out.append(current)
            stack.extend(self.bases(current))
        return out

    def subclasses(self, class_qualname: str) -> set[str]:
        """Every project class deriving from `class_qualname`, transitively."""
        out: set[str] = set()
        stack = [class_qualname]
        while stack:
            current = stack.pop()
            # A class that starts or stops deriving from `current` changes the answer.
            self.reads.add(f"b:{current.rsplit('.', 1)[-1]}")
            for sub in self._direct_subclasses(current):
                if sub not in out:
                    out.add(sub)
                    stack.append(sub)
        return out

    def _direct_subclasses(self, class_qualname: str) -> frozenset[str]:
        """The classes whose bases name this class. Only the bases spelled with its name, or with a name
        no project class has (a re-export under another name), are resolved: resolving every base of
        the project reads most modules' summaries, which is most of the work after an edit. The answer
        is kept in the cache (`KeptAnswers`): finding the re-exported bases scans the whole project."""
        return self.reads.memo(self._subclasses, "subclasses", class_qualname,
                               lambda: self.kept(("direct-subclasses", class_qualname),
                                                 lambda: self._find_direct_subclasses(class_qualname)))

    def _find_direct_subclasses(self, class_qualname: str) -> frozenset[str]:
        # Read here as well as in `subclasses`, so that the answer kept in the cache is dropped when
        # a class starts or stops deriving from this one.
        self.reads.add(f"b:{class_qualname.rsplit('.', 1)[-1]}")
        found: set[str] = set()
        for cls, spelled in self._bases_named().get(class_qualname.rsplit(".", 1)[-1], ()):
            symbol = self.resolve(spelled)
            if symbol is not None and symbol.kind == "class" and symbol.qualname == class_qualname:
                found.add(cls)
        found |= self._renamed_bases().get(class_qualname, set())
        # A template's classes (transformers' `modular_x.py`, which its generated `modeling_x.py` names)
        # are never imported: the generated module's classes are what runs.
        return frozenset(cls for cls in found if not self.is_template(cls.rpartition(".")[0]))

    def keyword_methods(self, name: str) -> list[tuple[ModuleSummary, FunctionInfo]]:
        """The project's methods of this name that a call on an object of unknown class may reach by keyword
        (`keyword_interface`)."""
        self.reads.add(f"n:methods:{name}")
        out = []
        for module in sorted(self.tables.methods.get(name, ())):
            summary = self.summary(module)
            if summary is not None:
                out += [(summary, info) for info in summary.functions.values()
                        if info.name == name and keyword_interface(info)]
        return out

    def class_slot_modules(self, attr: str) -> set[str]:
        """The modules with a class whose class attribute `attr` is a name (`infer_state_class = X`)."""
        self.reads.add(f"n:slots:{attr}")
        return set(self.tables.slots.get(attr, ()))

    def is_template(self, module: str) -> bool:
        """Whether another project module says it was generated from `module`."""
        self.reads.add(f"n:generated:{module}")
        return bool(self.tables.generated.get(module))

    def _bases_named(self) -> dict[str, list[tuple[str, str]]]:
        """(class, base as spelled) rows by the last part of the base's name."""
        if self._bases_by_name is None:
            self._bases_by_name = {}
            for cls, spelled in self.tables.base_rows():
                self._bases_by_name.setdefault(spelled.rsplit(".", 1)[-1], []).append((cls, spelled))
        return self._bases_by_name

    def _renamed_bases(self) -> dict[str, set[str]]:
        """Bases not spelled as the module that defines a class of that name, resolved once: a re-export
        under another name (`from .core import Batch as B`, even when another module has a class `B`),
        or a class outside the project (`torch.nn.Module`)."""
        def resolve_all() -> dict[str, set[str]]:
            # A base added under another name (a new alias too) changes the answer.
            self.reads.add(RENAMED_BASES)
            defined = dict(self.tables.classes.items())  # class name -> the modules defining one
            out: dict[str, set[str]] = {}
            for name, rows in self._bases_named().items():
                for cls, spelled in rows:
                    if spelled.rpartition(".")[0] in defined.get(name, ()):
                        continue  # that module's own class of that name: `_find_direct_subclasses` finds it
                    symbol = self.resolve(spelled)
                    if symbol is not None and symbol.kind == "class":
                        out.setdefault(symbol.qualname, set()).add(cls)
            return out

        return self.reads.memo(self._renamed, "renamed-bases", "", resolve_all)

    def method(self, class_qualname: str, name: str) -> str | None:
        """The qualified function `name` resolves to on instances of the class (its MRO)."""
        for cls in self.mro(class_qualname):
            found = self.klass(cls)
            if found is not None and name in found[1].methods:
                return f"{cls}.{name}"
        return None

    def value_name(self, summary: ModuleSummary, value: Value, function: str | None = None) -> str | None:
        """The qualified dotted name a value spells through the module's imports (`torch.zeros`), if any."""
        return spelled_name(summary, value, function)

    # --- where names are mentioned ---------------------------------------------------------------
    def _grouped(self, module: str) -> tuple[dict, dict, dict]:
        """A module's call sites, stores and entries grouped by name (computed once per module; the
        caller reads the label of the name it looks up)."""
        grouped = self._by_name.get(module)
        if grouped is None:
            calls: dict[str, list[CallSite]] = {}
            stores: dict[str, list[Store]] = {}
            entries: dict[str, list[Entry]] = {}
            summary = self._summary(module)
            if summary is not None:
                for call in summary.calls:
                    for name in callee_names(call.func):
                        calls.setdefault(name, []).append(call)
                for store in summary.stores:
                    stores.setdefault(store.attr, []).append(store)
                for entry in summary.entries:
                    entries.setdefault(entry.key, []).append(entry)
            grouped = self._by_name[module] = (calls, stores, entries)
        return grouped

    def _mentions(self, kind: str, which: int, name: str,
                  within: Collection[str] | None = None) -> Iterable[tuple[ModuleSummary, object]]:
        self.reads.add(f"n:{kind}:{name}")
        for module in sorted(getattr(self.tables, kind).get(name, ())):
            if within is not None and module not in within:
                continue
            summary = self.summary(module)
            if summary is not None:
                self.reads.add(part_label(module, kind, name))
                for item in self._grouped(module)[which].get(name, ()):
                    yield summary, item

    def calls_named(self, name: str, within: Collection[str] | None = None) -> Iterable[tuple[ModuleSummary, CallSite]]:
        """The call sites whose callee is spelled `name` (`name(...)`, `x.name(...)`), in the modules
        `within` only when it is given. A template's calls are none of them: it never runs."""
        stored = self.tables.call_sites(name)
        if stored is None:
            return ((summary, call) for summary, call in self._mentions("calls", 0, name, within)
                    if not self.is_template(summary.module))  # type: ignore[misc]
        self.reads.add(f"n:calls:{name}")
        return ((summary, call) for module, calls in stored
                if (within is None or module in within) and not self.is_template(module)
                and (summary := self.summary(module)) is not None
                and self._read_calls_named(module, name)
                for call in calls)

    def _read_calls_named(self, module: str, name: str) -> bool:
        self.reads.add(part_label(module, "calls", name))
        return True

    def module_calls(self, module: str) -> list[CallSite]:
        """Every call site of a module (a summary read from the cache holds none itself)."""
        self.reads.add(part_label(module, "calls"))
        return self._module_calls(module)

    def _module_calls(self, module: str) -> list[CallSite]:
        stored = self.tables.module_calls(module) if hasattr(self.tables, "module_calls") else None
        if stored is None:
            summary = self._summary(module)
            return list(summary.calls) if summary is not None else []
        return stored

    def calls_in(self, module: str, function: str | None) -> list[CallSite]:
        """The call sites a function of the module makes (`None`: its module-level code)."""
        self.reads.add(part_label(module, "calls-in", function))
        grouped = self._calls_in.get(module)
        if grouped is None:
            grouped = self._calls_in[module] = calls_by_function(self._module_calls(module))
        return grouped.get(function, [])

    def runs_off_cuda(self, contexts: Iterable[str]) -> bool:
        """Whether a call made in `contexts` (`CallSite.contexts`) runs only off CUDA: behind a test that
        says so, or where a project function that is a predicate of it returned what holds off CUDA
        (`summary.off_cuda_if`)."""
        for context in contexts:
            if context == OFF_CUDA:
                return True
            if context.startswith(OFF_CUDA_IF) and self._predicate(predicate_of(context)) is context.endswith(":1"):
                return True
        return False

    def _predicate(self, function: str) -> bool | None:
        """The `off_cuda_result` of a project function, or None (asked for every call in a tested arm)."""
        def find() -> bool | None:
            # Read a summary only where a predicate of that name exists: the module defining the
            # function named by a test is often a large one (a package's `utils`), and unpickling it
            # was most of the hot-path pass of a one-file check.
            name = function.rpartition(".")[2]
            self.reads.add(f"n:predicates:{name}")
            if not self.tables.predicates.get(name):
                return None
            found = self.function(function)
            return found[1].off_cuda_result if found is not None else None
        return self.reads.memo(self._predicates, "predicate", function, find)

    def import_aliases(self, function: str) -> set[str]:
        """The names other modules import the module-level `function` (a qualname) under with `as`
        (`from pkg.ops import chunk_rule as fla_chunk_rule`): its calls are filed under those. Such
        a module mentions the original name (`mentions.py`), or calls it by that name too."""
        name = function.rpartition(".")[2]
        self.reads.add(f"n:mentions:{name}")
        self.reads.add(f"n:calls:{name}")
        out: set[str] = set()
        for module in sorted(set(self.tables.mentions.get(name, ())) | set(self.tables.calls.get(name, ()))):
            summary = self.summary(module)
            if summary is None:
                continue
            for local, qualified in (*summary.imports.items(),
                                     *((local, q) for (_f, local), q in summary.local_imports.items())):
                if local != name and qualified.rpartition(".")[2] == name:
                    symbol = self.resolve(qualified)
                    if symbol is not None and symbol.qualname == function:
                        out.add(local)
        return out

    def rebindings(self, function: str) -> list[tuple[str, int, ModuleSummary, Store]]:
        """The attributes the module-level `function` (a qualname) is stored into as a stand-in for a
        method, `w.begin_forward = partial(fast_decode_plan, w)` (SGLang's FlashInfer backends replace
        the wrappers' planning this way) or `obj.hook = function`: each with how many leading parameters
        the stored value binds, and the store. Such a module mentions the function (`mentions.py`)."""
        name = function.rpartition(".")[2]
        self.reads.add(f"n:mentions:{name}")
        out = []
        for module in sorted(self.tables.mentions.get(name, ())):
            summary = self.summary(module)
            if summary is None:
                continue
            for store, bound, value in self._callables_stored(summary).get(name, ()):
                spelled = spelled_name(summary, value, store.function)
                symbol = self.resolve(spelled) if spelled else None
                if symbol is not None and symbol.kind == "function" and symbol.qualname == function:
                    out.append((store.attr, bound, summary, store))
        return out

    def _callables_stored(self, summary: ModuleSummary) -> dict[str, list[tuple[Store, int, Value]]]:
        """A module's stores of a named callable or a `partial` of one, by the callable's last name
        (computed once per module): (the store, how many arguments the partial binds, the callable)."""
        self.reads.add(part_label(summary.module, "stores"))  # read whole, once per module
        found = self._stored_callables.get(summary.module)
        if found is None:
            found = self._stored_callables[summary.module] = {}
            for store in summary.stores:
                value, bound = store.value, 0
                if value[0] == "call" and value[2] and not value[3] and all(a[0] != "*" for a in value[2]) and \
                        spelled_name(summary, value[1], store.function) == "functools.partial":
                    value, bound = value[2][0], len(value[2]) - 1
                if value[0] in ("name", "attr"):
                    last = value[1].rpartition(".")[2] if value[0] == "name" else value[2]
                    found.setdefault(last, []).append((store, bound, value))
        return found

    def mentioned_as_value(self, name: str, class_qualname: str | None = None) -> bool:
        """Whether some module mentions the function `name`, or the method `name` of the class
        `class_qualname`, other than as a callee and not in a string (passes it on, stores it:
        `ModuleSummary.value_mentions`): calls of it may be made where the index cannot see them.
        For a function: the bare name, or an attribute of anything but `self` (`mod.f`). For a
        method: `Cls.name` with `Cls` a class of its hierarchy (its class, an ancestor or a
        descendant, by name), or `self.name` in a module that defines a class of that hierarchy."""
        self.reads.add(f"n:mentions:{name}")
        hierarchy: set[str] | None = None
        for module in sorted(self.tables.mentions.get(name, ())):  # a superset of the modules
            summary = self.summary(module)
            if summary is None:
                continue
            for mention in summary.value_mentions:
                base, _, attr = mention.rpartition(".")  # a bare name: base is ""
                if attr != name:
                    continue
                if class_qualname is None:
                    if base != "self":
                        return True
                    continue
                if not base:
                    continue  # a bare name is no method
                if hierarchy is None:
                    hierarchy = {class_qualname, *self.mro(class_qualname), *self.subclasses(class_qualname)}
                if base == "self":
                    if any(summary.qualified(local) in hierarchy for local in summary.classes):
                        return True
                elif any(q.rpartition(".")[2] == base for q in hierarchy):
                    return True
        return False

    def unreferenced(self, module: str, function: str) -> bool:
        """Whether nothing that runs mentions the module-level function `function` of `module`: no code
        at module level, in a class or in a root function names it, and every module-level function
        that does is itself unreferenced (`mentions.py`). False for anything that is not a module-level
        function, and for a root."""
        key = (module, function)
        hit = self._unreferenced.get(key)
        if hit is not None:
            value, node = hit
            if node is not None:
                self.reads.add(node)
            return value
        if key in self._deciding:
            # A cycle of functions that only mention each other: none of them runs, unless something
            # outside the cycle mentions one, which the question that began the cycle finds.
            return True
        self._deciding.add(key)
        first_tentative = len(self._tentative)
        self.reads.begin()
        try:
            value = self._find_unreferenced(module, function)
        finally:
            deps = self.reads.end()
            self._deciding.discard(key)
        node = self.reads.node("unreferenced", key, deps)
        if node is not None:
            self.reads.add(node)
        if not value:
            # "Unreferenced" answers given meanwhile may rest on this one being unreferenced too.
            for stale in self._tentative[first_tentative:]:
                self._unreferenced.pop(stale, None)
            del self._tentative[first_tentative:]
        elif self._deciding:
            self._tentative.append(key)  # sound once every question around it is answered the same
        else:
            self._tentative.clear()
        self._unreferenced[key] = (value, node)
        return value

    def _find_unreferenced(self, module: str, function: str) -> bool:
        summary = self.summary(module)
        if summary is None or function not in summary.function_mentions:
            return False
        self.reads.add(f"n:importers:{module}")
        if not self.tables.importers.get(module, set()):
            # A module nothing imports is run, not imported (a script, a test file, a file being tried
            # out): any of its functions may be what runs.
            return False
        self.reads.add(f"n:calls:{function}")
        self.reads.add(f"n:mentions:{function}")
        for other in sorted(self.tables.calls.get(function, set()) | self.tables.mentions.get(function, set())):
            found = self.summary(other)
            if found is None:
                continue
            if function in found.mentions:
                return False
            for caller, names in sorted(found.function_mentions.items()):
                if function in names and (other, caller) != (module, function) and \
                        not self.unreferenced(other, caller):
                    return False
        return True

    def root_modules(self) -> set[str]:
        """The modules that may hold a hot-path root (a marker, a compile decorator, a compiled or
        captured call)."""
        self.reads.add("t:roots")
        return {module for _name, modules in self.tables.roots.items() for module in modules}

    def defines_forward(self, class_qualname: str) -> bool:
        """Whether the class itself defines `forward` (read from the name table, not its summary)."""
        self.reads.add(f"n:forwards:{class_qualname}")
        return bool(self.tables.forwards.get(class_qualname, ()))

    def input_declarations(self, key: str) -> list[tuple[bool, str, int]]:
        """Where the project declares a multimodal input `key`: (kept on the CPU, module, line)."""
        self.reads.add(f"n:inputs:{key}")
        out = []
        for value in sorted(self.tables.inputs.get(key, ())):
            where, _, place = value.partition(" ")
            module, _, line = place.rpartition(":")
            out.append((where == "cpu", module, int(line)))
        return out

    def stores_of(self, attr: str) -> Iterable[tuple[ModuleSummary, Store]]:
        return self._mentions("stores", 1, attr)  # type: ignore[return-value]

    def entries_of(self, key: str) -> Iterable[tuple[ModuleSummary, Entry]]:
        return self._mentions("entries", 2, key)  # type: ignore[return-value]
