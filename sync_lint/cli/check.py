"""`sync-lint check`, `fix` and `baseline create`: parse the arguments, call the API, render."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import click

from sync_lint import api
from sync_lint.cli.app import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, emit, main
from sync_lint.diagnostics import FileResult
from sync_lint.formats import MACHINE_FORMATS, OUTPUT_FORMATS


def _check_options(func: Callable) -> Callable:
    options = [
        click.argument("paths", nargs=-1, type=click.Path()),
        click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated): SL1, SL101, ALL."),
        click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top of the selection."),
        click.option("--ignore", multiple=True, help="Codes or prefixes to disable."),
        click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), default=None,
                     help="How to print findings (default: full)."),
        click.option("-o", "--output-file", type=click.Path(dir_okay=False), help="Write the report to this file."),
        click.option("--statistics", is_flag=True, help="Print the number of findings per rule."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings."),
        click.option("--config", type=click.Path(dir_okay=False), help="Use this configuration file."),
        click.option("--isolated", is_flag=True, help="Ignore all configuration files and check each file on its own "
                     "(no project index)."),
        click.option("--no-cache", is_flag=True, help="Read and write no cache (the project index is built in a "
                     "temporary folder)."),
        click.option("--cache-dir", type=click.Path(file_okay=False), envvar="SYNC_LINT_CACHE_DIR",
                     help="Keep the cache here instead of `.sync-lint-cache/` at each project root "
                     "[env: SYNC_LINT_CACHE_DIR]."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores)."),
        click.option("--stdin-filename", help="The name to report for source read from stdin (`-`)."),
        click.option("--strict/--no-strict", default=None,
                     help="Also report values that look like tensors of unknown device (more findings, less precision)."),
        click.option("--target-torch-version", help="Lint for this torch version (default: installed torch, else 2.11)."),
        click.option("--fix", "apply_fixes", is_flag=True, help="Apply safe fixes."),
        click.option("--unsafe-fixes", is_flag=True, help="Also apply (or show) unsafe fixes."),
        click.option("--diff", "show_diff", is_flag=True, help="Print a diff of the fixes instead of writing them."),
        click.option("--show-fixes", is_flag=True, help="List the fixes that were applied."),
        click.option("--baseline", type=click.Path(dir_okay=False), help="Report only findings not recorded in this baseline file."),
        click.option("--show-stale", is_flag=True, help="With --baseline: list baseline entries that match nothing."),
        click.option("--diff-against", metavar="REV", help="Report only findings on lines changed since this git revision."),
        click.option("--no-progress", is_flag=True, help="Never show a progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@_check_options
def check(**options: object) -> None:
    """Check PATHS (files or directories; `-` for stdin) for hidden GPU<->CPU syncs."""
    sys.exit(run_check(**options))  # type: ignore[arg-type]


@main.command()
@_check_options
def fix(**options: object) -> None:
    """Shorthand for `check --fix`."""
    options["apply_fixes"] = True
    sys.exit(run_check(**options))  # type: ignore[arg-type]


def run_check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str | None,
    output_file: str | None,
    statistics: bool,
    exit_zero: bool,
    config: str | None,
    isolated: bool,
    no_cache: bool,
    cache_dir: str | None,
    jobs: int | None,
    stdin_filename: str | None,
    strict: bool | None,
    target_torch_version: str | None,
    apply_fixes: bool,
    unsafe_fixes: bool,
    show_diff: bool,
    show_fixes: bool,
    baseline: str | None,
    show_stale: bool,
    diff_against: str | None,
    no_progress: bool,
) -> int:
    if not paths:
        paths = (".",)
    project = api.ProjectOptions(cache_dir=Path(cache_dir).resolve() if cache_dir else None, temporary=no_cache)
    plan = api.plan(paths, config=config, isolated=isolated, select=select, extend_select=extend_select,
                    ignore=ignore, strict=strict, target_torch_version=target_torch_version, project=project)
    for note in plan.notes:
        click.echo(f"sync-lint: note: {note}", err=True)
    fmt = output_format or plan.settings.output_format
    fix_mode = api.FixMode(unsafe=unsafe_fixes, diff=show_diff) if apply_fixes or show_diff else None

    reports = []
    stdin_used = "-" in paths
    if stdin_used:
        reports.append(api.run_source(plan, sys.stdin.read(), stdin_filename or "-", fix=fix_mode))
    file_args = [p for p in paths if p != "-"]
    if file_args:
        progress = _Progress(enabled=not no_progress and fmt not in MACHINE_FORMATS and sys.stderr.isatty()
                             and not output_file)
        with progress:
            reports.append(api.run(plan, file_args, fix=fix_mode, jobs=jobs, on_result=progress.advance,
                                   on_files=progress.expect))
    report = api.merge(*reports)

    report_to_stderr = False
    if fix_mode is not None:
        if show_diff:
            emit(report.diff_text, output_file)
            return EXIT_FINDINGS if report.diff_text else EXIT_CLEAN
        if stdin_used and report.source_output is not None:
            # ruff: fixing stdin prints the fixed source on stdout, the report on stderr.
            sys.stdout.write(report.source_output)
            sys.stdout.flush()
            report_to_stderr = True
        if show_fixes:
            from sync_lint.fix import fix_summary

            summary = fix_summary(report.fixed, {r.code: r.name for r in plan.rules}, would=False)
            if summary:
                click.echo(summary, err=True)

    results = report.results
    if baseline:
        stale = api.apply_baseline(results, Path(baseline))
        if show_stale:
            for entry in stale:
                click.echo(f"stale baseline entry: {entry.file}:{entry.line}: {entry.code} {entry.message}", err=True)
    if diff_against:
        api.apply_changed_lines(results, diff_against)

    if fmt in ("json", "json-lines"):
        # The other formats carry file errors themselves; JSON keeps ruff's shape.
        for result in results:
            for error in result.errors:
                rule = f" [rule {error.rule}]" if error.rule else ""
                click.echo(f"sync-lint: error: {error.path}: {error.message}{rule}", err=True)

    from sync_lint.reporters import render, render_statistics

    human = fmt not in MACHINE_FORMATS
    color = human and not output_file and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render(fmt, results, plan.registry, statistics=statistics and human, color=color,
                  show_fixes_preview=True, unsafe_fixes=unsafe_fixes)
    emit(text, output_file, err=report_to_stderr)
    if statistics and not human:
        click.echo(render_statistics(results, plan.registry), err=True)

    if any(r.errors for r in results):
        return EXIT_ERROR
    if any(r.diagnostics for r in results) and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


class _Progress:
    """A rich progress bar that appears only once a run has taken over a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0
        self.started = time.monotonic()
        self.done = 0
        self._bar = None
        self._task = None

    def __enter__(self) -> "_Progress":
        return self

    def expect(self, total: int) -> None:
        self.total = total
        self.enabled = self.enabled and total > 0

    def advance(self, _result: FileResult) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self.started > 1.0:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("check", total=self.total, completed=self.done)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@main.group()
def baseline() -> None:
    """Record today's findings so that `check --baseline FILE` reports only new ones."""


@baseline.command("create")
@click.argument("baseline_file", type=click.Path(dir_okay=False))
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--config", type=click.Path(dir_okay=False), help="Use this configuration file.")
@click.option("--select", multiple=True, help="Rule codes or prefixes to record.")
@click.option("--ignore", multiple=True, help="Codes or prefixes not to record.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None)
def baseline_create(baseline_file: str, paths: tuple[str, ...], config: str | None, select: tuple[str, ...],
                    ignore: tuple[str, ...], jobs: int | None) -> None:
    """Write BASELINE_FILE with the current findings in PATHS (default: .)."""
    paths = paths or (".",)
    plan = api.plan(paths, config=config, select=select, ignore=ignore)
    count, files, errors = api.create_baseline(plan, paths, Path(baseline_file), jobs=jobs or plan.settings.jobs)
    for error in errors:
        click.echo(f"sync-lint: error: {error.path}: {error.message}", err=True)
    click.echo(f"Recorded {count} finding(s) from {files} file(s) in {baseline_file}", err=True)
