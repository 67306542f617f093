"""What an answer read: so a cached answer is dropped exactly when something it read changes.

Every question the inference answers (a key: a field, a parameter, a return) and
every per-file result reads parts of the index. They are recorded as they happen,
in frames (one per answer being computed):

- a **label** for each structural read: `m:<module>` (a module's summary, or the
  fact that no such module exists), `n:<table>:<name>` (which modules mention a
  name: stores to an attribute, calls of a name, dict entries under a key),
  `b:<class name>` (which classes derive from a class), `c:<attribute>` (the
  repository's convention counts for an attribute);
- a **key** (a tuple) for each other answer it used.

The cache stores each answer with its frame: labels as read dependencies, keys as
edges to other answers. When files change, the labels they touch are known (their
module, and the names their summaries add or drop); every answer that read one, and
every answer that used such an answer, transitively, is dropped.

Memoised helpers that are not keys (name resolution, the class hierarchy, the
callers of a function) keep the dependencies they recorded and replay them on a
hit, so a frame is the same whether a helper was computed or found.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")
Dep = Hashable  # a label (str) or a key (tuple)
_MISSING = object()


def dep_id(dep: Dep) -> int:
    """A stable 64-bit id for a label or key (the cache's column type)."""
    digest = hashlib.blake2b(repr(dep).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Reads:
    """The frames of the answers being computed, innermost last."""

    __slots__ = ("_frames", "enabled")

    def __init__(self, enabled: bool = True) -> None:
        self._frames: list[set[Dep]] = []
        self.enabled = enabled

    def add(self, dep: Dep) -> None:
        if self._frames:
            self._frames[-1].add(dep)

    def replay(self, deps: frozenset[Dep]) -> None:
        if self._frames and deps:
            self._frames[-1].update(deps)

    def begin(self) -> None:
        self._frames.append(set())

    def end(self) -> frozenset[Dep]:
        return frozenset(self._frames.pop())

    def memo(self, cache: dict, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per key; a hit replays what the computation read."""
        hit = cache.get(key, _MISSING)
        if hit is not _MISSING:
            value, deps = hit  # type: ignore[misc]
            self.replay(deps)
            return value  # type: ignore[no-any-return]
        if not self.enabled:
            value = compute()
            cache[key] = (value, frozenset())
            return value
        self.begin()
        try:
            value = compute()
        finally:
            deps = self.end()
        cache[key] = (value, deps)
        self.replay(deps)
        return value
