"""`sync-lint paths ROOT`: the call tree of a hot-path root, with the syncs hanging under it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from sync_lint import api
from sync_lint.cli.app import EXIT_CLEAN, EXIT_FINDINGS, emit, main


@main.command("paths")
@click.argument("root", metavar="ROOT")
@click.argument("where", required=False, default=".", type=click.Path(exists=True))
@click.option("--output-format", type=click.Choice(["tree", "json", "mermaid", "dot"]), default="tree",
              help="A rich tree (default), JSON, or a Mermaid/Graphviz DOT graph for docs and pull requests.")
@click.option("--all", "show_all", is_flag=True, help="Show every function reached, not only the branches "
              "that lead to a sync.")
@click.option("--max-depth", type=click.IntRange(min=0), default=None, help="Follow at most this many calls.")
@click.option("--show-unresolved", is_flag=True, help="List the calls on the path the graph could not resolve.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False), help="Write the output to this file.")
@click.option("--config", type=click.Path(dir_okay=False), help="Use this configuration file.")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="SYNC_LINT_CACHE_DIR",
              help="Keep the cache here instead of `.sync-lint-cache/` at the project root.")
@click.option("--no-cache", is_flag=True, help="Build the project index in a temporary folder.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None)
def paths_command(root: str, where: str, output_format: str, show_all: bool, max_depth: int | None,
                  show_unresolved: bool, output_file: str | None, config: str | None, cache_dir: str | None,
                  no_cache: bool, jobs: int | None) -> None:
    """Print the call tree of ROOT (`pkg.module:Class.method`) in the project at WHERE (default: .),
    with the syncs each function holds."""
    project = api.ProjectOptions(cache_dir=Path(cache_dir).resolve() if cache_dir else None, temporary=no_cache)
    plan = api.plan([where], config=config, project=project)
    tree, reached, unresolved = api.call_tree(plan, root, where, prune=not show_all, max_depth=max_depth, jobs=jobs)
    from sync_lint.hotpaths import _walk, render_dot, render_mermaid, render_tree_text

    syncs = sum(len(n.syncs) for n in _walk(tree))
    if output_format == "json":
        text = json.dumps({"root": tree.function, "functions_reached": reached, "syncs": syncs,
                           "unresolved_calls": len(unresolved), "tree": tree.as_dict()}, indent=2) + "\n"
    elif output_format == "mermaid":
        text = render_mermaid(tree)
    elif output_format == "dot":
        text = render_dot(tree)
    else:
        color = not output_file and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        text = render_tree_text(tree, color=color)
        text += (f"{syncs} sync(s) on the path of {tree.function}; {reached} functions reached, "
                 f"{len(unresolved)} unresolved call(s)" + ("" if show_all else "; branches without a sync hidden "
                                                            "(--all shows them)") + "\n")
    emit(text, output_file)
    if show_unresolved:
        for item in sorted(unresolved, key=lambda u: (u.path, u.line)):
            click.echo(f"  unresolved: {item.path}:{item.line}: {item.text}  (in {item.function})", err=True)
    sys.exit(EXIT_FINDINGS if syncs else EXIT_CLEAN)
