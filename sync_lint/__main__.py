"""`python -m sync_lint` and the `sync-lint` executable: `--version` answered before anything is imported.

The version is what editors and pre-commit ask most often, and importing click alone
costs about as much as starting Python; every other command goes to the click group.
"""

from __future__ import annotations

import sys


def main() -> object:
    """Run the command line; the return value is the exit status (the console script exits with it)."""
    if sys.argv[1:] == ["--version"]:
        from sync_lint import __version__

        sys.stdout.write(f"sync-lint, version {__version__}\n")
        return 0
    from sync_lint.cli.app import main as group

    return group()


if __name__ == "__main__":
    raise SystemExit(main())
