"""Programs for fuzzing the fixer: generated around the rules' patterns, or mutated real files.

`programs()` builds modules from the statements the fixes rewrite (`buf[0] = v`,
`x.new_tensor(...)`, `torch.tensor(v, device=...)`, `.item()` beside a `_cpu`
mirror, ...), placed in functions, methods, closures and nested functions, under
every way of binding torch: `import torch`, an alias, imports inside functions
(lazy), `if TYPE_CHECKING:` only, `try`/`except ImportError`, or none at all.

`mutations()` reshapes a real file (a fixture, a corpus file): torch aliased,
imported lazily or only under TYPE_CHECKING, its definitions nested in a class or a
function, comments put inside bracketed spans (where fixes edit), tabs, CRLF.

The file-level shapes (a BOM, a coding cookie) are bytes: `as_bytes()`.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from hypothesis import strategies as st

# --- generated programs ------------------------------------------------------------------------
IMPORT_STYLES = ("plain", "alias", "lazy", "lazy_alias", "type_checking", "try", "none")

# Statements on a GPU tensor `g`; {v} is a value, {i} a unique number.
ON_GPU = (
    "g[0] = {v}",
    "g[1:3] = {v}",
    "y{i} = g.new_tensor({v})",
    "y{i} = g.new_tensor([{v}, 2])",
    "y{i} = g.new_tensor(\n        {v},  # a comment inside the span\n    )",
    "y{i} = g.sum().item()",
    "y{i} = g.max().item() + g_cpu.max().item()",
    "y{i} = g.tolist()",
    "if g.any():\n        y{i} = 1",
    "y{i} = g[g > 0]",
    "y{i} = g.nonzero()  # sync-lint: nonzero-size=4",
    "y{i} = g.unique()",
)
# Statements that name torch itself; {T} is the name torch is bound to.
WITH_TORCH = (
    "y{i} = {T}.tensor({v}, device=\"cuda\")",
    "y{i} = {T}.tensor([1, {v}], device=\"cuda\")",
    "y{i} = {T}.tensor({v}, dtype={T}.int32, device=g.device)",
    "y{i} = {T}.tensor([g.sum(), g.max()])",
    "y{i} = {T}.nonzero(g > 0)  # sync-lint: nonzero-size=8",
    "y{i} = {T}.ones(3).to(\"cuda\")",
    "y{i} = h_cpu.to(g.device)",
    "{T}.cuda.synchronize()",
    "y{i} = {T}.bincount(g.long())",
    "y{i} = {T}.repeat_interleave(g, 2)",
)
VALUES = st.sampled_from(["0", "1", "-1", "7", "0.5", "1e30", "70000.0", "n", "True", "scale"])


@st.composite
def _statements(draw: st.DrawFn, uses_torch: bool, start: int) -> list[str]:
    pool = ON_GPU + (WITH_TORCH if uses_torch else ())
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    return [template.format(v=draw(VALUES), i=start + k, T="{T}") for k, template in enumerate(chosen)]


@st.composite
def _function(draw: st.DrawFn, style: str, index: int) -> str:
    """One function (maybe a method, a closure, or nesting another) whose body uses a GPU tensor."""
    own_import = style in ("lazy", "lazy_alias") and draw(st.booleans())
    torch_name = {"alias": "th", "lazy_alias": "tt"}.get(style, "torch")
    # Without a run-time torch here, the GPU tensor comes from a parameter.
    runtime = style in ("plain", "alias", "try", "none") or own_import
    body = []
    if draw(st.booleans()):
        body.append('"""Docstring."""')
    if own_import:
        body.append(f"import torch as {torch_name}" if style == "lazy_alias" else "import torch")
    if runtime and draw(st.booleans()):
        body.append(f"g = {torch_name}.zeros(8, device=\"cuda\")")
        body.append(f"g_cpu = {torch_name}.zeros(8)")
        body.append(f"h_cpu = {torch_name}.ones(4)")
    else:
        body.append("g = src.cuda()")
        body.append("g_cpu = src.cpu()")
        body.append("h_cpu = src.cpu()")
    body += draw(_statements(runtime, index * 10))
    body.append("return g")
    text = "\n".join(body).replace("{T}", torch_name)
    indented = "\n".join("    " + line if line else line for line in text.splitlines())
    header = f"def f{index}(src: \"torch.Tensor\", n: int = 1, scale: float = 1.0):\n"
    shape = draw(st.sampled_from(["function", "method", "closure", "inner"]))
    if shape == "function":
        return header + indented + "\n"
    if shape == "method":
        method = header.replace("(src", "(self, src") + indented + "\n"
        return f"class C{index}:\n" + _indent(method)
    if shape == "closure":  # the outer function binds torch; the inner one uses it
        outer_import = "    import torch\n" if style in ("lazy", "lazy_alias") else ""
        inner = header.replace(f"f{index}", "inner") + indented + "\n"
        return f"def outer{index}(src):\n{outer_import}" + _indent(inner) + "    return inner(src)\n"
    inner = header + indented + "\n"  # nested inside a plain wrapper
    return f"def wrap{index}():\n" + _indent(inner) + f"    return f{index}\n"


def _indent(text: str, by: str = "    ") -> str:
    return "".join(by + line if line.strip() else line for line in text.splitlines(keepends=True))


_MODULE_IMPORTS = {
    "plain": "import torch\n",
    "alias": "import torch as th\n",
    "lazy": "",
    "lazy_alias": "",
    "type_checking": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import torch\n",
    "try": "try:\n    import torch\nexcept ImportError:\n    torch = None\n",
    "none": "",
}


@st.composite
def programs(draw: st.DrawFn) -> str:
    """A module of one or two functions in one import style, maybe reshaped by `mutations`."""
    style = draw(st.sampled_from(IMPORT_STYLES))
    parts = []
    if draw(st.booleans()):
        parts.append('"""A generated module; importing it must not import torch unless it says so."""\n')
    if draw(st.booleans()):
        parts.append("from __future__ import annotations\n")
    parts.append(_MODULE_IMPORTS[style])
    header = "\n".join(p for p in parts if p)
    functions = [draw(_function(style, index)) for index in range(draw(st.integers(1, 2)))]
    text = (header + "\n\n" if header else "") + "\n\n".join(functions)
    return draw(reshaped(text))


# --- mutations of real files --------------------------------------------------------------------
def alias_torch(text: str) -> str:
    """`import torch` -> `import torch as th`, and every `torch.` with it."""
    if not re.search(r"^import torch$", text, re.M):
        return text
    out = []
    for line in text.splitlines(keepends=True):
        if re.match(r"\s*(import|from) ", line):
            out.append(re.sub(r"^(\s*)import torch(\r?\n)", r"\1import torch as th\2", line))
        else:
            out.append(re.sub(r"(?<![\w.])torch\.", "th.", line))
    return "".join(out)


def only_type_checking(text: str) -> str:
    """The module-level `import torch` only under `if TYPE_CHECKING:`."""
    return re.sub(r"^import torch$", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch",
                  text, count=1, flags=re.M)


def lazy_imports(text: str) -> str:
    """No module-level `import torch`; each function imports it at the top of its body."""
    if not re.search(r"^import torch$", text, re.M):
        return text
    text = re.sub(r"^import torch\n", "", text, count=1, flags=re.M)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    lines = text.splitlines(keepends=True)
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
            first_line = getattr(first, "decorator_list", None) and first.decorator_list[0].lineno or first.lineno
            if first_line > node.lineno and lines[first_line - 1][: first.col_offset].strip() == "":
                targets.append((first_line, lines[first_line - 1][: first.col_offset]))
    for line, indent in sorted(set(targets), reverse=True):
        lines.insert(line - 1, f"{indent}import torch\n")
    return "".join(lines)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def nest_definitions(text: str, wrapper: str = "class") -> str:
    """Each top-level definition moved into a class (or a function) of its own."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    lines = text.splitlines(keepends=True)
    for index, node in reversed(list(enumerate(tree.body))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or start
        block = [("    " + line if line.strip() else line) for line in lines[start - 1:end]]
        head = f"class _Wrap{index}:\n" if wrapper == "class" else f"def _wrap{index}():\n"
        tail = [] if wrapper == "class" else [f"    return {node.name}\n"]
        lines[start - 1:end] = [head, *block, *tail]
    return "".join(lines)


def comments_in_brackets(text: str, every: int = 2) -> str:
    """A comment at the end of every `every`-th line that continues inside brackets."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text
    lines = text.splitlines(keepends=True)
    commented = {t.start[0] for t in tokens if t.type == tokenize.COMMENT}
    rows = [t.start[0] for t in tokens if t.type == tokenize.NL and t.line.strip() and t.start[0] not in commented]
    # Only rows where the NL ends a bracketed continuation (depth > 0 at that point).
    depth_rows = _rows_inside_brackets(tokens)
    for row in sorted({r for r in rows if r in depth_rows}, reverse=True)[::every]:
        line = lines[row - 1]
        body = line.rstrip("\r\n")
        lines[row - 1] = body + "  # fuzz" + line[len(body):]
    return "".join(lines)


def _rows_inside_brackets(tokens: list[tokenize.TokenInfo]) -> set[int]:
    depth, rows = 0, set()
    for token in tokens:
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.NL and depth > 0:
            rows.add(token.start[0])
    return rows


def break_calls(text: str) -> str:
    """Open every call with a comment and a line break: `f(  # fuzz\\n    a, b)`."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text
    lines = text.splitlines(keepends=True)
    spots = [t for t, before in zip(tokens[1:], tokens) if t.type == tokenize.OP and t.string == "("
             and before.type == tokenize.NAME and before.string not in ("def", "class")]
    for token in sorted(spots, key=lambda t: t.start, reverse=True):
        row, col = token.start
        line = lines[row - 1]
        if "#" in line[col:]:
            continue
        newline = line[len(line.rstrip("\r\n")):] or "\n"
        lines[row - 1] = line[: col + 1] + "  # fuzz" + newline + "        " + line[col + 1:].lstrip()
    return "".join(lines)


def tabs(text: str) -> str:
    """Leading indentation in tabs (one per four spaces)."""
    return re.sub(r"^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), text, flags=re.M)


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


TEXT_MUTATIONS = {
    "alias": alias_torch,
    "type_checking": only_type_checking,
    "lazy": lazy_imports,
    "nest_class": lambda t: nest_definitions(t, "class"),
    "nest_function": lambda t: nest_definitions(t, "function"),
    "comments": comments_in_brackets,
    "break_calls": break_calls,
    "tabs": tabs,
    "crlf": crlf,
}
# Mutations that change how torch is bound exclude one another.
_EXCLUSIVE = ({"alias", "type_checking", "lazy"}, {"nest_class", "nest_function"})


@st.composite
def reshaped(draw: st.DrawFn, text: str) -> str:
    """`text` under a random subset of the layout mutations (tabs, CRLF, comments in spans)."""
    for name in ("comments", "break_calls", "tabs", "crlf"):
        if draw(st.booleans()):
            text = TEXT_MUTATIONS[name](text)
    return text


@st.composite
def mutations(draw: st.DrawFn, sources: list[str]) -> tuple[str, tuple[str, ...]]:
    """(a mutated source, the mutations applied, in order)."""
    text = draw(st.sampled_from(sources))
    names = draw(st.lists(st.sampled_from(list(TEXT_MUTATIONS)), unique=True, max_size=4))
    for group in _EXCLUSIVE:
        names = [n for n in names if n not in group or n == next(m for m in names if m in group)]
    applied = tuple(name for name in TEXT_MUTATIONS if name in names)  # in the table's order
    for name in applied:
        text = TEXT_MUTATIONS[name](text)
    return text, applied


def as_bytes(text: str, bom: bool, cookie: str | None) -> bytes:
    """The file as written: a coding cookie line first (if any), a BOM (if any), in that encoding."""
    newline = "\r\n" if "\r\n" in text else "\n"
    if cookie is not None:
        text = f"# -*- coding: {cookie} -*-{newline}" + text
    data = text.encode(cookie or "utf-8")
    return (b"\xef\xbb\xbf" if bom else b"") + data
