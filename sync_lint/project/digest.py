"""Digests of summary values by their content, the same in every process."""

from __future__ import annotations

import dataclasses
import hashlib

LEAVES = (str, int, float, bool, bytes, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def field_names(value: object) -> tuple[str, ...]:
    """The names of a dataclass instance's fields, in their order."""
    names = _FIELDS.get(type(value))
    if names is None:
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))  # type: ignore[arg-type]
    return names


class ContentDigest:
    """Digests of summary values by their content, the same in every process. A value's text
    (`repr`) would do, but a summary's values share parts (one `("join", ...)` of a long chain of
    assignments held by every later value), and the text of a value spells each shared part once
    per use: one 2,281-line TransformerEngine file printed for minutes. Shared parts are digested
    once: by `id`, with the object kept, so that its id is not reused while this lives."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[object, bytes]] = {}

    def __call__(self, value: object) -> bytes:
        if type(value) in LEAVES:
            return repr(value).encode()
        found = self._memo.get(id(value))
        if found is not None:
            return found[1]
        digest = hashlib.blake2b(type(value).__name__.encode(), digest_size=16)

        def add(part: object) -> None:
            data = self(part)
            digest.update(b"%d:" % len(data))
            digest.update(data)

        if isinstance(value, (tuple, list)):
            for item in value:
                add(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                add(key)
                add(item)
        elif isinstance(value, (set, frozenset)):
            for data in sorted(map(self, value)):
                digest.update(b"%d:" % len(data))
                digest.update(data)
        elif dataclasses.is_dataclass(value):
            for name in field_names(value):
                add(getattr(value, name))
        else:
            digest.update(repr(value).encode())
        out = digest.digest()
        self._memo[id(value)] = (value, out)
        return out

    def text(self, value: object) -> str:
        return self(value).hex()
