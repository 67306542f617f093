"""The library API: what the command line, the pre-commit hook, the benchmarks and an
editor server call. Nothing here prints.

    plan = sync_lint.api.plan(["src/"])                  # settings + enabled rules
    report = sync_lint.api.run(plan, ["src/"])           # check
    report = sync_lint.api.run(plan, ["src/"], fix=FixMode(unsafe=True))
    result = sync_lint.api.check_source(plan, text, "a.py")

Each file is read and decoded once per run: a worker reads it, lints it and, in
fix mode, fixes it from the same text and writes it back atomically.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from sync_lint.config import (
    NEWEST_MEASURED_TORCH,  # noqa: F401  (re-exported: the API's default target)
    ConfigError,
    Settings,
    apply_overrides,
    project_torch_target,
    parse_override,
    resolve_settings,
)
from sync_lint.diagnostics import FileError, FileResult
from sync_lint.ranking import rank_results
from sync_lint.errors import UsageError
from sync_lint.selection import (
    PerFileIgnores,
    SelectionError,
    enabled_codes,
    expand_selectors,
)

if TYPE_CHECKING:
    from sync_lint.catalogue import RuleInfo
    from sync_lint.rulekit.rule import Rule
    from sync_lint.hotpaths import HotReport
    from sync_lint.project.background import PendingUpdate
    from sync_lint.project.build import OpenProject, Project
    from sync_lint.project.hot import CallGraph



@dataclass(frozen=True)
class ProjectOptions:
    """How a run uses the project index (see `sync_lint.project`)."""

    cache_dir: Path | None = None  # None: `.sync-lint-cache/` at each project root
    temporary: bool = False  # `--no-cache`: build the index, keep nothing


@dataclass(frozen=True)
class Plan:
    """The settings of a run and the rules it runs.

    The rules may be the catalogue's descriptions of them (`sync_lint.catalogue.RuleInfo`: code, name,
    documentation, torch gates) rather than the classes, which import the parser: a run whose results
    all come from the cache needs no more. `loaded()` is the same plan with the classes, which
    whatever checks or fixes a text asks for first."""

    settings: Settings
    rules: "tuple[type[Rule] | RuleInfo, ...]"
    registry: "dict[str, type[Rule] | RuleInfo]"
    # Things worth telling the user before the run (a named rule that is off, ...).
    notes: tuple[str, ...] = ()
    # None: every file is checked on its own (`--isolated`, and library callers that do not ask).
    project: ProjectOptions | None = None

    def loaded(self) -> "Plan":
        """This plan with the rule classes themselves."""
        from sync_lint.catalogue import RuleInfo

        if not any(isinstance(rule, RuleInfo) for rule in self.registry.values()):
            return self
        classes = _rule_classes()
        return Plan(self.settings, tuple(classes[rule.code] for rule in self.rules), classes, self.notes,
                    self.project)


def _rule_classes() -> "dict[str, type[Rule]]":
    from sync_lint.registry import RuleLoadError, all_rules

    try:
        return all_rules()
    except RuleLoadError as exc:
        raise UsageError(str(exc)) from None


def rule_registry() -> "dict[str, type[Rule] | RuleInfo]":
    """Every rule by code: the catalogue's descriptions when it stands for the installed rules and
    they are not loaded in this process already, else the classes."""
    import sys

    from sync_lint.catalogue import builtin_catalogue

    if "sync_lint.registry" not in sys.modules:
        known = builtin_catalogue()
        if known is not None:
            return known
    return _rule_classes()


@dataclass(frozen=True)
class FixMode:
    unsafe: bool = False
    diff: bool = False  # compute the fixes, write nothing


@dataclass
class Report:
    results: list[FileResult]
    # Fix mode only:
    diff_text: str = ""
    fixed: dict[str, Counter] = field(default_factory=dict)  # path -> fixes applied per code
    # The fixed (or unchanged) text of a source given as text (stdin), for the caller to print.
    source_output: str | None = None
    # Each checked file's project (for the hot-path pass), and what that pass found.
    projects: dict = field(default_factory=dict, repr=False)
    hot: "HotReport | None" = None

    @property
    def changed_files(self) -> list[str]:
        return [path for path, counts in self.fixed.items() if counts]


def _split(values: Sequence[str]) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def plan(
    paths: Sequence[str] = (),
    *,
    config: str | Sequence[str] | None = None,
    isolated: bool = False,
    select: Sequence[str] = (),
    extend_select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    strict: bool | None = None,
    target_torch_version: str | None = None,
    project: ProjectOptions | None = ProjectOptions(),
    force_exclude: bool = False,
) -> Plan:
    """Settings (from the configuration found for `paths`, then the overrides) and the enabled rules.

    `config`: a configuration file, or `KEY = VALUE` overrides (ruff's `--config`), or a list of both
    (at most one file).

    `project`: how to use the project index; `isolated` turns it off along with the
    configuration files. Raises UsageError on bad input.
    """
    registry = rule_registry()
    config_file, overrides = split_config_arguments(config)
    try:
        if isolated:
            settings = Settings(root=Path.cwd().resolve())
        else:
            anchors = [Path(p) for p in paths if p != "-" and Path(p).exists()]
            settings = resolve_settings(anchors, Path(config_file) if config_file else None)
        settings = apply_overrides(settings, [parse_override(text) for text in overrides])
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if force_exclude:
        settings = settings.override(force_exclude=True)
    settings = settings.override(
        select=_split(select),
        ignore=(*settings.ignore, *(_split(ignore) or ())) if ignore else None,
        extend_select=(*settings.extend_select, *(_split(extend_select) or ())) if extend_select else None,
        strict=strict,
        target_torch_version=target_torch_version,
    )
    if target_torch_version is not None:
        settings = settings.override(target_torch_source="--target-torch-version")
    if settings.target_torch_version is None:
        settings = project_torch_target(settings)
    try:
        codes = enabled_codes(list(registry), settings.select, settings.extend_select, settings.ignore)
        # Validate per-file-ignores selectors up front: a typo must not pass silently.
        for _glob, listed in settings.per_file_ignores:
            expand_selectors(listed, registry)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    target = settings.target_torch_version
    rules = tuple(registry[c] for c in codes if registry[c].active_for_torch(target))
    named = {s.strip().upper() for s in settings.select + settings.extend_select}
    notes = tuple(note for code in codes for note in _version_notes(registry[code], target, code in named))
    return Plan(settings=settings, rules=rules, registry=registry, notes=notes,
                project=None if isolated else project)


def split_config_arguments(config: str | Sequence[str] | None) -> tuple[str | None, list[str]]:
    """(the configuration file, the `KEY=VALUE` overrides) among `--config` arguments."""
    if config is None:
        return None, []
    values = [config] if isinstance(config, str) else list(config)
    files = [v for v in values if Path(v).is_file() or "=" not in v]
    overrides = [v for v in values if v not in files]
    if len(files) > 1:
        raise UsageError("--config: at most one configuration file (the others may be KEY=VALUE overrides)")
    return (files[0] if files else None), overrides


def version_notes(rules: Sequence[type[Rule]], target: str | None) -> list[str]:
    """One line per gate whose evidence `target` is beyond: which way it went, and why."""
    return [note for rule in rules for note in rule.torch_notes(target)]


def _version_notes(rule: type[Rule], target: str | None, named: bool) -> list[str]:
    notes = rule.torch_notes(target)
    if not notes and named and not rule.active_for_torch(target):
        # Asked for by name, yet off: say why rather than report a clean run.
        notes = [f"{rule.code} is off for torch {target}: PyTorch {rule.fixed_in_torch} removed the sync; "
                 "use --target-torch-version to lint for an older torch"]
    return notes


# ==========================================================================================
# One file, in whichever process runs it
# ==========================================================================================


@dataclass
class _Job:
    rules: "tuple[type[Rule] | RuleInfo, ...]"  # the catalogue's descriptions until a file needs the classes
    settings: Settings
    ignores: PerFileIgnores
    fix: FixMode | None
    projects: dict[str, "Project"]  # file path -> its project (absent: the file is checked on its own)
    opened: dict[Path, "OpenProject"] = field(default_factory=dict)
    result_settings: str = ""
    graphs: dict[Path, "CallGraph"] = field(default_factory=dict)  # project root -> its CallGraph in this process

    def rule_classes(self) -> "tuple[type[Rule], ...]":
        """The rules as classes, imported (with the parser) when a file first needs them."""
        from sync_lint.catalogue import RuleInfo

        if any(isinstance(rule, RuleInfo) for rule in self.rules):
            classes = _rule_classes()
            self.rules = tuple(classes[rule.code] for rule in self.rules)
        return self.rules  # type: ignore[return-value]

    def needs_no_parser(self, text: str, path: str, ignored: frozenset[str],
                        view) -> bool:  # type: ignore[no-untyped-def]
        """Whether the rules are still the catalogue's and none could report something in this text
        (`engine/prefilter.py`): then the check is empty without importing the parser. Once the classes
        are imported (a larger run), `lint_source` makes the same decision itself, once."""
        from sync_lint.catalogue import RuleInfo
        from sync_lint.engine.prefilter import rules_to_run

        if not any(isinstance(rule, RuleInfo) for rule in self.rules):
            return False
        return not rules_to_run(text, path, self.rules, self.settings, ignored_codes=ignored,
                                in_project=view is not None, root=view.root if view is not None else None)

    def open_project(self, path: str) -> "OpenProject | None":
        """The file's project, opened once per process."""
        project = self.projects.get(path)
        if project is None:
            return None
        opened = self.opened.get(project.root)
        if opened is None:
            opened = self.opened[project.root] = project.open(self.settings)
        return opened

    def project_view(self, path: str, text: str | None = None):  # type: ignore[no-untyped-def]
        """The file's window onto its project's index; `text`: check this text instead of the file."""
        opened = self.open_project(path)
        if opened is None:
            return None
        from sync_lint.project.build import summarize_text
        from sync_lint.project.roots import module_name
        from sync_lint.project.view import ProjectView

        project = opened.project
        summary = opened.index.summary(module_name(Path(path), project.root)[0]) if text is None else None
        if summary is None:
            summary = summarize_text(project, path, text if text is not None else "")
            opened.use_text(summary)
        return ProjectView(opened.inference, summary)  # type: ignore[arg-type]

    def resolve_edges(self, path: str, opened: "OpenProject") -> None:
        """Resolve the call edges of the file's functions here, into the cache, while the facts they
        read are warm in this process. The hot-path pass reads the edges of every function (SL601 off
        hot paths): resolving them in the parent after the check, one core, made the pass 45.7 s of a
        cold vLLM run; read from what the workers resolved, 7.9 s."""
        if self.fix is not None or not opened.writable or not any(r.code == "SL601" for r in self.rules):
            return
        from sync_lint.project.hot import CallGraph, EdgeCache

        graph = self.graphs.get(opened.project.root)
        if graph is None:
            graph = self.graphs[opened.project.root] = CallGraph(opened.index, opened.inference, EdgeCache(opened))
        module = opened.project.modules.get(os.path.abspath(path))
        summary = opened.index.summary(module) if module is not None else None
        if summary is None:
            return
        graph.prefetch([summary.qualified(local) for local in summary.functions])
        for local in summary.functions:
            graph.edges(summary.qualified(local))

    def save_edges(self) -> None:
        for graph in self.graphs.values():
            graph.cache.save()

    def result_key(self, path: str) -> str | None:
        """What a cached result of the file must match: its content and the run's settings and rules."""
        project = self.projects.get(path)
        sha = project.shas.get(os.path.realpath(path)) if project is not None else None
        if sha is None or self.fix is not None:
            return None
        if not self.result_settings:
            self.result_settings = result_settings(self.settings, self.rules)
        # The path as given is part of the key: findings carry it.
        return f"{sha}:{self.result_settings}:{path}"


def rule_ids(rules: "Sequence[type[Rule] | RuleInfo]") -> list[str]:
    """The rules a run ran, as `code:module.Class` (a class or the catalogue's description of one)."""
    from sync_lint.catalogue import rule_identity

    return sorted(f"{r.code}:{rule_identity(r)}" for r in rules)


def result_settings(settings: Settings, rules: "Sequence[type[Rule] | RuleInfo]") -> str:
    """A digest of everything besides the file that decides its findings."""
    import hashlib
    from dataclasses import replace as replace_fields

    from sync_lint.catalogue import rule_identity
    from sync_lint.fingerprint import rule_pack_digest

    # Hot-path settings decide only what is added after the run (sync_lint/hotpaths.py).
    relevant = replace_fields(settings, output_format="", jobs=None, hot_paths=(), hot_path_defaults=())
    # A third-party rule's findings also depend on its pack's code, which can change under the
    # same rule names (an edit, an upgrade): its files' contents are part of the key.
    packs = rule_pack_digest() if any(not rule_identity(r).startswith("sync_lint.") for r in rules) else ""
    # A project rule (SL601) is reported after the run, from the call graph: a file's result is the
    # same with it or without, and the hot-path pass checks more files without it. Keyed with it, a
    # check of one file of vLLM after `check .` checked its callers again (10 s, 0.8 s since).
    text = repr((relevant, rule_ids([r for r in rules if not r.project_rule]), packs))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_JOB: list[_Job] = []


def _opened_here(project: "Project", settings: Settings) -> "OpenProject | None":
    """The project as the check just run in this process opened it (one file, or `--jobs 1`), for the
    hot-path pass to go on with: its index, the summaries it loaded and the facts it solved. None
    where the check ran in workers, opened another update of the project, used other settings, or
    checked a text that is not the file on disk (then nothing it solves may be stored)."""
    if not _JOB or _JOB[0].settings != settings:
        return None
    opened = _JOB[0].opened.get(project.root)
    if opened is None or opened.project is not project or not opened.writable:
        return None
    return opened


def _start_job(rules: "tuple[type[Rule] | RuleInfo, ...]", known_codes: tuple[str, ...], settings: Settings,
               fix: FixMode | None, projects: dict[str, "Project"]) -> None:
    import multiprocessing
    from multiprocessing import util

    _JOB[:] = [_Job(rules, settings, PerFileIgnores(settings, known_codes), fix, projects)]
    if multiprocessing.parent_process() is not None:
        # A worker of the pool saves once more as it ends (the pool's shutdown waits for that),
        # so that after a batch it need only save when `SAVE_EVERY_S` has passed.
        util.Finalize(None, _save_job, kwargs={"now": True}, exitpriority=10)


def _save_job(now: bool = False) -> None:
    """Save what this process's files solved: at the end of the run, and in a pool's worker after
    a batch once `SAVE_EVERY_S` has passed since it last saved. A cold run's workers saved after
    every batch, about once a second each: each save's transaction rewrites every page of the
    facts' tables its rows fall on (their keys are hashes), and the commits cost each worker of a
    cold vLLM 0.33 check about 7.5 s. `now`: whether or not it is due."""
    import multiprocessing

    if not _JOB:
        return
    job = _JOB[0]
    in_worker = multiprocessing.parent_process() is not None
    if in_worker and not now and not any(opened.save_due() for opened in job.opened.values()):
        return
    for opened in job.opened.values():
        opened.flush()
    job.save_edges()  # after the facts: edges stored before the facts they read would outlive them


def _process_file(path: str) -> FileResult:
    from sync_lint.engine.stack import call_with_deep_stack

    return call_with_deep_stack(_check_file, path)


def _check_file(path: str) -> FileResult:
    from sync_lint.source import SourceError, read_source

    job = _JOB[0]
    try:
        original = read_source(path)
    except SourceError as exc:
        return FileResult(path, errors=[FileError(path, str(exc))])
    if path.endswith(".ipynb"):
        return _check_notebook(path, original.text, job)
    ignored = job.ignores.codes_for(path)
    opened = job.open_project(path)
    key = job.result_key(path)
    if opened is not None:
        opened.index.reads.begin()  # what this file's findings depend on
    try:
        view = job.project_view(path)
        if job.fix is None and job.needs_no_parser(original.text, path, ignored, view):
            result = FileResult(path)  # what `lint_source` gives it, without importing the parser
        else:
            from sync_lint.engine.lint import lint_source

            result = lint_source(original.text, path, job.rule_classes(), job.settings, ignored_codes=ignored,
                                 project=view)
    except Exception as exc:  # an engine bug on one file must not end the run
        return FileResult(path, errors=[FileError(path, f"internal error: {type(exc).__name__}: {exc}")])
    finally:
        deps = opened.index.reads.end() if opened is not None else frozenset()
    if opened is not None:
        from sync_lint.project.store import content_hash

        # Only a result of the file as indexed is kept (`key` names its content).
        indexed = key is not None and key.startswith(content_hash(original.data))
        if indexed:
            job.resolve_edges(path, opened)  # before `save_later`, which collects the facts they solved
        opened.save_later(str(Path(path).resolve()), key if indexed else None, result, deps)
    if job.fix is None:
        return result
    return _fix_file(original, result, job, ignored, view)


def _check_notebook(path: str, data: str, job: _Job) -> FileResult:
    """A notebook's code cells, linted as one module; findings carry their cell (never fixed)."""
    from sync_lint.engine.lint import lint_source
    from sync_lint.notebook import NotebookError, map_diagnostic, parse_notebook

    try:
        notebook = parse_notebook(data)
    except NotebookError as exc:
        return FileResult(path, errors=[FileError(path, str(exc))])
    try:
        view = job.project_view(path, notebook.text)
        result = lint_source(notebook.text, path, job.rule_classes(), job.settings,
                             ignored_codes=job.ignores.codes_for(path),
                             project=view)
    except Exception as exc:  # an engine bug on one file must not end the run
        return FileResult(path, errors=[FileError(path, f"internal error: {type(exc).__name__}: {exc}")])
    result.diagnostics = [map_diagnostic(d, notebook) for d in result.diagnostics]
    result.diagnostics.sort(key=lambda d: d.sort_key)
    return result


def _fix_file(original, result: FileResult, job: _Job, ignored: frozenset[str], view) -> FileResult:  # type: ignore[no-untyped-def]
    from sync_lint.fix import fix_source, is_applicable, unified_diff
    from sync_lint.source import write_source

    assert job.fix is not None
    if not any(is_applicable(d, job.fix.unsafe) for d in result.diagnostics):
        return result
    path = result.path
    try:
        outcome = fix_source(original.text, path, job.rule_classes(), job.settings, unsafe=job.fix.unsafe,
                             ignored_codes=ignored, first=result, project=view)
    except Exception as exc:  # a fixer bug on one file must not end the run
        result.errors.append(FileError(path, f"internal error while fixing: {type(exc).__name__}: {exc}"))
        return result
    fixed = outcome.remaining
    fixed.errors.extend(outcome.errors)
    if not outcome.changed:
        return fixed
    if job.fix.diff:
        fixed.diff = unified_diff(original.text, outcome.new_source, path)
    else:
        problem = write_source(original, outcome.new_source)
        if problem is not None:
            result.errors.extend(outcome.errors)
            result.errors.append(FileError(path, problem))
            return result
    fixed.fixes_applied = dict(outcome.applied)
    return fixed


# ==========================================================================================
# Runs
# ==========================================================================================


def run(
    plan: Plan,
    paths: Sequence[str],
    *,
    fix: FixMode | None = None,
    jobs: int | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_files: Callable[[int], None] | None = None,
    hot_paths: bool = True,
) -> Report:
    """Check (and with `fix`, fix) the files under `paths`; a missing path is a FileError.

    `on_files(n)` is told how many files were found before any is checked;
    `on_result` is called as each file is done. `hot_paths`: mark hot findings and add
    SL601 (`apply_hot_paths`); a caller applying a baseline first passes False and calls
    `apply_hot_paths` itself.
    """
    from sync_lint.discovery import discover

    found = discover(list(paths), plan.settings)
    missing = [FileResult(path, errors=[FileError(path, "no such file or directory")]) for path in found.missing]
    if on_files is not None:
        on_files(len(found.files))
    report = run_files(plan, found.files, fix=fix, jobs=jobs, on_result=on_result,
                       hot_paths_after=() if hot_paths and fix is None else None)
    if hot_paths and fix is None:
        apply_hot_paths(plan, report, jobs=jobs)
    report.results[:0] = missing
    return report


def apply_hot_paths(plan: Plan, report: Report, *, baseline: Path | None = None, jobs: int | None = None,
                    extra_roots: Sequence[str] = (), reuse: bool = True, list_unresolved: bool = False) -> "HotReport":
    """Mark the findings on hot paths and add the SL601 findings (see `sync_lint/hotpaths.py`).

    `baseline`: SL601 findings it records are dropped, and propagation stops at them. `reuse`: take
    the cached answer of an identical earlier run; False keeps the call graph in the report, for
    `HotReport.hotness_at`. `list_unresolved`: list the calls hot functions make that the graph
    cannot resolve (`--show-unresolved`); otherwise they are only counted."""
    import hashlib

    from sync_lint.hotpaths import TRANSITIVE_CODE, analyse

    keep = None
    answer = repr(rule_ids(plan.rules))
    if baseline is not None:
        try:
            answer += hashlib.sha256(baseline.read_bytes()).hexdigest()
        except OSError:
            pass  # load_baseline says what is wrong with it
        from sync_lint.baseline import BaselineError, load_baseline

        try:
            loaded = load_baseline(baseline)
        except BaselineError as exc:
            raise UsageError(str(exc)) from None
        reader = read_lines_cached()

        def keep(diagnostic):  # type: ignore[no-untyped-def]
            return bool(loaded.filter([diagnostic], reader, checked_paths=[]).new)

    ignores = PerFileIgnores(plan.settings, plan.registry)
    selected = any(rule.code == TRANSITIVE_CODE for rule in plan.rules)

    def lint_more(paths: list[str]) -> list[FileResult]:
        more_plan = Plan(plan.settings, tuple(r for r in plan.rules if r.code != TRANSITIVE_CODE), plan.registry,
                         project=plan.project).loaded()
        # While the run's merge goes on in a thread, these files are checked in this process: a
        # pool would have to wait for the merge before it forks (on transformers 5.23, a 23 s merge
        # and then two workers for 13 s each), and one core is busy with the merge anyway. Inside
        # the pass, which waits for the merges at its end.
        more_jobs = 1 if any(merge.is_alive() for merge in _MERGING) else jobs
        # Spelled as a directory walk from here spells them: a result is cached under the path as
        # given (its findings carry it), and `check .` stored them so.
        from sync_lint.discovery import walked_path

        return run_files(more_plan, [walked_path(path) for path in paths], jobs=more_jobs, updated=report.projects,
                         hot_paths_after=()).results

    results = [r for r in report.results if not r.errors or r.diagnostics]
    hot = analyse(results, plan.settings, report.projects, selected=selected, ignored=ignores.codes_for, keep=keep,
                  lint_more=lint_more if plan.project is not None else None, extra_roots=extra_roots,
                  reuse=answer if reuse else None, list_unresolved=list_unresolved,
                  opened_for=lambda project: _opened_here(project, plan.settings))
    report.hot = hot
    rank_results(results, plan.settings.root)  # the SL601 findings the pass added are in test files too
    wait_for_merges()
    return hot


def run_files(
    plan: Plan,
    files: Sequence[str],
    *,
    fix: FixMode | None = None,
    jobs: int | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    updated: "dict[str, Project] | None" = None,
    hot_paths_after: Sequence[str] | None = None,
) -> Report:
    """Check (and with `fix`, fix) exactly these files, in parallel when it pays.

    `updated`: projects this run has brought up to date already, by file (the hot-path pass checks
    more files of the projects the run checked): a file under one of their roots uses it as it is.
    `hot_paths_after`: the caller runs `apply_hot_paths` next, with these extra roots; the call
    edges it needs are read while the index is brought up to date, where that is done alongside;
    the merge of the dependency rows that ends the run is then left running alongside that pass
    (`apply_hot_paths` waits for it)."""
    loaded: list[Plan] = []

    def load_and_parse(edited: list[str]) -> None:
        edited = [path for path in edited if _may_report(plan, path)]
        if not edited:  # nothing to parse: the check of these files needs no parser
            return
        from sync_lint.engine.lint import parse_file_ahead

        loaded.append(plan.loaded())
        for path in edited:
            parse_file_ahead(path, loaded[0].rules, plan.settings)

    try:
        projects = projects_of(plan, files, jobs=jobs, updated=(updated or {}).values(), meanwhile=load_and_parse,
                               read_ahead=hot_paths_after)
        cached = _cached_results(plan, files, projects) if fix is None else {}
        if on_result is not None:
            for path in files:
                if path in cached:
                    on_result(cached[path])
        todo = [path for path in files if path not in cached]
        fresh: list[FileResult] = []
        if todo:
            # Only a file to check needs the rules and the workers (they import the parser).
            from sync_lint.engine.parallel import run_per_file

            # A few files are checked here with the catalogue's rules, and import the classes (and the
            # parser) only if one of them may report something; a larger run imports them before it
            # forks its workers, which then share them.
            if loaded:
                plan = loaded[0]
            elif fix is not None or len(todo) > _PARSE_WHILE_UPDATING:
                plan = plan.loaded()
            initargs = (plan.rules, tuple(plan.registry), plan.settings, fix, projects)
            # No thread of this process may be inside SQLite while it forks the workers.
            fresh = run_per_file(todo, _process_file, initializer=_start_job, initargs=initargs,
                                 jobs=jobs or plan.settings.jobs, on_result=on_result, after_batch=_save_job,
                                 before_pool=wait_for_merges)
    finally:
        if loaded:
            from sync_lint.engine.parse import forget_parsed_ahead

            forget_parsed_ahead()
    if todo and plan.project is not None and not plan.project.temporary:
        if hot_paths_after is not None:
            _merge_reads_alongside(projects)
        else:
            _merge_reads(projects)
    by_path = dict(zip(todo, fresh))
    results = [cached[path] if path in cached else by_path[path] for path in files]
    rank_results(results, plan.settings.root)
    report = _report(results)
    report.projects = projects
    return report


def _may_report(plan: Plan, path: str) -> bool:
    """Whether a rule of the plan could report something in the file, from its text (`rules_to_run`,
    before its project's index says which codes the file ignores: a file it names may still have
    nothing to report)."""
    from sync_lint.engine.prefilter import rules_to_run
    from sync_lint.source import SourceError, read_source

    if path.endswith(".ipynb"):
        return True
    try:
        text = read_source(path).text
    except SourceError:
        return False
    return bool(rules_to_run(text, path, plan.rules, plan.settings, in_project=plan.project is not None))


# Merges of dependency rows running alongside the hot-path pass (`_merge_reads_alongside`).
_MERGING: list[threading.Thread] = []


def _merge_reads_alongside(projects: dict[str, "Project"]) -> None:
    """`_merge_reads` in a thread, while this one goes on with the hot-path pass: the merge is one
    SQL statement, which runs with the GIL released, and it was the largest part of the one-core
    tail of a cold check (7 s of vLLM 0.33's 12). The pass only reads the rows pending or merged
    through its own connections, and its few writes wait for the merge's transaction."""
    merge = threading.Thread(target=_merge_reads, args=(projects,), name="sync-lint-merge")
    merge.start()
    _MERGING.append(merge)


def wait_for_merges() -> None:
    """Wait for the merges `run_files` left running: before this process forks workers (a child
    must not inherit a thread inside SQLite), and when the hot-path pass is done."""
    while _MERGING:
        _MERGING.pop().join()


def _merge_reads(projects: dict[str, "Project"]) -> None:
    """Merge the dependency rows this run's processes stored (`ProjectStore.merge_reads`). A cache
    locked past its timeout keeps them pending: the next run that reads them merges them first."""
    import sqlite3

    from sync_lint.project.store import ProjectStore

    for database in {project.database for project in projects.values()}:
        store = ProjectStore(database)
        try:
            store.merge_reads()
        except sqlite3.OperationalError:
            pass
        finally:
            store.close()


def _cached_results(plan: Plan, files: Sequence[str], projects: dict[str, "Project"]) -> dict[str, FileResult]:
    """The results the cache holds for files that did not change (nor anything they read)."""
    if plan.project is None or plan.project.temporary or not projects:
        return {}
    from sync_lint.project.store import ProjectStore

    job = _Job(plan.rules, plan.settings, PerFileIgnores(plan.settings, plan.registry), None, projects)
    out: dict[str, FileResult] = {}
    by_database: dict[Path, dict[str, str]] = {}
    real = {path: os.path.realpath(path) for path in files}
    for path in files:
        key = job.result_key(path)
        if key is not None:
            by_database.setdefault(projects[path].database, {})[real[path]] = key
    for database, keys in by_database.items():
        store = ProjectStore(database)
        try:
            found = store.results(keys)
        finally:
            store.close()
        out.update((path, found[real[path]]) for path in files if real[path] in found)
    return out


def projects_of(plan: Plan, files: Sequence[str], *, jobs: int | None = None,
                updated: "Iterable[Project]" = (),
                meanwhile: Callable[[list[str]], None] | None = None,
                read_ahead: Sequence[str] | None = None) -> dict[str, "Project"]:
    """Each file's project, with its index brought up to date (empty when the plan uses none); a
    project in `updated` is taken as it is.

    `meanwhile(paths)`: work that needs no index, given the files edited since the last run, to do
    while a forked child updates the index (`project/background.py`), when that pays: see
    `_edited_since_last_run`. It is not called otherwise. `read_ahead`: then also read the cached
    call edges of the hot-path pass that follows, with these extra roots (`project/ahead.py`)."""
    if plan.project is None or not files:
        return {}
    from sync_lint.project.build import common_roots, forget_summaries, update_project

    settings = plan.settings
    configured = [settings.root / root for root in settings.project_roots]
    extra = [settings.root / folder for folder in settings.extend_project]
    known = {project.root: project for project in updated}
    groups = common_roots(files, configured)
    options = {"jobs": jobs or settings.jobs, "cache_dir": plan.project.cache_dir,
               "temporary": plan.project.temporary, "extra": extra}
    pending: "dict[Path, PendingUpdate]" = {}
    if meanwhile is not None:
        edited = _edited_since_last_run(plan, files, groups, known)
        if edited:
            from sync_lint.project.background import start_update

            pending = {root: start_update(update_project, root, settings, **options)
                       for root in groups if root not in known}
            try:
                meanwhile(edited)
                if read_ahead is not None:
                    from sync_lint.project.ahead import read_edges_ahead
                    from sync_lint.project.build import cache_folder
                    from sync_lint.project.store import DATABASE

                    for root, update in pending.items():
                        read_edges_ahead(cache_folder(root, plan.project.cache_dir) / DATABASE,
                                         [*settings.hot_paths, *read_ahead], settings.hot_path_defaults, update.done)
            except BaseException:
                for update in pending.values():
                    update.abandon()
                raise
    out: dict[str, Project] = {}
    for root, members in groups.items():
        project = known.get(root)
        if project is None and root in pending:
            project = pending[root].result()
            forget_summaries(project.database)  # the child's update told this process nothing
        elif project is None:
            wait_for_merges()  # the update may fork a pool: no thread of this process may be in SQLite
            project = update_project(root, settings, **options)  # type: ignore[arg-type]
        out.update((member, project) for member in members)
    return out


def _other_threads() -> bool:
    """Whether other threads run in this process (an editor server's): a child forked now could
    inherit a lock one of them holds. A command line, or a daemon's child (which has libcst loaded
    already but the files still to parse), runs one thread."""
    import threading

    return threading.active_count() > 1


# A check of at most this many files updates the index in a child while it parses them (`meanwhile`).
_PARSE_WHILE_UPDATING = 8


def _edited_since_last_run(plan: Plan, files: Sequence[str], groups: "dict[Path, list[str]]",
                           known: "dict[Path, Project]") -> list[str]:
    """The files worth parsing while a child updates the index: a small check, on a machine where a
    child can run alongside, in a process with no other thread, of files changed since their
    project's cache last changed (the others' results are most likely cached)."""
    from sync_lint.project.background import can_fork
    from sync_lint.project.build import cache_folder
    from sync_lint.project.store import DATABASE

    if len(files) > _PARSE_WHILE_UPDATING or plan.project is None or plan.project.temporary \
            or _other_threads() or all(root in known for root in groups) or not can_fork():
        return []
    edited = []
    for root, members in groups.items():
        try:
            cached = os.stat(cache_folder(root, plan.project.cache_dir) / DATABASE).st_mtime_ns
        except OSError:
            cached = 0  # no cache yet
        for path in members:
            try:
                if os.stat(path).st_mtime_ns >= cached:
                    edited.append(path)
            except OSError:
                continue
    return edited


def run_source(plan: Plan, source: str, path: str = "-", *, fix: FixMode | None = None) -> Report:
    """Check (and with `fix`, fix) a text that is not read from disk (stdin, an editor buffer)."""
    from sync_lint.engine.stack import call_with_deep_stack

    return call_with_deep_stack(_run_source, plan, source, path, fix)


def _run_source(plan: Plan, source: str, path: str, fix: FixMode | None) -> Report:
    from sync_lint.engine.lint import lint_source

    plan = plan.loaded()
    ignored = PerFileIgnores(plan.settings, plan.registry).codes_for(path)
    anchor = path if path != "-" else str(Path.cwd() / "-.py")
    job = _Job(plan.rules, plan.settings, PerFileIgnores(plan.settings, plan.registry), fix,
               {anchor: p for p in projects_of(plan, [anchor]).values()})
    view = job.project_view(anchor, source)
    result = lint_source(source, path, plan.rules, plan.settings, ignored_codes=ignored, project=view)
    rank_results([result], plan.settings.root)
    if fix is None:
        from sync_lint.hotpaths import analyse_text

        # Hot paths within the text itself (its own roots and calls).
        analyse_text(result, source, plan.settings, selected=any(r.code == "SL601" for r in plan.rules)
                     and "SL601" not in ignored)
        return _report([result])
    from sync_lint.fix import fix_source, is_applicable, unified_diff

    output = source
    if any(is_applicable(d, fix.unsafe) for d in result.diagnostics):
        outcome = fix_source(source, path, plan.rules, plan.settings, unsafe=fix.unsafe, ignored_codes=ignored,
                             first=result, project=view)
        result = outcome.remaining
        result.errors.extend(outcome.errors)
        if outcome.changed:
            result.fixes_applied = dict(outcome.applied)
            output = outcome.new_source
            if fix.diff:
                result.diff = unified_diff(source, outcome.new_source, path)
    rank_results([result], plan.settings.root)
    report = _report([result])
    report.source_output = None if fix.diff else output
    return report


def check_source(plan: Plan, source: str, path: str) -> FileResult:
    """The findings in one text, as if it were the file at `path`."""
    return run_source(plan, source, path).results[0]


def _report(results: list[FileResult]) -> Report:
    report = Report(results=results)
    report.diff_text = "".join(r.diff for r in results if r.diff)
    report.fixed = {r.path: Counter(r.fixes_applied) for r in results if r.fixes_applied}
    return report


def merge(*reports: Report) -> Report:
    """One report for a run over several inputs (stdin and files)."""
    merged = _report([r for report in reports for r in report.results])
    merged.source_output = next((r.source_output for r in reports if r.source_output is not None), None)
    for report in reports:  # the hot-path pass needs each file's project
        merged.projects.update(report.projects)
    return merged


# ==========================================================================================
# Narrowing a report: baselines and changed lines
# ==========================================================================================


def read_lines_cached() -> Callable[[str], list[str]]:
    """A reader of files' lines that reads each file once (for baseline fingerprints)."""
    cache: dict[str, list[str]] = {}

    def read_lines(path: str) -> list[str]:
        if path not in cache:
            try:
                cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                cache[path] = []
        return cache[path]

    return read_lines


def read_baseline(baseline_path: Path):  # type: ignore[no-untyped-def]
    """The baseline at `baseline_path`; UsageError when it is missing or malformed (check it before a run)."""
    from sync_lint.baseline import BaselineError, load_baseline

    try:
        return load_baseline(baseline_path)
    except BaselineError as exc:
        raise UsageError(str(exc)) from None


def read_changed_lines(rev: str):  # type: ignore[no-untyped-def]
    """The lines changed since `rev` (from the working directory's repository); UsageError on a bad revision."""
    from sync_lint.changed_lines import ChangedLinesError, changed_lines

    try:
        return changed_lines(rev, Path.cwd())
    except ChangedLinesError as exc:
        raise UsageError(str(exc)) from None


def discover_files(plan: Plan, paths: Sequence[str]):  # type: ignore[no-untyped-def]
    """The files a run over `paths` checks (`sync_lint.discovery.Discovery`)."""
    from sync_lint.discovery import discover

    return discover(list(paths), plan.settings)


def apply_baseline(results: list[FileResult], baseline_path: "Path | object") -> list:
    """Drop the findings the baseline records; return the stale baseline entries.

    `baseline_path`: a path, or a baseline `read_baseline` returned.
    Only entries for files this run checked can be stale: a partial run says nothing of the rest.
    """
    baseline = read_baseline(baseline_path) if isinstance(baseline_path, (str, Path)) else baseline_path
    diagnostics = [d for r in results for d in r.diagnostics]
    outcome = baseline.filter(diagnostics, read_lines_cached(), checked_paths=[r.path for r in results])
    keep = {id(d) for d in outcome.new}
    for result in results:
        result.diagnostics = [d for d in result.diagnostics if id(d) in keep]
    return outcome.stale


def apply_changed_lines(results: list[FileResult], rev: "str | object") -> None:
    """Keep only the findings on lines changed since the git revision `rev` (or a `read_changed_lines` answer)."""
    from sync_lint.changed_lines import filter_diagnostics

    changed = read_changed_lines(rev) if isinstance(rev, str) else rev
    for result in results:
        result.diagnostics = filter_diagnostics(result.diagnostics, changed)


def create_baseline(plan: Plan, paths: Sequence[str], baseline_file: Path, *, jobs: int | None = None,
                    on_result: Callable[[FileResult], None] | None = None,
                    on_files: Callable[[int], None] | None = None) -> tuple[int, int, list[FileError]]:
    """Record the current findings under `paths` in `baseline_file`: (entries, files, file errors)."""
    from sync_lint.baseline import BaselineError
    from sync_lint.baseline import create_baseline as write_baseline
    from sync_lint.discovery import discover

    found = discover(list(paths), plan.settings)
    if found.missing:
        raise UsageError(f"{found.missing[0]}: no such file or directory")
    if on_files is not None:
        on_files(len(found.files))
    report = run_files(plan, found.files, jobs=jobs, on_result=on_result)
    apply_hot_paths(plan, report, jobs=jobs)
    diagnostics = [d for r in report.results for d in r.diagnostics]
    try:
        count = write_baseline(diagnostics, baseline_file, read_lines_cached())
    except BaselineError as exc:
        raise UsageError(str(exc)) from None
    return count, len(report.results), [e for r in report.results for e in r.errors]


# ==========================================================================================
# Hot paths: the call tree of a root
# ==========================================================================================


def call_tree(plan: Plan, root: str, where: str = ".", *, prune: bool = True, max_depth: int | None = None,
              jobs: int | None = None):  # type: ignore[no-untyped-def]
    """The call tree of the hot-path root `root` (`pkg.mod:Class.method`) in the project holding
    `where`, each function with its findings: (tree, functions reached, unresolved calls)."""
    from sync_lint.hotpaths import TRANSITIVE_CODE
    from sync_lint.hotpaths import call_tree as build_tree
    from sync_lint.project.hot import CallGraph, EdgeCache

    probe = Path(where).resolve()
    anchor = str(probe / "__init__.py") if probe.is_dir() else str(probe)
    projects = projects_of(replace_plan_project(plan), [anchor], jobs=jobs)
    project = projects.get(anchor)
    if project is None:
        raise UsageError("sync-lint paths needs the project index (drop --isolated)")
    opened = project.open(plan.settings)
    cache = EdgeCache(opened)
    graph = CallGraph(opened.index, opened.inference, cache)
    roots, missing = graph.roots([root], defaults=(), modules=())
    if missing or not roots:
        raise UsageError(f"hot-path root {root!r} names no function of the project at {project.root}")
    direct = Plan(plan.settings, tuple(r for r in plan.rules if r.code != TRANSITIVE_CODE), plan.registry,
                  project=plan.project)

    def lint(paths: list[str]) -> list[FileResult]:
        return run_files(direct, paths, jobs=jobs).results

    tree, reached = build_tree(graph, roots[0], project.root, plan.settings, lint, prune=prune, max_depth=max_depth)
    unresolved = [u for function in graph.reach(roots[0]).parent for u in graph.unresolved(function)]
    cache.save()
    opened.save_facts()
    return tree, reached, unresolved


def replace_plan_project(plan: Plan) -> Plan:
    """The plan, using the project index even when it was made without one."""
    if plan.project is not None:
        return plan
    return Plan(plan.settings, plan.rules, plan.registry, plan.notes, ProjectOptions())
