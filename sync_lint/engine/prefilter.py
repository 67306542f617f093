"""Which files are worth parsing: a decision from the text alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from sync_lint.analysis.conventions import GPU_NAMES_DEFAULT
from sync_lint.analysis.knowledge import ACCELERATOR_NAMES
from sync_lint.config import within_project
from sync_lint.suppression import file_directives

if TYPE_CHECKING:
    from sync_lint.catalogue import RuleInfo
    from sync_lint.config import Settings
    from sync_lint.rulekit.rule import Rule

# Tokens from which device inference can derive a GPU fact: `device=`, `.cuda()`,
# `.to(...)`, accelerator strings, the default gpu-name-patterns, and the gradient-norm
# functions (their norm is on the accelerator by convention, `facts.gradient_norm`). A file
# with none of them cannot hold a tensor the linter would call a GPU tensor.
GPU_EVIDENCE_TOKENS = ("device", ".to(", "_gpu", "_dev", "clip_grad_norm", "get_total_norm", *ACCELERATOR_NAMES)
# In --strict mode a tensor of unknown device is enough.
STRICT_EVIDENCE_TOKENS = ("Tensor", "torch")


@dataclass(frozen=True)
class Prefilter:
    """Decides from a file's text alone whether any enabled rule could fire in it.

    A rule fires only where one of its trigger tokens occurs; a rule that needs a
    GPU tensor also needs some GPU evidence in the file. Files that pass neither
    test are never parsed.
    """

    plain: tuple[str, ...]  # triggers of rules that need no GPU evidence
    gated: tuple[str, ...]  # triggers of rules that do
    evidence: tuple[str, ...] | None  # None: the evidence test is off

    @classmethod
    def for_rules(cls, rules: Sequence["type[Rule] | RuleInfo"], settings: "Settings",
                  project: bool = False) -> "Prefilter":
        """`project`: the file is checked with its project's index, whose facts need no token in the file."""
        plain = sorted({t for r in rules if not r.needs_gpu_evidence for t in r.triggers_for(settings)})
        gated = sorted({t for r in rules if r.needs_gpu_evidence for t in r.triggers_for(settings)})
        evidence: tuple[str, ...] | None = (*GPU_EVIDENCE_TOKENS, *settings.gpu_attributes)
        if settings.strict:
            evidence = (*evidence, *STRICT_EVIDENCE_TOKENS)
        if tuple(settings.gpu_name_patterns) != GPU_NAMES_DEFAULT or project:
            evidence = None  # no token is known to be necessary
        return cls(tuple(plain), tuple(gated), evidence)

    def wants(self, text: str) -> bool:
        if any(token in text for token in self.plain):
            return True
        if not any(token in text for token in self.gated):
            return False
        return self.evidence is None or any(token in text for token in self.evidence)


def rule_triggers(rule: "type[Rule] | RuleInfo", settings: "Settings") -> tuple[str, ...]:
    """A rule's trigger tokens under these settings: its own, and the configured calls' names (`name(`)
    for a rule that fires on `sync-prone-calls`."""
    if not rule.triggered_by_configured_calls:
        return rule.triggers
    return (*rule.triggers, *(f"{name.rsplit('.', 1)[-1]}(" for name, _ in settings.sync_prone_calls))


def rules_to_run(source: str, path: str, rules: Sequence["type[Rule] | RuleInfo"], settings: "Settings", *,
                 ignored_codes: frozenset[str] = frozenset(), prefilter: Prefilter | None = None,
                 in_project: bool = False, root: str | None = None) -> list:
    """The rules of `rules` (classes, or the catalogue's descriptions of them) that could report
    something in this file, decided from its text alone: none when the file skips itself
    (`# sync-lint: skip-file`), every rule is ignored there, the file is another platform's code, or
    the text holds no trigger of the rules left. `lint_source` parses only files with some; a check
    of one edited file asks first, so that a file with none never imports the parser. `in_project`:
    the file is checked with its project's index; `root`: the project's root (else the configuration's
    folder), which `cpu-modules` and `other-platform-modules` are relative to."""
    directives = file_directives(source)
    if directives.skip:
        return []
    active = [r for r in rules if r.code not in ignored_codes and r.code not in directives.ignored_codes
              and not r.project_rule]
    if not active:
        return []
    if not settings.strict and settings.off_cuda_module(within_project(path, root or str(settings.root))):
        return []  # CPU-platform code, or another accelerator's backend
    if prefilter is None or len(active) != sum(1 for r in rules if not r.project_rule):
        prefilter = Prefilter.for_rules(active, settings, project=in_project)
    return active if prefilter.wants(source) else []
