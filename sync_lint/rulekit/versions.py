"""Torch versions: parsing, and whether a target release still has a sync.

A `TorchGate` records where PyTorch removed a sync and how far the evidence for
that reaches. It never switches a check off on a release its evidence does not
cover: a removal claimed for a release newer than the newest one checked is not
trusted (the check stays on), and a target newer than the newest release checked
gets a note saying which way the gate went and on what evidence.
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_version(text: str) -> tuple[int, ...]:
    """`2.13.0+cu130` -> (2, 13, 0); stops at the first part without digits."""
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _key(text: str) -> tuple[int, ...]:
    """A comparable version: `2.15` and `2.15.0` are the same release."""
    parts = parse_version(text)
    return parts + (0,) * (3 - len(parts))


def before_release(target: str | None, release: str | None) -> bool:
    """True when `target` predates `release` (no release, or no target: the sync is assumed)."""
    if release is None or target is None:
        return True
    return _key(target) < _key(release)


@dataclass(frozen=True)
class TorchGate:
    """The first torch release without a sync, and the newest release the evidence covers.

    `fixed_in`: the first release whose code no longer syncs (None: none of those checked).
    `checked_through`: the newest release whose code was read for this (None: the gate's
    author vouches for `fixed_in` without saying how far they looked).
    `part`: what part of the rule the gate covers ("" for the whole rule).
    """

    fixed_in: str | None
    checked_through: str | None = None
    part: str = ""

    @property
    def trusted_fix(self) -> str | None:
        """`fixed_in` when the evidence reaches it; a release nobody checked switches nothing off."""
        if self.fixed_in is None:
            return None
        if self.checked_through is not None and _key(self.fixed_in) > _key(self.checked_through):
            return None
        return self.fixed_in

    def syncs(self, target: str | None) -> bool:
        """True when code for torch `target` still has the sync, as far as the evidence says."""
        return before_release(target, self.trusted_fix)

    def beyond_evidence(self, target: str | None) -> bool:
        """`target` is newer than every release the evidence covers."""
        return (target is not None and self.checked_through is not None
                and _key(target) > _key(self.checked_through))

    def note(self, code: str, target: str | None) -> str | None:
        """One line for stderr when `target` is beyond the evidence: which way the gate went, and why."""
        if not self.beyond_evidence(target):
            return None
        subject = f"{code} ({self.part})" if self.part else code
        if not self.syncs(target):
            return (f"{subject} is off for torch {target}: PyTorch {self.fixed_in} removed the sync, and releases "
                    f"after {self.checked_through} were not checked; use --target-torch-version to lint for an "
                    "older torch")
        if self.fixed_in is None:
            why = f"the newest release checked, {self.checked_through}, still syncs"
        else:
            why = f"its removal in {self.fixed_in} is claimed beyond the releases checked (up to {self.checked_through})"
        return f"{subject} stays on for torch {target}: {why}"
