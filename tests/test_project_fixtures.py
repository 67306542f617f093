"""Multi-module fixture projects: what the project index must know across files.

Each folder under `fixtures/projects/` is a small package. Every line that must be
reported carries `# expect: SLxxx`; every other line must not be reported (lines that
look like syncs but are on the CPU say why in a comment). Each project is copied to a
temporary folder and checked through the library API with its cache in the temporary
folder, as the command line does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fixture_support import FIXTURE_TORCH, PROJECTS, check_small_project, expected_findings
from sync_lint import api
from sync_lint.diagnostics import Diagnostic

# The hot-path projects (`hot-*`) mark SL601 expectations their own way: tests/test_hot_paths.py.
SCENARIOS = sorted(p.name for p in PROJECTS.iterdir() if p.is_dir() and not p.name.startswith("hot-"))
# Files whose findings the per-file analysis decides alone (no other file matters).
PER_FILE = {"flow_reachability": "pkg/steps.py"}
# Projects whose knowledge removes findings: checked alone, a `device` parameter is a GPU by its name
# (none_arguments), a configured sync-prone attribute is a read of a property (plain_attributes), and
# a tensor's `.device` is an accelerator's (host_inputs), and a function called only off CUDA runs on
# CUDA for all a file alone shows (off_cuda_callers).
PRUNING = {"host_inputs", "none_arguments", "off_cuda_callers", "plain_attributes"}


def copy_project(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(PROJECTS / name, target)
    return target


def expectations(root: Path) -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        found |= {(relative, row, code) for row, code in expected_findings(path.read_text(encoding="utf-8"))}
    return found


def check(root: Path, *, cache: Path | None = None, isolated: bool = False, paths: list[str] | None = None,
          temporary: bool = False, strict: bool = False) -> api.Report:
    """Check the project at `root` (the working directory) as `sync-lint check .` would."""
    assert Path.cwd() == root
    options = api.ProjectOptions(cache_dir=cache, temporary=temporary)
    plan = api.plan(["."], isolated=isolated, strict=strict, target_torch_version=FIXTURE_TORCH, project=options)
    report = api.run(plan, paths or ["."], jobs=1)
    for result in report.results:
        assert not result.errors, result.errors
    return report


def findings(report: api.Report) -> set[tuple[str, int, str]]:
    return {(Path(os.path.normpath(d.path)).as_posix(), d.start.row, d.code)
            for r in report.results for d in r.diagnostics}


def diagnostic(report: api.Report, path: str, row: int) -> Diagnostic:
    found = [d for r in report.results for d in r.diagnostics
             if Path(os.path.normpath(d.path)).as_posix() == path and d.start.row == row]
    assert len(found) == 1, found
    return found[0]


def last_step(report: api.Report, path: str, row: int) -> tuple[tuple[str, int | None], str]:
    """((path, row), message) of the last evidence step of the one finding at `path:row`."""
    step = diagnostic(report, path, row).evidence_steps[-1]
    return (Path(step.path).as_posix(), step.row), step.message


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(request.param, tmp_path)
    monkeypatch.chdir(root)
    return root


def test_every_scenario_has_expectations_and_negatives() -> None:
    assert len(SCENARIOS) >= 11
    for name in SCENARIOS:
        root = PROJECTS / name
        assert expectations(root), f"{name} expects nothing"
        assert len(list(root.rglob("*.py"))) >= 3, f"{name} is not a multi-module project"
        assert "no finding" in "".join(p.read_text() for p in root.rglob("*.py")), f"{name} has no negative line"


@pytest.mark.parametrize("project", SCENARIOS, indirect=True)
def test_project_findings(project: Path, tmp_path: Path) -> None:
    expected = expectations(project)
    report = check(project, cache=tmp_path / "cache")
    actual = findings(report)
    assert sorted(actual - expected) == [], "unexpected findings (path, line, code)"
    assert sorted(expected - actual) == [], "missing findings (path, line, code)"
    # Every placeholder of a reason is filled in before it is shown.
    shown = [text for r in report.results for d in r.diagnostics
             for text in (d.message, d.evidence, *(step.message for step in d.evidence_steps))]
    assert not [text for text in shown if "{code}" in text]


@pytest.mark.parametrize("project", SCENARIOS, indirect=True)
def test_each_file_alone_knows_less(project: Path) -> None:
    """Checked file by file with no project, the same code yields fewer findings (and no new ones):
    the project's knowledge is what finds them. The flow scenario needs no other file; in the pruning
    ones the project's callers show that findings made alone are false."""
    expected = expectations(project)
    alone = findings(check(project, isolated=True))
    if project.name in PRUNING:
        assert alone > expected, "the project index removes nothing here"
        return
    assert alone <= expected, sorted(alone - expected)
    assert len(alone) < len(expected), "the project index adds nothing here"
    if project.name in PER_FILE:
        assert alone == {e for e in expected if e[0] == PER_FILE[project.name]}


@pytest.mark.parametrize("project", ["dataclass_fields", "returns", "src_layout"], indirect=True)
def test_one_file_of_a_project_uses_the_index(project: Path, tmp_path: Path) -> None:
    """Checking a single file (as pre-commit does) still uses what the rest of the project knows."""
    expected = expectations(project)
    for path in sorted({p for p, _row, _code in expected}):
        report = check(project, cache=tmp_path / "cache", paths=[path])
        assert findings(report) == {e for e in expected if e[0] == path}


@pytest.mark.parametrize("project", ["dataclass_fields"], indirect=True)
def test_source_text_of_a_project_file_uses_the_index(project: Path, tmp_path: Path) -> None:
    """`check_source` (stdin, an editor buffer) with a path in the project uses its index, and sees the
    text given, not the file on disk."""
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=tmp_path / "c"))
    text = (project / "pkg/runner.py").read_text()
    result = api.check_source(plan, text, "pkg/runner.py")
    assert {(d.start.row, d.code) for d in result.diagnostics} == \
        {(row, code) for path, row, code in expectations(project) if path == "pkg/runner.py"}
    # An edited buffer: the CPU field read a second time is still no finding, the GPU one is.
    edited = text.replace("    return longest", "    again = batch.seq_lens.tolist()\n    return longest")
    rows = {(d.start.row, d.code) for d in api.check_source(plan, edited, "pkg/runner.py").diagnostics}
    assert (12, "SL102") in rows


def last_place(found: Diagnostic) -> tuple[str, int | None]:
    """Where the last step of a finding's evidence points (the step in the file farthest away)."""
    step = found.evidence_steps[-1]
    return Path(step.path).as_posix(), step.row


@pytest.mark.parametrize("project", ["dataclass_fields"], indirect=True)
def test_evidence_steps_name_the_other_file(project: Path, tmp_path: Path) -> None:
    report = check(project, cache=tmp_path / "cache")
    seq_lens = diagnostic(report, "pkg/runner.py", 5)
    assert seq_lens.confidence == "high"
    assert last_place(seq_lens) == ("pkg/builder.py", 7)  # the ForwardBatch(...) call
    assert "field `seq_lens` of `ForwardBatch`" in seq_lens.evidence_steps[-1].message
    stored = diagnostic(report, "pkg/runner.py", 7)
    assert stored.confidence == "high"  # `device="cuda"`
    assert last_place(stored) == ("pkg/builder.py", 11)
    assert last_place(diagnostic(report, "pkg/runner.py", 10)) == ("pkg/builder.py", 20)  # by setattr


@pytest.mark.parametrize("project", ["src_layout"], indirect=True)
def test_evidence_chain_crosses_two_files(project: Path, tmp_path: Path) -> None:
    """`state.values` is stored from `make_buffer(n)` (state.py), which returns a GPU tensor (buffers.py)."""
    report = check(project, cache=tmp_path / "cache")
    values = diagnostic(report, "src/engine/io/reader.py", 5)
    places = [(Path(s.path).as_posix(), s.row) for s in values.evidence_steps]
    assert ("src/engine/core/state.py", 6) in places
    # A return's step points at the function (its `def` line).
    assert ("src/engine/core/buffers.py", 4) in places
    assert places.index(("src/engine/core/state.py", 6)) < places.index(("src/engine/core/buffers.py", 4))


def test_a_local_assigned_from_a_project_call_shows_where_the_callee_returns(tmp_path: Path) -> None:
    """`t = make(n)`: the assignment's step alone does not say why `make(n)` is on the GPU; the
    `return` in the other module does."""
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/other.py": "import torch\n\n\ndef make(n):\n    return torch.zeros(n, device='cuda')\n",
        "pkg/use.py": "from pkg.other import make\n\n\ndef a(n):\n    t = make(n)\n    return t.item()\n",
    })
    (item,) = [d for d in found if d.code == "SL101"]
    steps = [(Path(s.path).as_posix().rsplit("proj/", 1)[-1], s.row, s.message) for s in item.evidence_steps]
    assert [(path, row) for path, row, _message in steps] == [("pkg/use.py", 5), ("pkg/other.py", 4)]
    assert "`make` returns `torch.zeros(" in steps[1][2]


def test_a_call_returning_its_argument_goes_on_to_why_the_argument_is_on_the_gpu(tmp_path: Path) -> None:
    """`c = helper(b)`: `helper` returns `x * 2` (in the project's answer, shared by every call), and
    this call's `b` was made on the GPU the line before."""
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/other.py": (
            "def helper(x):\n    return x * 2\n\n\n"
            "def pick(x, n):\n    return x[n]\n\n\n"
            "def mix(x, y):\n    return x + y\n"
        ),
        "pkg/use.py": (
            "import torch\n"
            "from pkg.other import helper, mix, pick\n\n\n"
            "def f(n):\n"
            "    b = torch.linspace(0, 1, n, device='cuda')\n"
            "    c = helper(b)\n"
            "    return c.item()\n\n\n"
            "def g(n, m):\n"
            "    b = torch.arange(n, device='cuda')\n"
            "    return pick(b, m).item()\n\n\n"
            "def h(n):\n"
            "    a = torch.ones(n, device='cuda')\n"
            "    b = torch.zeros(n, device='cuda')\n"
            "    return mix(a, b).sum().item()\n"
        ),
    })
    by_row = {d.start.row: d for d in found if d.code == "SL101"}

    def places(row: int) -> list[tuple[str, int | None]]:
        return [(Path(s.path).as_posix().rsplit("proj/", 1)[-1], s.row) for s in by_row[row].evidence_steps]

    assert places(8) == [("pkg/use.py", 7), ("pkg/other.py", 1), ("pkg/use.py", 6)]
    assert "torch.linspace(" in by_row[8].evidence_steps[-1].message
    # `pick` reads a size as well: the one GPU tensor among its arguments is the one it returns from.
    assert places(13)[-1] == ("pkg/use.py", 12)
    # `mix` returns from two GPU tensors: which one this file should name is not known.
    assert places(19)[-1] == ("pkg/other.py", 9)


@pytest.mark.parametrize("project", ["caller_params"], indirect=True)
def test_parameter_evidence_names_the_call_site(project: Path, tmp_path: Path) -> None:
    report = check(project, cache=tmp_path / "cache")
    for row, call_row in ((10, 10), (16, 11), (20, 12), (24, 13), (28, 14)):
        found = diagnostic(report, "pkg/ops.py", row)
        assert found.confidence == "high"
        places = [(Path(s.path).as_posix(), s.row) for s in found.evidence_steps]
        assert ("pkg/main.py", call_row) in places, (row, places)


@pytest.mark.parametrize("project", ["conventions"], indirect=True)
def test_learned_convention_has_convention_confidence(project: Path, tmp_path: Path) -> None:
    report = check(project, cache=tmp_path / "cache")
    found = diagnostic(report, "pkg/report.py", 6)
    assert found.confidence == "convention"
    assert "3 of 3 sites" in found.evidence
    step = found.evidence_steps[-1]
    assert Path(step.path).as_posix() in ("pkg/runners.py", "pkg/scheduler.py") and step.row
    # Served from the cache, the finding keeps its confidence.
    again = diagnostic(check(project, cache=tmp_path / "cache"), "pkg/report.py", 6)
    assert again.confidence == "convention" and again.evidence_steps == found.evidence_steps


@pytest.mark.parametrize("project", ["conventions"], indirect=True)
def test_convention_in_a_test_is_left_to_strict(project: Path, tmp_path: Path) -> None:
    """In a test file, a GPU known only by a convention is reported with `--strict` only: the line
    itself and a call into a function whose sync rests on one."""
    lines = {("tests/test_report.py", 8, "SL101"), ("tests/test_report.py", 9, "SL601")}
    assert not lines & findings(check(project, cache=tmp_path / "cache"))
    strict = check(project, cache=tmp_path / "strict", strict=True)
    assert lines <= findings(strict)
    for _path, row, _code in lines:
        found = diagnostic(strict, "tests/test_report.py", row)
        assert found.confidence == "strict"
        assert any(step.message.startswith("a test file, where a GPU known only by a naming convention")
                   for step in found.evidence_steps), found.evidence_steps
    # The same lines outside a test folder are reported by default.
    (project / "tests" / "test_report.py").rename(project / "pkg" / "use.py")
    assert {("pkg/use.py", 8, "SL101"), ("pkg/use.py", 9, "SL601")} <= findings(check(project, cache=tmp_path / "c2"))


@pytest.mark.parametrize("project", ["conventions"], indirect=True)
def test_convention_threshold_in_config(project: Path, tmp_path: Path) -> None:
    """`convention-sites = 4`: three agreeing stores are no longer a convention."""
    (project / "pyproject.toml").write_text('[project]\nname = "conventions"\n\n[tool.sync-lint]\nconvention-sites = 4\n')
    assert ("pkg/report.py", 6, "SL101") not in findings(check(project, cache=tmp_path / "cache"))
    (project / "pyproject.toml").write_text('[project]\nname = "conventions"\n\n[tool.sync-lint]\n'
                                             'convention-sites = 2\nconvention-share = 0.5\n')
    # Two of four sites at share 0.5: GPU wins the tie, both attributes are conventions now.
    found = findings(check(project, cache=tmp_path / "cache"))
    assert ("pkg/report.py", 6, "SL101") in found
    assert ("pkg/report.py", 7, "SL101") in found


@pytest.mark.parametrize("project", ["dataclass_fields", "conventions"], indirect=True)
def test_json_and_sarif_carry_the_chain(project: Path, tmp_path: Path) -> None:
    from sync_lint.reporters import render

    report = check(project, cache=tmp_path / "cache")
    registry = api.plan(["."], project=None).registry
    rows = json.loads(render("json", report.results, registry))
    assert rows and all(row["evidence_steps"] for row in rows)
    # Some step lies in another file than the finding.
    assert any(Path(step["filename"]).name != Path(row["filename"]).name
               for row in rows for step in row["evidence_steps"])
    assert {row["confidence"] for row in rows} == ({"convention"} if project.name == "conventions" else {"high"})
    sarif = json.loads(render("sarif", report.results, registry))
    results = sarif["runs"][0]["results"]
    assert len(results) == len(rows)
    related = [loc for result in results for loc in result.get("relatedLocations", ())]
    assert any(loc["physicalLocation"]["artifactLocation"]["uri"].endswith(("builder.py", "runners.py",
                                                                          "scheduler.py")) for loc in related)


@pytest.mark.xfail(strict=True, reason="known gap: torch.set_default_device is not followed")
def test_set_default_device_in_another_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`torch.set_default_device("cuda")` in the package makes `torch.zeros(n)` elsewhere a GPU tensor;
    the index does not follow it (a factory without `device=` is taken for the CPU). `with
    torch.device(...)` is followed (the `default_device` scenario)."""
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "pkg/__init__.py").write_text("import torch\n\ntorch.set_default_device('cuda')\n")
    (root / "pkg/use.py").write_text("import torch\n\n\ndef f(n):\n    return torch.zeros(n).max().item()\n")
    monkeypatch.chdir(root)
    assert findings(check(root, cache=tmp_path / "cache")) == {("pkg/use.py", 5, "SL101")}


@pytest.mark.parametrize("project", ["module_globals"], indirect=True)
def test_evidence_of_a_module_global_names_its_line(project: Path, tmp_path: Path) -> None:
    report = check(project, cache=tmp_path / "cache")
    for row in (6, 7):
        places = [(Path(s.path).as_posix(), s.row) for s in diagnostic(report, "pkg/use.py", row).evidence_steps]
        assert places[-1] == ("pkg/buffers.py", 5), places


@pytest.mark.xfail(strict=True, reason="known gap: a parameter named `model` is taken for an nn.Module by name, "
                                       "even when annotated with a project class")
def test_parameter_named_model_with_a_project_class_annotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_project("constructors", tmp_path)
    read = root / "pkg/read.py"
    read.write_text(read.read_text().replace("config", "model"))
    monkeypatch.chdir(root)
    assert ("pkg/read.py", 9, "SL102") in findings(check(root, cache=tmp_path / "cache"))


def test_ranks_and_device_queries_are_python_numbers_even_in_strict_mode(tmp_path: Path) -> None:
    # vLLM's shared-memory broadcaster keeps `n_reader - n_local_reader` and tests `> 0`: the
    # readers come from `torch.distributed.get_world_size()`, a Python int, not a tensor.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import torch\nimport torch.distributed as dist\n\nfrom pkg.b import Broadcaster\n\n\n"
                    "def make(group):\n    return Broadcaster(dist.get_world_size(group), torch.cuda.device_count())\n",
        "pkg/b.py": "class Broadcaster:\n    def __init__(self, n_reader, n_dev):\n        self.n = n_reader\n"
                    "        self.d = n_dev\n\n    def run(self):\n        if self.n > 1:\n            return 1\n"
                    "        return list(range(self.d))\n",
    }, strict=True)
    assert [(Path(d.path).name, d.start.row, d.code) for d in found] == []


def test_torch_predicates_are_python_bools_even_in_strict_mode(tmp_path: Path) -> None:
    # A project helper returning `torch.compiler.is_compiling()` (transformers' own
    # `is_torchdynamo_compiling`) is a flag, not a tensor of unknown device: testing it syncs nothing.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/flags.py": "import torch\n\n\ndef is_compiling():\n    return torch.compiler.is_compiling()\n\n\n"
                        "def distributed():\n"
                        "    return torch.distributed.is_available() and torch.distributed.is_initialized()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.flags import distributed, is_compiling\n\n\n"
                        "def forward(x: torch.Tensor):\n    if is_compiling():\n        return x\n    if distributed():\n"
                        "        return x\n    if torch.jit.is_scripting():\n        return x\n    if x:\n        return x\n",
    }, strict=True)
    rows = sorted((Path(d.path).name, d.start.row) for d in found)
    assert rows == [("model.py", 13)]  # only `if x:`, a tensor


def test_a_function_annotated_to_return_a_python_scalar_returns_one(tmp_path: Path) -> None:
    # vLLM's `is_fp8(x) -> bool` compares `x` (a dtype, or a tensor's dtype) with fp8 dtypes. Some
    # callers pass GPU tensors; the declared `bool` is what every caller gets back.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": "import torch\n\n\ndef is_fp8(x: torch.dtype | torch.Tensor) -> bool:\n"
                        "    if isinstance(x, torch.Tensor):\n        x = x.dtype\n"
                        "    return x == torch.float8_e4m3fn or x == torch.float8_e4m3fnuz\n\n\n"
                        "def first(x: torch.Tensor):\n    return x[0]\n",
        "pkg/model.py": "import torch\n\nfrom pkg.utils import first, is_fp8\n\n\ndef forward(n):\n"
                        "    out = torch.zeros(n, device='cuda')\n    if is_fp8(out):\n        out = out.view(torch.int8)\n"
                        "    if first(out):\n        return out\n    return out\n",
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found)
    assert rows == [("model.py", 10, "SL104")]  # `if first(out):` reads a GPU element; `is_fp8` is a bool


def test_a_field_moved_to_a_device_it_does_not_name_is_not_taken_for_a_cpu_tensor(tmp_path: Path) -> None:
    # transformers' StaticLayer: `cumulative_length = torch.tensor(0)` at first, then
    # `.to(device)` once the layer knows its device. The two stores disagree (a `device` is taken for
    # a GPU), so the field's device is not known: moving it to the input's device is no proven
    # pageable copy; a field only ever stored on the CPU is.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/cache.py": "import torch\n\n\nclass Layer:\n    def __init__(self):\n"
                        "        self.length = torch.tensor(0)\n        self.steps = torch.tensor(0)\n\n"
                        "    def lazy_init(self, device):\n        self.length = self.length.to(device)\n",
        "pkg/model.py": "import torch\n\nfrom pkg.cache import Layer\n\n\ndef forward(layer: Layer, x: torch.Tensor):\n"
                        "    a = layer.length.to(x.device)\n    b = layer.steps.to(x.device)\n    return a, b\n",
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found)
    # The move itself copies from pageable memory once (the device parameter is taken for a GPU).
    assert rows == [("cache.py", 10, "SL303"), ("model.py", 8, "SL303")]


def test_a_like_factory_of_a_value_not_known_is_not_on_the_cpu(tmp_path: Path) -> None:
    # transformers' `_speculative_sampling`: `r = torch.rand_like(ratio)` where `ratio` is computed
    # from model outputs; the count it returns was taken for a CPU tensor, and every model's mask
    # preparation (`q_offset.to(device)`) for a pageable copy.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sample.py": "import torch\n\n\ndef accept(p, q):\n    ratio = p / q\n    r = torch.rand_like(ratio)\n"
                         "    return (r <= ratio).sum()\n",
        "pkg/model.py": "import torch\n\nfrom pkg.sample import accept\n\n\ndef forward(p, q, x: torch.Tensor):\n"
                        "    n = accept(p, q)\n    return n.to(x.device)\n",
    })
    assert [(Path(d.path).name, d.start.row, d.code) for d in found] == []


def test_a_field_declared_as_a_python_scalar_holds_one(tmp_path: Path) -> None:
    # vLLM's ROCm MLA builder: `_decode_causal: bool = True`, later stored from
    # `common_attn_metadata.causal`, which one model fills with a GPU tensor. The class declares a bool.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": "import torch\n\n\nclass Meta:\n    def __init__(self):\n"
                       "        self.causal = torch.ones((), device='cuda', dtype=torch.bool)\n",
        "pkg/builder.py": "from pkg.meta import Meta\n\n\nclass Builder:\n    causal: bool = True\n\n"
                          "    def update(self, meta: Meta):\n        self.causal = meta.causal\n"
                          "        self.mask = meta.causal\n",
        "pkg/use.py": "import torch\n\nfrom pkg.builder import Builder\n\n\n"
                      "def build(builder: Builder, x: torch.Tensor):\n    if not builder.causal:\n"
                      "        return x\n    if builder.mask:\n        return x\n    return x\n",
    })
    assert sorted((Path(d.path).name, d.start.row) for d in found) == [("use.py", 9)]


def test_data_processors_need_proof_of_a_gpu(tmp_path) -> None:
    # A feature extractor's tensors come from NumPy on the CPU unless the caller passes a device:
    # `x.device` of a tensor of unknown device is an accelerator only by convention, not enough there.
    # The same code in a model class, and a proven GPU tensor in the processor, are still reported.
    from fixture_support import check_small_project

    body = ("    def pad(self, x, lengths):\n        return torch.tensor(lengths, device=x.device)\n\n"
            "    def proven(self, lengths):\n        return torch.ones(3).cuda().tolist()\n")
    files = {
        "pkg/__init__.py": "",
        "pkg/base.py": "from transformers.feature_extraction_utils import FeatureExtractionMixin\n\n\n"
                       "class Extractor(FeatureExtractionMixin):\n    pass\n",
        "pkg/audio.py": "import torch\nfrom transformers import SequenceFeatureExtractor\n\nfrom pkg.base import Extractor\n\n\n"
                        f"class Direct(Extractor):\n{body}\n\nclass Model(torch.nn.Module):\n{body}\n\n"
                        f"class Library(SequenceFeatureExtractor):\n{body}",
    }

    def found(configured: str) -> set:
        diagnostics = check_small_project(tmp_path / configured[:8], files,
                                          pyproject=f"[tool.sync-lint]\ncpu-side-bases = {configured}\n")
        return {(d.start.row, d.code, d.confidence) for d in diagnostics if d.path.endswith("audio.py")}

    default = found('["FeatureExtractionMixin", "SequenceFeatureExtractor"]')
    assert (9, "SL304", "convention") not in default  # in the processor: a convention only
    assert (12, "SL102", "high") in default  # proven
    assert (17, "SL304", "convention") in default  # the same line in a model
    assert (25, "SL304", "convention") not in default  # a library base, by the name the file spells
    assert (9, "SL304", "convention") in found("[]")  # switched off


def test_the_default_cpu_side_bases_cover_transformers_processors() -> None:
    from sync_lint.config import Settings

    defaults = set(Settings().cpu_side_bases)
    # The bases transformers' own processors derive from, and those vLLM's processors spell.
    assert {"FeatureExtractionMixin", "ImageProcessingMixin", "ProcessorMixin", "BaseVideoProcessor",
            "PreTrainedTokenizerBase", "SequenceFeatureExtractor", "BaseImageProcessor"} <= defaults


def test_module_level_helpers_of_a_data_processor_module_need_proof_of_a_gpu(tmp_path) -> None:
    # An image processor's module-level helper (transformers' `prepare_coco_detection_annotation`)
    # builds tensors on `image.device`, the CPU unless a device is passed. A module that also defines
    # a model is not a processor's module.
    from fixture_support import check_small_project

    helper = "def annotate(image, boxes):\n    return torch.as_tensor([len(boxes)], device=image.device)\n"
    processor = "class Processor(BaseImageProcessor):\n    pass\n"
    model = "class Net(torch.nn.Module):\n    pass\n"
    head = "import torch\nfrom transformers.image_processing_utils import BaseImageProcessor\n\n\n"
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/processing.py": head + helper + "\n\n" + processor,
        "pkg/mixed.py": head + helper + "\n\n" + processor + "\n\n" + model,
    })
    found = {(d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in diagnostics}
    assert ("processing.py", 6, "SL304") not in found
    assert ("mixed.py", 6, "SL304") in found


def test_a_fix_that_moves_lines_keeps_a_processors_findings_where_they_were(tmp_path) -> None:
    # The fix adds `import torch`, which moves every later line: the processor's convention finding
    # must stay dropped (it is matched to its class in the text being checked, not by the line
    # numbers of the indexed file), or the fixer takes it for one its fix introduced and refuses it.
    from sync_lint import api

    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "pkg/__init__.py").write_text("")
    target = root / "pkg/m.py"
    target.write_text(
        "from torch import nn, tensor, zeros, nonzero\nfrom transformers import SequenceFeatureExtractor\n\n\n"
        "class Extractor(SequenceFeatureExtractor):\n    def pad(self, x, lengths):\n"
        "        return tensor(lengths, device=x.device)\n\n\n"
        "class Model(nn.Module):\n    def forward(self, mask):\n        counts = zeros(8, device=\"cuda\")\n"
        "        hit = nonzero(counts).squeeze(1)\n        counts[hit] = 0\n        return counts\n")
    plan = api.plan([str(root)], project=api.ProjectOptions(cache_dir=tmp_path / "cache"))
    report = api.run_files(plan, [str(target)], fix=api.FixMode(), jobs=1)
    assert not [e for r in report.results for e in r.errors]
    assert "counts[hit] = torch.full((), 0" in target.read_text()


def test_a_noqa_on_a_processors_convention_finding_is_not_unused(tmp_path) -> None:
    # Without the project the finding is reported, and the `# noqa` is what silences it: a project run
    # must not call that `noqa` unused (and offer to remove it).
    from fixture_support import check_small_project

    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/audio.py": "import torch\nfrom transformers import SequenceFeatureExtractor\n\n\n"
                        "class Extractor(SequenceFeatureExtractor):\n    def pad(self, x, lengths):\n"
                        "        return torch.tensor(lengths, device=x.device)  # noqa: SL304\n\n"
                        "    def size(self):\n        return 4  # noqa: SL304\n",
    })
    assert [(d.code, d.start.row) for d in diagnostics] == [("SL900", 10)]  # only the one with nothing to silence


def test_a_copy_out_of_a_pinned_buffer_filled_in_another_module_is_no_finding(tmp_path: Path) -> None:
    # `torch.cat(parts, out=pinned)` returns `pinned`: its caller's `non_blocking` copy does not wait.
    stage = ("import torch\n\n\ndef stage(parts, n: int):\n    buf = torch.empty(n, pin_memory=True)\n"
             "    return torch.cat(parts, out=buf)\n\n\ndef plain(n: int):\n"
             "    return torch.cat([torch.arange(n), torch.arange(n)])\n")
    send = ("from pkg.stage import plain, stage\n\n\ndef send(parts, n: int):\n"
            "    a = stage(parts, n).to('cuda', non_blocking=True)\n"
            "    b = plain(n).to('cuda', non_blocking=True)\n    return a, b\n")
    invert = ("import torch\n\nPIN = True\n\n\ndef invert(perm):\n"
              "    inv = torch.empty_like(perm, pin_memory=PIN)\n    return inv\n")
    send += ("\n\ndef reverse(n: int):\n    from pkg.invert import invert\n\n"
             "    return invert(torch.arange(n)).to('cuda', non_blocking=True)\n")
    send = "import torch\n" + send
    diagnostics = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/stage.py": stage, "pkg/send.py": send,
                                                 "pkg/invert.py": invert})
    rows = {(Path(d.path).name, d.start.row, d.code) for d in diagnostics}
    assert ("send.py", 6, "SL303") not in rows  # pinned: no finding
    assert ("send.py", 7, "SL303") in rows  # pageable `torch.arange` parts
    assert not any(name == "send.py" and row == 14 for name, row, _code in rows)  # `empty_like(..., pin_memory=)`


def test_a_model_loaded_at_run_time_returns_tensors_where_its_inputs_are(tmp_path: Path) -> None:
    # vLLM's runner: `self.model = get_model(...)` is declared `nn.Module` (its class comes from a registry
    # at run time). Called with GPU inputs it returns GPU tensors, which reach the sampler in another
    # module; evidence that rests on the module's unknown class is a convention.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/loader.py": "from torch import nn\n\n\ndef get_model(config) -> nn.Module:\n"
                         "    return REGISTRY[config.arch](config)\n",
        "pkg/sampler.py": "import torch\n\n\nclass Sampler(torch.nn.Module):\n"
                          "    def forward(self, logits: torch.Tensor):\n        return logits.argmax(-1).tolist()\n",
        "pkg/runner.py": "import torch\n\nfrom pkg.loader import get_model\nfrom pkg.sampler import Sampler\n\n\n"
                         "class Runner:\n    def __init__(self, config, device):\n"
                         "        self.input_ids = torch.zeros(64, dtype=torch.long, device=device)\n"
                         "        self.sampler = Sampler()\n        self.model = get_model(config)\n\n"
                         "    def step(self, n, prompt_ids: list[int]):\n"
                         "        hidden = self.model(input_ids=self.input_ids[:n], positions=None)\n"
                         "        logits = self.model.compute_logits(hidden)\n"
                         "        tokens = self.sampler(logits)\n"
                         "        host = self.model(torch.tensor(prompt_ids))\n"
                         "        return tokens, host.tolist()\n",
    })
    rows = {(Path(d.path).name, d.start.row, d.code): d for d in found}
    # and the call of the sampler in another module (SL601, off hot paths: each time the line runs)
    assert set(rows) == {("sampler.py", 6, "SL102"), ("runner.py", 16, "SL601")}
    finding = rows["sampler.py", 6, "SL102"]
    assert finding.confidence == "convention"
    assert any("compute_logits" in step.message for step in finding.evidence_steps)


def test_the_layers_of_a_module_list_return_where_their_input_is(tmp_path: Path) -> None:
    # A decoder's layer loop (`islice(self.layers, start, end)`, `self.layers[i]`): what comes out is on
    # the GPU when what goes in is, by convention (the layers' class is not followed through the list).
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/model.py": "from itertools import islice\n\nfrom torch import nn\n\n\nclass Decoder(nn.Module):\n"
                        "    def __init__(self, n):\n        super().__init__()\n"
                        "        self.layers = nn.ModuleList([nn.Identity() for _ in range(n)])\n\n"
                        "    def run(self, h):\n        for layer in islice(self.layers, 0, 2):\n            h = layer(h)\n"
                        "        return h\n\n    def first(self, h):\n        return self.layers[0](h)\n",
        "pkg/use.py": "import torch\n\nfrom pkg.model import Decoder\n\n\n"
                      "def step(d: Decoder, n):\n    x = torch.zeros(n, device='cuda')\n"
                      "    a = d.run(x).tolist()\n    b = d.first(x).tolist()\n"
                      "    c = d.run(torch.zeros(n)).tolist()\n    return a, b, c\n",
    })
    rows = {(Path(d.path).name, d.start.row, d.code): d.confidence for d in found}
    # Line 8 joins the loop's output with its input (the loop may not run), which is proven.
    assert set(rows) == {("use.py", 8, "SL102"), ("use.py", 9, "SL102")}
    assert rows["use.py", 9, "SL102"] == "convention"


def test_a_property_reads_as_what_its_getter_returns(tmp_path: Path) -> None:
    # `state.lens` is a property whose getter returns a GPU tensor (a setter of the same name does not
    # hide it); `ext.bank(x)` calls the module a property builds and caches, so its `forward` receives
    # what `__call__` passes: a tensor on the device the constructor names, the CPU here.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/state.py": "import torch\n\n\nclass State:\n    def __init__(self, n):\n"
                        "        self._lens = torch.zeros(n, device='cuda')\n\n"
                        "    @property\n    def lens(self):\n        return self._lens\n\n"
                        "    @lens.setter\n    def lens(self, value):\n        self._lens = value\n",
        "pkg/bank.py": "import torch\nfrom torch import nn\n\n\nclass Bank(nn.Module):\n"
                       "    def forward(self, x):\n        scale = torch.tensor([1.0, 2.0], device=x.device)\n"
                       "        return x * scale\n\n\nclass Extractor:\n    def __init__(self, device='cpu'):\n"
                       "        self._device = torch.device(device)\n        self._bank = None\n\n"
                       "    @property\n    def bank(self):\n        if self._bank is None:\n"
                       "            self._bank = Bank().to(self._device)\n        return self._bank\n\n"
                       "    def __call__(self, audio):\n        x = torch.from_numpy(audio).to(self._device)\n"
                       "        return self.bank(x)\n",
        "pkg/use.py": "from pkg.bank import Extractor\nfrom pkg.state import State\n\n\n"
                      "def step(state: State):\n    return state.lens.tolist()\n\n\n"
                      "def features(audio):\n    return Extractor(device='cpu')(audio)\n",
    })
    rows = {(Path(d.path).name, d.start.row, d.code) for d in found}
    assert ("use.py", 6, "SL102") in rows
    assert not any(name == "bank.py" for name, _row, _code in rows)  # `x.device` is the CPU


def test_a_device_parameter_annotated_as_a_string_is_what_its_callers_pass(tmp_path: Path) -> None:
    # vLLM's Parakeet extractor (`device: str = "cpu"`, called without one) and transformers' xLSTM
    # cache (`device: str | None = None`, built without one) make their tensors on the CPU; a caller
    # that passes the GPU makes the same line a copy.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ext.py": "import torch\n\n\nclass Extractor:\n    def __call__(self, raw, device: str = 'cpu'):\n"
                      "        return torch.tensor([len(r) for r in raw], device=device)\n\n\n"
                      "class Cache:\n    def __init__(self, n, device: str | None = None):\n"
                      "        self.offset = torch.tensor([0], dtype=int, device=device)\n\n\n"
                      "def lengths(raw, device: str):\n    return torch.tensor([len(r) for r in raw], device=device)\n",
        "pkg/use.py": "from pkg.ext import Cache, Extractor, lengths\n\n\n"
                      "def run(audios, n):\n    ext = Extractor()\n"
                      "    return ext(audios), Cache(n), lengths(audios, 'cuda')\n",
    })
    rows = {(Path(d.path).name, d.start.row, d.code) for d in found}
    assert rows == {("ext.py", 15, "SL304"), ("use.py", 6, "SL601")}  # the call of `lengths` syncs there


def test_as_tensor_of_an_object_exposing_device_memory_copies_nothing_from_the_host(tmp_path: Path) -> None:
    # vLLM's ROCm peer buffer: `torch.as_tensor(_DeviceBytes(ptr, n), device=device)` views device memory
    # through `__cuda_array_interface__`; an object with no such protocol is host data.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/peer.py": "import torch\n\n\nclass DeviceBytes:\n    def __init__(self, ptr: int, n: int):\n"
                       "        self.__cuda_array_interface__ = {'shape': (n,), 'data': (ptr, False)}\n\n\n"
                       "class Packed:\n    def __dlpack__(self, stream=None):\n        return None\n\n\n"
                       "class Rows:\n    def __init__(self, rows):\n        self.rows = rows\n\n\n"
                       "def view(ptr, n):\n    return torch.as_tensor(DeviceBytes(ptr, n), device='cuda')\n\n\n"
                       "def packed():\n    return torch.as_tensor(Packed(), device='cuda')\n\n\n"
                       "def rows(r):\n    return torch.as_tensor(Rows(r), device='cuda')\n",
    })
    rows = {(Path(d.path).name, d.start.row, d.code) for d in found}
    assert rows == {("peer.py", 28, "SL304")}


@pytest.mark.parametrize("project", ["device_tests"], indirect=True)
def test_a_device_test_around_a_call_is_evidence(project: Path, tmp_path: Path) -> None:
    report = check(project, cache=tmp_path / "cache")
    where, message = last_step(report, "pkg/reference.py", 13)
    assert where == ("pkg/dispatch.py", 36) and "`x.is_cuda` holds here" in message
    # An `else` arm: the step names the test it is the `else` of, not one nested in the `if` arm.
    where, message = last_step(report, "pkg/reference.py", 21)
    assert where == ("pkg/dispatch.py", 47) and "`t.device.type != 'cuda'` is false here" in message
    # A test that the tensor is on the CPU, failed: the accelerator (SGLang's `if not prev.is_cpu:`).
    where, message = last_step(report, "pkg/reference.py", 25)
    assert where == ("pkg/dispatch.py", 56) and "`t.is_cpu` is false here" in message


@pytest.mark.parametrize("project", ["off_cuda_callers"], indirect=True)
def test_a_function_called_only_off_cuda_is_left_to_strict(project: Path, tmp_path: Path) -> None:
    # SGLang's torch reference kernels: called behind `if use_torch_reference(buf.device):`, and by tests.
    report = check(project, cache=tmp_path / "cache", strict=True)
    assert diagnostic(report, "pkg/ops.py", 9).confidence == "strict"
    where, message = last_step(report, "pkg/ops.py", 9)
    assert where == ("pkg/ops.py", 23)
    assert "`reference_table` is called only where the code runs off CUDA, besides tests" in message
    # Called only by a function that runs only off CUDA: the step names the call there.
    where, message = last_step(report, "pkg/ops.py", 13)
    assert where == ("pkg/ops.py", 28) and "`reference_rows` is called only where the code runs off CUDA" in message
    # A dispatch helper that returns the first tensor argument's `is_cuda` from a loop, or raises.
    where, message = last_step(report, "pkg/ops.py", 44)
    assert where == ("pkg/ops.py", 40) and "`reference_by_inputs` is called only where the code runs off CUDA" in message
    # In the checked file itself: after `if not use_torch_reference(...): return`.
    where, message = last_step(report, "pkg/ops.py", 34)
    assert where == ("pkg/ops.py", 34) and "`use_torch_reference(...)` says the code runs off CUDA" in message
    # Called only from a `forward_cpu` (`cpu-functions`), which itself is reported with --strict only.
    where, message = last_step(report, "pkg/native.py", 7)
    assert where == ("pkg/moe.py", 13) and "`native_moe` is called only where the code runs off CUDA" in message
    assert not any(path == "pkg/moe.py" for path, _row, _code in findings(report))


@pytest.mark.parametrize("project", ["off_cuda_callers"], indirect=True)
def test_a_device_read_off_a_project_object_says_where_it_comes_from(project: Path, tmp_path: Path) -> None:
    # `self.cache.device` of a class built with `Cache("cuda")`: the steps to that call, not a guess.
    report = check(project, cache=tmp_path / "cache")
    found = diagnostic(report, "pkg/pools.py", 31)
    assert found.confidence == "high"
    assert "field `device` of `Cache` is stored from `device`" in found.evidence
    assert "not literally the CPU" not in found.evidence
    # A device nothing is known of is still taken for an accelerator, without such steps.
    assert "field `device`" not in diagnostic(report, "pkg/pools.py", 16).evidence


def test_a_module_of_a_project_base_is_built_on_its_builders_device(tmp_path: Path) -> None:
    # vLLM's dual-chunk rope derives from `CustomOp` (an `nn.Module` in another file) and fills its
    # caches in a helper of `__init__`; the loader builds it inside `with target_device:`. A class
    # that is no module gets no such builder, and its copy is reported.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/op.py": "from torch import nn\n\n\nclass CustomOp(nn.Module):\n    pass\n",
        "pkg/rope.py": "import torch\n\nfrom pkg.op import CustomOp\n\n\nclass Rope(CustomOp):\n"
                       "    def __init__(self, n):\n        super().__init__()\n        self.cache = self._cache(n)\n\n"
                       "    def _cache(self, n):\n        return torch.arange(n).to('cuda')\n\n\n"
                       "class Table:\n    def __init__(self, n):\n        self.cache = self._cache(n)\n\n"
                       "    def _cache(self, n):\n        return torch.arange(n).to('cuda')\n",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == {("rope.py", 20, "SL303")}


_LAYOUT = """import torch


def permutation(n):
    perm = torch.empty(n, dtype=torch.long)
    perm[torch.arange(n)] = torch.arange(n)
    return perm


def permute_on_load(param, perm):
    def gather(t):
        return t.index_select(0, perm.to(t.device))

    param.loader = gather


def permute_now(q):
    return q[:, permutation(q.shape[1]).to(q.device)]
"""


@pytest.mark.parametrize("base,rows", [
    ("nn.Module", {("layout.py", 18, "SL303"), ("attn.py", 14, "SL303")}),
    ("object", {("layout.py", 12, "SL303"), ("layout.py", 18, "SL303"), ("attn.py", 10, "SL303"),
                ("attn.py", 14, "SL303")}),
])
def test_a_helper_called_while_a_module_is_built_allocates_on_its_builders_device(tmp_path: Path, base: str,
                                                                                  rows: set) -> None:
    # vLLM's DeepSeek attention makes its permutation with `q_fused_permutation(...)` in `__init__`, a
    # module-level helper in another file with no `device=`: the loader builds the layer inside
    # `with target_device:`, so the helper allocates on the GPU there, and moving its result copies
    # nothing, in the weight loader it is handed to or in `__init__` itself. The same helper called
    # at run time (`permute_now`, `forward`) makes a CPU tensor, and so does any call from a class
    # that is no module.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/layout.py": _LAYOUT,
        "pkg/attn.py": "import torch\nfrom torch import nn\n\nfrom pkg.layout import permutation, permute_now, permute_on_load\n"
                       "\n\n"
                       f"class Attn({base}):\n    def __init__(self, w, n):\n"
                       "        permute_on_load(w, permutation(n))\n        self.perm = permutation(n).to('cuda')\n"
                       "        self.n = n\n\n    def forward(self, x):\n"
                       "        return x[:, permutation(self.n).to('cuda')]\n\n\nRUN_TIME = [permute_now]\n",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows


@pytest.mark.parametrize("device,rows", [("", set()), ("'cuda'", {("m.py", 5, "SL303")})])
def test_a_device_spelled_as_a_string_names_the_same_device(tmp_path: Path, device: str, rows: set) -> None:
    # vLLM's Parakeet extractor: `device = str(torch.device(device))`, with `device="cpu"` by default
    # and no caller passing one, makes its mel filters on the CPU: moving them there copies nothing.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/m.py": "import numpy as np\nimport torch\n\ndef mel(device: str):\n"
                    "    return torch.from_numpy(np.ones(3)).to(device=device)\n\n"
                    "def run(device: str = 'cpu'):\n    device = str(torch.device(device))\n    return mel(device)\n\n"
                    f"def use():\n    return run({device})\n",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows


def test_a_parameter_field_is_a_tensor_of_its_modules_device(tmp_path: Path) -> None:
    # A field stored from `nn.Parameter(...)` in another file is a tensor that moves with its module:
    # not a Python value (nothing to report even with --strict), nor the CPU it was made on. Read
    # through another object than the module's own `self` (a weight loader's `param`), its device is
    # not known.
    files = {
        "pkg/__init__.py": "",
        "pkg/det.py": "import torch\nfrom torch import nn\n\n\nclass Det(nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.scale = nn.Parameter(torch.ones(1))\n",
        "pkg/use.py": "from pkg.det import Det\n\n\ndef f(d: Det, x):\n    return d.scale.item(), d.scale.to(x.device)\n",
    }
    assert check_small_project(tmp_path / "default", files) == []
    found = check_small_project(tmp_path / "strict", files, strict=True)
    assert {(Path(d.path).name, d.start.row, d.code, d.confidence) for d in found} == {
        ("use.py", 5, "SL101", "strict")}


def test_the_index_takes_a_constructor_factory_for_the_builders_device_too(tmp_path: Path) -> None:
    # transformers' relative position embeddings call `self.extend_pe(torch.tensor(0.0)...)` in `__init__`
    # and `self.extend_pe(hidden_states, self.pe)` in `forward`. Only `forward` passes `pe`, so the branch
    # that moves `pe` to `x.device` never sees the constructor's `x`: that `x` is not a CPU tensor to the
    # index either, and the move is no copy to the host.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/m.py": "import torch\nfrom torch import nn\n\n\nclass RelPositionalEmbedding(nn.Module):\n"
                    "    def __init__(self, max_len):\n        super().__init__()\n"
                    "        self.pe = nn.Buffer(self.extend_pe(torch.tensor(0.0).expand(1, max_len)))\n\n"
                    "    def extend_pe(self, x, pe=None):\n        if pe is not None:\n"
                    "            if pe.size(1) >= x.size(1):\n                if pe.device != x.device:\n"
                    "                    pe = pe.to(dtype=x.dtype, device=x.device)\n                return pe\n"
                    "        out = torch.zeros(x.size(1), 4)\n"
                    "        return out.unsqueeze(0).to(device=x.device, dtype=x.dtype)\n\n"
                    "    def forward(self, hidden_states):\n        self.pe = self.extend_pe(hidden_states, self.pe)\n"
                    "        return self.pe\n",
    })
    assert not any(d.code == "SL103" for d in found)


def test_a_parameter_the_call_leaves_out_takes_its_default(tmp_path: Path) -> None:
    # vLLM's FP4 indexer test: `_scale_raw_choices(name)` leaves `device=None`, so the table it returns
    # is on the CPU there, though another call passes `device="cuda"`. A call through `*args` or
    # `**kwargs` may pass it: nothing is assumed then.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/helpers.py": "import torch\n\n\ndef choices(name, *, device=None):\n"
                          "    return torch.arange(16, 89, device=device)\n",
        "pkg/use.py": "import torch\n\nfrom pkg.helpers import choices\n\n\n"
                      "def on_host():\n    raw = choices('mxfp4')\n    idx = torch.randint(3, (2,))\n"
                      "    return raw[idx]\n\n\n"
                      "def on_gpu():\n    raw = choices('mxfp4', device='cuda')\n    idx = torch.randint(3, (2,))\n"
                      "    return raw[idx]\n\n\n"
                      "def forwarded(**kwargs):\n    raw = choices('mxfp4', **kwargs)\n"
                      "    idx = torch.randint(3, (2,))\n    return raw[idx]\n",
    }, strict=True)
    rows = {(d.start.row, d.code) for d in found if Path(d.path).name == "use.py"}
    assert not any(row == 9 for row, _code in rows)  # CPU table, CPU index: even --strict says nothing
    assert (15, "SL302") in rows
    assert (21, "SL302") in rows  # `**kwargs` may pass the GPU device


_UNREFERENCED_OPS = """import torch

__all__ = ["listed"]


def dead(lens_gpu):
    return lens_gpu.tolist()


def dead_proven(n):
    return torch.zeros(n, device="cuda").tolist()


def only_from_dead(lens_gpu):
    return lens_gpu.tolist()


def dead_caller(lens_gpu):
    return only_from_dead(lens_gpu)


def ping(lens_gpu):
    return lens_gpu.tolist(), pong


def pong(lens_gpu):
    return lens_gpu.tolist(), ping


def live(lens_gpu):
    return lens_gpu.tolist()


def listed(lens_gpu):
    return lens_gpu.tolist()
"""


_ALWAYS = {("ops.py", 11, "SL102"), ("ops.py", 31, "SL102"), ("ops.py", 35, "SL102"), ("script.py", 2, "SL102"),
           ("use.py", 5, "SL601")}
_UNREFERENCED = {("ops.py", 7, "SL102"), ("ops.py", 15, "SL102"), ("ops.py", 23, "SL102"), ("ops.py", 27, "SL102")}


@pytest.mark.parametrize("config,strict,rows", [
    ("", False, _ALWAYS),
    ("", True, _ALWAYS | _UNREFERENCED),
    ("[tool.sync-lint]\nreport-unreferenced = true\n", False, _ALWAYS | _UNREFERENCED),
])
def test_a_convention_in_a_function_no_code_that_runs_mentions_is_reported_only_with_strict(
        tmp_path: Path, config: str, strict: bool, rows: set) -> None:
    # Read one by one, most findings whose GPU is only a naming convention, in module-level functions
    # that nothing in vLLM or transformers mentions, were code that never runs (reference
    # implementations, test helpers): the convention stands for what callers pass, and there are none.
    # A GPU the function proves itself is still reported; so is a function that a live function, a
    # string (`__all__`) or a module nothing imports (a script: any function may be what runs) holds.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": _UNREFERENCED_OPS,
        "pkg/use.py": "from pkg import ops\n\n\ndef step(b_gpu):\n    return ops.live(b_gpu)\n",
        "pkg/script.py": "def tool(x_gpu):\n    return x_gpu.tolist()\n",
    }, pyproject=config, strict=strict)
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows
    for d in found:
        if (Path(d.path).name, d.start.row, d.code) in _UNREFERENCED and not config:
            assert d.confidence == "strict"
            assert "no code that runs in the project mentions" in (d.evidence or "")
        else:
            assert d.confidence != "strict"


_NONE_BRANCHES = """import torch


def pool(x, max_len=None):
    if max_len is None:
        max_len = x.max().item()
    return torch.zeros(max_len)


def pooled(x, mask=None):
    if mask is not None:
        return x
    return x.sum().item()
"""


@pytest.mark.parametrize("extra,strict,rows", [
    ("", False, set()),
    ("", True, {("ops.py", 6, "SL101"), ("ops.py", 13, "SL101")}),
    ("    pool(x)\n", False, {("ops.py", 6, "SL101")}),
    ("    pooled(x, None)\n", False, {("ops.py", 13, "SL101")}),
    ("    pool(x, batch.limit)\n", False, {("ops.py", 6, "SL101")}),
    ("    through(x, n * 2)\n", False, set()),
    ("    through(x, n)\n", False, {("ops.py", 6, "SL101")}),
    ("    through(x, batch.limit)\n", False, {("ops.py", 6, "SL101")}),
    ("    pool(x, x.shape[0])\n    pool(x, x.size(0))\n", False, set()),
    ("    batch.hooks.append(pool)\n", False, {("ops.py", 6, "SL101")}),  # may be called unseen
])
def test_a_block_that_runs_only_when_a_parameter_is_none_is_reported_only_with_strict_when_every_call_passes_one(
        tmp_path: Path, extra: str, strict: bool, rows: set) -> None:
    # Read one by one, many false findings sat in `if max_len is None:` blocks whose every caller
    # passes a value (transformers' `_length_to_mask`, vLLM's `decode_attention_fwd` with `v_scale`).
    # A value is certainly not None when it is arithmetic, a literal, a display, what torch, a builtin
    # or a constructor returns, or a caller's parameter that its own callers pass such a value;
    # an attribute (`batch.limit`) may be None, and a call that leaves the default passes None.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": _NONE_BRANCHES,
        "pkg/use.py": "import torch\n\nfrom pkg.ops import pool, pooled\n\n\n"
                      "def through(x, limit):\n    return pool(x, limit)\n\n\n"
                      "def step(n, batch):\n    x = torch.zeros(n, device='cuda')\n"
                      "    pool(x, max_len=n + 1)\n    pool(x, len([1]))\n    pooled(x, mask=torch.ones(n))\n"
                      "    through(x, 3)\n" + extra,
    }, strict=strict)
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows
    for d in found:
        assert (d.confidence == "strict") == (strict and not extra)
        if d.confidence == "strict":
            assert "runs only when" in (d.evidence or "")


@pytest.mark.parametrize("strict", [False, True])
def test_a_test_that_passes_none_does_not_make_a_fallback_run_in_deployed_code(tmp_path: Path, strict: bool) -> None:
    # Deployed code always passes `max_len`; only a unit test leaves it None, to exercise the fallback.
    files = {
        "pkg/__init__.py": "",
        "pkg/ops.py": _NONE_BRANCHES,
        "pkg/use.py": "import torch\n\nfrom pkg.ops import pool\n\n\n"
                      "def step(n):\n    pool(torch.zeros(n, device='cuda'), max_len=n + 1)\n",
        "tests/test_ops.py": "import torch\n\nfrom pkg.ops import pool\n\n\n"
                             "def test_pool():\n    pool(torch.zeros(3, device='cuda'))\n",
    }
    found = {(Path(d.path).name, d.start.row, d.confidence) for d in check_small_project(tmp_path, files, strict=strict)
             if d.code == "SL101"}
    assert found == ({("ops.py", 6, "strict")} if strict else set())
    # A deployed call that leaves it None runs the fallback.
    files["pkg/other.py"] = "import torch\n\nfrom pkg.ops import pool\n\n\ndef run():\n    pool(torch.ones(2, device='cuda'))\n"
    found = {(Path(d.path).name, d.start.row, d.confidence) for d in check_small_project(tmp_path / "again", files)
             if d.code == "SL101"}
    assert found == {("ops.py", 6, "high")}


_FIELD_ARGUMENT_FILES = {
    "pkg/__init__.py": "",
    "pkg/ops.py": _NONE_BRANCHES,
    "pkg/meta.py": "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\nclass Meta:\n"
                   "    limit: int\n",
    "pkg/use.py": "import torch\n\nfrom pkg.meta import Meta\nfrom pkg.ops import pool\n\n\n"
                  "def step(n, sizes):\n    meta = Meta(limit=len(sizes))\n"
                  "    pool(torch.zeros(n, device='cuda'), meta.limit)\n",
}


@pytest.mark.parametrize("other,rows", [
    ("", set()),
    # Another construction may leave the field None: the fallback can run.
    ("def other(x, limit):\n    return Meta(limit=limit)\n", {("ops.py", 6, "SL101")}),
])
def test_a_field_every_construction_fills_is_a_value_a_call_passes(tmp_path: Path, other: str, rows: set) -> None:
    # SGLang's Kimi-K3-VL passes `grid_thw_list=metadata.grid_thw_list`, a required field of a frozen
    # dataclass every construction fills, so its `grid_thws.tolist() if grid_thw_list is None` fallback
    # never runs. An attribute of an object of unknown class stays maybe None (the test above).
    files = {**_FIELD_ARGUMENT_FILES, "pkg/meta.py": _FIELD_ARGUMENT_FILES["pkg/meta.py"] + "\n\n" + other}
    found = {(Path(d.path).name, d.start.row, d.code) for d in check_small_project(tmp_path, files)}
    assert found == rows


_FALLBACK_FILES = {
    "pkg/__init__.py": "",
    "pkg/rope.py": "import torch\n\n\ndef rope(frame_indices, device):\n"
                   "    return frame_indices.to(device=device, dtype=torch.float32)\n",
    "pkg/model.py": "import torch\n\nfrom pkg.rope import rope\n\n\ndef embed(x, indices=None):\n"
                    "    if indices is None:\n        indices = torch.arange(0, 4).unsqueeze(0)\n"
                    "    return rope(indices, x.device)\n",
    "pkg/stage.py": "import torch\n\nfrom pkg.model import embed\n\n\ndef run(n, batch):\n"
                    "    return embed(torch.zeros(n, device='cuda'), indices=batch.indices * 1)\n",
}


def test_a_fallback_for_a_parameter_every_call_passes_is_not_what_the_function_passes_on(tmp_path: Path) -> None:
    # SGLang's Helios transformer: `if indices_hidden_states is None:` builds host indices, and passes them
    # to its rotary embedding, which moves them to the device. Where every call passes indices, the host
    # ones are never made, and the embedding's `.to(device)` is not a pageable copy.
    found = {(Path(d.path).name, d.start.row, d.code) for d in check_small_project(tmp_path, _FALLBACK_FILES)}
    assert ("rope.py", 5, "SL303") not in found
    # A deployed call that leaves them None makes them.
    files = {**_FALLBACK_FILES, "pkg/other.py": "import torch\n\nfrom pkg.model import embed\n\n\ndef go(n):\n"
                                                 "    return embed(torch.zeros(n, device='cuda'))\n"}
    found = {(Path(d.path).name, d.start.row, d.code) for d in check_small_project(tmp_path / "again", files)}
    assert ("rope.py", 5, "SL303") in found


def test_a_parameter_given_a_fallback_when_none_is_not_none_after_it(tmp_path: Path) -> None:
    # `if ids is None: ids = torch.arange(3)` then `count(x, ids)`: `count`'s own None branch never runs.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": "import torch\n\n\ndef count(x, ids=None):\n    if ids is None:\n"
                      "        return x.sum().item()\n    return ids.numel()\n",
        "pkg/use.py": "import torch\n\nfrom pkg.ops import count\n\n\ndef step(x, ids=None):\n"
                      "    if ids is None:\n        ids = torch.arange(3)\n    return count(x, ids)\n\n\n"
                      "def run(n):\n    return step(torch.zeros(n, device='cuda'))\n",
    })
    assert not any(Path(d.path).name == "ops.py" for d in found)


def test_a_function_returning_a_tuple_or_on_an_early_exit_a_tensor_is_unpacked_as_the_tuple(tmp_path: Path) -> None:
    # SGLang's DeepSeek layers: `forward_prepare` returns `hidden_states[0]` for an empty batch and a
    # 4-tuple otherwise, which `forward_core` unpacks; its attention method is an enum, not a GPU tensor.
    layer = ("import enum\n\nimport torch\n\n\nclass Method(enum.IntEnum):\n    MHA = 1\n\n\n"
             "class Layer:\n    def prepare(self, hidden_states):\n        if hidden_states.shape[0] == 0:\n"
             "            return hidden_states[0]\n        return None, Method.MHA, hidden_states * 2, 3\n\n"
             "    def core(self, state):\n        out, method, h, n = state\n        if method == Method.MHA:\n"
             "            return h\n        return h.sum().item()\n\n"
             "    def forward(self, x):\n        return self.core(self.prepare(x))\n\n\n"
             "def run(n):\n    return Layer().forward(torch.zeros(n, 4, device='cuda'))\n")
    found = {(Path(d.path).name, d.start.row, d.code)
             for d in check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/layer.py": layer})}
    # The tuple's third element is still the GPU tensor it holds.
    assert found == {("layer.py", 20, "SL101")}


def test_a_field_declared_a_project_class_is_that_class_over_a_tensor_by_convention(tmp_path: Path) -> None:
    # SGLang's `ModelRunnerOutput.logits_output: Union[LogitsProcessorOutput, PPProxyTensors]`, stored from
    # model outputs the index takes for tensors by convention only: `if logits_output:` tests an object.
    files = {
        "pkg/__init__.py": "",
        "pkg/out.py": "import dataclasses\nfrom typing import Union\n\n\nclass LogitsOutput:\n    pass\n\n\n"
                      "@dataclasses.dataclass\nclass RunnerOutput:\n    logits_output: Union[LogitsOutput, None]\n"
                      "    ready: bool\n",
        "pkg/runner.py": "from pkg.out import RunnerOutput\n\n\ndef forward(result_gpu):\n"
                         "    return RunnerOutput(result_gpu, False)\n\n\n"
                         "def step(result_gpu):\n    out = forward(result_gpu)\n    if out.logits_output:\n"
                         "        return 1\n    return out.ready\n",
    }
    assert check_small_project(tmp_path, files) == []
    # A proven GPU tensor stored there is still one: the declaration may be out of date.
    files["pkg/runner.py"] = files["pkg/runner.py"].replace(
        "RunnerOutput(result_gpu, False)", "RunnerOutput(result_gpu.to('cuda'), False)")
    assert [(Path(d.path).name, d.start.row, d.code) for d in check_small_project(tmp_path / "again", files)] == [
        ("runner.py", 10, "SL104")]


_UNSET_BRANCHES = """import torch

from pkg.sync import drain


def loss(x, aux=None, check=False):
    if aux is not None:
        total = x.sum().item()
    if check:
        x.max().item()
    if aux is not None and check:
        drain(x)
    return x.mean()


def scale(x, factor=None):
    return x * x.sum().item() if factor is not None else x
"""


@pytest.mark.parametrize("extra,strict,rows", [
    ("", False, set()),
    ("", True, {("ops.py", 8, "SL101"), ("ops.py", 10, "SL101"), ("ops.py", 12, "SL601"), ("ops.py", 17, "SL101")}),
    ("    loss(x, check=True)\n", False, {("ops.py", 10, "SL101")}),
    ("    loss(x, aux=x)\n", False, {("ops.py", 8, "SL101")}),
    ("    loss(x, aux=batch.aux, check=batch.check)\n", False,
     {("ops.py", 8, "SL101"), ("ops.py", 10, "SL101"), ("ops.py", 12, "SL601")}),
    ("    scale(x, x.sum())\n", False, {("ops.py", 17, "SL101")}),
    ("    through(x, x)\n", False, {("ops.py", 8, "SL101")}),
    ("    through(x)\n", False, set()),
    ("    callbacks.append(loss)\n", False, {("ops.py", 8, "SL101"), ("ops.py", 10, "SL101"), ("ops.py", 12, "SL601")}),
])
def test_a_block_that_runs_only_when_a_parameter_is_set_is_reported_only_with_strict_when_no_call_sets_it(
        tmp_path: Path, extra: str, strict: bool, rows: set) -> None:
    # Read one by one, false findings sat in `if auxiliary_predictions is not None:` and `if check:`
    # blocks that every caller leaves at their None or False default. A caller's own parameter is
    # followed up when its callers leave it unset too; a function passed around as a value
    # (`callbacks.append(loss)`) may be called where the index cannot see, so nothing is proven.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sync.py": "def drain(x):\n    return x.sum().item()\n",
        "pkg/ops.py": _UNSET_BRANCHES,
        "pkg/use.py": "import torch\n\nfrom pkg.ops import loss, scale\n\n\n"
                      "def through(x, aux=None):\n    return loss(x, aux)\n\n\n"
                      "def step(n, batch, callbacks):\n    x = torch.zeros(n, device='cuda')\n"
                      "    loss(x)\n    loss(x, None, False)\n    loss(x, check=False)\n    scale(x)\n"
                      "    through(x)\n" + extra,
    }, strict=strict)
    assert {(Path(d.path).name, d.start.row, d.code) for d in found if Path(d.path).name == "ops.py"} == rows
    for d in found:
        if Path(d.path).name == "ops.py":
            assert (d.confidence == "strict") == (strict and not extra)
            if d.confidence == "strict":
                assert "and every known call of" in (d.evidence or "")


_PIPELINE = """class Pipeline:
    def forward(self, batch):
        return batch

    def run(self, data, iterator):
        return iterator(data, self.forward)
"""
_TRACED_BASE = """from torch import nn


class Traced(nn.Module):
    def forward(self, x):
        return x

    def trace(self, tracer):
        return tracer(self.forward)
"""


_PLAIN_BASE = "from torch import nn\n\n\nclass Traced(nn.Module):\n    pass\n"


@pytest.mark.parametrize("extra,rows", [
    ({"pkg/traced.py": _PLAIN_BASE}, set()),
    ({"pkg/traced.py": _PLAIN_BASE, "pkg/pipeline.py": _PIPELINE}, set()),  # another class's `forward` handed on
    # The base class hands on `self.forward`, which is the subclass's own `forward` on its instances.
    ({"pkg/traced.py": _TRACED_BASE}, {("model.py", 10, "SL101")}),
    # A class's method handed on by name; an extension's `forward` is no method of the hierarchy.
    ({"pkg/traced.py": _PLAIN_BASE, "pkg/hooks.py": "from pkg.model import Model\n\nHOOKS = [Model.forward]\n"},
     {("model.py", 10, "SL101")}),
    ({"pkg/traced.py": _PLAIN_BASE, "pkg/hooks.py": "import kernels\n\nHOOKS = [kernels.forward]\n"}, set()),
])
def test_a_method_handed_on_by_its_own_hierarchy_proves_nothing_by_its_calls(tmp_path: Path, extra: dict,
                                                                             rows: set) -> None:
    # `self.forward` handed on as a value (a tracer, an iterator's callback) may be called with any
    # arguments; that says nothing about the `forward` of a class outside that class's hierarchy.
    # (A module handing on a method it does not define, one its class inherits, is not seen.)
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/model.py": "import torch\nfrom torch import nn\n\nfrom pkg.traced import Traced\n\n\n"
                        "class Model(Traced):\n"
                        "    def forward(self, x, aux=None):\n        if aux is not None:\n"
                        "            x.sum().item()\n        return x\n",
        "pkg/use.py": "import torch\n\nfrom pkg.model import Model\n\n\nclass Runner:\n"
                      "    def __init__(self):\n        self.model = Model()\n\n"
                      "    def step(self, n):\n        x = torch.zeros(n, device='cuda')\n"
                      "        return self.model(x)\n",
        **extra,
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows


def test_a_cpu_platform_method_is_reported_only_in_strict_mode(tmp_path: Path, monkeypatch) -> None:
    # `Rotary.forward_cpu` is dispatched to with the GPU positions the model passes (as vLLM's
    # `CustomOp` does on every platform), but it runs only on a CPU machine (`cpu-functions`).
    root = copy_project("dispatched_forward", tmp_path)
    monkeypatch.chdir(root)
    plan = api.plan(["."], strict=True, target_torch_version=FIXTURE_TORCH,
                    project=api.ProjectOptions(cache_dir=tmp_path / "cache"))
    report = api.run(plan, ["."], jobs=1)
    found = {(Path(d.path).name, d.start.row): d for r in report.results for d in r.diagnostics if d.code == "SL101"}
    cpu = found[("layers.py", 16)]
    assert cpu.confidence == "strict" and "`forward_cpu` runs on the CPU platform" in cpu.evidence
    assert found[("layers.py", 8)].confidence != "strict"  # `forward_native` runs on every platform


@pytest.mark.parametrize("project", ["device_module"], indirect=True)
def test_wait_evidence_names_where_the_event_was_made(project: Path, tmp_path: Path) -> None:
    """SL401 on an event another module made says why it is one, with that module's line."""
    report = check(project, cache=tmp_path / "cache")
    waited = diagnostic(report, "pkg/other.py", 5)
    assert waited.confidence == "high"
    assert last_place(waited) == ("pkg/worker.py", 8)  # `self.done = ...Event()`
    assert "`worker.done` is a torch event: field `done` of `Worker`" in waited.evidence


def test_a_text_annotation_wins_over_callers_and_stores_taken_for_tensors(tmp_path):
    # SGLang's component loaders: `self.component_type: str | None = None` in `__init__`, and
    # `component_name: str` parameters, which the inference had filled with a state dict's entries.
    files = {
        "pkg/__init__.py": "",
        "pkg/loader.py": (
            "import torch\n\n\n"
            "class Loader:\n"
            "    def __init__(self):\n"
            "        self.kind: str | None = None\n\n"
            "    def name(self, fallback):\n"
            "        return self.kind or fallback\n\n\n"                        # 9: a declared str
            "def describe(label: str, n):\n"
            "    if label:\n"                                                    # 13: a declared str
            "        return n\n"
            "    return 0\n\n\n"
            "def run(n, loader: Loader):\n"
            "    t = torch.ones(n, device='cuda')\n"
            "    loader.kind = t.sum()\n"
            "    return describe(t.sum(), n), loader.name('x')\n\n\n"
            "def untyped(label, n):\n"
            "    if label:\n"                                                    # 25: no annotation says
            "        return n\n"
            "    return describe(label, n)\n\n\n"
            "def run_untyped(n):\n"
            "    return untyped(torch.ones(n, device='cuda').sum(), n)\n"
        ),
        "pkg/holder.py": (
            "class Holder:\n"
            "    def __init__(self, label: str):\n"
            "        self.label = label\n"
        ),
        "pkg/use.py": (
            "import torch\n\n"
            "from pkg.holder import Holder\n\n\n"
            "def check(holder: Holder):\n"
            "    return 1 if holder.label else 0\n\n\n"                        # 7: stored from a declared str
            "def hold(n):\n"
            "    return check(Holder(torch.ones(n, device='cuda').sum()))\n"
        ),
    }
    rows = {(Path(d.path).name, d.start.row, d.code) for d in check_small_project(tmp_path, files)}
    assert ("loader.py", 9, "SL104") not in rows
    assert ("loader.py", 13, "SL104") not in rows
    assert ("loader.py", 25, "SL104") in rows
    assert ("use.py", 7, "SL104") not in rows


@pytest.mark.parametrize("project", ["off_cuda_callers"], indirect=True)
def test_a_function_that_stops_being_a_predicate_brings_the_findings_back(project: Path, tmp_path: Path) -> None:
    # Whether a tested call is of a predicate is read from a name table first (most are of none):
    # an edit that changes the answer reaches the cached results of the files that test it.
    cache = tmp_path / "cache"
    rows = {(path, row) for path, row, _code in findings(check(project, cache=cache))}
    assert ("pkg/ops.py", 34) not in rows and ("pkg/ops.py", 9) not in rows
    dispatch = project / "pkg" / "_dispatch.py"
    predicate = dispatch.read_text()
    dispatch.write_text(predicate.replace('    return device.type != "cuda"', '    return device.index == 1'))
    rows = {(path, row) for path, row, _code in findings(check(project, cache=cache))}
    assert {("pkg/ops.py", 34), ("pkg/ops.py", 9)} <= rows
    dispatch.write_text(predicate)
    rows = {(path, row) for path, row, _code in findings(check(project, cache=cache))}
    assert ("pkg/ops.py", 34) not in rows and ("pkg/ops.py", 9) not in rows


@pytest.mark.parametrize("project", ["constructors"], indirect=True)
def test_a_field_moved_to_the_host_in_place_is_where_it_is_made(project: Path, tmp_path: Path) -> None:
    # `self.lens = to_host(self.lens)` is the field's own value moved later, not a host source that
    # outvotes the GPU constructors; the evidence says a read after the move does not wait.
    report = check(project, cache=tmp_path / "cache")
    found = diagnostic(report, "pkg/moved.py", 36)
    assert found.confidence == "convention"
    assert "moved to the host in place by `to_host(self.lens)`" in found.evidence
    assert "a read after that does not wait" in found.evidence


@pytest.mark.parametrize("project", ["constructors"], indirect=True)
def test_a_fallback_for_a_field_every_construction_supplies_is_left_to_strict(project: Path, tmp_path: Path) -> None:
    # `seq_lens_cpu = self.seq_lens_cpu; if seq_lens_cpu is None: ... self.seq_lens.tolist()`, where each
    # construction passes a host list: reported only with `--strict`, which says why.
    report = check(project, cache=tmp_path / "cache", strict=True)
    for row in (23, 29):
        found = diagnostic(report, "pkg/mirror.py", row)
        assert found.confidence == "strict"
        assert "every value the project gives that field is one" in found.evidence


def test_a_truth_test_of_an_object_and_a_gpu_comparison_reads_the_comparison(tmp_path: Path) -> None:
    # vLLM's runner before #25884: `fits = metadata and (metadata.seq_lens.max() + k <= n)`, then
    # `if fits:`. Where `metadata` is None the test reads None; elsewhere it reads the GPU comparison.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": (
            "from dataclasses import dataclass\nimport torch\n\n\n@dataclass\nclass Meta:\n"
            "    seq_lens: torch.Tensor\n"
        ),
        "pkg/runner.py": (
            "import torch\nfrom pkg.meta import Meta\n\n\nclass Runner:\n"
            "    def __init__(self):\n        self.seq_lens = torch.zeros(8, device='cuda')\n\n"
            "    def prepare(self, spec: bool):\n        if not spec:\n            return None\n"
            "        return Meta(seq_lens=self.seq_lens)\n\n"
            "    def step(self, spec: bool, n: int):\n        meta = self.prepare(spec)\n"
            "        fits = meta and (meta.seq_lens.max() + 1 <= n)\n"
            "        if fits:\n            return 1\n        return 0\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("runner.py")] == [("SL104", 17)]


def test_a_buffer_made_in_another_module_keeps_its_rank(tmp_path: Path) -> None:
    # vLLM's model runner v2 before #34667: `input_buffers.query_start_loc[0] = 0` on a field that
    # `InputBuffers.__init__` makes with `torch.zeros(max_num_reqs + 1, ..., device=device)`. A store into
    # one element of a 1-D tensor waits; into a row of a 2-D one it does not, so the rank decides.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/buffers.py": (
            "import torch\n\n\nclass InputBuffers:\n"
            "    def __init__(self, max_num_reqs: int, width: int):\n"
            "        self.query_start_loc = torch.zeros(max_num_reqs + 1, dtype=torch.int32, device='cuda')\n"
            "        self.table = torch.zeros(max_num_reqs, width, dtype=torch.int32, device='cuda')\n"
        ),
        "pkg/batch.py": (
            "from pkg.buffers import InputBuffers\n\n\n"
            "def make_dummy(input_buffers: InputBuffers):\n"
            "    input_buffers.query_start_loc[0] = 0\n"
            "    input_buffers.table[0] = 0\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("batch.py")] == [("SL301", 5)]


def test_super_calls_reach_the_next_class_in_the_mro(tmp_path: Path) -> None:
    # vLLM's Gemma 4 before #39234: `embed_input_ids` moved the mask to the GPU and handed it to
    # `super().embed_input_ids(...)`, the interface's, which selects with it.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/interfaces.py": (
            "import torch\n\n\nclass SupportsMultiModal:\n"
            "    def embed_input_ids(self, input_ids, *, is_multimodal=None):\n"
            "        embeds = input_ids.float()\n"
            "        if is_multimodal is not None:\n"
            "            return embeds[is_multimodal]\n"
            "        return embeds\n"
        ),
        "pkg/model.py": (
            "import torch\nfrom pkg.interfaces import SupportsMultiModal\n\n\n"
            "class Model(SupportsMultiModal):\n"
            "    def embed_input_ids(self, input_ids, *, is_multimodal=None):\n"
            "        mask = torch.zeros(8, dtype=torch.bool, device='cuda')\n"
            "        return super().embed_input_ids(input_ids, is_multimodal=mask)\n"
        ),
    })
    assert ("SL202", 8) in [(d.code, d.start.row) for d in found if d.path.endswith("interfaces.py")]


def test_a_method_is_called_through_a_receiver_of_unknown_class_when_nothing_else_calls_it(tmp_path: Path) -> None:
    # SGLang's CUDA-graph runner calls `self.model_runner.attn_backend.init_forward_metadata_replay_cuda_graph(
    # bs, self.seq_lens)` on whichever backend was chosen; the backend reads `seq_lens.max().item()`.
    files = {
        "pkg/__init__.py": "",
        "pkg/backend.py": (
            "class FlashBackend:\n"
            "    def init_forward_metadata_replay_cuda_graph(self, bs, seq_lens):\n"
            "        return seq_lens[:bs].max().item()\n\n"
            "    def plan_step(self, n, lens):\n"
            "        return lens.max().item()\n\n"
            "    def _own_lengths(self, lens):\n"
            "        return lens.max().item()\n\n"
            "    def load_lengths(self, lens):\n"
            "        return lens.max().item()\n\n"
            "    def plan_from_getter(self, lens):\n"
            "        return lens.max().item()\n"
        ),
        "pkg/runner.py": (
            "import torch\n\n\nclass GraphRunner:\n"
            "    def __init__(self, model_runner):\n"
            "        self.model_runner = model_runner\n"
            "        self.seq_lens = torch.zeros(8, dtype=torch.int32, device='cuda')\n\n"
            "    def replay(self, bs):\n"
            "        self.model_runner.attn_backend.init_forward_metadata_replay_cuda_graph(bs, self.seq_lens)\n"
            "        self.model_runner.attn_backend.plan_step(bs, self.seq_lens, 3)\n"
            "        self.model_runner.attn_backend.update(self.seq_lens)\n"
            "        self.model_runner.attn_backend._own_lengths(self.seq_lens)\n"
            "        self.model_runner.tables['a'].load_lengths(self.seq_lens)\n"
            "        self.model_runner.get_backend().plan_from_getter(self.seq_lens)\n"
        ),
    }
    found = [(d.code, d.start.row, d.confidence) for d in check_small_project(tmp_path, files)
             if d.path.endswith("backend.py")]
    # `plan_step` does not take three arguments: that call is not one of it; a private method is called
    # by its own class; an object looked up in a container may be of any class. A getter's object counts.
    assert found == [("SL101", 3, "convention"), ("SL101", 15, "convention")]


def test_a_method_of_a_common_name_is_called_through_an_unknown_receiver_by_a_distinctive_keyword(
        tmp_path: Path) -> None:
    # CosyVoice builds its vocoder from a YAML file and calls `self.hift.inference(speech_feat=mel,
    # finalize=...)`; the vocoder's `inference` copies `speech_feat.cpu()` for a CPU predictor. The name
    # `inference` alone is too common to link the call; the keyword `speech_feat`, one of its parameters,
    # is not. A keyword every such method shares (`finalize`), or none, links nothing.
    files = {
        "pkg/__init__.py": "",
        "pkg/vocoder.py": (
            "class Vocoder:\n"
            "    def inference(self, speech_feat, finalize=True):\n"
            "        return speech_feat.cpu()\n\n\n"
            "class Flow:\n"
            "    def inference(self, token, finalize=True):\n"
            "        return token.cpu()\n\n\n"
            "class Tokenizer:\n"
            "    def encode(self, text_tokens):\n"
            "        return text_tokens.cpu()\n"
        ),
        "pkg/model.py": (
            "import torch\n\n\nclass Model:\n"
            "    def __init__(self, hift, flow, tokenizer):\n"
            "        self.device = torch.device('cuda')\n"
            "        self.hift = hift\n"
            "        self.flow = flow\n"
            "        self.tokenizer = tokenizer\n\n"
            "    def token2wav(self, n):\n"
            "        mel = torch.zeros(n, device=self.device)\n"
            "        self.hift.inference(speech_feat=mel, finalize=True)\n"
            "        self.flow.inference(mel, finalize=True)\n"
            "        self.tokenizer.encode(mel)\n"
        ),
    }
    found = [(d.code, d.start.row) for d in check_small_project(tmp_path, files) if d.path.endswith("vocoder.py")]
    assert found == [("SL103", 3)]


def test_a_keyword_many_methods_of_the_name_take_links_no_call(tmp_path: Path) -> None:
    # Three `decode(self, hidden_states)` in the project: `self.head.decode(hidden_states=h)` may reach any,
    # or a library's; nor is a model's `forward` reached by keyword, as every model's would be.
    heads = "".join(f"class Head{i}:\n    def decode(self, hidden_states):\n        return hidden_states.cpu()\n\n\n"
                    for i in range(3))
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/heads.py": heads + "class Model:\n    def forward(self, input_ids):\n        return input_ids.cpu()\n",
        "pkg/run.py": (
            "import torch\n\n\nclass Runner:\n"
            "    def __init__(self, head, model):\n"
            "        self.head = head\n"
            "        self.model = model\n\n"
            "    def step(self, n):\n"
            "        h = torch.zeros(n, device='cuda')\n"
            "        self.head.decode(hidden_states=h)\n"
            "        self.model.forward(input_ids=h)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("heads.py")] == []


def test_a_predicate_returning_an_and_of_host_tests_and_a_gpu_comparison_returns_the_comparison(
        tmp_path: Path) -> None:
    # SGLang's DeepSeek attention before #4577: `return mode.is_extend() and lens.sum() == 0` hands the
    # caller's `if self.no_absorb(batch):` a 0-dim GPU tensor (Python's `and` returns its last operand).
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/batch.py": (
            "import torch\n\n\nclass Batch:\n    def __init__(self, n: int):\n"
            "        self.prefix_lens = torch.zeros(n, device='cuda')\n\n"
            "    def is_extend(self):\n        return True\n"
        ),
        "pkg/attn.py": (
            "from pkg.batch import Batch\n\n\nclass Attention:\n"
            "    def no_absorb(self, batch: Batch):\n"
            "        return batch.is_extend() and batch.prefix_lens.sum() == 0\n\n"
            "    def forward(self, batch: Batch):\n"
            "        if self.no_absorb(batch):\n            return 1\n        return 0\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("attn.py")] == [("SL104", 9)]


def test_a_predicate_annotated_bool_that_returns_a_gpu_comparison_is_read_as_its_body(tmp_path: Path) -> None:
    # SGLang #4577 as written: `no_absorb(...) -> bool` returns `mode.is_extend() and lens.sum() == 0`,
    # `is_extend` compares an `IntEnum` member with members (a Python bool), so the caller's `if` reads
    # the 0-dim GPU comparison whatever the annotation promises. A body on the GPU only by a convention,
    # or a custom operator's result of no known dtype (vLLM's `init_custom_ar(...) -> int`, a pointer),
    # leaves the annotation believed.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/batch.py": (
            "from enum import IntEnum, auto\n\nimport torch\n\n\nclass Mode(IntEnum):\n    EXTEND = auto()\n"
            "    DECODE = auto()\n\n    def is_extend(self):\n"
            "        return self == Mode.EXTEND or self == Mode.DECODE\n\n\n"
            "class Batch:\n    def __init__(self, n: int, mode: Mode):\n        self.mode = mode\n"
            "        self.prefix_lens = torch.zeros(n, device='cuda')\n"
        ),
        "pkg/attn.py": (
            "import torch\n\nfrom pkg.batch import Batch\n\n\nclass Attention:\n"
            "    def no_absorb(self, batch: Batch) -> bool:\n"
            "        return batch.mode.is_extend() and batch.prefix_lens.sum() == 0\n\n"
            "    def by_name(self, lens_gpu) -> bool:\n        return lens_gpu.sum() == 0\n\n"
            "    def handle(self, batch: Batch) -> int:\n        return torch.ops.my_ops.init(batch.prefix_lens)\n\n"
            "    def forward(self, batch: Batch, lens_gpu):\n"
            "        if self.no_absorb(batch):\n            return 1\n"
            "        if self.by_name(lens_gpu) or self.handle(batch):\n            return 2\n        return 0\n"
        ),
    })
    attn = [(d.code, d.start.row) for d in found if d.path.endswith("attn.py")]
    assert attn == [("SL104", 17)]
    evidence = "".join(d.evidence for d in found if d.path.endswith("attn.py"))
    assert "though annotated `-> bool`" in evidence, evidence


def test_a_field_stored_from_a_name_rebound_on_every_way_holds_only_the_last_bindings(tmp_path: Path) -> None:
    # vLLM's GDN builder before #26437: `mask = flags_cpu >= 0` (a host mask), then `mask = None` or
    # `mask = mask.to(loc.device)` in both arms, so the metadata holds None or the device copy, never the
    # host mask. Where one arm keeps the host mask, the field is on either device: no finding.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": (
            "from dataclasses import dataclass\n\nimport torch\n\n\n@dataclass\nclass Meta:\n"
            "    mask: torch.Tensor | None\n\n\n@dataclass\nclass Other:\n    mask: torch.Tensor | None\n\n\n"
            "def build(n: int, spec: bool):\n"
            "    loc = torch.zeros(n, device='cuda')\n"
            "    if not spec:\n        mask = None\n    else:\n        mask = torch.zeros(n, dtype=torch.bool)\n"
            "        if n == 0:\n            mask = None\n        else:\n            mask = mask.to(loc.device)\n"
            "    kept = torch.zeros(n, dtype=torch.bool)\n    if n > 1:\n        kept = kept.to(loc.device)\n"
            "    return Meta(mask=mask), Other(mask=kept)\n"
        ),
        "pkg/model.py": (
            "from pkg.meta import Meta, Other\n\n\n"
            "def forward(x, meta: Meta, other: Other):\n"
            "    y = x[other.mask]\n"
            "    if meta.mask is not None:\n        return x[meta.mask], y\n    return x, y\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("model.py")] == [("SL202", 7)]


def test_a_tensor_joined_from_values_of_unknown_kind_is_a_tensor(tmp_path: Path) -> None:
    # `torch.cat((q, k, v))` of parameters: a tensor wherever they are, so a GPU mask indexing it syncs.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/attn.py": (
            "import torch\n\n\ndef forward(q, k, v, n: int):\n    mask = torch.zeros(n, device='cuda') > 0\n"
            "    qkv = torch.cat((q, k, v), dim=-1)\n    return qkv[mask]\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL202", 7)]


def test_the_layers_of_a_stack_take_what_the_loop_over_them_passes(tmp_path: Path) -> None:
    # vLLM's Qwen2-VL vision tower before #30232: `cu_seqlens.to(self.device)` handed to each block of
    # `self.blocks = nn.ModuleList([Block(...) for ...])` in `for blk in self.blocks: x = blk(x, cu_seqlens=...)`,
    # and the attention sliced `q[:, cu_seqlens[i - 1]:cu_seqlens[i]]`. Indexed layers count too; a loop
    # over another class's stack of the same name does not.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/blocks.py": (
            "import torch\nfrom torch import nn\n\n\nclass Block(nn.Module):\n"
            "    def forward(self, x, cu_seqlens):\n        return x[cu_seqlens[0]:cu_seqlens[1]]\n\n\n"
            "class Other(nn.Module):\n    def forward(self, x, lens):\n        return x[lens[0]:lens[1]]\n\n\n"
            "class Quiet(nn.Module):\n    def forward(self, x, lens):\n        return x[lens[0]:lens[1]]\n"
        ),
        "pkg/tower.py": (
            "import torch\nfrom torch import nn\n\nfrom pkg.blocks import Block, Other, Quiet\n\n\n"
            "class Tower(nn.Module):\n    def __init__(self, n: int):\n        super().__init__()\n"
            "        self.blocks = nn.ModuleList(\n            [Block() for _ in range(n)]\n        )\n\n"
            "    def forward(self, x, n: int):\n        cu = torch.zeros(n, dtype=torch.int32).to('cuda')\n"
            "        for blk in self.blocks:\n            x = blk(x, cu_seqlens=cu)\n        return x\n\n\n"
            "class Stack(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.stack = nn.ModuleList([Other(), Other()])\n        self.quiet = nn.ModuleList([Quiet()])\n\n"
            "    def forward(self, x, n: int):\n        for i in range(2):\n"
            "            x = self.stack[i](x, torch.zeros(n, device='cuda'))\n"
            "        for layer in self.quiet:\n            x = layer(x, [0, n])\n        return x\n\n\n"
            "class Unrelated(nn.Module):\n    def forward(self, x, n: int):\n"
            "        for blk in self.quiet:\n            x = blk(x, torch.zeros(n, device='cuda'))\n        return x\n"
        ),
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found if d.path.endswith("blocks.py"))
    assert rows == [("blocks.py", 7, "SL104"), ("blocks.py", 12, "SL104")]


def test_a_forward_handing_its_arguments_to_a_method_of_its_own_passes_the_objects_calls(tmp_path: Path) -> None:
    # vLLM's `ChunkGatedDeltaRule` (cut down in #38361's case): `forward(self, *args, **kwargs)` returns
    # `self.forward_native(*args, **kwargs)`; `self.rule(..., cu_seqlens=lens)` reaches `forward_native`
    # with the caller's GPU tensor, not with the unknown `**kwargs` of the hand-on.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/rule.py": (
            "from torch import nn\n\n\nclass Rule(nn.Module):\n    def forward(self, *args, **kwargs):\n"
            "        return self.forward_native(*args, **kwargs)\n\n"
            "    def forward_native(self, x, cu_seqlens=None):\n        return cu_seqlens.tolist()\n"
        ),
        "pkg/layer.py": (
            "import torch\nfrom torch import nn\n\nfrom pkg.rule import Rule\n\n\nclass Layer(nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n        self.rule = Rule()\n\n"
            "    def forward(self, x, n: int):\n        return self.rule(x, cu_seqlens=torch.zeros(n, device='cuda'))\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("rule.py") and d.code != "SL601"] == [("SL102", 9)]


def test_an_asserted_class_narrows_a_local_for_the_values_it_hands_on(tmp_path: Path) -> None:
    # `attn_metadata = attn_metadata[self.prefix]`, then `assert isinstance(attn_metadata, GDNMetadata)`:
    # the field read after it, handed to a helper, is the metadata's GPU field.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": (
            "from dataclasses import dataclass\n\nimport torch\n\n\n@dataclass\nclass GDNMetadata:\n"
            "    cu: torch.Tensor\n\n\ndef build(n: int):\n    return GDNMetadata(cu=torch.zeros(n, device='cuda'))\n"
        ),
        "pkg/layer.py": (
            "from pkg.meta import GDNMetadata\n\n\ndef lens(cu):\n    return cu.tolist()\n\n\n"
            "def forward(metadata: dict, prefix: str):\n    metadata = metadata[prefix]\n"
            "    assert isinstance(metadata, GDNMetadata)\n    return lens(metadata.cu)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("layer.py")] == [("SL102", 5)]


def test_a_function_imported_under_another_name_takes_the_calls_made_by_that_name(tmp_path: Path) -> None:
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops/__init__.py": "from .chunk import chunk_rule\n\n__all__ = ['chunk_rule']\n",
        "pkg/ops/chunk.py": "def chunk_rule(x, cu_seqlens=None):\n    return cu_seqlens.tolist()\n",
        "pkg/layer.py": (
            "import torch\n\nfrom pkg.ops import chunk_rule as fla_chunk_rule\n\n\n"
            "def forward(x, n: int):\n    return fla_chunk_rule(x, cu_seqlens=torch.zeros(n, device='cuda'))\n\n\n"
            # The importing module also calls an attribute of that name (vLLM's GDN layer holds its
            # `self.chunk_gated_delta_rule` module): it imports the function under the alias all the same.
            "def other(layer, x):\n    return layer.chunk_rule(x)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("chunk.py")] == [("SL102", 2)]


def test_an_autograd_function_forward_takes_what_apply_passes_after_ctx(tmp_path: Path) -> None:
    # `Fn.apply(q, cu_seqlens)` runs `Fn.forward(ctx, q, cu_seqlens)`, a plain call: the argument's own
    # chain of calls is followed as far as any other's.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/fn.py": (
            "import torch\n\n\ndef lens(cu):\n    return cu.tolist()\n\n\nclass Fn(torch.autograd.Function):\n"
            "    @staticmethod\n    def forward(ctx, q, cu_seqlens=None):\n        return lens(cu_seqlens)\n\n\n"
            "def rule(q, cu_seqlens=None):\n    return Fn.apply(q, cu_seqlens)\n\n\n"
            "def outer(q, cu_seqlens=None):\n    return rule(q, cu_seqlens=cu_seqlens)\n"
        ),
        "pkg/layer.py": (
            "import torch\n\nfrom pkg.fn import outer\n\n\n"
            "def forward(q, n: int):\n    return outer(q, cu_seqlens=torch.zeros(n, device='cuda'))\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("fn.py")] == [("SL102", 5)]


def test_a_file_naming_no_device_is_still_checked_for_truth_tests_in_a_project(tmp_path: Path) -> None:
    # Its GPU tensors come from another module: no token of its own says so.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/make.py": "import torch\n\n\ndef make(n):\n    return torch.zeros(n, device='cuda').sum() > 0\n",
        "pkg/use.py": "from pkg.make import make\n\n\ndef f(n):\n    if make(n):\n        return 1\n    return 0\n",
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("use.py")] == [("SL104", 5)]


def test_a_field_made_from_an_argument_is_where_that_call_put_it(tmp_path: Path) -> None:
    # SGLang's CPU unit tests build the metadata a model builds on the GPU, with `device="cpu"`: the
    # join over every construction of the class says only where `ids` usually is; this call decides it.
    builder = (
        "from dataclasses import dataclass\n\nimport torch\n\n\n@dataclass\nclass Meta:\n    ids: torch.Tensor\n"
        "    start: int\n\n\ndef build_meta(n: int, device) -> Meta:\n"
        "    ids = torch.full((n,), -1, dtype=torch.int64, device=device)\n    return Meta({fields})\n\n\n"
        "class Runner:\n    def __init__(self):\n        self.device = torch.device('cuda')\n\n"
        "    def step(self, n):\n        return build_meta(n, self.device)\n"
    )
    uses = (
        "from pkg.meta import build_meta\n\n\ndef on_host(n):\n    meta = build_meta(n, device='cpu')\n"
        "    return meta.ids.tolist()\n\n\ndef on_gpu(n):\n    meta = build_meta(n, device='cuda')\n"
        "    return meta.ids.tolist()\n"
    )
    for fields in ("ids=ids, start=0", "ids, 0"):  # by keyword and by position
        found = check_small_project(tmp_path / fields[:3], {
            "pkg/__init__.py": "", "pkg/meta.py": builder.format(fields=fields), "pkg/use.py": uses,
        })
        assert [(d.code, d.start.row) for d in found if d.path.endswith("use.py")] == [("SL102", 11)], fields


def test_a_value_a_library_call_makes_on_the_cpu_is_a_host_tensor_across_modules(tmp_path: Path) -> None:
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/masks.py": "def make_mask(grammar, n):\n    return grammar.allocate_vocab_mask(n, device='cpu')\n",
        "pkg/worker.py": (
            "import torch\n\nfrom pkg.masks import make_mask\n\n\ndef verify(grammar, n):\n"
            "    tokens = torch.zeros(n, device='cuda')\n    mask = make_mask(grammar, n)\n"
            "    return mask.to(tokens.device)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("worker.py")] == [("SL303", 9)]
    assert "pinned or not" in next(d.message for d in found if d.code == "SL303")


def test_a_field_whose_constructions_disagree_takes_only_a_proven_device_from_the_call(tmp_path: Path) -> None:
    # `Meta.ids` is made on the CPU at one construction and on the GPU at another: unknown. The call
    # `build(n, "cuda")` proves its own object's ids on the GPU; the device of a tensor nobody knows,
    # an accelerator by convention only, does not.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": (
            "from dataclasses import dataclass\n\nimport torch\n\n\n@dataclass\nclass Meta:\n    ids: torch.Tensor\n\n\n"
            "def on_host(n):\n    return Meta(ids=torch.zeros(n))\n\n\n"
            "def on_gpu(n):\n    return Meta(ids=torch.zeros(n, device='cuda'))\n\n\n"
            "def build(n, device):\n    return Meta(ids=torch.zeros(n, device=device))\n"
        ),
        "pkg/use.py": (
            "from pkg.meta import build\n\n\ndef proven(n):\n    return build(n, 'cuda').ids.tolist()\n\n\n"
            "def assumed(n, x):\n    return build(n, x.device).ids.tolist()\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("use.py")] == [("SL102", 5)]


def test_a_function_stored_into_an_attribute_takes_the_calls_of_that_attribute(tmp_path: Path) -> None:
    # SGLang's FlashInfer backend: `w.begin_forward = partial(fast_decode_plan, w)` replaces the library
    # wrapper's planning, and `wrapper.begin_forward(indptr, self.last_page_len[:bs])` runs the function
    # with the wrapper bound first. A guess about which wrappers were replaced: a convention.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/plan.py": "def fast_decode_plan(self, indptr, last_page_len):\n    return last_page_len.cpu()\n",
        "pkg/backend.py": (
            "from functools import partial\n\nimport torch\n\nfrom lib import Wrapper\nfrom pkg.plan import fast_decode_plan\n"
            "\n\nclass Backend:\n    def __init__(self, n):\n        self.last_page_len = torch.ones(n, device='cuda')\n"
            "        self.wrappers = [Wrapper() for _ in range(2)]\n        for w in self.wrappers:\n"
            "            w.begin_forward = partial(fast_decode_plan, w)\n\n"
            "    def plan(self, wrapper, indptr, bs):\n        wrapper.begin_forward(indptr, self.last_page_len[:bs])\n"
        ),
    })
    assert [(d.code, d.start.row, d.confidence) for d in found if d.path.endswith("plan.py")] == [
        ("SL103", 2, "convention")]
    assert "may have rebound" in next(d.evidence for d in found if d.path.endswith("plan.py"))


def test_a_library_call_given_a_device_parameter_left_none_makes_nothing_known(tmp_path: Path) -> None:
    # `device=device` where every caller leaves `device` None: the library's default device, not the CPU.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/masks.py": "def make_mask(grammar, n, device=None):\n    return grammar.allocate_vocab_mask(n, device=device)\n",
        "pkg/worker.py": (
            "import torch\n\nfrom pkg.masks import make_mask\n\n\ndef verify(grammar, n):\n"
            "    tokens = torch.zeros(n, device='cuda')\n    return make_mask(grammar, n).to(tokens.device)\n"
        ),
    })
    assert [d.code for d in found if d.path.endswith("worker.py")] == []


def test_a_classmethod_followed_with_its_arguments_keeps_its_class(tmp_path: Path) -> None:
    # SGLang's `ElasticEPStateManager._build_state(ep_size=n, device=None)` calls
    # `cls.healthy_rank_state(..., device=device)`: followed for this call, `cls` is still the class.
    source = (
        "from dataclasses import dataclass\nfrom typing import Optional\n\nimport torch\n\n\n"
        "@dataclass\nclass State:\n    active_ranks: torch.Tensor\n\n\n"
        "class Manager:\n    _instance: Optional[State] = None\n\n    @classmethod\n    def init(cls, n):\n"
        "        cls._instance = cls._build_state(ep_size=n, device=None)\n\n    @classmethod\n"
        "    def _build_state(cls, *, ep_size=None, device=None) -> State:\n"
        "        return State(active_ranks=cls.healthy_rank_state(ep_size=ep_size, device=device))\n\n"
        "    @classmethod\n    def healthy_rank_state(cls, *, ep_size=None, device=None) -> torch.Tensor:\n"
        "        return torch.ones(ep_size, dtype=torch.int32, device=device or torch.device('cuda'))\n\n"
        "    @classmethod\n    def instance(cls) -> State:\n        return cls._instance\n\n\n"
        "def step():\n    return Manager.instance().active_ranks.tolist()\n"
    )
    found = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/ep.py": source})
    assert [(d.code, d.start.row) for d in found] == [("SL102", 33)]


def test_a_simple_namespace_holds_exactly_the_attributes_it_is_given(tmp_path: Path) -> None:
    # SGLang's unit tests pass `SimpleNamespace(device=torch.device("cpu"))` as the model whose
    # `self.device` a builder allocates on: its tensors are on the CPU there.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/model.py": (
            "import torch\n\n\nclass Model:\n    def __init__(self):\n        self.device = torch.device('cuda')\n\n"
            "    def build(self, n):\n        return torch.zeros(n, device=self.device)\n"
        ),
        "pkg/test_model.py": (
            "from types import SimpleNamespace\n\nimport torch\n\nfrom pkg.model import Model\n\n\n"
            "def test_build():\n    model = SimpleNamespace(device=torch.device('cpu'))\n"
            "    assert Model.build(model, 4).tolist() == [0.0] * 4\n\n\n"
            "def test_build_on_gpu():\n    model = SimpleNamespace(device=torch.device('cuda'))\n"
            "    assert Model.build(model, 4).tolist() == [0.0] * 4\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.path.endswith("test_model.py")] == [("SL102", 15)]


def test_a_device_context_of_a_tensors_device_a_stack_enumerated_and_a_dispatch_table(tmp_path: Path) -> None:
    # SGLang before #1704 built a batch's tensors under `with out_cache_loc.device:` (the device of the
    # GPU slots the pool returned), and another file read `torch.sum(forward_batch.seq_lens).item()`.
    # Kimi-VL's vision encoder before #30869 ran `for _, block in enumerate(self.blocks)` and each block
    # called `VL_VISION_ATTENTION_FUNCTIONS[self.attn_implementation](q, ..., q_cu_seqlens=cu_seqlens)`,
    # whose flash-attention entry read `q_cu_seqlens` with `.item()`.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/batch.py": (
            "import torch\n\n\nclass Batch:\n    def prepare(self, lens, n: int):\n"
            "        slots = torch.zeros(n, dtype=torch.int32, device='cuda')\n"
            "        host = torch.zeros(n)\n"
            "        with slots.device:\n            self.seq_lens = torch.tensor(lens)\n"
            "        with host.device:\n            self.prefix_lens = torch.tensor(lens)\n"
        ),
        "pkg/read.py": (
            "import torch\n\nfrom pkg.batch import Batch\n\n\ndef total(batch: Batch):\n"
            "    return torch.sum(batch.seq_lens).item() + torch.sum(batch.prefix_lens).item()\n"
        ),
        "pkg/vit.py": (
            "import torch\nfrom torch import nn\n\n\ndef flash(q, cu=None):\n    return q[: cu.max().item()]\n\n\n"
            "def sdpa(q, cu=None):\n    return q\n\n\nTABLE = {'flash': flash, 'sdpa': sdpa}\n\n\n"
            "def lonely(q, cu=None):\n    return q[: cu.max().item()]\n\n\n"
            "def one(q, cu=None):\n    return q[: cu.max().item()]\n\n\n"
            "BIG = {'a': one, 'b': sdpa, 'c': sdpa, 'd': sdpa, 'e': sdpa}\n\n\n"
            "def through_big(q, kind: str):\n    return BIG[kind](q, cu=torch.zeros(2, device='cuda'))\n\n\n"
            "class Layer(nn.Module):\n    def __init__(self, impl: str):\n        super().__init__()\n"
            "        self.impl = impl\n\n    def forward(self, x, cu):\n        return TABLE[self.impl](x, cu=cu)\n\n\n"
            "class Encoder(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.blocks = nn.ModuleList([Layer('flash') for _ in range(2)])\n\n"
            "    def forward(self, x, n: int):\n        cu = torch.zeros(n, device='cuda').cumsum(0)\n"
            "        for _, block in enumerate(self.blocks):\n            x = block(x, cu)\n        return x\n"
        ),
    })
    rows = sorted((Path(d.path).name, d.start.row, d.start.column, d.code) for d in found)
    # Only the first sum: the second tensor was built under the CPU tensor's device.
    assert [row for row in rows if row[0] == "read.py"] == [("read.py", 7, 12, "SL101")]
    assert ("vit.py", 6, 16, "SL101") in rows
    assert ("vit.py", 37, 9, "SL601") in rows  # each layer's call through the table reaches the sync
    assert not [row for row in rows if row[0] == "vit.py" and row[1] == 17]  # in no table: nothing calls it
    # One of five functions: a table that large is not followed (`infer.MAX_DISPATCH`).
    assert not [row for row in rows if row[0] == "vit.py" and row[1] == 21]


@pytest.mark.parametrize(("passed", "reported"), [("device", False), ("torch.device('cuda')", True)])
def test_a_call_into_a_sync_whose_device_another_call_passes(tmp_path: Path, passed: str, reported: bool) -> None:
    # transformers' rotary embeddings call `rope_init_fn(self.config, device)` (a function of the
    # `ROPE_INIT_FUNCTIONS` table) in their constructors with the `device=None` no one passes, and the
    # longrope refresh calls the same function with the input's device: the copy to the GPU in it runs
    # on the refresh's call, not on the constructor's.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/rope.py": (
            "import torch\n\n\ndef dynamic(config, device=None):\n"
            "    return torch.arange(0, 8, 2, dtype=torch.int64).to(device=device, dtype=torch.float)\n\n\n"
            "TABLE = {'dynamic': dynamic}\n\n\n"
            "def refresh(module, device):\n    return TABLE[module.kind](module.config, device)\n"
        ),
        "pkg/model.py": (
            "import torch\nfrom torch import nn\n\nfrom pkg.rope import TABLE, refresh\n\n\n"
            "class Rotary(nn.Module):\n    def __init__(self, config, device=None):\n        super().__init__()\n"
            "        self.config, self.kind = config, config.kind\n"
            f"        self.inv = TABLE[self.kind](self.config, {passed})\n\n"
            "    def forward(self, x):\n        return refresh(self, x.device)\n\n\n"
            "class Model(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
            "        self.rotary = Rotary(config)\n\n    def forward(self, x):\n        return self.rotary(x)\n"
        ),
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found)
    assert ("rope.py", 5, "SL303") in rows
    assert (("model.py", 11, "SL601") in rows) is reported


def test_a_call_that_hands_on_the_host_tensor_a_copy_to_the_gpu_copies_reaches_it(tmp_path: Path) -> None:
    # vLLM's DeepSeek V4.1 models (AMD and NVIDIA) both call `_build_image_span(image_embeds,
    # image_input.types[...])` with a host tensor, and the helper copies it with
    # `types.to(image_embeds.device)`: each call supplies what the copy copies, whichever one the
    # evidence names first.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/span.py": (
            "def build_span(embeds, types):\n    types = types.to(embeds.device)\n    return embeds[: types.numel()]\n"
        ),
        "pkg/a.py": (
            "import torch\n\nfrom pkg.span import build_span\n\n\ndef run_a(n: int):\n"
            "    embeds = torch.zeros(n, 4, device='cuda')\n    return build_span(embeds, torch.arange(n))\n"
        ),
        "pkg/b.py": (
            "import torch\n\nfrom pkg.span import build_span\n\n\ndef run_b(n: int):\n"
            "    embeds = torch.zeros(n, 4, device='cuda')\n    return build_span(embeds, torch.arange(n))\n"
        ),
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found)
    assert rows == [("a.py", 8, "SL601"), ("b.py", 8, "SL601"), ("span.py", 2, "SL303")]


def test_an_arm_for_apple_gpus_runs_off_cuda(tmp_path: Path) -> None:
    # SGLang's MiniMax-H3 attention streams through `_forward_mps_streamed_attention(q, k, v, cu_seqlens)`
    # only `if x.device.type == "mps":`, and that method reads `cu_seqlens.tolist()`: on a CUDA machine
    # neither the call nor the read runs. The same read behind `!= "mps"` runs on CUDA.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/attn.py": (
            "import torch\nfrom torch import nn\n\n\nclass Attention(nn.Module):\n"
            "    def forward(self, x, n: int):\n        cu = torch.zeros(n, dtype=torch.int32, device='cuda')\n"
            "        if x.device.type == 'mps':\n            return self._streamed(x, cu)\n"
            "        if x.device.type != 'mps':\n            return cu.tolist()\n        return x\n\n"
            "    def _streamed(self, x, cu_seqlens):\n        return cu_seqlens.tolist()\n"
        ),
    })
    rows = sorted((Path(d.path).name, d.start.row, d.code) for d in found)
    assert rows == [("attn.py", 11, "SL102")]


_COPIED_TO_DEVICE = {
    "pkg/__init__.py": "",
    "pkg/inputs.py": """from dataclasses import dataclass, fields

import torch


@dataclass
class ModelInputs:
    seq_length: torch.LongTensor
    is_decoding: bool

    def to_device(self, device: str, non_blocking: bool = False):
        out_dict = dict()
        for f in fields(self):
            k = f.name
            v = getattr(self, k)
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=non_blocking)
            out_dict[k] = v
        return ModelInputs(**out_dict)
""",
    "pkg/engine.py": """import torch

from pkg.inputs import ModelInputs


def create_model_inputs(lengths):
    return ModelInputs(seq_length=torch.tensor(lengths), is_decoding=False)
""",
    "pkg/context.py": """from pkg.inputs import ModelInputs


def new_context(inputs: ModelInputs):
    q_seqlens = inputs.seq_length
    if inputs.is_decoding:
        return None
    return q_seqlens.max().item()
""",
}


@pytest.mark.parametrize("agent,rows", [
    # The agent copies the whole object to the GPU: a field the engine builds on the host is a tensor of
    # either device, which only --strict reports (which copy a read sees is a matter of flow).
    ("def forward(inputs):\n    return inputs.to_device('cuda')\n", {("context.py", 8, "SL101")}),
    # Copied to the CPU only: the field is a CPU tensor.
    ("def forward(inputs):\n    return inputs.to_device('cpu')\n", set()),
])
def test_an_object_copied_to_the_device_as_a_whole_holds_tensors_of_either_device(
        tmp_path: Path, agent: str, rows: set) -> None:
    # LMDeploy's `ModelInputs.to_device` builds a new instance from each field, the tensors moved; the engine
    # builds the original on the host. Before, the `**out_dict` construction passed no field the index
    # could read, and `seq_length` was proven a CPU tensor, even for --strict. Reading the copy's fields
    # as GPU tensors by convention was measured and dropped: on LMDeploy, 24 of the 34 findings it made
    # were false, most of them reads of the host original in the code that builds it.
    files = {**_COPIED_TO_DEVICE, "pkg/agent.py": agent}
    assert check_small_project(tmp_path / "default", files) == []
    found = check_small_project(tmp_path / "strict", files, strict=True)
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows
    assert all(d.confidence == "strict" for d in found)


def test_fields_stored_from_each_other_end_the_question_whether_they_are_never_none(tmp_path: Path) -> None:
    # SGLang's index has fields stored from fields of other classes that are stored back from them;
    # asking whether a call passes a value that is not None went round that loop until Python's
    # recursion limit (an internal error on the whole run).
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": _NONE_BRANCHES,
        "pkg/nodes.py": "class A:\n    def __init__(self, b: 'B'):\n        self.x = b.y\n\n\n"
                        "class B:\n    def __init__(self, a: A):\n        self.y = a.x\n",
        "pkg/use.py": "import torch\n\nfrom pkg.nodes import A\nfrom pkg.ops import pool\n\n\n"
                      "def step(n, a: A):\n    pool(torch.zeros(n, device='cuda'), a.x)\n",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == {("ops.py", 6, "SL101")}


_DICT_FILLED = {
    "pkg/__init__.py": "",
    "pkg/batch.py": """import torch


def to_device(batch: dict, device):
    out = dict()
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
        out[k] = v
    return out


def with_lengths(lengths: list):
    out = {}
    out["seq_lens"] = torch.tensor(lengths)
    return out
""",
    "pkg/meta.py": """from dataclasses import dataclass

import torch


@dataclass
class Meta:
    grid: torch.Tensor
    extra: dict = None


def moved(grid, device):
    fields = dict()
    fields["grid"] = grid.to(device)
    return Meta(**fields)
""",
}


@pytest.mark.parametrize("step,rows", [
    # A dict a loop fills with the moved tensors, returned from another module: any key reads them.
    ("from pkg.batch import to_device\n\n\ndef step(batch):\n    gpu = to_device(batch, 'cuda')\n"
     "    return gpu['seq_lens'].max().item()\n", {("step.py", 6, "SL101")}),
    ("from pkg.batch import to_device\n\n\ndef step(batch):\n    host = to_device(batch, 'cpu')\n"
     "    return host['seq_lens'].max().item()\n", set()),
    # A literal key stored with a host tensor: that entry is on the host, not the repository's convention.
    ("from pkg.batch import with_lengths\n\n\ndef step(lengths):\n    return with_lengths(lengths)['seq_lens'].tolist()\n",
     set()),
    # `Meta(**fields)` after `fields['grid'] = ...`: the field is the stored entry.
    ("from pkg.meta import moved\n\n\ndef step(grid):\n    meta = moved(grid, 'cuda')\n    return meta.grid.tolist()\n",
     {("step.py", 6, "SL102")}),
])
def test_a_dict_filled_by_stores_holds_what_was_stored(tmp_path: Path, step: str, rows: set) -> None:
    # LMDeploy's `MultiModalData.to_device` copies its `meta` dict by a loop over `.items()` that stores each
    # tensor moved, then builds the copy with `MultiModalData(**out_dict)`; before, the index read nothing
    # of a dict that stores filled, nor a field passed through `**` of such a dict.
    found = check_small_project(tmp_path, {**_DICT_FILLED, "pkg/step.py": step})
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows


_MODEL_BACKEND = {
    "pkg/__init__.py": "",
    "pkg/state.py": """class InferState:
    def __init__(self):
        self.b_seq_len = None

    def init_extra(self):
        pass


class SlidingInferState(InferState):
    def init_extra(self):
        return self.b_seq_len.max().item()
""",
    "pkg/base.py": """from pkg.state import InferState


class BaseModel:
    infer_state_class = InferState

    def forward(self, input_ids, b_seq_len, is_prefill=False):
        return self._decode(input_ids, b_seq_len)

    def _decode(self, input_ids, b_seq_len):
        infer_state = self.infer_state_class()
        infer_state.b_seq_len = b_seq_len
        infer_state.init_extra()
""",
    "pkg/sliding.py": """from pkg.base import BaseModel
from pkg.state import SlidingInferState


class SlidingModel(BaseModel):
    infer_state_class = SlidingInferState
""",
    "pkg/prepare.py": """import torch


def prepare_decode_inputs(batch):
    b_seq_len = torch.zeros(len(batch), dtype=torch.int32, device="cuda")
    kwargs = {"input_ids": torch.zeros(len(batch), device="cuda"), "b_seq_len": b_seq_len}
    return kwargs, batch
""",
}


@pytest.mark.parametrize("backend,rows", [
    # LightLLM's router: `kwargs, reqs = prepare_decode_inputs(batch)`, then `self.model.forward(**kwargs)`;
    # the base model builds `self.infer_state_class()`, a class attribute a subclass overrides, and stores
    # the step's tensors into it. Before, neither the spread of a returned dict nor the subclass's class
    # attribute was read, and the infer state's field was only its `None` default.
    ("from pkg.prepare import prepare_decode_inputs\nfrom pkg.sliding import SlidingModel\n\n\nclass Backend:\n"
     "    def __init__(self):\n        self.model = SlidingModel()\n\n    def decode(self, batch):\n        kwargs, reqs = prepare_decode_inputs(batch)\n"
     "        return self.model.forward(**kwargs)\n", {("state.py", 11, "SL101"), ("backend.py", 11, "SL601")}),
    # The spread names no `b_seq_len`: the parameter is not known, as before.
    ("import torch\n\nfrom pkg.sliding import SlidingModel\n\n\nclass Backend:\n    def __init__(self):\n"
     "        self.model = SlidingModel()\n\n    def decode(self, batch):\n        kwargs = {'input_ids': torch.zeros(3, device='cuda')}\n"
     "        return self.model.forward(b_seq_len=[1, 2], **kwargs)\n", set()),
])
def test_a_dict_spread_into_a_base_models_forward_reaches_a_subclass_infer_state(
        tmp_path: Path, backend: str, rows: set) -> None:
    found = check_small_project(tmp_path, {**_MODEL_BACKEND, "pkg/backend.py": backend})
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == rows


def test_a_dict_field_read_with_a_run_time_key_is_not_its_literal_entries(tmp_path: Path) -> None:
    # SGLang's FlashAttention backend holds `self.target_verify_metadata_topk_swa = {"cu_seqlens_q":
    # torch.zeros(...), ...}` and stores metadata objects into it under the batch size elsewhere; read back
    # with `[bs]`, the entry is one of those objects. Joining the literal tensor entries made it a GPU
    # tensor, and the metadata field stored from it no longer an object whose fields could be read.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/backend.py": """import torch


class Meta:
    def __init__(self):
        self.cu_seqlens_q = None
        self.spec = None


class Backend:
    def __init__(self, n):
        self.swa = {"cu_seqlens_q": torch.zeros(n, device="cuda")}

    def capture(self, bs, meta: Meta):
        swa = Meta()
        swa.cu_seqlens_q = self.swa["cu_seqlens_q"][:bs]
        self.swa[bs] = swa
        meta.spec = swa

    def replay(self, bs, meta: Meta):
        meta.spec = self.swa[bs]


def forward(meta: Meta):
    return meta.spec.cu_seqlens_q.max().item()
""",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == {("backend.py", 25, "SL101")}


def test_a_parameter_declared_a_list_of_lists_is_not_a_list_of_tensors(tmp_path: Path) -> None:
    # transformers' `reorder_images` returns a list of tensors, or with `is_nested=True` a list of lists of
    # them, which the index does not tell apart; `get_num_channels(images_list: list[list[Tensor]])` then
    # tested each inner list for truth as if it were a GPU tensor (six image processors, read false).
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/images.py": """import torch


def reorder(groups: dict, nested: bool = False):
    if not nested:
        return [groups[k] for k in sorted(groups)]
    return rebuild(groups)


def channels(images_list: list[list[torch.Tensor]]) -> int:
    for images in images_list:
        if images:
            return images[0].shape[0]
    return 0


def process(n):
    groups = {}
    groups[(n, n)] = torch.zeros(2, 3, n, n, device="cuda")
    return channels(reorder(groups, nested=True))
""",
    })
    assert {(Path(d.path).name, d.start.row, d.code) for d in found} == set()


def test_what_a_unit_test_passes_says_nothing_of_serving_devices(tmp_path: Path) -> None:
    # SGLang's ComfyUI adapters: in serving, `unpack` receives the CUDA tensor the diffusion worker
    # sends through an adapter the index cannot resolve; its unit test passes a CPU tensor, which
    # decided the parameter, and `.to(x.device)` read as a copy from pageable memory.
    files = {
        "pkg/__init__.py": "",
        "pkg/adapter.py": "class Adapter:\n    def unpack(self, pred, x):\n        return pred.to(x.device)\n",
        "pkg/executor.py": "def run(worker, adapter, x):\n    return adapter.unpack(worker.forward(), x)\n",
        "tests/unit/test_adapter.py": "import torch\nfrom pkg.adapter import Adapter\n\n\n"
                                      "def test_unpack(x):\n    Adapter().unpack(torch.ones(4), x)\n",
    }
    found = check_small_project(tmp_path, files)
    assert [(Path(d.path).name, d.start.row, d.code) for d in found] == []
    # Where a test is the only caller of a test helper, what it passes still counts.
    files["tests/unit/helpers.py"] = "def move(pred, x):\n    return pred.to(x.device)\n"
    files["tests/unit/test_move.py"] = "import torch\nfrom tests.unit.helpers import move\n\n\n" \
                                       "def test_move():\n    move(torch.ones(2), torch.zeros(2, device=\"cuda\"))\n"
    found = check_small_project(tmp_path / "again", files)
    assert sorted((Path(d.path).name, d.start.row, d.code) for d in found) == \
        [("helpers.py", 2, "SL303"), ("test_move.py", 6, "SL601")]


def test_a_test_calling_a_serving_function_with_its_own_devices_is_left_to_strict(tmp_path: Path) -> None:
    # SGLang's `build_layout(positions, device)`: serving passes the accelerator, a CPU unit test
    # `torch.device("cpu")`. The serving answer holds for the function (by convention: the calls of
    # tests, which pass another device, are set aside), and a test's call into the sync it reaches is
    # reported only with `--strict`.
    files = {
        "pkg/__init__.py": "",
        "pkg/layout.py": "import torch\n\n\ndef build(positions, device):\n"
                         "    return torch.tensor(positions, device=device)\n",
        "pkg/stage.py": "import torch\nfrom pkg.layout import build\n\n\ndef stage(n):\n"
                        "    return build(list(range(n)), torch.device(\"cuda\"))\n",
        "tests/test_layout.py": "import torch\nfrom pkg.layout import build\n\n\ndef test_build():\n"
                                "    build([1], \"cpu\")\n",
    }
    found = check_small_project(tmp_path, files)
    assert [(Path(d.path).name, d.start.row, d.code, d.confidence) for d in found if d.code != "SL601"] == [
        ("layout.py", 5, "SL304", "convention")]
    assert not any(d.path.endswith("test_layout.py") for d in found)
    found = check_small_project(tmp_path / "strict", files, strict=True)
    assert ("test_layout.py", 6, "SL601") in {(Path(d.path).name, d.start.row, d.code) for d in found}
    # A CUDA test that passes the device serving passes reads the same answer, proven for it too.
    files["tests/test_layout.py"] = files["tests/test_layout.py"].replace('"cpu"', '"cuda"')
    found = check_small_project(tmp_path / "cuda", files)
    assert sorted((Path(d.path).name, d.start.row, d.code, d.confidence) for d in found if d.code != "SL601"
                  or Path(d.path).name.startswith("test_")) == [("layout.py", 5, "SL304", "high"), ("test_layout.py", 6, "SL601", "high")]


def test_a_factory_classmethod_of_a_base_constructs_the_subclass_it_is_called_on(tmp_path: Path) -> None:
    # TGI: `FlashCausalLMBatch.from_tokenized` ends in `cls(..., input_lengths_tensor=torch.tensor(...,
    # device=device))`, and `VlmCausalLMBatch.from_pb_processor` calls it as `cls.from_tokenized(...)`:
    # the VLM model's `batch.input_lengths_tensor` (annotated `VlmCausalLMBatch`, no call of the method
    # known) is the same GPU tensor. An explicit `Batch(...)` in the base's classmethod constructs the
    # base only: counted for the subclass, its CPU tensor would leave the field's device unknown.
    batch = ("from dataclasses import dataclass\n\nimport torch\n\n\n@dataclass\nclass Batch:\n"
             "    lengths: torch.Tensor\n\n    @classmethod\n"
             "    def from_tokenized(cls, lengths, device):\n"
             "        return cls(lengths=torch.tensor(lengths, device=device))\n\n"
             "    @classmethod\n    def empty(cls):\n        return Batch(lengths=torch.zeros(1))\n")
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/batch.py": batch,
        "pkg/vlm.py": "from pkg.batch import Batch\n\n\nclass VlmBatch(Batch):\n    @classmethod\n"
                      "    def from_pb(cls, lengths, device):\n        return cls.from_tokenized(lengths, device)\n\n\n"
                      "class VlmModel:\n    def forward(self, batch: VlmBatch):\n        return batch.lengths.max().item()\n",
        "pkg/server.py": "import torch\nfrom pkg.vlm import VlmBatch\n\n\ndef prefill(lengths):\n"
                         "    return VlmBatch.from_pb(lengths, torch.device('cuda'))\n",
    })
    assert sorted((Path(d.path).name, d.start.row, d.code) for d in found if d.code != "SL601") == [
        ("batch.py", 12, "SL304"), ("vlm.py", 12, "SL101")]


def test_an_element_of_a_list_of_lengths_is_a_python_int(tmp_path: Path) -> None:
    # TGI's decode loop before #285: `for i, (input_length, ..., ids) in enumerate(zip(batch.input_lengths,
    # ..., batch.all_input_ids_tensor))` then `ids[input_length] = next_token_id_item`; the batch's
    # `input_lengths` holds the `len(...)` of each request's tokens, so each element is a Python int and
    # the store writes one element of a GPU tensor from the host.
    files = {
        "pkg/__init__.py": "",
        "pkg/batch.py": (
            "import torch\n\n\nclass Batch:\n"
            "    def __init__(self, reqs, device):\n"
            "        self.input_lengths = []\n"
            "        for r in reqs:\n"
            "            self.input_lengths.append(len(r))\n"
            "        self.tokens = torch.zeros(64, dtype=torch.long, device=device)\n\n\n"
            "def step(batch: Batch, token: int):\n"
            "    for i, n in enumerate(batch.input_lengths):\n"
            "        batch.tokens[n] = token\n\n\n"
            "def run(reqs):\n"
            "    step(Batch(reqs, torch.device('cuda')), 3)\n"
        ),
    }
    found = [(Path(d.path).name, d.code, d.start.row) for d in check_small_project(tmp_path, files)]
    assert found == [("batch.py", "SL301", 14)]


_ACCELERATORS = {
    "pkg/__init__.py": "",
    "pkg/accelerator/__init__.py": "from .real_accelerator import get_accelerator\n",
    "pkg/accelerator/real_accelerator.py": (
        "import os\n\nds_accelerator = None\n\n\ndef get_accelerator():\n"
        "    global ds_accelerator\n"
        "    if ds_accelerator is not None:\n        return ds_accelerator\n"
        "    name = os.environ.get('DS_ACCELERATOR', 'cuda')\n"
        "    if name == 'cuda':\n"
        "        from .cuda_accelerator import CUDA_Accelerator\n        ds_accelerator = CUDA_Accelerator()\n"
        "    elif name == 'cpu':\n"
        "        from .cpu_accelerator import CPU_Accelerator\n        ds_accelerator = CPU_Accelerator()\n"
        "    return ds_accelerator\n"
    ),
    "pkg/accelerator/cuda_accelerator.py": (
        "import torch\n\n\nclass CUDA_Accelerator:\n"
        "    @property\n    def FloatTensor(self):\n        return torch.cuda.FloatTensor\n\n"
        "    @property\n    def ByteTensor(self):\n        return torch.cuda.ByteTensor\n"
    ),
    "pkg/accelerator/cpu_accelerator.py": (
        "import torch\n\n\nclass CPU_Accelerator:\n"
        "    @property\n    def FloatTensor(self):\n        return torch.FloatTensor\n\n"
        "    @property\n    def ByteTensor(self):\n        return torch.ByteTensor\n"
    ),
    "pkg/optimizer.py": (
        "from pkg.accelerator import get_accelerator\n\n\nclass Optimizer:\n"
        "    def norm(self, total: float):\n"
        "        total_cuda = get_accelerator().FloatTensor([float(total)])\n"
        "        return total_cuda[0].item()\n\n"
        "    def has_overflow(self, overflow: bool):\n"
        "        return get_accelerator().ByteTensor([overflow])\n\n"
        "    def buffer(self, n: int):\n"
        "        return get_accelerator().FloatTensor(n)\n"
    ),
}


def test_a_platform_singleton_set_on_first_use_gives_the_cuda_accelerators_tensor_types(tmp_path: Path) -> None:
    # DeepSpeed's ZeRO optimizer before #5115/#4974: `get_accelerator()` returns the module global
    # `ds_accelerator`, which it sets on first use (`global ds_accelerator`) to the platform's accelerator;
    # on CUDA its `FloatTensor` property is `torch.cuda.FloatTensor`, and given data it builds the tensor
    # on the host and copies it over. The CPU accelerator's (a `cpu_*` module) is another platform's.
    found = [(Path(d.path).name, d.code, d.start.row, d.confidence) for d in check_small_project(tmp_path, _ACCELERATORS)]
    assert found == [("optimizer.py", "SL304", 6, "high"), ("optimizer.py", "SL101", 7, "high"),
                     ("optimizer.py", "SL304", 10, "high")]


def test_a_legacy_cuda_tensor_type_given_data_copies_it_from_the_host(tmp_path: Path) -> None:
    # `torch.cuda.FloatTensor([x])` goes through `legacy_new_from_sequence` to `internal_new_from_data`,
    # the blocking copy of `torch.tensor(data, device="cuda")`; given sizes it allocates on the device.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/norms.py": (
            "import torch\n\n\ndef norm(total: float, n: int):\n"
            "    cuda_total = torch.cuda.FloatTensor([total])\n"
            "    scratch = torch.cuda.FloatTensor(n)\n"
            "    host = torch.FloatTensor([total])\n"
            "    return cuda_total[0].item(), scratch, host\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL304", 5), ("SL101", 8)]


def test_the_legacy_constructor_torch_tensor_makes_a_cpu_tensor_a_later_copy_moves(tmp_path: Path) -> None:
    # TransformerEngine's `get_padding_mask` before #3268 built the mask with `torch.Tensor([...])` in a
    # loop over the batch, then copied it with `.to(device="cuda")` (pageable, blocking), in every forward
    # of the unfused backend. `torch.Tensor(data)` is the legacy constructor: a float32 CPU tensor.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/mask.py": (
            "import torch\n\n\ndef padding_mask(lengths: list[int], width: int):\n"
            "    mask = torch.Tensor([]).to(dtype=torch.bool)\n"
            "    for n in lengths:\n"
            "        row = torch.Tensor([False] * n + [True] * (width - n)).to(dtype=torch.bool)\n"
            "        mask = torch.cat([mask, row.unsqueeze(0)], dim=0)\n"
            "    return mask.to(device=\"cuda\")\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL303", 9)]


def test_a_platform_property_returning_a_partial_of_torch_tensor_makes_gpu_tensors_from_data(tmp_path: Path) -> None:
    # DeepSpeed from 0.14: the CUDA accelerator's `FloatTensor` property returns
    # `functools.partial(torch.tensor, dtype=torch.float, device='cuda')`, so each call copies its data
    # from the host, a number included; a GPU tensor given to it is copied on the device.
    files = dict(_ACCELERATORS)
    files["pkg/accelerator/cuda_accelerator.py"] = (
        "import functools\n\nimport torch\n\n\nclass CUDA_Accelerator:\n"
        "    @property\n    def FloatTensor(self):\n"
        "        return functools.partial(torch.tensor, dtype=torch.float, device='cuda')\n\n"
        "    @property\n    def ByteTensor(self):\n"
        "        return functools.partial(torch.tensor, dtype=torch.uint8, device='cuda')\n"
    )
    files["pkg/optimizer.py"] = (
        "import torch\nfrom pkg.accelerator import get_accelerator\n\n\nclass Optimizer:\n"
        "    def norm(self, total: float):\n"
        "        total_cuda = get_accelerator().FloatTensor([float(total)])\n"
        "        return total_cuda[0].item()\n\n"
        "    def scalar(self, total: float):\n"
        "        return get_accelerator().FloatTensor(total)\n\n"
        "    def on_device(self, n: int):\n"
        "        return get_accelerator().FloatTensor(torch.ones(n, device='cuda'))\n"
    )
    found = [(Path(d.path).name, d.code, d.start.row) for d in check_small_project(tmp_path, files)]
    assert found == [("optimizer.py", "SL304", 7), ("optimizer.py", "SL101", 8), ("optimizer.py", "SL304", 11)]


def test_a_namespace_package_above_the_top_package_is_imported_through(tmp_path: Path) -> None:
    # Megatron-LM has no `megatron/__init__.py`: its files are named from their top package
    # (`core.transformer.moe.router`), while its code imports `megatron.core.transformer.moe.router`.
    found = check_small_project(tmp_path, {
        "megatron/core/__init__.py": "",
        "megatron/core/router.py": (
            "import torch\n\n\ndef route(n: int):\n    return torch.zeros(n, device='cuda')\n"
        ),
        "megatron/core/dispatcher.py": (
            "from megatron.core.router import route\n\n\ndef dispatch(n: int):\n"
            "    return route(n).sum().item()\n"
        ),
        "other/__init__.py": "",
        "other/router.py": "def route(n):\n    return n\n",
        "other/user.py": "from elsewhere.router import route\n\n\ndef use(n):\n    return route(n).item()\n",
    })
    # `elsewhere.router` is no namespace folder of `other.router`: nothing is taken from it.
    assert [(Path(d.path).name, d.code, d.start.row) for d in found] == [("dispatcher.py", "SL101", 5)]


def test_a_nested_function_reads_the_parameters_of_the_method_around_it(tmp_path: Path) -> None:
    # Megatron's MoE layer: `def custom_forward(hidden_states):` inside `forward` (for activation
    # checkpointing) calls `self.router(...)` and hands the indices to `self.dispatcher`; `self` is the
    # layer's.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/layer.py": (
            "import torch\n\n\nclass Router:\n    def route(self, x):\n"
            "        return torch.zeros(4, dtype=torch.long, device='cuda')\n\n\n"
            "class Dispatcher:\n    def permute(self, indices):\n        return indices.sum().cpu()\n\n\n"
            "class Layer:\n    def __init__(self):\n        self.router = Router()\n        self.dispatcher = Dispatcher()\n\n"
            "    def forward(self, x):\n        def custom_forward(h):\n"
            "            return self.dispatcher.permute(self.router.route(h))\n"
            "        return custom_forward(x)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.code != "SL601"] == [("SL103", 11)]


def test_a_layers_weight_is_module_state_of_no_known_device(tmp_path: Path) -> None:
    # DeepSpeed's MoE gate: `logits = F.linear(x, weight=self.wg.weight.float())` of an `nn.Linear`, then
    # `exp_counts = torch.sum(mask, dim=0).to('cpu')` on every call. The weight moves with its module: a
    # tensor of no known device (taking module state for the accelerator by convention found this in
    # training code, but a blind read of what it added to serving code found more false than true), so
    # the copy is reported with `--strict` only, and `weight=` counts as one of the inputs.
    files = {
        "pkg/__init__.py": "",
        "pkg/gate.py": (
            "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\nclass Gate(nn.Module):\n"
            "    def __init__(self, d, e):\n        super().__init__()\n"
            "        self.wg = nn.Linear(d, e, bias=False)\n\n"
            "    def forward(self, x):\n        logits = F.linear(x.float(), weight=self.wg.weight.float())\n"
            "        return torch.sum(logits, dim=0).to('cpu')\n"
        ),
    }
    assert check_small_project(tmp_path / "default", files) == []
    found = check_small_project(tmp_path / "strict", files, strict=True)
    assert [(d.code, d.start.row, d.confidence) for d in found] == [("SL103", 13, "strict")]


def test_a_call_of_a_nested_function_returns_what_it_makes_of_the_arguments(tmp_path: Path) -> None:
    # torchtitan's first `train.py`: `loss_fn` is defined inside `main`, and the loop calls it with
    # labels it moved with `.cuda()`; the loss is then read with `.item()` on every iteration.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/train.py": (
            "import torch.nn.functional as F\n\n\ndef main(model, data):\n"
            "    def loss_fn(pred, labels):\n        return F.cross_entropy(pred, labels)\n\n"
            "    def scale(x):\n        return x\n\n"
            "    for input_ids, labels in data:\n        labels = labels.cuda()\n"
            "        loss = loss_fn(model(input_ids), labels)\n        loss.item()\n"
            "        scale(input_ids).item()\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL101", 14)]


def test_a_model_placed_in_one_method_runs_on_the_gpu_in_another(tmp_path: Path) -> None:
    # AReaL's engine loads its model inside `with torch.device(platform.device_type):` in one method and
    # evaluates in another file's subclass, with a loss function its callers pass (a project function
    # whose result the index cannot place: it calls a helper from outside); a project module moved with
    # `.cuda()` and stored is called the same way.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": (
            "import torch\nfrom transformers import AutoModelForCausalLM\nfrom pkg.platforms import platform\n\n\n"
            "class Engine:\n    def create(self, path):\n        with torch.device(platform.device_type):\n"
            "            model = AutoModelForCausalLM.from_pretrained(path)\n        self.model = model\n"
        ),
        "pkg/platforms.py": "platform = None\n",
        "pkg/net.py": (
            "import torch\nfrom helpers import head\n\n\nclass Net(torch.nn.Module):\n"
            "    def forward(self, x):\n        return head(x)\n\n\n"
            "class Runner:\n    def __init__(self):\n        self.net = Net().cuda()\n\n"
            "    def run(self, x):\n        return self.net(x).sum().item()\n"
        ),
        "pkg/engine.py": (
            "from helpers import gather\nfrom pkg.base import Engine\n\n\n"
            "def sft_loss(logits, batch):\n    return -gather(logits, batch['ids']).sum()\n\n\n"
            "class Fsdp(Engine):\n    def eval_batch(self, batches, loss_fn):\n        total = 0.0\n"
            "        for mb in batches:\n            logits = self.model(**mb).logits\n"
            "            loss = loss_fn(logits, mb)\n            total += loss.item()\n        return total\n\n\n"
            "def evaluate(engine: Fsdp, data):\n    return engine.eval_batch(data, loss_fn=sft_loss)\n"
        ),
    })
    found_at = sorted((d.path.rsplit("/", 1)[-1], d.start.row, d.code, d.confidence) for d in found)
    assert found_at == [("engine.py", 15, "SL101", "convention"), ("net.py", 15, "SL101", "convention")]
    engine = next(d for d in found if d.path.endswith("engine.py"))
    assert "a module on the GPU" in engine.evidence_steps[-1].message  # the step the convention enters at
    assert engine.evidence_steps[-1].message.endswith("(pkg/base.py:10)")


def test_calls_through_wrappers_closures_loops_and_built_objects_reach_the_function(tmp_path: Path) -> None:
    # Liger-Kernel's chunked losses: a `partial` of the loss step, run through `torch.func.grad_and_value`
    # inside a nested function that a `torch.compile` rebinds, called from another nested function on
    # chunks zipped in a loop; activation checkpointing runs a layer; a local holds a module it built.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/loss.py": (
            "from functools import partial\n\nimport torch\nfrom torch.utils.checkpoint import checkpoint\n\n\n"
            "def chunk_loss(x, labels, mask=None, scale=1.0):\n    return x[labels].sum() * scale\n\n\n"
            "def fused(x, labels):\n    step = partial(chunk_loss, scale=2.0)\n\n"
            "    def fwd_bwd(xc, lc):\n        return torch.func.grad_and_value(step, argnums=0)(xc, lc)\n\n"
            "    fwd_bwd = torch.compile(fwd_bwd)\n\n"
            "    def accumulate(xc, lc):\n        return fwd_bwd(xc, lc)\n\n"
            "    for xc, lc in zip(torch.chunk(x, 4), torch.chunk(labels, 4)):\n        accumulate(xc, lc)\n\n\n"
            "def layer(h, mask):\n    return h[mask]\n\n\n"
            "class Head(torch.nn.Module):\n    def forward(self, h, keep):\n        return h[keep]\n\n\n"
            "def run(n):\n    x = torch.randn(n, 8, device='cuda')\n    fused(x, x[:, 0] > 0)\n"
            "    checkpoint(layer, x, x[:, 1] > 0, use_reentrant=False)\n"
            "    head = Head().cuda()\n    head(x, x[:, 2] > 0)\n"
        ),
    })
    found_at = sorted((d.start.row, d.code) for d in found if d.code == "SL202")
    assert found_at == [(8, "SL202"), (27, "SL202"), (32, "SL202")]


def test_batches_of_a_prepared_loader_reach_a_project_iterator(tmp_path: Path) -> None:
    # LitGPT's finetuning: Fabric prepares the loaders in one function, `fit` wraps the train loader in a
    # project `CycleIterator` and takes each batch with `next(...)`, and the loss helper compares a count
    # of the batch's targets in Python (`max(1, n)`) in another module.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": (
            "import torch\n\n\nclass CycleIterator:\n    def __init__(self, iterable):\n"
            "        self.iterable = iterable\n        self._iterator = None\n\n"
            "    def __next__(self):\n        if self._iterator is None:\n            self._iterator = iter(self.iterable)\n"
            "        return next(self._iterator)\n\n\n"
            "def loss_of(logits, targets):\n    n = (targets != -100).sum()\n    return logits.sum() / max(1, n)\n"
        ),
        "pkg/train.py": (
            "from pkg.utils import CycleIterator, loss_of\n\n\n"
            "def get_loaders(fabric, data):\n    train, val = data.train_dataloader(), data.val_dataloader()\n"
            "    return fabric.setup_dataloaders(train, val)\n\n\n"
            "def fit(fabric, model, data):\n    train_loader, _ = get_loaders(fabric, data)\n"
            "    it = CycleIterator(train_loader)\n    for _ in range(10):\n        batch = next(it)\n"
            "        loss_of(model(batch['input_ids']), batch['labels'])\n"
        ),
    })
    assert sorted((d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in found) == [
        ("train.py", 14, "SL601"), ("utils.py", 17, "SL104")]  # (SL601: the loop's call leads to it)
    assert all(d.confidence == "convention" for d in found)


def test_a_store_into_a_property_with_a_setter_calls_the_setter(tmp_path: Path) -> None:
    # OLMo-core's skip-step optimizer: the trainer sets `self.optim.latest_loss = loss` (the field is
    # declared a torch `Optimizer`, set under an `isinstance` test), the setter appends the loss to a
    # list, and the step factor compares the latest loss in Python.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/opt.py": (
            "import torch\n\n\nclass SkipStep:\n    def __init__(self):\n        self._losses = []\n\n"
            "    @property\n    def latest_loss(self):\n        return self._losses[-1] if self._losses else None\n\n"
            "    @latest_loss.setter\n    def latest_loss(self, loss):\n        self._losses.append(loss)\n\n"
            "    def factor(self):\n        mean = torch.stack(self._losses).mean()\n"
            "        if self.latest_loss > 3 * mean:\n            return 0.0\n        return 1.0\n"
        ),
        "pkg/train.py": (
            "import torch\nfrom pkg.opt import SkipStep\n\n\nclass Trainer:\n"
            "    def __init__(self, optim: torch.optim.Optimizer):\n        self.optim = optim\n\n"
            "    def step(self, n):\n        loss = torch.zeros(n, device='cuda').sum()\n"
            "        if isinstance(self.optim, SkipStep):\n            self.optim.latest_loss = loss\n"
        ),
    })
    assert [(d.path.rsplit("/", 1)[-1], d.start.row, d.code, d.confidence) for d in found] == [
        ("opt.py", 18, "SL104", "convention")]  # (the store is on an object of a class not known here)


def test_evidence_shows_where_a_convention_enters(tmp_path: Path) -> None:
    # `loss.item()` of a model accelerate prepared: the steps shown stop at `model(**batch)`, and the
    # evidence adds the step that makes it a convention, `accelerator.prepare(...)`, with its line.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/train.py": (
            "from accelerate import Accelerator\n\n\ndef train(model, optimizer, dataloader):\n"
            "    accelerator = Accelerator()\n"
            "    model, optimizer, dataloader = accelerator.prepare(model, optimizer, dataloader)\n"
            "    for batch in dataloader:\n        outputs = model(**batch)\n        loss = outputs.loss\n"
            "        print(loss.item())\n"
        ),
    })
    assert [(d.start.row, d.code) for d in found] == [(10, "SL101")]
    last = found[0].evidence_steps[-1]
    assert "`accelerator.prepare(model, optimizer, dataloader)` places it on the training device" in last.message
    assert last.row == 6


def test_type_as_takes_the_other_tensors_device(tmp_path: Path) -> None:
    # `type_as(other)` is `to(other)`: VideoMAE's CPU sinusoid table is copied to the GPU by the
    # `type_as` itself, and the `.to(device=...)` after it copies on the device.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/table.py": "import torch\n\n\ndef table(n):\n    return torch.FloatTensor(n, n)\n",
        "pkg/emb.py": (
            "import torch\nfrom pkg.table import table\n\n\nclass Emb(torch.nn.Module):\n"
            "    def __init__(self, n):\n        super().__init__()\n        self.pos = table(n)\n\n"
            "    def forward(self, x):\n"
            "        e = self.pos.type_as(x).to(device=x.device, copy=True)\n"
            "        g = torch.zeros(4, device='cuda')\n"
            "        return e, g.type_as(self.pos), self.pos.type_as(g).cpu()\n"
        ),
    })
    assert sorted((d.code, d.start.row, d.start.column, d.confidence) for d in found) == [
        ("SL103", 13, 19, "high"), ("SL103", 13, 40, "high"), ("SL303", 11, 13, "convention"),
        ("SL303", 13, 40, "high")]


def test_an_augmented_assignment_keeps_what_the_name_held(tmp_path: Path) -> None:
    # torchtitan's validator: `loss = torch.sum(torch.stack(losses)); loss /= num_steps`, then
    # `dist_sum(loss, mesh)`: the loss is still a GPU tensor, not the count it was divided by, so the
    # reducer's parameter is a GPU tensor wherever it is called from.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/reduce.py": "def dist_sum(x, mesh=None):\n    return float(x.item())\n",
        "pkg/validate.py": (
            "import torch\nfrom pkg.reduce import dist_sum\n\n\ndef validate(batches):\n"
            "    losses = []\n    num_steps = 0\n    for b in batches:\n"
            "        losses.append(torch.ones((), device='cuda') * b)\n        num_steps += 1\n"
            "    loss = torch.sum(torch.stack(losses))\n    loss /= num_steps\n    return dist_sum(loss)\n"
        ),
    })
    assert [(Path(d.path).name, d.code, d.start.row) for d in found if d.code != "SL601"] == [
        ("reduce.py", "SL101", 2)]


def test_a_library_class_keeps_the_tensors_it_is_given_by_keyword(tmp_path: Path) -> None:
    # verl's packed sequences: Megatron's `PackedSeqParams` (a library dataclass) is built from a GPU
    # `cu_seqlens` and read back as `packed_seq_params.cu_seqlens_q_padded[i]` in another function.
    # A project class, and a library one given only host values, say nothing of the kind.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/local.py": "class Params:\n    def __init__(self, cu_seqlens_q=None):\n        self.cu_seqlens_q = None\n",
        "pkg/util.py": (
            "import torch\nfrom megatron.core.packed_seq_params import PackedSeqParams\nfrom pkg.local import Params\n\n\n"
            "def pre(n: int):\n    cu = torch.zeros(n + 1, dtype=torch.int32, device='cuda')\n"
            "    params = PackedSeqParams(qkv_format='thd', cu_seqlens_q_padded=cu)\n"
            "    first = params.cu_seqlens_q_padded[1].item()\n"
            "    return params, Params(cu_seqlens_q=cu), PackedSeqParams(cu_seqlens_q=torch.zeros(n))\n\n\n"
            "def post(out, p: PackedSeqParams, q: Params, h: PackedSeqParams):\n"
            "    return out[: p.cu_seqlens_q_padded[1]], q.cu_seqlens_q.item(), h.cu_seqlens_q.tolist()\n\n\n"
            "def run(out):\n    p, q, h = pre(4)\n    return post(out, p, q, h)\n"
        ),
        # A `SimpleNamespace` is a stand-in (a unit test's), not a library's dataclass: the project's
        # joins do not read what it is given.
        "pkg/stub.py": (
            "from types import SimpleNamespace\n\nimport torch\n\n\ndef make(n: int):\n"
            "    return SimpleNamespace(ids=torch.zeros(n, device='cuda'))\n\n\n"
            "def read(n: int):\n    return make(n).ids.tolist()\n"
        ),
    })
    assert [(d.path.rsplit("/", 1)[-1], d.code, d.start.row) for d in found if d.code != "SL601"] == [
        ("util.py", "SL101", 9), ("util.py", "SL104", 14)]


def test_a_tensor_parameter_whose_device_the_body_computes_on_is_on_the_accelerator(tmp_path: Path) -> None:
    # torchtitan's expert-parallel `_permute(routed, counts)`: `device = counts.device` and then
    # `torch.arange(counts.sum(), device=device)`. `counts.device` is taken for an accelerator, so
    # `counts` is on it too (by convention), in that function only. A parameter not known to be a
    # tensor (an object with a `device` field) is not made one.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/dispatch.py": (
            "import torch\n\n\ndef permute(routed, counts: torch.Tensor):\n    device = counts.device\n"
            "    total = counts.sum()\n    return routed[torch.arange(total, device=device)]\n\n\n"
            "def plain(counts: torch.Tensor):\n    return counts.sum().item()\n\n\n"
            "def batch(forward_batch, n: int):\n    if forward_batch:\n"
            "        return torch.zeros(n, device=forward_batch.device)\n"
        ),
    })
    assert [(d.code, d.start.row, d.confidence) for d in found] == [("SL104", 7, "convention")]


def test_an_augmented_bitwise_assignment_keeps_its_operator(tmp_path: Path) -> None:
    # LightGlue's `keep = scores > t; keep |= confidences <= c`: a bitwise or of two masks is a mask
    # on their device; read as an arithmetic op it lost the device of the GPU operand.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/prune.py": (
            "import torch\n\n\ndef prune_mask(confidences, scores):\n    keep = scores > 0.5\n"
            "    keep |= confidences <= 0.1\n    return keep\n\n\n"
            "def prune(x, descriptors):\n    conf = torch.ones(4, device='cuda')\n"
            "    return descriptors[prune_mask(conf, x)]\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL202", 12)]


def test_a_none_fallback_no_call_takes_is_not_read(tmp_path: Path) -> None:
    # transformers' ASR encoders: `max_length = target_length if target_length is not None else
    # lengths.max()`, then `torch.arange(max_length, ...)`; every call passes `target_length=x.shape[1]`,
    # so the GPU maximum is never the size. Where a call leaves it None, the fallback is read.
    method = (
        "    def {name}(self, attention_mask: torch.Tensor, target_length: int | None = None):\n"
        "        lengths = attention_mask.sum(-1)\n"
        "        max_length = target_length if target_length is not None else lengths.max()\n"
        "        return torch.arange(max_length, device=attention_mask.device) < lengths[:, None]\n\n"
    )
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/asr.py": (
            "import torch\n\n\nclass Enc(torch.nn.Module):\n" + method.format(name="mask")
            + method.format(name="mask2")
            + "    def forward(self, hidden, attention_mask):\n"
            "        return self.mask(attention_mask, target_length=hidden.shape[1]), self.mask2(attention_mask)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.code != "SL601"] == [("SL104", 13)]


def test_a_pipelines_registered_modules_are_its_attributes(tmp_path: Path) -> None:
    # diffusers' pipelines hand their components to `DiffusionPipeline.register_modules(...)`, which
    # sets each as an attribute: `self.scheduler` is the scheduler the constructor was given.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sched.py": (
            "import torch\n\n\nclass Scheduler:\n    def __init__(self):\n        self.timesteps = None\n\n"
            "    def set_timesteps(self, n):\n        self.timesteps = torch.arange(n, device='cuda')\n"
        ),
        "pkg/pipe.py": (
            "from diffusers import DiffusionPipeline\nfrom pkg.sched import Scheduler\n\n\n"
            "class Pipe(DiffusionPipeline):\n    def __init__(self, scheduler: Scheduler):\n"
            "        super().__init__()\n        self.register_modules(scheduler=scheduler)\n\n"
            "    def __call__(self, n):\n        self.scheduler.set_timesteps(n)\n"
            "        return self.scheduler.timesteps.tolist()\n"
        ),
    })
    assert [(d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in found] == [("pipe.py", 12, "SL102")]


def test_a_parameter_a_triton_kernel_is_launched_with_is_on_the_gpu(tmp_path: Path) -> None:
    # flash-linear-attention's `chunk_gated_delta_rule_fwd_h`: `cu_seqlens` goes to a Triton kernel, so
    # it is a device tensor at every call, and `prepare_chunk_offsets(cu_seqlens, BT)` copies `[0]`
    # to the GPU. A parameter passed only to a launch of a kernel that is not Triton's says nothing,
    # and one not known to be a tensor (`T=n`) may be a number: vLLM's routing kernels take counts.
    # Nor does a launch behind a device test (`if not t.is_cuda: return ...`), which CPU calls skip, nor
    # one of a parameter not declared a tensor (SGLang's head counts), declared a number too (vLLM's
    # `num_sampled: torch.Tensor | int`), or whose type a test around the launch tells apart.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/kernels.py": (
            "import triton\nimport triton.language as tl\nfrom numba import cuda\n\n\n"
            "@triton.autotune(configs=[], key=['T'])\n@triton.jit\ndef fwd_kernel(x, cu_seqlens, T):\n"
            "    pass\n\n\n@cuda.jit\ndef numba_kernel(x):\n    pass\n"
        ),
        "pkg/ops.py": (
            "import torch\nfrom pkg.kernels import fwd_kernel, numba_kernel\n\n\n"
            "def offsets(cu_seqlens, chunk):\n    return torch.cat([cu_seqlens.new_tensor([0]), cu_seqlens // chunk])\n\n\n"
            "def fwd(x, n, cu_seqlens: torch.Tensor | None = None):\n    if cu_seqlens is not None:\n"
            "        offs = offsets(cu_seqlens, 64)\n    fwd_kernel[(1,)](x, cu_seqlens=cu_seqlens, T=n)\n"
            "    if n > 1:\n        return None\n    return x\n\n\n"
            "def host(y):\n    numba_kernel[1, 32](y)\n    return y.tolist()\n\n\n"
            "def count(lens):\n    return lens.sum().item()\n\n\n"
            "def either(t: torch.Tensor, lens: torch.Tensor):\n    n = count(lens)\n"
            "    if not t.is_cuda:\n        return t.sum()\n    fwd_kernel[(1,)](t, lens, T=n)\n    return t\n\n\n"
            "def postprocess(idx: torch.Tensor, num: torch.Tensor | int, counts: torch.Tensor):\n"
            "    if not isinstance(num, int):\n        fwd_kernel[(1,)](idx, num, T=1)\n"
            "    else:\n        fwd_kernel[(1,)](idx, counts, T=max(num, 1))\n\n\n"
            "def typed(idx: torch.Tensor, lens: torch.Tensor | None):\n    if isinstance(lens, torch.Tensor):\n"
            "        fwd_kernel[(1,)](idx, lens, T=1)\n    return lens > 1 and idx\n\n\n"
            "def split(x: torch.Tensor, heads):\n    fwd_kernel[(1,)](x, x, T=heads)\n    if heads > 1:\n"
            "        return x\n    return None\n\n\n"
            "def caller(x: torch.Tensor, counts: torch.Tensor):\n    return split(x, counts)\n"
        ),
    })
    assert [(d.path.rsplit("/", 1)[-1], d.start.row, d.code, d.confidence) for d in found] == [
        ("ops.py", 6, "SL304", "high")]
    assert "is passed to the Triton kernel `fwd_kernel` at line 12" in found[0].evidence_steps[-1].message


def test_a_tensor_parameter_handed_to_flash_attn_is_on_the_gpu(tmp_path: Path) -> None:
    # flash-attn's entry points take CUDA tensors only (`CHECK_DEVICE(cu_seqlens_q)`): TransformerEngine's
    # attention before #555 read `max_seqlen_q = seqlens_q.max().item()` from the `cu_seqlens_q` it then
    # handed to `flash_attn_varlen_func`. Not so behind a device test, nor for a parameter not declared a
    # tensor, nor for a function of another library of that name.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/attn.py": (
            "import torch\nfrom flash_attn.flash_attn_interface import flash_attn_varlen_func as fa_func\n"
            "from other_lib import flash_attn_varlen_func\n\n\n"
            "def attend(q, cu_seqlens_q: torch.Tensor, scale):\n"
            "    seqlens = cu_seqlens_q[1:] - cu_seqlens_q[:-1]\n    max_seqlen = seqlens.max().item()\n"
            "    return fa_func(q, q, q, cu_seqlens_q, cu_seqlens_q, max_seqlen, max_seqlen, 0.0,\n"
            "                   softmax_scale=scale)\n\n\n"
            "def checked(q, cu: torch.Tensor):\n    n = cu.max().item()\n    if not cu.is_cuda:\n        return None\n"
            "    return fa_func(q, q, q, cu, cu, n, n, 0.0)\n\n\n"
            "def untyped(q, cu):\n    n = cu.max().item()\n    return fa_func(q, q, q, cu, cu, n, n, 0.0)\n\n\n"
            "def elsewhere(q, cu: torch.Tensor):\n    n = cu.max().item()\n    return flash_attn_varlen_func(q, cu, n)\n"
        ),
    })
    assert [(d.path.rsplit("/", 1)[-1], d.start.row, d.code, d.confidence) for d in found] == [
        ("attn.py", 8, "SL101", "high")]
    assert "which takes CUDA tensors only" in found[0].evidence_steps[-1].message


def test_a_return_that_runs_only_for_a_non_tensor_is_not_what_a_tensor_argument_gets(tmp_path: Path) -> None:
    # OLMo-core's `move_to_device(o, device)`: a tensor is moved; a dict, list or tuple is moved item by
    # item; anything else comes back as it came (`else: return o`). Given a CPU tensor, the call returns
    # the moved copy only: the last `return` runs for no tensor, and joined the CPU tensor in.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": (
            "import torch\n\n\ndef move(o, device):\n    if isinstance(o, torch.Tensor):\n"
            "        return o.to(device, non_blocking=True)\n    elif isinstance(o, dict):\n"
            "        return {k: move(v, device) for k, v in o.items()}\n    else:\n        return o\n"
        ),
        "pkg/train.py": (
            "import torch\nfrom pkg.utils import move\n\n\ndef step(device: torch.device, n):\n"
            "    loss = move(torch.tensor(0.0), device)\n    count = move(n, device)\n"
            "    if loss > 1:\n        return count\n    return None\n"
        ),
    })
    # (and the copy of the CPU tensor from pageable memory, inside `move`)
    assert sorted((d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in found) == [
        ("train.py", 8, "SL104"), ("utils.py", 6, "SL303")]


def test_a_lightning_module_logging_a_number_copies_it_to_the_device(tmp_path: Path) -> None:
    # NeMo #14489: `self.log("global_step", self.trainer.global_step)` in every training step makes
    # Lightning build `torch.tensor(value, device=self.device)`. The module derives from
    # `LightningModule` through a class of another module; a tensor logged, a logger that is not
    # Lightning's and a class that is not a module are not reported.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "import lightning.pytorch as pl\n\n\nclass Base(pl.LightningModule):\n    pass\n",
        "pkg/model.py": (
            "from pkg.base import Base\n\n\nclass Model(Base):\n    def training_step(self, batch, batch_idx):\n"
            "        loss = batch.sum()\n        self.log('loss', loss)\n        self.log('step', self.global_step)\n"
            "        return loss\n\n\nclass Report:\n    def log(self, name, value):\n        pass\n\n"
            "    def step(self, n: int):\n        self.log('n', n)\n"
        ),
        "pkg/callbacks.py": (
            "import logging\n\n\nclass Progress:\n    def on_train_batch_end(self, trainer, pl_module, outputs, batch, i):\n"
            "        pl_module.log('epoch', trainer.current_epoch)\n        logging.log(20, 'x')\n"
        ),
    })
    assert sorted((Path(d.path).name, d.code, d.start.row, d.confidence) for d in found) == [
        ("callbacks.py", "SL502", 6, "convention"), ("model.py", "SL502", 8, "convention")]


def test_a_buffer_registered_on_the_gpu_is_read_on_the_gpu_in_another_method(tmp_path: Path) -> None:
    # FBGEMM's SSD embedding before #2672: `hash_size_cumsum` is registered with
    # `device=self.current_device` (`torch.cuda.current_device()`), and every forward passes
    # `self.hash_size_cumsum[-1].item()`. A buffer made on the CPU moves with its module: unknown.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ssd.py": (
            "import torch\n\n\nclass SSD(torch.nn.Module):\n"
            "    def __init__(self, rows: list[int]):\n"
            "        super().__init__()\n"
            "        self.current_device: torch.device = torch.cuda.current_device()\n"
            "        self.register_buffer('cumsum', torch.tensor(rows, device=self.current_device))\n"
            "        self.register_buffer('host_made', torch.tensor(rows))\n\n"
            "    def forward(self, x):\n"
            "        a = self.cumsum[-1].item()\n"
            "        b = self.host_made[-1].item()\n"
            "        return x + a + b\n"
        ),
    })
    rows = [(d.code, d.start.row) for d in found if d.code == "SL101"]
    assert rows == [("SL101", 12)]
    evidence = next(d for d in found if d.code == "SL101").evidence
    assert "field `cumsum` of `SSD`" in evidence and "pkg/ssd.py:8" in evidence


def test_what_an_autograd_forward_saves_is_what_its_backward_reads(tmp_path: Path) -> None:
    # axolotl's ScatterMoE-LoRA before #3712: the forward saves `expert_offsets` with
    # `ctx.save_for_backward(...)`, and the backward unpacks `ctx.saved_tensors` and reads
    # `expert_offsets[e].item()` once per expert. The saves of two branches join place by place.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/fn.py": (
            "import torch\n\n\n"
            "class Scatter(torch.autograd.Function):\n"
            "    @staticmethod\n"
            "    def forward(ctx, x, offsets, host, flag):\n"
            "        if flag:\n"
            "            ctx.save_for_backward(x, offsets, host)\n"
            "        else:\n"
            "            ctx.save_for_backward(x, offsets.clone(), host)\n"
            "        return x * 2\n\n"
            "    @staticmethod\n"
            "    def backward(ctx, grad):\n"
            "        x, offsets, host = ctx.saved_tensors\n"
            "        for e in range(4):\n"
            "            o = offsets[e].item()\n"
            "            h = host[e].item()\n"
            "        return grad, None, None, None\n\n\n"
            "def run(x, flag):\n"
            "    counts = torch.ones(4, device='cuda', dtype=torch.long)\n"
            "    return Scatter.apply(x, counts.cumsum(-1), torch.zeros(4, dtype=torch.long), flag)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL101", 17)]
    assert "saved by `ctx.save_for_backward(...)` in `Scatter.forward` (pkg/fn.py:8)" in found[0].evidence


def test_a_parameter_every_call_leaves_none_takes_the_value_made_on_the_gpu_in_its_place(tmp_path: Path) -> None:
    # physicsnemo's BVH before #1720: `_ragged_arange(starts, counts)` leaves `total` None, so the
    # callee computes `total = counts.sum()` on the device and `torch.arange(total, ...)` reads it back.
    # Where a call passes the argument, where the parameter was rebound first, or where no call is
    # known, the value before the test may be a host number or the caller's CPU tensor: nothing.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ragged.py": (
            "import torch\n\n\n"
            "def ragged(counts, total=None):\n"
            "    if total is None:\n"
            "        total = counts.sum()\n"
            "    return torch.arange(total, device=counts.device)\n\n\n"         # 7: found
            "def inline(counts, total=None):\n"
            "    n = total if total is not None else counts.sum()\n"
            "    return torch.arange(n, device=counts.device)\n\n\n"             # 12: found
            "def passed(counts, total=None):\n"
            "    if total is None:\n"
            "        total = counts.sum()\n"
            "    return torch.arange(total, device=counts.device)\n\n\n"         # 18: a call passes it
            "def rebound(counts, total=None, extra=None):\n"
            "    total = extra\n"
            "    if total is None:\n"
            "        total = counts.sum()\n"
            "    return torch.arange(total, device=counts.device)\n\n\n"         # 25: rebound first
            "def uncalled(counts, total=None):\n"
            "    if total is None:\n"
            "        total = counts.sum()\n"
            "    return torch.arange(total, device=counts.device)\n"             # 31: no known call
        ),
        "pkg/use.py": (
            "import torch\n\n"
            "from pkg.ragged import inline, passed, ragged, rebound\n\n\n"
            "def step(n: int, size: int):\n"
            "    counts = torch.ones(n, dtype=torch.long, device='cuda')\n"
            "    ragged(counts)\n"
            "    inline(counts)\n"
            "    passed(counts)\n"
            "    passed(counts, total=size)\n"
            "    rebound(counts, extra=size)\n"
        ),
    })
    rows = sorted((d.path.rsplit("/", 1)[-1], d.start.row) for d in found if d.code == "SL104")
    assert rows == [("ragged.py", 7), ("ragged.py", 12)]
    evidence = next(d for d in found if d.code == "SL104" and d.start.row == 7).evidence
    assert "every known call leaves it" in evidence and "pkg/use.py:8" in evidence
    inline = next(d for d in found if d.code == "SL104" and d.start.row == 12).evidence
    assert "when `total` is None (as every known call leaves it)" in inline


def test_a_data_loader_stored_in_one_method_yields_host_batches_in_another(tmp_path: Path) -> None:
    # The index's reading of `DataLoader(...)` (a field set in `setup`, iterated in `train`): the batches
    # of the pageable loader are copied with a blocking `.cuda()`; the pinned loader's `non_blocking`
    # copies neither wait nor stage.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/trainer.py": (
            "from torch.utils.data import DataLoader\n\n\n"
            "class Trainer:\n"
            "    def setup(self, ds, model):\n"
            "        self.model = model.cuda()\n"
            "        self.loader = DataLoader(ds, batch_size=8, pin_memory=True)\n"
            "        self.eval_loader = DataLoader(ds, batch_size=8)\n\n"
            "    def train(self):\n"
            "        for batch in self.loader:\n"
            "            batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}\n"
            "            self.model(**batch)\n"
            "        for inputs, labels in self.eval_loader:\n"
            "            self.model(inputs.cuda())\n"                                  # 15: found
        ),
    })
    assert [(d.code, d.start.row) for d in found if d.code.startswith("SL3")] == [("SL303", 15)]
    assert "field `eval_loader` of `Trainer`" in next(d for d in found if d.code == "SL303").evidence


def test_a_gradient_norm_handed_to_a_logging_method_is_read_back_there(tmp_path: Path) -> None:
    # The index's reading of `clip_grad_norm_` (torch's function, or a launcher's method of that name): the
    # norm a training step returns is on the gradients' device, so the logger's `.item()` waits for the
    # backward. A project method of that name answers for itself.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/trainer.py": (
            "import torch\n\nfrom pkg.optim import Optimizer\n\n"
            "class Trainer:\n"
            "    def _clip(self, model):\n"
            "        return torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n\n"
            "    def _log(self, grad_norm):\n"
            "        return {'grad_norm': grad_norm.item()}\n\n"                       # 10: found
            "    def step(self, model, accelerator):\n"
            "        self._log(self._clip(model))\n"
            "        self._log(accelerator.clip_grad_norm_(model.parameters(), 1.0))\n"
            "        self._report(Optimizer().clip_grad_norm_(1.0))\n\n"
            "    def _report(self, norm):\n"
            "        return norm.item()\n"                                              # 18: not found
        ),
        "pkg/optim.py": (
            "class Optimizer:\n"
            "    def clip_grad_norm_(self, max_norm):\n"
            "        return float(max_norm)\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL101", 10)]
    assert "clip_grad_norm_" in found[0].evidence


def test_the_index_reads_which_parameters_a_gradient_norm_is_taken_of(tmp_path: Path) -> None:
    # As the checked file does: the norm of a model moved with `.cuda()` is on the GPU, proven; that of
    # a model kept on the CPU is on the CPU, and reading it back waits for nothing.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/net.py": (
            "import torch\n\n\nclass Net(torch.nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(2, 2)\n"
        ),
        "pkg/trainer.py": (
            "import torch\n\nfrom pkg.net import Net\n\n"
            "def log_gpu(norm):\n"
            "    return norm.item()\n\n"                                               # 6: found
            "def log_cpu(norm):\n"
            "    return norm.item()\n\n"                                               # 9: not found
            "def step_gpu():\n"
            "    model = Net().cuda()\n"
            "    log_gpu(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))\n\n"
            "def step_cpu(accelerator):\n"
            "    model = Net().cpu()\n"
            "    log_cpu(accelerator.clip_grad_norm_(model.parameters(), 1.0))\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL101", 6)]
    assert found[0].confidence == "high"


def test_a_tensor_made_on_the_device_of_an_unknown_value_is_on_the_gpu_by_convention_only(tmp_path: Path) -> None:
    # The index's reading of `torch.zeros(..., device=images.device)` with `images` of no known kind (no
    # annotation, no caller), returned to another function: as the checked file reads `images.device`, an
    # accelerator by convention, so the `.item()` on the result is a `convention` finding, not a proven one.
    # A device the callers prove (`pad(torch.ones(2, device="cuda"))`) stays proven.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": (
            "import torch\n\n\n"
            "def pad(images):\n"
            "    return torch.zeros(3, device=images.device)\n\n\n"
            "def use(images):\n"
            "    return pad(images).sum().item()\n\n\n"                                  # 9: convention
            "def pad_known(images):\n"
            "    return torch.zeros(3, device=images.device)\n\n\n"
            "def use_known():\n"
            "    return pad_known(torch.ones(2, device='cuda')).sum().item()\n"          # 17: high
        ),
    })
    assert [(d.code, d.start.row, d.confidence) for d in found] == \
        [("SL101", 9, "convention"), ("SL101", 17, "high")]


def test_stores_made_on_an_unknown_values_device_still_teach_the_repository_convention(tmp_path: Path) -> None:
    # Serving code allocates on its runner's device (`torch.zeros(n, device=runner.device)`, `runner` of no
    # known kind): such stores count as GPU stores for the attribute convention, which is itself labelled a
    # convention where it is used. A read of `m.kv_indptr[-1]` as a slice bound is then reported.
    backends = {
        f"pkg/backend_{i}.py": (
            "import torch\n\n\n"
            f"class Backend{i}:\n"
            "    def __init__(self, runner, n):\n"
            "        self.kv_indptr = torch.zeros(n + 1, dtype=torch.int32, device=runner.device)\n"
        )
        for i in range(3)
    }
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        **backends,
        "pkg/update.py": (
            "import torch\n\n\n"
            "def update(m, kv_indices):\n"
            "    last = m.kv_indptr[-1]\n"
            "    return kv_indices[:last]\n"                                           # 6: found
        ),
    })
    assert [(d.code, d.path.endswith("update.py"), d.start.row, d.confidence) for d in found] == \
        [("SL104", True, 6, "convention")]


def test_a_multimodal_input_declared_in_another_module_says_the_declaration_is_not_its_own(tmp_path: Path) -> None:
    # vLLM's models read `kwargs["image_grid_thw"]` whose `keep_on_cpu=True` another model declares: the
    # line cited is one of the agreeing declarations, perhaps of another model, and the evidence says so.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/inputs.py": "class MultiModalFieldConfig:\n    @staticmethod\n    def batched(m, keep_on_cpu=False):\n"
                         "        return m\n",
        "pkg/other.py": "from pkg.inputs import MultiModalFieldConfig\n\n\ndef fields():\n"
                        "    return dict(sizes=MultiModalFieldConfig.batched('image', keep_on_cpu=True))\n",
        "pkg/model.py": (
            "import torch\n\n\nclass Model:\n"
            "    def embed(self, **kwargs):\n"
            "        x = torch.zeros(2, device='cuda')\n"
            "        sizes = kwargs.pop('sizes')\n"
            "        return sizes.to(x.device)\n"                                       # 8: found
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL303", 8)]
    assert "declared `keep_on_cpu=True` (as 1 declaration(s) in the project agree; this one in another module)" \
        in found[0].evidence and "pkg/other.py:5" in found[0].evidence


def test_the_default_device_a_function_returns_is_no_tensor_even_under_strict(tmp_path: Path) -> None:
    # transformers' `device_map = load_config.device_map or {"": "cpu"}`, where the map may be what
    # `torch.get_default_device()` returned in another module: a `torch.device`, whose truth test reads
    # nothing from the GPU.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/devices.py": "import torch\n\n\ndef global_device():\n    return torch.get_default_device()\n",
        "pkg/load.py": (
            "from pkg.devices import global_device\n\n\n"
            "def load():\n"
            "    where = global_device()\n"
            "    if where:\n"
            "        return where\n"
        ),
    }, strict=True)
    assert [(d.code, d.start.row) for d in found if d.path.endswith("load.py")] == []


def test_a_return_that_is_a_number_or_a_host_tensor_is_no_gpu_value_even_under_strict(tmp_path: Path) -> None:
    # transformers' FLAVA masking generator: `_mask` returns `delta = 0`, or `delta += zeros_pos.sum()` of
    # slices of the CPU mask its caller made; `if delta == 0:` reads a number or a host tensor.
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/gen.py": (
            "import torch\n\n\nclass Gen:\n"
            "    def _mask(self, mask, tries):\n"
            "        delta = 0\n"
            "        for _ in range(tries):\n"
            "            delta += (mask == 0).sum()\n"
            "        return delta\n\n"
            "    def __call__(self):\n"
            "        mask = torch.zeros((4, 4), dtype=torch.int)\n"
            "        delta = self._mask(mask, 5)\n"
            "        if delta == 0:\n"
            "            return None\n"
            "        return mask\n"
        ),
    }, strict=True)
    assert [(d.code, d.start.row) for d in found] == []
