"""`sync-lint verify` and `trace`: the runtime half. These import torch; the linter never does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sync_lint import api
from sync_lint.api import UsageError
from sync_lint.cli.app import EXIT_CLEAN, EXIT_FINDINGS, emit, main


def require_torch(command: str) -> None:
    """A usage error naming the missing torch, before anything imports it."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError(f"torch is not installed: `{command}` runs the fixes with torch "
                         "(`pip install torch`; the linter itself never needs it)")


def collect_garbage() -> None:
    """Python's garbage collector back on. A check runs without it (`__main__.run_here`), but the
    runtime commands run torch and the code under test in this process, whose reference cycles
    (CUDA tensors among them) must be freed as Python frees them."""
    import gc

    gc.enable()


@main.command()
@click.option("--rules", "rule_codes", multiple=True, help="Only cases of these rules (codes or prefixes).")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True, help="Random inputs per case.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False),
              help="Write PATH.json and PATH.md (e.g. docs/verification/h100-torch2.11).")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
              help="`cpu` checks numeric equivalence only (no timing): what CI without a GPU can do.")
@click.option("--cold/--no-cold", default=True, show_default=True,
              help="Also run each case once in a fresh process (cold allocators; a few seconds per case).")
def verify(rule_codes: tuple[str, ...], trials: int, seed: int, report: str | None, device: str, cold: bool) -> None:
    """Prove every fix on the GPU: the before code blocks, the fixed code does not, outputs are identical."""
    require_torch("sync-lint verify")
    collect_garbage()
    from sync_lint.runtime.cases import all_cases
    from sync_lint.runtime.cuda import cuda_available
    from sync_lint.runtime.verify import run_verification

    if device == "cuda" and not cuda_available():
        raise UsageError("no CUDA device: `sync-lint verify` needs a GPU to measure host blocking "
                        "(`--device cpu` checks numeric equivalence only)")
    selectors = tuple(part.strip() for value in rule_codes for part in value.split(",") if part.strip())
    cases = [c for c in all_cases() if not selectors or any(c.rule.startswith(s.upper()) for s in selectors)]
    if not cases:
        raise UsageError(f"no verification cases match {', '.join(selectors)}")

    def progress(result):  # type: ignore[no-untyped-def]
        state = "skip" if result.skipped else ("pass" if result.passed else "FAIL")
        click.echo(f"{state:4} {result.rule} {result.case}", err=True)

    outcome = run_verification(cases, device=device, trials=trials, seed=seed, cold=cold, on_result=progress)
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
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for column in ("rule", "case", "fix", "before blocks", "after blocks", "after ms median / worst",
                   "cold after ms", "pageable copies", "trials", "identical", "result"):
        table.add_column(column)
    for r in outcome.results:
        result = "skip" if r.skipped else ("pass" if r.passed else "FAIL")
        table.add_row(r.rule, r.case, r.applicability, yes(r.before_blocks), yes(r.after_blocks),
                      f"{ms(r.after.median)} / {ms(r.after.worst)}", ms(r.cold.after_ms if r.cold else None),
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
@click.option("--hot-path", "hot_path", multiple=True, metavar="MODULE:QUALNAME",
              help="A hot-path root on top of the configured `hot-paths`: blocking lines on its path are marked hot.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def trace(module: str | None, include: tuple[str, ...], exclude: tuple[str, ...], output_format: str,
          output_file: str | None, sleep_ms: float, config: str | None, argv: tuple[str, ...],
          hot_path: tuple[str, ...] = ()) -> None:
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
    require_torch("sync-lint trace")
    collect_garbage()
    from sync_lint.runtime import (
        NoCudaError,
        join_with_static,
        joined_to_json,
        render_full,
        trace_program,
    )

    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if module is None:
        if args and Path(args[0]).name.startswith("python"):
            args = args[1:]  # `trace -- python script.py`: we are the interpreter
        if not args:
            raise UsageError("nothing to trace: give a script (`sync-lint trace -- python script.py`) or `-m module`")
    try:
        report = trace_program(args, module=module, include=list(include),
                               exclude=list(exclude), sleep_ms=sleep_ms)
    except NoCudaError as exc:
        raise UsageError(str(exc)) from None
    static, hot = _static_findings(list(report.executions), config, hot_path)
    joined = join_with_static(report, static, hot)
    if output_format == "json":
        text = joined_to_json(joined) + "\n"
    else:
        text = render_full(joined, color=sys.stdout.isatty() and not output_file)
    emit(text, output_file)
    sys.exit(EXIT_CLEAN if report.exception is None else EXIT_FINDINGS)


def _static_findings(files: list[str], config: str | None = None, hot_paths: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """The static findings on the traced files, by (file, line); and which lines are on a hot path."""
    existing = [f for f in files if Path(f).is_file()]
    if not existing:
        return {}, None
    plan = api.plan(existing, config=config)
    report = api.run_files(plan, existing, jobs=1)
    hot = api.apply_hot_paths(plan, report, jobs=1, extra_roots=hot_paths, reuse=False)  # asks hotness_at
    found: dict[tuple[str, int], list[str]] = {}
    for result in report.results:
        for d in result.diagnostics:
            found.setdefault((d.path, d.start.row), []).append(d.code)

    def lookup(file: str, line: int):  # type: ignore[no-untyped-def]
        hotness = hot.hotness_at(file, line)
        return None if hotness is None else {"root": hotness.root, "chain": hotness.arrow()}

    return found, lookup if hot.roots else None
