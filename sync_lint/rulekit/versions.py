"""Torch versions for rules: `TorchGate` and the version helpers (they live in `sync_lint.versions`,
which imports no parser, so that the rule catalogue can use them too)."""

from sync_lint.versions import TorchGate, before_release, parse_version

__all__ = ["TorchGate", "before_release", "parse_version"]
