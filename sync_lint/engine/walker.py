"""The one read-only walk of a file: analyses update, then every enabled rule's handlers run.

libcst's own `visit` rebuilds and re-validates every node even for a visitor that
changes nothing (a third of the run time on a real corpus); this walk only reads
the syntactic fields. At each node the analyses' enter hooks run first (in the
context's provider order), then the rules' `visit_` handlers, then the children
(with the analyses' after-field hooks), then the rules' `leave_` handlers, then
the analyses' leave hooks in reverse order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import libcst as cst

from sync_lint.diagnostics import FileError
from sync_lint.engine.context import FileContext
from sync_lint.rulekit.rule import Rule
from sync_lint.syntax import walk_fields

Handler = Callable[[cst.CSTNode], None]


class Walker:
    def __init__(self, ctx: FileContext, rules: Sequence[Rule], errors: list[FileError]) -> None:
        self.path = ctx.path
        self.errors = errors
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
        self._field_types = frozenset(node_type for node_type, _ in self._after_field)
        self._visit: dict[type, list[tuple[Rule, Handler]]] = defaultdict(list)
        self._rule_leave: dict[type, list[tuple[Rule, Handler]]] = defaultdict(list)
        for rule in rules:
            for kind, node_type, attr in rule.handlers():
                table = self._visit if kind == "visit" else self._rule_leave
                table[node_type].append((rule, getattr(rule, attr)))

    def walk(self, node: cst.CSTNode) -> None:
        node_type = type(node)
        hooks = self._enter.get(node_type)
        if hooks:
            for hook in hooks:
                hook(node)
        handlers = self._visit.get(node_type)
        if handlers:
            self._run(handlers, node)
        after_field = node_type in self._field_types
        for name in walk_fields(node_type):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.walk(value)
            elif isinstance(value, (tuple, list)):
                for child in value:
                    if isinstance(child, cst.CSTNode):
                        self.walk(child)
            if after_field:
                for hook in self._after_field.get((node_type, name), ()):
                    hook(node)
        handlers = self._rule_leave.get(node_type)
        if handlers:
            self._run(handlers, node)
        hooks = self._leave.get(node_type)
        if hooks:
            for hook in hooks:
                hook(node)

    def _run(self, handlers: list[tuple[Rule, Handler]], node: cst.CSTNode) -> None:
        for rule, handler in list(handlers):
            try:
                handler(node)
            except Exception as exc:  # one broken rule must not end the run
                self.errors.append(FileError(self.path, f"rule raised {type(exc).__name__}: {exc}", rule=rule.code))
                self._disable(rule)

    def _disable(self, rule: Rule) -> None:
        for table in (self._visit, self._rule_leave):
            for node_type, handlers in table.items():
                table[node_type] = [h for h in handlers if h[0] is not rule]
