"""The project cache through the library API and the command line: edits, deletions, renames and
settings changes reach the files that depend on them; a killed run and concurrent runs leave a cache
that later runs use correctly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixture_support import FIXTURE_TORCH
from sync_lint import api

BATCH = """\
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    lens: torch.Tensor
"""
BUILDER_GPU = """\
import torch

from pkg.batch import Batch


def build(n):
    return Batch(torch.zeros(n, device="cuda"))
"""
RUNNER = """\
from pkg.batch import Batch


def run(batch: Batch):
    return batch.lens.max().item()
"""
OTHER = """\
import torch


def other(n):
    return torch.zeros(n, device="cuda").sum().item()
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    write(root, {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/batch.py": BATCH, "pkg/builder.py": BUILDER_GPU,
                 "pkg/runner.py": RUNNER, "pkg/other.py": OTHER})
    monkeypatch.chdir(root)
    return root


class Runs:
    """Checks the project with one cache folder, recording which files were linted (not served from the cache)."""

    def __init__(self, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cache = cache
        self.linted: list[str] = []
        original = api._check_file

        def recording(path: str):  # type: ignore[no-untyped-def]
            self.linted.append(Path(path).as_posix())
            return original(path)

        monkeypatch.setattr(api, "_check_file", recording)

    def __call__(self, *, temporary: bool = False) -> set[tuple[str, int, str]]:
        self.linted = []
        plan = api.plan(["."], target_torch_version=FIXTURE_TORCH,
                        project=api.ProjectOptions(cache_dir=self.cache, temporary=temporary))
        report = api.run(plan, ["."], jobs=1)
        assert not [e for r in report.results for e in r.errors]
        return {(Path(d.path).as_posix(), d.start.row, d.code) for r in report.results for d in r.diagnostics}


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runs:
    return Runs(tmp_path / "cache", monkeypatch)


def bump(path: Path, text: str) -> None:
    """Write a file and make sure its stat signature changes even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


RUNNER_FINDING = ("pkg/runner.py", 5, "SL101")
OTHER_FINDING = ("pkg/other.py", 5, "SL101")


def test_warm_run_serves_results_from_the_cache(project: Path, runs: Runs) -> None:
    cold = runs()
    assert cold == {RUNNER_FINDING, OTHER_FINDING}
    assert len(runs.linted) == 5  # every .py file
    assert runs() == cold
    assert runs.linted == []  # nothing changed: every result came from the cache
    assert (runs.cache).is_dir() and not (project / ".sync-lint-cache").exists()


def test_a_run_merges_the_dependency_rows_it_stored(project: Path, runs: Runs) -> None:
    # Workers append what each answer read to `pending_reads`; the run merges them into the
    # indexed table at its end, and an edit finds them either way.
    import sqlite3

    runs()
    db = sqlite3.connect(next(runs.cache.glob("*/index.sqlite")))
    try:
        counts = [db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("pending_reads", "fact_reads")]
    finally:
        db.close()
    assert counts[0] == 0 and counts[1] > 0
    bump(project / "pkg" / "builder.py", BUILDER_GPU.replace('device="cuda"', 'device="cpu"'))
    assert runs() == {OTHER_FINDING}


def _pending_rows(cache: Path) -> int:
    import sqlite3

    db = sqlite3.connect(next(cache.glob("*/index.sqlite")))
    try:
        return db.execute("SELECT COUNT(*) FROM pending_reads").fetchone()[0]
    finally:
        db.close()


def test_the_merge_runs_alongside_the_hot_path_pass(project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge of the dependency rows (one SQL statement, the GIL released) was most of a cold
    check's one-core tail: it runs in a thread while the hot-path pass runs, and the run waits for it."""
    import threading

    from sync_lint import hotpaths
    from sync_lint.project.store import ProjectStore

    pass_started = threading.Event()
    merges: list[tuple[str, bool]] = []  # (the thread, whether the pass had begun)
    merge, analyse = ProjectStore.merge_reads, hotpaths.analyse

    def merging(self: ProjectStore) -> None:
        merges.append((threading.current_thread().name, pass_started.wait(10)))
        merge(self)

    def analysing(*args, **kwargs):  # type: ignore[no-untyped-def]
        pass_started.set()
        return analyse(*args, **kwargs)

    monkeypatch.setattr(ProjectStore, "merge_reads", merging)
    monkeypatch.setattr(hotpaths, "analyse", analysing)
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    # The run's merge, in its thread, met the pass; the pass merges what it solved itself at its end.
    assert sorted(merges) == sorted([("sync-lint-merge", True), (threading.current_thread().name, True)])
    assert not api._MERGING and _pending_rows(runs.cache) == 0


def test_an_index_update_waits_for_a_merge_still_running(project: Path, runs: Runs,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An update may fork a pool of workers: no merge thread may be inside SQLite then."""
    import threading

    from sync_lint.project import build

    release = threading.Event()
    merge = threading.Thread(target=release.wait, args=(10,), name="sync-lint-merge")
    merge.start()
    monkeypatch.setattr(api, "_MERGING", [merge])
    update = build.update_project
    alive_at_update: list[bool] = []

    def updating(*args, **kwargs):  # type: ignore[no-untyped-def]
        alive_at_update.append(merge.is_alive())
        return update(*args, **kwargs)

    monkeypatch.setattr(build, "update_project", updating)
    threading.Timer(0.3, release.set).start()
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    api.run_files(plan, ["pkg/runner.py"], jobs=1)
    assert alive_at_update == [False]


def test_a_run_without_the_hot_path_pass_merges_before_it_returns(project: Path, runs: Runs,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from sync_lint.project.store import ProjectStore

    threads: list[str] = []
    merge = ProjectStore.merge_reads
    monkeypatch.setattr(ProjectStore, "merge_reads",
                        lambda self: (threads.append(threading.current_thread().name), merge(self))[1])
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    api.run(plan, ["."], jobs=1, hot_paths=False)
    assert threads == [threading.current_thread().name] and _pending_rows(runs.cache) == 0


def test_a_worker_saves_when_due_and_as_it_ends(project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """A pool's worker saved after every batch of files (a transaction that rewrites many pages of
    the cache each time); it now saves after a batch only once `SAVE_EVERY_S` has passed, and once
    more as it ends, before the run goes on."""
    from sync_lint.project import build
    from sync_lint.project.store import ProjectStore

    for i in range(12):  # several batches for each of two workers
        (project / "pkg" / f"extra_{i}.py").write_text(OTHER.replace("other", f"extra_{i}"))
    saves = tmp_path / "saves.log"
    put_facts = ProjectStore.put_facts

    def logged(self: ProjectStore, rows, generation):  # type: ignore[no-untyped-def]
        with saves.open("a") as log:  # the workers are forked: each appends its own line
            log.write(f"{os.getpid()}\n")
        return put_facts(self, rows, generation)

    monkeypatch.setattr(ProjectStore, "put_facts", logged)
    monkeypatch.setattr(build, "SAVE_EVERY_S", 3600.0)
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    cold = api.run(plan, ["."], jobs=2, hot_paths=False)
    workers = saves.read_text().split()
    assert workers and len(workers) == len(set(workers)) and os.getpid() not in map(int, workers)  # once each, at its end
    runs.linted = []
    warm = api.run(plan, ["."], jobs=1, hot_paths=False)  # in this process, where `linted` is recorded
    assert runs.linted == []  # everything the workers checked was saved
    assert [r.diagnostics for r in warm.results] == [r.diagnostics for r in cold.results]


def test_a_file_checked_after_the_whole_project_reuses_every_result(project: Path, runs: Runs) -> None:
    # The hot-path pass checks the callers and callees of the file's functions without SL601, which it
    # reports itself: their results from the whole project's check, made with it, serve.
    write(project, {"pkg/step.py": "from pkg.builder import build\nfrom pkg.runner import run\n\n\n"
                                   "def step(n):  # sync-lint: hot\n    return run(build(n))\n"})
    runs()
    runs.linted = []
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    report = api.run(plan, ["pkg/step.py"], jobs=1)
    assert any(d.code == "SL601" for r in report.results for d in r.diagnostics)
    assert runs.linted == []


def test_no_cache_writes_nothing(project: Path, runs: Runs) -> None:
    assert runs(temporary=True) == {RUNNER_FINDING, OTHER_FINDING}
    assert not runs.cache.exists() and not (project / ".sync-lint-cache").exists()


def test_no_cache_summarises_each_file_once_per_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hot-path pass checks files of the same project again (`lint_more`): it must find the
    # throwaway index the first pass built, not summarise the whole project a second time.
    from sync_lint.project import build

    summarised: list[str] = []
    original = build._summarize_file

    def counting(job):  # type: ignore[no-untyped-def]
        summarised.append(Path(job[0]).name)
        return original(job)

    monkeypatch.setattr(build, "_summarize_file", counting)
    plan = api.plan(["pkg/runner.py"], target_torch_version=FIXTURE_TORCH,
                    project=api.ProjectOptions(temporary=True))
    api.run(plan, ["pkg/runner.py"], jobs=1)
    api.run(plan, ["pkg/other.py"], jobs=1)
    assert sorted(summarised) == ["__init__.py", "batch.py", "builder.py", "other.py", "runner.py"]
    assert not (project / ".sync-lint-cache").exists()


def test_default_cache_at_the_project_root(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH)
    api.run(plan, ["."], jobs=1)
    folder = project / ".sync-lint-cache"
    assert (folder / "index.sqlite").is_file()
    assert (folder / ".gitignore").read_text().strip().endswith("*")


def test_editing_a_dependency_changes_the_dependent_result(project: Path, runs: Runs) -> None:
    assert RUNNER_FINDING in runs()
    bump(project / "pkg/builder.py", BUILDER_GPU.replace(', device="cuda"', ""))
    assert runs() == {OTHER_FINDING}
    # The edited file and the file that read it are linted again; an unrelated one is not.
    assert "pkg/runner.py" in runs.linted and "pkg/builder.py" in runs.linted
    assert "pkg/other.py" not in runs.linted
    bump(project / "pkg/builder.py", BUILDER_GPU)
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    assert "pkg/runner.py" in runs.linted


def test_editing_an_unrelated_file_keeps_the_others(project: Path, runs: Runs) -> None:
    runs()
    bump(project / "pkg/other.py", OTHER.replace(', device="cuda"', ""))
    assert runs() == {RUNNER_FINDING}
    assert runs.linted == ["pkg/other.py"]


def test_a_function_added_to_a_dependency_keeps_the_dependent_result(project: Path, runs: Runs) -> None:
    # What the runner's answers read of the builder is its `build` (`parts.py`), not the whole module.
    runs()
    bump(project / "pkg/builder.py", BUILDER_GPU + "\n\ndef unrelated(n):\n    return n + 1\n")
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    assert runs.linted == ["pkg/builder.py"]


def test_a_result_that_read_many_parts_of_a_module_keeps_them_apart(project: Path, runs: Runs) -> None:
    # The user's result reads forty methods of `Big`: an edit of another function of the module keeps
    # it. (Past 32 parts a frame once read "any part of the module", and an edit of one method of
    # vLLM's model runner dropped most of what the runner's own check had read.)
    methods = "".join(f"    def m{i}(self, n):\n        return torch.zeros(n, device='cuda')\n\n" for i in range(40))
    big = f"import torch\n\n\nclass Big:\n{methods}\n\ndef other(n):\n    return n\n"
    uses = "".join(f"    big.m{i}(n).sum().item()\n" for i in range(40))
    write(project, {"pkg/big.py": big,
                    "pkg/user.py": f"from pkg.big import Big\n\n\ndef use(big: Big, n):\n{uses}"})
    findings = runs()
    assert {("pkg/user.py", 5 + i, "SL101") for i in range(40)} <= findings
    bump(project / "pkg/big.py", big.replace("    return n\n", "    return n + 1\n"))
    assert runs() == findings
    assert runs.linted == ["pkg/big.py"]


def test_a_function_added_under_a_name_another_module_imports(project: Path, runs: Runs) -> None:
    # `make` resolved to nothing; once defined, the module importing it reads the new function.
    write(project, {"pkg/helpers.py": "import torch\n\n\ndef other_helper(n):\n    return n\n",
                    "pkg/user.py": "from pkg.helpers import make\n\n\ndef use(n):\n    return make(n).item()\n"})
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    bump(project / "pkg/helpers.py", "import torch\n\n\ndef other_helper(n):\n    return n\n\n\n"
                                     "def make(n):\n    return torch.zeros(n, device='cuda').sum()\n")
    assert runs() == {RUNNER_FINDING, OTHER_FINDING, ("pkg/user.py", 5, "SL101")}
    assert "pkg/user.py" in runs.linted


def test_an_edit_of_a_caller_drops_the_parameters_only_when_its_call_changes(project: Path, runs: Runs) -> None:
    # `total`'s parameter is decided by its one caller: an edit of the caller's other function keeps
    # what was solved about it, an edit of the call drops it.
    caller = ("import torch\n\nfrom pkg.kernels import total\n\n\ndef go(n):\n"
              "    return total(torch.zeros(n, device='cuda'))\n\n\ndef idle(n):\n    return n\n")
    write(project, {"pkg/kernels.py": "def total(x):\n    return x.sum().item()\n", "pkg/caller.py": caller})
    kernel_finding = ("pkg/kernels.py", 2, "SL101")
    assert kernel_finding in runs()
    bump(project / "pkg/caller.py", caller.replace("return n\n", "return n * 2\n"))
    assert kernel_finding in runs()
    assert runs.linted == ["pkg/caller.py"]
    bump(project / "pkg/caller.py", caller.replace(", device='cuda'", "").replace("return n\n", "return n * 2\n"))
    assert kernel_finding not in runs()
    assert "pkg/kernels.py" in runs.linted


def test_moving_lines_keeps_the_answers_and_moves_their_evidence(project: Path, runs: Runs,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A comment inserted at the top of a file changes no answer that reads it: the solved facts stay
    (nothing is solved again), and the evidence that points into the file moves with its lines."""
    from sync_lint.project.infer import Inference

    def evidence() -> list[tuple[str, int | None]]:
        plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
        (finding,) = api.run(plan, ["pkg/runner.py"], jobs=1).results[0].diagnostics
        return [(Path(step.path).as_posix(), step.row) for step in finding.evidence_steps]

    runs()
    before = evidence()
    assert ("pkg/builder.py", 7) in before
    solved: list[tuple] = []
    original = Inference._compute

    def recording(self, key):  # type: ignore[no-untyped-def]
        solved.append(key)
        return original(self, key)

    monkeypatch.setattr(Inference, "_compute", recording)
    bump(project / "pkg/builder.py", "# A comment\n\n" + BUILDER_GPU)
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    assert "pkg/runner.py" in runs.linted  # its stored result named the old line
    assert evidence() == [(path, row + 2 if path == "pkg/builder.py" else row) for path, row in before]
    assert not [key for key in solved if key[0] == "field"]  # `Batch.lens` was not solved again
    # A real change to the same file is not mistaken for a move.
    bump(project / "pkg/builder.py", "# A comment\n\n" + BUILDER_GPU.replace(', device="cuda"', ""))
    assert runs() == {OTHER_FINDING}


def test_deleting_a_file(project: Path, runs: Runs) -> None:
    assert RUNNER_FINDING in runs()
    (project / "pkg/builder.py").unlink()
    assert runs() == {OTHER_FINDING}  # nothing builds a Batch any more: `lens` is a tensor of unknown device
    assert "pkg/runner.py" in runs.linted


def test_renaming_a_file(project: Path, runs: Runs) -> None:
    runs()
    (project / "pkg/builder.py").rename(project / "pkg/maker.py")
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    report = api.run(plan, ["pkg/runner.py"], jobs=1)
    (finding,) = report.results[0].diagnostics
    assert [Path(s.path).as_posix() for s in finding.evidence_steps][-1] == "pkg/maker.py"
    # The renamed file is now where a CPU Batch is built: the finding follows it.
    bump(project / "pkg/maker.py", BUILDER_GPU.replace(', device="cuda"', ""))
    assert runs() == {OTHER_FINDING}


def test_a_new_file_reaches_the_dependants(project: Path, runs: Runs) -> None:
    (project / "pkg/builder.py").unlink()
    assert runs() == {OTHER_FINDING}
    write(project, {"pkg/late.py": BUILDER_GPU})
    assert runs() == {RUNNER_FINDING, OTHER_FINDING}


_STATE = """\
class InferState:
    def __init__(self):
        self.b_seq_len = None


class SlidingInferState:
    def __init__(self):
        self.b_seq_len = None

    def init_extra(self):
        return self.b_seq_len.max().item()
"""
_BASE_MODEL = """\
import torch

from pkg.state import InferState


class BaseModel:
    infer_state_class = InferState

    def decode(self, n):
        infer_state = self.infer_state_class()
        infer_state.b_seq_len = torch.zeros(n, device="cuda")
        infer_state.init_extra()
"""
_SLIDING_MODEL = """\
from pkg.base import BaseModel
from pkg.state import SlidingInferState


class SlidingModel(BaseModel):
    infer_state_class = SlidingInferState
"""


def test_the_classes_deriving_from_a_class_are_kept_and_dropped_when_one_is_added_or_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: Runs) -> None:
    # The subclasses of a class are read again by every run that checks a file (a field's class
    # joins what subclasses put in a class attribute), and finding them scans every base in the
    # project: the answer is kept in the cache, and must go when a subclass comes or goes.
    from sync_lint.project.deps import Reads
    from sync_lint.project.index import KeptAnswers, ProjectIndex
    from sync_lint.project.store import ProjectStore

    root = tmp_path / "models"
    write(root, {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/state.py": _STATE, "pkg/base.py": _BASE_MODEL})
    monkeypatch.chdir(root)
    key = ("direct-subclasses", "pkg.base.BaseModel")

    def kept() -> object:
        (database,) = runs.cache.glob("*/index.sqlite")
        store = ProjectStore(database)
        try:
            return KeptAnswers(Reads(), store)(key, lambda: "not kept")
        finally:
            store.close()

    sliding = ("pkg/state.py", 11, "SL101")
    assert sliding not in runs()  # no model puts a `SlidingInferState` in `infer_state_class`
    assert kept() == frozenset()
    # A class that names no base under another name keeps the answers (and what used them).
    found: list[str] = []
    original = ProjectIndex._find_direct_subclasses
    monkeypatch.setattr(ProjectIndex, "_find_direct_subclasses",
                        lambda self, cls: found.append(cls) or original(self, cls))
    bump(root / "pkg/state.py", _STATE + "\n\nclass Other:\n    pass\n")
    assert sliding not in runs() and "pkg/state.py" in runs.linted
    assert "pkg.base.BaseModel" not in found
    write(root, {"pkg/sliding.py": _SLIDING_MODEL})
    assert sliding in runs()
    assert kept() == {"pkg.sliding.SlidingModel"}
    (root / "pkg/sliding.py").unlink()
    assert sliding not in runs()
    assert kept() == frozenset()
    # A subclass that names the base under another name, re-exported by a module of its own.
    write(root, {"pkg/models.py": "from pkg.base import BaseModel as Model\n",
                 "pkg/sliding.py": _SLIDING_MODEL.replace("pkg.base import BaseModel", "pkg.models import Model")
                 .replace("(BaseModel)", "(Model)")})
    assert sliding in runs()
    assert kept() == {"pkg.sliding.SlidingModel"}


def test_settings_change(project: Path, runs: Runs) -> None:
    """A configuration that changes facts (the name patterns) re-checks everything, and back."""
    write(project, {"pkg/named.py": "def f(lens_d):\n    return lens_d.max().item()\n"})
    named = ("pkg/named.py", 2, "SL101")
    assert named not in runs()
    write(project, {"pyproject.toml": '[tool.sync-lint]\ngpu-name-patterns = ["_d$"]\n'})
    assert named in runs()
    assert len(runs.linted) == 6  # every .py file: the results of the old settings are not used
    write(project, {"pyproject.toml": ""})
    assert named not in runs()


def test_changing_the_selection_does_not_serve_other_rules_results(project: Path, runs: Runs) -> None:
    runs()
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, ignore=["SL101"],
                    project=api.ProjectOptions(cache_dir=runs.cache))
    report = api.run(plan, ["."], jobs=1)
    assert not [d for r in report.results for d in r.diagnostics]


def test_summary_of_an_edited_file_with_the_same_size_and_stat(project: Path, runs: Runs) -> None:
    """Content with the same size: the hash, not the size, decides."""
    runs()
    path = project / "pkg/builder.py"
    text = BUILDER_GPU.replace('device="cuda"', 'device="cpu" ')
    assert len(text) == len(BUILDER_GPU)
    bump(path, text)
    assert runs() == {OTHER_FINDING}


# ==========================================================================================
# The command line: a killed run, concurrent runs
# ==========================================================================================


def make_big_project(root: Path, modules: int = 120) -> None:
    """A project large enough that a run takes a moment: chains of fields and parameters across modules."""
    files = {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/batch.py": BATCH}
    for i in range(modules):
        device = ', device="cuda"' if i % 3 else ""
        files[f"pkg/m{i}.py"] = (
            "import torch\n\nfrom pkg.batch import Batch\n"
            + (f"from pkg.m{i - 1} import step{i - 1}\n" if i else "")
            + f"\n\nclass Holder{i}:\n    def __init__(self, n):\n        self.buf{i} = torch.zeros(n{device})\n\n\n"
            + f"def step{i}(x, batch: Batch):\n"
            + f"    a = x.max().item()\n    b = batch.lens.tolist()\n    h = Holder{i}(3).buf{i}.sum().item()\n"
            + (f"    step{i - 1}(torch.zeros(3{device}), batch)\n" if i else "")
            + "    return a, b, h\n"
            + f"\n\ndef make{i}(n):\n    return Batch(torch.zeros(n{device}))\n"
        )
    write(root, files)


def cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sync_lint", "check", ".", "--output-format", "json", "--exit-zero", "--no-progress",
            "--target-torch-version", FIXTURE_TORCH, *args]


def findings_of(output: str) -> set[tuple[str, int, str]]:
    return {(Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in json.loads(output)}


def run_cli(root: Path, *args: str) -> set[tuple[str, int, str]]:
    done = subprocess.run(cli(root, *args), cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return findings_of(done.stdout)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set]:
    root = tmp_path_factory.mktemp("big") / "proj"
    make_big_project(root)
    truth = run_cli(root, "--no-cache", "-j", "1")
    assert len(truth) > 100
    return root, truth


def stored_results(cache: Path) -> int:
    """How many per-file results the cache under `cache` holds now (-1: no database yet)."""
    import sqlite3

    found = list(cache.glob("*/index.sqlite"))
    if not found:
        return -1
    try:
        db = sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True, timeout=1)
        try:
            # Call-graph answers (`<call-graph:...>` keys) share the table with the files' results.
            return db.execute("SELECT COUNT(*) FROM results WHERE path NOT LIKE '<%'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


@pytest.mark.parametrize("phase", ["indexing", "checking"])
def test_a_killed_run_leaves_a_cache_a_later_run_uses_correctly(big: tuple[Path, set], tmp_path: Path,
                                                                 phase: str) -> None:
    """SIGKILL a run (and its workers) while it builds the index, or once it has stored some results but
    not all; the next run on that cache gives the findings of a run without a cache."""
    root, truth = big
    cache = tmp_path / "cache"
    # Saving after every file (not every 2 s) gives the test a run that has stored some results.
    process = subprocess.Popen(cli(root, "--cache-dir", str(cache), "-j", "2"), cwd=root,
                               env={**os.environ, "SYNC_LINT_SAVE_EVERY_S": "0"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ready = (lambda: stored_results(cache) >= 0) if phase == "indexing" else (lambda: stored_results(cache) > 0)
    deadline = time.monotonic() + 240
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed midway"
    os.killpg(process.pid, signal.SIGKILL)  # the run and its workers
    process.wait()
    stored = stored_results(cache)
    if phase == "checking":
        assert 0 < stored < len(list(root.rglob("*.py")))  # it really stopped midway
    assert run_cli(root, "--cache-dir", str(cache), "-j", "1") == truth
    assert stored_results(cache) == len(list(root.rglob("*.py")))
    assert run_cli(root, "--cache-dir", str(cache), "-j", "1") == truth  # and warm from what it stored


def test_concurrent_runs_share_one_cache(big: tuple[Path, set], tmp_path: Path) -> None:
    root, truth = big
    cache = tmp_path / "cache"
    processes = [subprocess.Popen(cli(root, "--cache-dir", str(cache), "-j", "1"), cwd=root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert findings_of(out) == truth
    assert run_cli(root, "--cache-dir", str(cache), "-j", "1") == truth


def test_concurrent_run_while_a_file_changes(big: tuple[Path, set], tmp_path: Path) -> None:
    """A run racing with an edit and another run: the cache ends correct for the final content."""
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(big[0], root)
    cache = tmp_path / "cache"
    first = subprocess.Popen(cli(root, "--cache-dir", str(cache), "-j", "1"), cwd=root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    batch = root / "pkg/batch.py"
    bump(batch, BATCH.replace("lens: torch.Tensor", "lens: torch.Tensor\n    extra: int = 0"))
    second = subprocess.Popen(cli(root, "--cache-dir", str(cache), "-j", "1"), cwd=root, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    first.wait(timeout=300)
    second.wait(timeout=300)
    assert run_cli(root, "--cache-dir", str(cache), "-j", "1") == run_cli(root, "--no-cache", "-j", "1")


# ==========================================================================================
# Roots: project-roots, extend-project, --isolated
# ==========================================================================================


def test_extend_project_reads_a_folder_outside_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is built in a sibling folder (vendored code); `extend-project` lets the index read it."""
    root = tmp_path / "app"
    write(root, {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/batch.py": BATCH, "pkg/runner.py": RUNNER})
    write(tmp_path / "vendor", {"pkg/__init__.py": "", "pkg/builder.py": BUILDER_GPU})
    monkeypatch.chdir(root)
    runs = Runs(tmp_path / "cache", monkeypatch)
    assert runs() == set()
    write(root, {"pyproject.toml": '[tool.sync-lint]\nextend-project = ["../vendor"]\n'})
    assert runs() == {RUNNER_FINDING}


def test_project_roots_split_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two projects in one repository: with `project-roots` each has its own index, and a builder in
    one does not decide the other's fields."""
    repo = tmp_path / "repo"
    write(repo, {"pyproject.toml": "", "one/pkg/__init__.py": "", "one/pkg/batch.py": BATCH,
                 "one/pkg/runner.py": RUNNER, "two/pkg/__init__.py": "", "two/pkg/builder.py": BUILDER_GPU,
                 "two/pkg/batch.py": BATCH})
    monkeypatch.chdir(repo)
    runs = Runs(tmp_path / "cache", monkeypatch)
    # One index for the repository: both folders define `pkg.batch`, so two's builder decides one's field.
    assert ("one/pkg/runner.py", 5, "SL101") in runs()
    write(repo, {"pyproject.toml": '[tool.sync-lint]\nproject-roots = ["one", "two"]\n'})
    assert runs() == set()


def test_isolated_uses_no_index(project: Path, runs: Runs) -> None:
    plan = api.plan(["."], isolated=True, target_torch_version=FIXTURE_TORCH)
    assert plan.project is None
    report = api.run(plan, ["."], jobs=1)
    assert {(Path(d.path).as_posix(), d.start.row) for r in report.results for d in r.diagnostics} == \
        {OTHER_FINDING[:2]}
    assert not (project / ".sync-lint-cache").exists()


def test_a_locked_cache_does_not_end_the_run(tmp_path, monkeypatch):
    """Another run holding the cache's write lock past the timeout: facts wait for the next save,
    a result is simply not stored, and the check itself goes on."""
    import sqlite3

    from sync_lint.project.build import OpenProject

    calls = {"facts": 0}

    class LockedStore:
        def put_facts(self, rows, generation):
            calls["facts"] += 1
            if calls["facts"] == 1:
                raise sqlite3.OperationalError("database is locked")
            calls["saved"] = list(rows)
            return True

        def put_results(self, rows, generation):
            calls["results"] = calls.get("results", 0) + 1
            raise sqlite3.OperationalError("database is locked")

    class Solver:
        def __init__(self):
            self.batches = [[("k1", "f1", frozenset())], [("k2", "f2", frozenset())]]
            self.index = None

        def solved(self):
            return self.batches.pop(0)

    class FakeProject:
        generation = 0

    opened = OpenProject(FakeProject(), LockedStore(), Solver())
    opened.save_later("a.py", "key", object(), frozenset())
    opened.flush()  # locked: the facts are kept for later, the result is never tried before them
    assert "results" not in calls
    opened.save_later("b.py", "key", object(), frozenset())
    opened.flush()  # the facts go in; the result meets the lock and is dropped, no exception
    assert [row[0] for row in calls["saved"]] == ["k1", "k2"]
    assert calls["results"] == 1


def test_a_long_lived_process_does_not_serve_a_summary_another_run_replaced(project: Path, tmp_path: Path) -> None:
    # The summaries an update makes stay in memory for the workers it forks. When another process
    # updates the cache for a changed file, this process's next update must not serve its old copy.
    from sync_lint.project.build import update_project
    from sync_lint.project.store import ProjectStore, content_hash
    from sync_lint.project.summary import summarize

    settings = api.plan(["."], target_torch_version=FIXTURE_TORCH).settings
    cache = tmp_path / "cache"
    first = update_project(project, settings, jobs=1, cache_dir=cache)
    assert "build" in first.open(settings).index.summary("pkg.builder").functions
    path = project / "pkg" / "builder.py"
    bump(path, BUILDER_GPU.replace("def build(n)", "def make(n)"))
    data = path.read_bytes()
    info = path.stat()
    store = ProjectStore(first.database)  # "another run" brings the cache up to date
    store.update([(str(path.resolve()), info.st_mtime_ns, info.st_size, content_hash(data),
                   summarize(data, "pkg/builder.py", "pkg.builder"))], [])
    store.close()
    second = update_project(project, settings, jobs=1, cache_dir=cache)
    assert set(second.open(settings).index.summary("pkg.builder").functions) == {"make"}



MM_INPUTS = "class MultiModalFieldConfig:\n    @staticmethod\n    def batched(m, keep_on_cpu=False):\n        return m\n"
MM_DECLARATION = """\
from pkg.inputs import MultiModalFieldConfig


def fields():
    return dict(sizes=MultiModalFieldConfig.batched("image"))
"""
MM_MODEL = """\
class Model:
    def embed(self, **kwargs):
        sizes = kwargs.pop("sizes")
        return sizes.tolist()
"""


@pytest.mark.parametrize("change", ["add a declaring file", "drop keep_on_cpu"])
def test_a_multimodal_declaration_made_elsewhere_re_checks_the_reading_file(tmp_path: Path, runs: Runs, change: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mm"
    files = {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/inputs.py": MM_INPUTS, "pkg/model.py": MM_MODEL}
    if change == "drop keep_on_cpu":
        files["pkg/config.py"] = MM_DECLARATION.replace('"image")', '"image", keep_on_cpu=True)')
    write(root, files)
    monkeypatch.chdir(root)
    assert runs() == set()  # `sizes` undeclared, or kept on the CPU
    # Only the name table says which modules declare `sizes`: the reading file's cached result must
    # depend on it, not on the declaring file.
    bump(root / "pkg/config.py", MM_DECLARATION)
    assert runs() == {("pkg/model.py", 4, "SL102")}
    assert "pkg/model.py" in runs.linted



HOT_MODEL = """\
import torch
from torch import nn

from pkg.ops import total


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * total(x)
"""
HOT_OPS = """\
import torch


def total(x: torch.Tensor) -> float:
    return torch.zeros(3, device="cuda").sum().item()
"""


def test_the_hot_path_pass_checks_more_files_with_the_index_the_run_brought_up_to_date(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bringing a project up to date lists and stats every file: once per run is enough, though the
    # hot-path pass checks the callee's file too.
    from sync_lint.project import background, build

    root = tmp_path / "hot"
    write(root, {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/model.py": HOT_MODEL, "pkg/ops.py": HOT_OPS})
    monkeypatch.chdir(root)
    updated: list[Path] = []
    original = build.update_project

    def counting(project_root, *args, **kwargs):  # type: ignore[no-untyped-def]
        updated.append(project_root)
        return original(project_root, *args, **kwargs)

    checked: list[list[str]] = []
    run_files = api.run_files

    def recording(plan, files, **kwargs):  # type: ignore[no-untyped-def]
        checked.append(list(files))
        return run_files(plan, files, **kwargs)

    monkeypatch.setattr(build, "update_project", counting)
    monkeypatch.setattr(background, "can_fork", lambda: False)  # count the updates in this process
    monkeypatch.setattr(api, "run_files", recording)
    plan = api.plan(["pkg/model.py"], target_torch_version=FIXTURE_TORCH)
    report = api.run(plan, ["pkg/model.py"], jobs=1)
    assert [d.code for r in report.results for d in r.diagnostics] == ["SL601"]
    assert len(checked) == 2 and any(path.endswith("ops.py") for path in checked[1])
    assert updated == [root.resolve()]


def test_a_class_that_turns_a_stored_attribute_into_a_property_is_read_again(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # SL501 leaves `input_batch.num_computed_tokens_cpu` alone while `InputBatch` stores it: the
    # cached result of the reading file depends on that class.
    import shutil

    from fixture_support import PROJECTS

    root = tmp_path / "plain_attributes"
    shutil.copytree(PROJECTS / "plain_attributes", root)
    monkeypatch.chdir(root)
    cache = tmp_path / "cache"

    def rows() -> list[int]:
        plan = api.plan(["pkg"], select=["SL501"], target_torch_version=FIXTURE_TORCH,
                        project=api.ProjectOptions(cache_dir=cache))
        return sorted(d.start.row for r in api.run(plan, ["pkg"], jobs=1).results for d in r.diagnostics)

    assert rows() == [18, 22, 26]
    batch = root / "pkg" / "batch.py"
    batch.write_text(batch.read_text().replace(
        "        self.num_computed_tokens_cpu = self.num_computed_tokens_cpu_tensor.numpy()\n",
        "\n    @property\n    def num_computed_tokens_cpu(self):\n        return self.num_computed_tokens_cpu_tensor\n", 1))
    assert rows() == [10, 14, 18, 22, 26]


needs_fork = pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(os, "fork")),
                                reason="the index update runs in a forked child on Linux only")


@needs_fork
def test_a_forked_update_hands_back_the_project_the_update_would_return(project: Path, tmp_path: Path) -> None:
    from sync_lint.project.background import start_update
    from sync_lint.project.build import update_project

    settings = api.plan(["."], target_torch_version=FIXTURE_TORCH).settings
    forked = start_update(update_project, project, settings, jobs=1, cache_dir=tmp_path / "forked").result()
    here = update_project(project, settings, jobs=1, cache_dir=tmp_path / "here")
    assert (forked.root, forked.files, forked.fingerprint, forked.shas, forked.modules) == \
        (here.root, here.files, here.fingerprint, here.shas, here.modules)
    assert len(forked.shas) == 5
    # The child wrote the cache: updating it again here finds nothing to do.
    again = update_project(project, settings, jobs=1, cache_dir=tmp_path / "forked")
    assert again.generation == forked.generation and again.database == forked.database


@needs_fork
def test_a_child_that_fails_or_dies_leaves_the_update_to_this_process() -> None:
    from sync_lint.project.background import start_update

    parent = os.getpid()

    def fails_in_the_child(root: Path, settings: object) -> str:
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return "updated here"

    def dies_in_the_child(root: Path, settings: object) -> str:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return "updated here"

    def always_fails(root: Path, settings: object) -> str:
        raise ValueError("pyproject.toml:3: bad setting")

    assert start_update(fails_in_the_child, Path("."), None).result() == "updated here"
    assert start_update(dies_in_the_child, Path("."), None).result() == "updated here"
    with pytest.raises(ValueError, match="pyproject.toml:3: bad setting"):  # reported as this process's own
        start_update(always_fails, Path("."), None).result()
    redone: list[str] = []

    def slow(root: Path, settings: object) -> str:
        if os.getpid() != parent:
            time.sleep(0.2)
        redone.append("here")
        return "updated"

    start_update(slow, Path("."), None).abandon()  # this process is ending: nothing is redone here
    assert redone == []


def _sleeps_then_updates(root, settings):  # type: ignore[no-untyped-def]
    time.sleep(0.5)
    return "updated"


@needs_fork
def test_an_update_in_a_child_says_when_it_is_done() -> None:
    from sync_lint.project.background import start_update

    pending = start_update(_sleeps_then_updates, Path("."), None)
    assert not pending.done()
    deadline = time.monotonic() + 30
    while not pending.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pending.done() and pending.result() == "updated"


def test_a_tree_parsed_ahead_is_the_one_the_check_gets_once() -> None:
    import libcst as cst

    from sync_lint.engine import parse

    source = "x = torch.ones(3)\n"
    parse.parse_ahead(source)
    ahead = parse._AHEAD[source]
    assert parse.parse_module(source) is ahead
    again = parse.parse_module(source)
    assert again is not ahead and again.code == source and source not in parse._AHEAD
    parse.parse_ahead("x = = 1\n")  # left to the check, which reports it
    assert "x = = 1\n" not in parse._AHEAD
    with pytest.raises(cst.ParserSyntaxError):
        parse.parse_module("x = = 1\n")


@needs_fork
def test_a_small_check_of_an_edited_file_parses_it_while_a_child_updates_the_index(
        project: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    # A one-file check after an edit, in a process of one thread: the index update runs in a forked
    # child while this process loads the rules (if it has not yet) and parses the file.
    from sync_lint.engine import lint, parse
    from sync_lint.project import background

    assert runs() == {RUNNER_FINDING, OTHER_FINDING}
    path = project / "pkg" / "runner.py"
    path.write_text(RUNNER + "\n\ndef more(batch: Batch):\n    return batch.lens.tolist()\n")
    later = time.time_ns() + 10_000_000_000
    os.utime(path, ns=(later, later))
    started: list[Path] = []
    ahead: list[str] = []
    start, parse_file = background.start_update, lint.parse_file_ahead
    monkeypatch.setattr(api, "_other_threads", lambda: False)
    monkeypatch.setattr(background, "can_fork", lambda: True)
    monkeypatch.setattr(background, "start_update", lambda *a, **k: started.append(a[1]) or start(*a, **k))
    monkeypatch.setattr(lint, "parse_file_ahead", lambda p, *more: ahead.append(p) or parse_file(p, *more))

    class Taken(dict):  # the trees parsed ahead, recording those a check asked for
        taken: list[object] = []

        def pop(self, key, default=None):  # type: ignore[no-untyped-def, override]
            found = super().pop(key, default)
            if found is not None:
                self.taken.append(found)
            return found

    monkeypatch.setattr(parse, "_AHEAD", Taken())
    plan = api.plan([str(path)], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=runs.cache))
    report = api.run(plan, [str(path)], jobs=1)
    found = {(Path(d.path).name, d.start.row, d.code) for r in report.results for d in r.diagnostics}
    assert found == {("runner.py", 5, "SL101"), ("runner.py", 9, "SL102")}
    assert started == [project.resolve()] and [Path(p).name for p in ahead] == ["runner.py"]
    assert len(Taken.taken) == 1 and parse._AHEAD == {}  # the check took the tree parsed ahead
    # The child's update is in the cache: a whole run now re-checks only what the edit touched.
    assert runs() == {RUNNER_FINDING, OTHER_FINDING, ("pkg/runner.py", 9, "SL102")}
    assert "pkg/other.py" not in runs.linted


def test_a_caller_added_or_removed_later_brings_back_or_drops_a_finding_only_a_convention_knew(
        project: Path, runs: Runs) -> None:
    # Whether code that runs mentions a function is a fact about other files: a cached result that left
    # a finding out because nothing mentioned its function must be redone when a caller appears.
    write(project, {"pkg/ops.py": "def helper(lens_gpu):\n    return lens_gpu.tolist()\n",
                    "pkg/uses_ops.py": "from pkg import ops\n\nTABLE = []\n"})
    helper = ("pkg/ops.py", 2, "SL102")
    assert helper not in runs()
    bump(project / "pkg/uses_ops.py", "from pkg import ops\n\nTABLE = [ops.helper]\n")
    assert helper in runs()
    bump(project / "pkg/uses_ops.py", "from pkg import ops\n\nTABLE = []\n")
    assert helper not in runs()


def _install_copy(target: Path, mtime_s: int, edit: str | None = None) -> Path:
    """sync-lint's code laid out as `pip install` leaves it (the rule pack inside the package), every
    file stamped `mtime_s` as a fresh install stamps the time of the install; `edit`: a rule file
    (a name under `rules/`) given one more line."""
    import shutil

    from sync_lint.fingerprint import code_folders

    package, *rule_folders = code_folders()
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(package, target / "sync_lint", ignore=skip)
    for folder in rule_folders:
        shutil.copytree(folder, target / "sync_lint" / "rules", ignore=skip, dirs_exist_ok=True)
    if edit is not None:
        rule = target / "sync_lint" / "rules" / edit
        rule.write_text(rule.read_text() + "# another release\n")
    for path in target.rglob("*"):
        os.utime(path, (mtime_s, mtime_s))
    return target


def test_a_fresh_install_of_the_same_code_keeps_the_cache(project: Path, tmp_path: Path) -> None:
    """A CI job installs sync-lint afresh and restores the cache an earlier job saved: same code at
    other times (and another folder) must find its facts and results, other code must not."""
    import sqlite3

    from sync_lint.fingerprint import code_files

    rule = next(p.name for p in code_files() if p.parent.name == "rules" and p.name != "__init__.py")
    cache = tmp_path / "cache"

    def check(install: Path) -> set[tuple[str, int, str]]:
        env = {**os.environ, "PYTHONPATH": str(install), "SYNC_LINT_NO_DAEMON": "1"}
        done = subprocess.run([sys.executable, "-m", "sync_lint", "check", ".", "--cache-dir", str(cache),
                               "--output-format", "json", "--exit-zero", "--target-torch-version", FIXTURE_TORCH],
                              cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert all(Path(d["filename"]).resolve().is_relative_to(project) for d in found)
        return {(Path(d["filename"]).resolve().relative_to(project).as_posix(), d["location"]["row"], d["code"])
                for d in found}

    def sentinels() -> tuple[bool, bool]:
        (database,) = cache.glob("*/index.sqlite")
        with sqlite3.connect(database) as db:
            return (db.execute("SELECT 1 FROM facts WHERE id = -1").fetchone() is not None,
                    db.execute("SELECT 1 FROM results WHERE path = '<sentinel>'").fetchone() is not None)

    first = check(_install_copy(tmp_path / "job1", 1_600_000_000))
    assert first == {RUNNER_FINDING, OTHER_FINDING}
    (database,) = cache.glob("*/index.sqlite")
    with sqlite3.connect(database) as db:  # rows only this test wrote: kept only while the cache is kept
        db.execute("INSERT INTO facts (id, fact) VALUES (-1, x'00')")
        db.execute("INSERT INTO results VALUES ('<sentinel>', 'key', x'00', 0)")
    assert check(_install_copy(tmp_path / "job2", 1_700_000_000)) == first
    assert sentinels() == (True, True)
    assert check(_install_copy(tmp_path / "job3", 1_700_000_000, edit=rule)) == first
    assert sentinels() == (False, False)


def test_a_save_interval_that_is_not_a_number_is_said_and_the_default_used(monkeypatch, capsys):
    from sync_lint.project import build

    monkeypatch.setenv("SYNC_LINT_SAVE_EVERY_S", "two")
    assert build._save_interval() == build.SAVE_EVERY_S
    assert "SYNC_LINT_SAVE_EVERY_S='two' is not a number" in capsys.readouterr().err
    monkeypatch.setenv("SYNC_LINT_SAVE_EVERY_S", "0.5")
    assert build._save_interval() == 0.5
