#!/usr/bin/env python3
"""How much of a corpus a sound name-level first pass could skip before libcst.

    python benchmarks/first_pass_bound.py benchmarks/corpus/vllm-0.33.0 FINDINGS.json [--project | --text]

Issue 13 asks for a first pass, cheaper than libcst, that decides which files can hold no finding.
The cheap tests are text tokens and taint over names. This script measures both, as upper bounds on
what such a pass could skip:

- `--text`: a file is kept when it holds one of the prefilter's GPU evidence tokens
  (`engine/prefilter.py`), the tokens a local GPU fact can follow from.

- Each file is parsed with `ast`. Seeds are what could make a value a GPU tensor in the file itself:
  a `device=` keyword that is not `None` or `"cpu"`, `.to(...)`, `.cuda()`, `.device`, a call into
  `torch.`/`numpy.` (a host tensor for SL303), a name ending in `_gpu`/`_cuda`/`_dev`, an accelerator
  string. Taint flows through assignments by name, in one function (flow-insensitive).
- A site is any place a rule could fire: a call of a syncing method or function, a truth test, a
  subscript's index or store, an f-string field. A file is kept when a site reads a tainted value.
- `--project` adds what the rest of the repository could hand in, by name, as a sound pass that does
  not run the project inference would have to: attributes stored from a tainted value anywhere,
  functions returning one, parameters of a function of that name given one at some call, module
  names, dict keys; solved to a fixed point over every file.

FINDINGS.json is a `check --output-format json` run of the same corpus: files with a finding are
counted apart, since a pass must keep them. Prints files and bytes kept and skipped.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sync_lint.analysis.conventions import GPU_NAMES_DEFAULT  # noqa: E402
from sync_lint.analysis.knowledge import ACCELERATOR_NAMES  # noqa: E402
from sync_lint.engine.prefilter import GPU_EVIDENCE_TOKENS  # noqa: E402

GPU_NAME = re.compile("|".join(GPU_NAMES_DEFAULT))
ACCELERATORS = (*ACCELERATOR_NAMES, "gpu")  # `"gpu"` too: a superset of the seeds keeps the bound an upper one
METHOD_SITES = {
    "item", "tolist", "cpu", "numpy", "nonzero", "argwhere", "unique", "bincount", "histc", "repeat_interleave",
    "masked_select", "masked_fill", "one_hot", "type", "__bool__", "__int__", "__float__", "__index__", "all", "any",
    "equal", "to", "cuda", "copy_", "isin", "mode", "unique_consecutive", "float", "int", "long", "inverse", "cholesky",
}
FUNCTION_SITES = {
    "nonzero", "where", "argwhere", "unique", "isin", "mode", "bincount", "histc", "repeat_interleave", "one_hot",
    "masked_select", "tensor", "as_tensor", "int", "float", "bool", "len", "list", "tuple", "range", "print", "str",
    "format", "max", "min", "sum", "any", "all", "sorted", "enumerate", "zip", "iter", "next", "inverse", "cholesky",
    "clip_grad_norm_", "cholesky_ex", "inv", "solve", "eigh", "det", "repr", "round", "abs", "divmod", "index",
    "from_numpy", "equal", "allclose", "set", "dict", "numpy", "asarray", "array",
}
SEED = ("seed",)


def _name_of(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


@dataclass
class FileTaint:
    """One file's assignments, the values it hands on by name, and its sites' sources."""

    size: int
    assigns: list = field(default_factory=list)  # (target, value, function)
    exports: list = field(default_factory=list)  # (channel, value, function)
    sites: list = field(default_factory=list)  # (expression, function)
    params: dict = field(default_factory=lambda: collections.defaultdict(set))
    edges: list = field(default_factory=list)  # (channel, sources)
    site_sources: list = field(default_factory=list)

    def collect(self, node: ast.AST, function: str | None = None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = child.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]:
                    self.params[child.name].add(arg.arg)
                self.collect(child, child.name)
                continue
            self._visit(child, function)
            self.collect(child, function)

    def _visit(self, n: ast.AST, function: str | None) -> None:
        if isinstance(n, ast.Assign):
            self.assigns.extend((t, n.value, function) for t in n.targets)
        elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None:
            self.assigns.append((n.target, n.value, function))
        elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension)):
            self.assigns.append((n.target, n.iter, function))
        elif isinstance(n, ast.NamedExpr):
            self.assigns.append((n.target, n.value, function))
        elif isinstance(n, ast.withitem) and n.optional_vars is not None:
            self.assigns.append((n.optional_vars, n.context_expr, function))
        elif isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom)) and n.value is not None and function:
            self.exports.append((("ret", function), n.value, function))
        if isinstance(n, ast.Call):
            name = _name_of(n.func)
            for arg in n.args:
                if name:
                    self.exports.append((("param", name), arg, function))
            for kw in n.keywords:
                if name:
                    self.exports.append((("param", name), kw.value, function))
                if kw.arg:
                    self.exports.append((("attr", kw.arg), kw.value, function))
                    self.exports.append((("key", kw.arg), kw.value, function))
            if name == "setattr" and len(n.args) >= 3 and isinstance(n.args[1], ast.Constant):
                self.exports.append((("attr", str(n.args[1].value)), n.args[2], function))
            if (name in METHOD_SITES and isinstance(n.func, ast.Attribute)) or name in FUNCTION_SITES:
                self.sites.append((n, function))
        elif isinstance(n, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            self.sites.append((n.test, function))
        elif isinstance(n, ast.comprehension):
            self.sites.extend((test, function) for test in n.ifs)
        elif isinstance(n, ast.BoolOp) or isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            self.sites.append((n, function))
        elif isinstance(n, ast.Subscript):
            self.sites.append((n if isinstance(n.ctx, ast.Store) else n.slice, function))
        elif isinstance(n, ast.FormattedValue):
            self.sites.append((n.value, function))
        elif isinstance(n, ast.Dict):
            for key, value in zip(n.keys, n.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    self.exports.append((("key", key.value), value, function))

    def sources(self, expression: ast.AST, function: str | None, local: dict, project: bool) -> set:
        out: set = set()
        for n in ast.walk(expression):
            if isinstance(n, ast.Call):
                if any(k.arg == "device" and not (isinstance(k.value, ast.Constant) and k.value.value in (None, "cpu"))
                       for k in n.keywords):
                    out.add(SEED)
                f = n.func
                if isinstance(f, ast.Attribute) and f.attr in ("cuda", "to"):
                    out.add(SEED)
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("torch", "np",
                                                                                                      "numpy"):
                    out.add(SEED)
                if project and (name := _name_of(f)):
                    out.add(("ret", name))
            elif isinstance(n, ast.Name):
                if GPU_NAME.search(n.id):
                    out.add(SEED)
                out |= local.get((function, n.id), set()) | local.get((None, n.id), set())
                if project:
                    if function and n.id in self.params.get(function, ()):
                        out.add(("param", function))
                    out.add(("glob", n.id))
            elif isinstance(n, ast.Attribute):
                if GPU_NAME.search(n.attr) or n.attr == "device":
                    out.add(SEED)
                out.add(("attr", n.attr))
                if project:
                    out.add(("ret", n.attr))
            elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) \
                    and isinstance(n.slice.value, str):
                out.add(("key", n.slice.value))
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.split(":")[0] in ACCELERATORS:
                out.add(SEED)
        return out

    def solve(self, project: bool) -> None:
        local: dict = collections.defaultdict(set)
        changed = True
        while changed:
            changed = False
            for target, value, function in self.assigns:
                found = self.sources(value, function, local, project)
                for n in ast.walk(target):
                    if isinstance(n, ast.Name) and not found <= local[(function, n.id)]:
                        local[(function, n.id)] |= found
                        changed = True
        for target, value, function in self.assigns:
            found = self.sources(value, function, local, project)
            for n in ast.walk(target):
                if isinstance(n, ast.Attribute):
                    self.edges.append((("attr", n.attr), found))
                elif isinstance(n, ast.Name) and function is None:
                    self.edges.append((("glob", n.id), found))
                elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) \
                        and isinstance(n.slice.value, str):
                    self.edges.append((("key", n.slice.value), found))
        self.edges += [(channel, self.sources(value, function, local, project))
                       for channel, value, function in self.exports]
        self.site_sources = list({frozenset(self.sources(e, function, local, project)) for e, function in self.sites})
        self.assigns = self.exports = self.sites = []  # free the trees


def solve_channels(edges) -> set:  # type: ignore[no-untyped-def]
    """The channels a seed reaches through `(channel, sources)` edges."""
    flows: dict = collections.defaultdict(list)
    for channel, sources in edges:
        for source in sources:
            flows[source].append(channel)
    tainted, stack = {SEED}, [SEED]
    while stack:
        for channel in flows.get(stack.pop(), ()):
            if channel not in tainted:
                tainted.add(channel)
                stack.append(channel)
    return tainted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("findings")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--project", action="store_true", help="add what other files could hand in, by name")
    mode.add_argument("--text", action="store_true", help="keep a file that holds a GPU evidence token")
    args = parser.parse_args(argv)
    with_findings = {os.path.realpath(d["filename"]) for d in json.loads(Path(args.findings).read_text("utf-8"))}
    files: dict[str, FileTaint] = {}
    for folder, _dirs, names in os.walk(args.corpus):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.realpath(os.path.join(folder, name))
            source = Path(path).read_bytes()
            if args.text:
                text = source.decode("utf-8", errors="replace")
                files[path] = FileTaint(len(source), site_sources=[{SEED}] if any(
                    token in text for token in GPU_EVIDENCE_TOKENS) else [])
                continue
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError):
                continue
            taint = FileTaint(len(source))
            taint.collect(tree)
            taint.solve(args.project)
            files[path] = taint
    if args.project:  # one fixed point over every file's channels
        everywhere = solve_channels(edge for taint in files.values() for edge in taint.edges)
    totals: collections.Counter = collections.Counter()
    for path, taint in files.items():
        tainted = everywhere if args.project else solve_channels(taint.edges)  # the file's own attributes, keys
        # (`--text`: a file's one "site" is the seed itself when it holds a token)
        kept = any(sources & tainted for sources in taint.site_sources)
        row = ("with a finding" if path in with_findings else "no finding", "kept" if kept else "skipped")
        totals[(*row, "files")] += 1
        totals[(*row, "bytes")] += taint.size
    print(f"{args.corpus} ({'project names' if args.project else 'text tokens' if args.text else 'each file alone'})")
    print("| files | kept | skipped | bytes kept | bytes skipped |\n|---|---:|---:|---:|---:|")
    for group in ("no finding", "with a finding"):
        print(f"| {group} | {totals[(group, 'kept', 'files')]} | {totals[(group, 'skipped', 'files')]} | "
              f"{totals[(group, 'kept', 'bytes')]:,} | {totals[(group, 'skipped', 'bytes')]:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
