"""Where rules come from: the built-in pack and the `sync_lint.rules` entry points.

A third-party pack declares, in its own pyproject.toml:

    [project.entry-points."sync_lint.rules"]
    mypack = "mypack.sync_rules"

The entry point may name a Rule subclass, a module (every Rule subclass defined
in it is taken), a package (every module in it, as for the built-in pack), or a
callable returning an iterable of Rule subclasses. The built-in pack is the
package `sync_lint.rules`: adding a rule is adding a module there, no list to edit.
"""

from __future__ import annotations

import inspect
import pkgutil
from functools import lru_cache
from importlib import import_module, metadata
from types import ModuleType
from typing import Iterable

from sync_lint.fingerprint import ENTRY_POINT_GROUP
from sync_lint.rulekit.rule import Rule


class RuleLoadError(Exception):
    pass


def _rules_in_module(module: ModuleType) -> list[type[Rule]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Rule) and obj is not Rule and obj.__module__ == module.__name__
    ]


def _load_target(target: object, origin: str) -> list[type[Rule]]:
    if inspect.isclass(target) and issubclass(target, Rule):
        return [target]
    if isinstance(target, ModuleType):
        return rules_in_package(target) if hasattr(target, "__path__") else _rules_in_module(target)
    if callable(target):
        loaded = list(target())  # type: ignore[operator]
        if all(inspect.isclass(r) and issubclass(r, Rule) for r in loaded):
            return loaded
    raise RuleLoadError(f"{origin}: does not provide sync-lint rules")


def rules_in_package(package: ModuleType) -> list[type[Rule]]:
    """Every Rule subclass defined in the package's modules (modules named `_*` are helpers)."""
    found: list[type[Rule]] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            found.extend(_rules_in_module(import_module(f"{package.__name__}.{info.name}")))
    return found


def builtin_rules() -> list[type[Rule]]:
    import sync_lint.rules

    return rules_in_package(sync_lint.rules)


def plugin_rules() -> list[type[Rule]]:
    found: list[type[Rule]] = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = entry.load()
        except Exception as exc:
            raise RuleLoadError(f"rule pack `{entry.name}` ({entry.value}) failed to load: {exc}") from exc
        found.extend(_load_target(target, f"rule pack `{entry.name}` ({entry.value})"))
    return found


def _index(rules: Iterable[type[Rule]]) -> dict[str, type[Rule]]:
    index: dict[str, type[Rule]] = {}
    for rule in rules:
        for attr in ("code", "name", "summary", "triggers"):
            if not hasattr(rule, attr):
                raise RuleLoadError(f"rule {rule.__module__}.{rule.__qualname__} does not set `{attr}`")
        other = index.get(rule.code)
        if other is not None and other is not rule:
            raise RuleLoadError(
                f"rule code {rule.code} is defined twice: {other.__module__} and {rule.__module__}"
            )
        index[rule.code] = rule
    return dict(sorted(index.items()))


@lru_cache(maxsize=1)
def all_rules() -> dict[str, type[Rule]]:
    """Every known rule by code, sorted by code."""
    return _index([*builtin_rules(), *plugin_rules()])
