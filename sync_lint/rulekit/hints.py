"""Inline fix hints: numbers only the author knows (SL201, SL206).

Some fixes need a number that only the author knows: the bound for
`torch.nonzero_static(x, size=...)`, the class count for `F.one_hot`. The author
writes it in the comment that ends the statement:

    idx = torch.nonzero(mask)  # sync-lint: nonzero-size=max_num_reqs
    y = F.one_hot(labels)  # sync-lint: num-classes=vocab_size

Syntax: `sync-lint:` followed by `key=value` pairs separated by `;`. In keys `_`
and `-` are the same (`num_classes` = `num-classes`). A value is a Python
expression that the fix writes as it stands; a value that does not parse gives
no fix. Only simple statements (an assignment, a `return`, an expression) carry
hints: the comment after the statement's last line.
"""

from __future__ import annotations

import re

import libcst as cst

_HINT = re.compile(r"sync-lint:\s*(?P<body>[^#]*)")


def statement_hints(node: cst.SimpleStatementLine | None) -> dict[str, str]:
    """The `# sync-lint: key=value` hints on a statement, keys spelled with `-`."""
    if node is None:
        return {}
    comment = node.trailing_whitespace.comment
    if comment is None or "sync-lint:" not in comment.value:
        return {}
    hints: dict[str, str] = {}
    for match in _HINT.finditer(comment.value):
        for pair in match.group("body").split(";"):
            key, equal, value = pair.partition("=")
            if equal and key.strip() and value.strip():
                hints[key.strip().replace("_", "-")] = value.strip()
    return hints


def valid_expression(text: str | None) -> str | None:
    """`text` when it is a Python expression, else None (a hint with a typo gives no fix)."""
    if text is None:
        return None
    try:
        cst.parse_expression(text)
    except cst.ParserSyntaxError:
        return None
    return text
