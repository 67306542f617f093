"""`sync-lint rules` and `explain`: the rule catalogue."""

from __future__ import annotations

import json

import click

from sync_lint.api import NEWEST_MEASURED_TORCH, UsageError, version_notes
from sync_lint.cli.app import main
from sync_lint.config import installed_torch_version
from sync_lint.registry import RuleLoadError, all_rules


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--target-torch-version", help="Show which rules are active for this torch version.")
def rules_command(output_format: str, target_torch_version: str | None) -> None:
    """List the rules: code, name, fix availability."""
    try:
        registry = all_rules()
    except RuleLoadError as exc:
        raise UsageError(str(exc)) from None
    target = target_torch_version or installed_torch_version() or NEWEST_MEASURED_TORCH
    for note in version_notes(list(registry.values()), target):
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

    table = Table(title=f"sync-lint rules (target torch {target})", title_justify="left")
    for column in ("code", "name", "fix", "summary"):
        table.add_column(column)
    for row in rows:
        note = "" if row["active"] else f" [off: sync removed in torch {row['fixed_in_torch']}]"
        table.add_row(row["code"], row["name"], row["fix"], f"{row['summary']}{note}")
    Console(highlight=False, soft_wrap=False).print(table)


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print the documentation of rule CODE."""
    try:
        registry = all_rules()
    except RuleLoadError as exc:
        raise UsageError(str(exc)) from None
    rule = registry.get(code.upper())
    if rule is None:
        raise UsageError(f"unknown rule `{code}` (see `sync-lint rules`)")
    click.echo(rule.documentation())
