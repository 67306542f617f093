"""Checking editor buffers in a warm project, without the protocol (the server in `lsp.py` calls this).

One `Checker` serves a whole editor session, from one worker thread:

- **Settings** come from the project's configuration, found from each file as the
  command line finds it (`sync-lint.toml`, `.sync-lint.toml`, `pyproject.toml` with a
  `[tool.sync-lint]` table), then the editor's overrides. Plans are kept per folder
  and dropped when a configuration file changes (`forget_settings`).
- **The project index** is brought up to date once per project root (the same
  cache as `sync-lint check`), then kept: a keystroke never walks the repository.
  Each check opens the index afresh on a kept connection, with the summaries already
  read kept (they never change once read; reading them is most of a cold check), so
  one buffer's unsaved text never leaks into another's check. The buffer's own
  text is always what is linted; what the *rest of the project* knows of the file is,
  by default, its saved version (the cached summary, so the cached facts stay valid
  and a check of a large file stays fast); with `indexBuffer` the buffer is
  summarised into the index on every check (`OpenProject.use_text`: the facts that
  read its module are set aside and nothing is written back). A file the index does
  not know yet (new, unsaved) is always summarised from its text. A save
  (`file_changed`) marks the project stale: the next check brings the index up to
  date again.
- **Fixes** for one finding are that finding's edits plus the imports they need,
  spelled with the file's aliases (as the fixer's passes do); "fix all" runs the
  fixer itself (`fix_source`), which re-lints and rolls back a fix that breaks the file.
- **`# noqa`** goes on the finding's first line (or its last, when the first ends
  inside a multi-line string or a backslash continuation), merged into a `# noqa:`
  comment already there.

Nothing here imports pygls.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
import tokenize
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sync_lint import api
from sync_lint.diagnostics import Diagnostic, Edit, FileError, FileResult, Position
from sync_lint.fix.edits import TextLines, file_newline, with_newline

if TYPE_CHECKING:
    from sync_lint.project.build import Project

CONFIG_NAMES = ("sync-lint.toml", ".sync-lint.toml", "pyproject.toml")
WRITE_WAIT_MS = 250


@dataclass(frozen=True)
class Options:
    """What the editor can set (initializationOptions or the `sync-lint` configuration section)."""

    configuration: str | None = None  # a configuration file to use instead of the one found
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    strict: bool | None = None
    target_torch_version: str | None = None
    isolated: bool = False  # no configuration files, no project index
    project: bool = True  # use the project index (cross-file device inference)
    cache_dir: str | None = None
    lint_on_change: bool = True  # False: check on open and save only
    debounce_ms: int = 150
    unsafe_fixes: bool = True  # offer unsafe fixes as code actions (labelled "unsafe")
    noqa_actions: bool = True
    # While a buffer differs from its file, what the rest of the project knows of it: False (the default)
    # keeps the saved file's summary in the index (the cached facts stay valid: fast); True summarises the
    # buffer into the index on every check (its own new fields, parameters and call sites count before
    # a save; on a large file each check then re-solves much of what the cache holds).
    index_buffer: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> "Options":
        """Options from the editor's JSON (camelCase or kebab-case keys); unknown keys are ignored."""
        if not isinstance(data, dict):
            return cls()
        if isinstance(data.get("sync-lint"), dict):
            data = data["sync-lint"]
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", str(key)).replace("-", "_").lower()
            if name not in cls.__dataclass_fields__ or value is None:
                continue
            default = cls.__dataclass_fields__[name].default
            if isinstance(default, tuple):
                value = tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)
            elif isinstance(default, bool) or name in ("strict",):
                value = bool(value)
            elif name == "debounce_ms":
                value = max(0, int(value))
            else:
                value = str(value)
            values[name] = value
        return cls(**values)


@dataclass
class Outcome:
    """One check of one text."""

    path: str
    text: str
    result: FileResult
    plan: api.Plan | None
    seconds: float  # wall-clock time of the check
    excluded: bool = False
    cpu_seconds: float = 0.0  # CPU time of the server process during the check
    project: bool = False  # whether the project index was used
    config_error: str | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.result.diagnostics

    @property
    def errors(self) -> list[FileError]:
        return self.result.errors


@dataclass
class _Session:
    """A project root's index, brought up to date when it is stale, and what stays loaded between checks."""

    root: Path
    project: "Project | None" = None
    stale: bool = True
    error: str | None = None
    store: Any = None  # the open cache database
    modules: list[str] | None = None
    # Summaries read from the cache, kept between checks: reading them is most of a check's
    # cost otherwise (a file of vLLM reaches about a thousand modules). They are never
    # changed once read; a buffer's own summary is made fresh from its text each time.
    summaries: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self.store, self.modules = None, None
        self.summaries.clear()
        gc.unfreeze()  # what was kept may now be collected

    def open(self, settings: Any):  # type: ignore[no-untyped-def]
        """The project's index and inference for one check (as `Project.open`), on the kept connection and
        summaries."""
        from sync_lint.project.build import OpenProject
        from sync_lint.project.deps import Reads
        from sync_lint.project.index import ProjectIndex
        from sync_lint.project.infer import Inference
        from sync_lint.project.store import ProjectStore, StoreTables

        project = self.project
        assert project is not None
        if self.store is None:
            self.store = ProjectStore(project.database)
            # Reads never wait (WAL); a write of solved facts while `sync-lint check` holds the database
            # gives up after a moment instead of the command line's two minutes: a check must not stall.
            self.store._db.execute(f"PRAGMA busy_timeout = {WRITE_WAIT_MS}")
            self.modules = self.store.modules()
        store, summaries = self.store, self.summaries

        def load(module: str) -> Any:
            if module not in summaries:
                summaries[module] = store.summary(module)
            return summaries[module]

        index = ProjectIndex(self.modules or (), load, StoreTables(store), root=str(project.root), reads=Reads())
        inference = Inference(index, settings.device_settings(), convention_share=settings.convention_share,
                              convention_sites=settings.convention_sites, cache=store)
        return OpenProject(project, store, inference)


@dataclass
class _PlanEntry:
    plan: api.Plan | None
    error: str | None
    config: Path | None
    mtime: int | None
    exclude: Any = None
    sessions: dict[Path, _Session] = field(default_factory=dict)


class Checker:
    """Checks buffers: plans per configuration, one index per project root (see the module docstring)."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._plans: dict[Path, _PlanEntry] = {}  # folder -> its plan
        self._by_config: dict[tuple, _PlanEntry] = {}  # (config path, mtime) -> the plan (shared by folders)
        self._lock = threading.RLock()

    # --- settings ---------------------------------------------------------------------------------
    def set_options(self, options: Options) -> None:
        with self._lock:
            self.options = options
            self.forget_settings()

    def forget_settings(self) -> None:
        """A configuration file (or the editor's settings) changed: plans and indexes are rebuilt on demand."""
        with self._lock:
            for entry in self._by_config.values():
                for session in entry.sessions.values():
                    session.reset()
            self._plans.clear()
            self._by_config.clear()

    def file_changed(self, path: str) -> None:
        """A file changed on disk (a save, a checkout): the index of its project is stale."""
        with self._lock:
            if Path(path).name in CONFIG_NAMES:
                self.forget_settings()
                return
            resolved = Path(path).resolve()
            for entry in self._by_config.values():
                for root, session in entry.sessions.items():
                    if root == resolved or root in resolved.parents:
                        session.stale = True

    def _config_for(self, folder: Path) -> Path | None:
        from sync_lint.config import ConfigError, find_config

        if self.options.isolated:
            return None
        if self.options.configuration:
            return Path(self.options.configuration).expanduser().resolve()
        try:
            return find_config(folder)
        except ConfigError:
            # A broken pyproject with our table: let plan() report it.
            return folder / "pyproject.toml"

    def plan_entry(self, path: str) -> _PlanEntry:
        folder = Path(path).resolve().parent
        with self._lock:
            entry = self._plans.get(folder)
            if entry is not None and entry.config is not None and _mtime(entry.config) != entry.mtime:
                self.forget_settings()  # the configuration file was edited outside the editor
                entry = None
            if entry is not None:
                return entry
            config = self._config_for(folder)
            key = (config, _mtime(config) if config is not None else None,
                   str(folder) if config is None else "")
            entry = self._by_config.get(key)
            if entry is None:
                entry = self._make_plan(path, config)
                self._by_config[key] = entry
            self._plans[folder] = entry
            return entry

    def _make_plan(self, path: str, config: Path | None) -> _PlanEntry:
        import pathspec

        opts = self.options
        project = None
        if opts.project and not opts.isolated:
            project = api.ProjectOptions(cache_dir=Path(opts.cache_dir).expanduser().resolve() if opts.cache_dir else None)
        try:
            plan = api.plan([path], config=opts.configuration, isolated=opts.isolated, select=opts.select,
                            extend_select=opts.extend_select, ignore=opts.ignore, strict=opts.strict,
                            target_torch_version=opts.target_torch_version, project=project).loaded()
        except api.UsageError as exc:
            return _PlanEntry(None, str(exc), config, _mtime(config) if config is not None else None)
        settings = plan.settings
        exclude = pathspec.GitIgnoreSpec.from_lines([*settings.exclude, *settings.extend_exclude])
        return _PlanEntry(plan, None, config, _mtime(config) if config is not None else None, exclude)

    def is_excluded(self, path: str, entry: _PlanEntry) -> bool:
        """Whether the configuration's excludes cover the file (the server then reports nothing, as ruff's does)."""
        if entry.plan is None or entry.exclude is None:
            return False
        resolved = Path(path).resolve()
        try:
            relative = resolved.relative_to(entry.plan.settings.root).as_posix()
        except ValueError:
            return bool(entry.exclude.match_file(resolved.name))
        return bool(entry.exclude.match_file(relative))

    # --- the project index ------------------------------------------------------------------------
    def _session(self, path: str, entry: _PlanEntry) -> _Session | None:
        from sync_lint.project.roots import project_root

        plan = entry.plan
        if plan is None or plan.project is None:
            return None
        settings = plan.settings
        root = project_root(Path(path), [settings.root / r for r in settings.project_roots])
        with self._lock:
            session = entry.sessions.get(root)
            if session is None:
                session = entry.sessions[root] = _Session(root)
        if session.stale:
            self._update(session, plan)
        return session if session.project is not None else None

    def _update(self, session: _Session, plan: api.Plan) -> None:
        from sync_lint.project.build import update_project

        from sync_lint.project.roots import module_name

        settings = plan.settings
        assert plan.project is not None
        old = session.project
        try:
            new = update_project(session.root, settings, jobs=settings.jobs, cache_dir=plan.project.cache_dir,
                                 extra=[settings.root / f for f in settings.extend_project])
            session.error = None
        except Exception as exc:  # noqa: BLE001 - an unwritable cache, a corrupt database: check without the index
            session.reset()
            session.project = None
            session.error = f"{type(exc).__name__}: {exc}"
            session.stale = False
            return
        session.project, session.stale = new, False
        if old is None or session.store is None or old.database != new.database:
            session.reset()
            return
        # Keep what was read of the files that did not change.
        changed = [p for p in set(old.shas) | set(new.shas) if old.shas.get(p) != new.shas.get(p)]
        if any(new.root not in Path(p).parents for p in changed):
            session.reset()
            return
        for path in changed:
            session.summaries.pop(module_name(Path(path), new.root)[0], None)
        if changed:
            session.modules = session.store.modules()

    def warm(self, path: str) -> None:
        """Bring the index of `path`'s project up to date (the server does this for each workspace folder)."""
        entry = self.plan_entry(path)
        if entry.plan is not None:
            self._session(path, entry)

    # --- checking ---------------------------------------------------------------------------------
    def check(self, path: str, text: str) -> Outcome:
        """The findings in `text`, the current content of the file at `path` (saved or not)."""
        started, cpu = time.perf_counter(), time.process_time()
        outcome = self._check(path, text, started)
        outcome.cpu_seconds = time.process_time() - cpu
        return outcome

    def _check(self, path: str, text: str, started: float) -> Outcome:
        from sync_lint.engine.stack import call_with_deep_stack

        entry = self.plan_entry(path)
        if entry.plan is None:
            return Outcome(path, text, FileResult(path), None, time.perf_counter() - started,
                           config_error=entry.error)
        if self.is_excluded(path, entry):
            return Outcome(path, text, FileResult(path), entry.plan, time.perf_counter() - started, excluded=True)
        session = self._session(path, entry)
        loaded = len(session.summaries) if session is not None else 0
        try:
            result, used = call_with_deep_stack(self._lint, path, text, entry.plan, session)
        except Exception as exc:  # an engine bug must not take the editor's server down
            result, used = FileResult(path, errors=[FileError(path, f"internal error: {type(exc).__name__}: {exc}")]), False
        if session is not None and len(session.summaries) > loaded:
            # The summaries just read stay for the session: move them out of the collector's way
            # (a full collection walks every object; with a thousand summaries that was a third of a check).
            gc.collect()
            gc.freeze()
        return Outcome(path, text, result, entry.plan, time.perf_counter() - started, project=used)

    def _lint(self, path: str, text: str, plan: api.Plan, session: _Session | None) -> tuple[FileResult, bool]:
        from sync_lint.engine.lint import lint_source
        from sync_lint.selection import PerFileIgnores

        ignored = PerFileIgnores(plan.settings, plan.registry).codes_for(path)
        view, opened = self._view(path, text, plan, session)
        if opened is not None:
            opened.index.reads.begin()
        try:
            result = lint_source(text, path, plan.rules, plan.settings, ignored_codes=ignored, project=view)
        finally:
            if opened is not None:
                opened.index.reads.end()
        if opened is not None:
            try:
                opened.save_facts()  # only when the buffer is the file on disk
            except Exception:  # noqa: BLE001 - a locked database: the facts are solved again next time
                pass
        return result, view is not None

    def _view(self, path: str, text: str, plan: api.Plan, session: _Session | None):  # type: ignore[no-untyped-def]
        """The buffer's window onto its project (None without an index), and the opened project."""
        if session is None or session.project is None:
            return None, None
        from sync_lint.project.build import summarize_text
        from sync_lint.project.roots import module_name
        from sync_lint.project.store import content_hash
        from sync_lint.project.view import ProjectView

        project = session.project
        resolved = str(Path(path).resolve())
        opened = session.open(plan.settings)
        summary = None
        sha = project.shas.get(resolved)
        if sha is not None and (not self.options.index_buffer or sha == content_hash(text.encode("utf-8"))):
            # The file as saved (or the buffer, when it is the file): the index and its cached facts as they are.
            summary = opened.index.summary(module_name(Path(resolved), project.root)[0])
        if summary is None:
            summary = summarize_text(project, resolved, text)
            opened.use_text(summary)
        return ProjectView(opened.inference, summary), opened  # type: ignore[arg-type]

    # --- fixes ------------------------------------------------------------------------------------
    def fix_edits(self, outcome: Outcome, diagnostic: Diagnostic) -> list[Edit] | None:
        """The edits (offsets into `outcome.text`) that apply `diagnostic`'s fix, imports included;
        None when the fixed text would not parse."""
        import libcst as cst

        from sync_lint.fix.edits import Placed, apply_edits
        from sync_lint.fix.imports import plan_imports, spell
        from sync_lint.fix.scopes import ScopeTree

        fix = diagnostic.fix
        if fix is None or not fix.edits:
            return None
        text = outcome.text
        newline = file_newline(text)
        if any(not 0 <= edit.start <= edit.end <= len(text) for edit in fix.edits):
            return None
        plan = None
        if fix.needs_imports:
            # The fixer's own import plan: the scope that binds a module at run time, never a
            # module-level import a lazy-import module or a TYPE_CHECKING-only import would break.
            try:
                module, tree = cst.parse_module(text), ScopeTree.parse(text)
            except Exception:
                return None
            first = min(edit.start for edit in fix.edits)
            plan = plan_imports(tree, module, TextLines(text), [(0, first, fix.needs_imports)],
                                [(e.start, e.end) for e in fix.edits], newline)
        spelled = plan.spellings.get(0, {}) if plan is not None else {}
        edits = []
        for edit in sorted(fix.edits, key=lambda e: (e.start, e.end)):
            content = with_newline(edit.content, newline)
            for needed in sorted(spelled, key=len, reverse=True):
                content = spell(content, needed, spelled[needed])
            edits.append(Edit(edit.start, edit.end, content))
        if plan is not None:
            edits.extend(Edit(offset, offset, content) for offset, content, _owners, _modules in plan.insertions)
            edits.sort(key=lambda e: (e.start, e.end))
        new_text = apply_edits(text, [Placed(e, (0,)) for e in edits])
        try:
            cst.parse_module(new_text)
        except Exception:
            return None
        return edits

    def fix_all(self, outcome: Outcome, *, unsafe: bool = False) -> str | None:
        """The buffer with every applicable fix applied (the fixer's passes); None when nothing changes."""
        from sync_lint.engine.stack import call_with_deep_stack

        if outcome.plan is None or not outcome.result.parsed:
            return None
        return call_with_deep_stack(self._fix_all, outcome, unsafe)  # type: ignore[no-any-return]

    def _fix_all(self, outcome: Outcome, unsafe: bool) -> str | None:
        from sync_lint.fix import fix_source, is_applicable
        from sync_lint.selection import PerFileIgnores

        plan = outcome.plan
        assert plan is not None
        if not any(is_applicable(d, unsafe) for d in outcome.diagnostics):
            return None
        entry = self.plan_entry(outcome.path)
        session = self._session(outcome.path, entry) if entry.plan is plan else None
        view, _opened = self._view(outcome.path, outcome.text, plan, session)
        fixed = fix_source(outcome.text, outcome.path, plan.rules, plan.settings, unsafe=unsafe,
                           ignored_codes=PerFileIgnores(plan.settings, plan.registry).codes_for(outcome.path),
                           first=outcome.result if (view is not None) == outcome.project else None, project=view)
        return fixed.new_source if fixed.changed else None


# ==========================================================================================
# # noqa
# ==========================================================================================

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*[,\s]\s*[A-Z]+[0-9]+)*))?", re.IGNORECASE)


def noqa_edit(text: str, diagnostic: Diagnostic) -> Edit | None:
    """The edit that adds `# noqa: CODE` for `diagnostic` (None when it cannot go anywhere safe, or
    the line already suppresses it)."""
    lines = TextLines(text)
    candidates = []
    for row in (diagnostic.noqa_row or diagnostic.start.row, diagnostic.start.row, diagnostic.end.row):
        if row not in candidates and 1 <= row <= len(lines.starts):
            candidates.append(row)
    inside = _rows_inside_strings(text)
    for row in candidates:
        start = lines.starts[row - 1]
        end = lines.starts[row] if row < len(lines.starts) else len(text)
        line = text[start:end].rstrip("\r\n")
        if row in inside or line.rstrip().endswith("\\"):
            continue
        match = _NOQA.search(line)
        if match is not None:
            listed = match.group("codes")
            if not listed:
                return None  # a blanket noqa already covers it
            codes = [c for c in re.split(r"[,\s]+", listed) if c]
            if diagnostic.code in (c.upper() for c in codes):
                return None
            at = start + match.start("codes")
            return Edit(at, start + match.end("codes"), ", ".join([*codes, diagnostic.code]))
        stripped = line.rstrip()
        return Edit(start + len(stripped), start + len(line), f"  # noqa: {diagnostic.code}")
    return None


def _rows_inside_strings(text: str) -> set[int]:
    """Rows whose end lies inside a string token spanning several lines (a comment there is text)."""
    rows: set[int] = set()
    opened: list[int] = []
    try:
        for token in tokenize.generate_tokens(StringIO(text).readline):
            name = tokenize.tok_name.get(token.type, "")
            if name == "STRING" and token.end[0] > token.start[0]:
                rows.update(range(token.start[0], token.end[0]))
            elif name == "FSTRING_START":
                opened.append(token.start[0])
            elif name == "FSTRING_END" and opened:
                first = opened.pop()
                if token.end[0] > first:
                    rows.update(range(first, token.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return rows


def _mtime(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def offsets_to_rows(text: str, edits: Sequence[Edit]) -> list[tuple[Position, Position, str]]:
    """Each edit as (start, end, new text) with 1-based rows and code-point columns."""
    lines = TextLines(text)
    return [(lines.position(e.start), lines.position(e.end), e.content) for e in edits]
