"""What an answer read: so a cached answer is dropped exactly when something it read changes.

Every question the inference answers (a key: a field, a parameter, a return) and
every per-file result reads parts of the index. They are recorded as they happen,
in frames (one per answer being computed):

- a **label** for each structural read: a part of a module's summary (`p:<module>:...`,
  one function, class, callee name, ...; `parts.py`), what a name resolves to in a module
  (`s:<module>:<name>`), whether a module exists (`m:<module>`, `s:<module>`),
  `n:<table>:<name>` (which modules mention a
  name: stores to an attribute, calls of a name, dict entries under a key),
  `b:<class name>` (which classes derive from a class), `c:<attribute>` (the
  repository's convention counts for an attribute);
- a **key** (a tuple) for each other answer it used.

The cache stores each answer with its frame: labels as read dependencies, keys as
edges to other answers. When files change, the labels they touch are known (the parts
of their summaries that changed, and the names their summaries add or drop); every answer
that read one, and every answer that used such an answer, transitively, is dropped.

Memoised helpers that are not keys (name resolution, the class hierarchy, the
callers of a function) become **nodes**: a node's reads are stored once, as the
reads of a node id, and every frame that used the helper (computed or found) reads
the node. Replaying a helper's reads into each frame instead stored a million rows
for one vLLM run: a helper that scans the class hierarchy reads thousands of labels,
and hundreds of answers use it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")
Dep = Hashable  # a label (str) or a key (tuple)
_MISSING = object()


@functools.lru_cache(maxsize=1 << 18)
def dep_id(dep: Dep) -> int:
    """A stable 64-bit id for a label or key (the cache's column type)."""
    digest = hashlib.blake2b(repr(dep).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Reads:
    """The frames of the answers being computed, innermost last, and the nodes made since the
    last `nodes()`."""

    __slots__ = ("_frames", "enabled", "_nodes")

    def __init__(self, enabled: bool = True) -> None:
        self._frames: list[set[Dep]] = []
        self._nodes: list[tuple[Dep, frozenset[Dep]]] = []
        self.enabled = enabled

    def add(self, dep: Dep) -> None:
        if self._frames:
            self._frames[-1].add(dep)

    def replay(self, deps: frozenset[Dep]) -> None:
        if self._frames and deps:
            self._frames[-1].update(deps)

    def begin(self) -> None:
        self._frames.append(set())

    def frame(self) -> set[Dep] | None:
        """The frame reads go to now (None outside any)."""
        return self._frames[-1] if self._frames else None

    def end(self) -> frozenset[Dep]:
        return frozenset(self._frames.pop())

    def node(self, kind: str, key: Hashable, deps: frozenset[Dep]) -> Dep | None:
        """The dependency standing for a memoised computation of `kind` at `key` that read `deps`:
        None when it read nothing, the read itself when it read one thing, else a node whose reads
        are kept for the cache (`nodes()`)."""
        if not deps:
            return None
        if len(deps) == 1:
            return next(iter(deps))
        node = ("node", kind, key)
        self._nodes.append((node, deps))
        return node

    def nodes(self) -> list[tuple[Dep, frozenset[Dep]]]:
        """The nodes made since the last call, each with what it read."""
        out, self._nodes = self._nodes, []
        return out

    def memo(self, cache: dict, kind: str, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per key; the frames that use it, computed or found, read its node."""
        hit = cache.get(key, _MISSING)
        if hit is not _MISSING:
            value, node = hit  # type: ignore[misc]
            if node is not None:
                self.add(node)
            return value  # type: ignore[no-any-return]
        if not self.enabled:
            value = compute()
            cache[key] = (value, None)
            return value
        self.begin()
        try:
            value = compute()
        finally:
            deps = self.end()
        node = self.node(kind, key, deps)
        cache[key] = (value, node)
        if node is not None:
            self.add(node)
        return value
