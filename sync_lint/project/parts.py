"""A module's summary in parts: an answer depends on the parts it read, not on the whole module.

An answer that read one function of a module stays when another function of it changes or is
added; before, every answer that read anything of a module was dropped with any change to it
(appending one small function to vLLM's `gpu_input_batch.py` dropped 2,833 answers, and the next
check of the file took 8.6 s).

The labels (`deps.py`) of the parts, recorded as they are read and compared when a file changes:

- `p:<module>:<part>`: a part read whole (a list part, or a keyed one iterated or measured);
- `p:<module>:<part>:<key>`: one entry of a keyed part (`functions`, `classes`, `imports`, ...),
  present or absent;
- `p:<module>:calls:<callee>`, `p:<module>:stores:<attr>`, `p:<module>:entries:<key>`: the call
  sites, attribute stores and dict entries filed under a name; `p:<module>:calls-in:<function>`:
  the call sites made in one function (`p:<module>:calls-in` for those at module level);
- `s:<module>:<name>`: what resolving `name` through the module finds (a class, a function, an
  import, a global of its own), and `s:<module>:*` its star imports. `s:<module>` alone says that
  the module exists, and `m:<module>` that it does not.

Every part a frame reads is recorded, however many. A bound that recorded "any part of the module"
for a frame that read more than 32 parts of it made a call inserted in one method of vLLM's
`gpu_model_runner.py` drop most of what the file's own check had read: checking the file again took
34.3 s, and 3.2 s without the bound (2 cores). Four interleaved pairs of cold vLLM runs had medians
of 214 s without the bound and 203 s with it, a difference inside their spread (198-249 s).

`ReadSummary` is the summary the index hands out: it records the label of each part read into the
frame of the answer being computed. `part_digests` gives every label's value for a summary, so that
the labels a change touches are those whose values differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator

from sync_lint.project.deps import Reads
from sync_lint.project.digest import LEAVES, ContentDigest, field_names
from sync_lint.project.summary import CallSite, ModuleSummary

# Parts read an entry at a time (dicts), and parts read whole.
KEYED_PARTS = ("imports", "globals", "global_lines", "classes", "functions", "local_imports", "custom_ops",
               "function_mentions", "conventions")
WHOLE_PARTS = ("star_imports", "loaded", "calls", "stores", "entries", "error", "generated_from", "compiled",
               "captured", "mentions", "value_mentions")
# `calls`, `stores` and `entries` are also read a name at a time, through the index
# (`ProjectIndex._mentions`, `calls_named`, `calls_in`).


def key_text(key: object) -> str:
    """A keyed part's key in a label: `local_imports` is keyed by (function, local name)."""
    return "|".join(map(str, key)) if isinstance(key, tuple) else str(key)


def part_label(module: str, part: str, key: object = None) -> str:
    return f"p:{module}:{part}" if key is None else f"p:{module}:{part}:{key_text(key)}"


def symbol_label(module: str, name: str) -> str:
    return f"s:{module}:{name}"


class KeyedPart:
    """A dict part of a summary whose reads are recorded: a key looked up (found or not) reads the
    key's label, anything that sees every key reads the whole part's."""

    __slots__ = ("_entries", "_reads", "_prefix", "_whole")

    def __init__(self, entries: dict, reads: Reads, module: str, part: str) -> None:
        self._entries = entries
        self._reads = reads
        self._prefix = f"p:{module}:{part}:"
        self._whole = f"p:{module}:{part}"

    def _read(self, key: object) -> None:
        self._reads.add(self._prefix + (key if isinstance(key, str) else key_text(key)))

    def __getitem__(self, key: Any) -> Any:
        self._read(key)
        return self._entries[key]

    def get(self, key: Any, default: Any = None) -> Any:
        self._read(key)
        return self._entries.get(key, default)

    def __contains__(self, key: object) -> bool:
        self._read(key)
        return key in self._entries

    def _all(self) -> dict:
        self._reads.add(self._whole)
        return self._entries

    def __iter__(self) -> Iterator:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __bool__(self) -> bool:
        return bool(self._all())

    def keys(self) -> Iterable:
        return self._all().keys()

    def values(self) -> Iterable:
        return self._all().values()

    def items(self) -> Iterable:
        return self._all().items()

    def __repr__(self) -> str:
        return f"KeyedPart({self._whole})"


def _whole(part: str) -> property:
    def read(self: "ReadSummary") -> Any:
        self._reads.add(self._labels[part])
        return getattr(self.summary, part)
    return property(read, doc=f"`ModuleSummary.{part}`, read whole")


class ReadSummary:
    """A module's summary as the index hands it to answers: each part read is recorded (see above).
    `path`, `module` and `is_package` name the file and are not parts: a file that changes them is
    another file."""

    __slots__ = ("summary", "path", "module", "is_package", "_reads", "_labels", *KEYED_PARTS)

    def __init__(self, summary: ModuleSummary, reads: Reads) -> None:
        self.summary = summary
        self.path = summary.path
        self.module = summary.module
        self.is_package = summary.is_package
        self._reads = reads
        self._labels = {part: part_label(summary.module, part) for part in WHOLE_PARTS}
        for part in KEYED_PARTS:
            setattr(self, part, KeyedPart(getattr(summary, part) or {}, reads, summary.module, part))

    for _part in WHOLE_PARTS:
        locals()[_part] = _whole(_part)
    del _part

    def qualified(self, local: str) -> str:
        return self.summary.qualified(local)

    def __repr__(self) -> str:
        return f"ReadSummary({self.module})"


class LineMark(int):
    """A line number in a summary marked as one (`map_lines(summary, LineMark)`), for `PlacedDigest`."""

    __slots__ = ()


class PlacedDigest(ContentDigest):
    """A value's digest with its line numbers left out, and its line numbers in a fixed order: two
    values with the same digest differ at most in where they are, and their lines pair up. The
    value must have its lines marked (`LineMark`)."""

    def __call__(self, value: object) -> bytes:
        return b"L" if type(value) is LineMark else super().__call__(value)

    def text(self, value: object) -> tuple[str, tuple[int, ...]]:  # type: ignore[override]
        lines: list[int] = []
        self._lines(value, lines, set())
        return self(value).hex(), tuple(lines)

    def _lines(self, item: object, lines: list[int], seen: set[int]) -> None:
        # A method, not a closure calling itself: that would be a reference cycle holding the values.
        if type(item) is LineMark:
            lines.append(int(item))  # type: ignore[call-overload]
            return
        if type(item) in LEAVES or id(item) in seen:
            return
        seen.add(id(item))  # each shared part once, as the digest reads it
        if isinstance(item, (tuple, list)):
            for part in item:
                self._lines(part, lines, seen)
        elif isinstance(item, dict):
            for key, part in item.items():
                self._lines(key, lines, seen)
                self._lines(part, lines, seen)
        elif isinstance(item, (set, frozenset)):
            for part in sorted(item, key=self):
                self._lines(part, lines, seen)
        elif dataclasses.is_dataclass(item):
            for name in field_names(item):
                self._lines(getattr(item, name), lines, seen)


def calls_by_function(calls: Iterable[CallSite]) -> dict[str | None, list[CallSite]]:
    grouped: dict[str | None, list[CallSite]] = {}
    for call in calls:
        grouped.setdefault(call.function, []).append(call)
    return grouped


def part_digests(header: ModuleSummary, call_sites: Callable[[], list[tuple[str, list]]],
                 digest: ContentDigest) -> dict[str, Any]:
    """Every label of the module's parts (above) with a digest of its value (`digest.text`): the
    labels a change of the module touches are those whose digests differ. `header`: the summary
    less its call sites; `call_sites`: its call sites by callee name, in name order."""
    module = header.module
    out: dict[str, Any] = {}
    for part in KEYED_PARTS:
        entries = getattr(header, part) or {}
        for key, value in entries.items():
            out[part_label(module, part, key)] = digest.text(value)
        out[part_label(module, part)] = digest.text(entries)
    for part in WHOLE_PARTS:
        if part != "calls":
            out[part_label(module, part)] = digest.text(getattr(header, part))
    for part, attr in (("stores", "attr"), ("entries", "key")):
        grouped: dict[str, list] = {}
        for item in getattr(header, part):
            grouped.setdefault(getattr(item, attr), []).append(item)
        for name, items in grouped.items():
            out[part_label(module, part, name)] = digest.text(items)
    every: dict[tuple[int, bytes], CallSite] = {}  # a call filed under several names is unpickled once per name
    for name, calls in call_sites():
        out[part_label(module, "calls", name)] = digest.text(calls)
        for call in calls:
            every.setdefault((int(call.line), digest(call)), call)
    ordered = [call for _key, call in sorted(every.items(), key=lambda item: item[0])]
    out[part_label(module, "calls")] = digest.text(ordered)
    for function, made in calls_by_function(ordered).items():
        out[part_label(module, "calls-in", function)] = digest.text(made)
    names = set(header.classes) | set(header.functions) | set(header.imports) | set(header.globals)
    for name in names:
        out[symbol_label(module, name)] = digest.text((name in header.classes, name in header.functions,
                                                       header.imports.get(name), header.globals.get(name)))
    out[symbol_label(module, "*")] = digest.text(header.star_imports)
    return out
