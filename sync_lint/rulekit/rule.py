"""The rule interface: what a rule declares, and how it reports.

A rule is a class with metadata (code, name, summary, trigger tokens, the torch
release that removed its sync) and `visit_<Node>` / `leave_<Node>` methods named
after libcst node types. The engine walks each file once and calls every enabled
rule's handlers for each node; the analyses (imports, syntax marks, device facts,
host mirrors) are up to date on `self.ctx` when a handler runs, with the facts
that hold at that point of the program.

Rules never walk the tree themselves and never write into the context: they look
at the node they were handed, ask the context, and `report`.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import libcst as cst

from sync_lint.diagnostics import DOCS_URL, Edit, Fix
from sync_lint.rulekit.versions import TorchGate

if TYPE_CHECKING:
    from sync_lint.analysis.facts import Fact
    from sync_lint.engine.context import FileContext, Findings

FixAvailability = Literal["none", "sometimes", "always"]


@dataclass(frozen=True)
class Example:
    """An inline example: `source` and the lines on which this rule fires (empty: valid code)."""

    source: str
    expected: tuple[int, ...] = ()


class Rule:
    # --- metadata every rule sets -------------------------------------------------------
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # Substrings of which at least one must occur in a file for this rule to be able
    # to fire; files containing none of the enabled rules' triggers are not parsed.
    triggers: ClassVar[tuple[str, ...]]
    # Set by a rule that also fires on the calls named in `sync-prone-calls`: their names are triggers too.
    triggered_by_configured_calls: ClassVar[bool] = False
    fix_availability: ClassVar[FixAvailability] = "none"
    # Set by rules that fire only on tensors inferred to be on the GPU: such a rule
    # cannot fire in a file without GPU evidence, which is then not parsed for it.
    needs_gpu_evidence: ClassVar[bool] = False
    # First torch release in which the pattern no longer syncs (None: still syncs).
    fixed_in_torch: ClassVar[str | None] = None
    # Newest torch release whose code was read to establish `fixed_in_torch` (None: not
    # stated). A removal claimed beyond it switches nothing off; see `TorchGate`.
    torch_checked_through: ClassVar[str | None] = None
    # Gates on a part of what the rule reports (SL302's host scalar values), which the
    # rule checks itself; listed here so a run can say when a target is beyond their evidence.
    partial_torch_gates: ClassVar[tuple[TorchGate, ...]] = ()
    # Which torch versions the sync was measured or read in, for the docs.
    syncs_in: ClassVar[str] = "all releases up to 2.11 (measured on 2.11.0+cu130, H100)"
    examples: ClassVar[tuple[Example, ...]] = ()
    # A rule whose fix is the same rewrite as another rule's names that rule: its
    # verification cases prove both.
    fix_verified_by: ClassVar[str | None] = None
    # A rule reported after the run from the project's call graph (SL601), not during the walk
    # of one file: the engine does not run it.
    project_rule: ClassVar[bool] = False

    # Set by the engine before the walk.
    ctx: "FileContext"
    findings: "Findings"

    # --- documentation ------------------------------------------------------------------
    @classmethod
    def documentation(cls) -> str:
        """The rule's markdown docs: the docstring of the module that defines it."""
        module = sys.modules[cls.__module__]
        return inspect.cleandoc(module.__doc__ or cls.summary)

    @classmethod
    def url(cls) -> str:
        return DOCS_URL.format(code=cls.code)

    @classmethod
    def torch_gate(cls) -> TorchGate:
        """The gate on the whole rule."""
        return TorchGate(cls.fixed_in_torch, cls.torch_checked_through)

    @classmethod
    def active_for_torch(cls, target: str | None) -> bool:
        return cls.torch_gate().syncs(target)

    @classmethod
    def torch_notes(cls, target: str | None) -> list[str]:
        """What to tell the user once when `target` is newer than the evidence of this rule's gates."""
        gates = (cls.torch_gate(), *cls.partial_torch_gates)
        return [note for gate in gates if (note := gate.note(cls.code, target)) is not None]

    @classmethod
    def triggers_for(cls, settings: Any) -> tuple[str, ...]:
        """The trigger tokens under these settings (a rule matching configured names adds them)."""
        from sync_lint.engine.prefilter import rule_triggers

        return rule_triggers(cls, settings)

    @classmethod
    def verification_cases(cls) -> list[Any]:
        """`runtime.verify.Case`s that prove this rule's fix on a GPU; empty for a rule without one."""
        return []

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

    # --- reporting ----------------------------------------------------------------------
    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        fact: "Fact | None" = None,
        evidence: str | None = None,
        fix: Fix | None = None,
        also: "Fact | None" = None,
    ) -> None:
        """Record a finding on `node`.

        `fact` is the device fact that made the rule fire; its provenance becomes
        the finding's evidence ("`x` is on the GPU: assigned from ... at line 5").
        `also`: a second fact the finding rests on (the GPU end of a host-to-device copy whose
        `fact` is the host source); its provenance follows.
        """
        self.findings.add(self, node, message, fact=fact, evidence=evidence, fix=fix, also=also)

    def replace(self, node: cst.CSTNode, new: str | cst.CSTNode) -> Edit:
        """The edit that swaps `node` for `new` (source text, or a node libcst renders)."""
        from sync_lint.rulekit.edits import replace

        return replace(self.ctx, node, new)

    # --- what rules ask most often ------------------------------------------------------
    def gpu_fact(self, expr: cst.BaseExpression) -> "Fact | None":
        """The expression's fact when the rule should treat it as a GPU tensor, else None.

        In the default mode that means proven GPU; with --strict an unknown value
        that looks like a tensor counts too.
        """
        fact = self.ctx.devices.fact(expr)
        if fact.is_gpu or (self.ctx.settings.strict and fact.is_unknown_tensor):
            return fact
        return None
