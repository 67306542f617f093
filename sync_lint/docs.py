"""Generate `docs/rules/<CODE>.md` from the rules' own documentation.

The rule module's docstring is the single source: `sync-lint explain` prints it,
and this writes the same text to docs/. A test fails when the two drift.

    python -m sync_lint.docs [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from sync_lint.registry import builtin_rules
from sync_lint.rule import Rule

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "rules"


def rule_page(rule: type[Rule]) -> str:
    facts = [
        f"- **Code:** `{rule.code}` · **Name:** `{rule.name}`",
        f"- **Fix:** {rule.fix_availability}",
        f"- **Syncs in:** {rule.syncs_in}",
    ]
    if rule.fixed_in_torch:
        facts.append(f"- **Off when targeting torch >= {rule.fixed_in_torch}** (`target-torch-version`)")
    return rule.documentation().rstrip() + "\n\n## Rule facts\n" + "\n".join(facts) + "\n"


def index_page(rules: list[type[Rule]]) -> str:
    rows = "\n".join(f"| [{r.code}]({r.code}.md) | `{r.name}` | {r.summary} | {r.fix_availability} |" for r in rules)
    return "# Rules\n\n| code | name | what | fix |\n|---|---|---|---|\n" + rows + "\n"


def expected_files() -> dict[Path, str]:
    rules = sorted(builtin_rules(), key=lambda r: r.code)
    files = {DOCS_DIR / f"{r.code}.md": rule_page(r) for r in rules}
    files[DOCS_DIR / "README.md"] = index_page(rules)
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if check and stale:
        print("out of date: " + ", ".join(str(p) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
