"""Rule selection with ruff's semantics: codes, prefixes (`SL1`) and `ALL`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import pathspec

    from sync_lint.config import Settings


class SelectionError(Exception):
    pass


def expand_selectors(selectors: Iterable[str], known: Iterable[str]) -> set[str]:
    """The codes matched by the selectors; an unknown selector is an error."""
    codes = sorted(known)
    matched: set[str] = set()
    for raw in selectors:
        selector = raw.strip().upper()
        if not selector:
            continue
        if selector == "ALL":
            matched.update(codes)
            continue
        hits = [c for c in codes if c.startswith(selector)]
        if not hits:
            raise SelectionError(f"Unknown rule selector `{raw}`")
        matched.update(hits)
    return matched


def enabled_codes(
    known: Sequence[str],
    select: Sequence[str],
    extend_select: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> list[str]:
    """`select` (+ `extend-select`) minus `ignore`; a more specific selector wins, as in ruff."""
    chosen: dict[str, int] = {}  # code -> specificity of the selector that chose it
    for selector in [*select, *extend_select]:
        for code in expand_selectors([selector], known):
            chosen[code] = max(chosen.get(code, -1), _specificity(selector))
    for selector in ignore:
        for code in expand_selectors([selector], known):
            if code in chosen and _specificity(selector) >= chosen[code]:
                del chosen[code]
    return sorted(chosen)


def _specificity(selector: str) -> int:
    return 0 if selector.strip().upper() == "ALL" else len(selector.strip())


class PerFileIgnores:
    """`per-file-ignores`: the codes ignored in each file, by gitignore-style glob."""

    def __init__(self, settings: "Settings", known_codes: Iterable[str]) -> None:
        self.root = settings.root
        self._specs: list[tuple[pathspec.GitIgnoreSpec, frozenset[str]]] = []
        if settings.per_file_ignores:  # importing pathspec costs a warm one-file check a tenth
            import pathspec

            self._specs = [
                (pathspec.GitIgnoreSpec.from_lines([glob]), frozenset(expand_selectors(codes, known_codes)))
                for glob, codes in settings.per_file_ignores
            ]

    def codes_for(self, path: str) -> frozenset[str]:
        if not self._specs:
            return frozenset()
        try:
            relative = Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            relative = Path(path).as_posix()
        ignored: set[str] = set()
        for spec, codes in self._specs:
            if spec.match_file(relative):
                ignored |= codes
        return frozenset(ignored)
