"""`sync-lint rules` and `explain`: the rule catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sync_lint.cli.app import main
from sync_lint.config import ConfigError, project_torch_target, resolve_settings
from sync_lint.errors import UsageError


def _registry() -> dict:
    """Every rule by code, from the catalogue when it can stand for the rules (no parser imported)."""
    from sync_lint.api import rule_registry

    return rule_registry()


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--target-torch-version", help="Show which rules are active for this torch version.")
def rules_command(output_format: str, target_torch_version: str | None) -> None:
    """List the rules: code, name, fix availability."""
    registry = _registry()
    if target_torch_version:
        target = target_torch_version
    else:
        try:  # the project's target, as `check` would use it, without loading the parser
            target = project_torch_target(resolve_settings([Path(".")], None)).target_torch_version
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    for note in (note for rule in registry.values() for note in rule.torch_notes(target)):
        click.echo(f"sync-lint: note: {note}", err=True)
    rows = [
        {
            "code": r.code,
            "name": r.name,
            "summary": r.summary,
            "fix": r.fix_availability,
            "fixed_in_torch": r.fixed_in_torch,
            "torch_checked_through": r.torch_checked_through,
            "active": r.active_for_torch(target),
            "url": r.url(),
        }
        for r in registry.values()
    ]
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"sync-lint rules (target torch {target})", title_justify="left")
    for column in ("code", "name", "fix", "summary"):
        table.add_column(column)
    for row in rows:
        note = "" if row["active"] else f" [off: sync removed in torch {row['fixed_in_torch']}]"
        # Plain text, not console markup: a summary such as `t[i] = ...` must print as written.
        table.add_row(Text(row["code"]), Text(row["name"]), Text(row["fix"]), Text(f"{row['summary']}{note}"))
    Console(highlight=False, soft_wrap=False).print(table)


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print the documentation of rule CODE (a code such as SL101, or a name such as `item`)."""
    registry = _registry()
    rule = registry.get(code.upper())
    if rule is None:
        by_name = {r.name.lower(): r for r in registry.values()}
        rule = by_name.get(code.lower().replace("_", "-")) or by_name.get(code.lower())
    if rule is None:
        raise UsageError(f"unknown rule `{code}` (see `sync-lint rules`)")
    click.echo(rule.documentation())
