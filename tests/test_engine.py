"""The engine: one parse per file, trigger prefilter, import aliases, plugins, diagnostics, parallelism."""

from __future__ import annotations

import concurrent.futures
import json
import sys
from collections import Counter
from pathlib import Path

import libcst
import pytest
from click.testing import CliRunner

from sync_lint import registry
from sync_lint.engine import parallel as parallel_module
from sync_lint.cli import main
from sync_lint.config import Settings
from sync_lint.diagnostics import Position
from sync_lint import api
from sync_lint.engine import lint_file, lint_source
from sync_lint.registry import all_rules
from sync_lint.rulekit import Rule

GPU_SRC = 'x = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'
CPU_SRC = "import torch\nx = torch.zeros(3)\nv = x.sum().item()\n"
SETTINGS = Settings(target_torch_version="2.11")


def item_rule() -> type[Rule]:
    return all_rules()["SL101"]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def findings(stdout: str) -> list[tuple[str, int, int, str]]:
    return [
        (Path(d["filename"]).name, d["location"]["row"], d["location"]["column"], d["code"])
        for d in json.loads(stdout)
    ]


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def fresh_registry():
    all_rules.cache_clear()
    yield
    all_rules.cache_clear()


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every source text handed to libcst.parse_module while the test runs."""
    calls: list[str] = []
    real = libcst.parse_module

    def counting(source, *args, **kwargs):
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(libcst, "parse_module", counting)
    return calls


# ==========================================================================================
# One parse, one walk
# ==========================================================================================


class NameSeen(Rule):
    code = "XE001"
    name = "name-seen"
    summary = "Records every file in which it saw a Name."
    triggers = ("torch",)
    paths: list[str] = []

    def visit_Name(self, node) -> None:
        type(self).paths.append(self.ctx.path)


class AssignSeen(Rule):
    code = "XE002"
    name = "assign-seen"
    summary = "Records every file in which it left an Assign."
    triggers = (" = ",)
    paths: list[str] = []

    def leave_Assign(self, node) -> None:
        type(self).paths.append(self.ctx.path)


@pytest.fixture
def extra_rules(monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    NameSeen.paths = []
    AssignSeen.paths = []
    monkeypatch.setattr(registry, "plugin_rules", lambda: [NameSeen, AssignSeen])


def test_one_parse_per_file_with_several_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               extra_rules: None, parse_calls: list[str]) -> None:
    sources = {
        "a.py": GPU_SRC,
        "b.py": "import torch\n" + GPU_SRC + "w = x.max().item()\n",
        "sub/c.py": CPU_SRC,
    }
    write(tmp_path, sources)
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "--select", "ALL", "--jobs", "1", "--output-format", "json", ".")
    assert result.exit_code == 1, result.output
    assert Counter(parse_calls) == Counter(sources.values())  # each file exactly once
    # All three rules ran on every file during that single parse.
    assert {Path(p).name for p in NameSeen.paths} == {"a.py", "b.py", "c.py"}
    assert {Path(p).name for p in AssignSeen.paths} == {"a.py", "b.py", "c.py"}
    got = [f for f in findings(result.stdout) if f[3] == "SL101"]
    assert sorted((f[0], f[1]) for f in got) == [("a.py", 2), ("b.py", 3), ("b.py", 4)]


def test_gpu_rules_skip_files_without_gpu_evidence(tmp_path: Path, parse_calls: list[str]) -> None:
    # `.item()` is a trigger, but with no `device`, `cuda`, `.to(`, `_gpu`... in the
    # file no tensor in it can be inferred to be on the GPU, so it is not parsed.
    write(tmp_path, {"host.py": CPU_SRC, "gpu.py": GPU_SRC})
    rules = [item_rule()]
    assert not lint_file(str(tmp_path / "host.py"), rules, SETTINGS).parsed
    assert lint_file(str(tmp_path / "gpu.py"), rules, SETTINGS).parsed
    # In --strict mode a tensor of unknown device is enough, so `torch` counts.
    strict = SETTINGS.override(strict=True)
    assert lint_file(str(tmp_path / "host.py"), rules, strict).parsed


@pytest.mark.parametrize("path, checked", [
    ("attention/cpu_attn.py", False),  # a CPU backend
    ("layers/ops/cpu/gdn.py", False),
    ("worker/cpu_model_runner.py", False),
    ("models/decoder_cpu.py", False),
    ("prefill/zen_cpu_sdpa.py", False),
    ("cpu.py", False),
    ("kv_offload/cpu/gpu_worker.py", True),  # moves data between host and device: its syncs are real
    ("connectors/simple_cpu_offload_connector.py", True),
    ("sample/cpu_utils_gpu.py", True),
    ("attention/flash_attn.py", True),
    ("cpus.py", True),
])
def test_cpu_platform_modules_are_checked_only_with_strict(tmp_path: Path, path: str, checked: bool) -> None:
    write(tmp_path, {path: GPU_SRC})
    rules = [item_rule()]
    # With no project the path is taken within the configuration's folder.
    settings = SETTINGS.override(root=tmp_path)
    codes = [d.code for d in lint_file(str(tmp_path / path), rules, settings).diagnostics]
    assert codes == (["SL101"] if checked else [])
    assert [d.code for d in lint_file(str(tmp_path / path), rules, settings.override(strict=True)).diagnostics] \
        == ["SL101"]
    assert [d.code for d in lint_file(str(tmp_path / path), rules, settings.override(cpu_modules=())).diagnostics] \
        == ["SL101"]


@pytest.mark.parametrize("path,checked", [
    ("hardware_backend/npu/attention/ascend_backend.py", False),  # SGLang's Ascend backend
    ("layers/attention/xpu_backend.py", False),
    ("worker/xpu_worker.py", False),
    ("hardware_backend/mlx/tp_worker.py", False),
    ("platforms/musa.py", False),
    ("models/mindspore.py", False),  # SGLang's MindSpore models run on Ascend only
    ("model_executor/mindspore_runner.py", False),
    ("pytorch/backends/dlinfer/camb/op_backend.py", False),  # LMDeploy's Cambricon MLU backend
    ("pytorch/backends/dlinfer/maca/op_backend.py", False),  # and MetaX MACA's
    ("pytorch/backends/dlinfer/op_backend.py", False),  # DeepLink's engine for those chips
    ("pytorch/backends/cuda/op_backend.py", True),
    ("utils/cuda_mps.py", True),  # CUDA's multi-process service, not Apple's MPS
    ("layers/output.py", True),
    ("sample/timestamps.py", True),
])
def test_other_accelerators_modules_are_checked_only_with_strict(tmp_path: Path, path: str, checked: bool) -> None:
    write(tmp_path, {path: GPU_SRC})
    settings = SETTINGS.override(root=tmp_path)
    codes = [d.code for d in lint_file(str(tmp_path / path), [item_rule()], settings).diagnostics]
    assert codes == (["SL101"] if checked else [])
    assert [d.code for d in lint_file(str(tmp_path / path), [item_rule()], settings.override(strict=True)).diagnostics] \
        == ["SL101"]
    assert [d.code for d in lint_file(str(tmp_path / path), [item_rule()],
                                      settings.override(other_platform_modules=())).diagnostics] == ["SL101"]


def test_folders_above_the_project_do_not_make_a_cpu_module(tmp_path: Path) -> None:
    write(tmp_path, {"cpu/checkout/model.py": GPU_SRC})
    settings = SETTINGS.override(root=tmp_path / "cpu" / "checkout")
    assert [d.code for d in lint_file(str(tmp_path / "cpu/checkout/model.py"), [item_rule()], settings).diagnostics] \
        == ["SL101"]


def test_files_without_trigger_tokens_are_not_parsed(tmp_path: Path, parse_calls: list[str],
                                                     extra_rules: None) -> None:
    write(tmp_path, {"plain.py": "print('hello')\n", "mentions.py": "import torch\n", "gpu.py": GPU_SRC})
    rules = [item_rule()]
    plain = lint_file(str(tmp_path / "plain.py"), rules, SETTINGS)
    mentions = lint_file(str(tmp_path / "mentions.py"), rules, SETTINGS)
    assert not plain.parsed and not mentions.parsed
    assert parse_calls == []
    gpu = lint_file(str(tmp_path / "gpu.py"), rules, SETTINGS)
    assert gpu.parsed and [d.code for d in gpu.diagnostics] == ["SL101"]
    assert parse_calls == [GPU_SRC]
    # The prefilter uses the union of the enabled rules' triggers: NameSeen's `torch` now counts.
    parse_calls.clear()
    mentions = lint_file(str(tmp_path / "mentions.py"), [*rules, NameSeen], SETTINGS)
    plain = lint_file(str(tmp_path / "plain.py"), [*rules, NameSeen], SETTINGS)
    assert mentions.parsed and not plain.parsed
    assert parse_calls == ["import torch\n"]


def test_a_gradient_norm_is_gpu_evidence_for_the_prefilter(tmp_path: Path) -> None:
    # The norm `clip_grad_norm_` returns is on the accelerator by convention: a training step that reads it
    # back names no device at all.
    source = ("import torch\n\n\ndef step(model):\n"
              "    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
              "    return norm.item()\n")
    write(tmp_path, {"train.py": source})
    result = lint_file(str(tmp_path / "train.py"), [item_rule()], SETTINGS)
    assert result.parsed and [(d.code, d.start.row) for d in result.diagnostics] == [("SL101", 6)]


def test_prefilter_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parse_calls: list[str]) -> None:
    write(tmp_path, {"plain.py": "def f(a, b):\n    return a + b\n", "gpu.py": GPU_SRC})
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    assert findings(result.stdout) == [("gpu.py", 2, 5, "SL101")]
    assert parse_calls == [GPU_SRC]


# ==========================================================================================
# Import aliases
# ==========================================================================================


@pytest.mark.parametrize(
    ("source", "rows"),
    [
        ("import torch\nx = torch.zeros(3, device='cuda')\nv = x.sum().item()\n", [3]),
        ("import torch as th\nx = th.zeros(3, device='cuda')\nv = x.sum().item()\n", [3]),
        ("from torch import zeros as z\nx = z(3, device='cuda')\nv = x.sum().item()\n", [3]),
        ("from torch import zeros\nx = zeros(3, device='cuda')\nv = x.sum().item()\n", [3]),
        # Not torch under a torch-like name: quiet.
        ("import numpy as th\nx = th.zeros(3, device='cuda')\nv = x.sum().item()\n", []),
        ("import numpy as torch\nx = torch.zeros(3, device='cuda')\nv = x.sum().item()\n", []),
        ("from mylib import zeros as z\nx = z(3, device='cuda')\nv = x.sum().item()\n", []),
        ("import torch as th\nx = th.zeros(3)\nv = x.sum().item()\n", []),
    ],
)
def test_import_aliases(source: str, rows: list[int]) -> None:
    result = lint_source(source, "m.py", [item_rule()], SETTINGS)
    assert not result.errors
    assert [d.start.row for d in result.diagnostics] == rows


# ==========================================================================================
# Diagnostic fields
# ==========================================================================================


def test_diagnostic_fields() -> None:
    rule = item_rule()
    result = lint_source(GPU_SRC, "pkg/mod.py", [rule], SETTINGS)
    assert result.parsed and not result.errors
    (d,) = result.diagnostics
    line = GPU_SRC.splitlines()[1]
    assert d.code == "SL101"
    assert d.name == rule.name
    assert ".item()" in d.message
    assert d.path == "pkg/mod.py"
    assert d.start == Position(2, line.index("x.sum") + 1)  # 1-based
    assert d.end == Position(2, len(line) + 1)  # exclusive end, 1-based
    assert d.noqa_row == 2
    assert d.source_line == line
    assert d.evidence is not None
    assert 'torch.zeros(3, device="cuda")' in d.evidence
    assert "line 1" in d.evidence
    assert "`x`" in d.evidence


def test_diagnostic_fields_multiline_span() -> None:
    source = 'import torch\n\nbuf = torch.ones(2, device="cuda")\nv = (\n    buf.sum()\n    .item()\n)\n'
    (d,) = lint_source(source, "m.py", [item_rule()], SETTINGS).diagnostics
    lines = source.splitlines()
    assert d.start == Position(5, lines[4].index("buf") + 1)
    assert d.end == Position(6, len(lines[5]) + 1)
    assert d.noqa_row == 5
    assert d.source_line == lines[4]
    assert "line 3" in d.evidence and 'torch.ones(2, device="cuda")' in d.evidence


def test_rule_exception_is_recorded_and_other_rules_still_report() -> None:
    class Boom(Rule):
        code = "XB002"
        name = "boom"
        summary = "crashes"
        triggers = (".item(",)

        def visit_Call(self, node) -> None:
            raise ValueError("bad rule")

    result = lint_source(GPU_SRC, "m.py", [item_rule(), Boom], SETTINGS)
    assert [d.code for d in result.diagnostics] == ["SL101"]
    assert len(result.errors) == 1  # disabled after the first crash, not once per node
    (error,) = result.errors
    assert error.rule == "XB002" and error.path == "m.py"
    assert "ValueError" in error.message and "bad rule" in error.message


# ==========================================================================================
# Plugins through the `sync_lint.rules` entry-point group
# ==========================================================================================

PLUGIN_MODULE = '''"""Plugin docs: plugin_sync() waits for the GPU."""
import libcst as cst
from sync_lint.rulekit import Rule


class PluginSync(Rule):
    code = "XPL001"
    name = "plugin-sync"
    summary = "calls plugin_sync()"
    triggers = ("plugin_sync(",)

    def visit_Call(self, node):
        if isinstance(node.func, cst.Name) and node.func.value == "plugin_sync":
            self.report(node, "plugin_sync() waits for the GPU")


def provide():
    return [PluginSync]
'''

DUPLICATE_MODULE = '''
from sync_lint.rulekit import Rule


class FakeItem(Rule):
    code = "SL101"
    name = "fake-item"
    summary = "a second SL101"
    triggers = (".item(",)
'''


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None):
    """Put a distribution with `sync_lint.rules` entry points on sys.path (a real dist-info)."""
    modules: list[str] = []

    def install(dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
        site = tmp_path / f"site-{dist}"
        site.mkdir()
        (site / f"{module}.py").write_text(source)
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[sync_lint.rules]\n{lines}")
        monkeypatch.syspath_prepend(str(site))
        modules.append(module)
        all_rules.cache_clear()

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("form", ["class", "module", "callable"])
def test_plugin_rules_from_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_plugin,
                                        form: str) -> None:
    module = f"xplug_{form}"
    target = {"class": f"{module}:PluginSync", "module": module, "callable": f"{module}:provide"}[form]
    install_plugin(f"xplug-{form}", module, PLUGIN_MODULE, {"xplug": target})
    assert "XPL001" in all_rules() and "SL101" in all_rules()
    work = tmp_path / "work"
    write(work, {"f.py": "x = 1\nplugin_sync()\n", "g.py": GPU_SRC})
    monkeypatch.chdir(work)
    result = invoke("check", "--select", "XPL001,SL101", "--jobs", "1", "--output-format", "json", ".")
    assert result.exit_code == 1, result.output
    assert findings(result.stdout) == [("f.py", 2, 1, "XPL001"), ("g.py", 2, 5, "SL101")]
    listed = json.loads(invoke("rules", "--output-format", "json").stdout)
    assert "XPL001" in {row["code"] for row in listed}
    assert "plugin_sync() waits" in invoke("explain", "XPL001").stdout


def test_plugin_rules_in_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_plugin) -> None:
    install_plugin("xplug-par", "xplug_par", PLUGIN_MODULE, {"xplug": "xplug_par:PluginSync"})
    work = tmp_path / "work"
    write(work, {f"f{i}.py": "x = 1\nplugin_sync()\n" for i in range(5)})
    monkeypatch.chdir(work)
    result = invoke("check", "--select", "XPL", "--jobs", "2", "--output-format", "json", ".")
    assert result.exit_code == 1, result.output
    assert findings(result.stdout) == [(f"f{i}.py", 2, 1, "XPL001") for i in range(5)]


def test_rule_pack_files_are_found_without_importing_the_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           install_plugin) -> None:
    from sync_lint import fingerprint

    install_plugin("xfiles", "xfiles_rules", PLUGIN_MODULE, {"xfiles": "xfiles_rules:PluginSync"})
    package = tmp_path / "site-xpkg" / "xpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("X = 1\n")
    info = tmp_path / "site-xpkg" / "xpkg-2.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[console_scripts]\nxpkg = other:main\n\n"
                                           "[sync_lint.rules]\nxpkg = xpkg.rules:provide [extra]\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site-xpkg"))
    named = dict(fingerprint.rule_pack_files())
    assert named.keys() >= {"xfiles-0.1.dist-info/entry_points.txt", "xfiles_rules.py",
                            "xpkg-2.0.dist-info/entry_points.txt", "xpkg/__init__.py", "xpkg/helpers.py"}
    assert "other.py" not in named and "xfiles_rules" not in sys.modules and "xpkg" not in sys.modules
    assert set(named.values()) <= set(fingerprint.code_files())


def test_the_daemon_signature_changes_with_a_rule_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       install_plugin) -> None:
    """A daemon keeps the rule packs it imported: an edited, added or removed pack must make its
    callers run without it."""
    from sync_lint.daemon import code_signature

    before = code_signature()
    install_plugin("xsig", "xsig_rules", PLUGIN_MODULE, {"xsig": "xsig_rules:PluginSync"})
    installed = code_signature()
    assert installed != before
    (tmp_path / "site-xsig" / "xsig_rules.py").write_text(PLUGIN_MODULE + "# edited\n")
    assert code_signature() not in (before, installed)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "site-xsig")])
    assert code_signature() == before


def test_an_edited_rule_pack_is_not_answered_from_the_cache(tmp_path: Path) -> None:
    """Cached findings are keyed by the rules' names; a pack edited (or upgraded) under the same names
    must be run again, not read back. Each check is a new process, as a user's are."""
    import os
    import subprocess

    site = tmp_path / "site"
    site.mkdir()
    info = site / "xedit-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xedit\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sync_lint.rules]\nxedit = xedit_rules:PluginSync\n")
    work = tmp_path / "work"
    write(work, {"pyproject.toml": "[project]\nname = 'w'\n", "f.py": "x = 1\nplugin_sync()\n"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "SYNC_LINT_NO_DAEMON": "1"}

    def messages(text: str) -> list[str]:
        (site / "xedit_rules.py").write_text(PLUGIN_MODULE.replace("plugin_sync() waits for the GPU", text))
        done = subprocess.run([sys.executable, "-m", "sync_lint", "check", ".", "--select", "XPL",
                               "--cache-dir", str(tmp_path / "cache"), "--output-format", "json", "--exit-zero"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [d["message"] for d in json.loads(done.stdout)]

    assert messages("first words") == ["first words"]
    assert messages("first words") == ["first words"]
    assert any((tmp_path / "cache").rglob("index.sqlite"))  # the second check could have read it back
    assert messages("second words") == ["second words"]


def test_duplicate_rule_code_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_plugin) -> None:
    install_plugin("xdup", "xdup_rules", DUPLICATE_MODULE, {"xdup": "xdup_rules"})
    write(tmp_path / "work", {"g.py": GPU_SRC})
    monkeypatch.chdir(tmp_path / "work")
    for args in (("check", "--jobs", "1", "."), ("rules",), ("explain", "SL101")):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "SL101" in result.stderr and "twice" in result.stderr
        assert "xdup_rules" in result.stderr
        assert "Traceback" not in result.output


def test_broken_plugin_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_plugin) -> None:
    install_plugin("xbroken", "xbroken_rules", "raise ImportError('missing dependency')\n", {"xbroken": "xbroken_rules"})
    write(tmp_path / "work", {"g.py": GPU_SRC})
    monkeypatch.chdir(tmp_path / "work")
    result = invoke("check", "--jobs", "1", ".")
    assert result.exit_code == 2
    assert "xbroken" in result.stderr and "missing dependency" in result.stderr


# ==========================================================================================
# Parallel runs
# ==========================================================================================


def _parallel_tree(root: Path) -> None:
    files = {}
    for i in (7, 3, 9, 0, 5, 1, 8, 2, 6, 4):  # created out of order
        extra = "".join(f"w{j} = x.max().item()\n" for j in range(i % 3))
        files[f"pkg{i % 2}/mod_{i}.py"] = "\n" * (i % 4) + GPU_SRC + extra
    files["pkg0/host.py"] = CPU_SRC
    files["pkg1/broken.py"] = "v = t_gpu.item()\nx = = 1\n"
    write(root, files)


def test_jobs_2_matches_jobs_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _parallel_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    pools: list[int] = []

    class CountingPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(parallel_module, "ProcessPoolExecutor", CountingPool)
    # No cache: the second run would otherwise reuse the first one's results.
    serial = invoke("check", "--no-cache", "--select", "SL101", "--jobs", "1", "--output-format", "json", ".")
    assert pools == []
    parallel = invoke("check", "--no-cache", "--select", "SL101", "--jobs", "2", "--output-format", "json", ".")
    assert pools == [2]  # the parallel path really ran
    assert serial.exit_code == parallel.exit_code == 1
    assert parallel.stdout == serial.stdout
    got = findings(parallel.stdout)
    assert len(got) == sum(1 + i % 3 for i in range(10)) + 1  # + the syntax error
    entries = json.loads(parallel.stdout)
    keys = [(e["filename"], e["location"]["row"], e["location"]["column"]) for e in entries]
    assert keys == sorted(keys)
    again = invoke("check", "--no-cache", "--select", "SL101", "--jobs", "2", "--output-format", "json", ".")
    assert again.stdout == parallel.stdout


def test_warm_run_reuses_cached_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _parallel_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    pools: list[int] = []

    class CountingPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(parallel_module, "ProcessPoolExecutor", CountingPool)
    cold = invoke("check", "--select", "SL101", "--jobs", "2", "--output-format", "json", ".")
    assert pools == [2]
    warm = invoke("check", "--select", "SL101", "--jobs", "2", "--output-format", "json", ".")
    assert pools == [2]  # nothing left to check: no workers started
    assert warm.stdout == cold.stdout and warm.exit_code == cold.exit_code == 1
    other = invoke("check", "--select", "SL101,SL102", "--jobs", "2", "--output-format", "json", ".")
    assert pools == [2, 2]  # other rules: the cached results do not apply
    assert findings(other.stdout) == findings(cold.stdout)


def test_parallel_results_in_input_order(tmp_path: Path) -> None:
    _parallel_tree(tmp_path)
    paths = sorted(str(p) for p in tmp_path.rglob("*.py"))[::-1]
    rules = [item_rule()]
    plan = api.Plan(SETTINGS, tuple(rules), all_rules())
    serial = api.run_files(plan, paths, jobs=1).results
    in_parallel = api.run_files(plan, paths, jobs=2).results
    assert [r.path for r in in_parallel] == paths
    assert in_parallel == serial


def test_nesting_too_deep_for_cpython_is_sl000_not_a_crash(tmp_path):
    # libcst's native parser crashes the process on very deep nesting; CPython
    # rejects more than 200 levels, so the engine reports SL000 without libcst.
    from sync_lint.config import Settings
    from sync_lint.engine import lint_source
    from sync_lint.registry import all_rules

    source = "x = " + "(" * 1500 + "1" + ")" * 1500 + "\nimport torch\ny = torch.zeros(1, device='cuda').item()\n"
    result = lint_source(source, "deep.py", list(all_rules().values()), Settings())
    assert [(d.code, d.start.row) for d in result.diagnostics] == [("SL000", 1)]
    assert "nested" in result.diagnostics[0].message


def test_moderate_nesting_is_parsed_normally():
    from sync_lint.config import Settings
    from sync_lint.engine import lint_source
    from sync_lint.registry import all_rules

    source = "import torch\nx = torch.zeros(3, device='cuda')\nv = " + "(" * 180 + "x.sum().item()" + ")" * 180 + "\n"
    result = lint_source(source, "ok.py", list(all_rules().values()), Settings())
    assert [d.code for d in result.diagnostics] == ["SL101"]


def strict_rows(source: str) -> list[int]:
    """The rows with a finding when `source` is checked alone, with every rule, in --strict mode."""
    result = lint_source(source, "snippet.py", list(all_rules().values()), SETTINGS.override(strict=True))
    return sorted({d.start.row for d in result.diagnostics})


def test_functions_a_gpu_dsl_compiles_are_not_host_code() -> None:
    # vLLM's CuTe DSL kernels: `if eos > 0:` on a loaded value is control flow on the GPU.
    source = (
        "import torch\nimport cutlass.cute as cute\nimport triton\n\n\n"
        "@cute.kernel\ndef kernel(cu_seqlens: torch.Tensor):\n    if cu_seqlens[1] > 0:\n        return 1\n\n\n"
        "@triton.jit(do_not_specialize=['n'])\ndef tri(x: torch.Tensor):\n    return x.sum().item()\n\n\n"
        "def host(cu_seqlens: torch.Tensor):\n    if cu_seqlens[1] > 0:\n        return 1\n"
    )
    assert strict_rows(source) == [18]


def test_isinstance_with_a_builtin_type_narrows_to_a_python_value() -> None:
    # vLLM's dataset loader: `image.startswith(...)` inside `if isinstance(image, str):` is a str method.
    source = (
        "import torch\n\n\ndef load(image: torch.Tensor, other: torch.Tensor):\n"
        "    if isinstance(image, (str, bytes)):\n        if image.startswith('data:'):\n            return 1\n"
        "    if isinstance(other, torch.Tensor):\n        if other.startswith('data:'):\n            return 2\n"
        "    if image.any():\n        return 3\n"
    )
    assert strict_rows(source) == [9, 11]


def test_code_that_runs_only_where_a_tensor_is_not_on_cuda_is_left_to_strict() -> None:
    """SGLang's kernels keep pure-torch reference paths: after `if logits.is_cuda: return ...`, under
    `if not loc.is_cuda:`. On a CUDA machine they run only for host tensors (or another accelerator's)."""
    source = (
        "import torch\n\n\n"
        "def topk(logits: torch.Tensor, row_starts: torch.Tensor, k: int):\n"
        "    starts = row_starts.to(device=logits.device, dtype=torch.int32)\n"
        "    if logits.is_cuda:\n"
        "        n = int(starts[0])\n"                                   # 7: the CUDA path
        "        return torch.topk(logits, n).indices\n"
        "    return int(starts[0])\n"                                    # 9: the reference path
        "\n\n"
        "def translate(loc: torch.Tensor, v2p: torch.Tensor, n):\n"
        "    if not loc.is_cuda:\n"
        "        return v2p[loc.tolist()]\n"                             # 14: the reference path
        "    t = torch.zeros(n, device='cuda')\n"
        "    return t.tolist()\n"                                        # 16: after the arm, on CUDA
        "\n\n"
        "def fallback(x: torch.Tensor):\n"
        "    if x.is_cuda:\n"
        "        y = x\n"
        "    else:\n"
        "        y = x.sum().item()\n"                                   # 23: the `else` is off CUDA
        "    return x.sum().item()\n"                                    # 24: after both arms
        "\n\n"
        "def chained(x: torch.Tensor, flag):\n"
        "    if flag:\n"
        "        y = x\n"
        "    elif x.is_cuda:\n"
        "        return x\n"
        "    return x.sum().item()\n"                                    # 32: reached when `flag` holds
        "\n\n"
        "def by_type(q: torch.Tensor, x: torch.Tensor):\n"
        "    if q.device.type != 'cuda':\n"
        "        return x.sum().item()\n"                                # 37: the reference path
        "    if 'cuda' == x.device.type:\n"
        "        return x.sum().item()\n"                                # 39: on CUDA
        "    return x.sum().item()\n"                                    # 40: after a CUDA arm that returned
    )
    rules = list(all_rules().values())
    gpu = SETTINGS.override(gpu_name_patterns=(r"^(logits|loc|x|starts)$",))
    default = sorted({d.start.row for d in lint_source(source, "snippet.py", rules, gpu).diagnostics})
    strict = {d.start.row: d for d in lint_source(source, "snippet.py", rules, gpu.override(strict=True)).diagnostics}
    assert default == [7, 16, 24, 32, 39]
    assert {9, 14, 23, 37, 40} <= set(strict)
    assert strict[9].confidence == "strict" and "`logits` is not on CUDA" in strict[9].evidence
    assert strict[37].confidence == "strict" and "`q.device.type` is not `\"cuda\"`" in strict[37].evidence


def test_an_arm_for_another_accelerator_is_left_to_strict() -> None:
    """`if current_platform.is_xpu():`, SGLang's `if _is_npu:`: code a CUDA machine never runs."""
    source = (
        "import torch\n\n\n"
        "def step(n, current_platform, _is_npu, _is_hip):\n"
        "    t = torch.zeros(n, device='cuda')\n"
        "    if current_platform.is_xpu():\n"
        "        a = t.tolist()\n"                                          # 7: XPU only
        "    if _is_npu:\n"
        "        b = t.tolist()\n"                                          # 9: NPU only
        "    if _is_hip:\n"
        "        c = t.tolist()\n"                                          # 11: ROCm: torch's CUDA API
        "    if not _is_npu:\n"
        "        return t.tolist()\n"                                       # 13: not NPU: CUDA too
        "    return 0\n"
        "\n\n"
        "def npu_only(probs: torch.Tensor, is_npu):\n"
        "    if not is_npu() or probs.device.type != 'npu':\n"
        "        return None\n"
        "    t = torch.zeros(4, device='cuda')\n"
        "    return t.sum().item()\n"                                       # 21: after the `or` failed: NPU
        "\n\n"
        "class Backend:\n"
        "    def forward(self, n, mask):\n"
        "        t = torch.zeros(n, device='cuda')\n"
        "        if self.is_npu:\n"
        "            return t.tolist()\n"                                   # 28: a flag the object keeps: NPU
        "        if mask.is_cpu:\n"
        "            return t.tolist()\n"                                   # 30: a tensor's test, not the platform's
        "        return 0\n"
    )
    rules = list(all_rules().values())
    assert [d.start.row for d in lint_source(source, "snippet.py", rules, SETTINGS).diagnostics] == [11, 13, 30]
    strict = {d.start.row: d for d in lint_source(source, "snippet.py", rules, SETTINGS.override(strict=True)).diagnostics}
    assert sorted(strict) == [7, 9, 11, 13, 21, 28, 30]
    assert "accelerator other than CUDA (`self.is_npu`)" in strict[28].evidence
    assert "accelerator other than CUDA (`current_platform.is_xpu()`)" in strict[7].evidence


def test_an_arm_for_machines_without_an_accelerator_is_left_to_strict() -> None:
    """`if current_platform.is_cpu():` runs only where there is no GPU: its findings need `--strict`."""
    source = (
        "import torch\n\n\n"
        "def step(n, current_platform, _is_cpu):\n"
        "    t = torch.zeros(n, device='cuda')\n"
        "    if current_platform.is_cpu():\n"
        "        a = t.tolist()\n"
        "    elif n:\n"
        "        b = t.tolist()\n"
        "    if not current_platform.is_cpu():\n"
        "        c = t.tolist()\n"
        "    else:\n"
        "        d = t.tolist()\n"
        "    if _is_cpu and n:\n"
        "        e = t.tolist()\n"
        "    return t.tolist()\n"
    )
    rules = list(all_rules().values())
    default = lint_source(source, "snippet.py", rules, SETTINGS).diagnostics
    assert [d.start.row for d in default] == [9, 11, 16]
    strict_settings = SETTINGS.override(strict=True)
    strict = {d.start.row: d for d in lint_source(source, "snippet.py", rules, strict_settings).diagnostics}
    assert sorted(strict) == [7, 9, 11, 13, 15, 16]
    assert strict[7].confidence == "strict" and "no accelerator" in strict[7].evidence
    assert strict[9].confidence == "high"
