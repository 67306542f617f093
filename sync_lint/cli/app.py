"""The command group and how errors end a run.

Exit codes follow ruff: 0 no findings, 1 findings, 2 usage, configuration or
internal error (`--exit-zero` turns 1 into 0).
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from typing import NoReturn

import click

from sync_lint import __version__
from sync_lint.errors import UsageError

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

# The module that registers each command, imported only when the command is looked up:
# `--version` imports none of them, and a command imports only its own (`check` brings
# in the parser, `verify` and `trace` the runtime).
COMMAND_MODULES = {
    "check": "check", "fix": "check", "baseline": "check",
    "rules": "info", "explain": "info",
    "verify": "runtime", "trace": "runtime",
    "server": "server",
    "daemon": "daemon",
    "paths": "paths",
}


def fail(message: str) -> NoReturn:
    click.echo(f"sync-lint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def emit(text: str, output_file: str | None, err: bool = False) -> None:
    """Write a report to `output_file`, or to stdout (stderr with `err`)."""
    if output_file:
        try:
            Path(output_file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output_file}: {exc.strerror or exc}") from None
    elif text:
        stream = sys.stderr if err else sys.stdout
        stream.write(text)
        stream.flush()


class _Group(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            import_module(f"sync_lint.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(COMMAND_MODULES.values()):
            import_module(f"sync_lint.cli.{module}")
        return super().list_commands(ctx)

    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:  # usage errors included
            exc.show()
            sys.exit(EXIT_ERROR)
        except UsageError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(EXIT_ERROR)
        except Exception as exc:  # an internal error is exit 2, never a findings exit
            import traceback

            click.echo("".join(traceback.format_exception(exc)), err=True)
            fail(f"internal error: {type(exc).__name__}: {exc} (please report this)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sync-lint")
def main() -> None:
    """Find, fix and verify hidden GPU<->CPU synchronizations in PyTorch code."""
