"""The rule kit: everything a rule needs, for the built-in pack and third-party packs alike.

    from sync_lint.rulekit import Example, Fix, Rule, get_arg, method_receiver

| module | what |
|---|---|
| `rule.py` | `Rule` (metadata, `report`, `gpu_fact`, `replace`), `Example` |
| `edits.py` | fix edits spliced from the file's own text: `replace`, `splice`, `set_keyword`, ... |
| `numbers.py` | Python-number predicates and the overflow condition shared by the scalar fixes |
| `copies.py` | host-to-device copies: a host tensor's size where the source states it, the measured thresholds |
| `mirrors.py` | `report_host_read`: a host read of a GPU tensor, fixed to read its `_cpu` mirror |
| `hints.py` | `# sync-lint: key=value` hints on a statement |
| `versions.py` | torch version parsing and release gates |

Syntax helpers (`call_name`, `get_arg`, `dotted_name`, literal tests) come from
`sync_lint.syntax` and are re-exported here.
"""

from sync_lint.analysis.facts import Device, Fact, abbreviate, is_host_list
from sync_lint.diagnostics import Edit, Fix
from sync_lint.rulekit.copies import (
    NEVER_BLOCKED_BYTES,
    PER_CALL_PIN_COST,
    REPEATED_BLOCKS_FROM_BYTES,
    SINGLE_BLOCKS_FROM_BYTES,
    describe_bytes,
    literal_data,
    static_nbytes,
)
from sync_lint.rulekit.edits import (
    append_arguments,
    insert_before,
    keyword_edit,
    remove_argument,
    replace,
    set_keyword,
    splice,
)
from sync_lint.rulekit.hints import statement_hints, valid_expression
from sync_lint.rulekit.mirrors import report_host_read, tensor_root
from sync_lint.rulekit.numbers import (
    FLOAT16_MAX,
    cannot_overflow,
    is_cpu_scalar_tensor,
    is_python_number,
)
from sync_lint.rulekit.rule import Example, FixAvailability, Rule
from sync_lint.rulekit.versions import TorchGate, before_release, parse_version
from sync_lint.syntax import (
    bool_literal,
    call_name,
    dotted_name,
    get_arg,
    is_false_literal,
    is_true_literal,
    keyword_value,
    literal_number,
    literal_string,
    method_receiver,
    positional_args,
)

__all__ = [
    "NEVER_BLOCKED_BYTES", "PER_CALL_PIN_COST", "REPEATED_BLOCKS_FROM_BYTES", "SINGLE_BLOCKS_FROM_BYTES",
    "describe_bytes", "literal_data", "static_nbytes",
    "Device", "Edit", "Example", "FLOAT16_MAX", "Fact", "Fix", "FixAvailability", "Rule", "TorchGate", "abbreviate",
    "append_arguments", "before_release", "bool_literal", "call_name", "cannot_overflow", "dotted_name",
    "get_arg", "insert_before", "is_cpu_scalar_tensor", "is_host_list", "is_false_literal", "is_python_number",
    "is_true_literal", "keyword_edit", "keyword_value", "literal_number", "literal_string", "method_receiver",
    "parse_version", "positional_args", "remove_argument", "replace", "report_host_read", "set_keyword",
    "splice", "statement_hints", "tensor_root", "valid_expression",
]
