"""Generate `docs/rules/<CODE>.md` and `docs/configuration.md` from the code.

The rule module's docstring is the single source: `sync-lint explain` prints it,
and this writes the same text to docs/. A test fails when the two drift.

    python -m sync_lint.docs [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from sync_lint.registry import builtin_rules
from sync_lint.rulekit import Rule

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "rules"


def rule_page(rule: type[Rule]) -> str:
    facts = [
        f"- **Code:** `{rule.code}` · **Name:** `{rule.name}`",
        f"- **Fix:** {rule.fix_availability}",
        f"- **Syncs in:** {rule.syncs_in}",
    ]
    if rule.fixed_in_torch:
        facts.append(f"- **Off when targeting torch >= {rule.fixed_in_torch}** (`target-torch-version`)")
    for gate in (rule.torch_gate(), *rule.partial_torch_gates):
        if gate.checked_through:
            what = f" ({gate.part})" if gate.part else ""
            facts.append(f"- **Version evidence{what}:** releases up to {gate.checked_through} checked; "
                         f"first without the sync: {gate.fixed_in or 'none of them'}")
    return rule.documentation().rstrip() + "\n\n## Rule facts\n" + "\n".join(facts) + "\n"


def index_page(rules: list[type[Rule]]) -> str:
    rows = "\n".join(f"| [{r.code}]({r.code}.md) | `{r.name}` | {r.summary} | {r.fix_availability} |" for r in rules)
    return "# Rules\n\n| code | name | what | fix |\n|---|---|---|---|\n" + rows + "\n"


def _toml(value: object) -> str:
    import json

    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def configuration_page() -> str:
    from sync_lint.config import OPTIONS, Settings

    defaults = Settings()
    rows = []
    for option in OPTIONS:
        default = getattr(defaults, option.key.replace("-", "_"))
        if isinstance(default, tuple) and default and isinstance(default[0], tuple):
            default = {k: (v if len(v) < 40 else v[:37] + "...").replace("`", "") for k, v in default}
        shown = "(none)" if default in (None, (), {}) else f"`{_toml(default)}`"
        rows.append(f"| `{option.key}` | {option.kind} | {option.help} | {shown} |")
    return (
        "# Configuration\n\n"
        "In `pyproject.toml` under `[tool.sync-lint]`, or at the top level of a `sync-lint.toml`; the\n"
        "first one found walking up from the linted paths wins, `--config PATH` names one, `--isolated`\n"
        "ignores them. Command-line flags override the file. An unknown key or a value of the wrong\n"
        "type is an error that names the key (exit code 2).\n\n"
        "| key | type | what | default |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def expected_files() -> dict[Path, str]:
    rules = sorted(builtin_rules(), key=lambda r: r.code)
    files = {DOCS_DIR / f"{r.code}.md": rule_page(r) for r in rules}
    files[DOCS_DIR / "README.md"] = index_page(rules)
    files[DOCS_DIR.parent / "configuration.md"] = configuration_page()
    return files


REGENERATE = "python -m sync_lint.docs"


def stale_files() -> dict[Path, str]:
    """The generated files whose text on disk is not what the code generates now."""
    return {
        path: text
        for path, text in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    }


def check_message() -> str | None:
    """None when the generated docs are current; else which are stale and the command that regenerates them."""
    stale = stale_files()
    if not stale:
        return None
    return f"out of date: {', '.join(str(p) for p in stale)}; run `{REGENERATE}` to regenerate"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        message = check_message()
        if message:
            print(message)
            return 1
        return 0
    for path, text in stale_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
