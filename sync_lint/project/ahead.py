"""Reading the hot-path pass's cached call edges while a forked child brings the index up to date.

A check of an edited file in a warm project waits for the index update (`background.py`) longer
than it takes to parse the file, and the hot-path pass after the check then reads the cached edges
of every function the roots reach: 4,600 functions for vLLM, about 0.05 s. Read during that wait,
they cost the check nothing. The reading stops when the update is done, so that it never holds
the check up: the pass reads whatever is left itself.

Edges read before the update are only used where the cache has not changed since in any way
but by this run's own update, less the results that update dropped. Every change that drops a
result bumps the cache's generation (`ProjectStore.generation`), and an update lists the results
it dropped (`ProjectStore.update`, kept as `Project.last_update`). Anything else (another run's
update in between, a change of settings, an update that dropped too much to list) throws away
what was read: the pass then reads the cache as it would have.

Nothing here imports libcst.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from sync_lint.project.hot import edge_key, roots_key

if TYPE_CHECKING:
    from sync_lint.project.build import Project

# Functions whose edges are read at once: about 10 ms of reading between two looks at `enough`.
_CHUNK = 500
# What `read_edges_ahead` read, by database: (the cache's generation then, results by name).
_READ: dict[Path, tuple[int, dict[str, object]]] = {}


def read_edges_ahead(database: Path, configured: Iterable[str], defaults: Iterable[str],
                     enough: Callable[[], bool] = lambda: False) -> None:
    """Read, in one snapshot of the cache, the roots these settings give and the cached edges of
    every function they reach (through every edge: the pass itself may follow fewer), nearest
    first, until `enough()` (the update is done: the pass reads the rest itself)."""
    import sqlite3

    from sync_lint.project.store import ProjectStore

    if enough() or not database.is_file():  # a check that loaded the parser first finds the update done
        return
    try:
        store = ProjectStore(database)
    except sqlite3.Error:  # being made or rebuilt by the update: nothing to read ahead
        return
    try:
        found: dict[str, object] = {}
        with store.snapshot():
            generation = store.generation()
            key = edge_key(roots_key(configured, defaults))
            roots = store.result(key, "edges")
            if not isinstance(roots, tuple):
                return
            found[key] = roots
            seen = {root.function for root in roots[0]}
            queue = list(seen)
            while queue and not enough():
                read = store.results({edge_key(function): "edges" for function in queue[:_CHUNK]})
                found.update(read)
                del queue[:_CHUNK]
                for value in read.values():
                    for edge in value[0] if isinstance(value, tuple) else ():
                        callee = edge[0]  # stored as a plain tuple (`hot._encoded`)
                        if callee not in seen:
                            seen.add(callee)
                            queue.append(callee)
    except sqlite3.Error:  # a cache the update is rebuilding: the pass reads what it needs itself
        return
    finally:
        store.close()
    _READ[database] = (generation, found)


def take_edges_read_ahead(project: "Project") -> dict[str, object]:
    """What was read ahead for the project's cache and still holds after its update (once: it is
    forgotten here)."""
    read = _READ.pop(project.database, None)
    if read is None:
        return {}
    generation, found = read
    if project.generation == generation:  # nothing dropped anything since
        return found
    own = project.last_update
    if own is not None and own[0] == generation and project.generation == generation + 1:
        return {name: value for name, value in found.items() if name not in own[1]}
    return {}
