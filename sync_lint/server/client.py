"""A minimal Language Server Protocol client over stdio, for the tests and the latency measurement.

It speaks plain JSON-RPC 2.0 with `Content-Length` framing, as an editor does: it
spawns `sync-lint server`, sends requests and notifications, and collects what the
server sends back (responses, `publishDiagnostics`, log messages) on a reader
thread. It answers the server's own requests (`workspace/configuration`,
`client/registerCapability`, `window/workDoneProgress/create`) so the server never
waits on it. Nothing here imports pygls.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence


class LspError(Exception):
    pass


class LspClient:
    def __init__(self, command: Sequence[str] | None = None, *, cwd: str | os.PathLike | None = None,
                 env: dict[str, str] | None = None) -> None:
        command = list(command or [sys.executable, "-m", "sync_lint", "server"])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=cwd, env=env)
        self._next_id = 0
        self._lock = threading.Lock()
        self._responses: dict[int, queue.Queue] = {}
        self.notifications: "queue.Queue[dict]" = queue.Queue()
        self.diagnostics: dict[str, list[dict]] = {}  # uri -> the latest published diagnostics
        self._published = threading.Condition()
        self.publish_count: dict[str, int] = {}
        self.log: list[str] = []
        self.settings: dict[str, Any] = {}  # what `workspace/configuration` answers
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read_loop, name="lsp-client-reader", daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="lsp-client-stderr", daemon=True)
        self._stderr_reader.start()

    # --- the wire -------------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def _read_message(self) -> dict | None:
        stream = self.process.stdout
        assert stream is not None
        length = None
        while True:
            line = stream.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise LspError("a message without Content-Length")
        return json.loads(stream.read(length).decode("utf-8"))  # type: ignore[no-any-return]

    def _read_loop(self) -> None:
        while True:
            try:
                message = self._read_message()
            except (ValueError, OSError):
                message = None
            if message is None:
                for waiting in list(self._responses.values()):
                    waiting.put({"error": {"message": "the server closed its output"}})
                return
            if "id" in message and "method" in message:
                self._answer(message)
            elif "id" in message:
                box = self._responses.get(message["id"])
                if box is not None:
                    box.put(message)
            else:
                self._notified(message)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def _answer(self, request: dict) -> None:
        method = request["method"]
        result: Any = None
        if method == "workspace/configuration":
            result = [self.settings for _item in request["params"].get("items", [])]
        self._send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    def _notified(self, message: dict) -> None:
        method = message.get("method")
        params = message.get("params") or {}
        if method == "textDocument/publishDiagnostics":
            with self._published:
                self.diagnostics[params["uri"]] = params["diagnostics"]
                self.publish_count[params["uri"]] = self.publish_count.get(params["uri"], 0) + 1
                self._published.notify_all()
        elif method in ("window/logMessage", "window/showMessage"):
            self.log.append(params.get("message", ""))
        self.notifications.put(message)

    # --- requests -------------------------------------------------------------------------------
    def request(self, method: str, params: Any = None, timeout: float = 60) -> Any:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        box: queue.Queue = queue.Queue()
        self._responses[ident] = box
        self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        try:
            response = box.get(timeout=timeout)
        except queue.Empty:
            raise LspError(f"no response to {method} in {timeout} s; server stderr:\n"
                           + "".join(self.stderr_lines[-40:])) from None
        finally:
            self._responses.pop(ident, None)
        if "error" in response:
            raise LspError(f"{method}: {response['error'].get('message')}")
        return response.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    # --- the conversation an editor has -----------------------------------------------------------
    def initialize(self, root: str | os.PathLike, options: dict | None = None,
                   capabilities: dict | None = None) -> dict:
        root_uri = Path(root).resolve().as_uri()
        caps = capabilities if capabilities is not None else {
            "general": {"positionEncodings": ["utf-16"]},
            "textDocument": {
                "publishDiagnostics": {"relatedInformation": True},
                "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
                    "quickfix", "source", "source.fixAll"]}},
                    "resolveSupport": {"properties": ["edit"]}},
                "hover": {"contentFormat": ["markdown", "plaintext"]},
            },
            "workspace": {"configuration": True, "workspaceEdit": {"documentChanges": True}},
        }
        result = self.request("initialize", {
            "processId": os.getpid(), "rootUri": root_uri,
            "workspaceFolders": [{"uri": root_uri, "name": Path(root).name}],
            "capabilities": caps, "initializationOptions": options or {},
        })
        self.notify("initialized", {})
        return result  # type: ignore[no-any-return]

    def open(self, path: str | os.PathLike, text: str | None = None, version: int = 1) -> str:
        uri = Path(path).resolve().as_uri()
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": version, "text": text}})
        return uri

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})

    def save(self, uri: str, text: str | None = None) -> None:
        params: dict = {"textDocument": {"uri": uri}}
        if text is not None:
            params["text"] = text
        self.notify("textDocument/didSave", params)

    def close(self, uri: str) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def wait_for_diagnostics(self, uri: str, after: int = 0, timeout: float = 60,
                             until: Callable[[list[dict]], bool] | None = None) -> list[dict]:
        """The diagnostics of the first publication for `uri` past the `after`-th (that `until` accepts)."""
        deadline = time.monotonic() + timeout
        with self._published:
            while True:
                count = self.publish_count.get(uri, 0)
                if count > after and (until is None or until(self.diagnostics[uri])):
                    return self.diagnostics[uri]
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise LspError(f"no diagnostics for {uri} in {timeout} s; server stderr:\n"
                                   + "".join(self.stderr_lines[-40:]))
                self._published.wait(left)

    def shutdown(self, timeout: float = 20) -> int:
        """shutdown, exit, and the server's exit status."""
        try:
            if self.process.poll() is None:
                self.request("shutdown", None, timeout=timeout)
                self.notify("exit", None)
        except (LspError, OSError):
            pass
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> "LspClient":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.shutdown()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
