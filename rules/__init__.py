"""The built-in rule pack, installed as `sync_lint.rules` (never as a top-level `rules`).

One module per rule. Each reads top to bottom: what syncs, why (with the
measured evidence), how we match it, how we fix it, examples. The module
docstring is the rule's documentation: `sync-lint explain CODE` prints it and
`docs/rules/CODE.md` is generated from it.
"""

BUILTIN_MODULES: tuple[str, ...] = (
    "item",
)
