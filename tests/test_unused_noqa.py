"""SL900's search for unused `noqa` codes (`sync_lint/engine/unused_noqa.py`), called directly."""

from __future__ import annotations

from sync_lint.engine.unused_noqa import unused_noqa


def reported(source: str, checked: set[str], used: set[tuple[int, str]] = frozenset()) -> list[tuple[int, str]]:
    found = unused_noqa(source, "m.py", checked, set(used), source.splitlines())
    return [(d.start.row, d.message) for d in found]


def test_a_comment_after_a_string_that_looks_like_one_is_read() -> None:
    source = 'x = "# noqa: E501"  # noqa: SL101\n'
    assert reported(source, {"SL101"}) == [(1, "unused `noqa` directive: `SL101` reported nothing on this line")]


def test_a_directive_inside_a_string_is_no_comment() -> None:
    assert reported('x = "# noqa: SL101"\n', {"SL101"}) == []
    assert reported('x = """\n# noqa: SL101\n"""\n', {"SL101"}) == []


def test_codes_of_other_tools_and_used_codes_are_left_alone() -> None:
    assert reported("w = 1  # noqa: E501\n", {"SL101"}) == []
    assert reported("w = 1  # NOQA: sl101\n", {"SL101"}, {(1, "SL101")}) == []
    assert reported("w = 1\nv = 2  # noqa: SL101, E501\n", {"SL101", "SL301"}) == [
        (2, "unused `noqa` directive: `SL101` reported nothing on this line")]
