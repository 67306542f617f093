"""`sync-lint check`, `fix` and `baseline create`: parse the arguments, call the API, render."""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Callable

import click

from sync_lint import api
from sync_lint.cli.app import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, emit, main
from sync_lint.diagnostics import FileError, FileResult
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
        click.option("--statistics", is_flag=True, help="Print only the number of findings per rule."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings."),
        click.option("--exit-non-zero-on-fix", is_flag=True,
                     help="Exit 1 when fixes were applied, even if nothing is left to report."),
        click.option("--config", multiple=True, metavar="FILE | KEY=VALUE",
                     help="A configuration file, or a `KEY = VALUE` override of one setting (TOML, e.g. "
                     "`strict = true`); repeatable."),
        click.option("--isolated", is_flag=True, help="Ignore all configuration files and check each file on its own "
                     "(no project index)."),
        click.option("--force-exclude", is_flag=True, default=None,
                     help="Apply `exclude` and `extend-exclude` to files named on the command line too (for pre-commit)."),
        click.option("--no-cache", is_flag=True, help="Read and write no cache (the project index is built in a "
                     "temporary folder)."),
        click.option("--cache-dir", type=click.Path(file_okay=False), envvar="SYNC_LINT_CACHE_DIR",
                     help="Keep the cache here instead of `.sync-lint-cache/` at each project root "
                     "[env: SYNC_LINT_CACHE_DIR]."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores)."),
        click.option("--stdin-filename", help="The name to report for source read from stdin (`-`)."),
        click.option("--strict/--no-strict", default=None,
                     help="Also report values that look like tensors of unknown device (more findings, less precision)."),
        click.option("--target-torch-version", help="Lint for this torch version (default: the configuration, else "
                     "the torch the project pins, else 2.11; never the installed torch)."),
        click.option("--fix", "apply_fixes", is_flag=True, help="Apply safe fixes."),
        click.option("--fix-only", is_flag=True, help="Apply fixes and report only how many were applied."),
        click.option("--unsafe-fixes", is_flag=True, help="Also apply (or show) unsafe fixes."),
        click.option("--diff", "show_diff", is_flag=True, help="Print a diff of the fixes instead of writing them."),
        click.option("--show-fixes", is_flag=True, help="List the fixes that were applied."),
        click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` to every line with a finding (no fixes)."),
        click.option("--baseline", type=click.Path(dir_okay=False), help="Report only findings not recorded in this baseline file."),
        click.option("--show-stale", is_flag=True, help="With --baseline: list baseline entries that match nothing."),
        click.option("--diff-against", metavar="REV", help="Check only files changed since this git revision and "
                     "report only findings on changed lines."),
        click.option("--show-settings", is_flag=True, help="Print the settings in effect (and where each came from); check nothing."),
        click.option("--show-files", is_flag=True, help="Print the files that would be checked; check nothing."),
        click.option("-q", "--quiet", is_flag=True, help="Print findings and nothing else (no summary, notes or progress)."),
        click.option("--watch", is_flag=True, help="Check again whenever a checked file changes (Ctrl-C stops)."),
        click.option("--no-progress", is_flag=True, help="Never show a progress bar."),
        click.option("--no-daemon", is_flag=True, help="Check in this process even when a daemon of this sync-lint "
                     "is running (`sync-lint daemon start`)."),
        click.option("--hot-only", is_flag=True, help="Report only findings on a hot path (reachable from a hot root)."),
        click.option("--hot-path", "hot_path", multiple=True, metavar="MODULE:QUALNAME",
                     help="A hot-path root on top of the configured `hot-paths` (repeatable)."),
        click.option("--show-unresolved", is_flag=True,
                     help="List the calls inside hot functions that the call graph could not resolve."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@_check_options
def check(**options: object) -> None:
    """Check PATHS (files or directories; `-` for stdin) for hidden GPU<->CPU syncs."""
    if options.get("watch"):
        sys.exit(watch(options))
    sys.exit(run_check(**options))  # type: ignore[arg-type]


@main.command()
@_check_options
def fix(**options: object) -> None:
    """Shorthand for `check --fix`."""
    options["apply_fixes"] = True
    if options.get("watch"):
        sys.exit(watch(options))
    sys.exit(run_check(**options))  # type: ignore[arg-type]


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def run_check(
    paths: tuple[str, ...],
    select: tuple[str, ...] = (),
    extend_select: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    output_format: str | None = None,
    output_file: str | None = None,
    statistics: bool = False,
    exit_zero: bool = False,
    config: tuple[str, ...] = (),
    isolated: bool = False,
    no_cache: bool = False,
    cache_dir: str | None = None,
    jobs: int | None = None,
    stdin_filename: str | None = None,
    strict: bool | None = None,
    target_torch_version: str | None = None,
    apply_fixes: bool = False,
    unsafe_fixes: bool = False,
    show_diff: bool = False,
    show_fixes: bool = False,
    baseline: str | None = None,
    show_stale: bool = False,
    diff_against: str | None = None,
    no_progress: bool = False,
    no_daemon: bool = False,
    force_exclude: bool | None = None,
    exit_non_zero_on_fix: bool = False,
    fix_only: bool = False,
    add_noqa: bool = False,
    show_settings: bool = False,
    show_files: bool = False,
    quiet: bool = False,
    watch: bool = False,
    hot_only: bool = False,
    hot_path: tuple[str, ...] = (),
    show_unresolved: bool = False,
) -> int:
    if not paths:
        paths = (".",)
    if add_noqa and (apply_fixes or fix_only or show_diff):
        raise api.UsageError("--add-noqa cannot be combined with --fix, --fix-only or --diff")
    project = api.ProjectOptions(cache_dir=Path(cache_dir).resolve() if cache_dir else None, temporary=no_cache)
    plan = api.plan(paths, config=config or None, isolated=isolated, select=select, extend_select=extend_select,
                    ignore=ignore, strict=strict, target_torch_version=target_torch_version, project=project,
                    force_exclude=bool(force_exclude))
    if show_settings:
        from sync_lint.cli.settings import render_settings

        emit(render_settings(plan), output_file)
        return EXIT_CLEAN
    # Everything that can be wrong with the arguments is found before the (possibly long) run.
    baseline_doc = api.read_baseline(Path(baseline)) if baseline else None
    changed = api.read_changed_lines(diff_against) if diff_against else None
    if output_file and not Path(output_file).resolve().parent.is_dir():
        raise api.UsageError(f"cannot write {output_file}: no such directory")
    if not quiet:
        for note in plan.notes:
            click.echo(f"sync-lint: note: {note}", err=True)
    fmt = output_format or plan.settings.output_format
    if fix_only:
        apply_fixes = True
    fix_mode = api.FixMode(unsafe=unsafe_fixes, diff=show_diff) if apply_fixes or show_diff else None

    stdin_used = "-" in paths
    file_args = [p for p in paths if p != "-"]
    found = api.discover_files(plan, file_args) if file_args else None
    if show_files:
        emit("".join(f"{path}\n" for path in (found.files if found else [])), output_file)
        return EXIT_CLEAN
    files: list[str] = []
    if found is not None:
        for path in found.skipped:
            warn(f"{path}: not a Python file (.py, .pyi, .ipynb); skipped")
        files = found.files
        if not files and not found.missing and not stdin_used:
            warn("No Python files found under the given path(s)")
            if (output_format or plan.settings.output_format) not in MACHINE_FORMATS:
                return EXIT_CLEAN  # not "All checks passed!": nothing was checked
        if changed is not None:
            files = [path for path in files if changed.touches(path)]

    reports = []
    if stdin_used:
        reports.append(api.run_source(plan, sys.stdin.read(), stdin_filename or "-", fix=fix_mode))
    if found is not None:
        missing = [FileResult(path, errors=[FileError(path, NO_SUCH_PATH)]) for path in found.missing]
        progress = _Progress(enabled=not no_progress and not quiet and _stderr_is_a_terminal())
        progress.expect(len(files))
        with progress:
            report = api.run_files(plan, files, fix=fix_mode, jobs=jobs, on_result=progress.advance,
                                   hot_paths_after=hot_path if fix_mode is None else None)
        report.results[:0] = missing
        reports.append(report)
    report = api.merge(*reports)

    report_to_stderr = False
    fixed_count = sum(sum(counts.values()) for counts in report.fixed.values())
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
    stale = []
    if baseline_doc is not None:
        stale = api.apply_baseline(results, baseline_doc)
    hot = None
    if fix_mode is None and file_args:
        # After the baseline: a baselined sync is not reported again at its hot callers.
        hot = api.apply_hot_paths(plan, report, baseline=Path(baseline) if baseline else None, jobs=jobs,
                                  extra_roots=hot_path, list_unresolved=show_unresolved)
        if baseline:  # an SL601 entry is in use when its call site was a cut
            used = {(Path(d.path).name, d.start.row) for d in hot.baselined}
            stale = [e for e in stale if e.code != "SL601" or (Path(e.file).name, e.line) not in used]
    if baseline_doc is not None and show_stale:
        for entry in stale:
            click.echo(f"stale baseline entry: {entry.file}:{entry.line}: {entry.code} {entry.message}", err=True)
    if changed is not None:
        api.apply_changed_lines(results, changed)
    if hot_only:
        for result in results:
            result.diagnostics = [d for d in result.diagnostics if d.hot is not None]
    if hot is not None:
        for spec in hot.missing:
            click.echo(f"sync-lint: warning: hot path root {spec!r} names no function of the project", err=True)
        if show_unresolved:
            click.echo(f"{len(hot.unresolved)} unresolved call(s) in {hot.hot_functions} hot function(s):", err=True)
            for item in sorted(hot.unresolved, key=lambda u: (u.path, u.line)):
                click.echo(f"  {item.path}:{item.line}: {item.text}  (in {item.function})", err=True)

    if add_noqa:
        from sync_lint.noqa import add_noqa_directives

        added, problems = add_noqa_directives(results)
        for problem in problems:
            click.echo(f"sync-lint: error: {problem}", err=True)
        if not quiet:
            click.echo(f"Added {added} noqa directive{'s' if added != 1 else ''}.", err=True)
        return EXIT_ERROR if problems or any(r.errors for r in results) else EXIT_CLEAN

    for result in results:
        for error in result.errors:
            if fmt in ("json", "json-lines") or fix_only:
                # The other formats carry file errors themselves; JSON keeps ruff's shape.
                rule = f" [rule {error.rule}]" if error.rule else ""
                click.echo(f"sync-lint: error: {error.path}: {error.message}{rule}", err=True)

    if fix_only:
        remaining = sum(len(r.diagnostics) for r in results)
        if not quiet:
            message = f"Fixed {fixed_count} error{'s' if fixed_count != 1 else ''}." if fixed_count else "No errors fixed."
            if remaining:
                message += f" ({remaining} left: run `sync-lint check` to see them.)"
            emit(message + "\n", output_file, err=report_to_stderr)
        if any(r.errors for r in results):
            return EXIT_ERROR
        return EXIT_FINDINGS if exit_non_zero_on_fix and fixed_count else EXIT_CLEAN

    from sync_lint.reporters import render, render_statistics

    human = fmt not in MACHINE_FORMATS
    color = human and not output_file and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    hot_summary = hot.lines([d for r in results for d in r.diagnostics]) if hot is not None and human else None
    text = render(fmt, results, plan.registry, statistics=statistics and human, color=color,
                  show_fixes_preview=True, unsafe_fixes=unsafe_fixes, quiet=quiet, hot_summary=hot_summary)
    emit(text, output_file, err=report_to_stderr)
    if statistics and not human:
        click.echo(render_statistics(results, plan.registry, unsafe_fixes=unsafe_fixes), err=True)

    if any(r.errors for r in results):
        return EXIT_ERROR
    if exit_non_zero_on_fix and fixed_count:
        return EXIT_FINDINGS
    if any(r.diagnostics for r in results) and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _stderr_is_a_terminal() -> bool:
    # Progress goes to stderr, so it never mixes with a report on stdout or in a file.
    return sys.stderr.isatty()


def watch(options: dict[str, object], *, poll: float = 0.5, max_runs: int | None = None) -> int:
    """`--watch`: check, then check again whenever a file under the paths changes."""
    options = dict(options, watch=False)
    paths = tuple(options.get("paths") or (".",))  # type: ignore[arg-type]
    if "-" in paths:
        raise api.UsageError("--watch cannot read stdin")
    env_runs = os.environ.get("SYNC_LINT_WATCH_RUNS")  # tests stop the loop after N runs
    if max_runs is None and env_runs:
        max_runs = int(env_runs)
    runs = 0
    code = EXIT_CLEAN
    last: dict[str, float] | None = None
    try:
        while True:
            state = _snapshot(paths, options)
            if state != last:
                if last is not None:
                    click.echo("\nFile change detected...", err=True)
                click.echo(f"[{time.strftime('%H:%M:%S')}] Checking...", err=True)
                try:
                    code = run_check(**options)  # type: ignore[arg-type]
                except api.UsageError as exc:
                    click.echo(f"sync-lint: error: {exc}", err=True)
                    code = EXIT_ERROR
                sys.stdout.flush()
                # The executable runs without automatic collection (`__main__.run_here`), and this loop
                # lives on: whatever a run left in reference cycles is freed before the next.
                gc.collect()
                runs += 1
                last = _snapshot(paths, options)
                if max_runs is not None and runs >= max_runs:
                    return code
            time.sleep(poll)
    except KeyboardInterrupt:
        return code


def _snapshot(paths: tuple[str, ...], options: dict[str, object]) -> dict[str, float]:
    """Modification times of the files a run would check, and of the configuration files above them."""
    plan = api.plan(paths, config=options.get("config") or None, isolated=bool(options.get("isolated")),  # type: ignore[arg-type]
                    project=None)
    state: dict[str, float] = {}
    found = api.discover_files(plan, list(paths))
    for path in [*found.files, *([str(plan.settings.config_path)] if plan.settings.config_path else [])]:
        try:
            state[path] = os.stat(path).st_mtime_ns
        except OSError:
            state[path] = -1
    return state


NO_SUCH_PATH = "no such file or directory"


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
    progress = _Progress(enabled=_stderr_is_a_terminal())
    with progress:
        count, files, errors = api.create_baseline(plan, paths, Path(baseline_file), jobs=jobs or plan.settings.jobs,
                                                   on_result=progress.advance, on_files=progress.expect)
    for error in errors:
        click.echo(f"sync-lint: error: {error.path}: {error.message}", err=True)
    click.echo(f"Recorded {count} finding(s) from {files} file(s) in {baseline_file}", err=True)
