"""sync_lint.runtime on a machine without a GPU (CI): imports, refusals, pure logic.

Runs with or without torch installed. Where a test needs "no CUDA" it either
simulates a missing torch (monkeypatching `sync_lint.runtime.cuda.import_torch`)
or skips on machines that do have a GPU.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sync_lint.runtime.cuda as cuda_mod
from sync_lint.runtime import (
    GpuSyncError,
    NoCudaError,
    TraceReport,
    cuda_available,
    detect,
    join_with_static,
    joined_to_json,
    no_gpu_sync,
    require_cuda,
    trace_program,
)
from sync_lint.runtime.busy import blocked_threshold_ms
from sync_lint.runtime.guard import GuardReport
from sync_lint.runtime.sites import FileFilter, first_user_site, norm
from sync_lint.runtime.tracer import LineEntry, LineTracer, run_traced

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
GUARD_SKIP_REASON = "no CUDA device: the no_gpu_sync guard needs a GPU to measure host blocking"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _real_cuda() -> bool:
    return cuda_available()


needs_no_real_cuda = pytest.mark.skipif(
    "_real_cuda()", reason="this machine has a GPU; the no-CUDA path is simulated elsewhere"
)


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the runtime believe torch is not installed, on any machine."""

    def missing() -> None:
        raise ImportError("No module named 'torch' (simulated)")

    monkeypatch.setattr(cuda_mod, "import_torch", missing)


# ---------------------------------------------------------------------------
# The linter must never need torch
# ---------------------------------------------------------------------------
def test_runtime_modules_import_without_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        import sync_lint.runtime
        import sync_lint.runtime.detector, sync_lint.runtime.guard
        import sync_lint.runtime.tracer, sync_lint.runtime.trace_join
        import sync_lint.runtime.trace_render, sync_lint.runtime.pytest_plugin
        bad = [m for m in ("torch", "rich") if m in sys.modules]
        print(",".join(bad) or "clean")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"


def test_cuda_available_matches_this_machine() -> None:
    if not HAS_TORCH:
        assert cuda_available() is False
    else:
        import torch

        assert cuda_available() is torch.cuda.is_available()


def test_no_torch_is_reported_clearly(no_torch: None) -> None:
    assert cuda_available() is False
    with pytest.raises(NoCudaError, match="torch is not installed"):
        require_cuda("the widget")


def test_guard_raises_no_cuda_error_without_torch(no_torch: None) -> None:
    with pytest.raises(NoCudaError) as info:
        with no_gpu_sync():
            pass
    assert str(info.value).startswith(GUARD_SKIP_REASON)
    assert "torch is not installed" in str(info.value)


def test_guard_decorator_raises_no_cuda_error_without_torch(no_torch: None) -> None:
    @no_gpu_sync()
    def step() -> int:
        return 1

    with pytest.raises(NoCudaError):
        step()


def test_guard_decorator_refuses_before_warm_up(no_torch: None) -> None:
    calls = []

    @no_gpu_sync(warmup=2)
    def step() -> None:
        calls.append(1)

    with pytest.raises(NoCudaError):
        step()
    assert calls == []


def test_detect_raises_no_cuda_error_without_torch(no_torch: None) -> None:
    with pytest.raises(NoCudaError, match="detect needs a GPU"):
        detect(lambda: None)


@needs_no_real_cuda
def test_guard_raises_no_cuda_error_on_this_machine() -> None:
    with pytest.raises(NoCudaError, match="no CUDA device"):
        with no_gpu_sync():
            pass


def test_guard_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        no_gpu_sync(action="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        no_gpu_sync(sleep_ms=0)
    with pytest.raises(ValueError):
        no_gpu_sync(warmup=-1)


# ---------------------------------------------------------------------------
# Guard messages (pure)
# ---------------------------------------------------------------------------
def test_guard_message_names_sites() -> None:
    report = GuardReport(
        host_ms=19.7, sleep_ms=20.0, threshold_ms=10.0, blocked=True,
        debug_sites=[("/p/train.py", 12), ("/p/train.py", 12), ("/p/model.py", 3)],
    )
    text = report.describe()
    assert "/p/train.py:12: 2 synchronizing CUDA calls" in text
    assert "/p/model.py:3: 1 synchronizing CUDA call " in text
    assert report.violated


def test_guard_message_for_explicit_sync() -> None:
    report = GuardReport(host_ms=19.9, sleep_ms=20.0, threshold_ms=10.0, blocked=True)
    assert (
        "host blocked for 19.9 ms with no sync-debug warning "
        "(explicit synchronize, event sync or pageable copy)" in report.describe()
    )


def test_guard_report_clean() -> None:
    report = GuardReport(host_ms=0.2, sleep_ms=20.0, threshold_ms=10.0, blocked=False)
    assert not report.violated
    assert issubclass(GpuSyncError, AssertionError)  # pytest shows a failure, not an error


def test_blocked_threshold_uses_shorter_actual_sleep() -> None:
    assert blocked_threshold_ms(40.0) == 20.0
    assert blocked_threshold_ms(40.0, 30.0) == 15.0
    assert blocked_threshold_ms(40.0, 55.0) == 20.0


# ---------------------------------------------------------------------------
# pytest plugin
# ---------------------------------------------------------------------------
def _plugin_args() -> list[str]:
    """`-p` the plugin unless its entry point is installed (then pytest
    autoloads it, and registering it twice would be an error)."""
    names = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    if "sync_lint.runtime.pytest_plugin" in names:
        return []
    return ["-p", "sync_lint.runtime.pytest_plugin"]


def test_plugin_module_imports_without_torch_in_sys_modules() -> None:
    # Covered by the subprocess test; here just the hooks exist.
    import sync_lint.runtime.pytest_plugin as plugin

    assert callable(plugin.pytest_configure)
    assert callable(plugin.pytest_pyfunc_call)


def test_marker_skips_without_cuda(pytester: pytest.Pytester, no_torch: None) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.no_gpu_sync
        def test_marked():
            raise AssertionError("the body must not run without a GPU")

        def test_unmarked():
            pass
        """
    )
    result = pytester.runpytest(*_plugin_args(), "-rs", "--strict-markers")
    result.assert_outcomes(skipped=1, passed=1)
    result.stdout.fnmatch_lines([f"*{GUARD_SKIP_REASON} (torch is not installed)*"])


def test_marker_with_arguments_skips_without_cuda(
    pytester: pytest.Pytester, no_torch: None
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.no_gpu_sync(action="warn", sleep_ms=50, warmup=1)
        def test_marked():
            raise AssertionError("neither warm-up nor body may run without a GPU")
        """
    )
    result = pytester.runpytest(*_plugin_args(), "-rs")
    result.assert_outcomes(skipped=1)


def test_fixture_skips_without_cuda(pytester: pytest.Pytester, no_torch: None) -> None:
    pytester.makepyfile(
        """
        def test_uses_fixture(no_gpu_sync):
            with no_gpu_sync:
                pass
        """
    )
    result = pytester.runpytest(*_plugin_args(), "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*{GUARD_SKIP_REASON}*"])


def test_direct_guard_use_becomes_skip(pytester: pytest.Pytester, no_torch: None) -> None:
    pytester.makepyfile(
        """
        from sync_lint.runtime import no_gpu_sync

        def test_direct():
            with no_gpu_sync():
                pass
        """
    )
    result = pytester.runpytest(*_plugin_args(), "-rs")
    result.assert_outcomes(skipped=1)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*_plugin_args(), "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.no_gpu_sync*"])


@needs_no_real_cuda
def test_marker_skips_on_this_machine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.no_gpu_sync
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest(*_plugin_args(), "-rs")
    result.assert_outcomes(skipped=1, passed=0)
    result.stdout.fnmatch_lines([f"*{GUARD_SKIP_REASON}*"])


# ---------------------------------------------------------------------------
# File filtering and call sites (pure)
# ---------------------------------------------------------------------------
def test_filter_user_file_is_traced(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    assert FileFilter().wants(str(script))


def test_filter_excludes_stdlib_site_packages_and_synthetic() -> None:
    f = FileFilter()
    assert not f.wants(os.__file__)
    assert not f.wants("/venv/lib/python3.12/site-packages/vllm/worker.py")
    assert not f.wants("/usr/lib/python3/dist-packages/numpy/core.py")
    assert not f.wants("<frozen importlib._bootstrap>")
    assert not f.wants("<string>")


def test_filter_excludes_torch_root() -> None:
    f = FileFilter(library_roots=("/opt/torch",))
    assert not f.wants("/opt/torch/nn/modules/module.py")
    assert f.wants("/opt/torchvision_user/script.py")  # a prefix of a name is not a parent


def test_filter_never_traces_sync_lint_itself() -> None:
    import sync_lint.runtime.tracer as tracer

    assert not FileFilter().wants(tracer.__file__)
    assert not FileFilter(include=("*",)).wants(tracer.__file__)


def test_filter_include_and_exclude_globs(tmp_path: Path) -> None:
    root = norm(str(tmp_path))
    a = os.path.join(root, "proj", "model.py")
    b = os.path.join(root, "proj", "data.py")
    c = os.path.join(root, "other", "x.py")
    f = FileFilter(include=(f"{root}/proj/*",))
    assert f.wants(a) and f.wants(b) and not f.wants(c)
    f = FileFilter(include=(f"{root}/proj/*",), exclude=("*/data.py",))
    assert f.wants(a) and not f.wants(b)
    f = FileFilter(exclude=("*/other/*",))
    assert f.wants(a) and not f.wants(c)


def test_filter_include_reaches_into_site_packages() -> None:
    path = "/venv/lib/python3.12/site-packages/vllm/worker.py"
    assert FileFilter(include=("*/vllm/*",)).wants(path)


def test_first_user_site_skips_given_roots() -> None:
    frame = sys._getframe()
    here, line = first_user_site(frame, skip_roots=()), frame.f_lineno
    assert here == (norm(__file__), line)
    caller = first_user_site(frame, skip_roots=(norm(__file__),))
    assert caller is not None and caller[0] != norm(__file__)


# ---------------------------------------------------------------------------
# Tracer bookkeeping, with a fake GPU backend: "blocking" is simulated by
# time.sleep, which is exactly what a host wait looks like to the tracer.
# ---------------------------------------------------------------------------
class FakeBackend:
    def __init__(self, ready: bool = True) -> None:
        self._ready = ready
        self.enqueued = 0

    def ready(self) -> bool:
        return self._ready

    def enqueue_sleep(self, ms: float) -> None:
        self.enqueued += 1

    def drained(self) -> bool | None:
        return None


def _trace(script: Path, *args: str, ready: bool = True, exclude: tuple[str, ...] = (),
           sleep_ms: float = 20.0) -> TraceReport:
    tracer = LineTracer(FileFilter(exclude=exclude), sleep_ms=sleep_ms, backend=FakeBackend(ready))
    return run_traced([str(script), *args], None, tracer)


SCRIPT = """\
import time
def slow():
    time.sleep(0.03)
def main():
    slow()
    x = 1
    for _ in range(3):
        x += 1
main()
"""


def _blocked(report: TraceReport) -> dict[int, LineEntry]:
    return {e.line: e for e in report.entries}


def test_tracer_charges_the_blocking_line_not_its_callers(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    report = _trace(script)
    blocked = _blocked(report)
    assert set(blocked) == {3}
    assert blocked[3].source == "time.sleep(0.03)"
    assert blocked[3].blocked == 1 and blocked[3].blocked_ms >= 25
    assert blocked[3].file == norm(str(script))
    assert report.execution_count(str(script), 8) == 3
    assert report.executed(str(script), 6)
    assert not report.executed(str(script), 42)
    assert report.cuda_initialized and report.exit_code == 0 and report.exception is None


def test_tracer_does_not_measure_before_cuda_is_up(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    report = _trace(script, ready=False)
    assert report.entries == []
    assert report.executed(str(script), 3)
    assert not report.cuda_initialized


def test_tracer_excluded_helper_is_charged_to_the_call_site(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("import time\ndef wait():\n    time.sleep(0.03)\n")
    script = tmp_path / "main.py"
    script.write_text("import helper\nhelper.wait()\ny = 2\n")
    report = _trace(script, exclude=("*/helper.py",))
    blocked = set(_blocked(report))
    # Line 1 (importing, that is compiling, the helper) can itself pass 20 ms on a loaded machine.
    assert 2 in blocked and 3 not in blocked
    assert norm(str(tmp_path / "helper.py")) not in report.executions


def test_tracer_records_system_exit_and_restores_sys(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    out = tmp_path / "argv.json"
    script.write_text(
        f"import json, sys\nopen({str(out)!r}, 'w').write(json.dumps(sys.argv))\nsys.exit(3)\n"
    )
    argv_before, path_before = sys.argv[:], sys.path[:]
    report = _trace(script, "--steps", "2")
    assert report.exit_code == 3 and report.exception is None
    assert json.loads(out.read_text()) == [str(script), "--steps", "2"]
    assert sys.argv == argv_before and sys.path == path_before
    assert not isinstance(getattr(sys.gettrace(), "__self__", None), LineTracer)


def test_tracer_records_exceptions_and_keeps_results(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("import time\ntime.sleep(0.03)\nraise ValueError('boom')\n")
    report = _trace(script)
    assert report.exception == "ValueError: boom"
    assert report.traceback and "ValueError" in report.traceback
    assert report.exit_code is None
    assert set(_blocked(report)) == {2}


def test_tracer_runs_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "tracedpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("import sys, time\nif sys.argv[1:] == ['go']:\n    time.sleep(0.03)\n")
    monkeypatch.chdir(tmp_path)
    tracer = LineTracer(FileFilter(), sleep_ms=20.0, backend=FakeBackend())
    report = run_traced(["go"], "tracedpkg.run", tracer)
    assert report.target == "-m tracedpkg.run"
    assert [(e.file, e.line) for e in report.entries] == [(norm(str(pkg / "run.py")), 3)]
    sys.modules.pop("tracedpkg", None)


def test_trace_report_json_round_trip(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    report = _trace(script)
    data = json.loads(report.to_json())
    assert data["entries"][0]["line"] == 3 and "first_only" in data["entries"][0]
    again = TraceReport.from_dict(data)
    assert again.entries == report.entries
    assert again.executions == report.executions


def test_first_only_marks_warm_up() -> None:
    e = LineEntry("/f.py", 1, executions=5, blocked=1, blocked_ms=30.0, max_ms=30.0,
                  first_blocked=True, source="y = model(x)")
    assert e.first_only
    e.executions = 1
    assert not e.first_only


def test_trace_program_refuses_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import sync_lint.runtime.tracer as tracer

    monkeypatch.setattr(tracer, "cuda_unavailable_reason_isolated", lambda: "torch is not installed")
    with pytest.raises(NoCudaError, match="sync-lint trace needs a GPU"):
        trace_program(["whatever.py"])


def test_trace_program_sets_eager_loading_only_while_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sync_lint.runtime.tracer as tracer

    # Pretend the probe found a GPU; without one the real backend simply never
    # arms (torch absent or CUDA not initialised), so the run still completes.
    monkeypatch.setattr(tracer, "cuda_unavailable_reason_isolated", lambda: None)
    monkeypatch.delenv("CUDA_MODULE_LOADING", raising=False)
    out = tmp_path / "env.txt"
    script = tmp_path / "prog.py"
    script.write_text(f"import os\nopen({str(out)!r}, 'w').write(os.environ.get('CUDA_MODULE_LOADING', '-'))\n")
    report = trace_program([str(script)])
    assert out.read_text() == "EAGER" and "CUDA_MODULE_LOADING" not in os.environ
    assert report.exit_code == 0
    trace_program([str(script)], eager_loading=False)
    assert out.read_text() == "-"
    monkeypatch.setenv("CUDA_MODULE_LOADING", "LAZY")  # an explicit choice wins
    trace_program([str(script)])
    assert out.read_text() == "LAZY" and os.environ["CUDA_MODULE_LOADING"] == "LAZY"


@needs_no_real_cuda
def test_trace_program_refuses_on_this_machine(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("x = 1\n")
    with pytest.raises(NoCudaError, match="no CUDA device"):
        trace_program([str(script)])


# ---------------------------------------------------------------------------
# Joining with static findings (pure)
# ---------------------------------------------------------------------------
def _report(file: str) -> TraceReport:
    return TraceReport(
        target=file,
        argv=[file],
        sleep_ms=5.0,
        entries=[
            LineEntry(file, 4, 1, 1, 5.2, 5.2, True, "v = y.sum().item()"),
            LineEntry(file, 8, 3, 3, 15.9, 5.4, True, "n = int(w)"),
        ],
        executions={file: {1: 1, 4: 1, 5: 1, 8: 3}},
        cuda_initialized=True,
    )


def test_join_classifies_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = norm(str(tmp_path / "prog.py"))
    monkeypatch.chdir(tmp_path)
    static = {
        ("prog.py", 4): ["SL001"],  # relative path: normalised against the cwd
        (file, 5): ["SL007", "SL002"],  # ran, never blocked
        (file, 30): ["SL003"],  # never ran
    }
    joined = join_with_static(_report(file), static)
    rows = {r["line"]: r for r in joined["lines"]}
    assert rows[4]["class"] == "both" and rows[4]["codes"] == ["SL001"]
    assert rows[8]["class"] == "runtime-only" and rows[8]["blocked"] == 3
    assert rows[5]["class"] == "static-only" and rows[5]["executed"] is True
    assert rows[5]["codes"] == ["SL002", "SL007"]
    assert rows[30]["class"] == "static-only" and rows[30]["executed"] is False
    assert joined["summary"] == {
        "both": 1,
        "runtime-only": 1,
        "static-only": 2,
        "static-only-executed": 1,
        "static-only-not-executed": 1,
    }
    assert json.loads(joined_to_json(joined))["summary"]["both"] == 1


def test_join_merges_duplicate_static_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = norm(str(tmp_path / "prog.py"))
    monkeypatch.chdir(tmp_path)
    joined = join_with_static(_report(file), {("prog.py", 4): ["SL001"], (file, 4): ["SL001", "SL009"]})
    rows = [r for r in joined["lines"] if r["line"] == 4]
    assert len(rows) == 1 and rows[0]["codes"] == ["SL001", "SL009"]


def test_renderers_produce_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    from sync_lint.runtime import render_full, render_trace

    file = norm(str(tmp_path / "prog.py"))
    monkeypatch.chdir(tmp_path)  # paths under the cwd are shown relative
    report = _report(file)
    report.entries.append(LineEntry(file, 9, 2, 1, 7.0, 7.0, False, "t[mask] = x[idx]"))
    report.executions[file][9] = 2
    text = render_trace(report)
    assert "prog.py:8" in text and "n = int(w)" in text and "t[mask] = x[idx]" in text
    joined = join_with_static(report, {(file, 4): ["SL001"], (file, 30): ["SL003"]})
    full = render_full(joined)
    for needle in ("runtime-only", "both", "static-only", "SL001", "not run", "t[mask] = x[idx]"):
        assert needle in full


def test_the_runtime_package_imports_without_the_linter() -> None:
    """The verifier and tracer run inside the user's process: importing them must not pull in the
    linter's configuration (tomli on Python 3.10), libcst or rich."""
    code = ("import importlib, pkgutil, sys, sync_lint.runtime as runtime\n"
            "for found in pkgutil.iter_modules(runtime.__path__):\n"
            "    importlib.import_module('sync_lint.runtime.' + found.name)\n"
            "print(sorted(m for m in sys.modules if m == 'sync_lint.config' or m.split('.')[0] in\n"
            "             ('libcst', 'rich', 'tomli', 'tomllib', 'click')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
