"""The rule interface: what a rule declares, and how it reports.

A rule is a class with metadata (code, name, summary, trigger tokens, the torch
versions in which its pattern syncs) and `visit_<Node>` / `leave_<Node>`
methods named after libcst node types. The engine walks each file once and
calls every enabled rule's handlers for each node; shared analyses (imports,
device facts) are ready on `self.ctx` when a handler runs, with the facts that
hold at that point of the program.

Rules never walk the tree themselves: they look at the node they were handed
and ask the context.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import libcst as cst

from sync_lint.diagnostics import DOCS_URL, Applicability

if TYPE_CHECKING:
    from sync_lint.analysis.device import Fact
    from sync_lint.context import FileContext

FixAvailability = Literal["none", "sometimes", "always"]


@dataclass(frozen=True)
class Replace:
    """Swap `node` for `new` (a node or source text) in the fixed file."""

    node: cst.CSTNode
    new: cst.CSTNode | str


@dataclass(frozen=True)
class FixSpec:
    applicability: Applicability
    message: str
    replacements: tuple[Replace, ...]
    # Modules the fixed code needs, e.g. ("torch",); the fixer adds missing imports.
    needs_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    """An inline example: `source` and the (line, code) pairs it must produce."""

    source: str
    expected: tuple[int, ...] = ()  # lines on which this rule fires; empty = valid


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class Rule:
    # --- metadata every rule sets -------------------------------------------
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # Substrings of which at least one must occur in a file for this rule to be
    # able to fire; files containing none of the enabled rules' triggers are not parsed.
    triggers: ClassVar[tuple[str, ...]]
    fix_availability: ClassVar[FixAvailability] = "none"
    # Set by rules that fire only on tensors inferred to be on the GPU: such a rule
    # cannot fire in a file without GPU evidence, which is then not parsed for it
    # (see engine.Prefilter).
    needs_gpu_evidence: ClassVar[bool] = False
    # First torch release in which the pattern no longer syncs (None: still syncs).
    fixed_in_torch: ClassVar[str | None] = None
    # Which torch versions the sync was measured or read in, for the docs.
    syncs_in: ClassVar[str] = "all releases up to 2.11 (measured on 2.11.0+cu130, H100)"
    examples: ClassVar[tuple[Example, ...]] = ()

    ctx: "FileContext"

    # --- documentation --------------------------------------------------------
    @classmethod
    def documentation(cls) -> str:
        """The rule's markdown docs: the docstring of the module that defines it."""
        module = sys.modules[cls.__module__]
        return inspect.cleandoc(module.__doc__ or cls.summary)

    @classmethod
    def url(cls) -> str:
        return DOCS_URL.format(code=cls.code)

    @classmethod
    def active_for_torch(cls, target: str | None) -> bool:
        if cls.fixed_in_torch is None or target is None:
            return True
        return _parse_version(target) < _parse_version(cls.fixed_in_torch)

    @classmethod
    def handlers(cls) -> tuple[tuple[str, type[cst.CSTNode], str], ...]:
        """("visit" or "leave", node type, method name) for each handler, found once per class."""
        found = cls.__dict__.get("_handlers")
        if found is None:
            found = []
            for attr in dir(cls):
                if attr.startswith(("visit_", "leave_")) and callable(getattr(cls, attr)):
                    kind, _, node_name = attr.partition("_")
                    node_type = getattr(cst, node_name, None)
                    if not (isinstance(node_type, type) and issubclass(node_type, cst.CSTNode)):
                        raise TypeError(f"rule {cls.code}: {attr} names no libcst node type")
                    found.append((kind, node_type, attr))
            found = tuple(found)
            cls._handlers = found  # on this class only: subclasses compute their own
        return found

    # --- reporting --------------------------------------------------------------
    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        fact: "Fact | None" = None,
        evidence: str | None = None,
        fix: FixSpec | None = None,
    ) -> None:
        """Record a finding on `node`.

        `fact` is the device fact that made the rule fire; its provenance becomes
        the finding's evidence ("`x` is on the GPU: assigned from ... at line 5").
        """
        self.ctx.add_finding(self, node, message, fact=fact, evidence=evidence, fix=fix)

    # --- small helpers rules share ------------------------------------------------
    def is_gpu(self, expr: cst.BaseExpression) -> "Fact | None":
        """The expression's fact when the linter should treat it as a GPU tensor.

        In the default mode that means proven GPU; with --strict an unknown value
        that looks like a tensor counts too.
        """
        fact = self.ctx.devices.fact(expr)
        if fact.is_gpu or (self.ctx.settings.strict and fact.is_unknown_tensor):
            return fact
        return None


def call_name(node: cst.Call) -> str | None:
    """`foo` for `x.foo(...)` or `foo(...)`: the last name of the callee."""
    func = node.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def method_receiver(node: cst.Call) -> cst.BaseExpression | None:
    """`x` for `x.foo(...)`; None for a plain function call."""
    return node.func.value if isinstance(node.func, cst.Attribute) else None


def get_arg(node: cst.Call, name: str, position: int | None = None) -> cst.Arg | None:
    """The argument passed as keyword `name` or at `position` (0-based)."""
    positional = 0
    for arg in node.args:
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg
            continue
        if arg.star:
            return None
        if position is not None and positional == position:
            return arg
        positional += 1
    return None


def positional_args(node: cst.Call) -> list[cst.Arg]:
    return [a for a in node.args if a.keyword is None and not a.star]


def is_true_literal(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"
