"""Every verification case: each rule with a fix carries its own (`Rule.verification_cases`)."""

from __future__ import annotations

from sync_lint.runtime.verify import Case


def all_cases() -> list[Case]:
    from sync_lint.registry import all_rules

    return [case for rule in all_rules().values() for case in rule.verification_cases()]
