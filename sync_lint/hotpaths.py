"""Hot paths in a run: which findings lie on a hot root's path, and SL601 at the hot call sites
that lead to a sync.

After the files are checked, `analyse` builds the call graph of each project
(`project/hot.py`), finds the roots, and walks from each root (breadth first, so
every chain is a shortest one). Each finding inside a reached function gets a
`Hotness`: the root, the chain, its loop depth inside its function, and whether the
chain passes through a module called in a loop (once per layer).

SL601 (`call-into-syncing-function`) is reported at a call site inside a hot
function whose callee reaches a finding through calls, naming the nearest one and
the chain to it. Suppression holds at every level:

- a sync suppressed where it is (`# noqa`, `with gpu_sync_allowed():`, a baseline
  entry, a per-file ignore) is no finding, so nothing above reports it;
- a call site inside an allowed-sync context, with `# noqa: SL601` (or a bare
  `# noqa`), in a file that ignores SL601, or whose SL601 the baseline records is a
  cut: what lies below it is not reported at any caller above it.

Calls are followed through files the run did not check (a helper in another module)
when the caller supplies `lint_more`: those files are checked too, and their findings
used only to see what the calls reach.

A run that changes nothing the pass reads reuses its last answer: the findings it left and
its summary are cached under a key of the project's content (every file's hash), the
settings, the checked files and their findings, so a warm run of a large project does not
load summaries to find again what it found last time.
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Iterable, NamedTuple, Sequence

from sync_lint.analysis.conventions import cpu_function
from sync_lint.diagnostics import ChainStep, Diagnostic, EvidenceStep, FileError, FileResult, Hotness, Position
from sync_lint.ranking import CONVENTION_IN_TEST, context_of
from sync_lint.suppression import file_directives, is_suppressed

if TYPE_CHECKING:
    from sync_lint.analysis.facts import Fact
    from sync_lint.config import Settings
    from sync_lint.project.build import OpenProject, Project
    from sync_lint.project.hot import CallGraph, Edge, Reach, Root, Unresolved
    from sync_lint.project.index import ProjectIndex
    from sync_lint.project.store import ProjectStore
    from sync_lint.project.summary import CallSite, FunctionInfo, ModuleSummary
    from sync_lint.project.values import Value

TRANSITIVE_CODE = "SL601"
TRANSITIVE_NAME = "call-into-syncing-function"
# How many calls down from a function off every hot path SL601 looks for a sync: the cost of a
# check of one file (the files those calls reach are checked too) stays near that of its hot part.
_COLD_CALLS = 3
# How many `override` hops (a call through a base reaching a subclass's method) one SL601 chain may take.
_MAX_OVERRIDE_HOPS = 1


class Known(NamedTuple):
    """What the calls along a chain pass to the current function: parameters that are None, and
    parameters that are another false literal."""

    none: frozenset[str] = frozenset()
    false: frozenset[str] = frozenset()
    # Parameters the call passes a value that is not None (explicitly, not by a default); and where
    # the call is (the file's path and the line), for a sync whose device only some calls supply.
    given: frozenset[str] = frozenset()
    at: tuple[str, int] | None = None
    caller: str = ""  # the function making the call at `at`
    # Parameters the call passes a value that is certainly not None (`Inference.not_none`): a line that
    # runs only when one of them is None (`FunctionInfo.none_guards`) does not run on this call.
    not_none: frozenset[str] = frozenset()
    # How many arguments the call gives the callee's `*args` parameter (`FunctionInfo.count_guards`);
    # None when it has none, or the calls on the line disagree.
    star_count: int | None = None


@dataclass
class HotReport:
    """What the hot-path pass found, for the summary line and `--show-unresolved`."""

    roots: list["Root"] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # configured roots that name no project function
    per_root: dict[str, int] = field(default_factory=dict)  # root -> findings whose shortest chain starts there
    hot_functions: int = 0
    unresolved_calls: int = 0  # call sites in hot functions the graph could not resolve
    unresolved: list["Unresolved"] = field(default_factory=list)  # those call sites, when asked to list them
    transitive: int = 0
    baselined: list[Diagnostic] = field(default_factory=list)  # hot call sites the baseline records
    passes: list = field(default_factory=list, repr=False)  # (project root, graph, pass) per project

    def merge(self, other: "HotReport") -> None:
        self.roots.extend(other.roots)
        self.missing.extend(other.missing)
        for root, count in other.per_root.items():
            self.per_root[root] = self.per_root.get(root, 0) + count
        self.hot_functions += other.hot_functions
        self.unresolved_calls += other.unresolved_calls
        self.unresolved.extend(other.unresolved)
        self.transitive += other.transitive
        self.baselined.extend(other.baselined)
        self.passes.extend(other.passes)

    def hotness_at(self, path: str, row: int) -> Hotness | None:
        """Whether a line of a file lies on a hot root's path (for lines that are no finding:
        the runtime trace's blocking lines)."""
        for root, graph, hot in self.passes:
            try:
                module = _module_of(path, root)
            except ValueError:
                continue
            summary = graph.index.summary(module)
            if summary is None:
                continue
            info = _innermost(summary, row)
            if info is not None:
                found = hot.hotness(summary.qualified(info.qualname), row, info)
                if found is not None:
                    return found
        return None

    def lines(self, diagnostics: Sequence[Diagnostic]) -> list[str]:
        """The summary: how many findings are on each root's path."""
        if not self.roots:
            return []
        direct = [d for d in diagnostics if d.code != TRANSITIVE_CODE]
        hot = [d for d in direct if d.hot is not None]
        out = [f"Hot paths: {len(hot)} of {len(direct)} findings on a hot path "
               f"({len(self.roots)} roots, {self.hot_functions} functions reached, "
               f"{self.unresolved_calls} unresolved calls in them)"]
        counts: dict[str, int] = {}
        for d in hot:
            counts[d.hot.root] = counts.get(d.hot.root, 0) + 1  # type: ignore[union-attr]
        named = [r for r in self.roots if r.why in ("config", "marker")]
        for root in named:
            out.append(f"  {root.function} ({root.label}): {counts.get(root.function, 0)}")
        kinds: dict[str, list[str]] = {}
        for root in self.roots:
            if root.why not in ("config", "marker"):
                kinds.setdefault(root.label, []).append(root.function)
        for label, members in kinds.items():
            total = sum(counts.get(m, 0) for m in members)
            out.append(f"  {label} ({len(members)} roots): {total}")
        transitive = sum(1 for d in diagnostics if d.code == TRANSITIVE_CODE)
        if transitive:
            out.append(f"  {transitive} hot call sites lead to a sync below them ({TRANSITIVE_CODE})")
        for spec in self.missing:
            out.append(f"  hot-paths entry {spec!r} names no function of the project")
        return out


def _innermost(summary: "ModuleSummary", row: int) -> "FunctionInfo | None":
    best = None
    for info in summary.functions.values():
        if info.line <= row <= info.end_line and (best is None or info.line >= best.line):
            best = info
    return best


def _short(qualname: str) -> str:
    parts = qualname.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 and parts[-2][:1].isupper() else parts[-1]


def _display_path(root: Path, relative: str) -> str:
    full = root / relative
    try:
        return os.path.relpath(full)
    except ValueError:
        return str(full)


class _Pass:
    """The hot-path pass over one project (or, without a project, the checked files on their own)."""

    def __init__(self, graph: "CallGraph", root: Path, settings: "Settings", selected: bool,
                 ignored: Callable[[str], frozenset[str]], keep: Callable[[Diagnostic], bool] | None) -> None:
        self.graph = graph
        self.index = graph.index
        self.root = root
        self.settings = settings
        self.selected = selected  # SL601 is enabled
        self.ignored = ignored  # path -> codes ignored in that file
        self.keep = keep
        self.allowed = frozenset(settings.allowed_sync_contexts)
        self._lines: dict[str, list[str]] = {}
        self.reaches: list["Reach"] = []
        self.best: dict[str, tuple[int, int]] = {}  # function -> (chain length, index of the reach)
        self.baselined: list[Diagnostic] = []  # call sites the baseline records (cuts)
        self._rebound: dict[str, frozenset[str]] = {}  # module -> the torch functions it replaces
        self._handed: dict[str, frozenset[str]] = {}  # function -> `_handed_on`, asked at every hop into it

    # --- reachability --------------------------------------------------------------------------------
    def follow(self, caller: str, edge: "Edge") -> bool:
        """Hotness does not flow into a call made inside an allowed-sync context, nor into one made where
        the code runs off CUDA: where a test says so (`if current_platform.is_cpu():`, `if not x.is_cuda:`,
        `if use_torch_reference(buf.device):`), or in a function written for the CPU platform
        (`cpu-functions`)."""
        if cpu_function(caller, self.settings.cpu_functions) is not None:
            return False
        contexts = edge.contexts
        return not contexts or not (any(c.rsplit(".", 1)[-1] in self.allowed for c in contexts)
                                    or self.index.runs_off_cuda(contexts))

    def walk(self, roots: list["Root"]) -> None:
        """Named roots (configured, marked) one at a time, so each gets its own count; the built-in
        ones of a kind (often hundreds of `forward`s) together, each function credited to the nearest."""
        groups: list[list["Root"]] = [[r] for r in roots if r.why in ("config", "marker")]
        kinds: dict[str, list["Root"]] = {}
        for r in roots:
            if r.why not in ("config", "marker"):
                kinds.setdefault(r.why, []).append(r)
        groups.extend(kinds.values())
        for position, group in enumerate(groups):
            reach = self.graph.reach(group, self.follow)
            self.reaches.append(reach)
            for function, depth in reach.depth.items():
                known = self.best.get(function)
                if known is None or depth < known[0]:
                    self.best[function] = (depth, position)

    def hotness(self, function: str, row: int, info: "FunctionInfo | None") -> Hotness | None:
        known = self.best.get(function)
        if known is None:
            return None
        reach = self.reaches[known[1]]
        chain = reach.chain(function)
        steps = []
        per_layer = False
        for position, (name, _edge) in enumerate(chain):
            following = chain[position + 1][1] if position + 1 < len(chain) else None
            found = self.graph.function(name)
            path = _display_path(self.root, found[0].path) if found is not None else ""
            steps.append(ChainStep(name, path, following.line if following is not None else None))
            if following is not None and following.loop_depth > 0 and \
                    following.kind in ("instance-call", "override", "replaced"):
                per_layer = True
        loop_depth = sum(1 for start, end in info.loops if start <= row <= end) if info is not None else 0
        root = reach.root_of(function)
        return Hotness(root.function, root.why, tuple(steps), loop_depth, per_layer)

    # --- transitive findings -----------------------------------------------------------------------
    def lines_of(self, path: str) -> list[str]:
        if path not in self._lines:
            try:
                self._lines[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self._lines[path] = []
        return self._lines[path]

    def transitive(self, syncs: dict[str, list[Diagnostic]], paths: dict[str, str],
                   report_in: set[str], cold: Iterable[str] = ()) -> list[Diagnostic]:
        """SL601 findings at call sites in the modules of `report_in` (function -> its direct findings;
        module -> the path to report it under): at hot call sites, and at the calls of `cold` (the
        other functions of those modules) into another module whose callee syncs on every call."""
        if not self.selected:
            return []
        hot = self._below(report_in, cold)
        # The hot call sites that are cuts: what lies below them is not reported above them.
        cut: set[tuple[str, int, str]] = set()
        reverse: dict[str, list[tuple[str, "Edge"]]] = {}
        forward: dict[str, list["Edge"]] = {}
        for function in hot:
            found = self.graph.function(function)
            if found is None:
                continue
            summary = found[0]
            path = paths.get(summary.module) or _display_path(self.root, summary.path)
            ignored = self.ignored(path)
            directives = None
            for edge in self.graph.edges(function):
                key = (function, edge.line, edge.callee)
                if not self.follow(function, edge) or TRANSITIVE_CODE in ignored:
                    cut.add(key)
                    continue
                if is_suppressed(TRANSITIVE_CODE, self.lines_of(path), (edge.line,)):
                    cut.add(key)
                    continue
                if directives is None:
                    directives = file_directives("\n".join(self.lines_of(path)))
                if TRANSITIVE_CODE in directives.ignored_codes:
                    cut.add(key)
                    continue
                if self.keep is not None:
                    line = self.lines_of(path)[edge.line - 1] if 0 < edge.line <= len(self.lines_of(path)) else ""
                    stub = Diagnostic(TRANSITIVE_CODE, TRANSITIVE_NAME, "", path, Position(edge.line, 1),
                                      Position(edge.line, 2), source_line=line)
                    if not self.keep(stub):  # the baseline records this call site
                        self.baselined.append(stub)
                        cut.add(key)
                        continue
                reverse.setdefault(edge.callee, []).append((function, edge))
                forward.setdefault(function, []).append(edge)
        # Nearest sync below each function: breadth first backwards from the functions holding one.
        nearest: dict[str, tuple[int, tuple[str, "Edge"] | None]] = {}
        queue: deque[str] = deque()
        for function in sorted(syncs):
            if syncs[function]:
                nearest[function] = (0, None)
                queue.append(function)
        pending: list[tuple[str, "Edge"]] = []
        while queue:
            current = queue.popleft()
            for caller, edge in reverse.get(current, ()):
                if caller not in nearest:
                    nearest[caller] = (nearest[current][0] + 1, (current, edge))
                    queue.append(caller)
                pending.append((caller, edge))
        out: list[Diagnostic] = []
        seen: set[tuple[str, int]] = set()
        for caller, edge in sorted(pending, key=lambda p: (p[0], p[1].line, nearest.get(p[1].callee, (99,))[0])):
            found = self.graph.function(caller)
            if found is None or found[0].module not in report_in or edge.callee not in nearest:
                continue
            if (caller, edge.line) in seen:
                continue
            cold = caller not in self.best
            if cold and not (self._across(found[0], found[1], edge) and self._every_target(caller, edge, forward, nearest)):
                continue
            # Default mode reports a chain only when every call on it and the sync at its end run on
            # every pass; --strict adds the chains that need a branch taken. Read one by one in
            # transformers and vLLM, 12 of 42 conditional chains were real syncs (packed-sequence
            # training, a first call, image passes), against 5 of 6 unconditional ones.
            live = self._live_path(caller, edge, nearest, forward, syncs, every_pass=True)
            conditional = live is None and self.settings.strict and not cold
            if conditional:
                live = self._live_path(caller, edge, nearest, forward, syncs, every_pass=False)
            if live is not None:
                live = self._unless_rebound(caller, edge, *live)
            if live is None:  # every chain below needs a parameter the callers pass as None, or a branch
                continue
            if cold and len(live[0]) + 1 > _COLD_CALLS:  # past what a check of this file alone looks through
                continue
            diagnostic = self._finding(caller, found[0], found[1], edge, *live, paths, conditional=conditional)
            if diagnostic is None:
                continue
            seen.add((caller, edge.line))
            out.append(diagnostic)
        return out

    def _unreferenced(self, summary: "ModuleSummary", info: "FunctionInfo") -> bool:
        """Whether no code that runs mentions the module-level function the call site is in
        (`ProjectIndex.unreferenced`; `report-unreferenced` off)."""
        if self.settings.report_unreferenced:
            return False
        return self.index.unreferenced(summary.module, info.qualname.split(".", 1)[0])

    def _unless_rebound(self, caller: str, edge: "Edge", hops: list[tuple[str, "Edge"]],
                        final: list[Diagnostic]) -> tuple[list[tuple[str, "Edge"]], list[Diagnostic]] | None:
        """The chain with the syncs at its end that still call torch's own function: not those that call
        a torch function a module along the chain replaces (vLLM's V1 CPU runner sets
        `torch.accelerator.synchronize` and `empty_cache` to no-ops before the GPU runner's methods it
        inherits run). None when no sync is left."""
        functions = [caller, *(function for function, _ in hops), hops[-1][1].callee if hops else edge.callee]
        rebound = frozenset().union(*(self._rebound_in(function) for function in functions))
        if not rebound:
            return hops, final
        found = self.graph.function(functions[-1])
        if found is None:
            return hops, final
        summary, info = found
        kept = [d for d in final if self._called(summary, info.qualname, d) not in rebound]
        return (hops, kept) if kept else None

    def _called(self, summary: "ModuleSummary", function: str, sync: Diagnostic) -> str | None:
        """The qualified name of the function a finding's span calls, through the module's imports
        (`torch.accelerator.synchronize`), if it spells one."""
        text = sync.source_line[sync.start.column - 1:] if sync.start.column >= 1 else sync.source_line
        called = _CALLED.match(text)
        if called is None:
            return None
        head, *attrs = re.sub(r"\s+", "", called.group(1)).split(".")
        value: tuple = ("name", head)
        for attr in attrs:
            value = ("attr", value, attr)
        return self.index.value_name(summary, value, function)

    def _rebound_in(self, function: str) -> frozenset[str]:
        """The torch functions the module of `function` replaces (`torch.accelerator.synchronize = noop`,
        at module level or in a function), or a module it loads with `import a.b.c` replaces at import:
        in a process that runs its code, calls of them are not torch's."""
        found = self.graph.function(function)
        if found is None:
            return frozenset()
        summary = found[0]
        rebound = self._rebound.get(summary.module)
        if rebound is None:
            names = set(_torch_stores(self.index, summary))
            for module in summary.loaded:
                loaded = self.index.summary(module)
                if loaded is not None:
                    names.update(_torch_stores(self.index, loaded, at_import=True))
            rebound = self._rebound[summary.module] = frozenset(names)
        return rebound

    def _below(self, report_in: set[str], cold: Iterable[str] = ()) -> list[str]:
        """The hot functions of the modules in `report_in` and every function their calls reach, then
        the rest of `cold`: a chain from one of them down to a sync passes through these only (one
        checked file of a large project reads the edges of its own part of the graph, not of every hot
        function)."""
        inside = _in_modules(report_in)
        start = [f for f in self.best if inside(f)]
        seen = set(start)
        queue = deque(start)
        while queue:
            for edge in self.graph.edges(queue.popleft()):
                if edge.callee not in seen and edge.callee in self.best:
                    seen.add(edge.callee)
                    queue.append(edge.callee)
        return [f for f in self.best if f in seen] + [f for f in cold if f not in seen]

    def near(self, start: list[str], calls: int) -> list[str]:
        """`start` and every function their calls reach within `calls` calls, nearest first."""
        out = dict.fromkeys(start)
        level = list(out)
        for _ in range(calls):
            self.graph.prefetch(level)
            following: list[str] = []
            for function in level:
                for edge in self.graph.edges(function):
                    if edge.callee not in out:
                        out[edge.callee] = None
                        following.append(edge.callee)
            level = following
        return list(out)

    # --- parameters the callers pass as None or false --------------------------------------------
    def _known_arguments(self, caller: str, edge: "Edge", known: Known = Known()) -> Known:
        """The callee's parameters that the call at `edge.line` passes as None (a literal None, a None
        default, or a parameter of the caller's that is None here, in `known`), and those it passes as
        another false literal (`False`, `""`, or such a default); the same at every call on that line."""
        if edge.kind in ("callback", "partial", "context"):
            return Known()  # the call's arguments are not the callee's (`with` passes none it spells)
        found, callee = self.graph.function(caller), self.graph.function(edge.callee)
        if found is None or callee is None:
            return Known()
        summary, info = found
        params = [p for p in callee[1].params if p.kind not in ("star", "starstar")]
        nones, falses, givens, not_nones = [], [], [], []
        counts: set[int | None] = set()  # how many arguments each call gives the callee's `*args`
        star = any(p.kind == "star" for p in callee[1].params)
        # Asked only of the parameters the callee tests against None, or hands on to its own calls
        # (a chain's later call may test them): most calls have none.
        guarded = {param for param, _first, _last in callee[1].none_guards} | self._handed_on(edge.callee)
        on_line = [call for call in self.graph.calls_in(summary, info.qualname) if call.line == edge.line]
        # Of several calls on the line, those that name the callee: `Outer(Inner(config=c), Inner(config=c))`
        # passes `Inner` no data, whatever `Outer` is given (transformers' `EncoderDecoderCache(DynamicCache(
        # config=...), ...)`). A call whose spelling names no function (`self.layers[i](x)`) keeps them all.
        named = [call for call in on_line if _names_callee(call.func, edge.callee)]
        for call in named or on_line:
            if any(a[0] == "*" for a in call.args) or any(k == "**" for k, _v in call.kwargs):
                return Known()
            # `self`/`cls` is no argument of a call through an instance, `super()` or a classmethod's
            # class, or of a constructor; it is of `Base.method(self, ...)`.
            bound = params[1:] if callee[1].kind in ("method", "classmethod") and params \
                and not self._unbound_call(summary, info, call, callee[1]) else params
            positional = [p.name for p in bound if p.kind != "kwonly"]
            counts.add(max(0, len(call.args) - len(positional)) if star else None)
            given = dict(zip(positional, call.args))
            given.update(call.kwargs)
            values = {p.name: given.get(p.name, p.default) for p in bound}
            nones.append(frozenset(name for name, value in values.items() if _is_none(value, known.none)))
            falses.append(frozenset(name for name, value in values.items() if _is_false(value, known.false)))
            givens.append(frozenset(name for name, value in given.items()
                                    if name in values and not _is_none(value, known.none)))
            not_nones.append(frozenset(name for name, value in given.items() if name in guarded and (
                value[:1] == ("param",) and value[1] in known.not_none  # not None along this chain
                or self.graph.inference.not_none(value, summary, info))))
        at = (str(self.root / summary.path), edge.line)
        if not nones:
            return Known(at=at, caller=caller)
        return Known(frozenset.intersection(*nones), frozenset.intersection(*falses),
                     frozenset.intersection(*givens), at, caller, frozenset.intersection(*not_nones),
                     counts.pop() if len(counts) == 1 else None)

    def _handed_on(self, function: str) -> frozenset[str]:
        """The parameters of `function` that it passes, as they are, to a call of its own."""
        known = self._handed.get(function)
        if known is None:
            found = self.graph.function(function)
            known = frozenset() if found is None else frozenset(
                value[1] for call in self.graph.calls_in(found[0], found[1].qualname)
                for value in (*call.args, *(v for _k, v in call.kwargs)) if value[:1] == ("param",))
            self._handed[function] = known
        return known

    def _unbound_call(self, summary: "ModuleSummary", info: "FunctionInfo", call: "CallSite",
                      callee: "FunctionInfo") -> bool:
        """`Base.setup(self, ...)`: a plain method called through its class, `self` passed by hand."""
        from sync_lint.project.infer import Context

        func = call.func
        if callee.kind != "method" or func[0] != "attr" or func[2] != callee.name:
            return False  # `Cls(...)` builds an instance: `self` is bound
        owner = self.graph.inference.eval(func[1], Context(summary, info, mode="types"))
        return owner.value_kind == "class"

    def _live_syncs(self, function: str, syncs: dict[str, list[Diagnostic]], known: Known,
                    every_pass: bool) -> list[Diagnostic]:
        found = self.graph.function(function)
        out = syncs.get(function, [])
        if found is None:
            return out
        if every_pass and _memoised(found[1]):
            return []  # its body runs on the first call with each new argument, not on every pass
        if known.none or known.false:
            out = [d for d in out if not found[1].guarded(d.start.row, known.none, known.false)]
        if known.star_count is not None:
            out = [d for d in out if not found[1].ruled_out_by_count(d.start.row, known.star_count)]
        if known.not_none:
            # `values = grid_thws.tolist() if grid_thw_list is None else grid_thw_list`, called with a list.
            out = [d for d in out if not found[1].runs_only_when_none(d.start.row, known.not_none)]
        if known.none:
            # A copy to a device parameter the calls leave None (`torch.tensor([0], device=device)` in a
            # constructor called without one): the default device, no copy.
            out = [d for d in out
                   if not (d.code in _DEVICE_COPIES and found[1].device_params_at(d.start.row) & known.none)]
        if every_pass:
            out = [d for d in out if found[1].branch_at(d.start.row) is None]
        if known.at is not None:
            out = [d for d in out if _supplied(d, found[1], known, every_pass, lambda name: self._passed(
                function, name, known))]
        return out

    def _passed(self, function: str, name: str, known: Known) -> list["Fact"]:
        """What the call at `known.at` passes for parameter `name` of `function`."""
        assert known.at is not None
        return self.graph.inference.passed_at(function, name, known.caller, known.at[1])

    def _hop_live(self, function: str, edge: "Edge", known: Known, every_pass: bool) -> bool:
        found = self.graph.function(function)
        if found is None:
            return True
        if every_pass and (found[1].branch_at(edge.line) is not None or _memoised(found[1])):
            return False
        if found[1].ruled_out_by_count(edge.line, known.star_count):
            return False
        return not (known.none or known.false) or not found[1].guarded(edge.line, known.none, known.false)

    def _live_path(self, caller: str, edge: "Edge", nearest: dict, forward: dict[str, list["Edge"]],
                   syncs: dict[str, list[Diagnostic]],
                   every_pass: bool) -> tuple[list[tuple[str, "Edge"]], list[Diagnostic]] | None:
        """The hops from `edge.callee` down to a sync, [(function, edge into the next), ...], with the
        None and false arguments of each call taken into account (`create_bidirectional_mask` passes
        `position_ids=None`, and the packed-sequence check below runs only `if position_ids is not None`;
        a `check_inputs=False` default and a check that runs only `if check_inputs:`).
        The nearest chain when it holds, else the nearest that does (with the syncs live at its end);
        None when none does. `every_pass`: only chains whose calls and sync sit in no branch (no `if`
        arm, no rest of a block after an `if` that returns, no `except`, no `case`)."""
        found = self.graph.function(caller)
        if every_pass and found is not None and _memoised(found[1]):
            return None  # the call site itself runs once per new argument
        known = self._known_arguments(caller, edge)
        path: list[tuple[str, "Edge"]] = []
        current, context, live = edge.callee, known, True
        while nearest[current][1] is not None and len(path) < 64:
            following, hop = nearest[current][1]
            if not self._hop_live(current, hop, context, every_pass):
                live = False
                break
            path.append((current, hop))
            context = self._known_arguments(current, hop, context)
            current = following
        # A hop into a subclass's override guesses which subclass arrives, much as a branch guesses
        # which way a test goes: default mode takes neither (two such findings read in the audits,
        # DeepEP's `weight_and_reduce_impl.apply`, were both through subclasses never passed there).
        most = _MAX_OVERRIDE_HOPS if not every_pass else 0
        guesses = (edge.kind == "override") + sum(hop.kind == "override" for _, hop in path)
        final = self._live_syncs(current, syncs, context, every_pass) if live and guesses <= most else []
        if final:
            return path, final
        # Breadth first over (function, parameters passed as None or false, override hops so far) from
        # the callee. Each override hop guesses which subclass arrives; a chain of two such guesses
        # (`self.runner` is a `LatentMoERunner`, whose `prepare_finalize` is DeepEP's) is mostly through
        # objects the code never builds together.
        start = (edge.callee, known, int(edge.kind == "override"))
        if start[2] > most:
            return None
        parent: dict[tuple[str, Known, int], tuple[tuple[str, Known, int], "Edge"] | None] = {start: None}
        queue = deque([start])
        while queue and len(parent) < 4096:
            state = queue.popleft()
            function, context, guessed = state
            final = self._live_syncs(function, syncs, context, every_pass)
            if final:
                hops: list[tuple[str, "Edge"]] = []
                while parent[state] is not None:
                    previous, hop = parent[state]  # type: ignore[misc]
                    hops.append((previous[0], hop))
                    state = previous
                return list(reversed(hops)), final
            for hop in forward.get(function, ()):
                if hop.callee not in nearest or not self._hop_live(function, hop, context, every_pass):
                    continue
                count = guessed + (hop.kind == "override")
                if count > most:
                    continue
                following = (hop.callee, self._known_arguments(function, hop, context), count)
                if following not in parent:
                    parent[following] = (state, hop)
                    queue.append(following)
        return None

    def _finding(self, caller: str, summary: "ModuleSummary", info: "FunctionInfo", edge: "Edge",
                 hops: list[tuple[str, "Edge"]], final: list[Diagnostic], paths: dict[str, str],
                 conditional: bool = False) -> Diagnostic | None:
        chain = [caller, edge.callee]
        steps = [EvidenceStep(f"`{_short(caller)}` calls `{_short(edge.callee)}` ({edge.kind})",
                              paths.get(summary.module) or _display_path(self.root, summary.path), edge.line)]
        current = edge.callee
        for current, hop in hops:
            following = hop.callee
            found = self.graph.function(current)
            where = _display_path(self.root, found[0].path) if found is not None else ""
            steps.append(EvidenceStep(f"`{_short(current)}` calls `{_short(following)}` ({hop.kind})",
                                      paths.get(found[0].module, where) if found is not None else where, hop.line))
            chain.append(following)
            current = following
        sync = min(final, key=lambda d: (d.start.row, d.start.column))
        # A sync known only by a convention, below a function no code that runs mentions: see
        # `Findings.diagnostics`.
        unreferenced = sync.confidence == "convention" and self._unreferenced(summary, info)
        # A call on a line no known call of its function runs (`Inference.never_runs`).
        never = self.graph.inference.never_runs(summary, info, edge.line)
        caller_path = paths.get(summary.module) or _display_path(self.root, summary.path)
        # A test's call into a sync known only by a convention: see `Findings._left_to_strict`.
        in_test = sync.confidence == "convention" and context_of(caller_path, self.root) == "test"
        if (unreferenced or never is not None or in_test) and not self.settings.strict:
            return None
        branch = self._first_branch([(function, hop.line) for function, hop in hops], paths)
        if branch is None and all(self._first_branch([(current, d.start.row)], paths) for d in final):
            # Conditional only when every sync at the end is: one that runs on every call makes it every pass.
            branch = self._first_branch([(current, sync.start.row)], paths)
        cached = next((function for function in [caller, edge.callee, *(f for f, _ in hops), current]
                       if (found := self.graph.function(function)) is not None and _memoised(found[1])), None)
        count = len(final)
        span = sync.source_line.rstrip("\r\n")
        if sync.start.row == sync.end.row:
            span = span[sync.start.column - 1: sync.end.column - 1]
        span = span.strip()
        if len(span) > 60:
            span = span[:57] + "..."
        where = f"{sync.path}:{sync.start.row}"
        steps.append(EvidenceStep(f"`{span}` syncs ({sync.code}) at {sync.path}:{sync.start.row}", sync.path,
                                  sync.start.row))
        if in_test:
            steps.append(EvidenceStep(CONVENTION_IN_TEST, caller_path, edge.line))
        if unreferenced or never is not None:
            from sync_lint.project.infer import never_runs_reason, unreferenced_reason

            if unreferenced:
                outer = info.qualname.split(".", 1)[0]
                steps.append(EvidenceStep(unreferenced_reason(outer), caller_path,
                                          summary.functions[outer].line if outer in summary.functions else None))
            if never is not None:
                steps.append(EvidenceStep(never_runs_reason(info.qualname, *never), caller_path, info.line))
        arrow = " → ".join(_short(f) for f in chain)
        more = f" (and {count - 1} more there)" if count > 1 else ""
        hops = len(chain) - 1
        test = info.branch_at(edge.line)
        here = f"{paths.get(summary.module) or _display_path(self.root, summary.path)}:{test}" if test else None
        when = f"on the passes that take the branch at {branch}" if branch else \
            f"on the first call with each new argument (`{_short(cached)}` is cached)" if cached else \
            f"each time this line runs (behind the test at {here})" if here else \
            "on every pass through this hot path" if caller in self.best else "each time this line runs"
        lead = f"the `with` statement's call of `{_short(edge.callee)}`" if edge.kind == "context" else \
            f"call into `{_short(edge.callee)}`"
        message = (f"{lead} reaches a sync {hops} call{'s' if hops > 1 else ''} down: "
                   f"{arrow} → `{span}` ({sync.code}) at {where}{more}; the host waits here {when}")
        path = paths.get(summary.module) or _display_path(self.root, summary.path)
        lines = self.lines_of(path)
        line = lines[edge.line - 1] if 0 < edge.line <= len(lines) else ""
        column = len(line) - len(line.lstrip()) + 1
        name = _short(edge.callee).rsplit(".", 1)[-1]
        if name == "__init__" or edge.kind == "context":  # the class, as the line spells it
            name = _short(edge.callee).split(".")[0]
        match = re.search(rf"\b{re.escape(name)}\s*\(", line) if name not in ("forward", "__call__") else None
        if match is not None:
            column = match.start() + 1
        end = len(line.rstrip()) + 1
        return Diagnostic(
            code=TRANSITIVE_CODE, name=TRANSITIVE_NAME, message=message, path=path,
            start=Position(edge.line, column), end=Position(edge.line, max(end, column + 1)),
            evidence=" → ".join(s.message for s in steps), noqa_row=edge.line, source_line=line + "\n" if line else "",
            confidence="strict" if conditional or unreferenced or never is not None or in_test else sync.confidence,
            evidence_steps=tuple(steps),
            hot=self.hotness(caller, edge.line, info),
        )

    def _across(self, summary: "ModuleSummary", info: "FunctionInfo", edge: "Edge") -> bool:
        """A call into another module: its sync is out of sight of the file that makes the call. A
        call into the same module is not reported outside hot paths, since the sync below is
        reported in the same file (and a chain into another module from there is, at that call).
        A function handed to a call (`apply(f)`) or bound by `functools.partial(f, ...)` may run
        later or never: the graph charges it to this line, which only hot paths accept."""
        if edge.kind == "callback" or any(call.line == edge.line and self.graph.is_partial(summary, info, call.func)
                                          for call in self.graph.calls_in(summary, info.qualname)):
            return False
        callee = self.graph.function(edge.callee)
        return callee is not None and callee[0].module != summary.module

    @staticmethod
    def _every_target(caller: str, edge: "Edge", forward: dict[str, list["Edge"]], nearest: dict) -> bool:
        """Whether the call syncs whichever method it reaches. Through a receiver whose own class has the
        method, the edge to that method is the call (its subclasses' overrides are guesses, which
        default mode does not take). Through one whose class declares no such method, every method
        the graph finds is a guess (a subclass's own, or one a subclass inherits through a mixin:
        `self.model.decode_image_tokens` on whichever model the pipeline holds), and the call syncs on
        every call only if each of them does."""
        if edge.kind != "method":
            return True
        name = edge.callee.rsplit(".", 1)[-1]  # the same call: another call on the line names another function
        targets = [other for other in forward.get(caller, ())
                   if other.line == edge.line and other.kind in ("method", "override")
                   and other.callee.rsplit(".", 1)[-1] == name]
        if any(other.kind == "override" for other in targets):
            return True  # the receiver's own class has the method: this edge is it, the overrides are guesses
        return all(other.callee in nearest for other in targets)

    def _first_branch(self, lines: list[tuple[str, int]], paths: dict[str, str]) -> str | None:
        """`path:line` of the first test along the chain (the calls below the hot caller, then the
        sync) that decides whether the next step runs; None when every step runs on every call."""
        for function, line in lines:
            found = self.graph.function(function)
            test = found[1].branch_at(line) if found is not None else None
            if test is not None:
                return f"{paths.get(found[0].module) or _display_path(self.root, found[0].path)}:{test}"
        return None


# Decorators whose function body runs once per distinct arguments (or once per object).
_MEMOISING = frozenset({"lru_cache", "cache", "cached_property", "cached"})


def _memoised(info: "FunctionInfo") -> bool:
    """Whether the function's body runs only on the first call with each new argument: `@lru_cache`,
    `@functools.cache`, `@cached_property`, cachetools' `@cached(...)`. A sync there does not run on
    every pass (readers of the audits found such chains said "every pass" and ran once)."""
    return any(decorator.rsplit(".", 1)[-1] in _MEMOISING for decorator in info.decorators)


def analyse(results: list[FileResult], settings: "Settings", projects: dict[str, "Project"], *,
            selected: bool, ignored: Callable[[str], frozenset[str]],
            keep: Callable[[Diagnostic], bool] | None = None,
            lint_more: Callable[[list[str]], list[FileResult]] | None = None,
            extra_roots: Iterable[str] = (), texts: dict[str, str] | None = None,
            reuse: str | None = None, list_unresolved: bool = False,
            opened_for: Callable[["Project"], "OpenProject | None"] | None = None) -> HotReport:
    """Mark the hot findings of `results` in place, add the SL601 findings, and say what was found.

    `reuse`: everything besides the project, the settings and the findings that decides the answer
    (the caller's rules and baseline), to reuse the cached answer of an identical run; None: always
    walk the graph (a caller that asks `hotness_at` about other lines needs the graph itself).
    `list_unresolved`: list the unresolved calls of hot functions (`HotReport.unresolved`), not
    only count them. `opened_for(project)`: the project as this process already opened it for these
    settings (its index and solved facts), or None to open it here."""
    report = HotReport()
    groups: dict[object, list[FileResult]] = {}
    for result in results:
        groups.setdefault(projects.get(result.path), []).append(result)
    for project, members in groups.items():
        if project is None:
            graph, root, opened = _standalone(members, texts or {})
            cache = None
        else:
            slot, key = _answer_key(project, settings, members, selected, extra_roots, f"{reuse}:{list_unresolved}") \
                if reuse is not None and not texts else (None, None)
            opened = opened_for(project) if opened_for is not None else None
            if slot is not None and _reuse_answer(project, slot, key, members, report,
                                                  opened.store if opened is not None else None):
                continue
            if opened is None:
                opened = project.open(settings)  # type: ignore[attr-defined]
            # Only a run that walks the graph needs it (a reused answer is a warm check's common case).
            from sync_lint.project.ahead import take_edges_read_ahead
            from sync_lint.project.hot import CallGraph, EdgeCache

            cache = EdgeCache(opened, take_edges_read_ahead(project))
            graph = CallGraph(opened.index, opened.inference, cache)
            root = project.root  # type: ignore[attr-defined]
        found = HotReport()
        try:
            _run(graph, root, members, settings, found, selected, ignored, keep, lint_more if project else None,
                 extra_roots, texts or {}, project.modules if project is not None else {},  # type: ignore[attr-defined]
                 list_unresolved)
        except Exception as error:  # noqa: BLE001 - a defect of the pass must not lose every file's findings
            # The files' own findings stand; their project's hot paths are unknown, and the run says so
            # (an error: exit code 2), as a rule that raises does for its file.
            members[0].errors.append(FileError(members[0].path, f"the hot-path pass raised {type(error).__name__}: "
                                               f"{error} (please report this); findings are not ranked by hot "
                                               "path", rule=TRANSITIVE_CODE))
            continue
        report.merge(found)
        if opened is not None:  # first: the edges read facts and nodes that must be stored before them
            opened.save_facts()
        if cache is not None:
            cache.save()
            _merge_reads(opened)
        if project is not None and slot is not None:
            _save_answer(opened, slot, key, members, found)
    return report


def _merge_reads(opened) -> None:  # type: ignore[no-untyped-def]
    """Merge what the facts solved for the edges read (`ProjectStore.merge_reads`), as a check does
    at its end; a cache locked past its timeout keeps them pending for the next run."""
    import sqlite3

    if opened.writable:
        try:
            opened.store.merge_reads()
        except sqlite3.OperationalError:
            pass


# Answers kept per set of checked files (a whole-project run, a pre-commit run of a few files, ...).
_ANSWER_SLOTS = 8


def _answer_key(project: "Project", settings: "Settings", members: list[FileResult], selected: bool,
                extra_roots: Iterable[str], reuse: str) -> tuple[str, str]:
    """(slot, key) of a run's answer: the slot names the checked files; the key is everything the
    answer depends on (the project's content, the settings, the findings the files came with)."""
    import hashlib

    from sync_lint.project.store import tool_fingerprint

    paths = hashlib.sha256("\0".join(r.path for r in members).encode()).hexdigest()[:24]
    digest = hashlib.sha256()
    relevant = replace(settings, output_format="", jobs=None)  # as in a file's result key
    digest.update(repr((tool_fingerprint(), project.fingerprint, os.getcwd(), repr(relevant), selected,
                        sorted(extra_roots), reuse)).encode())
    for result in members:
        digest.update(repr((result.path, result.diagnostics, result.errors)).encode())
    return f"<hot-paths:{paths}>", digest.hexdigest()


def _reuse_answer(project: "Project", slot: str, key: str, members: list[FileResult], report: HotReport,
                  store: "ProjectStore | None" = None) -> bool:
    """Apply the cached answer of an identical run, if the cache holds one. It is read from the store
    alone (`store`, else one opened here): a reused answer needs neither the project's index nor its
    inference."""
    from sync_lint.project.store import ProjectStore

    if store is not None:
        cached = store.result(slot, key)
    else:
        store = ProjectStore(project.database)
        try:
            cached = store.result(slot, key)
        finally:
            store.close()
    if not isinstance(cached, tuple):
        return False
    diagnostics, found = cached
    for result, kept in zip(members, diagnostics):
        result.diagnostics = kept
    report.merge(found)
    return True


def _save_answer(opened, slot: str, key: str, members: list[FileResult], found: HotReport) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    if not opened.writable or not opened.facts_saved:
        return
    kept = replace(found, passes=[])
    try:
        opened.store.put_results([(slot, key, ([r.diagnostics for r in members], kept), ())],
                                 opened.project.generation)
        opened.store.keep_newest_results("<hot-paths:", _ANSWER_SLOTS)
    except sqlite3.OperationalError:  # locked past the timeout: the next run walks the graph again
        pass


def analyse_text(result: FileResult, text: str, settings: "Settings", selected: bool = True) -> HotReport:
    """The hot-path pass over one text on its own (its own roots and calls only)."""
    return analyse([result], settings, {}, selected=selected, ignored=lambda _path: frozenset(),
                   texts={result.path: text})


def _standalone(members: list[FileResult], texts: dict[str, str]):  # type: ignore[no-untyped-def]
    """A graph over just the checked files (no project index: `--isolated`, a text on its own)."""
    from sync_lint.project.hot import CallGraph
    from sync_lint.project.index import ProjectIndex
    from sync_lint.project.infer import Inference
    from sync_lint.project.roots import module_name, project_root
    from sync_lint.project.summary import summarize

    summaries = []
    root = Path.cwd()
    for result in members:
        text = texts.get(result.path)
        if text is None:
            try:
                text = Path(result.path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        base = project_root(Path(result.path).resolve())
        module = module_name(Path(result.path).resolve(), base)[0]
        summaries.append(summarize(text, result.path, module))
    index = ProjectIndex.from_summaries(summaries, root=str(root))
    return CallGraph(index, Inference(index)), root, None


def _module_of(path: str, root: Path) -> str:
    from sync_lint.project.roots import module_name

    return module_name(Path(path).resolve(), root)[0]


def _run(graph: "CallGraph", root: Path, members: list[FileResult], settings: "Settings", report: HotReport,
         selected: bool, ignored: Callable[[str], frozenset[str]], keep, lint_more, extra_roots,  # type: ignore[no-untyped-def]
         texts: dict[str, str], modules: dict[str, str], list_unresolved: bool) -> None:
    """`modules`: the project's files (absolute paths) and their module names, as the index has them."""
    from sync_lint.config import within_project

    index = graph.index
    # The checked files by module. Their summaries are read only where needed (a file with findings,
    # a hot function): a warm run of a large project has thousands of files and few findings.
    checked: dict[str, FileResult] = {}
    # `cpu-modules`, `other-platform-modules`: checked only with --strict, their calls too. What the run
    # found in them still counts where a call from a hot function of a checked file reaches them.
    left_out: dict[str, FileResult] = {}
    for result in members:
        off_cuda = not settings.strict and settings.off_cuda_module(within_project(result.path, root))
        if graph.cache is None:
            module = next((m for m in index.modules if (s := index.summary(m)) is not None and s.path == result.path),
                          None)
        else:
            module = modules.get(os.path.abspath(result.path))
            if module is None:
                try:
                    module = _module_of(result.path, root)
                except ValueError:  # a file outside the root (`extend-project`): its findings stay unmarked
                    continue
        if module is not None and module in index.modules:
            (left_out if off_cuda else checked)[module] = result
    roots, missing = graph.cached_roots([*settings.hot_paths, *extra_roots], settings.hot_path_defaults)
    report.roots.extend(roots)
    report.missing.extend(missing)
    hot = _Pass(graph, root, settings, selected, ignored, keep)
    report.passes.append((root, graph, hot))
    hot._lines.update((path, text.splitlines()) for path, text in texts.items())
    hot.walk(roots)
    report.hot_functions += len(hot.best)
    # Direct findings, by function; hotness on each.
    syncs: dict[str, list[Diagnostic]] = {}
    paths = {module: result.path for module, result in checked.items()}

    def collect(result: FileResult, summary: "ModuleSummary", mark: bool) -> None:
        marked = []
        for d in result.diagnostics:
            info = _innermost(summary, d.start.row)
            function = summary.qualified(info.qualname) if info is not None else None
            # A sync known only in --strict mode (a tensor of unknown device) is reported where it is,
            # not at every hot caller: one such line (transformers' mask helper) became dozens of
            # call-site findings, most of them false.
            if function is not None and d.code != TRANSITIVE_CODE and d.code.startswith("SL") and d.code != "SL000" \
                    and d.confidence != "strict":
                syncs.setdefault(function, []).append(d)
            if mark and function is not None and function in hot.best:
                d = replace(d, hot=hot.hotness(function, d.start.row, info))
                report.per_root[d.hot.root] = report.per_root.get(d.hot.root, 0) + 1  # type: ignore[union-attr]
            marked.append(d)
        if mark:
            result.diagnostics = marked

    for module, result in checked.items():
        summary = index.summary(module) if result.diagnostics else None
        if summary is not None:
            collect(result, summary, True)
    # Every function of the checked files and what their calls reach within `_COLD_CALLS` calls: a
    # call into another module that syncs there on every call is an SL601 call site off hot paths too.
    cold = hot.near([summary.qualified(local) for module in checked
                     if (summary := index.summary(module)) is not None for local in summary.functions],
                    _COLD_CALLS) if selected else []
    if lint_more is not None and selected:
        # Calls from hot functions of the checked files into files the run did not check.
        below: set[str] = set()
        inside = _in_modules(checked)
        queue = deque(f for f in hot.best if inside(f))
        while queue:
            current = queue.popleft()
            for edge in graph.edges(current):
                if edge.callee not in below:
                    below.add(edge.callee)
                    queue.append(edge.callee)
        below.update(cold)
        extra: dict[str, "ModuleSummary"] = {}
        for function in below:
            found = graph.function(function)
            # A template (transformers' `modular_x.py`) never runs: the generated module it was
            # made into is what the calls reach, and the run checked that one.
            if found is not None and found[0].module not in checked and not index.is_template(found[0].module):
                extra[str(root / found[0].path)] = found[0]
        # The files the run left out are not checked again (on vLLM 0.33, 33 CPU and XPU files took
        # 7.7 s more in this process): their results are taken in the same order.
        more: dict[str, FileResult] = {}
        if any(summary.module not in left_out for summary in extra.values()):
            more = {os.path.abspath(result.path): result for result in
                    lint_more(sorted(path for path, summary in extra.items() if summary.module not in left_out))}
        for path in sorted(extra):
            summary = extra[path]
            result = left_out[summary.module] if summary.module in left_out else more.get(path)
            if result is not None:
                collect(result, summary, False)
    found = hot.transitive(syncs, paths, set(checked), cold)
    report.transitive += len(found)
    report.baselined.extend(hot.baselined)
    by_path = {result.path: result for result in checked.values()}
    for d in found:
        by_path[d.path].diagnostics.append(d)
    for result in by_path.values():
        result.diagnostics.sort(key=lambda d: d.sort_key)
    for function in hot.best:
        calls = graph.unresolved(function)
        report.unresolved_calls += len(calls)
        if list_unresolved:  # thousands in a large project: not kept in every cached answer
            report.unresolved.extend(calls)


# Rules whose sync is a copy to the device a call names: none when that device is None.
_DEVICE_COPIES = frozenset({"SL303", "SL304"})
# Summary values of `False` and `""` (a summary keeps no number's value).
_FALSE_LITERALS = frozenset({("lit", "bool", False), ("lit", "str", "")})


def _is_false(value: object, false: frozenset[str]) -> bool:
    """A summary value that is a false literal other than None (`False`, `""`), or a parameter known
    to be one here."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "param":
        return value[1] in false
    return value in _FALSE_LITERALS


def _torch_stores(index: "ProjectIndex", summary: "ModuleSummary", at_import: bool = False) -> Iterable[str]:
    """The torch functions a module assigns (`torch.accelerator.synchronize = noop`); `at_import`: only
    those assigned at module level, which importing it does."""
    for store in summary.stores:
        if at_import and store.function is not None:
            continue
        base = index.value_name(summary, store.base, store.function)
        if base is not None and (base == "torch" or base.startswith("torch.")):
            yield f"{base}.{store.attr}"


# A call's dotted callee at the start of a finding's span (`torch.accelerator.synchronize(`).
_CALLED = re.compile(r"\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\(")

# How the inference words a parameter's device (`_param` in project/infer.py): its callers disagree
# and some of them pass the GPU tensor (`join_sources`' note; the step names the first), or the tensor
# is assigned only when the parameter is None (`_merge` in analysis/flow.py).
_GPU_CALLERS = re.compile(r"parameter `(\w+)` of `(\w+)` receives .*\((\d+) of (\d+) sources, the rest on another device\)")
_WHEN_NONE = re.compile(r" when `(\w+)` is None")
# A parameter's GPU value (or accelerator device) from calls the step names (the first of them, at the
# step's line). Not a host value: a host tensor handed on is what a copy to the GPU copies.
_FROM_CALLER = re.compile(r"(?:is on the GPU|is an accelerator device|is taken for an accelerator): "
                          r"parameter `(\w+)` of `(\w+)` receives ")


def _supplied(sync: Diagnostic, callee: "FunctionInfo", known: Known, every_pass: bool,
              passed: Callable[[str], list["Fact"]]) -> bool:
    """Whether the call at `known.at` gives the sync in `callee` its device: not when the device comes
    from other callers (`disagree(gpu)` waits, `disagree(cpu)` does not), nor, for a sync on every pass,
    when it comes from a value assigned only if a parameter is None that this call passes (`if lens_sum
    is None: lens_sum = cum[-1]`, called with the host's int)."""
    short = callee.qualname.rsplit(".", 2)[-2] if callee.name == "__init__" else callee.name
    params = {p.name for p in callee.params}
    for step in sync.evidence_steps:
        mixed = _GPU_CALLERS.search(step.message)
        if mixed and mixed.group(2) == short and mixed.group(1) in params and step.row is not None \
                and (os.path.realpath(step.path), step.row) != (os.path.realpath(known.at[0]), known.at[1]) \
                and not _passes_gpu(passed(mixed.group(1)), int(mixed.group(3)), int(mixed.group(4))):
            return False
        if every_pass and any(name in known.given and name in params for name in _WHEN_NONE.findall(step.message)):
            return False
        named = _FROM_CALLER.search(step.message)
        if named and not mixed and named.group(2) == short and named.group(1) in params and step.row is not None \
                and (os.path.realpath(step.path), step.row) != (os.path.realpath(known.at[0]), known.at[1]) \
                and _passes_nothing_there(passed(named.group(1)), callee, named.group(1)):
            return False
    return True


def _passes_nothing_there(facts: list["Fact"], callee: "FunctionInfo", name: str) -> bool:
    """Whether a call gives a parameter, whose GPU value the evidence says another call passes, only
    None or host values: a rotary embedding's constructor calling `rope_init_fn(self.config, device)`
    with the `device=None` no one passes, while a refresh in `forward` passes the input's device; the
    constructor's call copies nothing to the GPU."""
    if not facts:
        param = next((p for p in callee.params if p.name == name), None)
        return param is not None and _is_none(param.default, frozenset())
    return all(fact.value_kind == "none" or fact.is_cpu for fact in facts)


def _passes_gpu(facts: list["Fact"], gpu: int, sources: int) -> bool:
    """Whether a call that is not the one a parameter's evidence names gives it the GPU tensor that `gpu`
    of its `sources` callers pass: when it passes a GPU tensor itself; when it passes a value of unknown
    device, only where such callers are most of them (SGLang's diffusion models hand their masks, of a
    device no step shows, to `build_varlen_mask_meta`, which 8 of 14 callers give GPU masks; its host
    pool's `free(indices)` is given GPU indices by 2 of 11, CPU free-list ones by the rest); never when it
    passes a host tensor, nor where one caller alone passes the GPU tensor (the one the evidence names)."""
    if any(fact.is_gpu for fact in facts):
        return True
    if gpu == 1 or (facts and all(fact.is_cpu for fact in facts)):
        return False
    return 2 * gpu > sources


def _names_callee(func: "Value", callee: str) -> bool:
    """Whether a call site spells the function `callee` (a qualname): its name, or its class's for `__init__`."""
    from sync_lint.project.index import callee_name

    owner, _, name = callee.rpartition(".")
    spelled = callee_name(func)
    return spelled == (owner.rpartition(".")[2] if name == "__init__" else name)


def _is_none(value: object, none: frozenset[str]) -> bool:
    """A summary value that is None: the literal, or a parameter known to be None here."""
    return value == ("lit", "none") or (isinstance(value, tuple) and len(value) == 2 and value[0] == "param"
                                        and value[1] in none)


def _in_modules(modules: Collection[str]) -> Callable[[str], bool]:
    """Whether a qualified function is defined in one of these modules (at its top, or in a class).

    Asked of every hot function (4,600 in vLLM, twice), usually about the one checked module: a test
    of the prefixes in one call then, and one look-up per enclosing name for a whole project."""
    if len(modules) <= 64:
        prefixes = tuple(f"{module}." for module in modules)
        return lambda function: function.startswith(prefixes)

    def inside(function: str) -> bool:
        head = function
        while "." in head:
            head = head.rsplit(".", 1)[0]
            if head in modules:
                return True
        return False

    return inside


# ==========================================================================================
# The call tree of one root (`sync-lint paths ROOT`)
# ==========================================================================================


@dataclass
class TreeNode:
    function: str
    path: str
    line: int  # the `def` line
    kind: str = "root"  # how its caller reached it
    call_line: int | None = None  # the line of that call in the caller
    syncs: list[Diagnostic] = field(default_factory=list)
    children: list["TreeNode"] = field(default_factory=list)

    def has_syncs(self) -> bool:
        return bool(self.syncs) or any(child.has_syncs() for child in self.children)

    def as_dict(self) -> dict:
        return {
            "function": self.function, "filename": self.path, "line": self.line, "kind": self.kind,
            "call_line": self.call_line,
            "syncs": [{"code": d.code, "filename": d.path, "row": d.start.row, "column": d.start.column,
                       "text": _span(d), "message": d.message} for d in self.syncs],
            "children": [child.as_dict() for child in self.children],
        }


def _span(d: Diagnostic) -> str:
    line = d.source_line.rstrip("\r\n")
    text = line[d.start.column - 1: d.end.column - 1] if d.start.row == d.end.row else line
    text = text.strip()
    return text if len(text) <= 60 else text[:57] + "..."


def call_tree(graph: "CallGraph", root: "Root", root_dir: Path, settings: "Settings",
              lint: Callable[[list[str]], list[FileResult]], *, prune: bool = True,
              max_depth: int | None = None) -> tuple[TreeNode, int]:
    """The shortest-path tree of what `root` reaches, each function with its findings; and how many
    functions it reaches. `prune`: keep only the branches that lead to a finding."""
    hot = _Pass(graph, root_dir, settings, False, lambda _p: frozenset(), None)
    reach = graph.reach(root, hot.follow)
    files: dict[str, "ModuleSummary"] = {}
    for function in reach.parent:
        found = graph.function(function)
        if found is not None:
            files[str(root_dir / found[0].path)] = found[0]
    syncs: dict[str, list[Diagnostic]] = {}
    for result in lint(sorted(files)):
        summary = files.get(result.path)
        if summary is None:
            continue
        for d in result.diagnostics:
            info = _innermost(summary, d.start.row)
            if info is not None:
                syncs.setdefault(summary.qualified(info.qualname), []).append(
                    replace(d, path=_display_path(root_dir, os.path.relpath(d.path, root_dir))))
    nodes: dict[str, TreeNode] = {}
    for function in reach.parent:
        found = graph.function(function)
        path = _display_path(root_dir, found[0].path) if found is not None else ""
        line = found[1].line if found is not None else 0
        nodes[function] = TreeNode(function, path, line, syncs=sorted(syncs.get(function, []),
                                                                      key=lambda d: d.sort_key))
    for function, step in reach.parent.items():
        if step is None:
            continue
        if max_depth is not None and reach.depth[function] > max_depth:
            continue
        caller, edge = step
        node = nodes[function]
        node.kind, node.call_line = edge.kind, edge.line
        nodes[caller].children.append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: (n.call_line or 0, n.function))
    top = nodes[root.function]
    if prune:
        _prune(top)
    return top, len(reach.parent)


def _prune(node: TreeNode) -> None:
    node.children = [child for child in node.children if child.has_syncs()]
    for child in node.children:
        _prune(child)


def _walk(node: TreeNode):  # type: ignore[no-untyped-def]
    yield node
    for child in node.children:
        yield from _walk(child)


def render_tree_text(node: TreeNode, color: bool = False, width: int | None = None) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    def label(n: TreeNode) -> Text:
        text = Text()
        if n.call_line is not None:
            text.append(f"L{n.call_line} ", style="dim")
        text.append(_short(n.function), style="bold")
        text.append(f"  {n.path}:{n.line}", style="dim")
        if n.kind not in ("root", "function", "method"):
            text.append(f"  [{n.kind}]", style="cyan")
        return text

    def grow(tree: Tree, n: TreeNode) -> None:
        for d in n.syncs:
            sync = Text()
            sync.append(f"{d.code} ", style="bold red")
            sync.append(f"`{_span(d)}`")
            sync.append(f"  {d.path}:{d.start.row}", style="dim")
            tree.add(sync)
        for child in n.children:
            grow(tree.add(label(child)), child)

    tree = Tree(label(node))
    grow(tree, node)
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, color_system="standard" if color else None,
                      highlight=False, width=width or 120, legacy_windows=False, emoji=False)
    console.print(tree, soft_wrap=True)
    return buffer.getvalue()


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("|", "#124;").replace("`", "#96;"))


def _graph(node: TreeNode) -> tuple[list[tuple[str, TreeNode, list[tuple[str, Diagnostic]]]], list[tuple[str, str, TreeNode]]]:
    """The tree as graph elements for the Mermaid and DOT renderers: each function with its id and
    its findings' ids, and each call as (caller id, callee id, callee)."""
    ids: dict[int, str] = {}
    nodes = []
    syncs = 0
    for n in _walk(node):
        ids[id(n)] = f"f{len(ids)}"
        found = [(f"s{syncs + i}", d) for i, d in enumerate(n.syncs)]
        syncs += len(found)
        nodes.append((ids[id(n)], n, found))
    calls = [(ids[id(n)], ids[id(child)], child) for n in _walk(node) for child in n.children]
    return nodes, calls


def render_mermaid(node: TreeNode) -> str:
    """A Mermaid flowchart: functions as boxes, calls as labelled arrows, findings as red boxes."""
    nodes, calls = _graph(node)
    lines = ["flowchart TD"]
    edges: list[str] = []
    for fid, n, found in nodes:
        lines.append(f'    {fid}["{_mermaid_text(_short(n.function))}<br/>{_mermaid_text(n.path)}:{n.line}"]')
        for sid, d in found:
            lines.append(f'    {sid}[["{_mermaid_text(d.code + " " + _span(d))}<br/>'
                         f'{_mermaid_text(d.path)}:{d.start.row}"]]')
            edges.append(f"    {fid} -.-> {sid}")
            edges.append(f"    class {sid} sync")
    edges.extend(f"    {caller} -->|L{child.call_line} {child.kind}| {callee}" for caller, callee, child in calls)
    lines.extend(edges)
    lines.append("    classDef sync fill:#fdd,stroke:#c00")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_dot(node: TreeNode) -> str:
    """A Graphviz DOT digraph of the same tree."""
    nodes, calls = _graph(node)
    lines = ["digraph hot_path {", '    rankdir="LR";', '    node [shape="box", fontname="monospace"];']
    for fid, n, found in nodes:
        lines.append(f'    {fid} [label="{_dot_text(_short(n.function))}\\n{_dot_text(n.path)}:{n.line}"];')
        for sid, d in found:
            lines.append(f'    {sid} [label="{_dot_text(d.code + " " + _span(d))}\\n{_dot_text(d.path)}:{d.start.row}", '
                         'color="red", fontcolor="red"];')
            lines.append(f'    {fid} -> {sid} [style="dashed", color="red"];')
    lines.extend(f'    {caller} -> {callee} [label="L{child.call_line} {child.kind}"];' for caller, callee, child in calls)
    lines.append("}")
    return "\n".join(lines) + "\n"
