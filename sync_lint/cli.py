"""The command line: `sync-lint check`, `fix`, `rules`, `explain`, `baseline`, `verify`, `trace`.

Exit codes follow ruff: 0 no findings, 1 findings, 2 usage, configuration or
internal error (`--exit-zero` turns 1 into 0).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import click

from sync_lint import __version__
from sync_lint.config import ConfigError, Settings, installed_torch_version, resolve_settings
from sync_lint.diagnostics import FileError, FileResult
from sync_lint.registry import RuleLoadError, all_rules
from sync_lint.rule import Rule
from sync_lint.selection import SelectionError, enabled_codes

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# The newest torch release the ground-truth measurements cover; the default target
# when torch is not installed.
NEWEST_MEASURED_TORCH = "2.11"
MACHINE_FORMATS = ("json", "json-lines", "github", "sarif", "junit")


class UserError(Exception):
    """A usage or configuration problem: print it and exit 2."""


def _fail(message: str) -> None:
    click.echo(f"sync-lint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _split(values: Sequence[str]) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@dataclass
class RunPlan:
    settings: Settings
    rules: list[type[Rule]]
    registry: dict[str, type[Rule]]


def plan_run(
    paths: Sequence[str],
    *,
    config: str | None = None,
    isolated: bool = False,
    select: Sequence[str] = (),
    extend_select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    strict: bool | None = None,
    target_torch_version: str | None = None,
) -> RunPlan:
    """Settings and the enabled rules for a run; raises UserError on bad input."""
    try:
        registry = all_rules()
    except RuleLoadError as exc:
        raise UserError(str(exc)) from None
    try:
        if isolated:
            settings = Settings(root=Path.cwd().resolve())
        else:
            anchors = [Path(p) for p in paths if p != "-" and Path(p).exists()]
            settings = resolve_settings(anchors, Path(config) if config else None)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    settings = settings.override(
        select=_split(select),
        ignore=(*settings.ignore, *(_split(ignore) or ())) if ignore else None,
        extend_select=(*settings.extend_select, *(_split(extend_select) or ())) if extend_select else None,
        strict=strict,
        target_torch_version=target_torch_version,
    )
    if settings.target_torch_version is None:
        settings = settings.override(target_torch_version=installed_torch_version() or NEWEST_MEASURED_TORCH)
    try:
        codes = enabled_codes(list(registry), settings.select, settings.extend_select, settings.ignore)
        # Validate per-file-ignores selectors up front: a typo must not pass silently.
        from sync_lint.selection import expand_selectors

        for _glob, listed in settings.per_file_ignores:
            expand_selectors(listed, registry)
    except SelectionError as exc:
        raise UserError(str(exc)) from None
    rules = [registry[c] for c in codes if registry[c].active_for_torch(settings.target_torch_version)]
    named = {s.strip().upper() for s in settings.select + settings.extend_select}
    for code in codes:
        rule = registry[code]
        if code in named and not rule.active_for_torch(settings.target_torch_version):
            # Asked for by name, yet off: say why rather than report a clean run.
            click.echo(f"sync-lint: note: {code} is off for torch {settings.target_torch_version}: PyTorch "
                       f"{rule.fixed_in_torch} removed the sync; use --target-torch-version to lint for an older "
                       "torch", err=True)
    return RunPlan(settings=settings, rules=rules, registry=registry)


# ==========================================================================================
# Group
# ==========================================================================================


class _Group(click.Group):
    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_ERROR)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_ERROR)
        except UserError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(EXIT_ERROR)
        except Exception as exc:  # an internal error is exit 2, never a findings exit
            import traceback

            click.echo("".join(traceback.format_exception(exc)), err=True)
            _fail(f"internal error: {type(exc).__name__}: {exc} (please report this)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sync-lint")
def main() -> None:
    """Find, fix and verify hidden GPU<->CPU synchronizations in PyTorch code."""


# ==========================================================================================
# check / fix
# ==========================================================================================


def _check_options(func: Callable) -> Callable:
    options = [
        click.argument("paths", nargs=-1, type=click.Path()),
        click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated): SL1, SL101, ALL."),
        click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top of the selection."),
        click.option("--ignore", multiple=True, help="Codes or prefixes to disable."),
        click.option("--output-format", type=click.Choice(["full", "concise", "json", "json-lines", "github", "sarif", "junit"]),
                     default=None, help="How to print findings (default: full)."),
        click.option("-o", "--output-file", type=click.Path(dir_okay=False), help="Write the report to this file."),
        click.option("--statistics", is_flag=True, help="Print the number of findings per rule."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings."),
        click.option("--config", type=click.Path(dir_okay=False), help="Use this configuration file."),
        click.option("--isolated", is_flag=True, help="Ignore all configuration files."),
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
    from sync_lint.discovery import discover
    from sync_lint.engine import PerFileIgnores, lint_paths, lint_source

    if not paths:
        paths = (".",)
    plan = plan_run(paths, config=config, isolated=isolated, select=select, extend_select=extend_select,
                    ignore=ignore, strict=strict, target_torch_version=target_torch_version)
    settings = plan.settings
    fmt = output_format or settings.output_format
    jobs = jobs or settings.jobs

    results: list[FileResult] = []
    stdin_used = "-" in paths
    if stdin_used:
        name = stdin_filename or "-"
        source = sys.stdin.read()
        ignores = PerFileIgnores(settings, plan.registry)
        results.append(lint_source(source, name, plan.rules, settings, ignored_codes=ignores.codes_for(name)))
    file_args = [p for p in paths if p != "-"]
    if file_args:
        found = discover(file_args, settings)
        for missing in found.missing:
            results.append(FileResult(missing, errors=[FileError(missing, "no such file or directory")]))
        progress = _Progress(enabled=not no_progress and fmt not in MACHINE_FORMATS and sys.stderr.isatty()
                             and not output_file, total=len(found.files))
        with progress:
            results.extend(lint_paths(found.files, plan.rules, settings, jobs=jobs, on_result=progress.advance))

    report_to_stderr = False
    if apply_fixes or show_diff:
        from sync_lint.fixer import FixMode, apply_fixes_to_results

        mode = FixMode(unsafe=unsafe_fixes, diff=show_diff)
        fix_report = apply_fixes_to_results(results, plan.rules, settings, mode, stdin_used=stdin_used,
                                            stdin_source=source if stdin_used else None)
        if show_diff:
            _emit(fix_report.diff_text, output_file)
            return EXIT_FINDINGS if fix_report.diff_text else EXIT_CLEAN
        if fix_report.stdin_output is not None:
            # ruff: fixing stdin prints the fixed source on stdout, the report on stderr.
            sys.stdout.write(fix_report.stdin_output)
            sys.stdout.flush()
            report_to_stderr = True
        if show_fixes and fix_report.summary:
            click.echo(fix_report.summary, err=True)
        results = fix_report.remaining

    if baseline:
        results = _apply_baseline(results, Path(baseline), show_stale)
    if diff_against:
        results = _apply_diff_against(results, diff_against)

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
    _emit(text, output_file, err=report_to_stderr)
    if statistics and not human:
        click.echo(render_statistics(results, plan.registry), err=True)

    has_errors = any(r.errors for r in results)
    has_findings = any(r.diagnostics for r in results)
    if has_errors:
        return EXIT_ERROR
    if has_findings and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _emit(text: str, output_file: str | None, err: bool = False) -> None:
    if output_file:
        try:
            Path(output_file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {output_file}: {exc.strerror or exc}") from None
    elif text:
        stream = sys.stderr if err else sys.stdout
        stream.write(text)
        stream.flush()


def _reader() -> Callable[[str], list[str]]:
    cache: dict[str, list[str]] = {}

    def read_lines(path: str) -> list[str]:
        if path not in cache:
            try:
                cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                cache[path] = []
        return cache[path]

    return read_lines


def _apply_baseline(results: list[FileResult], baseline_path: Path, show_stale: bool) -> list[FileResult]:
    from sync_lint.baseline import BaselineError, load_baseline

    try:
        baseline = load_baseline(baseline_path)
    except BaselineError as exc:
        raise UserError(str(exc)) from None
    diagnostics = [d for r in results for d in r.diagnostics]
    # Only entries for files this run checked can be stale; a partial run says nothing of the rest.
    outcome = baseline.filter(diagnostics, _reader(), checked_paths=[r.path for r in results])
    keep = {id(d) for d in outcome.new}
    for result in results:
        result.diagnostics = [d for d in result.diagnostics if id(d) in keep]
    if show_stale:
        for entry in outcome.stale:
            click.echo(f"stale baseline entry: {entry.file}:{entry.line}: {entry.code} {entry.message}", err=True)
    return results


def _apply_diff_against(results: list[FileResult], rev: str) -> list[FileResult]:
    from sync_lint.changed_lines import ChangedLinesError, changed_lines, filter_diagnostics

    try:
        changed = changed_lines(rev, Path.cwd())
    except ChangedLinesError as exc:
        raise UserError(str(exc)) from None
    for result in results:
        result.diagnostics = filter_diagnostics(result.diagnostics, changed)
    return results


class _Progress:
    """A rich progress bar that appears only once a run has taken over a second."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and total > 0
        self.total = total
        self.started = time.monotonic()
        self.done = 0
        self._bar = None
        self._task = None

    def __enter__(self) -> "_Progress":
        return self

    def advance(self, _result: FileResult) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self.started > 1.0:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("check", total=self.total, completed=self.done)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# ==========================================================================================
# baseline
# ==========================================================================================


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
    from sync_lint.baseline import BaselineError, create_baseline
    from sync_lint.discovery import discover
    from sync_lint.engine import lint_paths

    paths = paths or (".",)
    plan = plan_run(paths, config=config, select=select, ignore=ignore)
    found = discover(list(paths), plan.settings)
    for missing in found.missing:
        raise UserError(f"{missing}: no such file or directory")
    results = lint_paths(found.files, plan.rules, plan.settings, jobs=jobs or plan.settings.jobs)
    for result in results:
        for error in result.errors:
            click.echo(f"sync-lint: error: {error.path}: {error.message}", err=True)
    diagnostics = [d for r in results for d in r.diagnostics]
    try:
        count = create_baseline(diagnostics, Path(baseline_file), _reader())
    except BaselineError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"Recorded {count} finding(s) from {len(found.files)} file(s) in {baseline_file}", err=True)


# ==========================================================================================
# verify / trace (runtime: these import torch, the linter never does)
# ==========================================================================================


@main.command()
@click.option("--rules", "rule_codes", multiple=True, help="Only cases of these rules (codes or prefixes).")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True, help="Random inputs per case.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False),
              help="Write PATH.json and PATH.md (e.g. docs/verification/h100-torch2.11).")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
              help="`cpu` checks numeric equivalence only (no timing): what CI without a GPU can do.")
def verify(rule_codes: tuple[str, ...], trials: int, seed: int, report: str | None, device: str) -> None:
    """Prove every fix on the GPU: the before code blocks, the fixed code does not, outputs are identical."""
    from sync_lint.runtime.cases import all_cases
    from sync_lint.runtime.cuda import cuda_available
    from sync_lint.runtime.verify import run_verification

    if device == "cuda" and not cuda_available():
        raise UserError("no CUDA device: `sync-lint verify` needs a GPU to measure host blocking "
                        "(`--device cpu` checks numeric equivalence only)")
    selectors = _split(rule_codes) or ()
    cases = [c for c in all_cases() if not selectors or any(c.rule.startswith(s.upper()) for s in selectors)]
    if not cases:
        raise UserError(f"no verification cases match {', '.join(selectors)}")

    def progress(result):  # type: ignore[no-untyped-def]
        state = "skip" if result.skipped else ("pass" if result.passed else "FAIL")
        click.echo(f"{state:4} {result.rule} {result.case}", err=True)

    outcome = run_verification(cases, device=device, trials=trials, seed=seed, on_result=progress)
    _print_verification_table(outcome)
    if report:
        base = Path(report)
        base = base.with_suffix("") if base.suffix in (".json", ".md") else base
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".json").write_text(json.dumps(outcome.to_json(), indent=2) + "\n", encoding="utf-8")
        base.with_suffix(".md").write_text(outcome.to_markdown(), encoding="utf-8")
        click.echo(f"wrote {base.with_suffix('.json')} and {base.with_suffix('.md')}", err=True)
    sys.exit(EXIT_CLEAN if outcome.passed else EXIT_FINDINGS)


def _print_verification_table(outcome) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    def yes(value: object) -> str:
        return "-" if value is None else ("yes" if value else "no")

    table = Table(title=f"fix verification on {outcome.gpu}, torch {outcome.torch}", title_justify="left")
    for column in ("rule", "case", "fix", "before blocks", "after blocks", "pageable copies", "trials",
                   "identical", "result"):
        table.add_column(column)
    for r in outcome.results:
        result = "skip" if r.skipped else ("pass" if r.passed else "FAIL")
        table.add_row(r.rule, r.case, r.applicability, yes(r.before_blocks), yes(r.after_blocks),
                      "-" if r.after_pageable_copies is None else str(r.after_pageable_copies), str(r.trials),
                      yes(r.identical) if not r.skipped else "-", result)
    Console(highlight=False).print(table)
    for r in outcome.results:
        for failure in r.failures:
            click.echo(f"{r.rule} {r.case}: {failure}", err=True)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-m", "module", help="Run a library module as a script (like `python -m`).")
@click.option("--include", multiple=True, help="Glob of files to trace (default: all files outside torch, "
              "site-packages and the standard library).")
@click.option("--exclude", multiple=True, help="Glob of files not to trace.")
@click.option("--output-format", type=click.Choice(["full", "json"]), default="full", show_default=True)
@click.option("-o", "--output-file", type=click.Path(dir_okay=False))
@click.option("--sleep-ms", type=float, default=5.0, show_default=True,
              help="GPU work queued before each traced line; a line that waits for half of it blocked.")
@click.option("--config", type=click.Path(dir_okay=False), help="Configuration for the static findings joined in.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def trace(module: str | None, include: tuple[str, ...], exclude: tuple[str, ...], output_format: str,
          output_file: str | None, sleep_ms: float, config: str | None, argv: tuple[str, ...]) -> None:
    """Run a program and report each line that made the host wait for the GPU.

    \b
        sync-lint trace -- python train.py --steps 3
        sync-lint trace -m mypkg.bench

    Every executed line of your files runs against a busy GPU and is timed, so the
    overhead is high by design (a sync per line): trace a few steps, not a long run.
    Each blocking line is joined with the static findings on it: confirmed by both,
    runtime-only (a sync the static rules missed), static-only (not executed, or a
    false alarm).
    """
    from sync_lint.runtime import NoCudaError, join_with_static, joined_to_json, render_full, trace_program

    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if module is None:
        if args and Path(args[0]).name.startswith("python"):
            args = args[1:]  # `trace -- python script.py`: we are the interpreter
        if not args:
            raise UserError("nothing to trace: give a script (`sync-lint trace -- python script.py`) or `-m module`")
    try:
        report = trace_program(args if module is None else args, module=module, include=list(include),
                               exclude=list(exclude), sleep_ms=sleep_ms)
    except NoCudaError as exc:
        raise UserError(str(exc)) from None
    static = _static_findings(list(report.executions), config)
    joined = join_with_static(report, static)
    if output_format == "json":
        text = joined_to_json(joined) + "\n"
    else:
        text = render_full(joined, color=sys.stdout.isatty() and not output_file)
    _emit(text, output_file)
    sys.exit(EXIT_CLEAN if report.exception is None else EXIT_FINDINGS)


def _static_findings(files: list[str], config: str | None = None) -> dict[tuple[str, int], list[str]]:
    """The static findings on the traced files, by (file, line)."""
    from sync_lint.engine import lint_paths

    existing = [f for f in files if Path(f).is_file()]
    if not existing:
        return {}
    plan = plan_run(existing, config=config)
    found: dict[tuple[str, int], list[str]] = {}
    for result in lint_paths(existing, plan.rules, plan.settings, jobs=1):
        for d in result.diagnostics:
            found.setdefault((d.path, d.start.row), []).append(d.code)
    return found


# ==========================================================================================
# rules / explain
# ==========================================================================================


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--target-torch-version", help="Show which rules are active for this torch version.")
def rules_command(output_format: str, target_torch_version: str | None) -> None:
    """List the rules: code, name, fix availability."""
    try:
        registry = all_rules()
    except RuleLoadError as exc:
        raise UserError(str(exc)) from None
    target = target_torch_version or installed_torch_version() or NEWEST_MEASURED_TORCH
    rows = [
        {
            "code": r.code,
            "name": r.name,
            "summary": r.summary,
            "fix": r.fix_availability,
            "fixed_in_torch": r.fixed_in_torch,
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
        raise UserError(str(exc)) from None
    rule = registry.get(code.upper())
    if rule is None:
        raise UserError(f"unknown rule `{code}` (see `sync-lint rules`)")
    click.echo(rule.documentation())


if __name__ == "__main__":  # pragma: no cover
    main()
