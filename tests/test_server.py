"""The editor server end to end: spawn `sync-lint server` over stdio, talk JSON-RPC as an editor does.

The client (`sync_lint.server.client`) is a plain JSON-RPC client with Content-Length
framing; it does not import pygls. The server needs pygls (`sync-lint[server]`, also
in the `test` extra so CI runs these); without it they skip, except the ones that
check what happens without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sync_lint.diagnostics import Diagnostic, Position
from sync_lint.server import pygls_available
from sync_lint.server.checker import noqa_edit
from sync_lint.server.client import LspClient

needs_pygls = pytest.mark.skipif(not pygls_available(),
                                 reason="pygls is not installed: pip install 'sync-lint[server]' to test the editor server")

README_EXAMPLE = textwrap.dedent("""\
    import torch


    def build(num_reqs: int, device: torch.device, lens_cpu: torch.Tensor):
        seq_lens = torch.zeros(num_reqs, dtype=torch.int32, device=device)
        max_len = seq_lens.max().item()
        starts = torch.zeros((num_reqs + 1,), dtype=torch.int32, device=device)
        starts[0] = 0
        lens = lens_cpu.to(device)
        return max_len, starts, lens
    """)

PYPROJECT = '[tool.sync-lint]\ntarget-torch-version = "2.11"\n'


def apply_text_edits(text: str, edits: list[dict]) -> str:
    """Apply LSP TextEdits (UTF-16 positions; the fixtures are ASCII) to `text`, last first."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)

    def offset(position: dict) -> int:
        return min(starts[position["line"]] + position["character"], len(text)) if position["line"] < len(starts) \
            else len(text)

    for edit in sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True):
        text = text[:offset(edit["range"]["start"])] + edit["newText"] + text[offset(edit["range"]["end"]):]
    return text


def edits_of(action: dict, uri: str) -> list[dict]:
    edit = action["edit"]
    if "documentChanges" in edit:
        return [e for change in edit["documentChanges"] if change["textDocument"]["uri"] == uri for e in change["edits"]]
    return edit["changes"][uri]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "metadata.py").write_text(README_EXAMPLE)
    return tmp_path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One server for the tests that do not change the configuration (spawning one costs seconds)."""
    if not pygls_available():
        pytest.skip("pygls is not installed: pip install 'sync-lint[server]' to test the editor server")
    root = tmp_path_factory.mktemp("workspace")
    (root / "pyproject.toml").write_text(PYPROJECT)
    for name in ("opened", "hovered", "actions", "fixall", "typing"):
        (root / f"{name}.py").write_text(README_EXAMPLE)
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "buffers.py").write_text(BUFFERS)
    (package / "user.py").write_text(USER)
    with LspClient(cwd=root) as lsp:
        lsp.initialize(root)
        yield lsp, root


BUFFERS = textwrap.dedent("""\
    import torch


    def make_lens(n: int) -> torch.Tensor:
        return torch.zeros(n, device="cuda")
    """)
USER = textwrap.dedent("""\
    from pkg.buffers import make_lens


    def total(n: int) -> int:
        return make_lens(n).sum().item()
    """)


def by_code(diagnostics: list[dict]) -> dict[str, dict]:
    return {d["code"]: d for d in diagnostics}


# ==========================================================================================
# End to end
# ==========================================================================================


@needs_pygls
def test_diagnostics_on_open_with_ranges_evidence_and_fix_labels(shared) -> None:
    client, root = shared
    uri = client.open(root / "opened.py")
    found = by_code(client.wait_for_diagnostics(uri))
    assert set(found) == {"SL101", "SL301", "SL303"}
    item = found["SL101"]
    assert item["range"] == {"start": {"line": 5, "character": 14}, "end": {"line": 5, "character": 35}}
    assert item["source"] == "sync-lint" and item["severity"] == 2
    related = item["relatedInformation"]
    assert related[0]["location"]["uri"] == uri and related[0]["location"]["range"]["start"]["line"] == 4
    assert "`seq_lens` is on the GPU" in related[0]["message"]
    assert found["SL301"]["message"].endswith("[fix: safe]")
    assert found["SL303"]["message"].endswith("[fix: unsafe]")
    assert any("checked" in line and "project index" in line for line in client.log)


@needs_pygls
def test_hover_shows_the_evidence_chain(shared) -> None:
    client, root = shared
    uri = client.open(root / "hovered.py")
    client.wait_for_diagnostics(uri)
    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 20}})
    value = hover["contents"]["value"]
    assert hover["contents"]["kind"] == "markdown"
    assert "**SL101**" in value and "*Evidence:*" in value
    assert "`seq_lens` is on the GPU" in value and "[line 5]" in value
    assert "*Confidence:* high" in value
    nothing = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
    assert nothing is None


@needs_pygls
def test_code_actions_safe_fix_unsafe_label_and_noqa(shared) -> None:
    client, root = shared
    text = README_EXAMPLE
    uri = client.open(root / "actions.py")
    found = by_code(client.wait_for_diagnostics(uri))

    def actions_at(code: str) -> list[dict]:
        diagnostic = found[code]
        return client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": diagnostic["range"],
            "context": {"diagnostics": [diagnostic], "only": ["quickfix"]}}) or []

    safe = [a for a in actions_at("SL301") if a["title"].startswith("Fix SL301")]
    assert len(safe) == 1 and safe[0]["isPreferred"] is True and "(unsafe)" not in safe[0]["title"]
    assert safe[0]["diagnostics"][0]["code"] == "SL301"
    fixed = apply_text_edits(text, edits_of(safe[0], uri))
    assert "    starts[0].fill_(0)\n" in fixed and fixed.count("\n") == text.count("\n")

    unsafe = [a for a in actions_at("SL303") if a["title"].startswith("Fix SL303")]
    assert len(unsafe) == 1 and "(unsafe)" in unsafe[0]["title"] and not unsafe[0].get("isPreferred")
    assert "lens_cpu.pin_memory().to(device, non_blocking=True)" in apply_text_edits(text, edits_of(unsafe[0], uri))

    assert not [a for a in actions_at("SL101") if a["title"].startswith("Fix")]  # SL101 has no fix
    noqa = [a for a in actions_at("SL101") if "noqa" in a["title"]]
    assert noqa[0]["title"] == "Disable SL101 for this line (# noqa: SL101)"
    silenced = apply_text_edits(text, edits_of(noqa[0], uri))
    assert "    max_len = seq_lens.max().item()  # noqa: SL101\n" in silenced

    # The editor applies the noqa edit: the next check no longer reports SL101.
    before = client.publish_count[uri]
    client.change(uri, silenced, 2)
    after = client.wait_for_diagnostics(uri, after=before)
    assert set(by_code(after)) == {"SL301", "SL303"}


@needs_pygls
def test_fix_all_source_action_resolves_to_the_fixers_output(shared) -> None:
    client, root = shared
    uri = client.open(root / "fixall.py")
    client.wait_for_diagnostics(uri)
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
        "context": {"diagnostics": [], "only": ["source.fixAll"]}})
    assert [a["kind"] for a in actions] == ["source.fixAll.sync-lint"]
    assert "edit" not in actions[0]  # the client resolves edits lazily
    resolved = client.request("codeAction/resolve", actions[0])
    fixed = apply_text_edits(README_EXAMPLE, edits_of(resolved, uri))
    assert "starts[0].fill_(0)" in fixed
    assert "lens_cpu.to(device)" in fixed  # the unsafe fix is not part of "fix all"


@needs_pygls
def test_unsaved_changes_are_checked_and_a_syntax_error_is_a_diagnostic(shared) -> None:
    client, root = shared
    uri = client.open(root / "typing.py")
    client.wait_for_diagnostics(uri)
    broken = README_EXAMPLE.replace("starts[0] = 0", "starts[0] = = 0")
    count = client.publish_count[uri]
    client.change(uri, broken, 2)
    diagnostics = client.wait_for_diagnostics(uri, after=count)
    assert [d["code"] for d in diagnostics] == ["SL000"]
    assert diagnostics[0]["severity"] == 1 and diagnostics[0]["range"]["start"]["line"] == 7
    assert client.process.poll() is None  # still serving
    # Typing on: several edits in a burst, the last one is what gets reported.
    count = client.publish_count[uri]
    for version in range(3, 8):
        client.change(uri, README_EXAMPLE + f"\n\ndef more(t: torch.Tensor):\n    x = t.cuda()\n    return x.item() + {version}\n",
                      version)
    final = client.wait_for_diagnostics(uri, after=count, until=lambda ds: any(d["range"]["start"]["line"] == 14 for d in ds))
    assert sorted(d["code"] for d in final) == ["SL101", "SL101", "SL301", "SL303"]
    assert (root / "typing.py").read_text() == README_EXAMPLE  # nothing written


@needs_pygls
def test_a_long_check_does_not_block_requests(shared) -> None:
    client, root = shared
    small = client.open(root / "hovered.py")
    client.wait_for_diagnostics(small)
    # A file of 150 copies of the example: its check takes seconds on the worker thread.
    big_text = "import torch\n" + "".join(README_EXAMPLE.replace("import torch\n", "").replace("def build", f"def build{i}")
                                          for i in range(150))
    big = client.open(root / "big.py", big_text)
    hover = client.request("textDocument/hover", {"textDocument": {"uri": small},
                                                  "position": {"line": 5, "character": 20}})
    answered_first = big not in client.publish_count  # the hover came back while the big file was being checked
    assert "**SL101**" in hover["contents"]["value"]
    assert len(client.wait_for_diagnostics(big, timeout=300)) == 450
    assert answered_first


@needs_pygls
def test_settings_from_the_project_config_and_config_changes(project: Path) -> None:
    with LspClient(cwd=project) as client:
        client.initialize(project)
        _config_changes(client, project)


def _config_changes(client: LspClient, project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT + 'ignore = ["SL301"]\nextend-exclude = ["generated/"]\n')
    (project / "generated").mkdir()
    (project / "generated" / "out.py").write_text(README_EXAMPLE)
    uri = client.open(project / "metadata.py")
    assert set(by_code(client.wait_for_diagnostics(uri))) == {"SL101", "SL303"}
    excluded = client.open(project / "generated" / "out.py")
    assert client.wait_for_diagnostics(excluded) == []
    # The user edits the configuration and saves it: open files are checked again.
    count = client.publish_count[uri]
    (project / "pyproject.toml").write_text(PYPROJECT + 'ignore = ["SL303"]\n')
    client.save((project / "pyproject.toml").resolve().as_uri())
    assert set(by_code(client.wait_for_diagnostics(uri, after=count))) == {"SL101", "SL301"}


@needs_pygls
def test_editor_settings_override_the_config_capabilities_and_shutdown(project: Path) -> None:
    lsp = LspClient(cwd=project)
    try:
        lsp.settings = {"select": ["SL101"]}  # what the client answers to workspace/configuration
        result = lsp.initialize(project, options={"select": ["SL3"]})
        capabilities = result["capabilities"]
        assert capabilities["hoverProvider"] and capabilities["codeActionProvider"]["resolveProvider"]
        assert "source.fixAll.sync-lint" in capabilities["codeActionProvider"]["codeActionKinds"]
        assert result["serverInfo"]["name"] == "sync-lint"
        uri = lsp.open(project / "metadata.py")
        assert set(by_code(lsp.wait_for_diagnostics(uri))) == {"SL101"}
        assert lsp.shutdown() == 0
    finally:
        lsp.__exit__()


@needs_pygls
def test_a_finding_through_the_project_index_carries_cross_file_evidence(shared) -> None:
    lsp, root = shared
    package = root / "pkg"
    uri = lsp.open(package / "user.py")
    diagnostics = lsp.wait_for_diagnostics(uri)
    assert [d["code"] for d in diagnostics] == ["SL101"]
    related = diagnostics[0]["relatedInformation"]
    assert any(r["location"]["uri"] == (package / "buffers.py").resolve().as_uri() for r in related), related
    # An unsaved edit of the buffer is checked against the index as typed.
    count = lsp.publish_count[uri]
    lsp.change(uri, USER + "\n\ndef listed(n: int) -> list:\n    return make_lens(n).tolist()\n", 2)
    assert sorted(d["code"] for d in lsp.wait_for_diagnostics(uri, after=count)) == ["SL101", "SL102"]
    hover = lsp.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 12}})
    assert "buffers.py:4" in hover["contents"]["value"]
    # Another file of the project is changed and saved: the index is brought up to date and the
    # open files are checked again.
    count = lsp.publish_count[uri]
    (package / "buffers.py").write_text(BUFFERS.replace('device="cuda"', 'device="cpu"'))
    lsp.save((package / "buffers.py").resolve().as_uri())
    assert lsp.wait_for_diagnostics(uri, after=count) == []


NEOVIM_SCRIPT = """\
local out = {}
local PYTHON, OUT = vim.env.SYNC_LINT_PYTHON, vim.env.SYNC_LINT_OUT
local function log(s) table.insert(out, s) end
local client_id = vim.lsp.start_client({
  name = "sync-lint",
  cmd = { PYTHON, "-m", "sync_lint", "server" },
  root_dir = vim.fn.getcwd(),
  settings = { ["sync-lint"] = { debounceMs = 0 } },
})
vim.cmd("edit metadata.py")
vim.lsp.buf_attach_client(0, client_id)
local ok = vim.wait(180000, function() return #vim.diagnostic.get(0) >= 3 end, 100)
log("diagnostics arrived: " .. tostring(ok))
for _, d in ipairs(vim.diagnostic.get(0)) do
  local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code) or "?"
  log(string.format("diag %d:%d %s %s", d.lnum + 1, d.col + 1, code, d.message:sub(1, 50)))
end
local tdp = vim.lsp.util.make_text_document_params(0)
local hover = vim.lsp.buf_request_sync(0, "textDocument/hover", { textDocument = tdp, position = { line = 5, character = 20 } }, 60000)
for _, r in pairs(hover or {}) do
  if r.result then log("hover: " .. r.result.contents.value:gsub("\\n", " | "):sub(1, 160)) end
end
local diags = vim.lsp.diagnostic.get_line_diagnostics(0, 7)
local actions = vim.lsp.buf_request_sync(0, "textDocument/codeAction", {
  textDocument = tdp,
  range = { start = { line = 7, character = 4 }, ["end"] = { line = 7, character = 17 } },
  context = { diagnostics = diags, only = { "quickfix" } },
}, 60000)
for _, r in pairs(actions or {}) do
  for _, a in ipairs(r.result or {}) do
    log("action: " .. a.title:sub(1, 70))
  end
  for _, a in ipairs(r.result or {}) do
    if a.title:find("^Fix SL301") then
      vim.lsp.util.apply_workspace_edit(a.edit, "utf-16")
      break
    end
  end
end
log("line 8 after the fix: " .. vim.api.nvim_buf_get_lines(0, 7, 8, false)[1])
local ok2 = vim.wait(60000, function() return #vim.diagnostic.get(0) == 2 end, 100)
log("after the fix, diagnostics: " .. #vim.diagnostic.get(0) .. " " .. tostring(ok2))
vim.fn.writefile(out, OUT)
vim.lsp.stop_client(client_id)
vim.wait(2000)
vim.cmd("qa!")
"""


@needs_pygls
@pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed (the real-editor check runs where it is)")
def test_neovim_built_in_client(project: Path) -> None:
    """Neovim's own LSP client (0.7+: `vim.lsp.start_client`, incremental changes): diagnostics, hover,
    a code action applied, and the re-check after it."""
    script = project / "check.lua"
    script.write_text(NEOVIM_SCRIPT)
    out = project / "out.txt"
    env = {**os.environ, "SYNC_LINT_PYTHON": sys.executable, "SYNC_LINT_OUT": str(out)}
    subprocess.run(["nvim", "--headless", "-u", "NONE", "-c", f"luafile {script}"], cwd=project, env=env,
                   capture_output=True, timeout=400)
    lines = out.read_text().splitlines()
    assert lines[0] == "diagnostics arrived: true"
    assert [line.split()[2] for line in lines if line.startswith("diag ")] == ["SL101", "SL301", "SL303"]
    assert any(line.startswith("hover: **SL101**") for line in lines)
    assert "action: Fix SL301: Use `starts[0].fill_(...)`" in lines
    assert "line 8 after the fix:     starts[0].fill_(0)" in lines
    assert lines[-1] == "after the fix, diagnostics: 2 true"


def test_server_without_pygls_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['pygls'] = None; sys.modules['lsprotocol'] = None\n"
            "from sync_lint.cli import main\nmain(['server'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert "pip install 'sync-lint[server]'" in done.stderr


# ==========================================================================================
# # noqa edits
# ==========================================================================================


def _diagnostic(code: str, row: int, end_row: int | None = None) -> Diagnostic:
    return Diagnostic(code=code, name="x", message="m", path="a.py", start=Position(row, 1),
                      end=Position(end_row or row, 2), noqa_row=row)


def _apply(text: str, edit) -> str:  # type: ignore[no-untyped-def]
    return text[:edit.start] + edit.content + text[edit.end:]


def test_noqa_edit_appends_and_merges() -> None:
    text = "x = t.item()\ny = t.item()  # noqa: E501\nz = t.item()  # noqa\nw = 1  # noqa: SL101\n"
    assert _apply(text, noqa_edit(text, _diagnostic("SL101", 1))).splitlines()[0] == "x = t.item()  # noqa: SL101"
    assert _apply(text, noqa_edit(text, _diagnostic("SL101", 2))).splitlines()[1] == "y = t.item()  # noqa: E501, SL101"
    assert noqa_edit(text, _diagnostic("SL101", 3)) is None  # a blanket noqa covers it already
    assert noqa_edit(text, _diagnostic("SL101", 4)) is None


def test_noqa_edit_avoids_multiline_strings_and_continuations() -> None:
    text = 'x = f(t.item(), """\nabc\n""")\ny = t.item() + \\\n    1\n'
    edited = _apply(text, noqa_edit(text, _diagnostic("SL101", 1, 3)))
    assert edited.splitlines()[2] == '""")  # noqa: SL101'
    edited = _apply(text, noqa_edit(text, _diagnostic("SL101", 4, 5)))
    assert edited.splitlines()[4] == "    1  # noqa: SL101"


def test_noqa_edit_keeps_crlf() -> None:
    text = "x = t.item()\r\ny = 1\r\n"
    assert _apply(text, noqa_edit(text, _diagnostic("SL101", 1))) == "x = t.item()  # noqa: SL101\r\ny = 1\r\n"


# ==========================================================================================
# What the project sees of an unsaved buffer (no protocol)
# ==========================================================================================


def test_index_buffer_option_decides_whether_new_definitions_count_before_a_save(tmp_path: Path) -> None:
    from sync_lint.server.checker import Checker, Options

    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    runner = tmp_path / "pkg" / "runner.py"
    runner.write_text("import torch\n\n\ndef size(n: int) -> int:\n    return n\n")
    buffer = runner.read_text() + ("\n\ndef make(n: int) -> torch.Tensor:\n    return torch.zeros(n, device='cuda')\n"
                                   "\n\ndef use(n: int) -> float:\n    return make(n).item()\n")
    fast = Checker(Options()).check(str(runner), buffer)
    precise = Checker(Options(index_buffer=True)).check(str(runner), buffer)
    assert fast.project and precise.project
    # Default: the project sees the file as saved, so `make` (new, unsaved) is not known yet.
    assert fast.diagnostics == []
    assert [(d.code, d.start.row) for d in precise.diagnostics] == [("SL101", 13)]
    assert "`make` returns" in (precise.diagnostics[0].evidence or "")
    # Saved, it counts either way.
    runner.write_text(buffer)
    checker = Checker(Options())
    assert [d.code for d in checker.check(str(runner), buffer).diagnostics] == ["SL101"]
