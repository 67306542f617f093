"""# SL900 `unused-noqa`: a `# noqa: SL...` that suppresses nothing

## What it does
Flags a `# noqa: SLxxx` comment when the rule `SLxxx` ran on the file and reported
nothing on that line (ruff's RUF100). Codes of rules that did not run (not selected,
off for the target torch, ignored for the file) and codes of other tools (`E501`)
are left alone, and so is a bare `# noqa`.

## Why is this bad
A stale suppression hides the next real sync on that line: once the code changed so
that the old finding went away, a new `.item()` added there is silenced without
anyone deciding it is intended. Removing unused directives keeps every `noqa` a
decision someone made about a sync that is still there.

## Example
```python
x = torch.ones(3)  # noqa: SL101   <- SL900: nothing to suppress here
```

## Fix safety
Safe: the fix removes the unused codes from the list, or the whole comment when no
code is left; no behaviour changes.

## When to ignore
When a line must keep a directive for a configuration that enables more rules
than this one: select SL900 only where the full rule set runs, or `--ignore SL900`.
"""

from __future__ import annotations

from sync_lint.rulekit import Example, Rule


class UnusedNoqa(Rule):
    """Reported by the engine after the walk (`sync_lint.engine.unused_noqa`): it needs every other
    rule's findings on the file."""

    code = "SL900"
    name = "unused-noqa"
    summary = "A `# noqa: SL...` that suppresses nothing"
    triggers = ("noqa",)
    fix_availability = "always"
    # The fix edits a comment: the program is unchanged, so there is no GPU case to verify.
    fix_edits_comments_only = True
    examples = (
        Example("import torch\nx = torch.ones(3)  # noqa: SL101\n", (2,)),
        Example("import torch\nx = torch.ones(3, device='cuda')\nv = x.sum().item()  # noqa: SL101\n"),
        Example("x = 1  # noqa: E501\n"),
        Example("x = 1  # noqa\n"),
    )
