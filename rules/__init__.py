"""The built-in rule pack, installed as `sync_lint.rules` (never as a top-level `rules`).

One module per rule, found by the registry (a module whose name starts with `_`
is not a rule). Each reads top to bottom: what syncs, why (with the measured
evidence), how we match it, how we fix it, examples, and the cases that prove
the fix on a GPU. The module docstring is the rule's documentation:
`sync-lint explain CODE` prints it and `docs/rules/CODE.md` is generated from it.
Rules use only the public kit, `sync_lint.rulekit`.
"""
