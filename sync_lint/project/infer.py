"""Project-wide inference: what a field, a parameter, a return value or a global is.

Each question is a key (`("field", "pkg.mod.ForwardBatch", "seq_lens", budget)`,
`("param", "pkg.mod.f", "x", budget)`, `("return", "pkg.mod.f", budget)`,
`("global", "pkg.mod", "X", budget)`), answered by joining the values that flow into
it across the project: the stores to a field and the arguments of the constructors
that fill it, the arguments of every call site that reaches a parameter, the
`return`s of a function. Values are the summaries' symbolic expressions,
interpreted here with the same torch tables the per-file analysis uses.

How far to follow the flow is part of the key: the budget is the number of hops
between functions left (a field stored from a parameter passed from another field
is three hops). A key at budget 0 uses only what is local and certain (annotations,
`self`, constructors) and the conventions learned across the repository. Because
the budget is in the key, every answer depends on the key alone, never on the
order questions were asked.

Keys are solved on demand and memoised. Keys that depend on each other (a field
stored from a parameter whose callers pass the field) form a strongly connected
component; its members are iterated together from "nothing known" until no value
changes: the least fixed point.

Joining sources follows one policy: values that say nothing (unknown, `None`) are
left out; if the rest agree on a device the key has it. If they disagree, a device
held by at least `convention-share` of them (and two or more) wins as a
convention (a serving engine whose CPU backend builds the same batch with CPU
tensors); otherwise the key is a tensor of unknown device. A parameter as its function's
body reads it (`body_param`) is the exception: a GPU tensor at some of its calls makes it
a GPU tensor by convention, since those calls wait wherever the body reads it. Evidence names the
first source in a stable order and how many agreed. A key whose every source is `None`
(each call passes `None` or leaves a `None` default, and no `*args`/`**kwargs` could
carry the value) is `None`: `x.to(device)` with such a `device` moves nothing.
"""

from __future__ import annotations

import functools
import re
from functools import partial
from typing import Any, Callable, Hashable, Iterable, Protocol, Union

from sync_lint.analysis.conventions import DeviceSettings, cpu_function
from sync_lint.analysis.facts import (
    KWARGS,
    MODULE_MOVES,
    MODULE_STATE,
    UNKNOWN_VALUE_DEVICE,
    module_state,
    NN_MODULE,
    NONE,
    NUMPY,
    PYTHON,
    UNKNOWN,
    Device,
    Fact,
    constructed,
    container_method,
    dict_entry,
    device_value,
    host_list,
    is_exact,
    join,
    library_fields,
    gradient_norm,
    loader_batches,
    loss_output,
    made_by_tensor_type,
    module_in,
    module_output,
    hooked_batch,
    placed_module,
    placed_output,
    prepared_by_launcher,
    moved_like,
    nn_module,
    pieces_of,
    placed_by_library,
    replace,
    spread_elements,
    tensor_type,
)
from sync_lint.analysis.knowledge import (
    ACCELERATOR_NAMES,
    CUDA_ONLY_FUNCTIONS,
    LIBRARY_FIELDS,
    LIGHTNING_MODULES,
    LOADER_PREPARERS,
    LIGHTNING_STEP_HOOKS,
    LOSS_CALLEES,
    NAMESPACE,
    PLACING_METHODS,
    class_like,
    CONTAINERS,
    CONVERTED_NUMBERS,
    CPU_FACTORIES,
    DATA_LOADERS,
    GRADIENT_NORM_FUNCTIONS,
    GRADIENT_NORM_METHODS,
    DEVICE_ALLOCATORS,
    DISPATCHING_DEVICE_MAPS,
    SAME_RESULT_WRAPPERS,
    DTYPE_NAMES,
    EVENT_HANDLES,
    FACTORIES,
    INT_SIZE,
    HOST_VALUE_METHODS,
    LIKE_FACTORIES,
    MAPPING_TYPES,
    METADATA_ATTRS,
    METADATA_METHODS,
    MODULE_NAMES,
    NEW_METHODS,
    NN_MODULE_CLASSES,
    NN_NON_MODULES,
    OUTPUT_FIELDS,
    RESULT_FIELDS,
    SAVED_TENSORS,
    SAVING_METHODS,
    SPLITTING_OPS,
    STREAM_HANDLES,
    TENSOR_ATTRS,
    TENSOR_KEYWORDS,
    SHARES_MEMORY,
    arithmetic_call,
    cuda_device_module,
    factory_rank,
    legacy_tensor_type,
    made_by_constructor,
    model_loader,
    preparing_method,
    module_state_class,
    pins_where_available,
    result_dtype,
    torch_handle_kind,
    torch_returns_device,
    torch_returns_python,
)
from sync_lint.project.deps import Dep
from sync_lint.project.index import (
    MAX_KEYWORD_METHODS,
    KeptAnswers,
    ProjectIndex,
    interface_keywords,
    interface_name,
    keyword_interface,
    nested_name,
    spelled_name,
)
from sync_lint.project.summary import ELEMENT, CallSite, ClassInfo, FunctionInfo, ModuleSummary, Param, Store
from sync_lint.project.values import NONE as NONE_VALUE
from sync_lint.project.values import BUILT_ON_KEY, Value, render
from sync_lint.ranking import PER_STEP, context_of

Key = tuple
Argument = Union[Fact, Callable[[], Fact]]  # a fact, or how to compute it when it is needed
BOTTOM = Fact(Device.UNKNOWN, value_kind="bottom")  # nothing known yet (inside a cycle)
TENSOR = Fact(Device.UNKNOWN, tensor_like=True)
DEFAULT_BUDGET = 6
# A key is joined from at most this many sources (the nearest first): enough to see what a
# field or parameter holds, and a bound on how much of the project one question reads.
MAX_SOURCES = 16
# Calls of module objects (`self.layer(hidden)` running `Layer.forward`) nest as deep as the model:
# values are followed through at most this many of them, in either direction (a `forward`'s
# parameter from its callers, a call's result from `forward`), so that one question does not walk
# a whole module tree.
MODULE_HOPS = 2
_CALLED_METHODS = frozenset({"forward", "__call__"})
# A dispatch table of functions read with a key known only at run time (`TABLE[key](...)`) is followed
# into each of its functions only when it holds this few: a call through transformers'
# `ROPE_INIT_FUNCTIONS` (6 functions) reaches the one the model's configuration names, and its
# refresh calls that pass the input's device reach only the longrope and dynamic ones (four precision
# audits had read such a table function's `.to(device=device)` false).
MAX_DISPATCH = 4
# `super()` as the summaries spell it (no arguments).
_SUPER = ("call", ("name", "super"), (), ())
# How many calls up `never_none` follows a value passed through from a caller's own parameter.
NEVER_NONE_HOPS = 2
# How many calls up `off_cuda_only` follows a function called only from functions that run off CUDA.
OFF_CUDA_HOPS = 3
# Tensor methods that return None.
_NONE_METHODS = frozenset({"backward", "record_stream", "retain_grad", "register_hook", "share_memory_"})
# Methods that give a value whatever the receiver that has them (a tensor's, an array's): `x.tolist()`
# when the index cannot tell what `x` is.
_VALUE_METHODS = frozenset({"tolist", "item", "numel", "clone", "detach", "contiguous", "cpu", "cuda"})
# Builtins whose result is never None.
_VALUE_BUILTINS = frozenset({"int", "float", "bool", "str", "len", "list", "tuple", "dict", "set", "sorted", "range",
                             "max", "min", "sum", "abs", "round", "enumerate", "zip", "divmod", "pow"})
# A call through an instance reaches the subclasses' overrides only when they are this few: with the
# method itself, at most 8 targets, as many as a call site follows (`_MAX_TARGETS` in hot.py).
_MAX_OVERRIDES = 7
_DEVICE_MODULES = tuple(f"torch.{name}" for name in ACCELERATOR_NAMES) + ("torch.accelerator",)
_BUILTIN_NUMBERS = frozenset({"len", "int", "float", "bool", "round", "abs", "sum", "min", "max", "str", "repr"})


class Context:
    """Where a value is interpreted: a module, the function it sits in, the facts of that
    function's parameters when a call is being followed, and how far to look.

    Modes: "full" follows data flow through the project, `budget` hops deep; "types"
    only asks what class a value is an instance of, from annotations, constructors
    and `self` (cheap: used to match call sites and stores to their targets);
    "shallow" looks no further than the expression itself (used to learn
    conventions from many sites).

    `building`: the function runs because an `nn.Module` is being built (called, directly or
    through other calls, from its constructor), so a factory with no `device=` in it allocates
    on the device the module's builder chose (`with torch.device(d):`), not on the CPU.
    """

    __slots__ = ("summary", "function", "params", "mode", "budget", "building")

    def __init__(self, summary: ModuleSummary, function: FunctionInfo | None, params: dict[str, Fact] | None = None,
                 mode: str = "full", budget: int = 0, building: bool = False) -> None:
        self.summary = summary
        self.function = function
        self.params = params
        self.mode = mode
        self.budget = budget
        self.building = building

    @property
    def deep(self) -> bool:
        """Follow flows into other functions (full mode with hops left)."""
        return self.mode == "full" and self.budget > 0

    @property
    def function_qualname(self) -> str | None:
        return self.summary.qualified(self.function.qualname) if self.function is not None else None


class FactCache(Protocol):
    """Facts solved by earlier runs (see `store.py`): a key's fact, or None when not cached."""

    def fact(self, key: Key) -> Fact | None: ...


_PROPERTY_DECORATORS = frozenset({"property", "cached_property"})
_DEVICE_ARRAY_PROTOCOLS = frozenset({"__cuda_array_interface__", "__dlpack__"})
_AUTOGRAD_FUNCTIONS = frozenset({"torch.autograd.Function", "torch.autograd.function.Function"})
_LAYER_STACKS = frozenset({"torch.nn.ModuleList", "torch.nn.Sequential", "nn.ModuleList", "nn.Sequential"})
_MODULE_DICTS = frozenset({"torch.nn.ModuleDict", "nn.ModuleDict"})
_ENUM_BASES = frozenset({f"{prefix}{name}" for prefix in ("", "enum.")
                         for name in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag")})
_MOVES = frozenset({"to", "cuda", "cpu"})  # the methods that move a tensor to a device


class Inference:
    def __init__(self, index: ProjectIndex, settings: DeviceSettings | None = None,
                 convention_share: float = 0.8, convention_sites: int = 3, cache: FactCache | None = None) -> None:
        self.index = index
        self.reads = index.reads
        self.kept = index.kept = KeptAnswers(index.reads, cache)
        self.cache = cache
        # Keys solved in this process since the last `solved()`, each with what it read.
        self._solved: list[tuple[Key, Fact, frozenset]] = []
        self._frames: dict[Key, set] = {}
        self.settings = settings or DeviceSettings()
        self.convention_share = convention_share
        self.convention_sites = convention_sites
        self._memo: dict[Key, Fact] = {}
        self._approx: dict[Key, Fact] = {}
        self._stack: list[Key] = []
        self._position: dict[Key, int] = {}
        self._low: list[int] = []
        self._cycle_reads = 0
        self._specialized: dict[tuple, tuple[Fact, Dep | None]] = {}
        self._return_reads: dict[str, frozenset[str]] = {}
        self._specializing: set[tuple] = set()
        # "types" and "shallow" questions: memoised, a recursive one is unknown.
        self._cheap: dict[tuple, tuple[Fact, Dep | None]] = {}
        self._cheap_active: set[tuple] = set()
        self._cheap_provisional: dict[tuple, tuple[Fact, frozenset]] = {}  # answers that met a cut
        self._cheap_cuts = 0
        # Structural matches, independent of any budget.
        self._caller_memo: dict[str, tuple[list[tuple[ModuleSummary, CallSite, int]], Dep | None]] = {}
        # function -> every known call of it, before `_callers` leaves some out (for `off_cuda_only`)
        self._every_call: dict[str, list[tuple[ModuleSummary, CallSite, int]]] = {}
        # Deployed functions some of whose known calls, made by tests, `_callers` set aside: those calls.
        self._tests_set_aside: dict[str, list[tuple[ModuleSummary, CallSite, int]]] = {}
        # Call sites `_interface_calls` took for calls of a method through a receiver of unknown class.
        self._interface: set[tuple[str, int, Value]] = set()
        # Call sites of an attribute a function was stored into (`_rebound_calls`): the store it may reach.
        self._rebound: dict[tuple[str, int, Value], str] = {}
        self._off_cuda_memo: dict[tuple[str, int], tuple[str | None, Dep | None]] = {}
        self._callee_memo: dict[str, tuple[list[tuple[ModuleSummary, CallSite, Fact]], Dep | None]] = {}
        self._dispatch_memo: dict[str, tuple[frozenset[str], Dep | None]] = {}
        self._callees_pending: set[str] = set()
        self._stores: dict[tuple[str, str], tuple[list, Dep | None]] = {}
        self._never_none_memo: dict[tuple[str, str, int], tuple[bool, Dep | None]] = {}
        self._unset_memo: dict[tuple[str, str, int, bool], tuple[bool, Dep | None]] = {}
        # `eval` of one value in one context, into one reads frame, during one outermost `eval`.
        self._eval_memo: dict[tuple[int, int, int], tuple[Value, Context, object, Fact]] | None = None

    # ======================================================================================
    # Questions the per-file analysis asks
    # ======================================================================================
    def field(self, classes: Iterable[str], attr: str, budget: int = DEFAULT_BUDGET) -> Fact:
        facts = [self.get(("field", cls, attr, budget)) for cls in sorted(classes)]
        return join_sources(facts) if facts else UNKNOWN

    def param(self, function: str, name: str, budget: int = DEFAULT_BUDGET) -> Fact:
        return self.get(("param", function, name, budget))

    def body_param(self, function: str, name: str, budget: int = DEFAULT_BUDGET) -> Fact:
        """The parameter as the function's own body reads it: where the calls disagree, a GPU tensor
        at some of them makes it a GPU tensor by convention (those calls wait where the body reads
        it). What flows out of the function (its returns, the fields it stores) keeps `param`'s
        answer, or one call's GPU argument would reach the results of every other call."""
        return self.get(("bodyparam", function, name, budget))

    def returns(self, function: str, budget: int = DEFAULT_BUDGET) -> Fact:
        return self.get(("return", function, budget))

    def global_value(self, module: str, name: str, budget: int = DEFAULT_BUDGET) -> Fact:
        return self.get(("global", module, name, budget))

    def qualified(self, dotted: str) -> Fact | None:
        return self._qualified(dotted, "full", DEFAULT_BUDGET)

    def object_attribute(self, owner: Fact, attr: str) -> Fact:
        return self.attribute(owner, attr, "full", DEFAULT_BUDGET)

    def entry(self, key: str) -> Fact:
        return self.get(("entry", key))

    def attribute_convention(self, attr: str) -> Fact:
        return self.get(("attrconv", attr))

    # ======================================================================================
    # The solver
    # ======================================================================================
    def get(self, key: Key) -> Fact:
        """The solved fact of a key (BOTTOM while a cycle through it is being solved)."""
        self.reads.add(key)
        known = self._memo.get(key)
        if known is not None:
            return known
        position = self._position.get(key)
        if position is not None:  # on the stack: a cycle back to `key`
            self._cycle_reads += 1
            if self._low:
                self._low[-1] = min(self._low[-1], position)
            return self._approx.get(key, BOTTOM)
        if self.cache is not None:
            cached = self.cache.fact(key)
            if cached is not None:
                self._memo[key] = cached
                return cached
        if len(self._stack) > 200:  # a pathological chain: know nothing rather than overflow
            return UNKNOWN
        position = len(self._stack)
        self._position[key] = position
        self._stack.append(key)
        self._low.append(position)
        self._approx[key] = BOTTOM
        self._approx[key] = self._compute_recorded(key)
        low = self._low.pop()
        if low < position:  # part of a cycle rooted further down the stack: wait for the root
            self._low[-1] = min(self._low[-1], low)
            return self._approx[key]
        if len(self._stack) > position + 1:
            self._iterate(position)
        members = self._stack[position:]
        for member in members:
            fact = self._memo[member] = self._approx.pop(member)
            del self._position[member]
            self._solved.append((member, fact, frozenset(self._frames.pop(member))))
        del self._stack[position:]
        return self._memo[key]

    def _compute_recorded(self, key: Key) -> Fact:
        """`_compute(key)`, recording what it reads into the key's frame (a cycle's members
        accumulate over the iterations)."""
        self.reads.begin()
        try:
            fact = self._compute(key)
        except RecursionError:
            fact = UNKNOWN
        finally:
            self._frames.setdefault(key, set()).update(self.reads.end())
        return fact

    @property
    def cache(self) -> FactCache | None:
        return self._cache

    @cache.setter
    def cache(self, cache: FactCache | None) -> None:
        """The index's kept answers come from the same cache (a text being edited sets part of it aside)."""
        self._cache = self.kept.cache = cache

    def forget(self) -> None:
        """Drop what this process solved (the index changed under it)."""
        self.kept.forget()
        for table in (self._memo, self._specialized, self._return_reads, self._cheap, self._cheap_provisional,
                      self._caller_memo, self._callee_memo, self._dispatch_memo, self._stores,
                      self._never_none_memo, self._unset_memo, self._every_call, self._off_cuda_memo,
                      self._tests_set_aside):
            table.clear()
        self._solved = []

    def solved(self) -> list[tuple[Key, Fact | Any, frozenset]]:
        """The keys solved since the last call and the index's answers kept with them (`KeptAnswers`),
        with what each read, and the nodes (`deps.py`) made since then, with what each read and no
        fact (for the cache)."""
        out, self._solved = self._solved, []
        return out + self.kept.solved() + [(node, None, deps) for node, deps in self.reads.nodes()]

    def _iterate(self, position: int) -> None:
        """Recompute a cycle's members until none changes: the least fixed point.

        Joining by majority is not monotone, so a cycle may have no fixed point (a field stored
        from `d["k"].cpu()` where `d["k"]` holds that field: the field is on the GPU only while the
        entry is not known to be). A member still changing after the last round gets the join of
        the values it took in the last two rounds (its sources' view of both states)."""
        previous: dict[Key, Fact] = {}
        for _ in range(12):
            changed = False
            for member in list(self._stack[position:]):
                self._low.append(self._position[member])
                value = self._compute_recorded(member)
                self._low.pop()
                if value.lattice() != self._approx[member].lattice():
                    changed = True
                previous[member] = self._approx[member]
                self._approx[member] = value
            if not changed:
                return
        for member, before in previous.items():
            if before.lattice() != self._approx[member].lattice():
                self._approx[member] = join_sources([self._approx[member], before])

    def _compute(self, key: Key) -> Fact:
        kind = key[0]
        if kind == "field":
            return self._field(key[1], key[2], key[3])
        if kind == "param":
            return self._param(key[1], key[2], key[3])
        if kind == "bodyparam":
            return self._param(key[1], key[2], key[3], gpu_wins=True)
        if kind == "return":
            return self._return(key[1], key[2])
        if kind == "global":
            return self._global(key[1], key[2], key[3])
        if kind == "entry":
            return self._entry_convention(key[1])
        if kind == "attrconv":
            return self._attribute_convention(key[1])
        if kind == "overrides":
            return self._find_overrides(key[1], key[2])
        raise KeyError(key)

    def _cheap_question(self, key: tuple, compute: Callable[[], Fact]) -> Fact:
        """A memoised "types"/"shallow" question; a recursive one is unknown, and a result that
        depended on such a cut is kept only until the outermost question returns (so answers do
        not depend on the order of questions)."""
        known = self._cheap.get(key)
        if known is not None:
            if known[1] is not None:
                self.reads.add(known[1])
            return known[0]
        provisional = self._cheap_provisional.get(key)
        if provisional is not None:
            self.reads.replay(provisional[1])
            return provisional[0]
        if key in self._cheap_active:
            self._cheap_cuts += 1
            return UNKNOWN
        cuts = self._cheap_cuts
        self._cheap_active.add(key)
        self.reads.begin()
        try:
            fact = compute()
        finally:
            self._cheap_active.discard(key)
            deps = self.reads.end()
            if not self._cheap_active:
                self._cheap_provisional.clear()
        if self._cheap_cuts != cuts:
            self.reads.replay(deps)
            if self._cheap_active:
                # Kept for the rest of the outermost question only: without it, a cycle of
                # functions returning each other's results is explored once per path through it
                # (exponential; one vLLM file ran for minutes).
                self._cheap_provisional[key] = (fact, deps)
            return fact
        node = self.reads.node("cheap", key, deps)
        self._cheap[key] = (fact, node)
        if node is not None:
            self.reads.add(node)
        return fact

    # ======================================================================================
    # Keys
    # ======================================================================================
    def _field(self, cls: str, attr: str, budget: int) -> Fact:
        sources: list[Fact] = []
        defaults: list[Fact] = []
        declared: Fact | None = None
        scalar: Fact | None = None  # the field is declared a Python scalar (`_decode_causal: bool = True`)
        scalar_spelled = ""
        field_declared = False
        for owner in self.index.mro(cls):
            found = self.index.klass(owner)
            if found is None:
                continue
            summary, info = found
            for name, annotation, default, line in info.fields:
                if name != attr:
                    continue
                field_declared = True
                annotated = self._annotation_fact(summary, annotation)
                if _scalar_annotation(annotation):
                    if scalar is None:
                        scalar = _declared_scalar_field(attr, info.name, annotation, self._where(summary, line))
                        scalar_spelled = _spelled(annotation)
                elif annotated is not None and declared is None:
                    declared = replace(annotated, reason=f"field `{attr}` of `{info.name}` is declared "
                                       f"`{_spelled(annotation)}`", where=self._where(summary, line))
                if default is not None:
                    context = Context(summary, None, budget=budget - 1)
                    defaults.append(self._source(self.eval(default, context), f"field `{attr}` of `{info.name}` "
                                                 f"defaults to `{render(default)}`", summary, line))
                    sources.append(defaults[-1])
            for name, value, line in info.attributes:
                if name == attr:
                    context = Context(summary, None, budget=budget - 1)
                    sources.append(self._source(self.eval(value, context), f"class attribute `{info.name}.{attr}` "
                                                f"is `{render(value)}`", summary, line))
        sources += self._class_slot_overrides(cls, attr)
        in_a_method = self._declared_in_a_method(cls, attr)
        if in_a_method is not None:
            return in_a_method
        if scalar is not None and not all(_proven_gpu_tensor(s) for s in sources):
            return scalar  # a default or class attribute that is no GPU tensor: the declaration stands
        every = False  # every construction passes the field: its default is never used
        if self._by_position(cls):
            constructed, every = self._constructor_fields(cls, attr, budget)
            sources += constructed + self._replaced_fields(cls, attr, budget)
        elif field_declared and self._init_takes_keyword(cls, attr):
            constructed, every = self._constructor_fields(cls, attr, budget, by_position=False)
            sources += constructed
        if every and defaults:
            # A default no construction leaves in place is a placeholder (vLLM's `state_indices_tensor:
            # torch.Tensor = torch.Tensor()`, a CPU tensor, while both constructions pass a GPU one).
            sources = [source for source in sources if not any(source is d for d in defaults)]
        moved: list[str] = []
        for store_summary, store in self._stores_into(cls, attr):
            context = Context(store_summary, store_summary.functions.get(store.function) if store.function else None,
                              budget=budget - 1)
            stored = self.eval(store.value, context)
            if stored.is_tensor and stored.device in (Device.CPU, Device.PINNED) and \
                    self._moves_itself(store_summary, store):
                # `self.ids = self.ids.to("cpu", non_blocking=True)`: the field's own value moved to
                # the host later in the object's life (SGLang's `copy_to_cpu`), not another source.
                # Counted as one, it outvoted the accelerator where the field is made.
                moved.append(f"`{render(store.value)}` ({self._where(store_summary, store.line)})")
                continue
            sources.append(self._source(stored, f"field `{attr}` of `{_short(cls)}` is "
                                        f"stored from `{render(store.value)}`", store_summary, store.line))
        if scalar is not None:
            # `_decode_causal: bool = True`: the class says what the field holds, whatever one store
            # elsewhere is taken for (one vLLM model passes a GPU tensor as `causal`, the others bools).
            # Unless every value it is given is a GPU tensor, proven: then the declaration is wrong, and
            # each read waits (vLLM's `total_seq_lens: int`, built from `seq_lens[start:].sum()`).
            if not sources or not all(_proven_gpu_tensor(s) for s in sources):
                return scalar
            joined = join_sources(sources)
            return replace(joined, reason=f"{joined.reason}, though declared `{scalar_spelled}`")
        joined = join_sources(sources)
        if moved and joined.is_tensor and joined.device is Device.GPU:
            # Whether a read comes before the move or after it is a matter of time the index does not
            # see: a convention, and the evidence says so.
            joined = replace(joined, convention=True, reason=f"{joined.reason}; it is moved to the host in "
                             f"place by {moved[0]}, and a read after that does not wait")
        if declared is not None and declared.value_kind == "list" and joined.value_kind in ("list", "tuple"):
            return joined
        if declared is not None and not (joined.is_tensor or joined.value_kind in ("object", "class", "callable")):
            return declared
        if declared is not None and declared.value_kind == "object" and declared.refs and joined.is_tensor \
                and joined.by_convention:
            # `logits_output: Union[LogitsProcessorOutput, PPProxyTensors]` stored from a model's output,
            # a tensor only by convention (SGLang's `ModelRunnerOutput`): the declaration says more.
            return declared
        return joined

    def _moves_itself(self, summary: ModuleSummary, store: Store) -> bool:
        """`base.attr = base.attr.to("cpu", non_blocking=True)`, or a project helper handed the field
        (SGLang's `_async_d2h(self.accept_lens)`): the field's own value copied to the host for a later
        read, not a value built from it (`torch.full((n,), self.frames)` of a number), nor a blocking move
        (`self.vae = self.vae.to("cpu")`, an offload of a model)."""
        target = ("attr", store.base, store.attr)
        value = store.value
        if value[0] != "call":
            return False
        func, args, kwargs = value[1], value[2], value[3]
        if func[0] == "attr" and func[1] == target:
            return func[2] == "to" and ("non_blocking", ("lit", "bool", True)) in kwargs
        if not args or args[0] != target:
            return False
        dotted = self.index.value_name(summary, func, store.function)
        symbol = self.index.resolve(dotted) if dotted is not None else None
        return symbol is not None and symbol.kind == "function"

    def _declared_in_a_method(self, cls: str, attr: str) -> Fact | None:
        """What `self.kind: str | None = None` in a method of the class (or a base) declares, when it is
        a Python scalar: the class says what the field holds, as a declaration in its body does."""
        lineage = set(self.index.mro(cls))
        for summary, store in self._stores_into(cls, attr):
            if store.owner is not None and store.declared and _scalar_annotation(store.declared) and \
                    summary.qualified(store.owner) in lineage:
                return _declared_scalar_field(attr, _short(summary.qualified(store.owner)), store.declared,
                                              self._where(summary, store.line))
        return None

    def _stores_into(self, cls: str, attr: str) -> list:
        """The stores to `attr` on instances of the class or a relative (a structural match)."""
        return self.reads.memo(self._stores, "stores", (cls, attr), lambda: self._find_stores_into(cls, attr))

    def _find_stores_into(self, cls: str, attr: str) -> list:
        related = set(self.index.mro(cls)) | self.index.subclasses(cls)
        found = []
        for summary, store in self.index.stores_of(attr):
            if self.settings.off_cuda_module(summary.path):
                # Code written for another platform says nothing of a CUDA machine's objects: SGLang's
                # MLX worker stores its stub runner into the `_model_runner` every worker has.
                continue
            if store.owner is not None:  # `self.attr = ...` in a method: its class is known
                if summary.qualified(store.owner) in related:
                    found.append((summary, store))
                continue
            base = self.eval(store.base, self._context(summary, store.function, "types"))
            if base.value_kind in ("object", "class") and base.refs & related:
                found.append((summary, store))
        return _nearest(found, cls, MAX_SOURCES)

    def _by_position(self, cls: str) -> bool:
        """The constructor takes the declared fields: a dataclass, NamedTuple, pydantic model, msgspec
        struct, or any class with annotated fields and no `__init__` of its own in the project."""
        for owner in self.index.mro(cls):
            found = self.index.klass(owner)
            if found is None:
                continue
            summary, info = found
            spelled = [self.index.value_name(summary, b) or "" for b in info.bases]
            if info.fields_by_position or info.field_base(spelled):
                return True
        has_fields = any((k := self.index.klass(o)) and k[1].fields for o in self.index.mro(cls))
        return bool(has_fields) and self.index.method(cls, "__init__") is None

    def _init_takes_keyword(self, cls: str, attr: str) -> bool:
        """The constructor takes `attr` only through `**kwargs` (vLLM's `TensorSchema`:
        `__init__(self, *, validate=True, **kwargs)` sets each keyword as an attribute)."""
        init = self.index.method(cls, "__init__")
        found = self.index.function(init) if init is not None else None
        if found is None:
            return False
        params = found[1].params
        return any(p.kind == "starstar" for p in params) and all(p.name != attr for p in params)

    def _constructor_fields(self, cls: str, attr: str, budget: int,
                            by_position: bool = True) -> tuple[list[Fact], bool]:
        """`attr` as passed to the constructor of a dataclass-like class (keyword or position), and
        whether every construction the index knows (at least one) passes it."""
        order = self._field_order(cls)
        position = order.index(attr) if attr in order and by_position else None
        out: list[Fact] = []
        every = True
        for call_summary, call, _skip in self._callers_of_class(cls):
            value = _field_argument(call, attr, position)
            if value is None:
                every = False
                value = self._moved_field(call, cls, attr)
                if value is None:
                    continue
            context = Context(call_summary, call_summary.functions.get(call.function) if call.function else None,
                              budget=budget - 1)
            out.append(self._source(self.eval(value, context), f"field `{attr}` of `{_short(cls)}` is constructed "
                                    f"from `{render(value)}`", call_summary, call.line))
        return out, every and bool(out)

    def _moved_field(self, call: CallSite, cls: str, attr: str) -> Value | None:
        """`self.attr.to(device)` where the construction spreads a copy of every field of `self` moved to a
        device (`summary._field_copies`: LMDeploy's `ModelInputs.to_device`), for a field declared a tensor
        (the copy moves only the tensors; it leaves the others, and a None one, as they are)."""
        spread = next((v for k, v in call.kwargs if k == "**" and v[0] == "fieldsof"), None)
        if spread is None or not self._declared_tensor(cls, attr):
            return None
        _tag, owner, method, args, kwargs = spread
        return ("call", ("attr", ("attr", owner, attr), method), args, kwargs)

    def _declared_tensor(self, cls: str, attr: str) -> bool:
        """The class or a base declares the field a tensor (`seq_length: torch.LongTensor`, `Optional[Tensor]`)."""
        return any(t.rsplit(".", 1)[-1].endswith("Tensor") for owner in self.index.mro(cls)
                   if (k := self.index.klass(owner)) for name, types, _d, _l in k[1].fields if name == attr
                   for t in types)

    def _field_order(self, cls: str) -> list[str]:
        """The declared fields of a dataclass-like class, bases first: the order its constructor takes them."""
        return [f[0] for owner in reversed(self.index.mro(cls)) if (k := self.index.klass(owner)) for f in k[1].fields]

    def _replaced_fields(self, cls: str, attr: str, budget: int) -> list[Fact]:
        """`attr` as given to `dataclasses.replace(obj, attr=...)` for an `obj` of the class (or a relative)."""
        related = set(self.index.mro(cls)) | self.index.subclasses(cls)
        out: list[Fact] = []
        for summary, call in self.index.calls_named("dataclasses.replace"):
            value = next((v for k, v in call.kwargs if k == attr), None)
            if value is None or not call.args:
                continue
            context = self._context(summary, call.function, "types")
            target = self.eval(call.args[0], context)
            if target.value_kind != "object" or not target.refs & related:
                continue
            context = self._context(summary, call.function, budget=budget - 1)
            out.append(self._source(self.eval(value, context), f"field `{attr}` of `{_short(cls)}` is replaced by "
                                    f"`{render(value)}`", summary, call.line))
        return out[:MAX_SOURCES]

    def _param(self, function: str, name: str, budget: int, gpu_wins: bool = False) -> Fact:
        found = self.index.function(function)
        if found is None:
            return UNKNOWN
        summary, info = found
        fact = self._passed_param(summary, info, function, name, budget, gpu_wins)
        # Only a tensor: a kernel takes Python numbers too (`n_expts_tot`, block sizes).
        if info.launched_params and fact.is_unknown_tensor:
            launched = self._launched(summary, info, name)
            if launched is not None:
                return launched
        return fact

    def _launched(self, summary: ModuleSummary, info: FunctionInfo, name: str) -> Fact | None:
        """The tensor parameter as a launch of a Triton kernel takes it (`kernel[grid](..., cu_seqlens, ...)`),
        or a library function that takes CUDA tensors only (`CUDA_ONLY_FUNCTIONS`: flash-attn's):
        on the device the kernel runs on, for every call that passes a tensor (a kernel reads no host
        memory). fla's `chunk_gated_delta_rule_fwd_h` hands `cu_seqlens` to its kernel, and
        `prepare_chunk_offsets(cu_seqlens, BT)` before it gets a GPU tensor."""
        declared = next((p.annotation for p in info.params if p.name == name), ())
        if not any(t.rsplit(".", 1)[-1].endswith("Tensor") for t in declared):
            # Only a parameter declared a tensor: kernels take numbers too, and what the callers of SGLang's
            # `fused_qkvzba_split_reshape_cat(..., num_heads_qk, ...)` pass was taken for a tensor.
            return None
        if any(t in _SCALAR_ANNOTATIONS for t in declared):
            return None  # `num_sampled: torch.Tensor | int`: vLLM launches with the tensor, fills with the int
        for line, param, kernel in info.launched_params:
            if param != name:
                continue
            spelled = spelled_name(summary, kernel, info.qualname)
            if spelled in CUDA_ONLY_FUNCTIONS:
                return Fact(Device.GPU, tensor_like=True, subject=name, where=self._where(summary, line),
                            reason=f"parameter `{name}` of `{info.name}` is passed to `{spelled}` at line {line}, "
                                   "which takes CUDA tensors only")
            found = self.index.function(spelled) if spelled is not None else None
            if found is not None and any(d.split(".")[0] == "triton" for d in found[1].decorators):
                return Fact(Device.GPU, tensor_like=True, subject=name, where=self._where(summary, line),
                            reason=f"parameter `{name}` of `{info.name}` is passed to the Triton kernel "
                                   f"`{found[1].name}` at line {line}")
        return None

    def _passed_param(self, summary: ModuleSummary, info: FunctionInfo, function: str, name: str, budget: int,
                      gpu_wins: bool) -> Fact:
        """The parameter as its calls, its default and its annotation decide it."""
        param = next((p for p in info.params if p.name == name), None)
        if param is not None and param.kind == "starstar":
            return replace(KWARGS, subject=name)
        if param is None or param.kind == "star":
            return UNKNOWN
        batch = self.lightning_batch(summary, info, name)
        if batch is not None:
            return batch
        declared = self._annotation_fact(summary, param.annotation)
        sources: list[Fact] = []
        short = _short(info.qualname.rsplit(".", 1)[0]) if info.name == "__init__" else info.name
        params = list(info.params)
        omitted = False
        # A device parameter (by name or annotation) reads a string it receives as the device it names,
        # and a value nobody knows as what its name says, by convention only.
        named = self.settings.fact_for_name(name)
        if named is None or named.value_kind != "device":
            annotated = any(t.rsplit(".", 1)[-1] == "device" for t in param.annotation)
            named = device_value(Device.GPU) if annotated else None
        assumed = replace(named, convention=True, reason=f"the device parameter `{name}` receives a value not known") \
            if named is not None else None
        callers = self._callers(function)
        set_aside = self._tests_set_aside.get(function, [])
        if set_aside and not callers:
            # Only tests call it: what serving passes is not known.
            sources.append(assumed or UNKNOWN)
        for caller, call, skip in callers:
            value, left_default = _argument(call, params, name, skip)
            if value is None:
                if left_default:
                    omitted = True
                else:  # `*args`/`**kwargs` may carry it: a value nobody knows
                    sources.append(assumed or UNKNOWN)
                continue
            fact, context = self._passed(info, caller, call, value, budget)
            source = self._source(self._as_device(fact, context, assumed) if assumed else fact,
                                  f"parameter `{name}` of `{short}` receives `{render(value)}`", caller, call.line)
            if (caller.module, call.line, call.func) in self._interface:
                # The call's receiver is of a class not known: that it reaches this method is a guess.
                source = replace(source, convention=True, reason=f"{source.reason} at a call of "
                                 f"`{render(call.func, 40)}` on an object of a class not known")
            rebound = self._rebound.get((caller.module, call.line, call.func))
            if rebound is not None:  # the call reaches the function only on objects that store rebound
                source = replace(source, convention=True, reason=f"{source.reason}, a call of "
                                 f"`{render(call.func, 40)}`, which {rebound} may have rebound")
            sources.append(source)
        # The default counts even when every known call passes the argument: calls the index cannot see
        # (`module(x)` reaching `forward`, callbacks) may leave it.
        if param.default is not None and param.default[:2] != ("lit", "none"):
            context = Context(summary, None, budget=budget - 1)
            fact = self.eval(param.default, context)
            sources.append(self._source(self._as_device(fact, context, assumed) if assumed else fact,
                                        f"parameter `{name}` of `{short}` defaults to `{render(param.default)}`",
                                        summary, info.line))
        if omitted and param.default is not None and param.default[:2] == ("lit", "none"):
            sources.append(NONE)
        joined = join_sources(sources, gpu_wins=gpu_wins)
        if set_aside and (joined.is_tensor or joined.value_kind == "device") and \
                self._tests_pass_otherwise(info, set_aside, name, joined, budget, assumed):
            # What serving passes, not what the tests do: a test that calls the function with its own
            # CPU tensors reads the same answer, which does not hold for it (a test's finding that
            # rests on it is left to `strict`).
            joined = replace(joined, convention=True, reason=f"{joined.reason} (the calls of tests, which "
                             "pass another device, set aside)")
        if joined.value_kind == "none":
            return replace(NONE, reason=f"every known call of `{short}` leaves `{name}` None")
        if (joined.is_tensor or joined.is_unknown_tensor) and assumed is None and param.annotation and \
                all(t in _TEXT_ANNOTATIONS for t in param.annotation):
            # `component_name: str`: no call passes a tensor there; one that seems to is a value the
            # inference took for a tensor (a state dict's key read as its value). Not `dtype="str"`,
            # which stands for a string whose text `reason` holds; nor a device parameter, whose
            # string is the device it names.
            return replace(PYTHON, reason=f"parameter `{name}` of `{short}` is declared `{_spelled(param.annotation)}`",
                           where=self._where(summary, info.line))
        if declared is not None and declared.value_kind == "object" and joined.value_kind == "object" and \
                not is_exact(joined) and joined.refs != declared.refs and not self._narrower(joined.refs, declared.refs):
            # `attn_metadata: LinearAttentionMetadata` passed what another annotation calls an
            # `AttentionMetadata` (`dict[str, AttentionMetadata]`, a class it does not even derive from):
            # only an object built by a constructor, or of a narrower class, says more than the
            # parameter's own annotation.
            return declared
        if declared is not None and declared.value_kind == "object" and declared.refs and joined.is_tensor and \
                not any(self._tensor_subclass(cls) for cls in declared.refs):
            # `past_key_values: Cache | None` passed a tensor: no call does; one that seems to is a call of
            # another class's `forward` through the same attribute (BigBird's `self.self(...)` runs one of
            # two attention classes, each with its own parameters, chosen by the configuration).
            return declared
        if joined.is_tensor or joined.value_kind in ("object", "class", "callable", "device"):
            return joined
        if _scalar_annotation(param.annotation) and not joined.is_unknown_tensor and \
                joined.value_kind in (None, "python") and joined.dtype is None:
            # `max_bs: int` that no call shows a tensor for: the number its annotation promises, as in the
            # function's own body, so `self.max_bs = max_bs` sizes `torch.zeros(self.max_bs)` as a vector.
            return Fact(Device.NOT_TENSOR, value_kind="python", dtype=_scalar_dtype(param.annotation),
                        reason=f"parameter `{name}` of `{short}` is declared `{_spelled(param.annotation)}`",
                        where=self._where(summary, info.line))
        if declared is not None and declared.value_kind == "list" and joined.value_kind in ("list", "tuple", "dict") \
                and joined.items:
            # What the callers pass says more than `list[Tensor]`, or than `dict[str, Tensor]` (TRL's
            # `split_pixel_values_by_grid(batch)` given the dict the trainer built, with its entries).
            return joined
        return declared if declared is not None else joined

    def _tests_pass_otherwise(self, info: FunctionInfo, calls: list[tuple[ModuleSummary, CallSite, int]],
                              name: str, joined: Fact, budget: int, assumed: Fact | None) -> bool:
        """Whether a test's call (of `calls`, those `_callers` set aside) passes parameter `name` a value
        on another device than `joined`, what the deployed calls pass: SGLang's CPU unit tests of a
        layout builder pass `torch.device("cpu")`, its CUDA kernel tests the device serving uses."""
        ours = _placed_on(joined)
        params = list(info.params)
        for caller, call, skip in calls:
            value, _left_default = _argument(call, params, name, skip)
            if value is None:
                continue
            fact, context = self._passed(info, caller, call, value, budget)
            if assumed is not None:  # a device parameter: the string `"cpu"` names the CPU
                fact = self._as_device(fact, context, assumed)
            theirs = _placed_on(fact)
            if theirs not in (None, Device.UNKNOWN, Device.NOT_TENSOR) and theirs != ours:
                return True
        return False

    def _passed(self, info: FunctionInfo, caller: ModuleSummary, call: CallSite, value: Value,
                budget: int) -> tuple[Fact, Context]:
        """What a call of the function passes for one of its parameters (`value`, in the caller)."""
        # A parameter handed on as it came (`self._count(logits)`) costs no hop: layered code passes
        # one tensor down many calls, and the hops are kept for where it was made.
        spent = 0 if value[0] == "param" and call.function is not None else 1
        # A module's `forward` is reached through an object of unknown origin; an autograd function's
        # static `forward` through `Cls.apply(...)`, a plain call.
        through_object = info.name in _CALLED_METHODS and info.kind != "staticmethod"
        # Through an object, at most MODULE_HOPS more; a parameter handed on spends none there either
        # (LitGPT's `input_pos_maxp1` goes `GPT.forward` -> `Block.forward` -> `CausalSelfAttention.forward`).
        context = Context(caller, caller.functions.get(call.function) if call.function else None,
                          budget=min(budget - spent, MODULE_HOPS) if through_object else budget - spent)
        return self.eval(value, context), context

    def passed_at(self, function: str, name: str, caller: str, line: int, budget: int = DEFAULT_BUDGET) -> list[Fact]:
        """What the calls of `function` made by function `caller` at `line` pass for its parameter `name`,
        each as the parameter's join (`param`) sees it; nothing for a call that leaves it out."""
        found = self.index.function(function)
        if found is None:
            return []
        info = found[1]
        out = []
        for summary, call, skip in self._callers(function):
            if call.line != line or call.function is None or summary.qualified(call.function) != caller:
                continue
            value, _left_default = _argument(call, list(info.params), name, skip)
            if value is not None:
                out.append(self._passed(info, summary, call, value, budget)[0])
        return out

    def never_runs(self, summary: ModuleSummary, info: FunctionInfo, line: int) -> tuple[str, str] | None:
        """Why `line` of the function runs on no known call, as (parameter, what the line needs of it),
        or None:

        - "None": the line runs only when the parameter is None, and every known call passes a
          value that is certainly not None (`never_none`);
        - "not None" / "true": it runs only when the parameter is not None (is true), and every
          known call leaves it None (None or False) (`always_unset`)."""
        qualified = summary.qualified(info.qualname)
        for param, first, last in info.none_guards:
            if not first <= line <= last:
                continue
            if param.startswith("self."):
                cls = _class_of(summary, info)
                if cls is not None and self.field_never_none(cls, param[len("self."):]):
                    return param, "field None"
            elif self.never_none(qualified, param):
                return param, "None"
        for guards, falsy, needs in ((info.guards, False, "not None"), (info.truth_guards, True, "true")):
            for param, first, last in guards:
                if first <= line <= last and self.always_unset(qualified, param, falsy):
                    return param, needs
        return None

    def never_none(self, function: str, name: str, budget: int = NEVER_NONE_HOPS) -> bool:
        """Whether every known call of `function` gives its parameter `name` a value that is certainly not
        None, and there is at least one: a block that runs only when it is None runs on no known call.
        A value passed through from a caller's own parameter is followed `budget` calls up. A function
        the project also mentions other than as a callee proves nothing (`always_unset`)."""
        key = (function, name, budget)
        return self.reads.memo(self._never_none_memo, "never_none", key, lambda: self._find_never_none(*key))

    def _find_never_none(self, function: str, name: str, budget: int) -> bool:
        return self._every_call_gives(
            function, name, self._never_none_memo, (function, name, budget),
            lambda default, summary: self._not_none(default, summary, None, 0),
            lambda value, caller, caller_function: self._not_none(value, caller, caller_function, budget))

    def field_never_none(self, cls: str, attr: str) -> bool:
        """Whether every value the index sees reaching the field `attr` of the class is certainly not None
        (`_not_none`), and there is one: each store to it, each construction of a dataclass-like class
        (which must pass it, whatever its default), each `dataclasses.replace`. A class with project
        subclasses, or built where the arguments are not all seen, proves nothing."""
        return self.reads.memo(self._never_none_memo, "never_none", _field_key(cls, attr),
                               lambda: self._find_field_never_none(cls, attr))

    def _find_field_never_none(self, cls: str, attr: str) -> bool:
        found = self.index.klass(cls)
        if found is None or self.index.subclasses(cls) or any(name == attr for name, _v, _l in found[1].attributes):
            return False  # built as a subclass too, or a class attribute no store may replace
        # A recursive question (a field stored from a field of its own class, or of one that is stored
        # from it) is not proven: a store's value may read another field (`_field_of_known_class_never_none`).
        self._never_none_memo[_field_key(cls, attr)] = (False, None)
        stores = self._stores_into(cls, attr)
        if len(stores) >= MAX_SOURCES:
            return False  # some stores are not among those kept
        for summary, store in stores:
            function = summary.functions.get(store.function) if store.function else None
            if not self._not_none(store.value, summary, function, NEVER_NONE_HOPS):
                return False
        seen = len(stores)
        defaults = [(k[0], default) for owner in self.index.mro(cls) if (k := self.index.klass(owner))
                    for name, _annotation, default, _line in k[1].fields if name == attr]
        if not defaults:
            return seen > 0
        if not self._by_position(cls):
            # `x: Optional[T] = None` in the body of a class with its own `__init__`: a default that
            # holds until a store replaces it.
            return seen > 0 and all(d is None or self._not_none(d, summary, None, 0) for summary, d in defaults)
        order = [f[0] for owner in reversed(self.index.mro(cls)) if (k := self.index.klass(owner)) for f in k[1].fields]
        position = order.index(attr)
        calls = self._callers_of_class(cls)
        if len(calls) >= MAX_SOURCES:
            return False  # some constructions are not among those kept
        for caller, call, _skip in calls:
            value = _field_argument(call, attr, position)
            function = caller.functions.get(call.function) if call.function else None
            if value is None or not self._not_none(value, caller, function, NEVER_NONE_HOPS):
                return False  # left at its default (or maybe passed by `**kwargs`), or maybe None
        related = set(self.index.mro(cls))
        for caller, call in self.index.calls_named("dataclasses.replace"):
            value = next((v for k, v in call.kwargs if k == attr), None)
            if value is None or not call.args:
                continue
            target = self.eval(call.args[0], self._context(caller, call.function, "types"))
            if target.value_kind == "object" and not target.refs & related:
                continue  # another class's field of the same name
            function = caller.functions.get(call.function) if call.function else None
            if not self._not_none(value, caller, function, NEVER_NONE_HOPS):
                return False
        return seen + len(calls) > 0

    def always_unset(self, function: str, name: str, falsy: bool, budget: int = NEVER_NONE_HOPS) -> bool:
        """Whether every known call of `function` leaves its parameter `name` None (`falsy`: None or
        False), at its default or by passing the literal, and there is at least one: a block that runs
        only when it is not None (is true) runs on no known call. A value passed through from a
        caller's own parameter is followed `budget` calls up. A function whose name the project also
        mentions other than as a callee may be called where the index cannot see (a callback): not proven."""
        key = (function, name, budget, falsy)
        return self.reads.memo(self._unset_memo, "always_unset", key, lambda: self._find_always_unset(*key))

    def _find_always_unset(self, function: str, name: str, budget: int, falsy: bool) -> bool:
        def passes(value: Value, caller: ModuleSummary, caller_function: FunctionInfo | None) -> bool:
            return _unset(value, falsy) or (
                value[0] == "param" and budget > 0 and caller_function is not None
                and self.always_unset(caller.qualified(caller_function.qualname), value[1], falsy, budget - 1))

        return self._every_call_gives(function, name, self._unset_memo, (function, name, budget, falsy),
                                      lambda default, _summary: _unset(default, falsy), passes)

    def _every_call_gives(self, function: str, name: str, memo: dict, key: Hashable,
                          default_ok: Callable[[Value, ModuleSummary], bool],
                          passes: Callable[[Value, ModuleSummary, FunctionInfo | None], bool]) -> bool:
        """Whether `function` has a known call, and every known call gives its parameter `name` a value
        `passes` accepts (with the caller's summary and function), or leaves it at a default that
        `default_ok` accepts. Not when `*args`/`**kwargs` could carry it, nor for a function the project
        hands on as a value (it may be called where no call site shows the arguments). The calls of
        deployed code decide for a deployed function: a test that passes None to exercise a fallback
        does not make the fallback run in serving."""
        found = self.index.function(function)
        if found is None:
            return False
        summary, info = found
        param = next((p for p in info.params if p.name == name), None)
        if param is None or param.kind in ("star", "starstar") or \
                self.index.mentioned_as_value(info.name, _class_of(summary, info)):
            return False
        callers = self._callers(function)  # for a deployed function, the calls of deployed code
        if not callers:
            return False
        memo[key] = (False, None)  # a recursive question: not proven
        params = list(info.params)
        for caller, call, skip in callers:
            value, left_default = _argument(call, params, name, skip)
            if value is None:  # left at its default, or maybe passed by `*args`/`**kwargs`
                if not left_default or param.default is None or not default_ok(param.default, summary):
                    return False
                continue
            if not passes(value, caller, caller.functions.get(call.function) if call.function else None):
                return False
        return True

    def not_none(self, value: Value, summary: ModuleSummary, function: FunctionInfo | None) -> bool:
        """Whether a value a call in `function` passes is certainly not None (`_not_none`, a parameter
        followed `NEVER_NONE_HOPS` calls up)."""
        return self._not_none(value, summary, function, NEVER_NONE_HOPS)

    def _not_none(self, value: Value, summary: ModuleSummary, function: FunctionInfo | None, budget: int) -> bool:
        """Whether a symbolic value is certainly not None: a literal other than None, arithmetic, a display,
        a torch function's or a constructor's result, a function's result when each of its returns is
        such a value, a tensor method's result, an element of a tensor, `x.shape` and its elements, a
        parameter every known caller passes such a value (`budget` calls up)."""
        tag = value[0]
        if tag == "lit":
            return value[1] != "none"
        if tag in ("op", "tuple", "listof", "dict", "lambda", "decl"):
            return True
        if tag == "and":
            return all(self._not_none(part, summary, function, budget) for part in value[1])
        if tag == "join":
            # `if x is None: x = torch.arange(n)`: the parameter is a value wherever the fallback is not.
            given = {part[1] for part in value[1] if part[0] == "unlessgiven"}
            return all((part[0] == "param" and part[1] in given) or self._not_none(part, summary, function, budget)
                       for part in value[1])
        if tag == "on":
            return self._not_none(value[1], summary, function, budget)
        if tag == "unlessgiven":
            return self._not_none(value[2], summary, function, budget)
        if tag == "param":
            return budget > 0 and function is not None and \
                self.never_none(summary.qualified(function.qualname), value[1], budget - 1)
        if tag == "attr":
            return value[2] in ("shape", "ndim") or self._field_of_known_class_never_none(value, summary, function)
        if tag == "sub":  # `x.shape[-1]`, an element of a tensor
            return (value[1][0] == "attr" and value[1][2] == "shape") or self._a_tensor(value[1], summary, function)
        if tag == "call":
            func = value[1]
            if func[0] == "attr" and (func[2] in _VALUE_METHODS or
                                      func[2] not in _NONE_METHODS and self._a_tensor(func[1], summary, function)):
                return True  # `mask.bool()`, `x.size(0)`: a tensor's methods return values
            return self._returns_a_value(func, summary, function)
        return False

    def _field_of_known_class_never_none(self, value: Value, summary: ModuleSummary,
                                         function: FunctionInfo | None) -> bool:
        """`metadata.grid_thw_list` where `metadata` is an object of project classes and, in each, every value
        the field is given is certainly not None (`field_never_none`)."""
        owner = self.eval(value[1], Context(summary, function, budget=1, mode="types"))
        return owner.value_kind == "object" and bool(owner.refs) and \
            all(self.field_never_none(cls, value[2]) for cls in owner.refs)

    def _a_tensor(self, value: Value, summary: ModuleSummary, function: FunctionInfo | None) -> bool:
        fact = self.eval(value, Context(summary, function, budget=1))
        return fact.is_tensor or fact.is_unknown_tensor

    def _returns_a_value(self, func: Value, summary: ModuleSummary, function: FunctionInfo | None) -> bool:
        dotted = self.index.value_name(summary, func, function.qualname if function is not None else None)
        if dotted is None:
            return False
        if dotted.startswith("torch.") or dotted in _VALUE_BUILTINS:
            return True
        symbol = self.index.resolve(dotted)
        if symbol is None:
            return False
        if symbol.kind == "class":
            return True
        found = self.index.function(dotted) if symbol.kind == "function" else None
        return found is not None and not found[1].is_generator and bool(found[1].returns) and \
            all(r[0] in ("lit", "op", "tuple", "listof", "dict") and r != NONE_VALUE
                or r[0] == "call" and self._builtin_value(r[1], found[0], found[1]) for r in found[1].returns)

    def _builtin_value(self, func: Value, summary: ModuleSummary, function: FunctionInfo) -> bool:
        """A call of a builtin that makes a value (`tuple(...)`, `len(...)`) or of a torch function: not
        followed into project functions, so `_returns_a_value` asks no question twice over."""
        dotted = self.index.value_name(summary, func, function.qualname)
        return dotted is not None and (dotted.startswith("torch.") or dotted in _VALUE_BUILTINS)

    def tuple_fields(self, owner: Fact) -> tuple[str, ...] | None:
        """The fields an object of a project `NamedTuple` class unpacks into, in order (`logits, counts =
        self.state` reads `state.logits` and `state.counts`); None for any other object (a dataclass
        does not unpack) and for classes that declare different fields."""
        if owner.value_kind != "object" or not owner.refs:
            return None
        found: set[tuple[str, ...]] = set()
        for cls in owner.refs:
            if "NamedTuple" not in self.base_names(cls):
                return None
            found.add(tuple(f[0] for o in reversed(self.index.mro(cls)) if (k := self.index.klass(o))
                            for f in k[1].fields))
        return found.pop() if len(found) == 1 else None

    def _tuple_field(self, owner: Fact, position: int, context: Context) -> Fact | None:
        """The field at `position` of an object of a project `NamedTuple` class (`tuple_fields`)."""
        fields = self.tuple_fields(owner)
        if fields is None or position >= len(fields):
            return None
        return self.attribute(owner, fields[position], context.mode, context.budget)

    def base_names(self, cls: str) -> list[str]:
        """The last names of a class, its project ancestors and the bases each spells."""
        names: list[str] = []
        for owner in self.index.mro(cls):
            names.append(owner.rsplit(".", 1)[-1])
            found = self.index.klass(owner)
            if found is not None:
                summary, klass = found
                names.extend((self.index.value_name(summary, base) or "").rsplit(".", 1)[-1] for base in klass.bases)
        return names

    def derives_from(self, cls: str, libraries: frozenset[str]) -> bool:
        """Whether the class, or one of its project ancestors, spells a base that is one of these library
        classes (`class Model(L.LightningModule)`, resolved through the module's imports)."""
        return self._spells_a_base(cls, libraries.__contains__)

    def saved_tensors(self, summary: ModuleSummary, info: FunctionInfo | None, name: str, budget: int) -> Fact | None:
        """`ctx.saved_tensors` in the `backward` of an autograd function (`name` its first parameter): a
        tuple of what the class's `forward` (or `setup_context`) handed `ctx.save_for_backward(...)`, each
        as the forward's callers make it. Saves of one length in several branches join place by place;
        None where there is no such save, or saves of different lengths."""
        if info is None or info.name != "backward" or info.class_name is None or not info.params \
                or info.params[0].name != name:
            return None
        saves: list[tuple[ModuleSummary, FunctionInfo, CallSite]] = []
        for method in SAVING_METHODS:
            found = self.index.function(summary.qualified(f"{info.class_name}.{method}"))
            if found is None or not found[1].params:
                continue
            where, saver = found
            ctx = ("param", saver.params[0].name)
            saves.extend((where, saver, call) for call in self.index.calls_in(where.module, saver.qualname)
                         if call.func[:3] == ("attr", ctx, "save_for_backward") and not call.kwargs
                         and all(arg[0] != "*" for arg in call.args))
        if not saves or len({len(call.args) for _where, _saver, call in saves}) != 1:
            return None
        places: list[Fact | None] = [None] * len(saves[0][2].args)
        for where, saver, call in saves:
            context = Context(where, saver, budget=budget)
            for position, arg in enumerate(call.args):
                places[position] = join(places[position], self.eval(arg, context))
        where, saver, call = saves[0]
        step = f"saved by `ctx.save_for_backward(...)` in `{saver.qualname}`"
        items = tuple(replace(p, subject=None, reason=step, where=f"{where.path}:{call.line}", via=p)
                      for p in places if p is not None)
        return Fact(Device.NOT_TENSOR, value_kind="tuple", items=items)

    def lightning_batch(self, summary: ModuleSummary, info: FunctionInfo, name: str) -> Fact | None:
        """The batch a Lightning step hook receives (`training_step(self, batch, batch_idx)` of a
        `LightningModule`): the trainer moved it to the module's device first, an accelerator by convention.
        None for any other parameter."""
        if info.name not in LIGHTNING_STEP_HOOKS or info.class_name is None or len(info.params) < 2 or \
                info.params[1].name != name or not self.derives_from(summary.qualified(info.class_name),
                                                                    LIGHTNING_MODULES):
            return None
        return hooked_batch(info.name, name)

    def builds_module(self, summary: ModuleSummary, function: FunctionInfo | None) -> bool:
        """Whether the function runs only while an instance of its `nn.Module` class is built."""
        return function is not None and function.construction and function.class_name is not None and \
            self.module_class(summary.qualified(function.class_name))

    def module_class(self, cls: str) -> bool:
        """The class derives from `torch.nn.Module` (through project classes, or by a base it spells)."""
        return "Module" in self.base_names(cls)

    def _narrower(self, classes: frozenset[str], than: frozenset[str]) -> bool:
        """Whether every class of `classes` derives from one of `than` (and is not one of them)."""
        return bool(classes) and not classes & than and all(set(self.index.mro(cls)) & than for cls in classes)

    def _callers(self, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """Every call site that reaches the function, and how many parameters the receiver binds."""
        return self.reads.memo(self._caller_memo, "callers", function, lambda: self._find_callers(function))

    def _find_callers(self, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        found = self.index.function(function)
        out: list[tuple[ModuleSummary, CallSite, int]] = []
        self._caller_memo[function] = (out, None)  # a recursive question sees the list so far
        if found is None:
            return out
        summary, info = found
        if info.name == "__init__" and info.class_name is not None:
            cls = summary.qualified(info.class_name)
            for caller, call, skip in self._callers_of_class(cls):
                out.append((caller, call, skip))
            return out
        bound = info.kind in ("method", "classmethod")
        if info.name == "forward" and info.kind == "staticmethod" and info.class_name is not None:
            out.extend(self._autograd_calls(summary.qualified(info.class_name)))
        if info.name in _CALLED_METHODS and info.class_name is not None:
            out.extend(self._object_calls(summary.qualified(info.class_name), function))
        dispatchers: set[str] = set()
        if info.class_name is not None and info.name not in _CALLED_METHODS:
            dispatched = self._dispatched_calls(summary.qualified(info.class_name), function, info.name)
            out.extend(dispatched)
            if dispatched:
                # The dispatching `forward`'s own `self.forward_native(*args, **kwargs)` stands for the
                # calls of the objects just added: what it passes is theirs, not a caller's of its own.
                dispatchers = {f"{info.class_name}.{name}" for name in _CALLED_METHODS}
        names = {info.name} | self._aliases(summary, info)
        if info.class_name is None:
            names |= _dispatch_tables(summary, info.name)  # `TABLE[key](...)`
            names |= self.index.custom_ops_of(summary, info.qualname)  # `torch.ops.<ns>.<op>(...)`
            names |= self.index.import_aliases(function)  # `from m import f as g`, then `g(...)`
        for name in sorted(names):
            for caller, call, callee in self._calls_with_callees(name):
                if callee.value_kind == "callable" and function in callee.refs and \
                        not (caller.module == summary.module and call.function in dispatchers):
                    out.append((caller, call, 1 if bound and "bound" in callee.items else 0))
        if info.class_name is None:
            out.extend(self._rebound_calls(function))
        if info.qualname.endswith(".<setter>") and info.class_name is not None:
            out.extend(self._setter_calls(summary.qualified(info.class_name), info.name))
        if not out and bound and info.class_name is not None:
            out.extend(self._interface_calls(summary, info))
        # A call its signature cannot take runs another function through the same name or attribute
        # (BigBird's `self.self(hidden, band_mask, from_mask, to_mask, from_blocked, to_blocked)` runs the
        # block-sparse attention, never the full one, whose fifth parameter is `past_key_values`).
        out[:] = [(caller, call, skip) for caller, call, skip in out if _accepts(info, call, skip)]
        self._every_call[function] = list(out)
        deployed, aside = _split_deployed(out, summary.module)
        if aside:
            self._tests_set_aside[function] = aside
        out[:] = _nearest(self._on_accelerators(deployed), function, MAX_SOURCES)
        return out

    def _setter_calls(self, cls: str, name: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """`obj.name = v` where `name` is a property of `cls` with a setter: a call of the setter with `v`
        (OLMo-core's trainer sets `self.optim.latest_loss = loss`, and the setter appends it to a list).
        An object of `cls` or a subclass calls it; so does one of a class the project does not define
        (`self.optim`, declared a torch `Optimizer`, set under `isinstance(self.optim, SkipStepOptimizer)`),
        by convention."""
        out = []
        for caller, store in self.index.stores_of(name):
            if store.attr != name or store.base == ("param", "self") and store.owner is not None and \
                    cls not in self.index.mro(caller.qualified(store.owner)):
                continue
            owner = self.eval(store.base, self._context(caller, store.function, "types"))
            ours = owner.value_kind == "object" and any(cls in self.index.mro(ref) for ref in owner.refs)
            library = owner.value_kind in (None, "object") and not any(self.index.klass(ref) for ref in owner.refs)
            if not (ours or library):
                continue
            call = CallSite(store.function, store.line, ("attr", store.base, name), (store.value,), (), 0, ())
            if not ours:
                self._interface.add((caller.module, call.line, call.func))
            out.append((caller, call, 1))
        return out

    def _rebound_calls(self, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls of an attribute the function was stored into (`index.rebindings`): SGLang's
        `wrapper.begin_forward(indptr, indices, last_page_len, ...)` runs `fast_decode_plan(wrapper,
        indptr, ...)` on the wrappers `w.begin_forward = partial(fast_decode_plan, w)` replaced. Each
        call passes the parameters after those the stored value binds."""
        out = []
        for attr, bound, summary, store in self.index.rebindings(function):
            stored = f"partial({_short(function)}, ...)" if bound else _short(function)
            described = f"`.{attr} = {stored}` ({self._where(summary, store.line)})"
            for caller, call in self.index.calls_named(attr):
                if call.func[0] == "attr" and call.func[2] == attr and _held_object(call.func[1]) and \
                        not self._another_class_self(summary, store, caller, call):
                    out.append((caller, call, bound))
                    self._rebound.setdefault((caller.module, call.line, call.func), described)
        return out

    def _another_class_self(self, summary: ModuleSummary, store: Store, caller: ModuleSummary, call: CallSite) -> bool:
        """Whether a store into `self.attr` and a call of `self.attr(...)` are in methods of unrelated
        classes: SGLang's two KDA kernels each set `self._fwd` to their own `chunk_kda_fwd`, and one's
        `self._fwd(...)` calls its own, not the other's."""
        if store.base != ("param", "self") or call.func[1] != ("param", "self") or store.function is None \
                or call.function is None:
            return False
        stored_in = summary.functions.get(store.function)
        called_in = caller.functions.get(call.function)
        if stored_in is None or called_in is None:
            return False
        ours, theirs = _class_of(summary, stored_in), _class_of(caller, called_in)
        if ours is None or theirs is None or ours == theirs:
            return False
        return ours not in self.index.mro(theirs) and theirs not in self.index.mro(ours)

    def _interface_calls(self, summary: ModuleSummary, info: FunctionInfo) -> list[tuple[ModuleSummary, CallSite, int]]:
        """For a method no call resolves to, the calls of its name on a receiver whose class is not known
        (an attribute typed `nn.Module` or not at all) that its signature accepts. Serving engines call
        their model and backend through such attributes: vLLM's runner calls `self.model.embed_input_ids(
        ..., is_multimodal=is_mm_embed)` on whichever model it loaded, SGLang's CUDA-graph runner
        `self.model_runner.attn_backend.init_forward_metadata_replay_cuda_graph(bs, ..., self.seq_lens,
        ...)` on whichever backend was chosen. Only distinctive names count (`interface_name`), or a
        common one (`keyword_interface`) where the call names one of the method's distinctive parameters
        and at most `MAX_KEYWORD_METHODS` project methods of the name take it: CosyVoice's
        `self.hift.inference(speech_feat=mel, finalize=finalize)` reaches its vocoders' `inference`, not
        its flow model's or language model's. Only where no call is resolved (a resolved call says which
        functions a name reaches), and for a deployed method only calls in deployed code: a unit test's
        `config.prepare_pos_cond_kwargs(batch, torch.device("cpu"), ...)` says nothing of which device
        serving passes."""
        distinctive = interface_name(info.name)
        if not distinctive and not keyword_interface(info):
            return []
        deployed = _deployed(summary.module)
        out = []
        for caller, call, callee in self._calls_with_callees(info.name):
            if callee.value_kind == "callable" or call.func[0] != "attr" or not _accepts(info, call) or \
                    deployed and not _deployed(caller.module) or not _held_object(call.func[1]):
                continue
            if not distinctive and not self._reached_by_keyword(info, call):
                continue
            receiver = self.eval(call.func[1], self._context(caller, call.function, "types"))
            if receiver.value_kind in ("nn-module", None) and not receiver.tensor_like and \
                    receiver.device in (Device.UNKNOWN, Device.NOT_TENSOR) or \
                    receiver.value_kind == "object" and receiver.refs <= NN_MODULE_CLASSES:
                out.append((caller, call, 1))
                self._interface.add((caller.module, call.line, call.func))
        return out

    def _reached_by_keyword(self, info: FunctionInfo, call: CallSite) -> bool:
        """Whether the call names a distinctive parameter of the method, and few enough of the project's
        methods of its name (`MAX_KEYWORD_METHODS`) take the call and a keyword it names."""
        if not interface_keywords(info, call):
            return False
        takers = [other for _summary, other in self.index.keyword_methods(info.name)
                  if _accepts(other, call) and interface_keywords(other, call)]
        return len(takers) <= MAX_KEYWORD_METHODS

    def _all_calls(self, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """Every known call of the function, before `_callers` keeps the nearest made on accelerators
        (`_find_callers` keeps both; the frame reads the callers' node)."""
        self._callers(function)
        return self._every_call.get(function, [])

    def off_cuda_only(self, function: str, budget: int = OFF_CUDA_HOPS) -> str | None:
        """`path:line` of a call that shows the function runs only off CUDA in what is deployed: every
        known call outside tests, benchmarks, examples and scripts is made where the code runs off CUDA
        (`_on_accelerators`), or in a function that itself runs only off CUDA (`budget` calls up), and
        there is one. SGLang's torch reference kernels are called behind `if
        use_torch_reference(buf.device):`, and by tests that compare them with the CUDA kernel. None
        when no call shows it, or the project hands the function on as a value (it may be called where
        no call site shows)."""
        key = (function, budget)
        return self.reads.memo(self._off_cuda_memo, "off_cuda_only", key, lambda: self._find_off_cuda_only(*key))

    def _find_off_cuda_only(self, function: str, budget: int) -> str | None:
        found = self.index.function(function)
        if found is None:
            return None
        calls = self._all_calls(function)
        self._off_cuda_memo[(function, budget)] = (None, None)  # a recursive question: not proven
        where = None
        for caller, call, _skip in calls:
            if not _deployed(caller.module):
                continue
            if not self.call_off_cuda(call) and not (
                    budget > 0 and call.function is not None
                    and self.off_cuda_only(caller.qualified(call.function), budget - 1) is not None):
                return None
            where = where or f"{caller.path}:{call.line}"
        # Asked last: for a method it reads the whole class hierarchy, which a one-file check may not need.
        summary, info = found
        if where is not None and self.index.mentioned_as_value(info.name, _class_of(summary, info)):
            return None
        return where

    def _on_accelerators(self, calls: list[tuple[ModuleSummary, CallSite, int]]
                         ) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls not made where the code runs only off CUDA (`if current_platform.is_cpu():`, `if
        is_npu():`, `if not x.is_cuda:`, `if use_torch_reference(buf.device):`; `ProjectIndex.runs_off_cuda`):
        what those pass is on the host or another accelerator by design, and says nothing of a CUDA
        machine's arguments. Nor are the calls made in a module written for another platform
        (`cpu-modules`, `other-platform-modules`)."""
        return [entry for entry in calls
                if not self.call_off_cuda(entry[1]) and not self.settings.off_cuda_module(entry[0].path)]

    def call_off_cuda(self, call: CallSite) -> bool:
        """Whether the call is made where the code runs only off CUDA: behind a test that says so
        (`ProjectIndex.runs_off_cuda`), or in a function written for the CPU platform (`cpu-functions`:
        SGLang's `forward_cpu` calls the torch-native MoE that CUDA machines never run)."""
        return bool(call.contexts and self.index.runs_off_cuda(call.contexts)) or \
            cpu_function(call.function, self.settings.cpu_functions) is not None

    def _calls_with_callees(self, name: str) -> list[tuple[ModuleSummary, CallSite, Fact]]:
        """The calls spelled `name`, each with its callee read in "types" mode: once per name, as many
        functions share one (`get`, `update`, `build`) and each one's callers are among those calls. A
        name asked again while its calls are being read is read afresh (a partial list would leave some
        function a partial list of callers)."""
        key = f"<calls>{name}"
        if key in self._callees_pending:
            return self._read_callees(name)
        self._callees_pending.add(key)
        try:
            return self.reads.memo(self._callee_memo, "callees", key, lambda: self._read_callees(name))
        finally:
            self._callees_pending.discard(key)

    def _read_callees(self, name: str) -> list[tuple[ModuleSummary, CallSite, Fact]]:
        return [(caller, call, self.eval(call.func, self._context(caller, call.function, "types")))
                for caller, call in self.index.calls_named(name)]

    def _object_calls(self, cls: str, function: str, classes: list[str] | None = None,
                      ) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls of objects whose call runs `function` (`self.scorer(hidden)` runs `Scorer.forward`):
        calls through the attributes that the constructors of the class, or of a subclass that does
        not override the method, are stored into, in the modules that store them. `classes`: the
        classes whose objects count, when not all of those do."""
        method = function.rsplit(".", 1)[-1]
        if classes is None:
            classes = [cls] + sorted(sub for sub in self.index.subclasses(cls)
                                     if self.index.method(sub, method) == function)
        stored_in: dict[str, set[str]] = {}  # attribute -> the modules storing an instance into it
        # (attribute, module, class) -> a layer stack holding instances: `self.layers = nn.ModuleList(
        # [Layer(...) for i in range(n)])`, whose elements the class's methods call in a loop.
        held_in: set[tuple[str, str, str]] = set()
        # attribute -> the project bases of a class that stores an instance into its `self.attr`: their
        # methods' `self.attr(...)` call it too, on an object of that class.
        in_bases: dict[str, set[str]] = {}
        for target in classes[:_MAX_OVERRIDES + 1]:
            for caller, call, _skip in self._callers_of_class(target):
                getter = caller.functions.get(call.function) if call.function else None
                if getter is not None and getter.class_name is not None and self._decorated_property(getter):
                    # Built in a property's getter (`fb = Filterbank(...)`, cached and returned): the
                    # object is called through the property's name.
                    stored_in.setdefault(getter.name, set()).add(caller.module)
                for store in caller.stores:
                    if store.line == call.line and store.value[0] == "call" and store.value[1] == call.func:
                        stored_in.setdefault(store.attr, set()).add(caller.module)
                        for base_module, base in self._bases_of_owner(caller, store):
                            stored_in[store.attr].add(base_module)
                            in_bases.setdefault(store.attr, set()).add(base)
                    elif getter is not None and getter.class_name is not None and store.function == call.function \
                            and store.base == ("param", "self"):
                        for path in self._stack_paths(caller, store.value, call.func):
                            held_in.add((".".join((store.attr, *path)), caller.module,
                                         getter.qualname.rpartition(".")[0]))
                if getter is not None and any(r[0] == "call" and r[1] == call.func for r in getter.returns):
                    # Built and returned by a factory (`return Inner(config)` in `_create_custom_model`,
                    # SGLang's DeepSeek-OCR): the object is called through what the factory's result is
                    # stored into.
                    self._factory_stores(caller.qualified(getter.qualname), stored_in)
        out = self._stack_calls(held_in, function)
        for target in classes[:_MAX_OVERRIDES + 1]:
            out.extend(self._typed_parameter_calls(target, function))
            out.extend(self._built_object_calls(target, function))
        for name in sorted(stored_in):
            # Where the object is stored is where it is called (`self.mlp = MLP()` in `__init__`,
            # `self.mlp(x)` in `forward`): a call of that name elsewhere is another class's `mlp`.
            for caller, call in self.index.calls_named(name, stored_in[name]):
                if call.func[0] != "attr" or call.func[2] != name:
                    continue
                method_info = caller.functions.get(call.function) if call.function else None
                if name in in_bases and call.func[1] == ("param", "self") and method_info is not None and \
                        _class_of(caller, method_info) in in_bases[name]:
                    out.append((caller, call, 1))
                    continue
                context = self._context(caller, call.function, "types")
                called = self.eval(call.func, context)
                target = self.call_target(called, "types") if called.value_kind == "object" and called.refs else None
                if target is not None and function in target.refs:
                    out.append((caller, call, 1))  # the object is `self`
        return out

    def _built_object_calls(self, cls: str, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """Calls of an object a local holds as built (`model = Net(cfg).cuda()`, then `model(x)`), filed
        under the class's name (`callee_name`): the object is the method's `self`."""
        out = []
        for caller, call in self.index.calls_named(_short(cls)):
            if call.func[0] != "call":
                continue
            called = self.eval(call.func, self._context(caller, call.function, "types"))
            target = self.call_target(called, "types") if called.value_kind == "object" and called.refs else None
            if target is not None and function in target.refs:
                out.append((caller, call, 1))
        return out

    def _tensor_subclass(self, cls: str) -> bool:
        """Whether a project class derives from a tensor type (`class Int8Tensor(torch.Tensor)`)."""
        return self._spells_a_base(cls, lambda base: base.endswith("Tensor"))

    def _spells_a_base(self, cls: str, test: Callable[[str], bool]) -> bool:
        """Whether the class, or one of its project ancestors, spells a base whose qualified name (through
        the module's imports) passes `test`."""
        for owner in self.index.mro(cls):
            found = self.index.klass(owner)
            if found is not None and any(test(self.index.value_name(found[0], base) or "") for base in found[1].bases):
                return True
        return False

    def _typed_parameter_calls(self, cls: str, function: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls of a parameter annotated with the class whose call runs `function` (LitGPT's
        `def next_token(model: GPT, x, input_pos, input_pos_maxp1=None)`, then `model(x, input_pos,
        input_pos_maxp1=input_pos_maxp1)`, which runs `GPT.forward`)."""
        short = cls.rsplit(".", 1)[-1]
        self.reads.add(f"n:typed:{short}")
        out = []
        for module in sorted(self.index.tables.typed.get(short, set())):
            caller = self.index.summary(module)
            if caller is None:
                continue
            for call in self.index.module_calls(module):
                info = caller.functions.get(call.function) if call.func[0] == "param" and call.function else None
                param = next((p for p in info.params if p.name == call.func[1]), None) if info is not None else None
                if param is None or not any(name.rsplit(".", 1)[-1] == short for name in param.annotation):
                    continue
                called = self.eval(call.func, self._context(caller, call.function, "types"))
                target = self.call_target(called, "types") if called.value_kind == "object" and called.refs else None
                if target is not None and function in target.refs:
                    out.append((caller, call, 1))  # the object is `self`
        return out

    def _bases_of_owner(self, summary: ModuleSummary, store: Store) -> list[tuple[str, str]]:
        """(module, class) of each project base of the class whose method makes the store `self.attr =
        ...`: a subclass that puts its own object in a field its base calls (torchtitan's `GptOssMoE`
        stores `GptOssGroupedExperts()` into the `experts` that `MoE.forward` calls) has it called there."""
        if store.owner is None or store.base != ("param", "self"):
            return []
        out = []
        for base in self.index.mro(summary.qualified(store.owner))[1:]:
            found = self.index.klass(base)
            if found is not None:
                out.append((found[0].module, base))
        return out

    def _factory_stores(self, factory: str, stored_in: dict[str, set[str]]) -> None:
        """Add the attributes the results of calls of the function `factory` are stored into
        (`self.model = self._create_custom_model(...)`), with the modules storing them."""
        for caller, call in self.index.calls_named(factory.rsplit(".", 1)[-1]):
            stores = [store for store in caller.stores if store.line == call.line and store.value[0] == "call"
                      and store.value[1] == call.func]
            if not stores:
                continue
            callee = self.eval(call.func, self._context(caller, call.function, "types"))
            if callee.value_kind == "callable" and factory in callee.refs:
                for store in stores:
                    stored_in.setdefault(store.attr, set()).add(caller.module)

    def _autograd_calls(self, cls: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls `Cls.apply(...)` of a `torch.autograd.Function` subclass, which run its static
        `forward(ctx, ...)` with autograd's `ctx` first: the arguments bind from the second parameter."""
        if not any(self.index.value_name(k[0], base) in _AUTOGRAD_FUNCTIONS
                   for owner in self.index.mro(cls) if (k := self.index.klass(owner)) for base in k[1].bases):
            return []
        out: list[tuple[ModuleSummary, CallSite, int]] = []
        for caller, call in self.index.calls_named("apply"):
            if call.func[0] != "attr":
                continue
            receiver = self.eval(call.func[1], self._context(caller, call.function, "types"))
            if receiver.value_kind == "class" and cls in receiver.refs:
                out.append((caller, call, 1))
        return out

    def _stacked(self, summary: ModuleSummary, value: Value) -> tuple[Value, ...]:
        """The callees of the constructor calls a `ModuleList`/`Sequential` is built from: `[Layer(...) for
        ...]`, `[A(), B()]`, `Sequential(A(), B())`; none for any other value."""
        if value[0] != "call" or self.index.value_name(summary, value[1]) not in _LAYER_STACKS:
            return ()
        parts = [p for arg in value[2] for p in ((arg[1],) if arg[0] == "listof" else arg[1] if arg[0] == "tuple"
                                                  else (arg,))]
        return tuple(p[1] for p in parts if p[0] == "call")

    def _stack_paths(self, summary: ModuleSummary, value: Value, constructor: Value) -> list[tuple[str, ...]]:
        """Where in the stored `value` a layer stack built of `constructor` calls sits: `()` for the value
        itself, `("h",)` for the entry `h` of an `nn.ModuleDict(dict(wte=..., h=nn.ModuleList(Block(...)
        for ...)))` (nanoGPT's and LitGPT's `self.transformer.h`)."""
        if constructor in self._stacked(summary, value):
            return [()]
        if value[0] != "call" or self.index.value_name(summary, value[1]) not in _MODULE_DICTS or len(value[2]) != 1:
            return []
        given = value[2][0]
        if given[0] == "call" and given[1] == ("name", "dict") and not given[2]:
            entries = given[3]  # `dict(h=...)`
        elif given[0] == "dict":
            entries = tuple((key, v) for key, v in given[1] if isinstance(key, str))  # `{"h": ...}`
        else:
            return []
        return [(key,) for key, entry in entries if key != "**" and constructor in self._stacked(summary, entry)]

    def _stack_calls(self, held_in: set[tuple[str, str, str]], function: str,
                     ) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls of the layers of the stacks in `held_in` (`for layer in self.layers: h = layer(h)`,
        `self.layers[i](h)`) made in a method of the class that built the stack, each run `function`."""
        out: list[tuple[ModuleSummary, CallSite, int]] = []
        for attr, module, cls in sorted(held_in):
            summary = self.index.summary(module)
            if summary is None:
                continue
            for call in self.index.module_calls(module):
                if call.function is not None and call.function.rpartition(".")[0] == cls \
                        and _layer_of(call.func, attr):
                    out.append((summary, call, 1))
        return out

    def _dispatched_calls(self, cls: str, function: str, method: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The calls of objects whose `forward` hands all its arguments on to `function`, a method of
        the class that a dispatching `forward` may choose (`_dispatch_targets`): vLLM's `CustomOp` (and
        SGLang's multimodal one), whose `self.rope(positions, q, k)` runs the layer's `forward_cuda` or
        `forward_native`, decided once by the platform."""
        out: list[tuple[ModuleSummary, CallSite, int]] = []
        for name in sorted(_CALLED_METHODS):
            entry = self.index.method(cls, name)
            if entry is None or method not in self._dispatch_targets(entry):
                continue
            # Objects of a subclass that overrides the method (or `forward`) run another function.
            classes = [c for c in (cls, *sorted(self.index.subclasses(cls)))
                       if self.index.method(c, method) == function and self.index.method(c, name) == entry]
            out.extend(self._object_calls(cls, entry, classes))
        return out

    def _dispatch_targets(self, function: str) -> frozenset[str]:
        """The methods a dispatching `function` may hand its arguments to: it is
        `def forward(self, *args, **kwargs): return self.<field>(*args, **kwargs)`, and the names are
        the attributes `self.<name>` that the methods of its class return (`dispatch_forward` returns
        `self.forward_cuda`, `self.forward_hip`, ..., one per platform). Empty for any other function."""
        return self.reads.memo(self._dispatch_memo, "dispatch", function, lambda: self._find_dispatch_targets(function))

    def _find_dispatch_targets(self, function: str) -> frozenset[str]:
        found = self.index.function(function)
        if found is None:
            return frozenset()
        summary, info = found
        if info.class_name is None or [p.kind for p in info.params] != ["pos", "star", "starstar"]:
            return frozenset()
        me, star, starstar = (p.name for p in info.params)
        called = {call.func[2] for call in self.index.calls_in(summary.module, info.qualname)
                  if call.func[0] == "attr" and call.func[1] == ("param", me)
                  and call.args == (("*", ("param", star)),) and call.kwargs == (("**", ("param", starstar)),)}
        klass = summary.classes.get(info.class_name)
        if not called or klass is None:
            return frozenset()
        # `return self.forward_native(*args, **kwargs)`: a method of the class itself.
        names: set[str] = called & set(klass.methods)
        for method in klass.methods:
            other = summary.functions.get(f"{info.class_name}.{method}")
            if other is not None and other.params:
                for value in other.returns:
                    names |= _self_attributes(value, other.params[0].name)
        return frozenset(names)  # a subclass may define the method

    def _callers_of_class(self, cls: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        """The constructor calls of a class (or of a subclass that inherits its `__init__`)."""
        key = f"<new>{cls}"
        return self.reads.memo(self._caller_memo, "callers", key, lambda: self._find_constructor_calls(cls, key))

    def _find_constructor_calls(self, cls: str, key: str) -> list[tuple[ModuleSummary, CallSite, int]]:
        out: list[tuple[ModuleSummary, CallSite, int]] = []
        self._caller_memo[key] = (out, None)  # a recursive question sees the list so far
        init = self.index.method(cls, "__init__")
        slots = self._class_slots(cls)
        names = {_short(cls), "cls"} | {_short(sub) for sub in self.index.subclasses(cls)} | set(slots)
        # `cls(...)` in a factory classmethod of a base (TGI's `FlashCausalLMBatch.from_tokenized`,
        # called as `VlmCausalLMBatch.from_tokenized(...)`) constructs the subclass too.
        ancestors = {_short(base): base for base in self.index.mro(cls)[1:]}
        for name in sorted(names | set(ancestors)):
            for caller, call in self.index.calls_named(name):
                if name not in names:
                    if call.by_cls and caller.qualified(call.func[1]) == ancestors[name]:
                        out.append((caller, call, 1))
                    continue
                if name in slots and call.func[0] == "attr" and call.func[2] == name:
                    # `self.metadata_cls(...)` in a method of the holder or of its base: constructs the class.
                    owner = self.eval(call.func[1], self._context(caller, call.function, "types"))
                    if owner.value_kind == "object" and any(
                            ref in self.index.mro(holder) or holder in self.index.mro(ref)
                            for ref in owner.refs for holder in slots[name]):
                        out.append((caller, call, 1))
                        continue
                callee = self.eval(call.func, self._context(caller, call.function, "types"))
                if callee.value_kind != "class":
                    continue
                if cls in callee.refs or init is not None and any(
                        self.index.method(c, "__init__") == init for c in callee.refs):
                    out.append((caller, call, 1))
        out[:] = _nearest(self._on_accelerators(out), cls, MAX_SOURCES)
        return out

    def _class_slots(self, cls: str) -> dict[str, set[str]]:
        """Class attributes of the class's own module that hold the class (`metadata_cls = Mamba2Metadata`
        in a builder), with the classes that hold them: `self.metadata_cls(...)` constructs it."""
        found = self.index.klass(cls)
        if found is None:
            return {}
        summary = found[0]
        slots: dict[str, set[str]] = {}
        for local, info in summary.classes.items():
            for name, value, _line in info.attributes:
                if value[0] == "name" and summary.qualified(value[1]) == cls:
                    slots.setdefault(name, set()).add(summary.qualified(local))
        return slots

    def _aliases(self, summary: ModuleSummary, info: FunctionInfo) -> set[str]:
        """Attributes that hold this method (`self.update = self.update_sliding_window`)."""
        if info.class_name is None:
            return set()
        return {store.attr for store in summary.stores
                if store.base == ("param", "self") and _mentions_method(store.value, info.name)}

    def _return(self, function: str, budget: int) -> Fact:
        found = self.index.function(function)
        if found is None:
            return UNKNOWN
        summary, info = found
        if info.is_generator:
            # Iterating the generator it returns gives what it yields (`for t in chunks(x)`).
            if not info.yields:
                return UNKNOWN
            context = Context(summary, info, budget=budget)
            element = join_sources([self._source(self.eval(value, context), f"`{info.name}` yields `{render(value)}`",
                                                 summary, info.line) for value in info.yields])
            return Fact(Device.NOT_TENSOR, value_kind="list", items=(element,),
                        reason=f"`{info.name}` is a generator", where=self._where(summary, info.line))
        scalar = _declared_scalar(info)
        if scalar is not None and scalar.dtype != "bool":
            return scalar  # only a `bool` annotation may yield to the body (`_body_over_annotation`)
        context = Context(summary, info, budget=budget)
        sources = [self._source(self.eval(value, context), f"`{info.name}` returns `{render(value)}`", summary,
                                info.line) for value in info.returns]
        joined = join_sources(_tuples_over_tensors(sources))
        if scalar is not None:
            return _body_over_annotation(joined, scalar)
        if not _informative(joined):
            declared = self._annotation_fact(summary, info.returns_annotation)
            if declared is not None:
                return declared
        return joined

    def return_params(self, function: str, info: FunctionInfo) -> frozenset[str]:
        """The parameters the function's `return`s read (memoised)."""
        known = self._return_reads.get(function)
        if known is None:
            known = self._return_reads[function] = frozenset(_params_in(info.returns))
        return known

    def returns_with(self, function: str, args: list[Argument], kwargs: dict[str, Argument], budget: int,
                     complete: bool = False, building: bool = False) -> Fact:
        """The function's result with these arguments (memoised unless a cycle's guess went into it).

        An argument is a fact, or a function that evaluates it when the result needs it. `complete`:
        the call spells out every argument it passes (no `*args`/`**kwargs`), so a parameter it
        leaves out takes its default: `_scale_raw_choices(name)` returns `torch.arange(...,
        device=device)` with `device=None`, a CPU tensor, whatever the other callers pass.
        `building`: the call is made while an `nn.Module` is built (see `Context`)."""
        found = self.index.function(function)
        if found is None:
            return UNKNOWN
        summary, info = found
        if info.is_generator or not info.returns:
            return self.returns(function, budget)
        if _declared_scalar(info) is not None:
            if not _arithmetic_of_params(info):
                return self.returns(function, budget)
            # `def cdiv(a: int, b: int) -> int: return -(a // -b)`: arithmetic of what it is given, a
            # tensor where an argument is one (`cdiv(context_lens.max(), chunk)`), else the number promised.
            computed = self._specialized_returns(function, summary, info, args, kwargs, budget, complete, building)
            return computed if computed.is_tensor else self.returns(function, budget)
        return self._specialized_returns(function, summary, info, args, kwargs, budget, complete, building)

    def _specialized_returns(self, function: str, summary: ModuleSummary, info: FunctionInfo, args: list[Argument],
                             kwargs: dict[str, Argument], budget: int, complete: bool, building: bool) -> Fact:
        """`returns_with`'s answer computed from these arguments (memoised)."""
        # Only the parameters the `return`s mention are evaluated (an argument may be costly to
        # follow) and only they tell specialisations apart.
        needed = self.return_params(function, info)
        positional = [p for p in info.params if p.kind in ("posonly", "pos")]
        params = {p.name: _forced(arg) for p, arg in zip(positional, args) if p.name in needed}
        params.update((name, _forced(arg)) for name, arg in kwargs.items() if name in needed)
        if complete:
            given = {p.name for p in positional[:len(args)]} | set(kwargs)
            for param in info.params:
                if param.name in needed and param.name not in given and param.default is not None \
                        and param.kind in ("posonly", "pos", "kwonly"):
                    params[param.name] = self.eval(param.default, Context(summary, None, budget=budget - 1))
        # A string's text is part of the key: `"cuda"` and `"cpu"` make different specialisations. So is
        # whether an argument rests on a convention: else the call solved first would decide how sure
        # the answer is for every later call. And so is an argument's evidence: a function that returns
        # its argument hands on the argument's provenance, which must be this call's, not the first's.
        # A dtype's class too: `_device_tensor(ids, torch.int32)` and `(..., torch.bool)` differ.
        key = (function, budget, tuple(sorted((k, v.lattice(), v.by_convention,
                                               v.reason if v.value_kind == "python" else None,
                                               v.dtype if v.value_kind == "dtype" else None, _evidence(v))
                                              for k, v in params.items())), building)
        hit = self._specialized.get(key)
        if hit is not None:
            if hit[1] is not None:
                self.reads.add(hit[1])
            return hit[0]
        if key in self._specializing or len(self._specializing) > 8 or budget <= 0:
            # A recursive function, or a long chain of calls: the general answer, which the solver
            # computes cycle-safely; what used it is not memoised (it depends on this order).
            self._cycle_reads += 1
            return self.returns(function, budget)
        cycle_reads = self._cycle_reads
        self._specializing.add(key)
        self.reads.begin()
        try:
            # A specialisation is a hop like any other: nested ones (a helper returning another
            # helper's result) spend the budget, or their fan-out is exponential in the depth
            # (one transformers file took over 20 minutes at a fixed budget).
            context = Context(summary, info, params, budget=budget - 1, building=building)
            sources = [self._source(self.eval(value, context), f"`{info.name}` returns `{render(value)}`", summary,
                                    info.line) for value in info.returns]
            known = join_sources(_tuples_over_tensors(sources))
            if not _informative(known):
                known = self.returns(function, budget)
        finally:
            self._specializing.discard(key)
            deps = self.reads.end()
        if self._cycle_reads != cycle_reads:
            self.reads.replay(deps)
            return known
        node = self.reads.node("specialized", key, deps)
        self._specialized[key] = (known, node)
        if node is not None:
            self.reads.add(node)
        return known

    def multimodal_input(self, key: str, module: str) -> Fact | None:
        """`kwargs["pixel_values"]` in a vLLM model: where vLLM's model runner leaves the multimodal input
        `key`, on the device unless its `MultiModalFieldConfig` says `keep_on_cpu=True`. The reading
        module's own declaration decides; else every declaration in the project must agree (a learned
        convention). None when the project declares no such input."""
        declared = self.index.input_declarations(key)
        own = [d for d in declared if d[1] == module]
        chosen = own or declared
        if not chosen or len({on_cpu for on_cpu, _module, _line in chosen}) != 1:
            return None
        on_cpu, where, line = chosen[0]
        summary = self.index.summary(where)
        if summary is None:
            return None
        # Not declared in the reading module: the line cited is one of the project's declarations that
        # agree, perhaps another model's, so the reason says it is a count, not this model's own.
        agreeing = "" if own else f" (as {len(chosen)} declaration(s) in the project agree; this one in another module)"
        if on_cpu:
            fact = Fact(Device.CPU, tensor_like=True, pinning_unknown=True)
            reason = f"multimodal input `{key}` is declared `keep_on_cpu=True`{agreeing}"
        else:
            fact = Fact(Device.GPU, tensor_like=True, convention=not own)
            reason = (f"multimodal input `{key}` is declared without `keep_on_cpu`: vLLM's model runner moves it "
                      f"to the device{agreeing}")
        return self._source(fact, reason, summary, line)

    def host_input(self, key: str, module: str) -> Fact | None:
        """`batch["image_grid_thw"]` of a dict nobody knows: a multimodal input the project declares
        `keep_on_cpu=True` stays on the host wherever it is read, before vLLM's model runner batches it
        (the processor's output) and after. An input declared for the device says nothing here: a
        processor's dict holds it on the host."""
        found = self.multimodal_input(key, module)
        return found if found is not None and found.is_cpu else None

    def _global(self, module: str, name: str, budget: int) -> Fact:
        summary = self.index.summary(module)
        if summary is None or name not in summary.globals:
            return UNKNOWN
        value = summary.globals[name]
        context = Context(summary, None, budget=budget)
        return self._source(self.eval(value, context), f"module `{module}` sets `{name}` to `{render(value)}`",
                            summary, summary.global_lines.get(name, 0))

    def _entry_convention(self, key: str) -> Fact:
        """What dict entries under this key hold across the repository. Keys are specific names
        (`"spec_new_seq_lens"`), so every site is followed a little way and all must agree. Three
        hops: a site is usually a field of a function's result (`result.accept_lens`), and the
        call and the field's stores each spend one."""
        sources = [(self.eval(entry.value, self._context(summary, entry.function, "full", budget=3)), summary,
                    entry.line) for summary, entry in list(self.index.entries_of(key))[:16]]
        # A site storing anything else (an unknown tensor, a NumPy array, a Python value) says the key
        # does not hold the same thing everywhere: DETR's processors store "iscrowd" as a tensor in one
        # backend and a NumPy array in the other, and `obj["iscrowd"]` of a JSON annotation is an int.
        # An enum member (`{"grid_thws": Modality.IMAGE}`, a table of which modality a key carries) is
        # a dict of another kind, not a value stored under the key: it neither agrees nor disagrees.
        sources = [(f, s, line) for f, s, line in sources
                   if not (f.value_kind == "object" and f.refs and all(self._is_enum(c) for c in f.refs))]
        tensors = [(f, s, line) for f, s, line in sources if f.is_tensor]
        if not tensors or len({Device.CPU if f.device is Device.PINNED else f.device for f, _, _ in tensors}) != 1 \
                or any(_informative(f) and not f.is_tensor for f, _, _ in sources):
            return UNKNOWN
        example, summary, line = min(tensors, key=lambda t: (t[0].by_convention, len(t[0].chain)))
        return Fact(example.device, tensor_like=True, convention=True, pinning_unknown=example.pinning_unknown,
                    reason=f"in this repository, entries under {key!r} hold {example.device.value.upper()} tensors "
                           f"({len(tensors)} of {len(sources)} sites)", where=self._where(summary, line),
                    via=example)

    def _attribute_convention(self, attr: str) -> Fact:
        counted = getattr(self.index.tables, "conventions", None)
        if counted is not None:
            self.reads.add(f"c:{attr}")
        totals = counted(attr) if counted is not None else None
        if totals is not None:  # counted when each module was summarised
            gpu, cpu, total, gpu_example, cpu_example = totals
            for device, count, example, words in ((Device.GPU, gpu, gpu_example, "GPU tensors"),
                                                  (Device.CPU, cpu, cpu_example, "CPU tensors")):
                if example and count >= self.convention_sites and total and count / total >= self.convention_share:
                    return Fact(device, tensor_like=True, convention=True, pinning_unknown=device is Device.CPU,
                                reason=f"in this repository, attribute `{attr}`: it is stored from {words} at {count} "
                                       f"of {total} sites, e.g. `{example[1] or 'a tensor'}`", where=example[0])
            return UNKNOWN
        sources = [(self.eval(store.value, self._context(summary, store.function, "shallow")), summary, store.line)
                   for summary, store in self.index.stores_of(attr)]
        return self._convention(sources, f"attribute `{attr}`", "it is stored from")

    def _convention(self, sources: list[tuple[Fact, ModuleSummary, int]], what: str, how: str) -> Fact:
        tensors = [(f, s, line) for f, s, line in sources if f.is_tensor and not f.by_convention]
        total = sum(1 for f, _, _ in sources if _informative(f))
        if len(tensors) < self.convention_sites or not total:
            return UNKNOWN
        for device, words in ((Device.GPU, "GPU tensors"), (Device.CPU, "CPU tensors")):
            agreeing = [(f, s, line) for f, s, line in tensors
                        if f.device is device or device is Device.CPU and f.device is Device.PINNED]
            if len(agreeing) >= self.convention_sites and len(agreeing) / total >= self.convention_share:
                example, summary, line = agreeing[0]
                return Fact(device, tensor_like=True, convention=True, pinning_unknown=device is Device.CPU,
                            reason=f"in this repository, {what}: {how} {words} at {len(agreeing)} of {total} "
                                   f"sites, e.g. `{example.reason or 'a tensor'}`", where=self._where(summary, line))
        return UNKNOWN

    # ======================================================================================
    # Interpreting values
    # ======================================================================================
    def eval(self, value: Value, context: Context) -> Fact:
        """What a summary's value is in `context`.

        A value is a tree whose subtrees are shared: a local read where its assignment must have
        run is that assignment's value, the same object at every read. Walked as a tree, a chain
        of such reads was evaluated once per path to it. So within one outermost `eval`, a value
        met again in the same context and reads frame is answered from a memo. The frame is part
        of the key: a key being solved records its reads in its own frame, and a memo hit from
        another frame would leave them out. The entries hold their value, context and frame, so
        no id is reused while the memo lives."""
        memo = self._eval_memo
        outermost = memo is None
        if outermost:
            memo = self._eval_memo = {}
        frame = self.reads.frame()
        key = (id(value), id(context), id(frame))
        hit = memo.get(key)  # type: ignore[union-attr]
        if hit is not None and hit[0] is value and hit[1] is context and hit[2] is frame:
            return hit[3]
        try:
            fact = self._eval(value, context)
        finally:
            if outermost:
                self._eval_memo = None
        if not outermost:
            memo[key] = (value, context, frame, fact)  # type: ignore[index]
        return fact

    def _eval(self, value: Value, context: Context) -> Fact:
        tag = value[0]
        if tag == "lit":
            if value[1] == "none":
                return NONE
            if value[1] == "str" and len(value) > 2:
                return Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason=value[2])
            return PYTHON
        if tag == "param":
            return self._param_in(context, value[1])
        if tag == "decl":
            declared = self._annotation_fact(context.summary, value[1])
            if declared is None and all(t.rsplit(".", 1)[-1] in CONTAINERS
                                        for t in value[1] if not t.startswith(ELEMENT)):
                # `self.chunks: list[Wrapper] = []` of a class not known here: nothing in it yet, as
                # `self.chunks = []` would say; what `.append` adds elsewhere is what it holds.
                return self.eval(("tuple", ()), context)
            return declared or PYTHON
        if tag == "name":
            return self._name_in(context, value[1])
        if tag == "attr":
            if value[2] in SAVED_TENSORS and value[1][0] == "param":
                saved = self.saved_tensors(context.summary, context.function, value[1][1], context.budget)
                if saved is not None:
                    return saved
            if value[1] == _SUPER:
                found = self._super_attribute(context, value[2])
                if found is not None:
                    return found
            return self.attribute(self.eval(value[1], context), value[2], context.mode, context.budget)
        if tag == "call":
            return self._call(value, context)
        if tag == "sub":
            return self._subscript(self.eval(value[1], context), value[2], context)
        if tag == "iter":
            return element(self.eval(value[1], context))
        if tag == "item":
            base = self.eval(value[1], context)
            if base.value_kind == "tuple" and value[2] < len(base.items):
                return base.items[value[2]]
            field = self._tuple_field(base, value[2], context)
            if field is not None:
                return field
            if base.value_kind == "list" and base.items:  # `a, b = x.chunk(2)`: alike pieces
                return base.items[0]
            return replace(base, ndim=None, items=()) if base.is_tensor or base.is_unknown_tensor else UNKNOWN
        if tag == "op":
            operands = [self.eval(v, context) for v in value[1]]
            return with_dtype(combine(operands), _operation_dtype(value, operands))
        if tag == "join":
            return join_sources([self.eval(v, context) for v in value[1]])
        if tag == "and":
            # `return mode.is_extend() and lens.sum() == 0`: the GPU comparison wherever the value is a tensor.
            operands = [self.eval(v, context) for v in value[1]]
            if all(f.device is Device.NOT_TENSOR for f in operands[:-1]):
                return operands[-1]
            return join_sources(operands)
        if tag == "tuple":
            return Fact(Device.NOT_TENSOR, value_kind="tuple", items=tuple(self.eval(v, context) for v in value[1]))
        if tag == "listof":
            return Fact(Device.NOT_TENSOR, value_kind="list", items=(self.eval(value[1], context),))
        if tag == "on":
            if value[3] == "type":  # a return that runs only when a parameter is no tensor
                held = self._param_in(context, value[2])
                return BOTTOM if held.is_tensor or held.is_unknown_tensor else self.eval(value[1], context)
            return self._narrowed(self.eval(value[1], context), value, context.summary)
        if tag == "unlessgiven":
            # A fallback for a parameter left None: no value on any path where every call passes one.
            info = context.function
            if info is not None and self.never_none(context.summary.qualified(info.qualname), value[1]):
                return UNKNOWN
            return self.eval(value[2], context)
        if tag == "dict":
            return Fact(Device.NOT_TENSOR, value_kind="dict", items=tuple((k, self.eval(v, context))
                                                                         for k, v in value[1]))
        if tag == "spread":  # what `**mapping` passes for one keyword (`_argument`)
            entry = dict_entry(self.eval(value[1], context), value[2])
            return entry if entry is not None else UNKNOWN
        return UNKNOWN

    def _narrowed(self, fact: Fact, value: Value, summary: ModuleSummary) -> Fact:
        """What a device test around a read proves (`analysis/narrowing.py` does the same within a file):
        `x` in `if x.device.type == "cpu":` is a CPU tensor if it is a tensor at all; in `if x.is_cuda:` it
        is a GPU tensor; `device` in `if device.type == "cpu":` is the CPU."""
        _tag, _inner, on, how, test, line = value
        device = Device.CPU if on == "cpu" else Device.GPU
        reason = f"{test} here"
        if how == "device":
            if fact.value_kind == "device" or (fact.device is Device.UNKNOWN and not fact.tensor_like
                                               and fact.value_kind is None):
                return replace(device_value(device, reason), where=self._where(summary, line))
            return fact
        if fact.is_tensor or fact.is_unknown_tensor or (how == "shows" and fact.device is Device.UNKNOWN
                                                        and fact.value_kind is None):
            # The test proves the device, and nothing of how the host memory was allocated.
            return Fact(device, tensor_like=True, pinning_unknown=device is Device.CPU, ndim=fact.ndim,
                        dtype=fact.dtype, reason=reason, where=self._where(summary, line))
        return fact

    def _context(self, summary: ModuleSummary, function: str | None, mode: str = "full", budget: int = 0) -> Context:
        return Context(summary, summary.functions.get(function) if function else None, mode=mode, budget=budget)

    def _param_in(self, context: Context, name: str) -> Fact:
        if context.params is not None and name in context.params:
            return context.params[name]
        info = context.function
        if info is None:
            return UNKNOWN
        params = info.params
        if info.class_name is not None and params and params[0].name == name and params[0].kind in ("pos", "posonly"):
            cls = context.summary.qualified(info.class_name)
            if info.kind == "method":
                return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({cls}), subject=name)
            if info.kind == "classmethod":
                return Fact(Device.NOT_TENSOR, value_kind="class", refs=frozenset({cls}), subject=name)
        if context.deep:
            fact = self.param(context.function_qualname, name, context.budget)
        elif context.mode in ("types", "full"):
            param = next((p for p in params if p.name == name), None)
            fact = (self._annotation_fact(context.summary, param.annotation) if param is not None else None) or UNKNOWN
        else:
            fact = UNKNOWN
        if not _informative(fact) and fact.value_kind != "none":
            return self.settings.fact_for_name(name) or fact
        return fact

    def _enclosing_param(self, context: Context, name: str) -> Fact | None:
        """A name a nested function reads from the function around it, when it is that function's
        parameter: Megatron's MoE layer wraps its step in `def custom_forward(hidden_states):` (for
        activation checkpointing), whose `self.router(...)` and `self.token_dispatcher` are the layer's."""
        function = context.function
        if function is None or ".<locals>." not in function.qualname:
            return None
        qualname = function.qualname
        while ".<locals>." in qualname:
            qualname = qualname.rsplit(".<locals>.", 1)[0]
            outer = context.summary.functions.get(qualname)
            if outer is None:
                return None
            if any(p.name == name for p in outer.params):
                return self._param_in(Context(context.summary, outer, mode=context.mode, budget=context.budget,
                                              building=context.building), name)
        return None

    def _name_in(self, context: Context, name: str) -> Fact:
        summary = context.summary
        if name in ("True", "False"):
            return PYTHON
        if "." in name:  # an import resolved in the summary
            return self._qualified(name, context.mode, context.budget) or UNKNOWN
        nested = nested_name(summary, context.function.qualname, name) if context.function is not None else None
        if nested is not None:  # a class or function defined in the function's body (or an enclosing one)
            return self._qualified(nested, context.mode, context.budget) or UNKNOWN
        enclosing = self._enclosing_param(context, name)
        if enclosing is not None:
            return enclosing
        if name in summary.classes:
            return Fact(Device.NOT_TENSOR, value_kind="class", refs=frozenset({summary.qualified(name)}), subject=name)
        if name in summary.functions:
            return Fact(Device.NOT_TENSOR, value_kind="callable", refs=frozenset({summary.qualified(name)}),
                        subject=name)
        target = summary.imports.get(name)
        if name in summary.globals and not (target is not None and summary.globals[name] == ("name", target)):
            # (A global that only binds an import, `import torch`, is the import: read as a global, it
            # named itself and came out unknown, so `x.to(torch.float32)` took the dtype for a device.)
            return self._global_in(summary.module, name, context.mode, context.budget)
        if target is not None:
            return self._qualified(target, context.mode, context.budget) or UNKNOWN
        for star in summary.star_imports:
            found = self._qualified(f"{star}.{name}", context.mode, context.budget)
            if found is not None:
                return found
        if name == "torch":
            return Fact(Device.NOT_TENSOR, value_kind="module", refs=frozenset({"torch"}))
        return self.settings.fact_for_name(name) or UNKNOWN

    def _global_in(self, module: str, name: str, mode: str, budget: int) -> Fact:
        if mode == "full" and budget > 0:
            return self.global_value(module, name, budget)
        summary = self.index.summary(module)
        if summary is None or name not in summary.globals:
            return UNKNOWN
        cheap = "shallow" if mode == "full" else mode
        return self._cheap_question(("global", module, name, cheap),
                                    lambda: self.eval(summary.globals[name], Context(summary, None, mode=cheap)))

    def _qualified(self, dotted: str, mode: str, budget: int) -> Fact | None:
        """The fact of a qualified name: a project symbol, or an external module/object."""
        symbol = self.index.resolve(dotted)
        if symbol is not None:
            if symbol.kind == "module":
                return Fact(Device.NOT_TENSOR, value_kind="module", refs=frozenset({symbol.module}))
            if symbol.kind == "class":
                return Fact(Device.NOT_TENSOR, value_kind="class", refs=frozenset({symbol.qualname}))
            if symbol.kind == "function":
                return Fact(Device.NOT_TENSOR, value_kind="callable", refs=frozenset({symbol.qualname}))
            return self._global_in(symbol.module, symbol.local, mode, budget)
        root = dotted.split(".")[0]
        legacy = legacy_tensor_type(dotted) if root == "torch" else None
        if legacy is not None:  # `torch.cuda.FloatTensor`, as a value (a platform's property returns it)
            return tensor_type(*legacy, reason=f"`{dotted}`")
        if root in ("torch", "numpy"):
            if root == "torch" and dotted.count(".") == 1 and dotted[len("torch."):] in DTYPE_NAMES:
                # `torch.int32` passed on (`self._device_tensor(ids, torch.int32)`): a dtype whose class a
                # `dtype=dtype` inside the callee reads (`_dtype_named`).
                return Fact(Device.NOT_TENSOR, value_kind="dtype", dtype=DTYPE_NAMES[dotted[len("torch."):]])
            if dotted in _DEVICE_MODULES:
                return Fact(Device.NOT_TENSOR, value_kind="device-module", refs=frozenset({dotted}))
            return Fact(Device.NOT_TENSOR, value_kind="module", refs=frozenset({dotted}))
        return None

    def _nested_classes(self, classes: frozenset[str], attr: str) -> set[str]:
        """The classes named `attr` defined in the body of one of `classes` or of their bases."""
        found = set()
        for cls in classes:
            for owner in self.index.mro(cls):
                # Which classes a module defines is read with the owner's class itself.
                defined = self.index.klass(owner)
                if defined is not None and f"{defined[1].qualname}.{attr}" in defined[0].classes:
                    found.add(defined[0].qualified(f"{defined[1].qualname}.{attr}"))
                    break
        return found

    def attribute(self, owner: Fact, attr: str, mode: str = "full", budget: int = 0) -> Fact:
        """`owner.attr`."""
        kind = owner.value_kind
        if kind == "module" and owner.refs:
            (module,) = sorted(owner.refs)[:1]
            return self._qualified(f"{module}.{attr}", mode, budget) or UNKNOWN
        if owner.items[:1] == (LIBRARY_FIELDS,):  # an object of a library class, given tensors by keyword
            found = _given_field(owner, attr)
            if found is not None:
                return replace(found, reason=f"given as `{attr}=` to the library class `{_short(min(owner.refs))}` "
                                             f"that built it, {found.reason}" if found.reason else found.reason)
        if owner.refs == {NAMESPACE}:
            # A `SimpleNamespace` the file being checked built (`Evaluator._eval_call`) holds what it was
            # given. The project's joins do not read them: a unit test's stand-in (`SimpleNamespace(
            # latents=torch.ones(...))`) says where that test's call puts things, not where serving's do.
            return _given_field(owner, attr) or UNKNOWN
        if kind in ("object", "class") and owner.refs:
            nested = self._nested_classes(owner.refs, attr)
            if nested:  # `Metadata.Chunk`: a class defined in the body of the owner's class
                return Fact(Device.NOT_TENSOR, value_kind="class", refs=frozenset(nested))
            methods = {m for m in (self.index.method(c, attr) for c in owner.refs) if m}
            if (methods or kind == "object") and not is_exact(owner):
                # A call through an instance reaches any override (`spec_info: SpecInput` is an
                # `EagleVerifyInput` at run time), even when only subclasses define the method;
                # an object built here by `Cls(...)` is of that class and no other.
                methods |= self._overrides(owner.refs, attr)
            if not methods and kind == "object" and attr in _LAYER_STATE and \
                    all(ref.startswith("torch.nn.") for ref in owner.refs):
                # `self.wg.weight` of an `nn.Linear`: the layer's parameter, module state.
                return replace(MODULE_STATE, reason=f"`{attr}` is a parameter of a `{_short(min(owner.refs))}`")
            if methods and kind == "object" and all(self._is_property(m) for m in methods):
                return self._property_value(owner, self._on_cuda(methods), mode, budget)
            if methods:
                # `self.update = self.update_sliding_window`: an attribute that also holds other methods.
                aliased = self._type_field(owner.refs, attr) if mode != "shallow" else UNKNOWN
                if aliased.value_kind == "callable":
                    methods |= aliased.refs
                # Bound: a method through an instance, or a classmethod (through its class too).
                bound = ("bound",) if kind == "object" or all(self._is_classmethod(m) for m in methods) else ()
                return Fact(Device.NOT_TENSOR, value_kind="callable", refs=frozenset(methods), items=bound)
            if kind == "class" and self._enum_member(owner.refs, attr):
                # `ForwardMode.EXTEND`: a member, so `self == ForwardMode.EXTEND` is a Python bool.
                return Fact(Device.NOT_TENSOR, value_kind="object", refs=owner.refs)
            if mode == "full" and budget > 0:
                fact = self.field(owner.refs, attr, budget)
                given = _given_field(owner, attr)
                if given is not None and given.is_tensor and \
                        (fact.is_tensor or fact.is_unknown_tensor and not given.by_convention):
                    # Where the call that built this object put it, over where the field usually is. A
                    # field whose constructions disagree takes only a proven device: SGLang's CPU unit
                    # tests hand their `dev = "cpu"` through helpers to caches the GPU code builds too.
                    return given
            elif mode in ("types", "full"):
                fact = self._type_field(owner.refs, attr)
            else:
                fact = UNKNOWN
            if fact.is_unknown_tensor:  # a tensor of no known device: what the repository usually stores there
                named = self._by_name(attr, mode)
                return named if named.is_tensor else fact
            return fact if _informative(fact) else self._by_name(attr, mode)
        if owner.is_tensor or owner.is_unknown_tensor:
            if attr == "device":  # as sure as the tensor itself (see `_device_attribute` in analysis/evaluate.py)
                if owner.is_cpu:
                    return replace(device_value(Device.CPU), convention=owner.by_convention)
                return replace(device_value(Device.GPU), convention=not owner.is_gpu or owner.by_convention)
            if attr in TENSOR_ATTRS:
                return owner
            if attr in RESULT_FIELDS:  # `t.max(dim=1).values`
                return replace(owner, ndim=None, dtype=RESULT_FIELDS[attr] or owner.dtype)
            if attr in OUTPUT_FIELDS and owner.is_gpu:  # `out.loss` of a model's output, on its device
                return replace(owner, ndim=0 if attr == "loss" else None, dtype=OUTPUT_FIELDS[attr])
            if attr in METADATA_ATTRS:
                return PYTHON
            return UNKNOWN
        if kind == "callable" and attr == "default" and owner.refs:
            return owner  # `torch.ops.<ns>.<op>.default`: the operator's one overload
        if kind == "device-module" and (attr in EVENT_HANDLES or attr in STREAM_HANDLES):
            return Fact(Device.NOT_TENSOR, value_kind="handle-factory", refs=frozenset({attr}))
        if kind == "device-module" and owner.refs:  # `torch.cuda.FloatTensor`
            legacy = legacy_tensor_type(f"{min(owner.refs)}.{attr}")
            if legacy is not None:
                return tensor_type(*legacy, reason=f"`{min(owner.refs)}.{attr}`")
        if attr == "device" and kind is None and owner.device is Device.UNKNOWN and mode != "shallow":
            # `images.device` of a value nobody knows: an accelerator by convention only, as the checked
            # file's own reading has it (`_device_attribute` in analysis/evaluate.py), never as proof.
            # Not in the cheap reading of one expression ("shallow") that counts a module's stores for the
            # repository's conventions: `torch.zeros(n, device=runner.device)` is how serving code allocates
            # on its device, and a convention learned from such stores is labelled one wherever it is used.
            return replace(device_value(Device.GPU, reason=UNKNOWN_VALUE_DEVICE), convention=True)
        return self._by_name(attr, mode)

    def _on_cuda(self, methods: set[str]) -> set[str]:
        """The property getters a CUDA machine runs: a platform abstraction's object is any of the
        platforms' (DeepSpeed's `get_accelerator()` is a `CUDA_Accelerator`, a `CPU_Accelerator`, an
        `XPU_Accelerator`...), and the getters defined in modules written for another platform
        (`cpu-modules`, `other-platform-modules`) are left out where one is not, as the findings in such
        modules are. Only what a property returns: the methods called through such an object stay all of
        them (a call graph through vLLM's model runners lost two chains when they were filtered too)."""
        if len(methods) < 2:
            return methods
        kept = set()
        for method in methods:
            found = self.index.function(method)
            if found is None or not self.settings.off_cuda_module(found[0].path):
                kept.add(method)
        return kept or methods

    def _enum_member(self, classes: frozenset[str], attr: str) -> bool:
        """Whether `attr` is a member of these classes, each an `enum.Enum` (a plain class attribute)."""
        if attr.startswith("_"):
            return False
        for cls in classes:
            found = self.index.klass(cls)
            if found is None or not any(name == attr for name, _v, _l in found[1].attributes) \
                    or not self._is_enum(cls):
                return False
        return bool(classes)

    def _is_enum(self, cls: str) -> bool:
        """Whether the class derives from `enum.Enum` (or `IntEnum`, `StrEnum`, `Flag`, `IntFlag`)."""
        return any(_ENUM_BASES & {self.index.value_name(k[0], b) or "" for b in k[1].bases}
                   for owner in self.index.mro(cls) if (k := self.index.klass(owner)))

    def device_array(self, classes: Iterable[str]) -> bool:
        """Whether every one of these classes (or a project ancestor) exposes device memory through
        `__cuda_array_interface__` or `__dlpack__`: defined as a method or property, declared, or set
        on `self` in a method (vLLM's ROCm peer buffers wrap a raw device address so)."""
        classes = sorted(classes)
        return bool(classes) and all(self._exposes_device_memory(cls) for cls in classes)

    def _exposes_device_memory(self, cls: str) -> bool:
        for owner in self.index.mro(cls):
            found = self.index.klass(owner)
            if found is None:
                continue
            summary, info = found
            if _DEVICE_ARRAY_PROTOCOLS & {*info.methods, *(field[0] for field in info.fields)}:
                return True
            if any(store.attr in _DEVICE_ARRAY_PROTOCOLS and store.base == ("param", "self")
                   and store.function is not None and store.function.startswith(f"{info.qualname}.")
                   for store in summary.stores):
                return True
        return False

    def declares_field(self, classes: Iterable[str], name: str) -> bool:
        """Whether one of the classes (or a project ancestor) declares a field `name` in its body."""
        for cls in sorted(classes):
            for owner in self.index.mro(cls):
                found = self.index.klass(owner)
                if found is not None and any(field[0] == name for field in found[1].fields):
                    return True
        return False

    def stores_plainly(self, classes: Iterable[str], name: str) -> bool:
        """Whether `name` is plain data on every one of the classes: a project class in its MRO declares
        it or stores it on `self`, and none defines a method or property of that name. A class the
        index does not know may compute it."""
        classes = sorted(classes)
        for cls in classes:
            if self.index.klass(cls) is None or self.index.method(cls, name) is not None:
                return False
            if not (self.declares_field((cls,), name)
                    or any(self._keeps(owner, name) for owner in self.index.mro(cls))):
                return False
        return bool(classes)

    def _keeps(self, cls: str, name: str) -> bool:
        """Whether the class assigns `name` in its body or stores it on `self` in one of its methods."""
        found = self.index.klass(cls)
        if found is None:
            return False
        summary, info = found
        return any(item[0] == name for item in info.attributes) or any(
            store.attr == name and store.owner is not None and summary.qualified(store.owner) == cls
            for store in summary.stores)

    def _is_property(self, function: str) -> bool:
        found = self.index.function(function)
        return found is not None and self._decorated_property(found[1])

    @staticmethod
    def _decorated_property(info: FunctionInfo) -> bool:
        return any(d.rsplit(".", 1)[-1] in _PROPERTY_DECORATORS for d in info.decorators)

    def _property_value(self, owner: Fact, getters: set[str], mode: str, budget: int) -> Fact:
        """`obj.filterbank` where `filterbank` is a property: what its getter returns for this object."""
        if mode == "shallow":
            return UNKNOWN
        if mode == "types" or budget <= 0:
            return self._type_returns(getters)
        return join_sources([self.returns_with(getter, [owner], {}, budget) for getter in sorted(getters)])

    def _type_returns(self, functions: Iterable[str]) -> Fact:
        """What the functions return, read cheaply (their types, not their callers' values)."""
        return join_sources([self._cheap_question(("type-return", f), lambda f=f: self._type_return(f))
                             for f in sorted(functions)])

    def _is_classmethod(self, function: str) -> bool:
        found = self.index.function(function)
        return found is not None and found[1].kind == "classmethod"

    def _overrides(self, classes: frozenset[str], attr: str) -> set[str]:
        """The methods named `attr` that subclasses of these classes define: none when more than
        `_MAX_OVERRIDES` do."""
        # A solved key, so that the answer is cached across runs with what it read: finding the
        # subclasses of `PreTrainedModel` reads the summary of every model in transformers (most of
        # a one-file check of `modeling_utils.py` after an edit).
        return set(self.get(("overrides", tuple(sorted(classes)), attr)).refs)

    def _find_overrides(self, classes: tuple[str, ...], attr: str) -> Fact:
        return Fact(Device.NOT_TENSOR, value_kind="names", refs=frozenset(self._overriding(classes, attr)))

    def _overriding(self, classes: tuple[str, ...], attr: str) -> set[str]:
        found: set[str] = set()
        for cls in sorted(classes):
            own = self.index.method(cls, attr)
            for sub in sorted(self.index.subclasses(cls)):
                # What the name resolves to on the subclass's instances: its own method, or one it
                # inherits through another base (transformers' `PreTrainedModel` subclasses get
                # `_prepare_model_inputs` from `GenerationMixin`, and one of them defines its own:
                # a call on a `PreTrainedModel` reaches either, not that one alone).
                method = self.index.method(sub, attr)
                if method is not None and method != own:
                    found.add(method)
                    if len(found) > _MAX_OVERRIDES:
                        # A base with many implementations (`PreTrainedModel.forward` has hundreds):
                        # any few of them would be a guess, and the chains they start are mostly
                        # through classes the object never is.
                        return set()
        return found

    def _by_name(self, attr: str, mode: str) -> Fact:
        if attr == "device_module":
            return Fact(Device.NOT_TENSOR, value_kind="device-module")
        if mode == "full":
            convention = self.attribute_convention(attr)
            if convention.is_tensor:
                return convention
        return self.settings.fact_for_name(attr) or UNKNOWN

    def _type_field(self, classes: frozenset[str], attr: str) -> Fact:
        """What class a field holds: its declared type, or what the class's own methods store in it."""
        return join_sources([self._cheap_question(("type-field", cls, attr), lambda cls=cls: self._type_field_of(cls, attr))
                             for cls in sorted(classes)])

    def _type_field_of(self, cls: str, attr: str) -> Fact:
        sources: list[Fact] = []
        for owner in self.index.mro(cls):
            found = self.index.klass(owner)
            if found is None:
                continue
            summary, info = found
            for name, annotation, _default, _line in info.fields:
                if name == attr:
                    declared = self._annotation_fact(summary, annotation)
                    if declared is not None:
                        return declared
            for store in summary.stores:
                if store.attr != attr or store.base != ("param", "self") or store.function is None:
                    continue
                function = summary.functions.get(store.function)
                if function is not None and function.class_name == info.qualname:
                    sources.append(self.eval(store.value, Context(summary, function, mode="types")))
            sources += self._class_slots_of(summary, info, attr)
        return join_sources(sources + self._class_slot_overrides(cls, attr))

    def _class_slots_of(self, summary: ModuleSummary, info: ClassInfo, attr: str) -> list[Fact]:
        """The class a class attribute `attr` of this class holds (`infer_state_class = InferStateInfo`):
        `self.infer_state_class()` in a method builds an object of it (LightLLM's base model builds its
        infer state so, and stores the step's tensors into it)."""
        out = []
        for name, value, line in info.attributes:
            if name == attr and value[0] == "name":
                held = self.eval(value, Context(summary, None, mode="types"))
                if held.value_kind == "class":
                    out.append(self._source(held, f"class attribute `{info.name}.{attr}` is `{render(value)}`",
                                            summary, line))
        return out

    def _class_slot_overrides(self, cls: str, attr: str) -> list[Fact]:
        """The classes that subclasses put in the class attribute `attr`: `self.infer_state_class()` in a
        base model's method builds the infer state of whichever model `self` is (LightLLM's
        `TpPartBaseModel._decode`, with `infer_state_class = MistralInferStateInfo` in a subclass)."""
        modules = self.index.class_slot_modules(attr)
        if not modules:  # most attributes: no class sets one, and no subclass's summary is read
            return []
        out: list[Fact] = []
        for sub in sorted(self.index.subclasses(cls)):
            if not any(sub.startswith(f"{module}.") for module in modules):
                continue
            found = self.index.klass(sub)
            if found is not None:
                out += self._class_slots_of(found[0], found[1], attr)
        return out

    def _subscript(self, base: Fact, key: Value, context: Context) -> Fact:
        if base.is_tensor or base.is_unknown_tensor:
            index = self.eval(key, context) if key[0] != "key" else PYTHON
            if index.is_gpu and not base.is_gpu:
                return replace(index, ndim=None)
            if key == ("lit", "slice"):  # `buf[:n + 1]`: a view of the same rank
                return base
            if key[0] == "key" and isinstance(key[1], int) and base.ndim:  # `rows[0]`: one rank less
                return replace(base, ndim=base.ndim - 1)
            return replace(base, ndim=None)
        if base.value_kind == "kwargs" and key[0] == "key" and isinstance(key[1], str):
            found = self.multimodal_input(key[1], context.summary.module)
            if found is not None:
                return found
        if base.value_kind == "dict":
            # An entry by its literal key, else what was stored under keys known only at run time (a dict
            # a loop filled); read with such a key, only those (`dict_entry`: other code may fill a dict
            # the project holds under run-time keys).
            entry = dict_entry(base, key[1] if key[0] == "key" and isinstance(key[1], str) else None)
            if entry is not None:
                return entry
        if base.value_kind == "tuple" and key[0] == "key" and isinstance(key[1], int) and key[1] < len(base.items):
            return base.items[key[1]]
        if key[0] == "key" and isinstance(key[1], int) and key[1] >= 0:
            field = self._tuple_field(base, key[1], context)  # `topk_output[1]` of a `NamedTuple`
            if field is not None:
                return field
        if base.value_kind == "dict" and 0 < len(base.items) <= MAX_DISPATCH and key[0] != "key" and \
                all(f.value_kind == "callable" and not f.items for _k, f in base.items):
            # `ATTENTION_FUNCTIONS[self.attn_implementation](q, k, v, ...)`: a dispatch table read with a key
            # known only at run time calls one of its functions.
            functions = frozenset().union(*(f.refs for _k, f in base.items))
            return Fact(Device.NOT_TENSOR, value_kind="callable", refs=functions)
        if base.value_kind == "tuple" and base.items and key[0] != "key" and key != ("lit", "slice"):
            # `self.events[slot]` of a display (`[torch.cuda.Event(), torch.cuda.Event()]`, a ping-pong
            # pair): an index known only at run time reads one of its items.
            return element(base)
        if base.value_kind == "list" and base.items:
            return base if key == ("lit", "slice") else base.items[0]
        layer = module_in(base, sliced=key == ("lit", "slice"))
        if layer is not None:
            return layer
        if base.value_kind == "numpy":
            return NUMPY
        if base.value_kind == "object" and key[0] == "key" and isinstance(key[1], str) and context.mode != "shallow" \
                and self.declares_field(base.refs, key[1]):
            # `audio_input["speech_lengths"]` of a `TensorSchema` or `TypedDict`: the declared field, even
            # when nothing is known of it (what dicts elsewhere hold under that key is not about this object).
            return self.attribute(base, key[1], context.mode, context.budget)
        if key[0] == "key" and isinstance(key[1], str) and context.mode == "full":
            kept = self.host_input(key[1], context.summary.module)
            if kept is not None:
                return kept
            convention = self.entry(key[1])
            if convention.is_tensor:
                return convention
        return UNKNOWN

    # --- calls -----------------------------------------------------------------------------------
    def _super_attribute(self, context: Context, name: str) -> Fact | None:
        """`super().name` in a method: the attribute of the first class after the method's own in its
        MRO that defines it (vLLM's Gemma 4 `embed_input_ids` calls `super().embed_input_ids(...)`, the
        `SupportsMultiModal` interface's, which merges the multimodal embeddings)."""
        info = context.function
        if info is None or info.class_name is None:
            return None
        for cls in self.index.mro(context.summary.qualified(info.class_name))[1:]:
            found = self.index.klass(cls)
            if found is not None and name in found[1].methods:
                return self.attribute(constructed(frozenset({cls})), name, context.mode, context.budget)
        return None

    def _placed_by_library(self, func: Value, args: tuple, context: Context) -> Fact | None:
        """`super().method(x)` or `self.method(x)` in a class whose project ancestors do not define
        `method` and one of which derives from a library class whose `method` moves `x` to the device
        (`PLACING_METHODS`): `x` there (`placed_by_library`)."""
        if func[0] != "attr" or func[2] not in PLACING_METHODS or func[1] not in (_SUPER, ("param", "self")) or \
                not args or args[0][0] == "*" or context.function is None or context.function.class_name is None:
            return None
        libraries = PLACING_METHODS[func[2]]
        for cls in self.index.mro(context.summary.qualified(context.function.class_name)):
            found = self.index.klass(cls)
            if found is None:
                continue
            summary, info = found
            if func[2] in info.methods and not (func[1] == _SUPER and summary.qualified(info.qualname) ==
                                                context.summary.qualified(context.function.class_name)):
                return None  # the project's own
            if any(self.index.value_name(summary, base) in libraries for base in info.bases):
                return placed_by_library(self.eval(args[0], context), f"`{render(func, 40)}(...)`")
        return None

    def _call(self, value: Value, context: Context) -> Fact:
        func, args, kwargs = value[1], value[2], value[3]
        function = context.function.qualname if context.function else None
        qualified = self.index.value_name(context.summary, func, function)
        if qualified is not None and qualified.split(".")[0] in ("torch", "numpy") and \
                self.index.resolve(qualified) is None:
            return self._torch_call(qualified, args, kwargs, context)
        if qualified == "itertools.islice" and args and args[0][0] != "*":
            return self.eval(args[0], context)  # `islice(self.layers, start, end)`: the same elements
        if qualified is not None and model_loader(qualified) and \
                self.index.resolve(qualified.rpartition(".")[0]) is None:
            return self._loaded_model(value, context)
        if qualified == "functools.partial" and len(args) == 1 and args[0][0] != "*":
            maker = self._tensor_maker(args[0], kwargs, context)
            if maker is not None:
                return maker
        if qualified is not None and arithmetic_call(qualified) and args and not kwargs and \
                all(a[0] != "*" for a in args) and self.index.function(qualified) is None:
            return combine([self.eval(a, context) for a in args])
        receiver = None
        inherited = self._super_attribute(context, func[2]) if func[0] == "attr" and func[1] == _SUPER else None
        placed = self._placed_by_library(func, args, context) if inherited is None else None
        if placed is not None:  # `super()._prepare_inputs(prompt_inputs)` of a Hugging Face `Trainer`
            return placed
        if inherited is not None:
            # `super().current_run_tensors(**kwargs)` (vLLM's V0 Mamba cache): the base class's method,
            # run on this method's own `self`.
            receiver, callee = self.eval(("param", "self"), context), inherited
        elif func[0] == "attr":
            receiver = self.eval(func[1], context)
            if receiver.is_tensor or receiver.is_unknown_tensor:
                return self._tensor_method(receiver, func[2], args, kwargs, context)
            if preparing_method(receiver.refs, _last_name(func[1]), func[2]):
                return self._prepared(value, context)  # `accelerator.prepare(model, optimizer, loader)`
            if func[2] == "pin_memory" and not args and receiver.device is Device.UNKNOWN and \
                    receiver.value_kind is None:
                # `buf.pin_memory()` of a receiver the index does not know (a rebinding with no earlier
                # value it can name): the result of `.pin_memory()` is pinned whatever tensor it pinned.
                return Fact(Device.PINNED, reason="pinned by `.pin_memory()`")
            module = _as_module(receiver, func[1])
            if func[2] in _MOVES and receiver.device is Device.UNKNOWN and receiver.value_kind is None \
                    and module is None:
                # `tokenizer(...).input_ids.to(device)`: a receiver nobody knows, moved, is a tensor where
                # it was moved to, as the per-file analysis takes it (`_eval_method` in analysis/evaluate.py);
                # one named like a module (`self.model.to(device)`) is the module, below.
                return self._tensor_method(receiver, func[2], args, kwargs, context)
            if receiver.value_kind == "numpy":
                return NUMPY
            if receiver.value_kind == "kwargs":  # `kwargs.pop("pixel_values", None)`
                key = args[0] if args and func[2] in ("pop", "get") else None
                named = key is not None and key[:2] == ("lit", "str") and len(key) > 2
                found = self.multimodal_input(key[2], context.summary.module) if named else None  # type: ignore[index]
                return found or UNKNOWN
            if receiver.value_kind == "dict" and func[2] in ("get", "pop") and args and args[0][:2] == ("lit", "str") \
                    and len(args[0]) > 2:
                entry = dict_entry(receiver, args[0][2])  # `d.get("k")`, as `d["k"]`
                if entry is not None:
                    return entry
            viewed = container_method(receiver, func[2])
            if viewed is not None:
                return viewed
            if receiver.value_kind == "device-module" and func[2] in EVENT_HANDLES | STREAM_HANDLES:
                return _handle("event" if func[2] in EVENT_HANDLES else "stream", value)
            if func[2] in MODULE_MOVES:
                if module is not None:  # `model.to(device)`, `model.eval()`: the module itself
                    return self._moved_module(module, value, context)
                if receiver.value_kind == "object" and receiver.refs and \
                        not any(self.index.method(cls, func[2]) for cls in receiver.refs):
                    # `Bank().to(device)` of a project module that does not define it
                    return self._moved_module(receiver, value, context)
            if module is not None:  # `self.model.compute_logits(hidden)`
                return module_output(module, self._inputs(args, kwargs, context), f"`{render(value, 40)}`",
                                     method=func[2])
            callee = self.attribute(receiver, func[2], context.mode, context.budget)
        else:
            callee = self.eval(func, context)
        budget = context.budget
        target = self.call_target(callee, context.mode, budget) if callee.value_kind == "object" and callee.refs \
            else None
        if target is not None:  # the object is the method's `self`
            receiver, callee = callee, target
            budget = min(budget, MODULE_HOPS + 1)
        else:
            module = _as_module(callee, func)
            if module is not None:
                # `self.proj(x)` of an `nn.Linear`, `self.model(input_ids=...)` of a model loaded at run time
                return module_output(module, self._inputs(args, kwargs, context), f"`{render(value, 40)}`")
            if callee.value_kind == "object" and callee.refs:
                return UNKNOWN
        kind = callee.value_kind
        if kind == "tensor-type":  # DeepSpeed's `get_accelerator().FloatTensor([norm])`
            return made_by_tensor_type(callee, _legacy_ndim(args, kwargs, "data" in callee.items),
                                       f"created by `{render(value, 40)}`")
        if kind == "class":
            return self._constructed_here(callee.refs, args, kwargs, context)
        if qualified is not None and class_like(qualified) and callee.device is Device.UNKNOWN \
                and self.index.resolve(qualified) is None and "." in qualified:
            # `BatchPrefillWithRaggedKVCacheWrapper(...)` from a library: an object of that class.
            return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({qualified}),
                        items=library_fields((name, self.eval(v, context)) for name, v in kwargs
                                             if name != "**" and v[0] not in ("lit", "lambda"))
                        if qualified != NAMESPACE else ())
        if kind == "handle-factory":
            return _handle("event" if callee.refs & EVENT_HANDLES else "stream", value)
        if kind == "callable" and callee.refs:
            if context.mode == "types" or context.mode == "full" and context.budget <= 0:
                return self._type_returns(callee.refs)
            if context.mode == "shallow":
                return UNKNOWN
            arg_facts: list[Argument] = [partial(self.eval, a, context) for a in args if a[0] != "*"]
            kw_facts: dict[str, Argument] = {k: partial(self.eval, v, context) for k, v in kwargs
                                             if k != "**" and k != BUILT_ON_KEY}
            building = context.building or self.builds_module(context.summary, context.function)
            results = []
            for target in sorted(callee.refs):
                found = self.index.function(target)
                bound = found is not None and found[1].kind in ("method", "classmethod") and "bound" in callee.items
                if found is None or any(a[0] == "*" for a in args) or len(args) + len(kwargs) > 8:
                    results.append(self.returns(target, budget))
                else:
                    # The receiver binds `self`, or a classmethod's `cls` (`cls._build_state(...)`).
                    self_fact = receiver if receiver is not None and receiver.value_kind in ("object", "class") \
                        else UNKNOWN
                    results.append(self.returns_with(target, ([self_fact] if bound else []) + arg_facts, kw_facts,
                                                     budget, complete=not any(k == "**" for k, _v in kwargs),
                                                     building=building))
            joined = join_sources(results)
            if (not _informative(joined) or joined.is_unknown_tensor) and context.mode != "types":
                # `loss_fn(logits, batch)` of a loss function the project knows, whose result says nothing
                # known (it calls a helper from outside): what a loss function is taken to return.
                last = func[2] if func[0] == "attr" else func[1] if func[0] == "name" else ""
                loss = loss_output(last, (self.eval(a, context) for a in args if a[0] != "*"), f"`{render(value, 40)}`")
                if loss is not None:
                    return loss
            if receiver is not None and not _informative(joined) and callee.refs and \
                    all(ref.rpartition(".")[2] in ("forward", "__call__") for ref in callee.refs):
                # `model(x)` of a project module placed on the GPU, whose `forward` says nothing known
                return placed_output(receiver, f"`{render(value, 40)}`") or joined
            return joined
        if func[0] == "name" and func[1] in ("next", "iter") and args and args[0][0] != "*" and \
                callee.value_kind is None and func[1] not in context.summary.globals:
            iterated = self.eval(args[0], context)
            if iterated.value_kind == "object" and iterated.refs and context.mode != "shallow":
                # `next(train_iterator)` of a project iterator: what its `__next__` returns
                dunder = "__next__" if func[1] == "next" else "__iter__"
                if any(self.index.method(cls, dunder) for cls in iterated.refs):
                    return self._call(("call", ("attr", args[0], dunder), (), ()), context)
                return UNKNOWN
            # `next(iter(loader))`: an element of what is iterated
            return element(iterated) if func[1] == "next" else iterated
        if func[0] == "name" and func[1] == "str" and len(args) == 1 and args[0][0] != "*" and not kwargs:
            named = self.eval(args[0], context)
            if named.value_kind == "device":  # `str(torch.device(device))` names the same device
                return named
        if func[0] == "name" and func[1] in _BUILTIN_NUMBERS:
            # `len(...)` is an int whatever it measures: a list of lengths indexes a tensor with numbers.
            return replace(PYTHON, dtype=CONVERTED_NUMBERS[func[1]]) if func[1] in CONVERTED_NUMBERS else PYTHON
        last = func[2] if func[0] == "attr" else func[1] if func[0] == "name" else ""
        if func[0] == "attr" and last in GRADIENT_NORM_METHODS and callee.value_kind is None and \
                callee.device is Device.UNKNOWN:  # `accelerator.clip_grad_norm_(params, 1.0)` of a library
            return gradient_norm(self._gradient_parameters(args, kwargs, context), f"`{render(value, 40)}`")
        if (callee.value_kind is None and callee.device is Device.UNKNOWN or callee.value_kind == "python"
                and callee.dtype is None and last.lstrip("_") in LOSS_CALLEES) and not class_like(last):
            if context.mode != "types":  # `self._loss_fn(logits, labels)`
                loss = loss_output(last, (self.eval(a, context) for a in args if a[0] != "*"),
                                   f"`{render(value, 40)}`")
                if loss is not None:
                    return loss
            return self._made_on_the_host(kwargs, context)  # (a class's constructor makes an object)
        return UNKNOWN

    def _made_on_the_host(self, kwargs: tuple, context: Context) -> Fact:
        """A call the index does not know that passes `device="cpu"`: a CPU tensor, if a tensor, by
        convention (`_made_on_the_host` in analysis/evaluate.py)."""
        value = next((v for k, v in kwargs if k == "device"), None)
        if value is None or value[:2] == ("lit", "none"):
            return UNKNOWN
        if value[:2] != ("lit", "str") and self.eval(value, context).value_kind not in ("device", "python"):
            return UNKNOWN  # `device=device` of a parameter left None: the library's default device
        device = self._device_argument(value, context)
        if device.device_value is not Device.CPU or device.by_convention:
            return UNKNOWN
        return Fact(Device.CPU, tensor_like=True, pinning_unknown=True, convention=True,
                    reason="made by a call given the CPU as its device")

    def _constructed_here(self, classes: frozenset[str], args: tuple, kwargs: tuple, context: Context) -> Fact:
        """`Meta(ids=ids)` built while a call is followed with its own arguments: the fields those
        arguments decide are read from them and travel with the object. `build_meta(n, device="cpu")`
        in a CPU unit test builds `ids` on the CPU, whatever the serving code's calls pass; the join
        over every construction of `Meta` in the project says only where the field usually is."""
        built = constructed(classes)
        if not context.params or context.mode != "full" or context.function is None:
            return built
        given = set(context.params)
        passed = [(name, value) for name, value in kwargs if name != "**"]
        if len(classes) == 1 and args and not any(a[0] == "*" for a in args) and self._by_position(min(classes)):
            passed += list(zip(self._field_order(min(classes)), args))
        fields = []
        for name, value in passed:
            if not _params_in([value]) & given:
                continue
            fact = self.eval(value, context)
            if _informative(fact):
                reason = f"field `{name}` of `{_short(min(classes))}` is constructed from `{render(value)}` " \
                         f"by this call of `{context.function.name}`"
                fields.append(("field", name, self._source(fact, reason, context.summary, context.function.line)))
        return replace(built, items=built.items + tuple(fields)) if fields else built

    def _inputs(self, args: tuple, kwargs: tuple, context: Context) -> Iterable[Fact]:
        """A call's argument facts, positional then by keyword, each evaluated only when asked for."""
        for arg in (*args, *(v for k, v in kwargs if k != "**")):
            if arg[0] != "*":
                yield self.eval(arg, context)

    def call_target(self, obj: Fact, mode: str = "full", budget: int = 0) -> Fact | None:
        """What calling an object of a project class runs: its `__call__`, else its `forward`
        (`nn.Module.__call__` runs `forward`), as a bound method; None when its class has neither."""
        for name in ("__call__", "forward"):
            defined = any(self.index.method(cls, name) for cls in sorted(obj.refs))
            if defined or not is_exact(obj) and self._overrides(obj.refs, name):
                found = self.attribute(obj, name, mode, budget)
                if found.value_kind == "callable" and found.refs:
                    return found
        return None

    def _type_return(self, function: str) -> Fact:
        """What class a function returns: its annotation, or its `return`s read in "types" mode."""
        found = self.index.function(function)
        if found is None:
            return UNKNOWN
        summary, info = found
        declared = _declared_scalar(info) or self._annotation_fact(summary, info.returns_annotation)
        if declared is not None:
            return declared
        context = Context(summary, info, mode="types")
        return join_sources([self.eval(value, context) for value in info.returns])

    def _tensor_maker(self, target: Value, kwargs: tuple, context: Context) -> Fact | None:
        """`functools.partial(torch.tensor, dtype=torch.float, device="cuda")`: DeepSpeed's CUDA accelerator's
        `FloatTensor` since 0.14, a maker of tensors on that device from the data each call gives."""
        function = context.function.qualname if context.function else None
        if self.index.value_name(context.summary, target, function) not in ("torch.tensor", "torch.as_tensor"):
            return None
        given = dict(kw for kw in kwargs if kw[0] != "**")
        if "device" not in given or len(given) != len(kwargs):
            return None
        place = self._device_argument(given["device"], context)
        if place.device_value not in (Device.GPU, Device.CPU):
            return None
        return Fact(Device.NOT_TENSOR, value_kind="tensor-type", device_value=place.device_value,
                    dtype=self._dtype_named(given.get("dtype"), context), items=("data",),
                    reason=f"`functools.partial({render(target)}, device={render(given['device'], 30)})`")

    def _gradient_parameters(self, args: tuple, kwargs: tuple, context: Context) -> Fact | None:
        """What a gradient-norm call is given to clip, as the checked file reads it: the module of
        `model.parameters()`, or tensors (the first of a list)."""
        given = args[0] if args and args[0][0] != "*" else dict(kwargs).get("parameters")
        if given is None:
            return None
        if given[0] == "call" and given[1][0] == "attr" and given[1][2] == "parameters":
            return self.eval(given[1][1], context)
        fact = self.eval(given, context)
        if fact.value_kind in ("list", "tuple") and fact.items and isinstance(fact.items[0], Fact):
            fact = fact.items[0]  # `get_total_norm([w.grad for w in weights])`
        return fact if fact.is_tensor else None

    def _torch_call(self, qualified: str, args: tuple, kwargs: tuple, context: Context) -> Fact:
        if qualified in DEVICE_ALLOCATORS and any(kw[0] == "device" for kw in kwargs):
            qualified = DEVICE_ALLOCATORS[qualified]
        namespace, _, last = qualified.rpartition(".")
        if qualified.startswith("numpy."):
            return NUMPY
        legacy = made_by_constructor(qualified)
        if legacy is not None:  # `torch.cuda.FloatTensor([norm])`: a tensor on the type's device
            return made_by_tensor_type(tensor_type(*legacy), _legacy_ndim(args, kwargs), f"created by `{qualified}(...)`")
        if qualified == "torch.device":
            return self._device_argument(args[0], context) if args else device_value(Device.GPU)
        if qualified in SAME_RESULT_WRAPPERS and args and args[0][0] != "*":
            wrapped = self.eval(args[0], context)  # `torch.compile(step)`: `step`, compiled
            return wrapped if wrapped.value_kind == "callable" else UNKNOWN
        if qualified == "torch.get_device_module":
            named = args[0][2] if args and args[0][:2] == ("lit", "str") and len(args[0]) > 2 else None
            if not cuda_device_module(named):  # type: ignore[arg-type]
                return PYTHON
            return Fact(Device.NOT_TENSOR, value_kind="device-module")
        if last in EVENT_HANDLES or last in STREAM_HANDLES:
            return Fact(Device.NOT_TENSOR, value_kind="event" if last in EVENT_HANDLES else "stream",
                        reason=f"created by `{qualified}()`")
        if namespace.startswith(("torch.cuda", "torch.accelerator")):
            return PYTHON
        if (namespace == "torch.nn" or namespace.startswith("torch.nn.modules")) and last[:1].isupper() \
                and last not in NN_NON_MODULES:
            # `nn.Linear(...)`: a module object, whose call `module_output` answers.
            return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({qualified}), items=("exact",))
        if module_state_class(qualified):
            made = self.eval(args[0], context) if args and args[0][0] != "*" else UNKNOWN
            return module_state(made)
        if qualified in DATA_LOADERS:
            made_by = f"`{qualified.rsplit('.', 1)[-1]}(...)`"
            return loader_batches(_host_tensor(dict(kwargs).get("pin_memory"), made_by), made_by)
        if qualified in GRADIENT_NORM_FUNCTIONS:
            return gradient_norm(self._gradient_parameters(args, kwargs, context),
                                 f"`{qualified.rsplit('.', 1)[-1]}(...)`")
        if torch_returns_device(qualified):
            return device_value(Device.UNKNOWN, reason=f"the default device, `{qualified}()`")
        if torch_returns_python(qualified) or last[:1].isupper():
            return PYTHON
        keywords = dict(kwargs)
        if namespace == "torch" and last in CPU_FACTORIES:
            return Fact(Device.CPU, reason=f"created by `{qualified}(...)` (CPU memory)")
        if namespace == "torch" and (last in FACTORIES or last in LIKE_FACTORIES):
            pin = keywords.get("pin_memory")
            device = keywords.get("device")
            if device is not None and device[0] == "built":  # no `device=`, in a constructor of `device[1]`
                if pin is None and self.module_class(context.summary.qualified(device[1])):
                    return Fact(Device.UNKNOWN, tensor_like=True, reason=f"created by `{qualified}(...)` with no "
                                "`device=` while an `nn.Module` is built: its builder's `with torch.device(...)` "
                                "decides where")
                device = None
            if device is None and "**" in keywords:
                # `torch.zeros(n, **factory_kwargs)`: the device is the dict's entry, if it is known.
                spread = self.eval(keywords["**"], context)
                entries = dict(spread.items) if spread.value_kind == "dict" else {}
                if "device" not in entries:
                    # `torch.zeros_like(x, **kw)` with no device entry seen is where `x` is, as below.
                    source = self.eval(args[0], context) if last in LIKE_FACTORIES and args else UNKNOWN
                    if spread.value_kind == "dict" and (source.is_tensor or source.is_unknown_tensor):
                        return source
                    return TENSOR
                target = self._device_of(entries["device"], context)
                if target.device_value is Device.GPU:
                    return Fact(Device.GPU, reason=f"created by `{qualified}(..., **{render(keywords['**'], 30)})`",
                                convention=target.by_convention)
                return Fact(Device.CPU, pinning_unknown=True, convention=target.by_convention,
                            reason=f"created by `{qualified}(..., **{render(keywords['**'], 30)})` on the CPU")
            if device is None and last in LIKE_FACTORIES:
                # `torch.rand_like(x)` is where `x` is: of a value not known, on a device not known.
                source = self.eval(args[0], context) if args else UNKNOWN
                if pin is not None and source.is_cpu:  # `torch.empty_like(cpu, pin_memory=flag)`: new host memory
                    return with_dtype(_host_tensor(pin, f"`{qualified}(...)`"), source.dtype)
                return source if source.is_tensor or source.is_unknown_tensor else TENSOR
            if context.building and pin is None and last in FACTORIES and (device is None or device == NONE_VALUE):
                return Fact(Device.UNKNOWN, tensor_like=True, reason=f"created by `{qualified}(...)` with no `device=` "
                            "in a call made while an `nn.Module` is built: its builder's `with torch.device(...)` "
                            "decides where")
            target = self._device_argument(device, context) if device is not None else None
            dtype = self._dtype_named(keywords.get("dtype"), context)
            number = partial(self._holds_int, context=context)
            ndim = factory_rank(last, [_size_kind(a, context, number) for a in args if a[0] != "*"],
                                _size_kind(keywords["size"], context, number) if "size" in keywords else None,
                                "size" in keywords) if not any(a[0] == "*" for a in args) else None
            if target is not None and target.device_value is Device.GPU:
                return Fact(Device.GPU, reason=f"created by `{qualified}(..., device={render(device, 30)})`",
                            convention=target.by_convention, dtype=dtype, ndim=ndim)
            assumed = target is not None and target.by_convention
            return replace(with_dtype(_host_tensor(pin, f"`{qualified}(...)`", assumed), dtype), ndim=ndim)
        if "out" in keywords:
            written = self.eval(keywords["out"], context)  # `torch.cat(parts, out=pinned)` returns `out`
            if written.is_tensor:
                return written
        inputs = [self.eval(a, context) for a in args if a[0] != "*"]
        inputs += [self.eval(v, context) for k, v in kwargs if k in TENSOR_KEYWORDS]
        result = combine(spread_elements(inputs))
        if not (result.is_tensor or result.is_unknown_tensor):
            result = TENSOR
        if last in SPLITTING_OPS:
            return pieces_of(result, last)  # `torch.split(x, sizes)`: a tuple of tensors
        return with_dtype(result, result_dtype(last, result.dtype, by_method=False, arguments=len(args) + len(kwargs)))

    def _device_argument(self, value: Value, context: Context) -> Fact:
        if value[:2] == ("lit", "str") and len(value) > 2:
            text = value[2].strip().lower()
            if text.startswith("cpu"):
                return device_value(Device.CPU, reason=f"device string {value[2]!r}")
            if text.startswith("meta"):
                return device_value(Device.UNKNOWN)
            return device_value(Device.GPU, reason=f"device string {value[2]!r}")
        if value[:2] == ("lit", "none"):
            return device_value(Device.CPU)
        if value[:2] == ("lit", "number"):
            return device_value(Device.GPU, reason="a device index")
        return self._device_of(self.eval(value, context), context)

    def _device_of(self, fact: Fact, context: Context) -> Fact:
        """The device a `device=` argument's value denotes."""
        if fact.value_kind == "device":
            return fact
        if fact.value_kind == "none":  # `{"device": None}`: the default device, as `device=None` is
            return device_value(Device.CPU)
        if fact.is_tensor:
            return replace(device_value(fact.device, reason="the device of a tensor"), convention=fact.by_convention)
        if fact.value_kind == "python" and fact.dtype == "str":  # a string variable holding a device name
            if not fact.reason:  # strings that differ between call sites
                return replace(device_value(Device.GPU, reason="a device name that differs between call sites"),
                               convention=True)
            return self._device_argument(("lit", "str", fact.reason), context)
        return device_value(Device.GPU, reason="a device that is not literally the CPU")

    def _as_device(self, fact: Fact, context: Context, assumed: Fact) -> Fact:
        """What a device parameter receives, as a device: a string names one (`"cpu"`); a value
        nobody knows is `assumed` (what the parameter's name says, by convention only)."""
        if fact.value_kind == "python" and fact.dtype == "str":
            return self._device_argument(("lit", "str", fact.reason), context) if fact.reason else assumed
        if fact.is_unknown_tensor or not _informative(fact) and fact.value_kind not in ("none", "bottom"):
            return assumed
        return fact

    def _tensor_method(self, owner: Fact, method: str, args: tuple, kwargs: tuple, context: Context) -> Fact:
        if method in HOST_VALUE_METHODS or method in METADATA_METHODS:
            return PYTHON
        if method in SPLITTING_OPS:
            return pieces_of(owner, method)  # `embeds.split(sizes)`: a tuple of tensors
        if method == "numpy":
            return NUMPY
        if method == "cuda":
            return Fact(Device.GPU, reason="moved by `.cuda()`", dtype=owner.dtype)
        if method == "cpu":
            return Fact(Device.CPU, reason="moved by `.cpu()`", dtype=owner.dtype)
        if method == "pin_memory":
            return Fact(Device.PINNED, reason="pinned by `.pin_memory()`")
        if method == "to":
            moved = self._to(owner, args, kwargs, context)
            if "dtype" in dict(kwargs):  # `.to(device, dtype=torch.bool)`
                return with_dtype(moved, self._dtype_named(dict(kwargs)["dtype"], context))
            return moved
        if method == "type_as" and len(args) == 1 and args[0][0] != "*" and not kwargs:
            return moved_like(owner, self.eval(args[0], context), f"moved by `.type_as({render(args[0], 30)})`")
        if method in NEW_METHODS:
            device = dict(kwargs).get("device")
            if device is not None:
                target = self._device_argument(device, context)
                if target.device_value is not None:
                    return Fact(target.device_value, reason=f"created by `.{method}(..., device=...)`",
                                convention=target.by_convention)
            pin = dict(kwargs).get("pin_memory")
            if device is None and pin is not None and not owner.is_gpu and pin != _FALSE:
                return _host_tensor(pin, f"`.{method}(...)`")  # a staging buffer in host memory
        dtype = result_dtype(method, owner.dtype, by_method=True, arguments=len(args) + len(kwargs))
        # A view shares the pinned memory, and an in-place method (`copy_`, `fill_`) returns its receiver.
        if owner.device is Device.PINNED and method not in SHARES_MEMORY and not method.endswith("_"):
            return replace(owner, device=Device.CPU, ndim=None, dtype=dtype)
        return replace(owner, ndim=None, dtype=dtype)

    def _to(self, owner: Fact, args: tuple, kwargs: tuple, context: Context) -> Fact:
        keywords = dict(kwargs)
        target = keywords.get("device") or (args[0] if args else None)
        if target is None:
            return owner
        if target[0] != "lit":
            fact = self.eval(target, context)
            if fact.value_kind in ("dtype", "module") or fact.value_kind == "python" and not fact.reason \
                    and fact.dtype != "str":
                return with_dtype(owner, self._dtype_named(target, context))  # `.to(torch.bool)`, `.to(dtype)`
            if fact.is_tensor:
                return Fact(Device.CPU if fact.device is Device.PINNED else fact.device,
                            reason=f"moved by `.to({render(target, 30)})`", convention=fact.by_convention)
        device = self._device_argument(target, context)
        dtype = owner.dtype if owner.is_tensor or owner.is_unknown_tensor else None  # a move keeps the dtype
        if device.device_value is Device.CPU:
            if owner.is_gpu and keywords.get("non_blocking") == ("lit", "bool", True):
                return Fact(Device.PINNED, reason=f"moved by `.to({render(target, 30)}, non_blocking=True)`",
                            convention=device.by_convention, dtype=dtype)
            return Fact(Device.CPU, reason=f"moved by `.to({render(target, 30)})`", convention=device.by_convention,
                        dtype=dtype)
        if device.device_value is Device.GPU:
            return Fact(Device.GPU, reason=f"moved by `.to({render(target, 30)})`", convention=device.by_convention,
                        dtype=dtype)
        return with_dtype(TENSOR, dtype)

    def _prepared(self, value: Value, context: Context) -> Fact:
        """`accelerator.prepare(model, optimizer, loader)`: each argument as the launcher returns it
        (`prepared_by_launcher`), one alone, several as a tuple. (`_prepared` in analysis/evaluate.py.)"""
        args = value[2]
        if value[3] or not args or any(a[0] == "*" for a in args):
            return UNKNOWN
        code = f"`{render(value, 40)}`"
        loaders = value[1][2] in LOADER_PREPARERS
        parts = [prepared_by_launcher(self.eval(a, context), _last_name(a), code, loaders=loaders) for a in args]
        return parts[0] if len(parts) == 1 else Fact(Device.NOT_TENSOR, value_kind="tuple", items=tuple(parts))

    def _moved_module(self, module: Fact, value: Value, context: Context) -> Fact:
        """`model.cuda()`, `model.to(device)`: the module placed there (`placed_module`); `model.eval()`,
        `model.to(torch.bfloat16)`: the module as it was. (`_moved_module` in analysis/evaluate.py.)"""
        method, args, kwargs = value[1][2], value[2], value[3]
        if method not in ("cuda", "cpu", "to"):
            return module
        moved = self._to(TENSOR, args, kwargs, context) if method == "to" else \
            Fact(Device.GPU if method == "cuda" else Device.CPU)
        if not moved.is_tensor:
            return module
        where = Device.CPU if moved.is_cpu else Device.GPU
        return placed_module(module, where, f"moved to the {'CPU' if where is Device.CPU else 'GPU'} by "
                             f"`{render(value, 40)}`", convention=moved.convention)

    def _loaded_model(self, value: Value, context: Context) -> Fact:
        """`AutoModelForCausalLM.from_pretrained(name, device_map="cuda")`: a module of a class not known
        here, placed where `device_map=` puts it (`_loaded_model` in analysis/evaluate.py)."""
        keywords = dict(value[3])
        device_map = keywords.get("device_map") or keywords.get(BUILT_ON_KEY)
        if device_map is None or device_map[0] == "dict":
            return NN_MODULE
        code = f"`{render(value, 40)}`" + (" inside a `with` of a device" if "device_map" not in keywords else "")
        if device_map[:2] == ("lit", "str") and len(device_map) > 2 and device_map[2] in DISPATCHING_DEVICE_MAPS:
            return placed_module(NN_MODULE, Device.GPU, f"loaded by {code} across the accelerators", convention=True)
        device = self._device_argument(device_map, context)
        if device.device_value not in (Device.GPU, Device.CPU):
            return NN_MODULE
        return placed_module(NN_MODULE, device.device_value, f"loaded by {code} onto {device.reason or 'a device'}",
                             convention=device.by_convention or device_map[0] != "lit")

    def _holds_int(self, value: Value, context: Context) -> bool:
        """Whether a name or attribute holds one Python int (`self.max_bs`, stored from an `int`), as a
        factory's size: `torch.zeros(self.max_bs)` is then a vector, one of whose elements `t[i] = v` stores."""
        fact = self.eval(value, context)
        return fact.value_kind == "python" and fact.dtype == "int"

    def _dtype_named(self, value: Value | None, context: Context) -> str | None:
        """The dtype class ("bool", "int", "float") a `dtype=` argument spells (`torch.bool`), if any."""
        if value is None:
            return None
        if value[0] == "param" and context.params and value[1] in context.params:
            given = context.params[value[1]]  # a specialised call's argument (`returns_with`)
            return given.dtype if given.value_kind == "dtype" else None
        function = context.function.qualname if context.function else None
        spelled = self.index.value_name(context.summary, value, function)
        if spelled is None or not spelled.startswith("torch."):
            return None
        return DTYPE_NAMES.get(spelled[len("torch."):])

    # --- provenance ---------------------------------------------------------------------------
    @staticmethod
    def _where(summary: ModuleSummary, line: int) -> str:
        return f"{summary.path}:{line}"

    def _source(self, fact: Fact, reason: str, summary: ModuleSummary, line: int) -> Fact:
        """`fact` as one source of a key: the step that carries it there, with where it happened."""
        if fact.dtype == "str":  # a string keeps its text, which may name a device
            return fact
        items = fact.items
        if fact.value_kind in ("list", "tuple") and any(isinstance(i, Fact) and i.is_tensor for i in items):
            # An element taken out later (`for t in build(n)`) shows this step too.
            items = tuple(self._source(i, reason, summary, line) if isinstance(i, Fact) and i.is_tensor else i
                          for i in items)
        return Fact(fact.device, tensor_like=fact.tensor_like, pinning_unknown=fact.pinning_unknown,
                    ndim=fact.ndim, dtype=fact.dtype, value_kind=fact.value_kind, device_value=fact.device_value,
                    refs=fact.refs, items=items, convention=fact.by_convention, reason=reason,
                    where=self._where(summary, line),
                    # The value's own reason is already in `reason` (its code); keep it only when it leads elsewhere.
                    via=fact if (fact.where is not None or fact.via is not None) else None)

    def _annotation_fact(self, summary: ModuleSummary, annotation: tuple[str, ...]) -> Fact | None:
        """What a type annotation says: an instance of project classes, a tensor, or a container of
        one of them (`dict[str, Request]`: its values; `list[Tensor]`: its elements)."""
        elements = tuple(t[len(ELEMENT):] for t in annotation if t.startswith(ELEMENT))
        annotation = tuple(t for t in annotation if not t.startswith(ELEMENT))
        if elements and annotation and all(t.rsplit(".", 1)[-1] in CONTAINERS for t in annotation):
            if {t.rsplit(".", 1)[-1] for t in annotation} <= {"list", "List"} and \
                    {t.rsplit(".", 1)[-1] for t in elements} in ({"int"}, {"bool"}):
                return host_list()  # `ids: list[int]`
            if _scalar_annotation(elements) and {t.rsplit(".", 1)[-1] for t in annotation} <= MAPPING_TYPES:
                # `self.uid_to_buffer_id: dict[str, int] = {}`: its entries are Python numbers, so
                # `gpu[i] = self.uid_to_buffer_id[uid]` stores one from the host (SL301). Not a tuple of
                # numbers (`-> Tuple[int, ...]`), which indexes a tensor as coordinates, not as a list.
                return Fact(Device.NOT_TENSOR, value_kind="list",
                            items=(replace(PYTHON, dtype=_scalar_dtype(elements)),))
            element = self._annotation_fact(summary, elements)
            if element is None:
                return None
            return Fact(Device.NOT_TENSOR, value_kind="list", items=(replace(element, reason=""),))
        classes = set()
        tensor = modules = False
        for type_name in annotation:
            if type_name.rsplit(".", 1)[-1] == "Tensor":
                tensor = True
                continue
            head, _, rest = type_name.partition(".")
            qualified = self.index.value_name(summary, ("name", head))
            full = f"{qualified}.{rest}" if qualified and rest else qualified
            handle = torch_handle_kind(full)
            if handle is not None:
                return Fact(Device.NOT_TENSOR, value_kind=handle, reason=f"annotated as `{type_name}`")
            if full and full.startswith("torch.nn.") and full.rsplit(".", 1)[-1] == "Module":
                modules = True  # `-> nn.Module`: a model of a class decided at run time
                continue
            symbol = self.index.resolve(full) if full else None
            if symbol is not None and symbol.kind == "class":
                classes.add(symbol.qualname)
            elif symbol is not None and symbol.kind == "global":
                classes |= self._alias_classes(symbol.module, symbol.local)
        if classes and not tensor:
            return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset(classes))
        if tensor and not classes:
            return TENSOR
        if modules and not tensor:
            return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({"torch.nn.Module"}))
        return None

    def _alias_classes(self, module: str, name: str) -> set[str]:
        """The project classes a type alias names (`VideoInputs: TypeAlias = PixelInputs | EmbeddingInputs`,
        `Union[A, B]`, `Optional[A]`); empty when the global is anything else."""
        summary = self.index.summary(module)
        value = summary.globals.get(name) if summary is not None else None
        if value is None:
            return set()
        if value[0] == "sub" and (self.index.value_name(summary, value[1]) or "").rsplit(".", 1)[-1] in \
                ("Union", "Optional"):
            members = value[2][1] if value[2][0] == "tuple" else (value[2],)
        elif value[0] == "op" and value[2:] == ("bit",):
            members = value[1]
        else:
            return set()
        classes = set()
        for member in members:
            spelled = self.index.value_name(summary, member)
            symbol = self.index.resolve(spelled) if spelled else None
            if symbol is None or symbol.kind != "class":
                if member != NONE_VALUE:
                    return set()  # a member that is no project class: not an alias of classes
                continue
            classes.add(symbol.qualname)
        return classes


# ==========================================================================================
# Joining and combining
# ==========================================================================================


# Return annotations that declare a Python scalar: `def is_fp8(x) -> bool: return x == torch.float8_e4m3fn`
# returns a bool even when `x` is a GPU tensor at some call sites (its own `x = x.dtype` is a branch
# the join cannot see through), and the declaration is what the author promises every caller.
_SCALAR_ANNOTATIONS = frozenset({"bool", "int", "float", "str", "bytes"})
# Annotations no tensor passes for, unlike `int` (a 0-d tensor handed on as a count still runs).
_TEXT_ANNOTATIONS = frozenset({"str", "bytes"})


def _spelled(annotation: tuple[str, ...]) -> str:
    return " | ".join(t for t in annotation if not t.startswith(ELEMENT))


def _scalar_annotation(annotation: tuple[str, ...]) -> bool:
    """`bool`, `int | None`, `Optional[float]`: a Python scalar (None is already unwrapped)."""
    return bool(annotation) and all(name in _SCALAR_ANNOTATIONS for name in annotation)


def _proven_gpu_tensor(fact: Fact) -> bool:
    """A value that overrides a field's scalar declaration: a GPU tensor, not by convention."""
    return fact.is_tensor and fact.device is Device.GPU and not fact.by_convention


def _declared_scalar_field(attr: str, owner: str, annotation: tuple[str, ...], where: str) -> Fact:
    """A field the class declares a Python scalar (`_decode_causal: bool`, `self.kind: str | None = None`)."""
    return Fact(Device.NOT_TENSOR, value_kind="python", dtype=_scalar_dtype(annotation),
                reason=f"field `{attr}` of `{owner}` is declared `{_spelled(annotation)}`", where=where)


def _scalar_dtype(annotation: tuple[str, ...]) -> str | None:
    """The number kind a scalar annotation declares (`int`, `Optional[float]`), as the per-file analysis
    gives an annotated parameter: `t[i] = batch.next_token` stores a Python number (SL301)."""
    kinds = set(annotation)
    return kinds.pop() if len(kinds) == 1 and kinds <= {"int", "float", "bool"} else None


def _body_over_annotation(body: Fact, declared: Fact) -> Fact:
    """What a function annotated to return a Python bool returns: the annotation, unless every
    `return` is proven a GPU mask (a comparison's result). `def no_absorb(self, batch) -> bool: return
    mode.is_extend() and batch.extend_prefix_lens.sum() == 0` hands its caller a 0-d CUDA tensor
    whatever it promises, and `if self.no_absorb(batch):` waits for the GPU. A body known only by a
    convention, or a GPU on some paths only, does not overrule the author's declaration (`is_fp8(x) ->
    bool` compares a dtype), nor does a result of no known dtype: vLLM's `init_custom_ar(...) -> int`
    returns what a custom operator given GPU tensors returns, a pointer."""
    if declared.dtype == "bool" and body.is_gpu and body.dtype == "bool" and body.value_kind is None \
            and not body.by_convention:
        return replace(body, reason=f"{body.reason}, a tensor though {declared.reason.partition(' is ')[2]}")
    return declared


def _layer_of(func: Value, attr: str) -> bool:
    """A callee that is a layer of `self.<attr>` (`attr` may be a dotted path into a `ModuleDict`:
    `transformer.h`): iterated (`for layer in self.layers`, or a slice of it) or indexed (`self.layers[i]`)."""
    stack = func[1] if func[0] in ("iter", "sub") else None
    if func[0] == "iter" and stack is not None and stack[0] == "sub":
        stack = stack[1]  # `for layer in self.layers[start:end]`
    held: Value = ("param", "self")
    for part in attr.split("."):
        held = ("attr", held, part)
    return stack == held


def _arithmetic_of_params(info: FunctionInfo) -> bool:
    """Every `return` is arithmetic of the parameters and number literals (`-(a // -b)`), reading one."""
    def arithmetic(value: Value) -> bool:
        if value[0] == "param":
            return True
        if value[:2] == ("lit", "number"):
            return True
        return value[0] == "op" and len(value) == 2 and all(arithmetic(v) for v in value[1])

    return bool(info.returns) and all(arithmetic(v) and v[0] != "lit" for v in info.returns) and \
        bool(_params_in(info.returns))


def _declared_scalar(info: FunctionInfo) -> Fact | None:
    """PYTHON for a function annotated to return a Python scalar (`-> bool`, `-> Optional[int]`)."""
    annotation = info.returns_annotation
    if _scalar_annotation(annotation):
        return Fact(Device.NOT_TENSOR, value_kind="python", dtype=_scalar_dtype(annotation),
                    reason=f"`{info.name}` is annotated `-> {annotation[0]}`")
    return None


_TRUE, _FALSE = ("lit", "bool", True), ("lit", "bool", False)


def _last_name(value: Value) -> str | None:
    """`accelerator` for `self.accelerator` or `accelerator`; None for a value that is no name."""
    if value[0] in ("name", "param"):
        return value[1].rsplit(".", 1)[-1]
    return value[2] if value[0] == "attr" else None


def _as_module(fact: Fact, spelled: Value) -> Fact | None:
    """The module a call's receiver or callee is: an `nn.Module` fact, or a value nothing is known of
    that is named like one (`self.model`, `module`); None otherwise."""
    if nn_module(fact):
        return fact
    if _informative(fact) or not spelled or spelled[0] not in ("attr", "name"):
        return None
    name = spelled[2] if spelled[0] == "attr" else spelled[1]
    return NN_MODULE if name in MODULE_NAMES else None


def _host_tensor(pin: Value | None, made_by: str, convention: bool = False) -> Fact:
    """A tensor `made_by` allocates in host memory with this `pin_memory=` argument (None: not passed):
    pinned for `True` or a flag that holds wherever a GPU can be waited for (`PIN_MEMORY`), provably
    pageable for `False` or none, possibly pinned for another run-time flag."""
    if pin == _TRUE or pin is not None and _pinning_flag(pin):
        return Fact(Device.PINNED, reason=f"created by {made_by} with `pin_memory={render(pin, 30)}`",
                    convention=convention)
    return Fact(Device.CPU, pinning_unknown=pin is not None and pin != _FALSE, reason=f"created by {made_by} on the CPU",
                convention=convention)


def _pinning_flag(value: Value) -> bool:
    """`pin_memory=PIN_MEMORY`, `pin_memory=is_pin_memory_available()`: pinned wherever pinning exists."""
    if value[0] == "call":
        value = value[1]
    return pins_where_available(value[1] if value[0] == "name" else value[2] if value[0] == "attr" else None)


def _host_data(fact: Fact) -> bool:
    """Numbers, numpy arrays, and containers known to hold only those (an empty display too). Not a
    string (it may name a device), nor a container whose elements are not known (it may hold tensors)."""
    if fact.value_kind in ("python", "numpy"):
        return fact.dtype != "str"
    if fact.value_kind in ("list", "tuple"):
        return all(_host_data(item) for item in fact.items) and (bool(fact.items) or fact.value_kind == "tuple")
    if fact.value_kind == "dict":
        return bool(fact.items) and all(_host_data(value) for _key, value in fact.items)
    return False


def _evidence(fact: Fact) -> tuple:
    """The provenance a fact shows, step by step."""
    return tuple((step.reason, step.where, step.subject) for step in fact.chain)


def _informative(fact: Fact) -> bool:
    if fact.value_kind in ("bottom", "none"):
        return False
    return not (fact.device is Device.UNKNOWN and not fact.tensor_like and fact.value_kind is None)


_SOURCES_NOTE = re.compile(r"\(\d+ of \d+ sources[^)]*\)$")


def join_sources(sources: list[Fact], share: float = 0.8, gpu_wins: bool = False) -> Fact:
    """A key's fact from the values that flow into it (see the module docstring for the policy).

    `gpu_wins`: tensors on the GPU at some sources and on the CPU at the others make a GPU tensor
    by convention, where the majority does not decide (a parameter: the calls that pass the GPU
    tensor wait there)."""
    informative = [f for f in sources if _informative(f)]
    if not informative and sources and all(f.value_kind == "none" for f in sources):
        return NONE  # every call site passes None or leaves a None default
    if not informative:
        return BOTTOM if any(f.value_kind == "bottom" for f in sources) else UNKNOWN
    tensors = [f for f in informative if f.is_tensor]
    unknown = sum(1 for f in informative if f.is_unknown_tensor)
    if tensors:
        counts: dict[Device, list[Fact]] = {}
        for fact in tensors:
            counts.setdefault(Device.CPU if fact.device is Device.PINNED else fact.device, []).append(fact)
        device, agreeing = max(counts.items(), key=lambda item: (len(item[1]), item[0] is Device.GPU))
        # Python lists flowing into the same key (a batch field that is a list of lengths on the
        # main path and a GPU tensor on one fast path) are the other side of the vote, and so are
        # Python numbers and bools (vLLM's `causal: bool | torch.Tensor = True`, a GPU tensor in
        # one model only: `not causal` syncs only there); a number against a large majority of
        # tensors (a dummy batch's placeholder) leaves the tensors' device proven.
        lists = sum(1 for f in informative if f.value_kind == "list")
        scalars = sum(1 for f in informative if f.value_kind == "python" and f.dtype != "str")
        mixed = len(counts) > 1 or lists > 0
        # Lists are left out: one may hold GPU tensors.
        host_only = set(counts) == {Device.CPU} and not unknown and \
            all(f.is_tensor or f.value_kind in ("python", "numpy") for f in informative)
        if host_only:
            # Host tensors at some sources and Python values at the others (`delta = 0`, then `delta +=
            # (mask == 0).sum()` of a CPU mask): none is in GPU memory, so reading the value waits for
            # nothing, as where two paths join in one function (`facts._host_join`).
            mixed = False
        elif (mixed or scalars) and not (len(agreeing) >= 2
                                       and len(agreeing) / (len(tensors) + lists + scalars) >= share):
            if not (gpu_wins and Device.GPU in counts and not lists and not scalars):
                return TENSOR
            device, agreeing = Device.GPU, counts[Device.GPU]
        # The evidence shown: the most direct proven source (a stable choice: ties keep their order).
        first = min(agreeing, key=lambda f: (f.by_convention, len(f.chain)))
        if device is Device.CPU and all(f.device is Device.PINNED for f in agreeing):
            device = Device.PINNED
        # Pinned at some sources and pageable at others (`if pin_memory: t = t.pin_memory()`):
        # the memory may be pinned, as where two paths join in one function.
        mixed_pinning = device is Device.CPU and any(f.device is Device.PINNED for f in agreeing)
        # Counted by step (what each source says, and where): one value reaching the key along several
        # paths is one source, and "(4 of 13 sources) (4 of 4 sources)" would count it twice over.
        steps = {(f.reason, f.where) for f in informative if f.is_tensor or f.is_unknown_tensor}
        shown = len({(f.reason, f.where) for f in agreeing})
        note = f" ({shown} of {len(steps)} sources{', the rest on another device' if mixed else ''})" \
            if len(steps) > 1 else ""
        if note and shown == len(steps) and not mixed and _SOURCES_NOTE.search(first.reason):
            # The step shown counts its own sources already ("(2 of 3 sources)"): that every path here
            # reached an agreeing one adds a second count that reads as the same one.
            note = ""
        return replace(first, device=device, reason=first.reason + note,
                       pinning_unknown=mixed_pinning or any(f.pinning_unknown for f in agreeing),
                       convention=mixed or all(f.by_convention for f in agreeing),
                       # a mask only where every source is one (`x[m]` selects only through a bool `m`)
                       dtype=first.dtype if all(f.dtype == first.dtype for f in tensors) else None,
                       ndim=first.ndim if all(f.ndim == first.ndim for f in tensors) and
                       not (host_only and len(tensors) < len(informative)) else None)
    if unknown:
        return next(f for f in informative if f.is_unknown_tensor)
    kinds = {f.value_kind for f in informative}
    if kinds == {"tuple", "list"} and all(f.items for f in informative if f.value_kind == "list") \
            and not any(f.items for f in informative if f.value_kind == "tuple"):
        # `self.wrappers = []` and `self.wrappers.append(w)` elsewhere: the empty display holds
        # nothing to read; the list holds what was added.
        return join_sources([f for f in informative if f.value_kind == "list"], share, gpu_wins)
    if len(kinds) != 1:
        if all(_host_data(f) for f in informative):
            # Host data of different kinds (`return []` on one path, a number or the list of numbers
            # it was given on another): not a tensor, whatever else it is.
            return Fact(Device.NOT_TENSOR, reason=informative[0].reason)
        return UNKNOWN
    kind = kinds.pop()
    first = informative[0]
    if kind == "device":
        if len({f.device_value for f in informative}) == 1:
            return min(informative, key=lambda f: f.by_convention)  # a proven source if there is one
        # The CPU at some sources and an accelerator at others: an accelerator only by convention.
        return replace(device_value(Device.GPU, reason="a device that is the CPU at some of its sources"),
                       convention=True)
    if kind in ("object", "class", "callable", "module"):
        items = first.items if all(f.items == first.items for f in informative) else ()
        return replace(first, refs=frozenset().union(*(f.refs for f in informative)), items=items)
    if kind == "python" and len({(f.dtype, f.reason) for f in informative if f.dtype == "str"}) > 1:
        return Fact(Device.NOT_TENSOR, value_kind="python", dtype="str")  # strings that differ: text unknown
    if kind in ("tuple", "list") and len({len(f.items) for f in informative}) == 1 and len(informative) > 1:
        # Returns of tuples of one length: element by element.
        return replace(first, items=tuple(join_sources([f.items[i] for f in informative])
                                          for i in range(len(first.items))))
    return first


def _held_object(receiver: Value) -> bool:
    """A receiver the code holds (`self.model`, `runner.attn_backend`, a parameter) or a getter hands it
    (`self.use_declared_component("text_encoder")`), not one it looks up in a container
    (`params[name].weight_loader(...)`) or takes from a loop: a weight loader's
    `dict(self.named_parameters())[name].weight_loader(param, w)` reaches whichever layer owns the
    parameter, and SGLang's diffusion loader's call reached the language models' MoE loaders."""
    while receiver[0] == "attr":
        receiver = receiver[1]
    return receiver[0] in ("param", "name", "call")


def _accepts(info: FunctionInfo, call: CallSite, skip: int = 1) -> bool:
    """Whether the function's signature, after the `skip` parameters the call binds otherwise (a method's
    receiver), takes the call's arguments: a call that would raise `TypeError` does not run it."""
    params = info.params[skip:]
    kinds = {p.kind for p in params}
    positional = [p for p in params if p.kind in ("posonly", "pos")]
    if any(a[0] == "*" for a in call.args):
        return "star" in kinds or bool(positional)
    if len(call.args) > len(positional) and "star" not in kinds:
        return False
    names = {p.name for p in params if p.kind in ("pos", "kwonly")}
    return "starstar" in kinds or all(k == "**" or k in names for k, _v in call.kwargs)


def _size_kind(value: Value, context: Context, number: Callable[[Value], bool] | None = None) -> int | str | None:
    """A factory's size argument as `factory_rank` reads it, from the summary's value: a display's
    length; INT_SIZE for a number literal, an `int`-annotated parameter, `len(x)`, `x.shape[0]`,
    `x.size(0)`, `x.numel()`, a name or attribute `number` says holds one int, and arithmetic of those;
    None otherwise (`torch.zeros(shape)`)."""
    tag = value[0]
    if tag == "tuple":
        return len(value[1])
    if value[:2] == ("lit", "number"):
        return INT_SIZE
    if tag == "op" and len(value) == 2:
        kinds = [_size_kind(v, context, number) for v in value[1]]
        if all(kind == INT_SIZE for kind in kinds):
            return INT_SIZE
        # `self.max_num_reqs + 1`: arithmetic with a number literal sizes a vector, whatever the other side
        # is (a shape tuple is not added to a number; repeating one, `shape * 2`, is rare in a size).
        literal = any(v[:2] == ("lit", "number") for v in value[1])
        return INT_SIZE if literal and not any(isinstance(kind, int) for kind in kinds) else None
    if tag in ("attr", "name") and number is not None:
        return INT_SIZE if number(value) else None
    if tag == "param" and context.function is not None:
        declared = next((p for p in context.function.params if p.name == value[1]), None)
        return INT_SIZE if declared is not None and declared.annotation == ("int",) else None
    if tag == "call":
        func = value[1]
        if func == ("name", "len"):
            return INT_SIZE
        if func[0] == "attr" and (func[2] == "numel" or (func[2] == "size" and value[2])):
            return INT_SIZE
    if tag == "sub" and value[1][0] == "attr" and value[1][2] == "shape" and value[2][0] == "key" \
            and isinstance(value[2][1], int):
        return INT_SIZE
    return None


def with_dtype(fact: Fact, dtype: str | None) -> Fact:
    """A tensor's fact with the dtype class of the value computed (other facts as they are)."""
    if not (fact.is_tensor or fact.is_unknown_tensor) or fact.dtype == dtype:
        return fact
    return replace(fact, dtype=dtype)


def _operation_dtype(value: Value, operands: list[Fact]) -> str | None:
    """A comparison gives a mask; a bitwise operation of a mask gives one; arithmetic gives numbers."""
    kind = value[2] if len(value) > 2 else None
    if kind == "cmp":
        return "bool"
    if kind == "bit" and any(f.dtype == "bool" for f in operands):
        return "bool"
    return None


def combine(facts: list[Fact]) -> Fact:
    """The device of a result computed from these inputs: a GPU input decides."""
    gpu = next((f for f in facts if f.is_gpu), None)
    if gpu is not None:
        return replace(gpu, ndim=None, items=())
    if any(f.is_unknown_tensor for f in facts):
        return TENSOR
    cpu = next((f for f in facts if f.is_cpu), None)
    if cpu is not None:
        return replace(cpu, device=Device.CPU, ndim=None)
    if facts and all(f.device is Device.NOT_TENSOR for f in facts):
        return PYTHON
    return UNKNOWN


def _dispatch_tables(summary: ModuleSummary, name: str) -> set[str]:
    """The module's globals that are dict displays holding the function `name` among their values (a
    call `TABLE[key](...)` is filed under the table's name, `index.callee_name`)."""
    return {table for table, value in summary.globals.items()
            if value[0] == "dict" and len(value[1]) <= MAX_DISPATCH
            and any(entry == ("name", name) for _key, entry in value[1])}


def element(fact: Fact) -> Fact:
    """An element of an iterable: a row of a tensor lives where the tensor lives."""
    layer = module_in(fact)
    if layer is not None:
        return layer
    if fact.is_tensor or fact.is_unknown_tensor:
        return replace(fact, ndim=fact.ndim - 1 if fact.ndim else None, items=())
    if fact.value_kind in ("tuple", "list") and fact.items:
        return join_sources(list(fact.items))
    if fact.value_kind == "numpy":
        return NUMPY
    return UNKNOWN


def _handle(kind: str, value: Value) -> Fact:
    return Fact(Device.NOT_TENSOR, value_kind=kind, reason=f"created by `{render(value)}`")


def never_runs_reason(function: str, param: str, needs: str) -> str:
    """An evidence step's words for `Inference.never_runs`'s answer about `function` (a qualname)."""
    short = function.rsplit(".", 1)[-1]
    if needs == "field None":
        why = f"this line runs only when `{param}` is None, and every value the project gives that field is " \
              "one (a fallback for a value the callers always supply)"
    elif needs == "None":
        why = f"this line runs only when `{param}` is None, and every known call of `{short}` passes a value " \
              "(tests aside)"
    else:
        left = "None" if needs == "not None" else "None or False"
        why = f"this line runs only when `{param}` is {needs}, and every known call of `{short}` leaves it {left} " \
              "(tests aside)"
    return f"{why} (reported for `strict`)"


def unreferenced_reason(function: str) -> str:
    """An evidence step's words for `ProjectIndex.unreferenced`'s answer about a module-level function."""
    return f"no code that runs in the project mentions `{function}` (reported for `strict`)"


@functools.lru_cache(maxsize=None)
def _deployed(module: str) -> bool:
    """Whether a module is code that is deployed, not a test, benchmark, example or script
    (`ranking.context_of`, on the path its name stands for)."""
    return context_of(module.replace(".", "/") + ".py") == PER_STEP


def _split_deployed(calls: list, module: str) -> tuple[list, list]:
    """The calls that say what a function in `module` receives, and those set aside: for deployed code,
    the calls made in deployed code, and those of tests, benchmarks, examples and scripts. A unit test
    hands a serving function the CPU tensors it builds (SGLang's ComfyUI adapters' `unpack(torch.
    full_like(...), ...)`), while in serving the same parameter is a CUDA tensor the worker sends; what a
    test passes says nothing of the devices of serving, either way. Constructions and stores of a class
    stay whoever makes them: a test reads the fields of the objects it builds itself, through the same
    class-wide answer."""
    if not _deployed(module):
        return calls, []
    kept: list = []
    aside: list = []
    for entry in calls:
        (kept if _deployed(entry[0].module) else aside).append(entry)
    return kept, aside


def _placed_on(fact: Fact) -> Device | None:
    """Where a tensor is, or the device a device value names; None for anything else."""
    if fact.value_kind == "device":
        return fact.device_value
    return fact.device if fact.is_tensor else None


def _class_of(summary: ModuleSummary, info: FunctionInfo) -> str | None:
    """The qualified name of the class a method belongs to; None for a function."""
    return summary.qualified(info.class_name) if info.class_name is not None else None


def _unset(value: Value, falsy: bool) -> bool:
    """Whether a value is the literal None (`falsy`: or False)."""
    return value == NONE_VALUE or (falsy and value == ("lit", "bool", False))


def _tuples_over_tensors(sources: list[Fact]) -> list[Fact]:
    """A function's returns, without its tensors where it also returns tuples of one length, three or
    more: SGLang's DeepSeek layers return `hidden_states[0]` on an early exit for an empty batch and a
    4-tuple of the attention method, the batch and the states otherwise, which the caller unpacks.
    Joined, the tensor won, and each of the four names was a GPU tensor: 13 enum comparisons read as
    GPU truth tests. Not pairs: vLLM's linear layers return `output` or, with `return_bias`,
    `(output, bias)`, and most callers take the tensor (preferring the pair moved 6 vLLM findings
    from `high` to `convention`)."""
    tuples = [f for f in sources if f.value_kind == "tuple" and len(f.items) >= 3]
    if not tuples or len({len(f.items) for f in tuples}) != 1 or len(tuples) == len(sources):
        return sources
    if not all(f.value_kind == "tuple" or f.is_tensor or f.is_unknown_tensor for f in sources):
        return sources
    return tuples


def _argument(call: CallSite, params: list[Param], name: str, skip: int) -> tuple[Value | None, bool]:
    """The value a call site passes for parameter `name` (after `skip` parameters the receiver binds),
    and whether the call certainly leaves it at its default (no `*args`/`**kwargs` could hold it)."""
    for keyword, value in call.kwargs:
        if keyword == name:
            return value, False
    for keyword, value in call.kwargs:
        spread_value = _spread_keyword(value, name) if keyword == "**" else None
        if spread_value is not None:
            return spread_value, False
    spread = any(keyword == "**" for keyword, _value in call.kwargs) or any(a[0] == "*" for a in call.args)
    positional = [p for p in params if p.kind in ("posonly", "pos")][skip:]
    for index, param in enumerate(positional):
        if param.name == name:
            if index < len(call.args) and not any(a[0] == "*" for a in call.args[: index + 1]):
                return call.args[index], False
            break
    mapping = next((value for keyword, value in call.kwargs if keyword == "**"), None)
    if mapping is not None and not any(a[0] == "*" for a in call.args):
        # `self.model.forward(**kwargs)` where `kwargs` is the dict another function built and returned
        # (LightLLM's `prepare_decode_inputs`): the entry under the parameter's name, when the dict is known
        # where the call reads it; what nobody knows otherwise, as before.
        return ("spread", mapping, name), False
    return None, not spread


def _spread_keyword(mapping: Value, name: str) -> Value | None:
    """What `**mapping` passes for the keyword `name`, where the mapping is a display or a `dict(...)` call
    the summary knows, on some path (vLLM's model runner passes a GDN builder's `num_draft_tokens` in
    `**extra_attn_metadata_args`, bound to `{}` or to `dict(num_draft_tokens=..., ...)`); None otherwise."""
    tag = mapping[0]
    if tag == "dict":
        return next((value for key, value in mapping[1] if key == name), None)
    if tag == "call" and mapping[1] == ("name", "dict"):
        return next((value for key, value in mapping[3] if key == name), None)
    if tag == "join":
        found = [value for value in (_spread_keyword(option, name) for option in mapping[1]) if value is not None]
        return found[0] if len(found) == 1 else ("join", tuple(found)) if found else None
    return None


def _forced(argument: Argument) -> Fact:
    return argument if isinstance(argument, Fact) else argument()


def _params_in(values: Iterable[Value]) -> set[str]:
    """The parameters these values mention."""
    found: set[str] = set()
    stack = list(values)
    while stack:
        value = stack.pop()
        tag = value[0]
        if tag == "param":
            found.add(value[1])
        elif tag in ("attr", "sub", "iter", "item", "*", "listof", "on"):
            stack.append(value[1])
            if tag == "sub":
                stack.append(value[2])
        elif tag == "unlessgiven":
            found.add(value[1])
            stack.append(value[2])
        elif tag == "call":
            stack.append(value[1])
            stack.extend(value[2])
            stack.extend(v for _k, v in value[3])
        elif tag in ("op", "join", "and", "tuple"):
            stack.extend(value[1])
        elif tag == "dict":
            stack.extend(v for _k, v in value[1])
    return found


def _self_attributes(value: object, me: str) -> set[str]:
    """The names `x` of the `<me>.x` anywhere in a value (`me`: a method's first parameter), other
    than those called there (`self.maybe_compile(self.forward_native)` names `forward_native`)."""
    if not isinstance(value, tuple):
        return set()
    if len(value) == 3 and value[0] == "attr" and value[1] == ("param", me) and isinstance(value[2], str):
        return {value[2]}
    parts = value[2:] if len(value) == 4 and value[0] == "call" else value
    out: set[str] = set()
    for part in parts:
        out |= _self_attributes(part, me)
    return out


def _mentions_method(value: Value, name: str) -> bool:
    if value[0] == "attr":
        return value[2] == name and value[1] == ("param", "self")
    if value[0] == "join":
        return any(_mentions_method(v, name) for v in value[1])
    return False


def _nearest(found: list, qualname: str, limit: int) -> list:
    """The first `limit` of (summary, site) pairs, those in the key's own module first."""
    module = qualname.rsplit(".", 1)[0]
    ranked = sorted(range(len(found)), key=lambda i: (not module.startswith(found[i][0].module), i))
    return [found[i] for i in ranked[:limit]]


def _field_key(cls: str, attr: str) -> tuple[str, str, int]:
    """`field_never_none`'s key in the memo it shares with `never_none`."""
    return (f"<field>{cls}", attr, 0)


def _field_argument(call: CallSite, attr: str, position: int | None) -> Value | None:
    """What a construction of a dataclass-like class passes for its field `attr`, declared at `position`
    (None: by keyword only); None when it leaves the default, or a `*args` before it hides which."""
    value = next((v for k, v in call.kwargs if k == attr), None)
    if value is None and position is not None and position < len(call.args) and \
            not any(a[0] == "*" for a in call.args[: position + 1]):
        value = call.args[position]
    if value is None:
        # `MultiModalData(**out_dict)` after `out_dict['meta'] = new_meta`: the entry under the field's name.
        value = next((found for k, v in call.kwargs if k == "**"
                      for found in (_spread_keyword(v, attr),) if found is not None), None)
    return value


def _given_field(owner: Fact, attr: str) -> Fact | None:
    """The field `attr` as the call that built this object decided it (`Inference._constructed_here`)."""
    return next((item[2] for item in owner.items if isinstance(item, tuple) and item[:2] == ("field", attr)), None)


def _short(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def _legacy_ndim(args: tuple, kwargs: tuple, data: bool = False) -> int | None:
    """The rank of what a legacy tensor type's call makes, as `legacy_ndim` in analysis/evaluate.py reads
    it from the code: one list or tuple display of data is a vector, integer sizes give one dimension each
    (`data`: a maker that reads its argument as data, where a number is a 0-dim tensor)."""
    if kwargs or not args or any(a[0] == "*" for a in args):
        return None
    if len(args) == 1 and args[0][0] == "tuple":
        elements = args[0][1]
        return 1 if elements and all(e[0] != "tuple" for e in elements) else None
    if data:
        return 0 if len(args) == 1 and args[0][:2] == ("lit", "number") else None
    if all(a[:2] == ("lit", "number") for a in args):
        return len(args)
    return None


# The parameters every `torch.nn` layer that has any holds.
_LAYER_STATE = frozenset({"weight", "bias"})


