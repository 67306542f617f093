"""The Language Server Protocol server on pygls: `sync-lint server` (stdio).

| LSP | what sync-lint does |
|---|---|
| `didOpen`, `didChange`, `didSave` | check the buffer (after a pause in typing, `debounceMs`) and publish its findings |
| `hover` | the finding under the cursor: message, confidence, the evidence chain (each step a link), the fix |
| `codeAction` | the finding's fix (`quickfix`; an unsafe one says "unsafe" and is never preferred), `# noqa: CODE` for the line, and "fix all" (`source.fixAll.sync-lint`: the safe fixes, through the fixer's passes) |
| `workspace/didChangeConfiguration`, a saved `pyproject.toml`/`sync-lint.toml` | re-read the settings, re-check the open files |
| `workspace/didChangeWatchedFiles` (when the client offers it) | files changed on disk: the project index is brought up to date on the next check |

Checks run on one worker thread, never on the event loop: the server keeps reading
messages while a file is checked, and a newer edit supersedes a check that has not
started. A file that does not parse is reported as SL000 (syntax error); a crash in
the engine becomes a diagnostic saying so, never a dead server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from sync_lint import __version__
from sync_lint.diagnostics import Diagnostic, Edit
from sync_lint.fix.edits import TextLines
from sync_lint.server.checker import CONFIG_NAMES, Checker, Options, Outcome, noqa_edit

SOURCE = "sync-lint"
FIX_ALL_KIND = "source.fixAll.sync-lint"
logger = logging.getLogger(__name__)


class SyncLintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("sync-lint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.checker = Checker()
        # One worker: the analysis (its caches, the project database) is used from one thread at a time.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-lint-check")
        self.outcomes: dict[str, tuple[int | None, Outcome]] = {}  # uri -> (version, the latest check)
        self.pending: dict[str, asyncio.Task] = {}
        self.running: dict[str, int | None] = {}
        self.init_options: dict = {}
        self.pull_configuration = False
        self.configured: asyncio.Event | None = None  # set once the editor's settings are read

    @property
    def options(self) -> Options:
        return self.checker.options

    # --- scheduling checks ------------------------------------------------------------------------
    def schedule(self, uri: str, delay: float = 0.0) -> None:
        """Check `uri` after `delay` seconds; a newer call for the same uri replaces one still waiting."""
        waiting = self.pending.get(uri)
        if waiting is not None and not waiting.done():
            waiting.cancel()
        self.pending[uri] = asyncio.get_event_loop().create_task(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self.configured is not None and not self.configured.is_set():
            try:  # a check before the settings arrive would report with the wrong ones
                await asyncio.wait_for(self.configured.wait(), timeout=10)
            except asyncio.TimeoutError:
                pass
        document = self.workspace.text_documents.get(uri)
        if document is None:
            return
        path = to_fs_path(uri)
        if path is None:
            return
        text, version = document.source, document.version
        if self.pending.get(uri) is asyncio.current_task():
            del self.pending[uri]  # from here on, a newer edit schedules a new check rather than cancel this one

        def work() -> Outcome | None:
            latest = self.workspace.text_documents.get(uri)
            if latest is None or latest.version != version:
                return None  # superseded while it waited for the worker: skip it
            return self.checker.check(path, text)

        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self.executor, work)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            logger.exception("check failed")
            self.window_log_message(types.LogMessageParams(types.MessageType.Error,
                                                           f"sync-lint: checking {path} failed: {exc}"))
            return
        if outcome is None:
            return
        current = self.workspace.text_documents.get(uri)
        if current is None or current.version != version:
            return  # edited (or closed) meanwhile: the newer check publishes
        self.outcomes[uri] = (version, outcome)
        self.publish(uri, version, outcome)

    def publish(self, uri: str, version: int | None, outcome: Outcome) -> None:
        diagnostics = to_lsp_diagnostics(self, uri, outcome)
        where = "project index" if outcome.project else "file alone"
        self.window_log_message(types.LogMessageParams(
            types.MessageType.Log,
            f"sync-lint: checked {outcome.path} in {outcome.seconds:.3f} s (CPU {outcome.cpu_seconds:.3f} s, "
            f"{where}): {len(outcome.diagnostics)} finding(s)"))
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics,
                                                                              version=version))
        if outcome.config_error is not None:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error,
                                                             f"sync-lint: {outcome.config_error}"))

    def recheck_all(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.schedule(uri)

    def current(self, uri: str) -> Outcome | None:
        """The latest check of `uri`, if it is of the buffer's current text."""
        found = self.outcomes.get(uri)
        document = self.workspace.text_documents.get(uri)
        if found is None or document is None or found[1].text != document.source:
            return None
        return found[1]

    async def load_configuration(self) -> None:
        options: dict = dict(self.init_options)
        if self.pull_configuration:
            try:
                answer = await self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="sync-lint")]))
                if answer and isinstance(answer[0], dict):
                    options.update(answer[0])
            except Exception as exc:  # noqa: BLE001 - a client that cannot answer keeps the defaults
                logger.info("workspace/configuration failed: %s", exc)
        await asyncio.get_running_loop().run_in_executor(self.executor, self.checker.set_options,
                                                         Options.from_dict(options))

    def file_changed(self, path: str) -> None:
        """Tell the checker, on its own thread (checks run there; this must not change things under one)."""
        asyncio.get_event_loop().run_in_executor(self.executor, self.checker.file_changed, path)


server = SyncLintServer()


# ==========================================================================================
# Lifecycle and documents
# ==========================================================================================


@server.feature(types.INITIALIZE)
def initialize(ls: SyncLintServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict):
        ls.init_options = options.get("settings", options) if isinstance(options.get("settings"), dict) else options
    workspace = params.capabilities.workspace
    ls.pull_configuration = bool(workspace and workspace.configuration)
    ls.checker.set_options(Options.from_dict(ls.init_options))
    ls.configured = asyncio.Event()


@server.feature(types.INITIALIZED)
async def initialized(ls: SyncLintServer, params: types.InitializedParams) -> None:
    try:
        await ls.load_configuration()
    finally:
        if ls.configured is not None:
            ls.configured.set()
    watch = ls.client_capabilities.workspace
    if watch and watch.did_change_watched_files and watch.did_change_watched_files.dynamic_registration:
        patterns = ["**/*.py", *(f"**/{name}" for name in CONFIG_NAMES)]
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
                id="sync-lint-watch", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[types.FileSystemWatcher(glob_pattern=p) for p in patterns]))]))
        except Exception as exc:  # noqa: BLE001
            logger.info("file watching not registered: %s", exc)
    # Build (or bring up to date) each workspace folder's index in the background, so the
    # first file opened is already checked in a warm project.
    loop = asyncio.get_running_loop()
    for folder in ls.workspace.folders.values():
        path = to_fs_path(folder.uri)
        if path and os.path.isdir(path):
            loop.run_in_executor(ls.executor, _warm, ls, path)


def _warm(ls: SyncLintServer, folder: str) -> None:
    started = time.perf_counter()
    try:
        ls.checker.warm(os.path.join(folder, "__sync_lint_warm__.py"))
    except Exception as exc:  # noqa: BLE001
        logger.info("warming %s failed: %s", folder, exc)
        return
    ls.window_log_message(types.LogMessageParams(
        types.MessageType.Log, f"sync-lint: project index of {folder} ready in {time.perf_counter() - started:.2f} s"))


@server.feature(types.SHUTDOWN)
def shutdown(ls: SyncLintServer, *args: Any) -> None:
    for task in ls.pending.values():
        task.cancel()
    ls.executor.shutdown(wait=False, cancel_futures=True)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SyncLintServer, params: types.DidOpenTextDocumentParams) -> None:
    if _is_python(params.text_document.uri, params.text_document.language_id):
        ls.schedule(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SyncLintServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    if ls.options.lint_on_change and _is_python(uri):
        ls.schedule(uri, ls.options.debounce_ms / 1000)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
def did_save(ls: SyncLintServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = to_fs_path(uri)
    if path is None:
        return
    ls.file_changed(path)
    if Path(path).name in CONFIG_NAMES or _is_python(uri):
        # What the saved file says can change what other files' values are: check every open file,
        # the saved one first.
        if _is_python(uri):
            ls.schedule(uri)
        for other in list(ls.workspace.text_documents):
            if other != uri:
                ls.schedule(other)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SyncLintServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    waiting = ls.pending.pop(uri, None)
    if waiting is not None:
        waiting.cancel()
    ls.outcomes.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: SyncLintServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and isinstance(settings.get("sync-lint"), dict):
        ls.init_options = {**ls.init_options, **settings["sync-lint"]}
    await ls.load_configuration()
    ls.recheck_all()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: SyncLintServer, params: types.DidChangeWatchedFilesParams) -> None:
    changed = False
    for change in params.changes:
        path = to_fs_path(change.uri)
        if path is None or change.uri in ls.workspace.text_documents:
            continue  # an open file's saves come as didSave
        ls.file_changed(path)
        changed = True
    if changed:
        ls.recheck_all()


def _is_python(uri: str, language_id: str | None = None) -> bool:
    if language_id is not None and language_id != "python":
        return uri.endswith((".py", ".pyi"))
    return uri.startswith("file:") and (language_id == "python" or uri.endswith((".py", ".pyi")))


# ==========================================================================================
# Diagnostics
# ==========================================================================================


class _Positions:
    """1-based rows and code-point columns of sync-lint -> the client's positions (its encoding)."""

    def __init__(self, ls: LanguageServer, text: str) -> None:
        self.lines = TextLines(text)
        self.text = text
        self.codec = ls.workspace.position_codec
        self._line_texts = [text[s:e] for s, e in zip(self.lines.starts, [*self.lines.starts[1:], len(text)])]

    def position(self, row: int, column: int) -> types.Position:
        row = min(max(row, 1), len(self._line_texts))
        line = self._line_texts[row - 1]
        column = min(max(column, 1), len(line) + 1)
        return types.Position(line=row - 1, character=self.codec.client_num_units(line[: column - 1]))

    def offset(self, offset: int) -> types.Position:
        pos = self.lines.position(max(0, min(offset, len(self.text))))
        return self.position(pos.row, pos.column)

    def range(self, diagnostic: Diagnostic) -> types.Range:
        return types.Range(self.position(diagnostic.start.row, diagnostic.start.column),
                           self.position(diagnostic.end.row, diagnostic.end.column))

    def to_offset(self, position: types.Position) -> int:
        row = min(position.line, len(self._line_texts) - 1)
        line = self._line_texts[row]
        units = 0
        for index, char in enumerate(line):
            if units >= position.character:
                return self.lines.starts[row] + index
            units += self.codec.client_num_units(char)
        return self.lines.starts[row] + len(line.rstrip("\r\n"))

    def edit(self, edit: Edit) -> types.TextEdit:
        return types.TextEdit(range=types.Range(self.offset(edit.start), self.offset(edit.end)),
                              new_text=edit.content)


def _severity(diagnostic: Diagnostic) -> types.DiagnosticSeverity:
    if diagnostic.code == "SL000":
        return types.DiagnosticSeverity.Error
    if diagnostic.confidence == "strict":
        return types.DiagnosticSeverity.Information
    return types.DiagnosticSeverity.Warning


def _step_uri(path: str) -> str:
    return from_fs_path(os.path.abspath(path)) or path


def to_lsp_diagnostics(ls: LanguageServer, uri: str, outcome: Outcome) -> list[types.Diagnostic]:
    positions = _Positions(ls, outcome.text)
    out = []
    if outcome.config_error is not None:
        out.append(types.Diagnostic(range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                                    message=f"sync-lint could not check this file: {outcome.config_error}",
                                    severity=types.DiagnosticSeverity.Error, source=SOURCE))
    for error in outcome.errors:
        out.append(types.Diagnostic(range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                                    message=f"sync-lint: {error.message}", severity=types.DiagnosticSeverity.Error,
                                    source=SOURCE, code=error.rule))
    for index, d in enumerate(outcome.diagnostics):
        related = []
        for step in d.evidence_steps:
            if step.row is None:
                continue
            target = uri if os.path.abspath(step.path) == os.path.abspath(outcome.path) else _step_uri(step.path)
            related.append(types.DiagnosticRelatedInformation(
                location=types.Location(uri=target, range=types.Range(types.Position(step.row - 1, 0),
                                                                      types.Position(step.row - 1, 0))),
                message=step.message))
        message = d.message
        if d.confidence == "convention":
            message += " (by convention)"
        if d.fix is not None and d.fix.edits:
            message += f" [fix: {d.fix.applicability}]"
        out.append(types.Diagnostic(
            range=positions.range(d), message=message, severity=_severity(d), code=d.code, source=SOURCE,
            code_description=types.CodeDescription(href=d.url) if d.url else None,
            related_information=related or None,
            data={"index": index, "code": d.code, "row": d.start.row, "column": d.start.column}))
    return out


# ==========================================================================================
# Hover: the evidence chain
# ==========================================================================================


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: SyncLintServer, params: types.HoverParams) -> types.Hover | None:
    outcome = ls.current(params.text_document.uri)
    if outcome is None or not outcome.diagnostics:
        return None
    positions = _Positions(ls, outcome.text)
    at = positions.to_offset(params.position)
    lines = positions.lines
    found = []
    for d in outcome.diagnostics:
        try:
            start, end = lines.offset(d.start), lines.offset(d.end)
        except ValueError:
            continue
        if start <= at <= max(end, start + 1):
            found.append(d)
    if not found:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                    value="\n\n---\n\n".join(hover_text(d, outcome) for d in found)),
                       range=positions.range(found[0]))


def hover_text(d: Diagnostic, outcome: Outcome) -> str:
    """A finding as Markdown: what, how sure, why (each evidence step with its place), the fix."""
    parts = [f"**{d.code}** `{d.name}`: {d.message}"]
    confidence = {"high": "high: device inference proved the tensor's device",
                  "convention": "convention: a step rests on a naming convention or one learned from the repository",
                  "strict": "strict: reported because of `strict`; the device is not known"}.get(d.confidence, d.confidence)
    parts.append(f"*Confidence:* {confidence}")
    if d.evidence_steps:
        steps = []
        for number, step in enumerate(d.evidence_steps, 1):
            where = ""
            if step.row is not None:
                same = os.path.abspath(step.path) == os.path.abspath(outcome.path)
                label = f"line {step.row}" if same else f"{_short(step.path)}:{step.row}"
                where = f" ([{label}]({_step_uri(step.path)}#L{step.row}))"
            steps.append(f"{number}. {step.message}{where}")
        parts.append("*Evidence:*\n\n" + "\n".join(steps))
    elif d.evidence:
        parts.append(f"*Evidence:* {d.evidence}")
    if d.fix is not None and d.fix.edits:
        parts.append(f"*Fix ({d.fix.applicability}):* {d.fix.message}")
    if d.url:
        parts.append(f"[{d.code} documentation]({d.url}) · `sync-lint explain {d.code}`")
    else:
        parts.append(f"`sync-lint explain {d.code}`")
    return "\n\n".join(parts)


def _short(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


# ==========================================================================================
# Code actions
# ==========================================================================================


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll, FIX_ALL_KIND],
    resolve_provider=True))
async def code_action(ls: SyncLintServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    uri = params.text_document.uri
    outcome = ls.current(uri)
    if outcome is None:
        return None
    only = params.context.only
    want_quickfix = not only or any(str(k).startswith(types.CodeActionKind.QuickFix) for k in only)
    want_fix_all = not only or any(FIX_ALL_KIND.startswith(str(k)) for k in only)
    positions = _Positions(ls, outcome.text)
    version = ls.outcomes[uri][0]
    actions: list[types.CodeAction] = []
    if want_quickfix:
        lines = positions.lines
        first, last = positions.to_offset(params.range.start), positions.to_offset(params.range.end)
        loop = asyncio.get_running_loop()
        for index, d in enumerate(outcome.diagnostics):
            try:
                start, end = lines.offset(d.start), lines.offset(d.end)
            except ValueError:
                continue
            if end < first or start > last:
                continue
            lsp_diagnostic = _matching(params.context.diagnostics, d)
            if d.fix is not None and d.fix.edits and (d.fix.applicability == "safe" or ls.options.unsafe_fixes):
                edits = await loop.run_in_executor(ls.executor, ls.checker.fix_edits, outcome, d)
                if edits is not None:
                    label = "" if d.fix.applicability == "safe" else " (unsafe)"
                    actions.append(types.CodeAction(
                        title=f"Fix {d.code}{label}: {_first_sentence(d.fix.message)}",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[lsp_diagnostic] if lsp_diagnostic else None,
                        is_preferred=d.fix.applicability == "safe",
                        edit=_workspace_edit(ls, uri, version, [positions.edit(e) for e in edits])))
            if ls.options.noqa_actions:
                edit = noqa_edit(outcome.text, d)
                if edit is not None:
                    actions.append(types.CodeAction(
                        title=f"Disable {d.code} for this line (# noqa: {d.code})",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[lsp_diagnostic] if lsp_diagnostic else None,
                        edit=_workspace_edit(ls, uri, version, [positions.edit(edit)])))
    if want_fix_all and any(d.fix is not None and d.fix.edits and d.fix.applicability == "safe"
                            for d in outcome.diagnostics):
        action = types.CodeAction(title="sync-lint: fix all safe fixes", kind=FIX_ALL_KIND,
                                  data={"uri": uri, "version": version, "unsafe": False})
        if not _client_resolves_edits(ls):
            action = await _resolve_fix_all(ls, action)
        if action is not None:
            actions.append(action)
    return actions or None


@server.feature(types.CODE_ACTION_RESOLVE)
async def code_action_resolve(ls: SyncLintServer, action: types.CodeAction) -> types.CodeAction:
    return await _resolve_fix_all(ls, action) or action


async def _resolve_fix_all(ls: SyncLintServer, action: types.CodeAction) -> types.CodeAction | None:
    data = action.data if isinstance(action.data, dict) else {}
    uri = data.get("uri")
    if action.edit is not None or not uri:
        return action
    outcome = ls.current(uri)
    if outcome is None:
        return None
    loop = asyncio.get_running_loop()
    new_text = await loop.run_in_executor(ls.executor, lambda: ls.checker.fix_all(outcome, unsafe=bool(data.get("unsafe"))))
    if new_text is None:
        return None
    positions = _Positions(ls, outcome.text)
    whole = types.TextEdit(range=types.Range(types.Position(0, 0), positions.offset(len(outcome.text))),
                           new_text=new_text)
    action.edit = _workspace_edit(ls, uri, ls.outcomes[uri][0], [whole])
    return action


def _client_resolves_edits(ls: LanguageServer) -> bool:
    document = ls.client_capabilities.text_document
    code_action = document.code_action if document else None
    support = code_action.resolve_support if code_action else None
    return bool(support and "edit" in support.properties)


def _workspace_edit(ls: LanguageServer, uri: str, version: int | None, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    workspace = ls.client_capabilities.workspace
    document_changes = bool(workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes)
    if document_changes:
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
            edits=edits)])  # type: ignore[arg-type]
    return types.WorkspaceEdit(changes={uri: edits})


def _matching(diagnostics: list[types.Diagnostic], d: Diagnostic) -> types.Diagnostic | None:
    for candidate in diagnostics:
        data = candidate.data if isinstance(candidate.data, dict) else {}
        if (candidate.code == d.code and data.get("row") == d.start.row
                and data.get("column") == d.start.column):
            return candidate
    return None


def _first_sentence(message: str) -> str:
    head = message.split(": ", 1)[0] if len(message) > 90 else message
    return head if len(head) <= 120 else head[:117] + "..."


def start_server() -> None:
    logging.basicConfig(level=logging.WARNING)
    server.start_io()
