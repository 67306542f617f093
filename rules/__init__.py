"""The built-in rule pack, installed as `sync_lint.rules` (never as a top-level `rules`).

One module per rule. Each reads top to bottom: what syncs, why (with the
measured evidence), how we match it, how we fix it, examples. The module
docstring is the rule's documentation: `sync-lint explain CODE` prints it and
`docs/rules/CODE.md` is generated from it.
"""

BUILTIN_MODULES: tuple[str, ...] = (
    "item",
    "tolist",
    "device_to_host_copy",
    "implicit_host_read",
    "nonzero",
    "boolean_mask_select",
    "unique",
    "bincount",
    "repeat_interleave",
    "one_hot",
    "checked_op",
    "scalar_index_assign",
    "index_put_from_host",
    "pageable_host_to_device",
    "tensor_from_host_data",
    "explicit_synchronize",
    "sync_prone_attribute",
)
