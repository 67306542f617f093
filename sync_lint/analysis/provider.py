"""The contract between the engine's walk and an analysis."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

Hook = Callable[[Any, Any], None]


class Provider:
    """An analysis the walk keeps up to date.

    `ENTER` and `LEAVE` map node types to the method to call when the walk enters or
    leaves such a node; `AFTER_FIELD` maps (node type, field name) to the method to call
    once the walk has finished that field (an `if`'s test, a loop's iterable). Enter
    hooks run before the rules' `visit_` handlers, leave hooks after their `leave_`
    handlers, so a rule always sees the state at the node it was handed.
    """

    ENTER: ClassVar[dict[type, Hook]] = {}
    LEAVE: ClassVar[dict[type, Hook]] = {}
    AFTER_FIELD: ClassVar[dict[tuple[type, str], Hook]] = {}

    def hooks(self) -> "BoundHooks":
        """The hook tables bound to the object that keeps the state (usually `self`)."""
        return bind_hooks(self, self.ENTER, self.LEAVE, self.AFTER_FIELD)


BoundHooks = tuple[
    dict[type, Callable[[Any], None]],
    dict[type, Callable[[Any], None]],
    dict[tuple[type, str], Callable[[Any], None]],
]


def bind_hooks(owner: object, enter: dict, leave: dict, after_field: dict) -> BoundHooks:
    return (
        {t: f.__get__(owner) for t, f in enter.items()},
        {t: f.__get__(owner) for t, f in leave.items()},
        {k: f.__get__(owner) for k, f in after_field.items()},
    )
