"""Hot paths (Issue 11): roots, the call graph, hotness on findings, SL601, `sync-lint paths`.

The fixture projects live in `fixtures/projects/hot-*/`. Each marks the SL601 findings a
whole-project run must produce with `# hot-expect: SL601` (the per-file `# expect:`
comments are what each file yields on its own, checked by test_fixtures.py).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixture_support import check_small_project
from sync_lint import api
from sync_lint.cli import main
from sync_lint.project.summary import summarize

PROJECTS = Path(__file__).resolve().parent.parent / "fixtures" / "projects"
HOT_EXPECT = re.compile(r"#\s*hot-expect:\s*(SL\d+)")


def expected_transitive(folder: Path) -> set[tuple[str, int]]:
    out = set()
    for path in sorted(folder.rglob("*.py")):
        for row, line in enumerate(path.read_text().splitlines(), start=1):
            if HOT_EXPECT.search(line):
                out.add((path.relative_to(folder).as_posix(), row))
    return out


@pytest.fixture
def project(tmp_path):
    """A copy of a fixture project (its cache stays in the temporary folder)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(PROJECTS / name, target)
        return target

    return copy


def run(folder: Path, cache: Path | None = None, **overrides) -> api.Report:
    plan = api.plan([str(folder)], project=api.ProjectOptions(cache_dir=cache or folder.parent / "cache"))
    if overrides:
        plan = api.Plan(plan.settings.override(**overrides), plan.rules, plan.registry, project=plan.project)
    return api.run(plan, [str(folder)])


def findings(report: api.Report, folder: Path, code: str | None = None) -> dict[tuple[str, int, str], object]:
    out = {}
    for result in report.results:
        assert not result.errors, result.errors
        for d in result.diagnostics:
            if code is None or d.code == code:
                out[(Path(d.path).resolve().relative_to(folder.resolve()).as_posix(), d.start.row, d.code)] = d
    return out


def transitive(report: api.Report, folder: Path) -> set[tuple[str, int]]:
    return {(path, row) for path, row, _code in findings(report, folder, "SL601")}


def test_a_defect_of_the_pass_keeps_the_files_findings_and_says_so(project, monkeypatch):
    from sync_lint import hotpaths

    folder = project("hot-depth")
    whole = run(folder, cache=folder.parent / "whole")
    direct = {key for key in findings(whole, folder) if key[2] != "SL601"}

    def broken(*args, **kwargs):
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(hotpaths, "_run", broken)
    report = run(folder, cache=folder.parent / "broken")
    errors = [e for r in report.results for e in r.errors]
    assert len(errors) == 1 and errors[0].rule == "SL601" and "hot-path pass raised TypeError" in errors[0].message
    kept = {(Path(d.path).resolve().relative_to(folder.resolve()).as_posix(), d.start.row, d.code)
            for r in report.results for d in r.diagnostics}
    assert direct and kept == direct  # every file's own findings, none of the pass's


# --- depth ---------------------------------------------------------------------------------------------


def test_syncs_one_two_and_three_calls_below_a_root_are_reported_at_the_call_site(project):
    folder = project("hot-depth")
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)
    found = findings(report, folder, "SL601")
    assert "1 call down" in found[("hotdepth/runner.py", 10, "SL601")].message
    assert "2 calls down" in found[("hotdepth/runner.py", 11, "SL601")].message
    three = found[("hotdepth/runner.py", 12, "SL601")]
    assert "3 calls down" in three.message
    assert ("Runner.execute_model → Builder.build → Builder._prepare → compute_causal_conv1d_metadata → "
            "`query_start_loc.tolist()` (SL102) at") in three.message
    assert three.message.split(" at ")[1].startswith(str(Path(folder / "hotdepth/metadata.py").resolve())) or \
        "hotdepth/metadata.py:6" in three.message
    assert [step.row for step in three.evidence_steps] == [12, 9, 12, 6]


def test_direct_findings_carry_the_shortest_chain_from_their_root(project):
    folder = project("hot-depth")
    direct = {k: d for k, d in findings(run(folder), folder).items() if k[2] != "SL601"}
    chains = {key[:2]: [s.function for s in d.hot.chain] for key, d in direct.items()}
    assert chains[("hotdepth/ops.py", 6)] == ["hotdepth.runner.Runner.execute_model", "hotdepth.ops.one"]
    assert chains[("hotdepth/ops.py", 15)] == ["hotdepth.runner.Runner.execute_model", "hotdepth.ops.two",
                                                "hotdepth.ops.leaf"]
    assert len(chains[("hotdepth/metadata.py", 6)]) == 4
    assert all(d.hot.root == "hotdepth.runner.Runner.execute_model" and d.hot.root_kind == "config"
               for d in direct.values())


def test_a_caller_no_root_reaches_gets_sl601_for_a_call_into_another_module_that_always_syncs(project):
    folder = project("hot-depth")
    found = findings(run(folder), folder, "SL601")
    cold = found[("hotdepth/runner.py", 16, "SL601")]  # load_weights: no root reaches it
    assert cold.hot is None
    assert cold.message.endswith("the host waits here each time this line runs")
    assert found[("hotdepth/runner.py", 10, "SL601")].message.endswith("on every pass through this hot path")


def test_off_hot_paths_only_calls_into_another_module_within_three_calls_of_a_sync_on_every_call(project):
    folder = project("hot-cold")
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)
    found = findings(report, folder, "SL601")
    assert "(behind the test at" in found[("hotcold/loader.py", 13, "SL601")].message
    assert "2 calls down" in found[("hotcold/loader.py", 13, "SL601")].message
    # --strict adds chains behind a branch on hot paths only: off them they stay out. It checks the
    # `cpu-modules` too (`cpu_runner.py`).
    assert transitive(run(folder, strict=True), folder) == expected_transitive(folder) | {("hotcold/cpu_runner.py", 20)}


def test_a_with_statement_calls_its_context_managers_enter_and_exit(project):
    folder = project("hot-cold")
    found = findings(run(folder), folder, "SL601")
    entered = found[("hotcold/loader.py", 63, "SL601")]  # `MemoryProfiler.__enter__` waits
    assert entered.message.startswith("the `with` statement's call of `MemoryProfiler.__enter__` reaches a sync")
    assert entered.start.column == 20  # at the class the line spells
    assert "(context)" in entered.evidence_steps[0].message
    assert "`StepTimer.__exit__`" in found[("hotcold/loader.py", 69, "SL601")].message  # a name bound to one
    assert "`AsyncTimer.__aexit__`" in found[("hotcold/loader.py", 79, "SL601")].message
    assert ("hotcold/loader.py", 74, "SL601") not in found  # `Quiet` and `torch.no_grad()` wait for nothing


def test_hotness_flows_from_a_with_statement_into_its_context_managers_methods(project):
    folder = project("hot-cold")
    direct = findings(run(folder, hot_paths=("hotcold.loader:load_profiled",)), folder, "SL401")
    entered = direct[("hotcold/profiling.py", 13, "SL401")]  # `MemoryProfiler.__enter__`
    assert [step.function for step in entered.hot.chain] == ["hotcold.loader.load_profiled",
                                                             "hotcold.profiling.MemoryProfiler.__enter__"]
    assert direct[("hotcold/profiling.py", 27, "SL401")].hot is None  # `StepTimer` is not entered from there


def test_sl601_findings_in_a_test_file_have_the_test_context(project):
    folder = project("hot-cold")
    found = findings(run(folder), folder, "SL601")
    assert found[("hotcold/test_ops.py", 5, "SL601")].context == "test"
    assert found[("hotcold/loader.py", 8, "SL601")].context == "per-step"
    again = findings(run(folder), folder, "SL601")  # the pass's cached answer, reused
    assert again[("hotcold/test_ops.py", 5, "SL601")].context == "test"


def test_another_platforms_module_gets_no_sl601_by_default(project):
    folder = project("hot-cold")
    (folder / "hotcold" / "npu_runner.py").write_text(
        "from hotcold import ops\n\n\ndef run(n):\n    return ops.max_now(n)\n")
    assert ("hotcold/npu_runner.py", 5) not in transitive(run(folder), folder)
    assert ("hotcold/npu_runner.py", 5) in transitive(run(folder, strict=True), folder)


def test_off_hot_paths_a_call_that_passes_what_the_sync_needs_not_to_be_none_is_not_reported(project):
    folder = project("hot-cold")
    rows = transitive(run(folder), folder)
    assert ("hotcold/loader.py", 40) in rows  # `ops.sized(lens)`: `total` left None, summed on the GPU
    assert ("hotcold/loader.py", 41) not in rows  # `ops.sized(lens, total=n)`: the host's total


def test_off_hot_paths_a_call_dispatched_to_several_methods_is_reported_only_when_each_syncs(project):
    folder = project("hot-cold")
    found = findings(run(folder), folder, "SL601")
    assert ("hotcold/loader.py", 46, "SL601") not in found  # a mixin's `prepare` is reached too
    assert ("hotcold/loader.py", 50, "SL601") not in found  # `HostReader.read` waits for nothing
    both = found[("hotcold/loader.py", 54, "SL601")]  # `LeftCounter.count` and `RightCounter.count` both wait
    assert "Counter.count" in both.message
    # `Loader` defines `load` itself: that is the method the call reaches, whatever its subclasses override.
    assert "`Loader.load`" in found[("hotcold/loader.py", 59, "SL601")].message


def test_a_chain_through_a_module_that_replaces_torchs_wait_is_not_reported(project):
    folder = project("hot-cold")
    rows = transitive(run(folder, strict=True), folder)  # `cpu_runner.py` is a `cpu-modules` module
    # `CPURunner.__init__` sets `torch.accelerator.synchronize` to a no-op: the GPU runner's
    # `profile_run`, reached through the CPU runner, waits for nothing.
    assert ("hotcold/cpu_runner.py", 17) not in rows
    assert ("hotcold/workers.py", 12) not in rows
    assert ("hotcold/workers.py", 7) in rows  # straight into the GPU runner
    assert ("hotcold/cpu_runner.py", 20) in rows  # `empty_cache` is still torch's
    # `import hotcold.shm` replaces `empty_cache` when the worker's module is imported.
    assert ("hotcold/cpu_worker.py", 7) not in rows


def test_a_single_checked_file_finds_the_same_calls_off_hot_paths(project):
    folder = project("hot-cold")
    plan = api.plan([str(folder)], project=api.ProjectOptions(cache_dir=folder.parent / "cache"))
    report = api.run(plan, [str(folder / "hotcold" / "loader.py")])
    rows = sorted(d.start.row for r in report.results for d in r.diagnostics if d.code == "SL601")
    assert rows == sorted(row for path, row in expected_transitive(folder) if path == "hotcold/loader.py")


def test_a_single_checked_file_still_sees_syncs_in_modules_it_did_not_check(project):
    folder = project("hot-depth")
    plan = api.plan([str(folder)], project=api.ProjectOptions(cache_dir=folder.parent / "cache"))
    report = api.run(plan, [str(folder / "hotdepth" / "runner.py")])
    rows = sorted(d.start.row for r in report.results for d in r.diagnostics if d.code == "SL601")
    assert rows == [10, 11, 12, 16]
    assert {r.path for r in report.results} == {str(folder / "hotdepth" / "runner.py")}


def test_files_the_pass_checks_while_the_merge_runs_are_checked_in_this_process(project, monkeypatch):
    """A pool must not fork while the merge thread is inside SQLite; rather than wait for the merge,
    the pass checks its extra files in this process, with the same findings."""
    import threading

    folder = project("hot-depth")
    plan = api.plan([str(folder)], project=api.ProjectOptions(cache_dir=folder.parent / "cache"))
    runner = str(folder / "hotdepth" / "runner.py")
    merge_may_end = threading.Event()
    merge, run_files = api._merge_reads, api.run_files
    more_jobs: list[object] = []

    def slow_merge(projects):  # type: ignore[no-untyped-def]
        merge_may_end.wait(30)
        merge(projects)

    def spying(plan, files, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("updated"):
            return run_files(plan, files, **kwargs)
        more_jobs.append(kwargs.get("jobs"))  # the pass's own check of more files, the merge still on
        try:
            return run_files(plan, files, **kwargs)
        finally:
            merge_may_end.set()

    monkeypatch.setattr(api, "_merge_reads", slow_merge)
    monkeypatch.setattr(api, "run_files", spying)
    report = api.run(plan, [runner], jobs=2)
    assert more_jobs == [1]
    assert not api._MERGING
    rows = sorted(d.start.row for r in report.results for d in r.diagnostics if d.code == "SL601")
    assert rows == [10, 11, 12, 16]


# --- call kinds ------------------------------------------------------------------------------------------


def test_every_call_kind_reaches_its_sync(project):
    folder = project("hot-kinds")
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)
    messages = {row: d.message for (path, row, _c), d in findings(report, folder, "SL601").items()
                if path == "hotkinds/step.py"}
    assert "`Builder.build`" in messages[16]  # annotated receiver
    assert "`Builder.make`" in messages[17]  # classmethod through the class
    assert "`Meta.__init__`" in messages[18]  # constructor
    assert "`Builder.build`" in messages[19]  # return type
    assert "`Base.prepare`" in messages[20]  # super()
    assert 21 not in messages  # an override of a base-class method: a guess, made only with --strict
    strict = {row: d.message for (path, row, _c), d in findings(run(folder, strict=True), folder, "SL601").items()
              if path == "hotkinds/step.py"}
    assert "`CudaBackend.run`" in strict[21]
    assert "`by_partial`" in messages[22] and "`by_stored_partial`" in messages[23]  # functools.partial
    assert "`by_callback`" in messages[24]  # callback
    assert "`Layer.forward`" in messages[26]  # module instance call
    assert "`inner`" in messages[33]  # nested def


def test_edge_kinds_are_named(project):
    from sync_lint.project.hot import CallGraph

    folder = project("hot-kinds")
    report = run(folder)
    opened = next(iter(report.projects.values())).open(api.plan([str(folder)]).settings)
    graph = CallGraph(opened.index, opened.inference)
    kinds = {(e.line, e.kind) for e in graph.edges("hotkinds.step.Step.run")}
    for expected in [(14, "function"), (15, "method"), (16, "method"), (18, "constructor"), (20, "super"),
                     (21, "override"), (22, "partial"), (23, "partial"), (24, "callback"), (26, "instance-call"),
                     (27, "function")]:
        assert expected in kinds, expected
    # `fn(n)` on a parameter in `apply` is unresolved, and listed as such
    assert [(u.line, u.text) for u in graph.unresolved("hotkinds.syncs.apply")] == [(22, "fn")]
    # A class decorator assigned `Experts.forward`: the call reaches what it assigned, not the decorated body.
    assert [(e.callee, e.kind) for e in graph.edges("hotkinds.step.dispatched_experts")] == [
        ("hotkinds.syncs.dispatched.<locals>.forward", "replaced")]


def test_a_module_called_in_a_loop_runs_once_per_layer(project):
    folder = project("hot-kinds")
    direct = findings(run(folder), folder, "SL101")
    layer = direct[("hotkinds/syncs.py", 64, "SL101")]
    assert layer.hot.per_layer
    assert not direct[("hotkinds/syncs.py", 6, "SL101")].hot.per_layer


# --- suppression at every level --------------------------------------------------------------------------


def test_suppression_at_each_level_stops_the_report_above_it(project):
    folder = project("hot-suppress")
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)


def test_a_baseline_holds_at_every_level(project, tmp_path):
    from sync_lint.baseline import create_baseline

    folder = project("hot-suppress")
    report = run(folder)
    found = findings(report, folder)
    recorded = [found[("hotsup/mid.py", 19, "SL601")], found[("hotsup/leaf.py", 24, "SL101")]]
    baseline = folder / "baseline.json"
    create_baseline(recorded, baseline, api.read_lines_cached())
    out = CliRunner().invoke(main, ["check", str(folder), "--baseline", str(baseline), "--output-format", "json",
                                    "--cache-dir", str(tmp_path / "cache2"), "--show-stale"])
    objects = json.loads(out.stdout)
    rows = {(Path(o["filename"]).name, o["location"]["row"], o["code"]) for o in objects}
    # The baselined SL601 at mid.py:19 is gone and its caller (runner.py:11) is cut; the baselined sync
    # at leaf.py:24 is no finding, so its caller (runner.py:12) reports nothing either.
    assert ("mid.py", 19, "SL601") not in rows and ("runner.py", 11, "SL601") not in rows
    assert ("leaf.py", 24, "SL101") not in rows and ("runner.py", 12, "SL601") not in rows
    assert ("runner.py", 13, "SL601") in rows and ("mid.py", 23, "SL601") in rows
    assert "stale baseline entry" not in out.stderr


# --- roots -------------------------------------------------------------------------------------------------


def test_default_roots_module_forward_compile_and_cuda_graphs(project):
    folder = project("hot-defaults")
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)
    direct = findings(report, folder, "SL101")
    kinds = {row: (d.hot.root_kind if d.hot else None) for (_p, row, _c), d in direct.items()}
    assert kinds == {5: "module-forward", 9: "compiled", 13: "compiled", 17: "cuda-graph", 21: None}


def test_default_roots_can_be_switched_off(project):
    folder = project("hot-defaults")
    report = run(folder, hot_path_defaults=())
    # Every call into the helpers' module is still reported, but none as hot.
    assert transitive(report, folder) == expected_transitive(folder)
    assert all(d.hot is None for d in findings(report, folder).values())


def test_hot_marker_on_the_def_line_or_the_line_above():
    source = ("# sync-lint: hot\ndef a():\n    pass\n\n\ndef b():  # sync-lint: hot\n    pass\n\n\n"
              "x = 1  # sync-lint: hot\ndef c():\n    pass\n\n\n@decorator  # sync-lint: hot\ndef d():\n    pass\n")
    summary = summarize(source, "m.py", "m")
    assert {name for name, info in summary.functions.items() if info.hot_marker} == {"a", "b", "d"}


def test_configured_roots_are_validated(tmp_path):
    from sync_lint.config import ConfigError, settings_from_table

    with pytest.raises(ConfigError):
        settings_from_table({"hot-paths": ["not a root"]}, "pyproject.toml", tmp_path, None)
    with pytest.raises(ConfigError):
        settings_from_table({"hot-path-defaults": ["forward"]}, "pyproject.toml", tmp_path, None)


def test_a_root_that_names_nothing_is_a_warning(project, tmp_path):
    folder = project("hot-depth")
    out = CliRunner().invoke(main, ["check", str(folder), "--hot-path", "hotdepth.runner:Nope.run",
                                    "--cache-dir", str(tmp_path / "c"), "--output-format", "concise"])
    assert "hot path root 'hotdepth.runner:Nope.run' names no function" in out.stderr


# --- output ---------------------------------------------------------------------------------------------------


def test_json_and_sarif_carry_hotness(project, tmp_path):
    folder = project("hot-depth")
    out = CliRunner().invoke(main, ["check", str(folder), "--output-format", "json", "--cache-dir", str(tmp_path / "c")])
    objects = json.loads(out.stdout)
    item = next(o for o in objects if o["code"] == "SL102")
    assert item["hot"]["root"] == "hotdepth.runner.Runner.execute_model"
    assert [s["function"].rsplit(".", 1)[-1] for s in item["hot"]["chain"]] == [
        "execute_model", "build", "_prepare", "compute_causal_conv1d_metadata"]
    assert item["hot"]["chain"][0]["row"] == 12 and item["hot"]["loop_depth"] == 0
    out = CliRunner().invoke(main, ["check", str(folder), "--output-format", "sarif", "--cache-dir", str(tmp_path / "c")])
    results = json.loads(out.stdout)["runs"][0]["results"]
    hot = [r for r in results if "hot" in r["properties"]]
    assert len(hot) == 9 and len(results) == 10  # load_weights's call: no root reaches it
    step = hot[0]["properties"]["hot"]["chain"][0]
    assert step["uri"].startswith("file://") or step["uriBaseId"] == "%SRCROOT%"
    assert step["uri"].endswith(".py")


def test_full_output_puts_hot_findings_first_and_counts_per_root(project, tmp_path):
    folder = project("hot-defaults")
    out = CliRunner().invoke(main, ["check", str(folder), "--cache-dir", str(tmp_path / "c")])
    text = out.stdout
    headers = [line for line in text.splitlines() if re.match(r"\S+:\d+:\d+: SL", line)]
    # The cold findings come last: the sync no root reaches, then the calls no root reaches.
    assert [(h.split(":")[0].rsplit("/", 1)[-1], h.split(":")[1]) for h in headers[-3:]] == [
        ("helpers.py", "21"), ("model.py", "26"), ("model.py", "30")]
    assert "= hot: " in text
    assert "Hot paths: 4 of 5 findings on a hot path" in text
    assert "nn.Module forward (1 roots): 1" in text and "torch.compile (2 roots): 2" in text


def test_hot_only_drops_cold_findings(project, tmp_path):
    folder = project("hot-defaults")
    out = CliRunner().invoke(main, ["check", str(folder), "--hot-only", "--output-format", "json",
                                    "--cache-dir", str(tmp_path / "c")])
    rows = {o["location"]["row"] for o in json.loads(out.stdout) if o["filename"].endswith("helpers.py")}
    assert rows == {5, 9, 13, 17}


def test_show_unresolved_lists_the_calls_the_graph_could_not_resolve(project, tmp_path):
    folder = project("hot-kinds")
    out = CliRunner().invoke(main, ["check", str(folder), "--show-unresolved", "--output-format", "concise",
                                    "--cache-dir", str(tmp_path / "c")])
    assert "2 unresolved call(s)" in out.stderr
    assert "hotkinds/syncs.py:22: fn  (in hotkinds.syncs.apply)" in out.stderr
    # (the free name `original` reads as what the function around it assigns)
    assert "hotkinds/syncs.py:76: IMPLEMENTATIONS.get(self.implementation, cls.forward)  " \
           "(in hotkinds.syncs.dispatched.<locals>.forward)" in out.stderr


def test_unresolved_calls_are_counted_always_and_listed_when_asked_even_after_a_cached_answer(project, tmp_path):
    folder = project("hot-kinds")
    arguments = ["check", str(folder), "--output-format", "full", "--cache-dir", str(tmp_path / "c")]
    counted = CliRunner().invoke(main, arguments)
    assert "2 unresolved calls in them" in counted.stdout
    listed = CliRunner().invoke(main, [*arguments, "--show-unresolved"])  # not the answer cached without the list
    assert "2 unresolved call(s)" in listed.stderr and "(in hotkinds.syncs.apply)" in listed.stderr
    assert "2 unresolved calls in them" in listed.stdout


def test_paths_tree_and_json(project, tmp_path):
    folder = project("hot-depth")
    args = ["paths", "hotdepth.runner:Runner.execute_model", str(folder), "--cache-dir", str(tmp_path / "c")]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 1, out.output
    assert "compute_causal_conv1d_metadata" in out.stdout and "SL102 `query_start_loc.tolist()`" in out.stdout
    assert "3 sync(s) on the path" in out.stdout
    data = json.loads(CliRunner().invoke(main, [*args, "--output-format", "json"]).stdout)
    assert data["syncs"] == 3 and data["functions_reached"] == 7
    assert [c["function"].rsplit(".", 1)[-1] for c in data["tree"]["children"]] == ["one", "two", "build"]


def test_paths_mermaid_parses(project, tmp_path):
    merm = pytest.importorskip("merm")
    folder = project("hot-kinds")
    out = CliRunner().invoke(main, ["paths", "hotkinds.step:Step.run", str(folder), "--output-format", "mermaid",
                                    "--cache-dir", str(tmp_path / "c")])
    diagram = merm.parse_flowchart(out.stdout)
    labels = [node.label for node in diagram.nodes]
    assert any(label.startswith("Step.run") for label in labels)
    assert sum(1 for label in labels if label.startswith("SL1")) == 10
    assert len(diagram.edges) == len(diagram.nodes) - 1 + 0  # a tree: one edge into every node but the root


def test_paths_dot_parses(project, tmp_path):
    pydot = pytest.importorskip("pydot")
    folder = project("hot-kinds")
    out = CliRunner().invoke(main, ["paths", "hotkinds.step:Step.run", str(folder), "--output-format", "dot", "--all",
                                    "--cache-dir", str(tmp_path / "c")])
    (graph,) = pydot.graph_from_dot_data(out.stdout)
    nodes = [n for n in graph.get_nodes() if n.get_name() not in ("node", "graph", "edge")]
    labels = [n.get_label().strip('"') for n in nodes]
    assert any(label.startswith("Step.run") for label in labels)
    assert len(graph.get_edges()) == len(nodes) - 1
    kinds = {e.get_label().strip('"').split(" ", 1)[1] for e in graph.get_edges() if e.get_label()}
    assert {"function", "method", "constructor", "super", "override", "partial", "callback",
            "instance-call"} <= kinds


def test_paths_rejects_an_unknown_root(project, tmp_path):
    folder = project("hot-depth")
    out = CliRunner().invoke(main, ["paths", "hotdepth.runner:Nope", str(folder), "--cache-dir", str(tmp_path / "c")])
    assert out.exit_code == 2 and "names no function" in out.output


# --- cache ---------------------------------------------------------------------------------------------------


def test_edges_are_cached_and_dropped_when_a_callee_changes(project, tmp_path):
    folder = project("hot-depth")
    cache = tmp_path / "cache"
    first = transitive(run(folder, cache), folder)
    from sync_lint.project import hot

    computed = []
    original = hot.CallGraph._compute

    def counting(self, qualname):
        computed.append(qualname)
        return original(self, qualname)

    hot.CallGraph._compute = counting
    try:
        assert transitive(run(folder, cache), folder) == first
        assert computed == []  # every edge came from the cache
        ops = folder / "hotdepth" / "ops.py"
        ops.write_text(ops.read_text().replace("    return leaf(n) + 1  # hot-expect: SL601\n",
                                               "    return 1\n"))
        after = transitive(run(folder, cache), folder)
    finally:
        hot.CallGraph._compute = original
    assert "hotdepth.ops.two" in computed
    assert ("hotdepth/runner.py", 11) not in after and ("hotdepth/runner.py", 10) in after


def test_an_unchanged_run_reuses_the_last_answer_and_any_change_recomputes_it(project, tmp_path, monkeypatch):
    from sync_lint import hotpaths

    folder = project("hot-depth")
    cache = tmp_path / "cache"
    first = run(folder, cache)
    walks = []
    original = hotpaths._run
    monkeypatch.setattr(hotpaths, "_run", lambda *args: (walks.append(1), original(*args))[1])

    def summary(report: api.Report) -> list[str]:
        return report.hot.lines([d for r in report.results for d in r.diagnostics])

    second = run(folder, cache)
    assert walks == []  # nothing changed: the graph was not walked
    assert findings(second, folder) == findings(first, folder)  # hotness and SL601 included
    assert summary(second) == summary(first) and second.hot.unresolved_calls == first.hot.unresolved_calls
    # Other rules, other roots, an edited file: each walks the graph again.
    plan = api.plan([str(folder)], ignore=["SL104"], project=api.ProjectOptions(cache_dir=cache))
    api.run(plan, [str(folder)])
    assert len(walks) == 1
    run(folder, cache, hot_path_defaults=())
    assert len(walks) == 2
    ops = folder / "hotdepth" / "ops.py"
    ops.write_text(ops.read_text().replace("    return leaf(n) + 1  # hot-expect: SL601\n", "    return 1\n"))
    after = run(folder, cache)
    assert len(walks) == 3 and ("hotdepth/runner.py", 11) not in transitive(after, folder)
    # A one-file run and a whole-project run keep their answers side by side.
    runner = str(folder / "hotdepth" / "runner.py")
    single = api.plan([runner], project=api.ProjectOptions(cache_dir=cache))
    api.run(single, [runner])
    run(folder, cache)
    api.run(single, [runner])
    assert len(walks) == 4


def test_isolated_runs_follow_calls_within_the_checked_files(tmp_path):
    path = tmp_path / "step.py"
    path.write_text("import torch\n\n\ndef helper(n):\n    t = torch.zeros(n, device='cuda')\n"
                    "    return t.max().item()\n\n\ndef step(n):  # sync-lint: hot\n    return helper(n)\n")
    plan = api.plan([str(path)], isolated=True)
    report = api.run(plan, [str(path)])
    codes = sorted((d.start.row, d.code) for r in report.results for d in r.diagnostics)
    assert codes == [(6, "SL101"), (10, "SL601")]


# --- runtime join -----------------------------------------------------------------------------------------------


def test_trace_join_marks_the_blocking_lines_on_a_hot_path(project, monkeypatch):
    """The tracer's blocking lines get the static hot root, also when no rule flagged them."""
    from sync_lint.cli.runtime import _static_findings
    from sync_lint.runtime import join_with_static
    from sync_lint.runtime.sites import norm
    from sync_lint.runtime.tracer import LineEntry, TraceReport

    folder = project("hot-depth")
    monkeypatch.chdir(folder)
    ops = norm(str(folder / "hotdepth" / "ops.py"))
    runner = norm(str(folder / "hotdepth" / "runner.py"))
    report = TraceReport(
        target="bench.py", argv=["bench.py"], sleep_ms=5.0,
        entries=[LineEntry(ops, 6, 1, 1, 5.2, 5.2, True, "return t.max().item()"),
                 LineEntry(ops, 5, 1, 1, 5.1, 5.1, True, "t = torch.zeros(n, device='cuda')"),
                 LineEntry(runner, 16, 1, 1, 5.3, 5.3, True, "return ops.one(n)")],
        executions={ops: {5: 1, 6: 1}, runner: {16: 1}}, cuda_initialized=True,
    )
    static, hot = _static_findings([ops, runner])
    joined = join_with_static(report, static, hot)
    rows = {(Path(r["file"]).name, r["line"]): r for r in joined["lines"]}
    assert rows[("ops.py", 6)]["class"] == "both" and rows[("ops.py", 6)]["hot"]["root"].endswith("execute_model")
    assert rows[("ops.py", 5)]["class"] == "runtime-only" and rows[("ops.py", 5)]["hot"] is not None
    assert rows[("runner.py", 16)]["hot"] is None  # load_weights: no root reaches it
    assert joined["summary"]["hot-blocking"] == 2
    from sync_lint.runtime import render_full

    text = render_full(joined, width=300)
    assert "hot root" in text and "on a hot path and blocked: 2" in text


def test_the_cli_follows_calls_into_files_it_was_not_asked_to_check(project, tmp_path):
    # Checking one file still uses the whole project's call graph: its transitive findings name
    # syncs in modules that were not on the command line.
    folder = project("hot-depth")
    runner = folder / "hotdepth" / "runner.py"
    out = CliRunner().invoke(main, ["check", str(runner), "--output-format", "json",
                                    "--cache-dir", str(tmp_path / "c")])
    rows = {o["location"]["row"] for o in json.loads(out.stdout) if o["code"] == "SL601"}
    assert rows == {row for path, row in expected_transitive(folder) if path == "hotdepth/runner.py"}
    assert rows


def test_a_sync_known_only_in_strict_mode_is_not_reported_at_its_callers(tmp_path):
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef unknown(x: torch.Tensor):\n    return x.item()\n\n\n"
                      "def proven(n):\n    return torch.zeros(n, device='cuda').sum().item()\n",
        "pkg/runner.py": "from pkg.ops import proven, unknown\n\n\n# sync-lint: hot\ndef step(x, n):\n"
                         "    a = unknown(x)\n    b = proven(n)\n    return a, b\n",
    }, pyproject="[tool.sync-lint]\nhot-path-defaults = []\n", strict=True)
    found = {(Path(d.path).name, d.start.row, d.code, d.confidence) for d in diagnostics}
    assert ("ops.py", 5, "SL101", "strict") in found  # reported where it is
    assert ("runner.py", 7, "SL601", "high") in found  # a proven sync still reaches its hot caller
    assert not any(name == "runner.py" and row == 6 for name, row, _code, _conf in found)


def test_a_layer_built_by_its_constructor_does_not_reach_subclass_overrides(tmp_path):
    # `self.attn = Attention()` is an `Attention`; a platform subclass overriding `forward` is
    # another layer, reached only through a receiver whose class is merely declared.
    files = {
        "pkg/__init__.py": "",
        "pkg/layers.py": "import torch\n\n\nclass Attention(torch.nn.Module):\n    def forward(self, x):\n"
                         "        return x * 2\n\n\nclass RocmAttention(Attention):\n    def forward(self, x):\n"
                         "        return x * torch.ones(1, device='cuda').sum().item()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.layers import Attention\n\n\n"
                        "class Model(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                        "        self.attn = Attention()\n\n    def forward(self, x):\n        return self.attn(x)\n\n\n"
                        "class Declared(torch.nn.Module):\n    def __init__(self, attn: Attention):\n"
                        "        super().__init__()\n        self.attn = attn\n\n    def forward(self, x):\n"
                        "        return self.attn(x)\n",
    }
    diagnostics = check_small_project(tmp_path, files)
    transitive = {(Path(d.path).name, d.start.row) for d in diagnostics if d.code == "SL601"}
    assert ("model.py", 12) not in transitive  # built here: exactly an Attention
    assert ("model.py", 21) not in transitive  # declared: a subclass may arrive, a guess default mode leaves out
    strict = {(Path(d.path).name, d.start.row) for d in check_small_project(tmp_path / "strict", files, strict=True)
              if d.code == "SL601"}
    assert ("model.py", 12) not in strict
    assert ("model.py", 21) in strict


def test_roots_come_from_the_cache_and_follow_edits_that_add_roots(project, tmp_path):
    folder = project("hot-defaults")
    cache = tmp_path / "cache"
    first = transitive(run(folder, cache), folder)
    assert first == expected_transitive(folder)
    from sync_lint.project import hot

    found = []
    original = hot.CallGraph.roots

    def counting(self, *args, **kwargs):
        found.append(1)
        return original(self, *args, **kwargs)

    hot.CallGraph.roots = counting
    try:
        assert transitive(run(folder, cache), folder) == first
        assert found == []  # nothing changed: the roots came from the cache
        # Each edit adds a root in a new module that nothing else reads: a marked function, a compiled
        # one, a layer.
        header = "import torch\n\nfrom hotdef.helpers import at_start\n\n\n"
        for name, body in [("marked", "# sync-lint: hot\ndef marked(n):\n"),
                           ("fused", "@torch.compile(mode='max-autotune')\ndef fused(n):\n"),
                           ("head", "class Head(torch.nn.Module):\n    def forward(self, n):\n    ")]:
            (folder / "hotdef" / f"{name}.py").write_text(header + body + "    return at_start(n)\n")
            after = transitive(run(folder, cache), folder)
            assert (f"hotdef/{name}.py", 8) in after, name
    finally:
        hot.CallGraph.roots = original


def model_sl601(tmp_path: Path, files: dict[str, str], strict: bool = True) -> dict[int, str]:
    """The SL601 messages in `pkg/model.py` by row, `nn.Module.forward` the only built-in root.
    `--strict` by default: most chains here need a branch taken, which default mode does not report."""
    diagnostics = check_small_project(tmp_path, files,
                                      pyproject="[tool.sync-lint]\nhot-path-defaults = [\"module-forward\"]\n",
                                      strict=strict)
    return {d.start.row: d.message for d in diagnostics if d.code == "SL601" and Path(d.path).name == "model.py"}


def test_a_chain_that_needs_a_parameter_the_caller_passes_as_none_is_not_reported(tmp_path):
    # transformers' masks: `create_bidirectional_mask` passes `position_ids=None` to the helper whose
    # packed-sequence check (a sync) runs only `if position_ids is not None`; `create_causal_mask`
    # passes the model's position ids. A keyword left to its None default counts the same.
    found = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/mask.py": "import torch\n\n\ndef find_packed(position_ids):\n    m = (position_ids != 1).cumsum(-1)\n"
                       "    if (m[:, -1] == 0).all():\n        return None\n    return m\n\n\n"
                       "def prepare(x, position_ids, attention_mask=None):\n"
                       "    if position_ids is not None and attention_mask is None:\n"
                       "        position_ids = position_ids.expand(2, -1)\n        return find_packed(position_ids)\n"
                       "    return None\n\n\n"
                       "def causal_mask(x, position_ids=None):\n    return prepare(x, position_ids)\n\n\n"
                       "def bidirectional_mask(x):\n    return prepare(x, position_ids=None)\n\n\n"
                       "def lengths(x, attention_mask=None):\n    if attention_mask is None:\n        return None\n"
                       "    return attention_mask.sum(-1).tolist()\n\n\n"
                       "def counts(x, attention_mask=None):\n    return (\n        attention_mask.sum(-1).tolist()\n"
                       "        if attention_mask is not None\n        else [x.shape[1]]\n    )\n",
        "pkg/model.py": "import torch\n\nfrom pkg.mask import bidirectional_mask, causal_mask, counts, lengths\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, x):\n"
                        "        position_ids = torch.arange(x.shape[1], device='cuda')[None]\n"
                        "        mask = torch.ones(2, 3, device='cuda')\n"
                        "        a = causal_mask(x, position_ids)\n        b = bidirectional_mask(x)\n"
                        "        c = lengths(x)\n        d = lengths(x, attention_mask=mask)\n"
                        "        e = counts(x)\n        f = counts(x, mask)\n        g = causal_mask(x)\n"
                        "        return a, b, c, d, e, f, g\n",
    })
    transitive = sorted(found)
    # Not 11 (position_ids=None), 12 (attention_mask left None), 14 (the `... if mask is not None else`)
    # nor 16 (position_ids left None, and handed down as None).
    assert transitive == [10, 13, 15]


def test_a_fallback_for_a_parameter_the_call_passes_a_value_is_not_reached_from_it(tmp_path):
    # SGLang's Kimi-K3-VL: `_resolve(grid_thws, grid_thw_list=None)` runs `grid_thws.tolist()` only when
    # `grid_thw_list is None`. The embedding passes `metadata.grid_thw_list`, a required field every
    # construction fills with what a function returns from `tuple(...)` (line 10 of the model); a literal list is a value too (line 11). A call that
    # passes None runs the fallback (line 12): the guards are by line, and on the one line of
    # `a if test else b` they are kept only for the arm that calls something. `elsewhere` may hand
    # `embed` a None, but not along line 10's chain: what a call passes is followed down the chain.
    found = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/grid.py": "from dataclasses import dataclass\n\nimport torch\n\n\n"
                       "def resolve(grid_thws, grid_thw_list=None):\n"
                       "    values = grid_thws.tolist() if grid_thw_list is None else grid_thw_list\n"
                       "    return tuple(values)\n\n\n"
                       "@dataclass(frozen=True)\nclass Meta:\n    grid_thw_list: tuple\n\n\n"
                       "def embed(grid_thws, grid_thw_list=None):\n    return resolve(grid_thws, grid_thw_list)\n\n\n"
                       "def embed_or_not(grid_thws, grid_thw_list=None):\n    return resolve(grid_thws, grid_thw_list)\n\n\n"
                       "def elsewhere(grid_thws, grid_thw_list=None):\n"
                       "    return embed(grid_thws, grid_thw_list=grid_thw_list)\n\n\n"
                       "def shapes_of(shapes):\n    return tuple((int(t), int(h), int(w)) for t, h, w in shapes)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.grid import Meta, embed, embed_or_not, resolve, shapes_of\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, x, shapes):\n"
                        "        grid = torch.ones(2, 3, device='cuda')\n"
                        "        meta = Meta(grid_thw_list=shapes_of(shapes))\n"
                        "        a = embed(grid, grid_thw_list=meta.grid_thw_list)\n"
                        "        b = resolve(grid, [(1, 2, 3)])\n        c = embed_or_not(grid, grid_thw_list=None)\n"
                        "        return a, b, c\n",
    })
    assert sorted(found) == [12]


def test_a_copy_to_a_device_the_caller_leaves_none_is_not_reported(tmp_path):
    # transformers' xLSTM: `forward` builds its cache without a `device`, and the constructor's
    # `torch.tensor([0], device=device)` is then a CPU tensor; another caller passes the GPU.
    found = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/cache.py": "import torch\n\n\nclass Cache:\n    def __init__(self, n, device=None):\n"
                        "        self.offset = torch.tensor([0], dtype=int, device=device)\n"
                        "        self.n = torch.zeros(n).to(device)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.cache import Cache\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, x):\n"
                        "        a = Cache(3)\n        b = Cache(3, device=x.device)\n        c = Cache(3, None)\n"
                        "        return a, b, c\n",
    })
    assert sorted(found) == [9]


def test_a_chain_that_needs_a_flag_the_caller_leaves_false_is_not_reported(tmp_path):
    # vLLM's FMHA entry point validates its inputs (a `.cpu()` of a GPU tensor) only `if check_inputs:`,
    # and the model never turns that on; `if not check_inputs: return` guards the same way.
    # `check_inputs is not None` is no such test: False is not None.
    found = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/attn.py": "import torch\n\n\ndef validate(lens):\n    return lens.cpu()\n\n\n"
                       "def fmha(q, lens, check_inputs=False):\n    if check_inputs:\n        validate(lens)\n"
                       "    return q\n\n\n"
                       "def fmha_early(q, lens, check_inputs=False):\n    if not check_inputs:\n        return q\n"
                       "    validate(lens)\n    return q\n\n\n"
                       "def fmha_none_test(q, lens, check_inputs=False):\n    if check_inputs is not None:\n"
                       "        validate(lens)\n    return q\n",
        "pkg/model.py": "import torch\n\nfrom pkg.attn import fmha, fmha_early, fmha_none_test\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, q):\n"
                        "        lens = torch.ones(3, device='cuda')\n"
                        "        a = fmha(q, lens)\n        b = fmha(q, lens, check_inputs=False)\n"
                        "        c = fmha(q, lens, True)\n        d = fmha_early(q, lens)\n"
                        "        e = fmha_early(q, lens, check_inputs=True)\n        f = fmha_none_test(q, lens)\n"
                        "        return a, b, c, d, e, f\n",
    })
    transitive = sorted(found)
    # Not 9 (left False), 10 (passed False) nor 12 (left False, early return).
    assert transitive == [11, 13, 14]


def test_false_flags_are_followed_only_where_the_test_still_sees_them(tmp_path):
    # Handed down through the caller's own parameter, or "" instead of False: pruned. Rebound later in
    # a loop around the test, or by a walrus in the test itself: followed. `Base.run(self, lens, False)`
    # passes `self` by hand, so `False` is `check`, not `lens`.
    found = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/attn.py": "import torch\n\n\ndef validate(lens):\n    return lens.cpu()\n\n\n"
                       "def checked(lens, check=False):\n    if check:\n        validate(lens)\n\n\n"
                       "def outer(lens, check=False):\n    checked(lens, check)\n\n\n"
                       "def named(lens, mode=''):\n    if mode:\n        validate(lens)\n\n\n"
                       "def looped(lens, check=False):\n    for _ in range(2):\n        if check:\n"
                       "            validate(lens)\n        check = True\n\n\n"
                       "def walrus(lens, check=False):\n    if (check := lens.numel() > 0) and check:\n"
                       "        validate(lens)\n\n\n"
                       "class Base:\n    def run(self, lens, check=False):\n        if check:\n"
                       "            validate(lens)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.attn import Base, looped, named, outer, walrus\n\n\n"
                        "class Model(torch.nn.Module, Base):\n    def forward(self, q):\n"
                        "        lens = torch.ones(3, device='cuda')\n"
                        "        outer(lens)\n        named(lens)\n        looped(lens)\n        walrus(lens)\n"
                        "        Base.run(self, lens, False)\n        Base.run(self, lens, True)\n"
                        "        return q\n",
    })
    transitive = sorted(found)
    # Not 9 (False handed down), 10 ("") nor 13 (self by hand, check False).
    assert transitive == [11, 12, 14]


def test_the_message_names_the_branch_a_conditional_sync_needs(tmp_path):
    # A sync that runs on every call says so; one behind an `if` (in the callee, or after an early
    # return, or in an `except` on the way) names the first test along the chain that decides it.
    messages = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef always(x):\n    return x.sum().item()\n\n\n"
                      "def sometimes(x, n):\n    if n > 4:\n        return x.sum().item()\n    return 0\n\n\n"
                      "def after_return(x, n):\n    if n > 4:\n        return 0\n    return always(x)\n\n\n"
                      "def guarded(x):\n    try:\n        return len(x)\n    except TypeError:\n"
                      "        return always(x)\n\n\n"
                      "def both(x, n):\n    if n > 4:\n        x.max().item()\n    return x.sum().item()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.ops import after_return, always, both, guarded, sometimes\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, q):\n"
                        "        x = torch.ones(3, device='cuda')\n"
                        "        a = always(x)\n        b = sometimes(x, 3)\n        c = after_return(x, 3)\n"
                        "        d = guarded(x)\n        e = both(x, 3)\n        return a, b, c, d, e\n",
    })
    assert messages[9].endswith("on every pass through this hot path")
    assert messages[10].split("take the branch at ")[-1].endswith("pkg/ops.py:9")
    assert messages[11].split("take the branch at ")[-1].endswith("pkg/ops.py:15")
    assert messages[12].split("take the branch at ")[-1].endswith("pkg/ops.py:23")
    # The first sync (line 29) is behind an `if`, the second (line 31) runs on every call.
    assert messages[13].endswith("on every pass through this hot path")


def test_a_raise_above_leaves_the_rest_on_every_pass(tmp_path):
    # `if bad: raise` fails the pass: what follows runs on every pass that succeeds. A `break` inside a
    # loop of the block's own leaves only that loop. A `return` nested in an `if` inside an `if` is
    # not taken for a branch either (transformers' `get_vision_window_index` returns that way what its
    # callers almost never precompute), unless it hands back a parameter as it came in (`extend_pe`
    # returns the table it was given when it is long enough); a `return` ending the `if` body is.
    messages = model_sl601(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef always(x):\n    return x.sum().item()\n\n\n"
                      "def nested_return(x, kwargs=None):\n    if kwargs is not None:\n"
                      "        found = kwargs.pop('found', None)\n        if found is not None:\n"
                      "            return found\n    return always(x)\n\n\n"
                      "def checked(x, n):\n    if n < 0:\n        raise ValueError(n)\n"
                      "    return always(x)\n\n\n"
                      "def looped(x, n):\n    for i in range(n):\n        if i > 2:\n            break\n"
                      "    return always(x)\n\n\n"
                      "def early(x, n):\n    if n < 0:\n        return None\n    return always(x)\n\n\n"
                      "def hands_back(x, pe=None):\n    if pe is not None:\n        if pe.numel() > 3:\n"
                      "            if pe.dtype != x.dtype:\n                pe = pe.to(x.dtype)\n"
                      "            return pe\n    return always(x)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.ops import checked, early, hands_back, looped, nested_return\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, q):\n"
                        "        x = torch.ones(3, device='cuda')\n"
                        "        a = nested_return(x, q)\n        b = checked(x, 3)\n        c = looped(x, 3)\n"
                        "        d = early(x, 3)\n        e = hands_back(x, q)\n        return a, b, c, d, e\n",
    })
    assert messages[9].endswith("on every pass through this hot path")
    assert messages[10].endswith("on every pass through this hot path")
    assert messages[11].endswith("on every pass through this hot path")
    assert messages[12].split("take the branch at ")[-1].endswith("pkg/ops.py:30")
    assert messages[13].split("take the branch at ")[-1].endswith("pkg/ops.py:36")


def test_default_mode_reports_only_chains_that_sync_on_every_pass(tmp_path):
    # A chain that needs a branch taken (in a callee, or at the sync) is --strict only, and marked so;
    # a longer chain that syncs on every pass is reported instead of a nearer conditional one.
    files = {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef always(x):\n    return x.sum().item()\n\n\n"
                      "def sometimes(x, n):\n    if n > 4:\n        return x.sum().item()\n    return 0\n\n\n"
                      "def nearer_conditional(x, n):\n    if n > 4:\n        x.max().item()\n"
                      "    return deeper(x)\n\n\n"
                      "def deeper(x):\n    return always(x)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.ops import always, nearer_conditional, sometimes\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, q):\n"
                        "        x = torch.ones(3, device='cuda')\n"
                        "        a = always(x)\n        b = sometimes(x, 3)\n        c = nearer_conditional(x, 3)\n"
                        "        return a, b, c\n",
    }
    default = model_sl601(tmp_path / "default", files, strict=False)
    assert sorted(default) == [9, 11]
    assert default[11].startswith("call into `nearer_conditional` reaches a sync 3 calls down")
    assert default[11].endswith("on every pass through this hot path")
    strict = check_small_project(tmp_path / "strict", files,
                                 pyproject="[tool.sync-lint]\nhot-path-defaults = [\"module-forward\"]\n",
                                 strict=True)
    sl601 = {d.start.row: d for d in strict if d.code == "SL601" and Path(d.path).name == "model.py"}
    assert sorted(sl601) == [9, 10, 11]
    assert sl601[10].confidence == "strict" and "take the branch at" in sl601[10].message
    assert sl601[9].confidence == "high" and sl601[11].confidence == "high"


def test_a_callback_edge_does_not_take_the_call_s_arguments_for_the_callback_s(tmp_path):
    # `apply(helper, None)`: the None is `apply`'s, not `helper`'s second parameter.
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef helper(a, b):\n    if b is not None:\n"
                      "        return torch.ones(3, device='cuda').sum().item()\n    return 0\n\n\n"
                      "def apply(fn, mask):\n    return fn(mask, torch.zeros(3))\n",
        "pkg/model.py": "import torch\n\nfrom pkg.ops import apply, helper\n\n\n# sync-lint: hot\n"
                        "def step(x: torch.Tensor):\n    return apply(helper, None)\n",
    }, pyproject="[tool.sync-lint]\nhot-path-defaults = []\n", strict=True)  # the sync is behind an `if`
    rows = [d.start.row for d in diagnostics if d.code == "SL601" and Path(d.path).name == "model.py"]
    assert rows == [8]


def test_a_base_with_many_overrides_is_not_followed_into_an_arbitrary_few(tmp_path):
    # `self.decoder: PreTrainedModel` may be any of hundreds of models; following the first few by
    # name reported chains through classes the object never is. With few subclasses they are followed.
    many = "".join(f"\n\nclass Model{i}(Base):\n    def forward(self, x):\n        return x + 1\n" for i in range(8))
    syncing = "\n\nclass AModel(Base):\n    def forward(self, x):\n        return torch.ones(1, device='cuda').item()\n"
    files = {
        "pkg/__init__.py": "",
        "pkg/layers.py": "import torch\n\n\nclass Base(torch.nn.Module):\n    pass\n" + syncing + "{more}",
        "pkg/model.py": "import torch\n\nfrom pkg.layers import Base\n\n\n"
                        "class Wrapper(torch.nn.Module):\n    def __init__(self, decoder: Base):\n"
                        "        super().__init__()\n        self.decoder = decoder\n\n    def forward(self, x):\n"
                        "        return self.decoder(x)\n",
    }
    few = check_small_project(tmp_path / "few", {**files, "pkg/layers.py": files["pkg/layers.py"].format(more="")},
                              strict=True)
    crowded = check_small_project(tmp_path / "crowded", {**files, "pkg/layers.py": files["pkg/layers.py"].format(more=many)},
                                  strict=True)

    def chains(diagnostics):
        return {(Path(d.path).name, d.start.row) for d in diagnostics if d.code == "SL601"}

    assert ("model.py", 12) in chains(few)  # one override: `AModel.forward` may arrive (--strict)
    assert ("model.py", 12) not in chains(crowded)  # nine: too wild a guess even for --strict


def test_a_chain_through_two_subclass_guesses_is_not_reported(tmp_path):
    # `self.runner` is declared a `Runner` and reaches `FastRunner.run` (an override: a guess), whose
    # `self.stage` is declared a `Stage` and reaches `SyncStage.go` (a second guess).
    layers = ("import torch\n\n\nclass Stage:\n    def go(self, x):\n        return x\n\n\n"
              "class SyncStage(Stage):\n    def go(self, x):\n        torch.cuda.synchronize()\n        return x\n\n\n"
              "class Runner:\n    def __init__(self, stage: Stage):\n        self.stage = stage\n\n"
              "    def run(self, x):\n        return x\n\n\n"
              "class FastRunner(Runner):\n    def run(self, x):\n        return self.stage.go(x)\n")
    model = ("import torch\n\nfrom pkg.layers import Runner, Stage\n\n\n"
             "class Model(torch.nn.Module):\n    def __init__(self, runner: Runner, stage: Stage):\n"
             "        super().__init__()\n        self.runner = runner\n        self.stage = stage\n\n"
             "    def forward(self, x):\n        x = self.stage.go(x)\n        return self.runner.run(x)\n")
    files = {"pkg/__init__.py": "", "pkg/layers.py": layers, "pkg/model.py": model}
    chains = {(Path(d.path).name, d.start.row) for d in check_small_project(tmp_path / "p", files, strict=True)
              if d.code == "SL601"}
    assert ("model.py", 13) in chains  # one guess: `SyncStage.go`, with --strict
    assert ("model.py", 14) not in chains  # two: `FastRunner.run`, then `SyncStage.go`
    default = {(Path(d.path).name, d.start.row) for d in check_small_project(tmp_path / "d", files)
               if d.code == "SL601"}
    assert ("model.py", 13) not in default  # default mode makes no guess


def test_a_templates_classes_are_no_overrides(tmp_path):
    # transformers' `modular_x.py` is the template its `modeling_x.py` was generated from; the template
    # is never imported, so its subclass overriding a method reaches nothing at run time.
    header = ("#                🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨🚨\n"
              "#           This file was automatically generated from pkg/models/x/modular_x.py.\n")
    modeling = ("import torch\n\n\nclass Base(torch.nn.Module):\n    def features(self, x):\n        return x\n\n"
                "    def forward(self, x):\n        return self.features(x)\n")
    template = ("import torch\n\nfrom .modeling_x import Base\n\n\nclass Other(Base):\n    def features(self, x):\n"
                "        return torch.ones(1, device='cuda').item()\n")
    files = {"pkg/__init__.py": "", "pkg/models/__init__.py": "", "pkg/models/x/__init__.py": "",
             "pkg/models/x/modeling_x.py": header + modeling, "pkg/models/x/modular_x.py": template}
    generated = check_small_project(tmp_path / "generated", files, strict=True)
    plain = check_small_project(tmp_path / "plain", {**files, "pkg/models/x/modeling_x.py": modeling}, strict=True)

    def chains(diagnostics):
        return {(Path(d.path).name, d.start.row) for d in diagnostics if d.code == "SL601"}

    assert ("modeling_x.py", 11) not in chains(generated)  # `Other` lives in the template only
    assert ("modeling_x.py", 9) in chains(plain)  # without the header it is a subclass like any other


def test_a_templates_calls_are_no_callers(tmp_path):
    # The template's call passes a GPU tensor to `scale`; the generated module, which is what runs,
    # passes a host one. A parameter is decided by the calls that run (on transformers 5.23 a
    # template's call made `device` an accelerator for `modeling_olmo3.py`'s RoPE, line 315).
    header = "# This file was automatically generated from pkg/models/x/modular_x.py.\n"
    helpers = "def scale(t):\n    return t.item()\n"
    modeling = "import torch\n\nfrom pkg.helpers import scale\n\n\ndef run():\n    return scale(torch.ones(1))\n"
    template = ("import torch\n\nfrom pkg.helpers import scale\n\n\n"
                "def run():\n    return scale(torch.ones(1, device='cuda'))\n")
    files = {"pkg/__init__.py": "", "pkg/helpers.py": helpers, "pkg/models/__init__.py": "",
             "pkg/models/x/__init__.py": "", "pkg/models/x/modeling_x.py": header + modeling,
             "pkg/models/x/modular_x.py": template}

    def items(diagnostics):
        return {(Path(d.path).name, d.start.row) for d in diagnostics if d.code == "SL101"}

    assert ("helpers.py", 2) not in items(check_small_project(tmp_path / "generated", files))
    plain = {**files, "pkg/models/x/modeling_x.py": modeling}  # no header: `modular_x.py` is a module like any other
    assert ("helpers.py", 2) in items(check_small_project(tmp_path / "plain", plain))


def test_the_pass_does_not_check_templates_its_calls_reach(tmp_path, monkeypatch):
    # A whole-project walk leaves templates out, and the pass checked the ones its call graph reached
    # as "files the run did not check": 107 of transformers 5.23's, about 26 CPU-seconds of a cold run.
    header = "# This file was automatically generated from pkg/models/x/modular_x.py.\n"
    model = ("import torch\n\nfrom pkg.models.x.modular_x import helper\n\n\n"
             "class Model(torch.nn.Module):\n    def forward(self, x):\n        return helper(x)\n")
    template = "import torch\n\n\ndef helper(x):\n    torch.cuda.synchronize()\n    return x\n"
    files = {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/model.py": model, "pkg/models/__init__.py": "",
             "pkg/models/x/__init__.py": "", "pkg/models/x/modular_x.py": template,
             "pkg/models/x/modeling_x.py": header + "X = 1\n"}
    checked_more: list[str] = []
    run_files = api.run_files

    def spying(plan, paths, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("updated"):
            checked_more.extend(Path(p).name for p in paths)
        return run_files(plan, paths, **kwargs)

    monkeypatch.setattr(api, "run_files", spying)
    for name, with_header in (("generated", True), ("plain", False)):
        folder = tmp_path / name
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text if with_header or path != "pkg/models/x/modeling_x.py" else "X = 1\n")
        checked_more.clear()
        run(folder / "pkg" / "model.py", tmp_path / f"cache-{name}")
        assert ("modular_x.py" in checked_more) is not with_header


def test_a_module_ceasing_to_be_a_template_is_seen_by_a_warm_run(tmp_path):
    # The header that makes `modular_x.py` a template is in another file than the finding: editing it
    # must reach the cached result of `modeling_x.py`.
    header = "# This file was automatically generated from pkg/models/x/modular_x.py.\n"
    modeling = ("import torch\n\n\nclass Base(torch.nn.Module):\n    def features(self, x):\n        return x\n\n"
                "    def forward(self, x):\n        return self.features(x)\n")
    template = ("import torch\n\nfrom .modeling_x import Base\n\n\nclass Other(Base):\n    def features(self, x):\n"
                "        return torch.ones(1, device='cuda').item()\n")
    folder = tmp_path / "proj"
    for name, text in {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/models/__init__.py": "",
                       "pkg/models/x/__init__.py": "", "pkg/models/x/modeling_x.py": modeling,
                       "pkg/models/x/configuration_x.py": header + "SIZE = 4\n",
                       "pkg/models/x/modular_x.py": template}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    cache = tmp_path / "cache"
    assert ("pkg/models/x/modeling_x.py", 9) not in transitive(run(folder, cache, strict=True), folder)
    (folder / "pkg/models/x/configuration_x.py").write_text("SIZE = 4\n")
    assert ("pkg/models/x/modeling_x.py", 9) in transitive(run(folder, cache, strict=True), folder)


@pytest.mark.parametrize("overrides", [6, 7, 8, 9])
def test_a_syncing_base_method_is_followed_whatever_its_number_of_overrides(tmp_path, overrides):
    # With the method itself the targets must stay within what a call site follows: at exactly 8
    # overrides the call became unresolved, losing the base method's own sync.
    layers = "import torch\n\n\nclass Runner:\n    def run(self, x):\n        return torch.ones(1, device='cuda').item()\n"
    layers += "".join(f"\n\nclass Runner{i}(Runner):\n    def run(self, x):\n        return x\n" for i in range(overrides))
    model = ("import torch\n\nfrom pkg.layers import Runner\n\n\nclass Model(torch.nn.Module):\n"
             "    def __init__(self, runner: Runner):\n        super().__init__()\n        self.runner = runner\n\n"
             "    def forward(self, x):\n        return self.runner.run(x)\n")
    diagnostics = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/layers.py": layers, "pkg/model.py": model})
    assert ("model.py", 12) in {(Path(d.path).name, d.start.row) for d in diagnostics if d.code == "SL601"}


def test_a_custom_operator_call_reaches_the_function_registered_for_it(tmp_path):
    """`torch.ops.<ns>.<op>(...)` runs the function the project registered as `op`: the hot path goes on
    through it (vLLM's attention and MoE layers call their kernels' wrappers this way)."""
    files = {
        "pkg/__init__.py": "",
        "pkg/ops.py": (
            "import torch\n"
            "from pkg.registry import direct_register_custom_op\n"
            "\n"
            "def lengths_impl(x: torch.Tensor) -> torch.Tensor:\n"
            "    n = int(x.sum().item())\n"
            "    return x[:n]\n"
            "\n"
            'direct_register_custom_op(op_name="lengths", op_func=lengths_impl)\n'
        ),
        "pkg/registry.py": "def direct_register_custom_op(op_name, op_func):\n    pass\n",
        "pkg/layer.py": (
            "import torch\n"
            "import pkg.ops\n"
            "\n"
            "class Layer(torch.nn.Module):\n"
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
            "        y = torch.ones(4, device=x.device)\n"
            "        return torch.ops.pkg.lengths(y)\n"
            "\n"
            "    def aten(self, x: torch.Tensor) -> torch.Tensor:\n"
            "        return torch.ops.aten.add(x, x)\n"
        ),
    }
    found = {(Path(d.path).name, d.start.row, d.code): d for d in check_small_project(tmp_path, files)}
    assert ("ops.py", 5, "SL101") in found
    chain = found[("layer.py", 7, "SL601")]
    assert "`lengths_impl`" in chain.message
    assert [k for k in found if k[0] == "layer.py"] == [("layer.py", 7, "SL601")]


def test_a_chain_through_a_cached_function_runs_once_per_argument(tmp_path):
    # vLLM's ROCm mono-kernel runner and a multimodal position cache sync inside functions cached with
    # `functools.lru_cache`: the body runs on the first call with each new argument, not on every pass.
    files = {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import functools\n\nimport torch\n\n\n"
                      "@functools.lru_cache(maxsize=None)\ndef table(n):\n"
                      "    return torch.arange(n, device='cuda').sum().item()\n\n\n"
                      "def lookup(n):\n    return table(n)\n\n\n"
                      "def plain(n):\n    return torch.arange(n, device='cuda').sum().item()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.ops import lookup, plain\n\n\n"
                        "class Model(torch.nn.Module):\n    def forward(self, x):\n"
                        "        a = lookup(x.shape[0])\n        b = plain(x.shape[0])\n"
                        "        if x.shape[0] > 1:\n            b = b + plain(2)\n        return a + b\n",
    }
    default = model_sl601(tmp_path / "default", files, strict=False)
    assert sorted(default) == [9, 11]  # `plain` syncs on every call; `lookup` only through the cache
    strict = model_sl601(tmp_path / "strict", files)
    assert sorted(strict) == [8, 9, 11]
    assert "`table` is cached" in strict[8] and "first call with each new argument" in strict[8]
    assert "on every pass" in strict[9]
    # A call behind a test in the hot function: the host waits each time the line runs (`if _runner is None:`).
    assert "each time this line runs (behind the test at" in default[11] and "model.py:10)" in default[11]


def test_a_templates_modules_are_no_hot_path_roots(tmp_path):
    # A template's `nn.Module` never runs, so its `forward` is no root: transformers 5.23's
    # `modular_d_fine.py` made a hot chain down to `modeling_rt_detr_v2.py`'s helper.
    header = "# This file was automatically generated from pkg/models/x/modular_x.py.\n"
    helpers = "import torch\n\n\ndef scale(t):\n    return torch.ones(1, device='cuda').item() * t\n"
    template = ("import torch\n\nfrom pkg.helpers import scale\n\n\n"
                "class Model(torch.nn.Module):\n    def forward(self, x):\n        return scale(x)\n")
    files = {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/helpers.py": helpers, "pkg/models/__init__.py": "",
             "pkg/models/x/__init__.py": "", "pkg/models/x/modular_x.py": template,
             "pkg/models/x/modeling_x.py": header + "X = 1\n"}
    for name, with_header in (("generated", True), ("plain", False)):
        folder = tmp_path / name
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text if with_header or path != "pkg/models/x/modeling_x.py" else "X = 1\n")
        found = findings(run(folder, tmp_path / f"cache-{name}"), folder, "SL101")
        hot = {key[:2]: d.hot for key, d in found.items()}
        assert ("pkg/helpers.py", 5) in hot, found
        root = hot[("pkg/helpers.py", 5)].root if hot[("pkg/helpers.py", 5)] else None
        assert (root == "pkg.models.x.modular_x.Model.forward") is not with_header, root


def test_a_one_file_check_opens_its_project_once(project, tmp_path, monkeypatch):
    # The hot-path pass goes on with the project the check opened in this process (its summaries
    # loaded and facts solved), and finds the same chain as a whole run.
    from sync_lint.project.build import Project

    folder = project("hot-depth")
    cache = str(tmp_path / "c")
    assert CliRunner().invoke(main, ["check", str(folder), "--cache-dir", cache]).exit_code == 1
    edited = folder / "hotdepth" / "metadata.py"
    edited.write_text(edited.read_text() + "# edited\n")  # so the check and the pass both run again
    opened = []
    real_open = Project.open
    monkeypatch.setattr(Project, "open", lambda self, settings: opened.append(self) or real_open(self, settings))
    out = CliRunner().invoke(main, ["check", str(edited), "--output-format", "json", "--cache-dir", cache])
    item = next(o for o in json.loads(out.stdout) if o["code"] == "SL102")
    assert item["hot"]["root"] == "hotdepth.runner.Runner.execute_model"
    assert [s["function"].rsplit(".", 1)[-1] for s in item["hot"]["chain"]] == [
        "execute_model", "build", "_prepare", "compute_causal_conv1d_metadata"]
    assert len(opened) == 1


def test_a_module_left_to_strict_is_not_checked_again_by_the_pass(project, monkeypatch):
    # `cpu_runner.py` is a `cpu-modules` module: the run checks it, the pass leaves it out of its
    # checked files, and a hot function's call into it takes the run's result.
    folder = project("hot-cold")
    checked: list[str] = []
    real_run_files = api.run_files
    monkeypatch.setattr(api, "run_files", lambda plan, files, **kw: checked.extend(files) or
                        real_run_files(plan, files, **kw))
    report = run(folder)
    assert transitive(report, folder) == expected_transitive(folder)
    assert [Path(path).name for path in checked].count("cpu_runner.py") == 1


def test_a_call_nested_in_another_on_its_line_is_read_for_its_own_arguments(tmp_path):
    # `Pair(Cache(config=c), Cache(config=c))`: the `Cache` calls leave `data` None, so the constructor's
    # `if data is not None:` block (and the sync below it) never runs from here, even with `--strict`.
    # `Pair`'s two positional arguments are not `Cache`'s (transformers' `EncoderDecoderCache(DynamicCache(
    # config=...), DynamicCache(config=...))`).
    files = {
        "pkg/__init__.py": "",
        "pkg/cache.py": "import torch\n\n\nclass Layer:\n    def update(self, k):\n        torch.cuda.synchronize()\n"
                        "        return k\n\n\nclass Cache:\n    def __init__(self, data=None, config=None):\n"
                        "        layers = [Layer() for _ in range(3)] if config is not None else []\n"
                        "        if data is not None:\n            for i, k in enumerate(data):\n"
                        "                layers[i].update(k)\n        self.layers = layers\n\n\n"
                        "class Pair:\n    def __init__(self, first, second):\n        self.first = first\n"
                        "        self.second = second\n",
        "pkg/model.py": "import torch\n\nfrom pkg.cache import Cache, Pair\n\n\nclass Decoder(torch.nn.Module):\n"
                        "    def forward(self, x, data=None):\n"
                        "        one = Pair(Cache(config=self.config), Cache(config=self.config))\n"
                        "        two = Pair(Cache(data, config=self.config), None)\n        return x\n",
    }
    found = {(Path(d.path).name, d.start.row) for d in check_small_project(tmp_path, files, strict=True)
             if d.code == "SL601"}
    assert ("model.py", 8) not in found
    assert ("model.py", 9) in found  # a call that passes the data reaches the sync


def test_a_branch_on_the_number_of_star_arguments_runs_only_for_calls_that_give_that_many(tmp_path):
    # transformers' `EncoderDecoderCache(*caches)`: `if len(caches) == 1:` rebuilds caches from a legacy
    # tuple (and syncs); a call with two caches takes the `elif`. A one-argument call still reaches it.
    files = {
        "pkg/__init__.py": "",
        "pkg/cache.py": "import torch\n\n\ndef rebuild(data):\n    torch.cuda.synchronize()\n    return data\n\n\n"
                        "class Pair:\n    def __init__(self, *caches):\n        if len(caches) == 1:\n"
                        "            self.first = rebuild(caches[0])\n        elif len(caches) == 2:\n"
                        "            self.first = caches[0]\n        else:\n"
                        "            self.first = rebuild(caches)\n\n\n"
                        "class Exact:\n    def __init__(self, *parts):\n        if len(parts) != 2:\n"
                        "            raise ValueError(parts)\n        torch.cuda.synchronize()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.cache import Exact, Pair\n\n\nclass Decoder(torch.nn.Module):\n"
                        "    def forward(self, x, a, b):\n"
                        "        two = Pair(a, b)\n"
                        "        one = Pair(a)\n"
                        "        three = Pair(a, b, x)\n"
                        "        ok = Exact(a, b)\n"
                        "        bad = Exact(a)\n"
                        "        return x\n",
    }
    found = {(Path(d.path).name, d.start.row) for d in check_small_project(tmp_path, files, strict=True)
             if d.code == "SL601"}
    assert ("model.py", 8) not in found  # two caches: neither the `if` nor the `else` runs
    assert {("model.py", 9), ("model.py", 10), ("model.py", 11)} <= found
    assert ("model.py", 12) not in found  # one part: the `raise` comes first
