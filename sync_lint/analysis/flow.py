"""The binder: which fact each name holds at the point where the walk stands.

A forward dataflow over each function body and the module body. The environment
maps names (and dotted names such as `self.buf`) to `Fact`s; branches fork it and
join conservatively afterwards. The binder only records bindings: what a value
*is* comes from the evaluator (`evaluate.py`), which reads the binder's scopes.

Loops are analysed once, so a fact established late in a loop body does not flow
back to its top: the analysis then knows less, never something wrong.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import libcst as cst

from sync_lint.analysis.facts import (
    KWARGS,
    MODULE,
    NUMPY,
    PYTHON,
    UNKNOWN,
    Device,
    Fact,
    device_value,
    join,
    moved_object,
    none_fallback,
    put_entry,
    replace,
)
from sync_lint.analysis.losses import backpropagated
from sync_lint.analysis.narrowing import (
    BUILTIN_TYPES,
    Narrowing,
    holds_with_a_gpu,
    isinstance_parts,
    narrowings,
    none_test,
)
from sync_lint.syntax import dotted_name, keyword_value, literal_string

if TYPE_CHECKING:
    from sync_lint.analysis.evaluate import Evaluator


class Deferred:
    """A parameter's fact, computed when the parameter is first read.

    Asking the project for a parameter means evaluating every caller's argument, often up a
    chain of callers; most parameters (`config`, `prefix`, ...) are never read by a rule or
    an assignment that needs their fact, so entering a function only promises the fact."""

    __slots__ = ("_compute", "_fact")

    def __init__(self, compute: Callable[[], Fact]) -> None:
        self._compute: Callable[[], Fact] | None = compute
        self._fact: Fact | None = None

    def force(self) -> Fact:
        if self._compute is not None:
            self._fact, self._compute = self._compute(), None
        assert self._fact is not None
        return self._fact


def _forced(value: "Fact | Deferred | None") -> Fact | None:
    return value.force() if type(value) is Deferred else value  # type: ignore[union-attr,return-value]


Env = dict[str, "Fact | Deferred"]


@dataclass
class Scope:
    env: Env
    parent: "Scope | None" = None
    class_name: str | None = None  # set for methods: the enclosing class
    function_name: str | None = None
    # False after a `return`, `raise`, `break` or `continue`, until paths join again.
    reachable: bool = True
    # The devices of the `with torch.device(d):` blocks open in this scope, innermost last (None for
    # a `with` of anything else): a factory with no `device=` allocates on the innermost one. A
    # function defined in the block runs later, outside it, so each scope has its own.
    device_contexts: "list[cst.BaseExpression | None]" = field(default_factory=list)
    # What each parameter of the function was bound to on entry: a name still bound to it is unrebound.
    params: Env = field(default_factory=dict)
    function: "cst.FunctionDef | None" = None  # the function whose scope this is
    losses: "dict[str, cst.Call] | None" = None  # what it backpropagates, found when first asked (`loss`)

    def lookup(self, key: str) -> Fact | None:
        scope: Scope | None = self
        while scope is not None:
            fact = scope.env.get(key)
            if fact is not None:
                return _forced(fact)
            scope = scope.parent
        return None


@dataclass
class _Branching:
    """Saved environments while the walk is inside a compound statement.

    `live[i]` says whether `ends[i]` can fall through to what follows; a path that
    ended in `return` or `raise` is kept for `try` bookkeeping but never joined.
    """

    start: Env
    start_live: bool = True
    ends: list[Env] = field(default_factory=list)
    live: list[bool] = field(default_factory=list)
    loop: bool = False
    exits: list[Env] = field(default_factory=list)  # `break` / `continue` states of a loop
    # What a test proved in an arm (`narrowing.py`): (key, the fact bound, the fact before it).
    narrowed: list[tuple[str, Fact, Fact | None]] = field(default_factory=list)
    otherwise: list[Narrowing] = field(default_factory=list)  # what an `if`'s test proves in its `else`
    # `if x is None:` (0: the body is the arm where `x` is None) or `if x is not None:` (1: the else arm).
    none_test: tuple[str, int] | None = None


def _widened(env: Env, narrowed: Sequence[tuple[str, Fact, Fact | None]]) -> Env:
    """`env` with each narrowed fact still bound (not rebound since) put back as it was."""
    out = dict(env)
    for key, fact, before in reversed(narrowed):  # the last first: `x.is_cuda and x.device.type == ...`
        if out.get(key) is fact:
            if before is None:
                del out[key]
            else:
                out[key] = before
    return out


def join_envs(envs: list[Env]) -> Env:
    if len(envs) == 1:
        return dict(envs[0])
    keys: set[str] = set().union(*envs)
    merged: Env = {}
    for key in keys:
        values = [env.get(key) for env in envs]
        first = values[0]
        if first is not None and all(value is first for value in values):
            merged[key] = first  # the same binding on every path: a parameter stays unread
            continue
        if any(type(value) is Deferred for value in values):
            # Joined when first read, like the bindings it joins: most are never read.
            merged[key] = Deferred(functools.partial(_join_values, values))
            continue
        fact = _join_values(values)
        if fact is not None:
            merged[key] = fact
    return merged


# The most bindings a scope may hold for an assignment in it to be evaluated when first read.
_MOST_NAMES_COPIED = 100


def _join_values(values: "Sequence[Fact | Deferred | None]") -> Fact | None:
    fact: Fact | None = None
    for value in values:
        fact = join(fact, _forced(value)) if fact is not None else _forced(value)
    return fact


def _about(value: Deferred, origin: cst.BaseExpression) -> tuple[Fact, cst.BaseExpression]:
    return value.force(), origin


def _part(parts: Deferred, index: int) -> tuple[Fact, None]:
    return parts.force()[index], None


def _named(value: Deferred, name: str) -> Fact:
    """`bind_target`'s fact for `name`, from a deferred (fact, origin) pair."""
    return _about_target(*value.force(), name)


def _with_entry(current: Fact, key: str | None, value: "Fact | Deferred") -> Fact:
    """The dict `current` after `current[key] = value` (`value` deferred: a (fact, origin) pair)."""
    stored = value.force()[0] if type(value) is Deferred else value  # type: ignore[index,union-attr]
    entries: dict[str | None, Fact] = dict(current.items)
    put_entry(entries, key, stored)  # type: ignore[arg-type]
    return replace(current, items=tuple(entries.items()), empty=False)


def _about_target(fact: Fact, origin: cst.BaseExpression | None, name: str) -> Fact:
    """`fact` told as about the assignment target `name`, assigned from `origin` (None: an element
    unpacked from a value, which keeps its own reason)."""
    if origin is not None:
        return fact.as_subject(name, "assigned from {code}", origin)
    return replace(fact, subject=name)


def _in_init(reason: str) -> str:
    return f"set in `__init__`, {reason}" if reason else "set in `__init__`"


class Binder:
    """Scopes, branches and bindings, driven by the engine's walk."""

    def __init__(self) -> None:
        self.scope = Scope(env={})
        self._branches: list[_Branching] = []
        self._class_stack: list[str] = []
        # Facts about `self.<attr>` established in each class's __init__.
        self.class_attrs: dict[str, dict[str, Fact]] = {}
        self.evaluator: "Evaluator"  # set by DeviceAnalysis: values come from it
        # The enclosing definitions, as the project index names them: ("class", "C"),
        # ("function", "C.m"), ("function", "f.<locals>.g").
        self._definitions: list[tuple[str, str]] = []
        self._class_nodes: list[cst.ClassDef] = []

    def release(self) -> None:
        """Drop the file's bindings once its findings are made. The scopes' deferred values call back
        into the binder, and the binder and the evaluator hold each other: cycles that only the
        collector would free, with the file's tree behind them (two thousand objects a file, which
        the collector scanned in every worker of a cold run)."""
        self.scope = Scope(env={})
        self.class_attrs = {}
        del self.evaluator

    # --- queries --------------------------------------------------------------------------
    def lookup(self, name: str) -> Fact | None:
        return self.scope.lookup(name)

    def enclosing_class(self) -> str | None:
        scope: Scope | None = self.scope
        while scope is not None:
            if scope.class_name is not None:
                return scope.class_name
            scope = scope.parent
        return None

    def unrebound_param(self, name: str, value: "Fact | Deferred | None" = None) -> bool:
        """Whether `value` (by default what `name` is bound to now) is the binding the enclosing
        function's parameter `name` got on entry."""
        if value is None:
            value = self.scope.env.get(name)
        return value is not None and self.scope.params.get(name) is value

    def loss(self, name: str) -> cst.Call | None:
        """The call that runs backward on `name` in the innermost enclosing function (`losses.py`)."""
        scope: Scope | None = self.scope
        while scope is not None and scope.function is None:
            if scope.function_name == "<lambda>":
                return None
            scope = scope.parent
        if scope is None or scope.function is None:
            return None
        if scope.losses is None:
            scope.losses = backpropagated(scope.function)
        return scope.losses.get(name)

    def function_qualname(self) -> str | None:
        """The index's name of the innermost enclosing function (None at module or class level)."""
        if self._definitions and self._definitions[-1][0] == "function":
            return self._definitions[-1][1]
        return None

    def enclosing_classes(self) -> tuple[str, ...]:
        """The index's names of every class around the walk, outermost first."""
        return tuple(name for kind, name in self._definitions if kind == "class")

    def outermost_function(self) -> str | None:
        """The name of the module-level function the walk is in (directly or in a nested definition)."""
        if self._definitions and self._definitions[0][0] == "function":
            return self._definitions[0][1]
        return None

    def class_qualname(self) -> str | None:
        """The index's name of the class whose method the walk is in (directly, not a nested function)."""
        if len(self._definitions) >= 2 and self._definitions[-1][0] == "function" \
                and self._definitions[-2][0] == "class":
            return self._definitions[-2][1]
        return None

    def method_of(self) -> tuple[cst.ClassDef, str, str] | None:
        """(the class node, its index name, the method's name) when the walk is directly in a method."""
        owner = self.class_qualname()
        if owner is None or not self._class_nodes:
            return None
        return self._class_nodes[-1], owner, self._definitions[-1][1].rsplit(".", 1)[-1]

    def _enter_definition(self, kind: str, name: str) -> None:
        if not self._definitions:
            qualname = name
        else:
            outer_kind, outer = self._definitions[-1]
            qualname = f"{outer}.{name}" if outer_kind == "class" else f"{outer}.<locals>.{name}"
        self._definitions.append((kind, qualname))

    def device_context(self) -> cst.BaseExpression | None:
        """`d` inside `with torch.device(d):` (or `with dev:`, `dev` a device value) in this scope."""
        return next((d for d in reversed(self.scope.device_contexts) if d is not None), None)

    def init_attribute(self, name: str) -> Fact | None:
        """The fact `__init__` gave `self.<attr>` (`name` spelled `self.attr`), in the enclosing class."""
        class_name = self.enclosing_class()
        if class_name is None:
            return None
        return self.class_attrs.get(class_name, {}).get(name)

    # --- scopes ---------------------------------------------------------------------------
    def enter_function(self, node: cst.FunctionDef) -> None:
        self.bind_name(node.name.value, replace(PYTHON, value_kind="function"))
        class_name = self._class_stack[-1] if self._class_stack and self._is_direct_method() else None
        self._enter_definition("function", node.name.value)
        self.scope = Scope(env={}, parent=self.scope, class_name=class_name, function_name=node.name.value,
                           function=node)
        params = node.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            self.scope.env[param.name.value] = self.evaluator.param_fact(param)
        self.scope.params = dict(self.scope.env)
        if isinstance(params.star_arg, cst.Param):
            self.scope.env[params.star_arg.name.value] = PYTHON
        if isinstance(params.star_kwarg, cst.Param):
            self.scope.env[params.star_kwarg.name.value] = replace(KWARGS, subject=params.star_kwarg.name.value)

    def _is_direct_method(self) -> bool:
        # Nested functions inherit the scope but are not methods.
        return self.scope.class_name is None and self.scope.function_name is None or (
            self.scope.function_name == "<class>"
        )

    def leave_function(self, node: cst.FunctionDef) -> None:
        scope = self.scope
        if scope.class_name is not None and node.name.value == "__init__":
            # Evaluated now, before they are published: while `__init__` ran, its own class had none.
            facts = {key: _forced(value) for key, value in scope.env.items() if key.startswith("self.")}
            attrs = self.class_attrs.setdefault(scope.class_name, {})
            for key, fact in facts.items():
                assert fact is not None
                attrs[key] = replace(fact, reason=_in_init(fact.reason))
        assert scope.parent is not None
        self.scope = scope.parent
        self._definitions.pop()

    def enter_class(self, node: cst.ClassDef) -> None:
        self.bind_name(node.name.value, replace(PYTHON, value_kind="class"))
        self._class_stack.append(node.name.value)
        self._class_nodes.append(node)
        self._enter_definition("class", node.name.value)
        self.scope = Scope(env={}, parent=self.scope, class_name=None, function_name="<class>")

    def leave_class(self, node: cst.ClassDef) -> None:
        self._class_stack.pop()
        self._class_nodes.pop()
        self._definitions.pop()
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    def enter_lambda(self, node: cst.Lambda) -> None:
        self.scope = Scope(env={}, parent=self.scope, function_name="<lambda>")
        for param in node.params.params:
            self.scope.env[param.name.value] = UNKNOWN

    def leave_lambda(self, node: cst.Lambda) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    # --- branching ------------------------------------------------------------------------
    def _fork(self, loop: bool = False) -> None:
        self._branches.append(_Branching(start=dict(self.scope.env), start_live=self.scope.reachable, loop=loop))

    def _end_branch(self) -> None:
        """Close one arm: remember its end state, restart from the fork point."""
        branching = self._branches[-1]
        branching.ends.append(self.scope.env)
        branching.live.append(self.scope.reachable)
        self.scope.env = dict(branching.start)
        self.scope.reachable = branching.start_live

    def _join_live(self, envs: list[Env], live: list[bool], fallback: Env,
                   narrowed: Sequence[tuple[str, Fact, Fact | None]] = ()) -> None:
        """Continue from the join of the paths that fall through; none does: the code after is unreachable.

        What a test proved in one arm holds after the branch only when that arm is the one path
        through (`if device.type != "cpu": return ...`); where several join, a value the arm did
        not rebind is what it was before the test (narrowing told more of it, it did not change it)."""
        alive = [env for env, ok in zip(envs, live) if ok]
        if len(alive) > 1 and narrowed:
            alive = [_widened(env, narrowed) for env in alive]
        if alive:
            self.scope.env, self.scope.reachable = join_envs(alive), True
        else:
            self.scope.env, self.scope.reachable = (join_envs(envs) if envs else fallback), False

    def _merge(self, include_current: bool) -> None:
        branching = self._branches.pop()
        envs, live = list(branching.ends), list(branching.live)
        if include_current:
            envs.append(self.scope.env)
            live.append(self.scope.reachable)
        self._join_live(envs, live, branching.start, branching.narrowed)
        if branching.none_test is not None and len(envs) == 2 and all(live):
            key, arm = branching.none_test
            when_none, given = _forced(envs[arm].get(key)), envs[1 - arm].get(key)
            fallback = none_fallback(when_none, _forced(given))
            if fallback is not None:
                self.scope.env[key] = replace(fallback, reason=f"{fallback.reason} when `{key}` is None")
                return
            # Every known call leaves the parameter None: the other path runs on none of them.
            left = self.evaluator.left_none(key, when_none, given)
            if left is not None:
                self.scope.env[key] = left

    def leave_return(self, node: cst.CSTNode) -> None:
        self.scope.reachable = False

    def leave_jump(self, node: cst.CSTNode) -> None:
        """`break` / `continue`: the state leaves by the innermost loop."""
        for branching in reversed(self._branches):
            if branching.loop:
                if self.scope.reachable:
                    branching.exits.append(dict(self.scope.env))
                break
        self.scope.reachable = False

    def if_after_test(self, node: cst.If) -> None:
        self._fork()
        found = _isinstance_of_host_type(node.test, self.evaluator.imports.resolve) or self._instance_of(node.test)
        if found is not None:  # `if isinstance(image, str):` the body sees a Python (or NumPy) value
            # Only the body: after the `if`, the value is what it was (`self.n` may be a tensor in an `elif`).
            self._bind_narrowed(*found)
        when_true, self._branches[-1].otherwise = narrowings(node.test)
        self._narrow(when_true)
        tested = none_test(node.test)
        if tested is not None:
            self._branches[-1].none_test = (tested[0], 0 if tested[1] else 1)

    def if_after_body(self, node: cst.If) -> None:
        self._end_branch()
        if holds_with_a_gpu(node.test):  # `if PIN_MEMORY:` fails only where there is no GPU to wait for
            self.scope.reachable = False
        # The `else` arm, and the code after an `if` whose body returns: `if device.type != "cpu": return`.
        self._narrow(self._branches[-1].otherwise)
        found = self._not_a_tensor_otherwise(node.test)
        if found is not None:
            self._bind_narrowed(*found)

    def _not_a_tensor_otherwise(self, test: cst.BaseExpression) -> tuple[str, Fact] | None:
        """`x` and what it is where `isinstance(x, torch.Tensor)` fails: not a tensor (`float(alpha)`
        in the `else` of a test for a tensor `alpha`). So even when `x` is known to be a tensor: a
        parameter some callers pass a GPU tensor and others a list is a list there (SGLang's
        `_to_cpu_int_list` returns the tensor's `.cpu().tolist()` first), and where every source is
        a tensor the arm never runs (SGLang's AITER backend: `float(k_descale)` after `elif
        isinstance(k_descale, torch.Tensor):`, every caller passing a layer's scale tensor)."""
        parts = isinstance_parts(test)
        if parts is None or not all(self.evaluator.imports.resolve(n) == "torch.Tensor" for n in parts[2]):
            return None
        _node, subject, _names = parts
        return subject, replace(PYTHON, subject=subject, reason=f"`isinstance({subject}, torch.Tensor)` is false here")

    def _narrow(self, found: list[Narrowing], asserted: bool = False) -> None:
        """Bind what a test proves about devices in the arm being entered (`narrowing.py`)."""
        for narrowing in found:
            how = ("is asserted" if asserted else "holds") if narrowing.holds else \
                ("is asserted false" if asserted else "is false")
            reason = f"{narrowing.test} {how} here"
            key = narrowing.key
            current = self.evaluator.fact(narrowing.subject) if narrowing.tensor else None
            if current is not None and (current.is_tensor or current.is_unknown_tensor
                                        or narrowing.shows_tensor and current.device is Device.UNKNOWN):
                # A host tensor tested to be on the host stays in the memory it was known to be in.
                host = narrowing.device is Device.CPU and current.is_cpu
                fact = replace(current, device=current.device if host else narrowing.device, tensor_like=True,
                               pinning_unknown=current.pinning_unknown if host else narrowing.device is Device.CPU,
                               from_name=False, convention=False, subject=key, reason=reason, origin=None, via=None,
                               where=None)
            elif current is not None and narrowing.device_key is None:
                continue  # `model.is_cuda` of a value known not to be a tensor
            else:  # a device; or `x.device` when `x` is no tensor (`self.device.type == "cpu"`)
                key = key if current is None else narrowing.device_key  # type: ignore[assignment]
                fact = replace(device_value(narrowing.device, reason=reason), subject=key)
            self._bind_narrowed(key, fact, narrowing.kept)

    def _bind_narrowed(self, key: str, fact: Fact, kept: bool = False) -> None:
        """Bind what a test proves in the arm being entered; unless `kept`, the join after the branch
        restores what `key` was (at a function's top level, after an `assert`, nothing joins it again)."""
        if self._branches and not kept:
            self._branches[-1].narrowed.append((key, fact, self.scope.env.get(key)))
        self.scope.env[key] = fact

    def leave_expr(self, node: cst.Expr) -> None:
        """`vals.append(x)`, `vals.extend(xs)`, `vals.insert(i, x)` on a list this function built: the
        list holds what was added (`torch.cat(vals)`, `for v in vals` read it)."""
        call = node.value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and \
                call.func.attr.value in _MODULE_PLACEMENTS:
            self._move_module(call)
            return
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and \
                call.func.attr.value in _OBJECT_MOVES:
            self._move_object(call)
            return
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                and call.func.attr.value in _LIST_ADDS and call.args):
            return
        name = dotted_name(call.func.value)
        current = self.lookup(name) if name is not None else None
        if current is None or current.value_kind != "list":
            return
        method = call.func.attr.value
        if method == "insert":
            if len(call.args) < 2:
                return
            added = self.evaluator.fact(call.args[1].value)
        else:
            added = self.evaluator.fact(call.args[0].value)
            if method == "extend":
                added = self.evaluator.element_fact(added)
        self._add_to_list(name, current, added)  # type: ignore[arg-type]

    def _move_module(self, call: cst.Call) -> None:
        """`model.cuda()`, `model.to(device)` as a statement: a module moves in place, so the name holds
        the module placed there from here on (a tensor's `.to()` makes a copy, and changes nothing)."""
        name = dotted_name(call.func.value)  # type: ignore[attr-defined]
        current = self.lookup(name) if name is not None else None
        if current is None or current.device is not Device.NOT_TENSOR:
            return
        moved = self.evaluator.fact(call)
        if moved.value_kind == current.value_kind and moved.device_value != current.device_value:
            self.set(name, moved)  # type: ignore[arg-type]

    def _move_object(self, call: cst.Call) -> None:
        """`experience.to_device(torch.cuda.current_device())` as a statement: the object moves its own
        tensors there, so the name holds it moved from here on (`moved_object`). Only to an accelerator;
        a tensor has no such method."""
        receiver = call.func.value  # type: ignore[attr-defined]
        name = dotted_name(receiver)
        device = next((a.value for a in call.args if a.keyword is None and not a.star), None) or \
            keyword_value(call, "device")
        if name is None or device is None:
            return
        current = self.evaluator.fact(receiver)
        if current.tensor_like or current.device is not Device.NOT_TENSOR and current.device is not Device.UNKNOWN or \
                current.value_kind not in (None, "object"):
            return
        if self.evaluator.device_of_argument(device)[0] is not Device.GPU:
            return
        self.set(name, moved_object(current, "moved to the GPU by {code}", origin=call))

    def _add_to_list(self, name: str, current: Fact, added: Fact) -> None:
        """The list `name` (`current`) after `added` goes into it."""
        if not added.is_tensor:
            if current.empty:  # something else went in: no longer empty, its elements unknown
                self.set(name, replace(current, empty=False))
            return
        element = added if current.empty or not current.items else join(current.items[0], added)
        self.set(name, replace(current, items=(element,), empty=False))

    def leave_assert(self, node: cst.Assert) -> None:
        """`assert t.is_cuda`: what the test proves holds after it (where it fails, nothing follows)."""
        self._narrow(narrowings(node.test)[0], asserted=True)
        found = self._instance_of(node.test, asserted=True)
        if found is not None:
            self._bind_narrowed(*found)

    def _instance_of(self, test: cst.BaseExpression, asserted: bool = False) -> tuple[str, Fact] | None:
        """`x` and what it is where `isinstance(x, C)` holds, `C` one project class: an instance of it.
        vLLM's KV connectors take their metadata from the base class's getter and then
        `assert isinstance(metadata, LMCacheConnectorMetadata)`: its fields are that class's, not
        those of every connector's metadata."""
        parts = isinstance_parts(test)
        if parts is None or len(parts[2]) != 1 or not isinstance(parts[2][0], (cst.Name, cst.Attribute)):
            return None
        node, subject, (kind,) = parts
        cls = self.evaluator.fact(kind)
        if cls.value_kind != "class" or not cls.refs:
            return None
        current = self.evaluator.fact(node)
        if current.is_tensor or current.is_unknown_tensor or current.value_kind not in ("object", None):
            return None
        how = "is asserted" if asserted else "holds"
        code = dotted_name(kind) or "..."
        return subject, Fact(Device.NOT_TENSOR, value_kind="object", refs=cls.refs, subject=subject,
                             reason=f"`isinstance({subject}, {code})` {how} here")

    def leave_if(self, node: cst.If) -> None:
        self._merge(include_current=True)  # the current env is the else arm (or fall-through)

    def loop_before_body(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.For):
            self.bind_target(node.target, self.evaluator.element_fact(self.evaluator.fact(node.iter)), node.iter)
        self._fork(loop=True)

    def leave_loop(self, node: cst.CSTNode) -> None:
        # Zero or more iterations: join the state before the loop, after one, and where it broke out.
        branching = self._branches.pop()
        envs = [branching.start, *([self.scope.env] if self.scope.reachable else []), *branching.exits]
        self.scope.env = join_envs(envs)
        self.scope.reachable = branching.start_live

    def enter_try(self, node: cst.CSTNode) -> None:
        self._fork()

    def try_after_body(self, node: cst.CSTNode) -> None:
        branching = self._branches[-1]
        # Handlers may start anywhere in the body: from the join of its start and end.
        body_end = self.scope.env
        branching.ends.append(body_end)
        branching.live.append(self.scope.reachable)
        branching.start = join_envs([branching.start, body_end])
        self.scope.env = dict(body_end)

    def enter_handler(self, node: cst.CSTNode) -> None:
        branching = self._branches[-1]
        self.scope.env = dict(branching.start)
        self.scope.reachable = branching.start_live
        if isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler)) and node.name is not None:
            self.bind_target(node.name.name, PYTHON, None)

    def leave_handler(self, node: cst.CSTNode) -> None:
        self._branches[-1].ends.append(self.scope.env)
        self._branches[-1].live.append(self.scope.reachable)

    def try_after_handlers(self, node: cst.CSTNode) -> None:
        # `else` runs after a body that raised nothing: continue from the body's end.
        branching = self._branches[-1]
        self.scope.env = dict(branching.ends[0])
        self.scope.reachable = branching.live[0]

    def try_after_orelse(self, node: cst.CSTNode) -> None:
        branching = self._branches[-1]
        branching.ends[0] = self.scope.env
        branching.live[0] = self.scope.reachable
        # `finally` and whatever follows see any of the paths that fall through.
        self._join_live(branching.ends, branching.live, branching.start)

    def leave_try(self, node: cst.CSTNode) -> None:
        self._branches.pop()

    def enter_match(self, node: cst.Match) -> None:
        self._fork()

    def enter_case(self, node: cst.MatchCase) -> None:
        branching = self._branches[-1]
        self.scope.env = dict(branching.start)
        self.scope.reachable = branching.start_live

    def leave_case(self, node: cst.MatchCase) -> None:
        self._branches[-1].ends.append(self.scope.env)
        self._branches[-1].live.append(self.scope.reachable)

    def leave_match(self, node: cst.Match) -> None:
        branching = self._branches.pop()
        # No case may match: the state before the match falls through too.
        self._join_live([*branching.ends, branching.start], [*branching.live, branching.start_live], branching.start)

    # --- bindings -------------------------------------------------------------------------
    def leave_assign(self, node: cst.Assign) -> None:
        self._bind_later([target.target for target in node.targets], node.value)

    def leave_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_later([node.target], node.value)

    def _bind_later(self, targets: list[cst.BaseExpression], origin: cst.BaseExpression) -> None:
        """`bind_target` of each target to `origin`'s fact, evaluated when a target is first read, as
        it would be here.

        Evaluating a value can mean asking the project about every caller of a parameter it reads,
        and many assigned names are never read by a rule or by a value a rule needs. A binding keeps
        what the evaluator reads of this point (the scope's bindings, the enclosing definitions,
        the `with` devices) and evaluates the value there when first read. A scope with many names
        (a module of constants) binds at once: each binding would keep a copy of them all."""
        scope = self.scope
        if len(scope.env) > _MOST_NAMES_COPIED:
            value = self.evaluator.fact(origin)
            for target in targets:
                self.bind_target(target, value, origin)
            return
        here = (Scope(env=dict(scope.env), parent=scope.parent, class_name=scope.class_name,
                      function_name=scope.function_name, reachable=scope.reachable,
                      device_contexts=list(scope.device_contexts), params=scope.params),
                list(self._definitions), list(self._class_stack), list(self._class_nodes))
        value = Deferred(functools.partial(self._evaluated_at, here, self.evaluator.fact, origin))
        for target in targets:
            if isinstance(target, (cst.Tuple, cst.List)):
                count = len(target.elements)
                parts = Deferred(functools.partial(
                    self._evaluated_at, here, lambda: self._unpack(origin, count, value.force())))
                self._bind_parts(target, parts)
            else:
                self._bind_deferred(target, Deferred(functools.partial(_about, value, origin)))

    def _evaluated_at(self, at: tuple, compute: Callable, *args: object) -> Any:
        """`compute(*args)` with the binder back at the program point `at` (see `_bind_later`)."""
        now = (self.scope, self._definitions, self._class_stack, self._class_nodes)
        self.scope, self._definitions, self._class_stack, self._class_nodes = at
        try:
            return compute(*args)
        finally:
            self.scope, self._definitions, self._class_stack, self._class_nodes = now

    def _bind_parts(self, target: cst.Tuple | cst.List, parts: Deferred) -> None:
        """The elements of `target` to the parts `parts` will unpack into (`bind_target` without `origin`)."""
        for index, element in enumerate(target.elements):
            if isinstance(element, cst.StarredElement):
                self.bind_target(element.value, PYTHON, None)
                continue
            part = Deferred(functools.partial(_part, parts, index))
            if isinstance(element.value, (cst.Tuple, cst.List)):
                count = len(element.value.elements)
                self._bind_parts(element.value, Deferred(lambda p=part, n=count: self._unpack(None, n, p.force()[0])))
            else:
                self._bind_deferred(element.value, part)

    def _bind_deferred(self, target: cst.BaseExpression, value: Deferred) -> None:
        if isinstance(target, cst.StarredElement):
            self.bind_target(target.value, PYTHON, None)
            return
        if isinstance(target, cst.Subscript):
            self.store_entry(target, value)
            return
        name = dotted_name(target)
        if name is not None:
            self.set(name, Deferred(functools.partial(_named, value, name)))

    def leave_aug_assign(self, node: cst.AugAssign) -> None:
        target_fact = self.evaluator.fact(node.target)
        name = dotted_name(node.target)
        if name is not None and target_fact.value_kind == "list" and isinstance(node.operator, cst.AddAssign):
            # `masks += [mask]` on a list this function built: `masks.extend([mask])`.
            self._add_to_list(name, target_fact, self.evaluator.element_fact(self.evaluator.fact(node.value)))
            return
        combined = self.evaluator.combine([target_fact, self.evaluator.fact(node.value)])
        if combined.device is Device.UNKNOWN and target_fact.is_tensor:
            combined = target_fact  # in-place ops keep the tensor where it is
        name = dotted_name(node.target)
        if name is not None:
            self.set(name, combined.as_subject(name, f"updated by `{name} {node.operator.__class__.__name__}=`", None)
                     if combined is not target_fact else target_fact)

    def leave_named_expr(self, node: cst.NamedExpr) -> None:
        self.bind_target(node.target, self.evaluator.fact(node.value), node.value)

    def enter_with(self, node: cst.With) -> None:
        self.scope.device_contexts.append(next(
            (item.item for item in node.items if self.evaluator.device_context(item.item)), None))

    def leave_with(self, node: cst.With) -> None:
        self.scope.device_contexts.pop()

    def leave_with_item(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.bind_target(node.asname.name, self.evaluator.fact(node.item), node.item)

    def comp_for_after_iter(self, node: cst.CompFor) -> None:
        self.bind_target(node.target, self.evaluator.element_fact(self.evaluator.fact(node.iter)), node.iter)

    def leave_del(self, node: cst.Del) -> None:
        targets = node.target.elements if isinstance(node.target, cst.Tuple) else [node.target]
        for target in targets:
            expr = target.value if isinstance(target, cst.Element) else target
            name = dotted_name(expr)
            if name is not None:
                self.forget(name)

    def leave_import(self, node: cst.Import) -> None:
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            name = dotted_name(bound) if isinstance(bound, (cst.Name, cst.Attribute)) else None
            if name:
                self.bind_name(name.split(".")[0], MODULE)

    def leave_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(bound, cst.Name):
                self.scope.env[bound.value] = replace(PYTHON, value_kind="import")

    def bind_target(self, target: cst.BaseExpression, value: Fact, origin: cst.BaseExpression | None) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = list(target.elements)
            parts = self._unpack(origin, len(elements), value)
            for element, part in zip(elements, parts):
                if isinstance(element, cst.StarredElement):
                    part = PYTHON
                self.bind_target(element.value, part, None)
            return
        if isinstance(target, cst.StarredElement):
            self.bind_target(target.value, PYTHON, None)
            return
        if isinstance(target, cst.Subscript):
            self.store_entry(target, value)
            return
        name = dotted_name(target)
        if name is None:
            return
        self.set(name, _about_target(value, origin, name))

    def store_entry(self, target: cst.Subscript, value: "Fact | Deferred") -> None:
        """`d[key] = value` into a dict this code built (`d = {}`, a display, a comprehension): `d` then
        holds it. Any other subscript store (`t[0] = ...`) does not change what its base is."""
        name = dotted_name(target.value)
        if name is None or len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
            return
        bound = self.scope.env.get(name)
        if type(bound) is Fact and bound.value_kind != "dict":  # type: ignore[union-attr]
            return  # known not a dict, without evaluating a deferred binding
        current = self.lookup(name)
        if current is None or current.value_kind != "dict":
            return
        index = target.slice[0].slice.value
        key = literal_string(index) if isinstance(index, cst.SimpleString) else None
        self.scope.env[name] = Deferred(functools.partial(_with_entry, current, key, value))

    def _unpack(self, origin: cst.BaseExpression | None, count: int, value: Fact) -> list[Fact]:
        if isinstance(origin, (cst.Tuple, cst.List)) and len(origin.elements) == count:
            return [self.evaluator.fact(e.value) for e in origin.elements]
        if value.value_kind == "tuple" and len(value.items) == count:  # a tuple the project returned
            return list(value.items)
        if value.value_kind == "object" and self.evaluator.project is not None:
            fields = self.evaluator.project.unpacked(value, count)  # a project `NamedTuple`
            if fields is not None:
                return fields
        if (value.is_tensor or value.is_unknown_tensor) and value.ndim == 0:
            return [UNKNOWN] * count  # a 0-d tensor does not unpack: the value was something else
        if value.is_tensor or value.is_unknown_tensor:
            # `vals, idx = x.topk(k)`: parts live where x lives.
            return [replace(value, ndim=None) for _ in range(count)]
        if value.value_kind == "list" and value.items:  # `a, b = x.chunk(2)`: alike pieces
            return [value.items[0]] * count
        return [UNKNOWN] * count

    def set(self, name: str, fact: "Fact | Deferred") -> None:
        self.forget(name)
        self.scope.env[name] = fact

    def forget(self, name: str) -> None:
        env = self.scope.env
        env.pop(name, None)
        prefix = name + "."
        for key in [k for k in env if k.startswith(prefix)]:
            del env[key]

    def bind_name(self, name: str, fact: Fact) -> None:
        self.scope.env[name] = fact


# The walk's hooks, by node type: what the binder does when the walk enters or leaves
# a node, or has just walked one of its fields.
ENTER: dict[type, Callable[[Binder, cst.CSTNode], None]] = {
    cst.FunctionDef: Binder.enter_function,
    cst.ClassDef: Binder.enter_class,
    cst.Lambda: Binder.enter_lambda,
    cst.Try: Binder.enter_try,
    cst.TryStar: Binder.enter_try,
    cst.ExceptHandler: Binder.enter_handler,
    cst.ExceptStarHandler: Binder.enter_handler,
    cst.Match: Binder.enter_match,
    cst.MatchCase: Binder.enter_case,
    cst.With: Binder.enter_with,
}
LEAVE: dict[type, Callable[[Binder, cst.CSTNode], None]] = {
    cst.FunctionDef: Binder.leave_function,
    cst.ClassDef: Binder.leave_class,
    cst.Lambda: Binder.leave_lambda,
    cst.If: Binder.leave_if,
    cst.For: Binder.leave_loop,
    cst.While: Binder.leave_loop,
    cst.Try: Binder.leave_try,
    cst.TryStar: Binder.leave_try,
    cst.ExceptHandler: Binder.leave_handler,
    cst.ExceptStarHandler: Binder.leave_handler,
    cst.Match: Binder.leave_match,
    cst.MatchCase: Binder.leave_case,
    cst.Assign: Binder.leave_assign,
    cst.AnnAssign: Binder.leave_ann_assign,
    cst.AugAssign: Binder.leave_aug_assign,
    cst.NamedExpr: Binder.leave_named_expr,
    cst.WithItem: Binder.leave_with_item,
    cst.With: Binder.leave_with,
    cst.Del: Binder.leave_del,
    cst.Import: Binder.leave_import,
    cst.ImportFrom: Binder.leave_import_from,
    cst.Return: Binder.leave_return,
    cst.Raise: Binder.leave_return,
    cst.Break: Binder.leave_jump,
    cst.Continue: Binder.leave_jump,
    cst.Assert: Binder.leave_assert,
    cst.Expr: Binder.leave_expr,
}
AFTER_FIELD: dict[tuple[type, str], Callable[[Binder, cst.CSTNode], None]] = {
    (cst.If, "test"): Binder.if_after_test,
    (cst.If, "body"): Binder.if_after_body,
    (cst.For, "iter"): Binder.loop_before_body,
    (cst.While, "test"): Binder.loop_before_body,
    (cst.Try, "body"): Binder.try_after_body,
    (cst.TryStar, "body"): Binder.try_after_body,
    (cst.Try, "handlers"): Binder.try_after_handlers,
    (cst.TryStar, "handlers"): Binder.try_after_handlers,
    (cst.Try, "orelse"): Binder.try_after_orelse,
    (cst.TryStar, "orelse"): Binder.try_after_orelse,
    (cst.CompFor, "iter"): Binder.comp_for_after_iter,
}


# List methods that add elements: `Binder.leave_expr`.
_LIST_ADDS = frozenset({"append", "extend", "insert"})
# What moves a module in place: a statement `model.cuda()` places the module the name holds.
_MODULE_PLACEMENTS = frozenset({"cuda", "cpu", "to"})
# What moves an object's own tensors in place: a statement `experience.to_device(device)` (`moved_object`).
_OBJECT_MOVES = frozenset({"to_device"})


def _isinstance_of_host_type(test: cst.BaseExpression,
                             resolve: Callable[[cst.BaseExpression], str | None]) -> tuple[str, Fact] | None:
    """`x` (or `self.x`) and what it is in the body of `isinstance(x, str)` (a tuple of builtin
    types: a Python value) or `isinstance(x, np.ndarray)` (NumPy types: host memory), else None."""
    parts = isinstance_parts(test)
    if parts is None:
        return None
    _node, subject, names = parts
    if all(isinstance(n, cst.Name) and n.value in BUILTIN_TYPES for n in names):
        return subject, replace(PYTHON, subject=subject, reason=f"`isinstance({subject}, ...)` with a builtin type")
    if all((resolve(n) or "").startswith("numpy.") for n in names):
        return subject, replace(NUMPY, subject=subject, reason=f"`isinstance({subject}, ...)` with a NumPy type")
    return None
