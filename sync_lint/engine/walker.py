"""The one read-only walk of a file: analyses update, then every enabled rule's handlers run.

libcst's own `visit` rebuilds and re-validates every node even for a visitor that
changes nothing (a third of the run time on a real corpus); this walk only reads
the syntactic fields. At each node the analyses' enter hooks run first (in the
context's provider order), then the rules' `visit_` handlers, then the children
(with the analyses' after-field hooks), then the rules' `leave_` handlers, then
the analyses' leave hooks in reverse order.

The walk also tells the context's positions which statement each node is in, so
that a finding's position costs one small codegen.

What to do at a node depends only on its type, so it is worked out once per type
(`_Plan`); children are told from other field values by their concrete type
(libcst's `CSTNode` is an ABC, and an ABC `isinstance` is slow).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from typing import Callable, Sequence

import libcst as cst

from sync_lint.diagnostics import FileError
from sync_lint.engine.context import FileContext
from sync_lint.engine.positions import UNIT_TYPES
from sync_lint.rulekit.rule import Rule
from sync_lint.syntax import walk_fields

Handler = Callable[[cst.CSTNode], None]


def _concrete_node_types() -> frozenset[type]:
    found: set[type] = set()
    pending = [cst.CSTNode]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return frozenset(found)


NODE_TYPES = _concrete_node_types()
_SEQUENCES = (tuple, list)


@functools.cache
def _child_fields(node_type: type) -> tuple[str, ...]:
    """The walked fields that can hold a node (a `str` field, like `Name.value`, cannot)."""
    annotations = {f.name: f.type for f in dataclasses.fields(node_type)}
    return tuple(name for name in walk_fields(node_type) if annotations.get(name) is not str)


@dataclasses.dataclass
class _Plan:
    """Everything the walk does at a node of one type."""

    enter: tuple[Handler, ...]
    visit: list[tuple[Rule, Handler]]
    fields: tuple[tuple[str, tuple[Handler, ...]], ...]  # (field, after-field hooks)
    leave_rules: list[tuple[Rule, Handler]]
    leave: tuple[Handler, ...]
    unit: bool  # a statement (or clause) that positions are computed for


class Walker:
    def __init__(self, ctx: FileContext, rules: Sequence[Rule], errors: list[FileError]) -> None:
        self.path = ctx.path
        self.errors = errors
        self._positions = ctx.positions
        self._owners = ctx.positions.owners
        self._enter: dict[type, list[Handler]] = defaultdict(list)
        self._leave: dict[type, list[Handler]] = defaultdict(list)
        self._after_field: dict[tuple[type, str], list[Handler]] = defaultdict(list)
        providers = ctx.providers
        for provider in providers:
            enter, _, _ = provider.hooks()
            for node_type, hook in enter.items():
                self._enter[node_type].append(hook)
        # Leaving unwinds in reverse: an analysis sees the state of those it depends on.
        for provider in reversed(providers):
            _, leave, after_field = provider.hooks()
            for node_type, hook in leave.items():
                self._leave[node_type].append(hook)
            for key, hook in after_field.items():
                self._after_field[key].append(hook)
        self._visit: dict[type, list[tuple[Rule, Handler]]] = defaultdict(list)
        self._rule_leave: dict[type, list[tuple[Rule, Handler]]] = defaultdict(list)
        for rule in rules:
            for kind, node_type, attr in rule.handlers():
                table = self._visit if kind == "visit" else self._rule_leave
                table[node_type].append((rule, getattr(rule, attr)))
        self._plans: dict[type, _Plan] = {}

    def _plan(self, node_type: type) -> _Plan:
        plan = self._plans.get(node_type)
        if plan is None:
            plan = self._plans[node_type] = _Plan(
                enter=tuple(self._enter.get(node_type, ())),
                visit=self._visit.get(node_type, []),
                fields=tuple((name, tuple(self._after_field.get((node_type, name), ())))
                             for name in _child_fields(node_type)),
                leave_rules=self._rule_leave.get(node_type, []),
                leave=tuple(self._leave.get(node_type, ())),
                unit=node_type in UNIT_TYPES,
            )
        return plan

    def walk(self, node: cst.CSTNode) -> None:
        positions = self._positions
        try:
            self._walk(node)
        finally:
            positions.current = None

    def _walk(self, node: cst.CSTNode) -> None:
        plan = self._plans.get(type(node)) or self._plan(type(node))
        positions = self._positions
        outer = positions.current
        if plan.unit:
            positions.current = node
        self._owners[id(node)] = positions.current  # type: ignore[assignment]
        for hook in plan.enter:
            hook(node)
        if plan.visit:
            self._run(plan.visit, node)
        for name, after in plan.fields:
            value = getattr(node, name)
            value_type = type(value)
            if value_type in NODE_TYPES:
                self._walk(value)
            elif value_type in _SEQUENCES:
                for child in value:
                    if type(child) in NODE_TYPES:
                        self._walk(child)
            for hook in after:
                hook(node)
        if plan.leave_rules:
            self._run(plan.leave_rules, node)
        for hook in plan.leave:
            hook(node)
        positions.current = outer

    def _run(self, handlers: list[tuple[Rule, Handler]], node: cst.CSTNode) -> None:
        for rule, handler in handlers:
            try:
                handler(node)
            except Exception as exc:  # one broken rule must not end the run
                self.errors.append(FileError(self.path, f"rule raised {type(exc).__name__}: {exc}", rule=rule.code))
                self._disable(rule)

    def _disable(self, rule: Rule) -> None:
        # New lists, not edits in place: a `_run` over the old list finishes undisturbed.
        for table in (self._visit, self._rule_leave):
            for node_type, handlers in table.items():
                table[node_type] = [h for h in handlers if h[0] is not rule]
        for plan in self._plans.values():
            plan.visit = [h for h in plan.visit if h[0] is not rule]
            plan.leave_rules = [h for h in plan.leave_rules if h[0] is not rule]
