"""The parts of the device analysis and the project index, each tested directly.

flow (reachability), the evaluator, naming conventions and learned conventions (their
threshold), per-file summaries, the index, the inference and the dependency recorder.
The cache (`store.py`) has its own file: tests/test_project_store.py.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from sync_lint.analysis.conventions import DeviceSettings
from sync_lint.analysis.facts import (
    MODULE,
    NN_MODULE,
    NONE,
    PYTHON,
    Device,
    Fact,
    constructed,
    detached,
    host_list,
    join,
    module_output,
)
from sync_lint.analysis.flow import Deferred, Scope, join_envs
from sync_lint.project.deps import Reads, dep_id
from sync_lint.project.index import ProjectIndex, table_rows
from sync_lint.project.infer import TENSOR, Inference, _tuples_over_tensors, join_sources
from sync_lint.project.summary import _size, annotation_types, off_cuda_test, summarize
from sync_lint.project.values import UNKNOWN, Value
from fixture_support import check_small_project
from test_device import fact_of

# ==========================================================================================
# flow.py: a path that ends in return/raise/break/continue is not joined after the branch
# ==========================================================================================


def test_the_issue_example_branch_ending_in_return_is_not_joined() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, flag):
        x = torch.zeros(n, device="cuda")
        if flag:
            x = torch.zeros(n)
            return x
        probe(x)
    """)
    assert fact.device is Device.GPU


@pytest.mark.parametrize("ending", ["raise ValueError(x)", "return None", "return"])
def test_branch_ending_in_raise_or_return(ending: str) -> None:
    fact, _ = fact_of(f"""
    import torch
    def f(n, flag):
        x = torch.zeros(n, device="cuda")
        if flag:
            x = torch.zeros(n)
            {ending}
        probe(x)
    """)
    assert fact.device is Device.GPU


def test_else_branch_that_returns_leaves_the_if_branch() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, flag):
        x = torch.zeros(n)
        if flag:
            x = torch.zeros(n, device="cuda")
        elif n:
            raise RuntimeError
        else:
            return None
        probe(x)
    """)
    assert fact.device is Device.GPU


def test_a_branch_that_falls_through_is_still_joined() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, flag):
        x = torch.zeros(n, device="cuda")
        if flag:
            x = torch.zeros(n)
        probe(x)
    """)
    assert fact.device is not Device.GPU


def test_continue_ends_the_path_within_the_loop_body() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, items):
        for item in items:
            x = torch.zeros(n, device="cuda")
            if item:
                x = torch.zeros(n)
                continue
            probe(x)
    """)
    assert fact.device is Device.GPU


def test_break_state_reaches_the_code_after_the_loop() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, items):
        x = torch.zeros(n, device="cuda")
        for item in items:
            if item:
                x = torch.zeros(n)
                break
        probe(x)
    """)
    assert fact.device is not Device.GPU  # the CPU value leaves the loop through `break`


def test_nested_return_only_ends_its_own_path() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, a, b):
        x = torch.zeros(n, device="cuda")
        if a:
            x = torch.zeros(n)
            if b:
                return None
        probe(x)
    """)
    assert fact.device is not Device.GPU  # `a and not b` reaches the probe with the CPU tensor


def test_handler_that_returns_is_not_joined_after_try() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n):
        x = torch.zeros(n, device="cuda")
        try:
            y = n + 1
        except ValueError:
            x = torch.zeros(n)
            return None
        probe(x)
    """)
    assert fact.device is Device.GPU


def test_match_case_that_returns_is_not_joined() -> None:
    fact, _ = fact_of("""
    import torch
    def f(n, kind):
        x = torch.zeros(n, device="cuda")
        match kind:
            case "host":
                x = torch.zeros(n)
                return x
            case _:
                pass
        probe(x)
    """)
    assert fact.device is Device.GPU


def test_a_parameter_is_computed_when_first_read_and_a_join_of_the_same_binding_keeps_it_unread() -> None:
    asked: list[str] = []
    gpu = Fact(Device.GPU, tensor_like=True)
    promised = Deferred(lambda: asked.append("x") or gpu)
    merged = join_envs([{"x": promised, "y": PYTHON}, {"x": promised}])
    assert merged["x"] is promised and asked == []
    scope = Scope(env=merged)
    assert scope.lookup("x") == gpu and scope.lookup("x") == gpu
    assert asked == ["x"]  # once


def test_a_join_of_different_bindings_waits_for_a_read_when_one_is_unread() -> None:
    asked: list[str] = []
    gpu = Fact(Device.GPU, tensor_like=True)
    rebound = join_envs([{"x": Deferred(lambda: asked.append("x") or gpu)}, {"x": PYTHON}, {"x": gpu}])
    assert asked == []
    assert Scope(env=rebound).lookup("x") == join(join(gpu, PYTHON), gpu) and asked == ["x"]
    assert join_envs([{"x": gpu}, {"x": PYTHON}])["x"] == join(gpu, PYTHON)  # facts are joined at once


def test_a_host_tensor_joined_with_a_python_or_numpy_value_stays_on_the_host() -> None:
    # `skip = False`, then `skip = torch.rand([]) < p` on the training path: no path holds GPU memory.
    host = Fact(Device.CPU, ndim=0, dtype="bool")
    for other in (PYTHON, Fact(Device.NOT_TENSOR, value_kind="numpy")):
        assert join(host, other).device is Device.CPU and join(other, host).device is Device.CPU
        assert join(host, other).ndim is None
    # A GPU tensor makes the join a GPU tensor by convention (a Python number on one path only); a
    # value of unknown kind makes it unknown.
    assert join(Fact(Device.GPU), PYTHON).device is Device.GPU and join(Fact(Device.GPU), PYTHON).convention
    assert join(host, Fact(Device.NOT_TENSOR)).device is Device.UNKNOWN


@pytest.fixture
def asked(monkeypatch) -> list[tuple[str, str]]:
    """(function, parameter) for each parameter the project is asked about, as the check goes."""
    seen: list[tuple[str, str]] = []
    original = Inference.param

    def recording(self: Inference, function: str, name: str, budget: int = 10) -> Fact:
        seen.append((function.rsplit(".", 1)[-1], name))
        return original(self, function, name, budget)

    monkeypatch.setattr(Inference, "param", recording)
    return seen


def test_a_parameter_nothing_reads_is_never_asked_of_the_project(tmp_path, asked) -> None:
    diagnostics = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/mod.py": textwrap.dedent("""
        import torch

        def step(config, x):
            if config is None:
                pass
            return x.item()

        def run(config):
            step(None, torch.ones(2, device="cuda"))
        """)}, pyproject="[tool.sync-lint]\njobs = 1\n")
    assert [d.code for d in diagnostics] == ["SL101"]
    assert ("step", "x") in asked
    assert ("run", "config") not in asked  # nothing in `run` reads it


def test_an_assigned_value_nothing_reads_is_never_evaluated(tmp_path, asked) -> None:
    diagnostics = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/mod.py": textwrap.dedent("""
        import torch

        def step(config, x):
            width = config.hidden_size * 2
            return x.item()

        def run(config):
            step(config, torch.ones(2, device="cuda"))
        """)}, pyproject="[tool.sync-lint]\njobs = 1\n")
    assert [d.code for d in diagnostics] == ["SL101"]
    assert ("step", "x") in asked
    assert ("step", "config") not in asked  # `width` is never read


def test_a_receiver_or_an_is_test_that_cannot_sync_is_not_evaluated(tmp_path, asked) -> None:
    diagnostics = check_small_project(tmp_path, {"pkg/__init__.py": "", "pkg/mod.py": textwrap.dedent("""
        import torch

        def lookup(cache):
            return cache.get("k")

        def step(config, x, cache):
            config.validate()
            if lookup(cache) is not None:
                pass
            return x.item()

        def run(config, cache):
            step(config, torch.ones(2, device="cuda"), cache)
        """)}, pyproject="[tool.sync-lint]\njobs = 1\n")
    assert [d.code for d in diagnostics] == ["SL101"]
    assert ("step", "x") in asked
    # `.validate()` is neither a wait (SL401) nor a number read (SL104), and `is` gives a Python bool
    # whatever `lookup(cache)` returns.
    assert ("step", "config") not in asked and ("step", "cache") not in asked


@pytest.mark.parametrize("source,device", [
    # The value is what the names held on its own line, not when it is first read.
    ("y = torch.zeros(2, device='cuda')\nx = y\ny = torch.zeros(2)\nprobe(x)", Device.GPU),
    ("y = torch.zeros(2)\nx = y\ny = torch.zeros(2, device='cuda')\nprobe(x)", Device.CPU),
    ("x = torch.zeros(2)\nx = x.cuda()\nprobe(x)", Device.GPU),
    ("with torch.device('cuda'):\n    x = torch.zeros(2)\nprobe(x)", Device.GPU),
    ("with torch.device('cuda'):\n    pass\nx = torch.zeros(2)\nprobe(x)", Device.CPU),
    ("if flag:\n    x = torch.zeros(2, device='cuda')\nelse:\n    x = torch.zeros(2, device='cuda')\n"
     "y = torch.zeros(2)\nprobe(x)", Device.GPU),
    ("y = torch.zeros(2, device='cuda')\na, b = y, 1\ny = torch.zeros(2)\nprobe(a)", Device.GPU),
    ("y = torch.zeros(2, device='cuda')\n(a, b), c = (1, y), 2\ny = torch.zeros(2)\nprobe(b)", Device.GPU),
    ("y = torch.zeros(2, device='cuda')\na, *rest = y.chunk(2)\ny = torch.zeros(2)\nprobe(a)", Device.GPU),
    ("y = torch.zeros(2, device='cuda')\nflag.x = y\ny = torch.zeros(2)\nprobe(flag.x)", Device.GPU),
    ("y = torch.zeros(2, device='cuda')\nflag.x: torch.Tensor = y\ny = torch.zeros(2)\nprobe(flag.x)", Device.GPU),
    # A scope of many names binds at once (see `_MOST_NAMES_COPIED`), with the same result.
    ("".join(f"v{i} = {i}\n" for i in range(120)) + "y = torch.zeros(2, device='cuda')\nx = y\ny = torch.zeros(2)\n"
     "probe(x)", Device.GPU),
])
def test_an_assignment_is_evaluated_at_its_own_line(source: str, device: Device) -> None:
    fact, _ = fact_of("import torch\ndef f(flag):\n" + textwrap.indent(source, "    "))
    assert fact.device is device


def test_an_attribute_read_in_init_before_it_is_set_is_not_the_one_set_later() -> None:
    # While `__init__` runs its class has no attributes yet: `self.c` on the first line is unknown,
    # not `self.a` of the line after (reading it so would also go round in a circle).
    fact, _ = fact_of("""
        import torch
        class M:
            def __init__(self, n):
                self.a, self.b = self.c.chunk(2)
                self.c = self.a
            def step(self):
                probe(self.c)
        """)
    assert fact.device is Device.UNKNOWN


def test_an_attribute_set_in_init_is_what_it_was_there() -> None:
    fact, _ = fact_of("""
        import torch
        class M:
            def __init__(self, n):
                y = torch.zeros(n, device="cuda")
                self.buf = y
                y = torch.zeros(n)
            def step(self):
                probe(self.buf)
        """)
    assert fact.device is Device.GPU


# ==========================================================================================
# evaluate.py
# ==========================================================================================


def test_device_of_an_unknown_tensor_is_an_accelerator_by_convention_only() -> None:
    fact, _ = fact_of("""
    def f(batch):
        probe(batch.seq_lens.device)
    """)
    assert fact.value_kind == "device" and fact.device_value is Device.GPU
    assert fact.convention


def test_device_of_a_known_gpu_tensor_is_certain() -> None:
    fact, _ = fact_of("""
    import torch
    x = torch.zeros(3, device="cuda")
    probe(x.device)
    """)
    assert fact.device_value is Device.GPU and not fact.convention


def test_device_of_a_value_the_analysis_takes_for_plain_data_is_only_assumed() -> None:
    # `x.device` where `x` is, as far as the analysis knows, a list or a number: the analysis is wrong
    # about `x`, so its device is no proof; `self.device` (an object's device setting) still is.
    listed, _ = fact_of("""
    def f(images: list):
        std = [i.std() for i in images]
        probe(std.device)
    """)
    assert listed.device_value is Device.GPU and listed.convention
    setting, _ = fact_of("""
    class Runner:
        def f(self):
            probe(self.device)
    """)
    assert setting.device_value is Device.GPU and not setting.convention


def test_tensor_built_on_an_unknown_tensors_device_reports_with_convention_confidence() -> None:
    """The issue's inconsistency: `x.device` of an unknown `x` is now only a convention (alone, no project)."""
    from fixture_support import lint_text

    source = textwrap.dedent("""
    import torch
    def f(batch, data):
        lens = batch.seq_lens.tolist()
        return torch.tensor(data, device=batch.seq_lens.device)
    """)
    found = lint_text(source).diagnostics
    assert [(d.start.row, d.code, d.confidence) for d in found] == [(5, "SL304", "convention")]


def test_event_from_a_device_module() -> None:
    fact, _ = fact_of("""
    import torch
    class W:
        def __init__(self, device):
            self.device_module = torch.get_device_module(device)
        def f(self):
            probe(self.device_module.Event())
    """)
    assert fact.value_kind == "event"


def test_optional_tensor_annotation_is_a_tensor() -> None:
    fact, _ = fact_of("""
    from typing import Optional
    import torch
    def f(x: Optional[torch.Tensor]):
        probe(x)
    """)
    assert fact.is_unknown_tensor or fact.tensor_like


# ==========================================================================================
# Naming conventions (analysis/conventions.py) and learned conventions (their threshold)
# ==========================================================================================


def test_name_patterns() -> None:
    settings = DeviceSettings()
    assert settings.by_name("lens_cpu")[0] is Device.CPU
    assert settings.by_name("lens_gpu")[0] is Device.GPU
    assert settings.by_name("lens") is None
    assert settings.fact_for_name("device").value_kind == "device"
    assert settings.fact_for_name("the_cpu_device").device_value is Device.CPU
    assert settings.fact_for_name("dtype").value_kind == "dtype"
    custom = DeviceSettings(cpu_name_patterns=(r"_h$",), gpu_name_patterns=(r"_d$",))
    assert custom.by_name("x_h")[0] is Device.CPU and custom.by_name("x_d")[0] is Device.GPU
    assert custom.by_name("lens_cpu") is None


def _store_modules(gpu: int, cpu: int) -> list:
    """Modules each with one class storing `lens` from a GPU (or CPU) tensor."""
    modules = []
    for i in range(gpu + cpu):
        device = ', device="cuda"' if i < gpu else ""
        source = f"import torch\nclass C{i}:\n    def __init__(self, n):\n        self.lens = torch.zeros(n{device})\n"
        modules.append(summarize(source, f"m{i}.py", f"m{i}"))
    return modules


@pytest.mark.parametrize("gpu,cpu,sites,share,device", [
    (3, 0, 3, 0.8, Device.GPU),   # three agreeing sites: a convention
    (2, 0, 3, 0.8, None),         # too few sites
    (2, 0, 2, 0.8, Device.GPU),   # ... unless the threshold allows two
    (4, 1, 3, 0.8, Device.GPU),   # 4 of 5 = 0.8
    (3, 1, 3, 0.8, None),         # 3 of 4 < 0.8
    (3, 1, 3, 0.75, Device.GPU),  # ... enough at 0.75
    (0, 3, 3, 0.8, Device.CPU),   # CPU conventions too
])
def test_learned_convention_threshold(gpu: int, cpu: int, sites: int, share: float, device: Device | None) -> None:
    inference = Inference(ProjectIndex.from_summaries(_store_modules(gpu, cpu)), convention_sites=sites,
                          convention_share=share)
    fact = inference.attribute_convention("lens")
    if device is None:
        assert not fact.is_tensor
    else:
        assert fact.device is device and fact.convention
        assert f"{gpu if device is Device.GPU else cpu} of {gpu + cpu} sites" in fact.reason


def test_local_conventions_count_a_modules_stores() -> None:
    from sync_lint.project.conventions import local_conventions

    summary = summarize(textwrap.dedent("""
    import torch
    class A:
        def __init__(self, n, other):
            self.lens = torch.zeros(n, device="cuda")
            self.lens = torch.zeros(n)
            self.lens = torch.ones(n).cuda()
            self.lens = other
            self.name = "x"
    """), "a.py", "a")
    counts = local_conventions(summary)
    gpu, cpu, total, gpu_example, cpu_example = counts["lens"]
    assert (gpu, cpu, total) == (2, 1, 3)  # the unknown `other` is no evidence
    assert gpu_example[0] == 5 and cpu_example[0] == 6
    assert "name" not in counts or counts["name"][:2] == (0, 0)


# ==========================================================================================
# summary.py
# ==========================================================================================


@pytest.mark.parametrize("annotation,types", [
    ("Optional[torch.Tensor]", ("torch.Tensor",)),
    ("typing.Optional[Batch]", ("Batch",)),
    ("torch.Tensor | None", ("torch.Tensor",)),
    ("None | Batch", ("Batch",)),
    ("'ForwardBatch'", ("ForwardBatch",)),
    ("'Optional[ForwardBatch]'", ("ForwardBatch",)),
    ("Union[Batch, torch.Tensor]", ("Batch", "torch.Tensor")),
    ("Annotated[torch.Tensor, 'gpu']", ("torch.Tensor",)),
    ("List[torch.Tensor]", ("List", "[]torch.Tensor")),
    ("'not valid ('", ()),
])
def test_annotation_types(annotation: str, types: tuple[str, ...]) -> None:
    import ast

    assert annotation_types(ast.parse(annotation, mode="eval").body) == types


SUMMARY_SOURCE = textwrap.dedent('''\
    from __future__ import annotations
    import torch
    from typing import NamedTuple, Optional
    from dataclasses import dataclass
    from . import sibling
    from .core import Batch as B
    from .star import *

    LIMIT = 4


    @dataclass
    class Meta:
        seq_lens: torch.Tensor
        out: Optional["torch.Tensor"] = None
        n: int = 3


    class Pair(NamedTuple):
        a: torch.Tensor
        b: "torch.Tensor"


    class Worker(sibling.Base):
        scale = 2.0

        def __init__(self, device):
            self.buf = torch.zeros(4, device=device)

        def step(self, a: Optional[torch.Tensor], b: torch.Tensor | None, c: "Meta", *args, d=None, **kw):
            for i in range(3):
                run(a, b, key=c)
            holder.lens = a
            setattr(self, "named", b)
            state = {"spec": a, 7: b}
            state["extra"] = c
            return Meta(a, out=b)


    def gen():
        yield 1


    def under():
        with torch.device("cuda"):
            x = torch.zeros(3)
        return x


    def under_name(load):
        dev = torch.device(load)
        with dev:
            x = torch.zeros(3)
        return x
    ''')


@pytest.fixture(scope="module")
def summary():
    return summarize(SUMMARY_SOURCE, "pkg/mod.py", "pkg.mod", False)


def test_summary_imports_and_globals(summary) -> None:
    assert summary.imports["sibling"] == "pkg.sibling"
    assert summary.imports["B"] == "pkg.core.Batch"  # relative, renamed
    assert summary.star_imports == ["pkg.star"]
    assert summary.globals["LIMIT"] == ("lit", "number")
    assert summary.global_lines["LIMIT"] == 9
    package = summarize("from .core import Batch\nfrom . import x\n", "pkg/__init__.py", "pkg", True)
    assert package.imports == {"Batch": "pkg.core.Batch", "x": "pkg.x"}


def test_summary_classes_and_fields(summary) -> None:
    meta = summary.classes["Meta"]
    assert meta.fields_by_position
    assert [(name, types, line) for name, types, _default, line in meta.fields] == [
        ("seq_lens", ("torch.Tensor",), 14), ("out", ("torch.Tensor",), 15), ("n", ("int",), 16)]
    assert meta.fields[1][2] == ("lit", "none")
    pair = summary.classes["Pair"]
    assert [f[0] for f in pair.fields] == ["a", "b"] and pair.fields[1][1] == ("torch.Tensor",)
    assert pair.field_base(["typing.NamedTuple"])
    worker = summary.classes["Worker"]
    assert worker.bases == (("attr", ("name", "pkg.sibling"), "Base"),) or worker.bases[0][2] == "Base"
    assert worker.methods == ("__init__", "step")
    assert worker.attributes == (("scale", ("lit", "number"), 25),)


def test_summary_parameters(summary) -> None:
    step = summary.functions["Worker.step"]
    params = {p.name: p for p in step.params}
    assert params["a"].annotation == ("torch.Tensor",)
    assert params["b"].annotation == ("torch.Tensor",)
    assert params["c"].annotation == ("Meta",)
    assert params["args"].kind == "star" and params["kw"].kind == "starstar"
    assert params["d"].kind == "kwonly" and params["d"].default == ("lit", "none")
    assert step.kind == "method" and step.class_name == "Worker"
    assert summary.functions["gen"].is_generator


def test_summary_stores(summary) -> None:
    stores = {(s.attr, s.line): s for s in summary.stores}
    buf = stores[("buf", 28)]
    assert buf.owner == "Worker" and buf.base == ("param", "self")
    assert buf.value[0] == "call" and ("device", ("param", "device")) in buf.value[3]
    lens = stores[("lens", 33)]
    assert lens.owner is None and lens.value == ("param", "a")
    named = stores[("named", 34)]  # setattr with a literal name
    assert named.owner == "Worker" and named.value == ("param", "b")


def test_summary_registered_module_state_is_a_store() -> None:
    # `self.register_buffer("coords", t)` holds `t` as `self.coords`, moved with the module as an
    # `nn.Buffer` would be; `register_parameter("bias", None)` leaves the field None.
    source = textwrap.dedent('''
        import torch
        from torch import nn


        class Enc(nn.Module):
            def __init__(self, h):
                super().__init__()
                self.register_buffer("coords", torch.zeros(2, h))
                self.register_parameter("scale", nn.Parameter(torch.ones(1)))
                self.register_parameter("bias", None)
                self.register_buffer(name, torch.ones(1))
        ''')
    stores = {s.attr: s for s in summarize(source, "pkg/enc.py", "pkg.enc", False).stores}
    assert set(stores) == {"coords", "scale", "bias"}  # a name that is no literal stores nothing known
    assert stores["coords"].owner == "Enc" and stores["coords"].base == ("param", "self")
    assert stores["coords"].value[:2] == ("call", ("name", "torch.nn.Buffer"))
    assert stores["scale"].value[1] == ("attr", ("name", "nn"), "Parameter")  # not wrapped twice
    assert stores["bias"].value == ("lit", "none")
    inference = Inference(_index({"pkg.enc": source}))
    coords = inference.field(["pkg.enc.Enc"], "coords")
    assert coords.device is Device.UNKNOWN and coords.is_unknown_tensor


@pytest.mark.parametrize("move,spread", [
    ("v = v.to(device, non_blocking=True)", ("fieldsof", ("param", "self"), "to", (("param", "device"),),
                                             (("non_blocking", ("lit", "bool", True)),))),
    ("v = v.cuda()", ("fieldsof", ("param", "self"), "cuda", (), ())),
    ("pass", None),  # a plain copy moves nothing
    ("w = v.to(device)", None),  # the moved value is not what is stored
])
def test_summary_a_copy_of_every_field_moved_is_spread_into_the_construction(move: str, spread) -> None:
    source = textwrap.dedent(f'''
        from dataclasses import dataclass, fields


        @dataclass
        class Inputs:
            ids: object

            def to_device(self, device):
                out = dict()
                for f in fields(self):
                    k = f.name
                    v = getattr(self, k)
                    {move}
                    out[k] = v
                return Inputs(**out)
        ''')
    (call,) = [c for c in summarize(source, "pkg/i.py", "pkg.i", False).calls if c.func == ("name", "Inputs")]
    (kwarg,) = call.kwargs
    assert kwarg[0] == "**"
    assert (kwarg[1] if kwarg[1][0] == "fieldsof" else None) == spread


def test_summary_call_sites(summary) -> None:
    run = next(c for c in summary.calls if c.func == ("name", "run"))
    assert run.function == "Worker.step" and run.line == 32 and run.loop_depth == 1
    assert run.args == (("param", "a"), ("param", "b")) and run.kwargs == (("key", ("param", "c")),)
    constructor = next(c for c in summary.calls if c.func == ("name", "Meta"))
    assert constructor.args == (("param", "a"),) and constructor.kwargs == (("out", ("param", "b")),)
    assert not any(c.func[0] == "attr" and c.func[1] == ("name", "torch") for c in summary.calls)  # torch is left out


def test_summary_dict_entries(summary) -> None:
    entries = {(e.key, e.line): e.value for e in summary.entries}
    assert entries[("spec", 35)] == ("param", "a")
    assert entries[("extra", 36)] == ("param", "c")
    assert all(e.key != 7 for e in summary.entries)  # only string keys


def test_summary_device_context_and_returns(summary) -> None:
    (value,) = summary.functions["under"].returns
    assert ("device", ("lit", "str", "cuda")) in value[3]
    # `with dev:` where the function binds `dev` only to `torch.device(...)`.
    (value,) = summary.functions["under_name"].returns
    assert value[3] == (("device", ("call", ("attr", ("name", "torch"), "device"), (("param", "load"),), ())),)


def test_summary_a_list_the_function_grows_holds_what_it_adds() -> None:
    module = summarize(textwrap.dedent("""
        import torch
        def grown(n):
            out = []
            x = torch.zeros(n, device="cuda")
            out.append(x)
            x = None  # the list holds what `x` was when it was added
            return out
        def extended(parts):
            rows = []
            rows.extend(parts)
            return rows
        def untouched():
            out = []
            return out
    """), "m.py", "m")
    zeros = ("call", ("attr", ("name", "torch"), "zeros"), (("param", "n"),), (("device", ("lit", "str", "cuda")),))
    (value,) = module.functions["grown"].returns
    assert value == ("join", (("tuple", ()), ("listof", zeros)))
    (value,) = module.functions["extended"].returns
    assert value == ("join", (("tuple", ()), ("listof", ("iter", ("param", "parts")))))
    assert module.functions["untouched"].returns == (("tuple", ()),)


def test_summary_a_comprehension_variable_is_an_element_of_what_it_iterates() -> None:
    # Reduced from diffusers' QwenImage `_get_qwen_prompt_embeds`: the mask stacked from padded GPU rows
    # was unknown because `u` was read as a name of the function, not as an element of `rows`.
    module = summarize(textwrap.dedent("""
        import torch
        def stacked(parts):
            rows = [torch.ones(n, device="cuda") for n in parts]
            return torch.stack([torch.cat([u, u.new_zeros(3)]) for u in rows])
        def shadowed(xs, u):
            return [u for u in xs]  # the comprehension's `u`, not the parameter
        def pairs(xs, ys):
            return [a for a, b in zip(xs, ys)], [b for i, b in enumerate(ys)], [t[0] for t in xs]
        def calls(self, xs):
            return [self.layer(x, k=y) for x in xs for y in x]
        def keyed(self, outputs):
            return {k: self.split(v, k) for k, v in outputs.items()}
    """), "m.py", "m")
    (value,) = module.functions["stacked"].returns
    rows = ("listof", ("call", ("attr", ("name", "torch"), "ones"), (("iter", ("param", "parts")),),
                       (("device", ("lit", "str", "cuda")),)))
    u = ("iter", rows)
    padded = ("call", ("attr", ("name", "torch"), "cat"),
              (("tuple", (u, ("call", ("attr", u, "new_zeros"), (("lit", "number"),), ()))),), ())
    assert value == ("call", ("attr", ("name", "torch"), "stack"), (("listof", padded),), ())
    (value,) = module.functions["shadowed"].returns
    assert value == ("listof", ("iter", ("param", "xs")))
    (value,) = module.functions["pairs"].returns
    assert value[1][0] == ("listof", ("iter", ("param", "xs")))
    assert value[1][1] == ("listof", ("iter", ("param", "ys")))
    assert value[1][2][1][0] == "sub" and value[1][2][1][1] == ("iter", ("param", "xs"))
    (call,) = [c for c in module.calls if c.function == "keyed" and c.func[-1] == "split"]  # a key is no value
    assert call.args == (("item", ("iter", ("call", ("attr", ("param", "outputs"), "items"), (), ())), 1), ("?",))
    (call,) = [c for c in module.calls if c.function == "calls"]
    assert call.args == (("iter", ("param", "xs")),)
    assert call.kwargs == (("k", ("iter", ("iter", ("param", "xs")))),)


def test_summary_a_comprehension_variable_over_a_large_value_is_not_copied_into_its_reads() -> None:
    # transformers' gated delta rule rebinds `q, k, v, b, d = [f(x) for x in (q, k, v, b, d)]` and then
    # three times more: each variable copied the whole tuple before it, until one iterable counted over
    # a million parts (a cold transformers run stalled on such files). The binding stops at a bound.
    module = summarize(textwrap.dedent("""
        import torch
        def rule(q, k, v, b, d):
            q, k, v, b, d = [x.transpose(1, 2).to(torch.float32) for x in (q, k, v, b, d)]
            q, k, v = (torch.nn.functional.pad(x, (0, 1)) for x in (q, k, v))
            b, d = (torch.nn.functional.pad(x, (0, 1)) for x in (b, d))
            q, k, b, v = [x.reshape(x.shape[0], -1) for x in (q, k, b, v)]
            q, k, b, v = [x.reshape(x.shape[0], -1) for x in (q, k, b, v)]
            return q, k, v, b, d
    """), "m.py", "m")
    (value,) = module.functions["rule"].returns
    assert _size(value, 100_000) < 20_000


def test_summary_what_a_list_grows_by_does_not_depend_on_the_depth_of_its_first_read() -> None:
    # Reduced, statement by statement, from vLLM 0.33's `EplbState.rearrange`: the list grows by the
    # element of a later loop over itself, and the first read of what it grows by came deep inside
    # the nested function's default. Worked out at that depth, it was cut short (`?`) for every read
    # (the three EPLB findings of `benchmarks/results/precision-audit.md`'s top section).
    module = summarize(textwrap.dedent("""
        class EplbState:
            def rearrange(
            ) -> torch.Tensor | None:
                global_expert_load_windows = []
                for eplb_model_state in self.model_states.values():
                    physical_to_logical = eplb_model_state.physical_to_logical_map
                    global_expert_load_windows.append(global_expert_load_window)
                for eplb_model_state, global_expert_load_window in zip(
                    self.model_states.values(), global_expert_load_windows
                        ):
                            logical_loads = global_expert_load_window.float()
                            def rank_load_imbalance(
                                logical_loads: torch.Tensor = logical_loads,
                            ) -> float:
                                mapping = mapping.to(
                                )
    """), "m.py", "m")
    (info,) = [f for q, f in module.functions.items() if q.endswith("rank_load_imbalance")]
    (param,) = [p for p in info.params if p.name == "logical_loads"]
    assert UNKNOWN not in _parts(param.default), param.default


def _parts(value: object) -> list[object]:
    """Every tuple nested in a summary value, itself included."""
    out = [value]
    for part in value if isinstance(value, tuple) else ():
        if isinstance(part, tuple):
            out.extend(_parts(part))
    return out


def test_summary_a_generator_records_what_it_yields() -> None:
    module = summarize(textwrap.dedent("""
        import torch
        def chunks(n):
            for _ in range(n):
                yield torch.zeros(n, device="cuda")
        def passes(parts):
            yield from parts
    """), "m.py", "m")
    zeros = ("call", ("attr", ("name", "torch"), "zeros"), (("param", "n"),), (("device", ("lit", "str", "cuda")),))
    assert module.functions["chunks"].is_generator and module.functions["chunks"].yields == (zeros,)
    assert module.functions["passes"].yields == (("iter", ("param", "parts")),)


def test_summary_a_name_rebound_from_itself_reads_its_earlier_value() -> None:
    module = summarize(textwrap.dedent("""
        import torch
        def pad(x, device=None, pin=False):
            t = torch.from_numpy(x).to(device)
            if pin:
                t = t.pin_memory()
            return t
        def move(audio, device):
            if device is not None:
                audio = audio.to(device)
            return audio
        def kw(rec):
            y = f(rec=rec)
            y = y + g(rec=y)
            return y
    """), "m.py", "m")
    (pad,) = module.functions["pad"].returns
    made = ("call", ("attr", ("call", ("attr", ("name", "torch"), "from_numpy"), (("param", "x"),), ()), "to"),
            (("param", "device"),), ())
    assert pad == ("join", (made, ("call", ("attr", made, "pin_memory"), (), ())))
    (move,) = module.functions["move"].returns
    assert move == ("join", (("call", ("attr", ("param", "audio"), "to"), (("param", "device"),), ()),
                             ("param", "audio")))
    # Rebound twice in one block: the return reads the second, which reads the first (a keyword
    # argument keeps its name).
    (kw,) = module.functions["kw"].returns
    first = ("call", ("name", "f"), (), (("rec", ("param", "rec")),))
    assert kw == ("op", (first, ("call", ("name", "g"), (), (("rec", first),))))


def _arguments(source: str, callee: str = "use") -> list[Value]:
    module = summarize(textwrap.dedent(source), "m.py", "m")
    return [call.args[0] for call in module.calls if call.func == ("name", callee)]


MOVED = ("call", ("attr", ("param", "x"), "to"), (("param", "d"),), ())


@pytest.mark.parametrize("source, expected", [
    # The assignment before the call, in its block or an enclosing one, is what the call passes.
    ("def f(x, d):\n    x = x.to(d)\n    use(x)\n", MOVED),
    ("def f(x, d, n):\n    x = x.to(d)\n    if n:\n        for i in n:\n            use(x)\n", MOVED),
    ("def f(x, d, n):\n    while n:\n        x = x.to(d)\n        use(x)\n        x = g(x)\n",
     # (at the top of the loop, `x` is whatever it was given: the join)
     ("call", ("attr", ("join", (MOVED, ("call", ("name", "g"), (MOVED,), ()), ("param", "x"))), "to"),
      (("param", "d"),), ())),
    # Before any assignment: the parameter.
    ("def f(x, d):\n    use(x)\n    x = x.to(d)\n", ("param", "x")),
    # An assignment in a branch, a loop coming back, a handler, a walrus, a loop target: the join.
    ("def f(x, d, c):\n    if c:\n        x = x.to(d)\n    use(x)\n", ("join", (MOVED, ("param", "x")))),
    ("def f(x, d, n):\n    for i in n:\n        use(x)\n        x = x.to(d)\n", ("join", (MOVED, ("param", "x")))),
    ("def f(x, d):\n    try:\n        x = x.to(d)\n    except E:\n        pass\n    use(x)\n",
     ("join", (MOVED, ("param", "x")))),
    ("def f(x, d):\n    x = x.to(d)\n    if (x := g()):\n        pass\n    use(x)\n",
     ("join", (MOVED, ("call", ("name", "g"), (), ()), ("param", "x")))),
])
def test_summary_a_name_read_after_an_assignment_that_must_have_run_is_that_value(source: str,
                                                                                  expected: Value) -> None:
    (argument,) = _arguments(source)
    assert argument == expected


def test_summary_of_broken_file_is_empty_with_error() -> None:
    broken = summarize("def f(:\n", "b.py", "b")
    assert broken.error and not broken.functions


def test_table_rows(summary) -> None:
    rows = set(table_rows(summary))
    assert ("calls", "run", "pkg.mod") in rows and ("calls", "Meta", "pkg.mod") in rows
    assert ("stores", "lens", "pkg.mod") in rows and ("stores", "named", "pkg.mod") in rows
    assert ("entries", "spec", "pkg.mod") in rows
    assert ("classes", "Worker", "pkg.mod") in rows
    assert any(kind == "bases" and name == "pkg.mod.Worker" for kind, name, _ in rows)


# ==========================================================================================
# index.py
# ==========================================================================================


def _index(files: dict[str, str]) -> ProjectIndex:
    summaries = []
    for module, source in files.items():
        package = module.endswith(".__init__")
        name = module.removesuffix(".__init__")
        path = module.replace(".", "/") + ".py"
        summaries.append(summarize(textwrap.dedent(source), path, name, package))
    return ProjectIndex.from_summaries(summaries)


def test_resolve_follows_reexports_star_imports_and_stops_in_cycles() -> None:
    index = _index({
        "pkg.__init__": "from .core import Batch as B\nfrom .util import *\n",
        "pkg.core": "class Batch:\n    pass\n",
        "pkg.util": "def helper():\n    pass\nLIMIT = 3\n",
        "pkg.a": "from pkg.b import X\n",
        "pkg.b": "from pkg.a import X\n",
    })
    assert index.resolve("pkg.B").qualname == "pkg.core.Batch"
    assert index.resolve("pkg.B").kind == "class"
    assert index.resolve("pkg.helper").qualname == "pkg.util.helper"
    assert index.resolve("pkg.LIMIT").kind == "global"
    assert index.resolve("pkg.core").kind == "module"
    assert index.resolve("pkg.a.X") is None  # an import cycle resolves to nothing, and ends
    assert index.resolve("pkg.nothing") is None


def test_resolve_ends_through_a_star_import_of_a_module_not_in_the_project() -> None:
    # SpecForge's `specforge/__init__.py` star-imports `.modeling`, which the case does not hold: each
    # miss asked for `pkg.modeling.<name>`, which asked the package again, one `.modeling` longer.
    index = _index({
        "pkg.__init__": "from .core import *\nfrom .modeling import *\n",
        "pkg.core": "class Batch:\n    pass\n",
    })
    assert index.resolve("pkg.Batch").qualname == "pkg.core.Batch"
    assert index.resolve("pkg.Model") is None
    assert index.resolve("pkg.modeling.Model") is None


def test_hierarchy_across_modules() -> None:
    index = _index({
        "pkg.base": "class Base:\n    def f(self):\n        pass\n    def g(self):\n        pass\n",
        "pkg.mid": "from pkg.base import Base\nclass Mid(Base):\n    def f(self):\n        pass\n",
        "pkg.leaf": "from pkg import mid\nclass Leaf(mid.Mid):\n    pass\n",
    })
    assert index.mro("pkg.leaf.Leaf") == ["pkg.leaf.Leaf", "pkg.mid.Mid", "pkg.base.Base"]
    assert index.subclasses("pkg.base.Base") == {"pkg.mid.Mid", "pkg.leaf.Leaf"}
    assert index.method("pkg.leaf.Leaf", "f") == "pkg.mid.Mid.f"
    assert index.method("pkg.leaf.Leaf", "g") == "pkg.base.Base.g"
    assert index.method("pkg.leaf.Leaf", "h") is None


def test_subclasses_through_a_renamed_reexport_and_of_a_class_sharing_a_name() -> None:
    """Only bases spelled with the class's name (or a name no project class has) are resolved, and the
    answers are those of resolving every base: a re-export under another name still counts, and a
    class of the same name in another module does not."""
    index = _index({
        "pkg.__init__": "from .core import Batch as B\n",
        "pkg.core": "class Batch:\n    pass\n",
        "pkg.other": "class Batch:\n    pass\n",
        "pkg.a": "import pkg\nimport torch\nclass Renamed(pkg.B):\n    pass\nclass Layer(torch.nn.Module):\n    pass\n",
        "pkg.b": "from pkg.core import Batch\nclass Direct(Batch):\n    pass\n",
        "pkg.c": "from pkg.b import Direct\nfrom pkg.other import Batch\nclass Deeper(Direct):\n    pass\n"
                 "class Elsewhere(Batch):\n    pass\n",
    })
    assert index.subclasses("pkg.core.Batch") == {"pkg.a.Renamed", "pkg.b.Direct", "pkg.c.Deeper"}
    assert index.subclasses("pkg.other.Batch") == {"pkg.c.Elsewhere"}
    assert index.subclasses("pkg.a.Layer") == set()


def test_subclasses_through_a_reexport_named_like_another_project_class() -> None:
    # `pkg.Block` is `pkg.core.Layer` re-exported, while `pkg.other` has a class `Block` of its own.
    index = _index({
        "pkg.__init__": "from .core import Layer as Block\n",
        "pkg.core": "class Layer:\n    pass\n",
        "pkg.other": "class Block:\n    pass\n",
        "pkg.a": "from pkg import Block\nclass Sub(Block):\n    pass\n",
    })
    assert index.subclasses("pkg.core.Layer") == {"pkg.a.Sub"}
    assert index.subclasses("pkg.other.Block") == set()


def test_a_replaced_summary_is_seen_by_the_subclasses_kept_in_this_process() -> None:
    # A text being edited replaces its module's summary: the direct subclasses found before (kept by
    # `KeptAnswers`, in memory when there is no cache) must be found again.
    index = _index({
        "pkg.base": "class Base:\n    pass\n",
        "pkg.sub": "x = 1\n",
    })
    assert index.subclasses("pkg.base.Base") == set()
    index.replace(summarize("from pkg.base import Base\nclass Sub(Base):\n    pass\n", "pkg/sub.py", "pkg.sub"))
    assert index.subclasses("pkg.base.Base") == {"pkg.sub.Sub"}


def test_what_a_subclass_puts_in_a_class_attribute_is_read_only_where_a_class_sets_one() -> None:
    # LightLLM's `infer_state_class = X` in a subclass: the base's `self.infer_state_class()` builds X.
    # Asked for every field of a class with subclasses, this read the summary of each subclass's
    # module, also for attributes no class sets (on vLLM, most of a check of one file after an edit).
    index = _index({
        "pkg.state": "class State:\n    pass\nclass Sliding:\n    pass\n",
        "pkg.base": "from pkg.state import State\nclass Base:\n    state_class = State\n"
                    "    def __init__(self):\n        self.size = 1\n",
        "pkg.sliding": "from pkg.base import Base\nfrom pkg.state import Sliding\nclass SlidingModel(Base):\n"
                       "    state_class = Sliding\n",
        "pkg.plain": "from pkg.base import Base\nclass Plain(Base):\n    pass\n",
    })
    inference = Inference(index)

    def type_field(attr: str) -> tuple[Fact, frozenset]:
        index.reads.begin()
        fact = inference._type_field_of("pkg.base.Base", attr)
        return fact, index.reads.end()

    fact, read = type_field("state_class")
    assert fact.refs == {"pkg.state.State", "pkg.state.Sliding"}
    def modules_read(read: frozenset) -> set[str]:  # the modules some part of which was read
        return {dep.split(":")[1] for dep in read if isinstance(dep, str) and dep[:2] == "p:"}

    assert "pkg.sliding" in modules_read(read) and "pkg.plain" not in modules_read(read)
    fact, read = type_field("size")
    assert not {"pkg.sliding", "pkg.plain"} & modules_read(read)


def test_where_names_are_mentioned() -> None:
    index = _index({
        "pkg.a": "def f(x):\n    pass\nclass C:\n    def __init__(self):\n        self.lens = 1\n",
        "pkg.b": "from pkg.a import f\nf(1)\nobj.lens = 2\nd = {'k': 3}\n",
    })
    assert [(s.module, c.line) for s, c in index.calls_named("f")] == [("pkg.b", 2)]
    assert sorted((s.module, st.line) for s, st in index.stores_of("lens")) == [("pkg.a", 5), ("pkg.b", 3)]
    assert [(s.module, e.line) for s, e in index.entries_of("k")] == [("pkg.b", 4)]


# ==========================================================================================
# infer.py
# ==========================================================================================

INFER_PROJECT = {
    "pkg.batch": """
        from dataclasses import dataclass
        import torch
        @dataclass
        class Batch:
            lens: torch.Tensor
            host: torch.Tensor
    """,
    "pkg.make": """
        import torch
        from pkg.batch import Batch
        def build(n):
            return Batch(torch.zeros(n, device="cuda"), host=torch.zeros(n))
        def ident(x):
            return x
        def use(n):
            ident(torch.zeros(n, device="cuda"))
            ident(torch.zeros(n))
            take(torch.zeros(n, device="cuda"))
            take(torch.ones(n).cuda())
            loop(torch.zeros(n, device="cuda"), 3)
        def take(t):
            return t
        def loop(x, k):
            if k:
                return loop(x, k - 1)
            return x
    """,
}


@pytest.fixture
def inference() -> Inference:
    return Inference(_index(INFER_PROJECT))


def test_infer_fields_from_constructors(inference: Inference) -> None:
    lens = inference.field(["pkg.batch.Batch"], "lens")
    assert lens.device is Device.GPU and lens.where == "pkg/make.py:5"
    assert inference.field(["pkg.batch.Batch"], "host").device is Device.CPU
    assert inference.returns("pkg.make.build").value_kind == "object"


def test_infer_parameters_from_callers(inference: Inference) -> None:
    agreeing = inference.param("pkg.make.take", "t")
    assert agreeing.device is Device.GPU and "2 of 2 sources" in agreeing.reason
    assert inference.param("pkg.make.ident", "x").lattice() == TENSOR.lattice()  # callers disagree
    # The body reads it as the GPU tensor one call passes: that call waits there.
    in_body = inference.body_param("pkg.make.ident", "x")
    assert in_body.device is Device.GPU and in_body.by_convention
    assert "1 of 2 sources, the rest on another device" in in_body.reason
    assert inference.body_param("pkg.make.take", "t") == agreeing


def test_infer_recursion_terminates(inference: Inference) -> None:
    assert inference.param("pkg.make.loop", "x").device is Device.GPU
    assert inference.returns("pkg.make.loop").device is Device.GPU


def test_infer_returns_specialise_per_call(inference: Inference) -> None:
    gpu = Fact(Device.GPU)
    cpu = Fact(Device.CPU)
    assert inference.returns_with("pkg.make.ident", [gpu], {}, 6).device is Device.GPU
    assert inference.returns_with("pkg.make.ident", [cpu], {}, 6).device is Device.CPU


def test_infer_specialisation_tells_device_strings_apart() -> None:
    inference = Inference(_index({"pkg.m": "def moved(x, device):\n    return x.to(device)\n"}))
    gpu = Fact(Device.GPU)
    cuda = Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason="cuda")
    cpu = Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason="cpu")
    assert inference.returns_with("pkg.m.moved", [gpu, cpu], {}, 6).device is Device.CPU
    assert inference.returns_with("pkg.m.moved", [Fact(Device.CPU), cuda], {}, 6).device is Device.GPU
    assert inference.returns_with("pkg.m.moved", [gpu, cuda], {}, 6).device is Device.GPU


def test_infer_answers_do_not_depend_on_the_order_of_questions() -> None:
    keys = [("param", "pkg.make.take", "t", 6), ("return", "pkg.make.loop", 6), ("field", "pkg.batch.Batch", "lens", 6),
            ("param", "pkg.make.loop", "x", 6), ("param", "pkg.make.ident", "x", 6)]
    forward = Inference(_index(INFER_PROJECT))
    backward = Inference(_index(INFER_PROJECT))
    first = {key: forward.get(key).lattice() for key in keys}
    second = {key: backward.get(key).lattice() for key in reversed(keys)}
    assert first == second


def _evidence(fact: Fact) -> list[tuple[str, str | None]]:
    return [(step.reason, step.where) for step in fact.chain]


def test_a_helper_returning_its_argument_names_each_callers_own_argument_in_either_order() -> None:
    # `ident(a)` and `ident(b)` return tensors alike (the same device, dtype, certainty), so a memo of
    # `ident`'s result keyed by its argument's value alone hands the first call's evidence to the second.
    project = {"pkg.m": """
        import torch
        def ident(x):
            return x
        def first(a):
            use_a(ident(a))
        def second(b):
            use_b(ident(b))
        def use_a(t):
            return t
        def use_b(t):
            return t
        def top(n):
            first(torch.zeros(n, device="cuda"))
            second(torch.ones(n).cuda())
    """}
    keys = [("param", "pkg.m.use_a", "t", 6), ("param", "pkg.m.use_b", "t", 6)]
    answers = []
    for order in (keys, keys[::-1]):
        inference = Inference(_index(project))
        for key in order:
            inference.get(key)
        answers.append({key: _evidence(inference.get(key)) for key in keys})
    assert answers[0] == answers[1]
    use_b = " ".join(reason for reason, _where in answers[0][keys[1]])
    assert "parameter `b` of `second`" in use_b and "parameter `a`" not in use_b


def test_join_sources_counts_a_source_reached_along_several_paths_once() -> None:
    here = Fact(Device.GPU, reason="receives `torch.zeros(...)` (3 of 9 sources)", where="pkg/a.py:3")
    there = Fact(Device.GPU, reason="receives `x.cuda()`", where="pkg/b.py:7")
    assert join_sources([here, here, here]).reason == here.reason  # one source: no count of its own
    assert join_sources([there, here, there]).reason == there.reason + " (2 of 2 sources)"
    cpu = Fact(Device.CPU, reason="c", where="pkg/c.py:1")
    mixed = join_sources([here, here, there, cpu, cpu], gpu_wins=True)
    assert mixed.device is Device.GPU and mixed.reason.endswith("(2 of 3 sources, the rest on another device)")
    # A step that counts its own sources, which every path here agrees with: no second count after it.
    assert join_sources([here, there, here]).reason == here.reason
    # Unless a Python list among the sources votes against them: that is said.
    assert join_sources([here, here, there, there, *[here] * 6, host_list()]).reason.endswith("another device)")


def test_join_sources_of_host_tensors_and_python_values_is_a_host_tensor() -> None:
    # `delta = 0` on one path, `delta += (mask == 0).sum()` of a CPU mask on the other: nothing in GPU memory.
    cpu = Fact(Device.CPU, reason="c", ndim=0)
    number = Fact(Device.NOT_TENSOR, value_kind="python", dtype="int")
    joined = join_sources([number, cpu])
    assert joined.device is Device.CPU and not joined.by_convention and joined.ndim is None
    # A list on the other path may hold GPU tensors: no host value then.
    gpu_list = Fact(Device.NOT_TENSOR, value_kind="list", items=(Fact(Device.GPU, reason="g"),))
    assert join_sources([gpu_list, cpu]).device is not Device.CPU


def test_join_sources_policy() -> None:
    gpu, cpu = Fact(Device.GPU, reason="g"), Fact(Device.CPU, reason="c")
    assert join_sources([gpu, gpu]).device is Device.GPU
    assert join_sources([gpu, cpu]).lattice() == TENSOR.lattice()  # disagreement: a tensor, device unknown
    majority = join_sources([gpu, gpu, gpu, gpu, cpu])
    assert majority.device is Device.GPU and majority.convention  # 4 of 5 wins, as a convention
    assert join_sources([gpu, Fact(Device.NOT_TENSOR, value_kind="none")]).device is Device.GPU  # None says nothing
    assert join_sources([PYTHON]).value_kind == "python"
    # Python lists into the same key vote against the tensors (a field that is a list of lengths
    # on the main path and a GPU tensor on one fast path is not known to be on the GPU).
    a_list = Fact(Device.NOT_TENSOR, value_kind="list")
    assert join_sources([gpu, gpu, a_list]).lattice() == TENSOR.lattice()
    mostly = join_sources([gpu] * 8 + [a_list])
    assert mostly.device is Device.GPU and mostly.convention
    # So do Python numbers and bools (`causal: bool | torch.Tensor = True`, a GPU tensor in one
    # model only); strings do not (a device name is no value of the key's kind).
    assert join_sources([gpu, gpu, PYTHON]).lattice() == TENSOR.lattice()
    assert join_sources([gpu] * 8 + [PYTHON]).device is Device.GPU
    text = Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason="cuda")
    assert join_sources([gpu, gpu, text]).device is Device.GPU
    # Only None flows in (every call passes None or leaves a None default): the key is None.
    none = Fact(Device.NOT_TENSOR, value_kind="none")
    assert join_sources([none, none]).value_kind == "none"
    assert join_sources([none, Fact(Device.UNKNOWN)]).value_kind != "none"  # a `**kwargs` call may pass more
    # Pinned at one source and pageable at another (`if pin_memory: t = t.pin_memory()`): CPU memory
    # that may be pinned, not provably pageable.
    pinned = Fact(Device.PINNED, reason="p")
    assert join_sources([cpu, pinned]).device is Device.CPU
    assert not join_sources([cpu, pinned]).known_pageable
    assert join_sources([cpu, cpu]).known_pageable
    assert join_sources([pinned, pinned]).device is Device.PINNED
    # Host data of different kinds (`return []` on one path, the list of numbers it was given on
    # another): no tensor. Not so with a string (it may name a device), or a list whose elements are
    # not known (SGLang's `kv_indptr`, a list of GPU buffers).
    host = join_sources([PYTHON, host_list(), Fact(Device.NOT_TENSOR, value_kind="tuple")])
    assert host.device is Device.NOT_TENSOR and not host.is_tensor
    assert join_sources([host_list(), text]).device is Device.UNKNOWN
    assert join_sources([PYTHON, a_list]).device is Device.UNKNOWN


def test_a_helper_given_a_host_list_returns_no_tensor(tmp_path) -> None:
    from fixture_support import check_small_project

    # Whisper's `_strip_prompt`: other callers pass GPU tensors, but this call passes a list, and the
    # helper returns either `[]` or what it was given; its result here is no GPU tensor.
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/tok.py": "import torch\n\n\nclass Tok:\n    def strip(self, ids, p: int):\n"
                      "        if not ids:\n            return ids\n        if ids[0] == p:\n            return []\n"
                      "        return ids\n\n    def decode(self, ids):\n        return self.strip(ids, 1)\n\n\n"
                      "def run(tok: Tok):\n    tok.decode(torch.zeros(3, device='cuda'))\n\n\n"
                      "def decode_asr(tok: Tok, output):\n    ids = output['tokens'][0].tolist()\n"
                      "    for token in tok.strip(ids, 1):\n        print(float(token))\n"
                      "    gpu = tok.strip(torch.ones(3, device='cuda'), 1)\n    return float(gpu[0])\n",
    })
    found = {(d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in diagnostics}
    assert ("tok.py", 23, "SL104") not in found
    assert ("tok.py", 25, "SL104") in found  # the same helper given a GPU tensor


def test_a_helper_that_pins_on_a_flag_returns_memory_that_may_be_pinned(tmp_path) -> None:
    from fixture_support import check_small_project

    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/util.py": "import numpy as np\nimport torch\n\n\ndef make_pad(x, device=None, pin_memory=False):\n"
                       "    tensor = torch.from_numpy(np.array(x)).to(device)\n    if pin_memory:\n"
                       "        tensor = tensor.pin_memory()\n    return tensor\n\n\n"
                       "def make_plain(x):\n    return torch.from_numpy(np.array(x))\n",
        "pkg/use.py": "import torch\n\nfrom pkg.util import make_pad, make_plain\n\nPIN = torch.cuda.is_available()\n\n\n"
                      "def convert(x):\n    t = make_pad(x, device='cpu', pin_memory=PIN)\n"
                      "    return t.to('cuda', non_blocking=True)\n\n\n"
                      "def plain(x):\n    return make_plain(x).to('cuda', non_blocking=True)\n",
    })
    found = {(d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in diagnostics}
    assert ("use.py", 10, "SL303") not in found  # pinned when PIN is true
    assert ("use.py", 14, "SL303") in found  # provably pageable


def test_a_helper_staging_through_a_pinned_buffer_returns_pinned_memory(tmp_path) -> None:
    from fixture_support import check_small_project

    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/util.py": "import torch\n\n\ndef stage(n):\n    buf = torch.zeros(n)\n"
                       "    return buf.new_empty(buf.shape, pin_memory=True).copy_(buf)\n\n\n"
                       "def plain(n):\n    buf = torch.zeros(n)\n    return buf.new_empty(buf.shape).copy_(buf)\n",
        "pkg/use.py": "import torch\n\nfrom pkg.util import plain, stage\n\n\n"
                      "def run(x):\n    return stage(x).to('cuda', non_blocking=True)\n\n\n"
                      "def other(x):\n    return plain(x).to('cuda', non_blocking=True)\n",
    })
    found = {(d.path.rsplit("/", 1)[-1], d.start.row, d.code) for d in diagnostics}
    assert ("use.py", 7, "SL303") not in found  # pinned
    assert ("use.py", 11, "SL303") in found  # pageable


def test_calls_through_a_local_holding_one_of_several_callables_are_filed_under_each() -> None:
    summary = summarize(textwrap.dedent("""
        def f(x, device=None): ...
        def g(x, device=None): ...
        def run(c):
            fn = f
            if c:
                fn = g
            return fn(1)
    """), "pkg/m.py", "pkg.m")
    assert {name for kind, name, _module in table_rows(summary) if kind == "calls"} >= {"f", "g"}


def test_solved_keys_carry_what_they_read(inference: Inference) -> None:
    inference.index.reads.enabled = True
    inference.field(["pkg.batch.Batch"], "lens")
    rows = inference.solved()
    solved = {key: deps for key, _fact, deps in rows}
    nodes = {key for key, fact, _deps in rows if fact is None}
    assert nodes and all(key[0] == "node" for key in nodes)

    def closure(deps: frozenset) -> set:  # a node stands for what it read
        out: set = set()
        for dep in deps:
            out |= closure(solved[dep]) if dep in nodes else {dep}
        return out

    deps = solved[("field", "pkg.batch.Batch", "lens", 6)]
    assert any(dep in nodes for dep in deps)
    read = closure(deps)  # the parts of both modules that decide the field (`parts.py`)
    assert {"p:pkg.batch:classes:Batch", "p:pkg.make:functions:build"} <= read
    assert inference.solved() == []  # handed out once


# ==========================================================================================
# deps.py
# ==========================================================================================


def test_a_frame_records_every_part_it_read_however_many() -> None:
    reads = Reads()
    reads.begin()
    for i in range(100):
        reads.add(f"p:pkg.big:functions:f{i}")
    reads.add("s:pkg.big")
    read = reads.end()
    assert len(read) == 101 and "p:pkg.big:functions:f99" in read


def test_reads_frames_nest() -> None:
    reads = Reads()
    reads.add("ignored")  # no frame open
    reads.begin()
    reads.add("m:a")
    reads.begin()
    reads.add("m:b")
    assert reads.end() == frozenset({"m:b"})
    assert reads.end() == frozenset({"m:a"})  # the inner frame's reads are not the outer's


def test_a_memoised_computation_is_one_node_that_every_user_reads() -> None:
    reads = Reads()
    cache: dict = {}
    calls = []

    def compute() -> int:
        calls.append(1)
        reads.add("m:x")
        reads.add(("field", "C", "a", 6))
        return 42

    reads.begin()
    assert reads.memo(cache, "helper", "k", compute) == 42
    first = reads.end()
    reads.begin()
    assert reads.memo(cache, "helper", "k", compute) == 42  # a hit
    second = reads.end()
    assert len(calls) == 1
    assert first == second == frozenset({("node", "helper", "k")})
    # The node's reads are handed out once, for the cache.
    assert reads.nodes() == [(("node", "helper", "k"), frozenset({"m:x", ("field", "C", "a", 6)}))]
    assert reads.nodes() == []


def test_a_computation_that_read_one_thing_needs_no_node() -> None:
    reads = Reads()
    cache: dict = {}
    reads.begin()
    reads.memo(cache, "helper", "one", lambda: reads.add("m:x") or 1)
    reads.memo(cache, "helper", "none", lambda: 2)
    assert reads.end() == frozenset({"m:x"})
    assert reads.nodes() == []


def test_disabled_reads_still_memoise() -> None:
    reads = Reads(enabled=False)
    cache: dict = {}
    calls = []
    reads.memo(cache, "helper", "k", lambda: calls.append(1) or 1)
    reads.memo(cache, "helper", "k", lambda: calls.append(1) or 1)
    assert len(calls) == 1


def test_dep_ids_are_stable_and_distinct() -> None:
    assert dep_id("m:a") == dep_id("m:a")
    assert dep_id(("field", "C", "a", 6)) == dep_id(("field", "C", "a", 6))
    ids = {dep_id(d) for d in ("m:a", "m:b", "n:stores:a", ("field", "C", "a", 6), ("field", "C", "a", 5))}
    assert len(ids) == 5
    assert all(-(2 ** 63) <= i < 2 ** 63 for i in ids)  # fits SQLite's INTEGER


def test_classmethod_called_through_its_class_binds_cls_and_cls_calls_construct() -> None:
    """`Batch.init_new(lens, device)` passes `lens` to `lens` (not to `cls`), and `cls(...)` in the
    classmethod is a constructor call of `Batch`."""
    inference = Inference(_index({
        "pkg.b": """
            from dataclasses import dataclass
            import torch
            @dataclass
            class Batch:
                lens: torch.Tensor
                @classmethod
                def init_new(cls, lens, device):
                    return cls(lens=lens.to(device))
        """,
        "pkg.c": """
            import torch
            from pkg.b import Batch
            def make(n):
                return Batch.init_new(torch.zeros(n), "cuda")
        """,
    }))
    assert inference.param("pkg.b.Batch.init_new", "lens").device is Device.CPU
    device = inference.param("pkg.b.Batch.init_new", "device")
    assert (device.value_kind, device.device_value) == ("device", Device.GPU)  # the string "cuda", read as a device
    lens = inference.field(["pkg.b.Batch"], "lens")
    assert lens.device is Device.GPU and lens.where == "pkg/b.py:9"


def test_summary_attrs_fields_without_annotations() -> None:
    summary = summarize("import attr\n@attr.s\nclass M:\n    lens = attr.ib()\n    host = attr.ib(default=None)\n"
                        "    plain = 3\n", "m.py", "m")
    meta = summary.classes["M"]
    assert [(f[0], f[2], f[3]) for f in meta.fields] == [("lens", None, 4), ("host", ("lit", "none"), 5)]
    assert meta.attributes == (("plain", ("lit", "number"), 6),)
    assert meta.fields_by_position


def test_dataclasses_replace_and_partial_are_sources() -> None:
    inference = Inference(_index({
        "pkg.t": """
            import dataclasses
            import functools
            import torch
            @dataclasses.dataclass
            class B:
                lens: torch.Tensor
            def refresh(b: B, n):
                return dataclasses.replace(b, lens=torch.zeros(n, device="cuda"))
            def consume(x, y):
                return x
            def bind(n):
                return functools.partial(consume, torch.zeros(n, device="cuda"))
        """,
    }))
    lens = inference.field(["pkg.t.B"], "lens")
    assert lens.device is Device.GPU and lens.where == "pkg/t.py:9" and "replaced by" in lens.reason
    x = inference.param("pkg.t.consume", "x")
    assert x.device is Device.GPU and x.where == "pkg/t.py:13"
    assert not _informative_param(inference.param("pkg.t.consume", "y"))


def _informative_param(fact: Fact) -> bool:
    return fact.is_tensor or fact.is_unknown_tensor


def test_dataclasses_replace_is_filed_apart_from_other_replace_calls() -> None:
    """Field answers read the call table of `dataclasses.replace`, not that of every `str.replace`
    (which would make any such edit drop every cached field)."""
    source = "import dataclasses\nfrom dataclasses import replace as r\ndef f(b, s):\n" \
             "    dataclasses.replace(b, x=1)\n    r(b, x=2)\n    return s.replace('a', 'b')\n"
    rows = [(kind, name) for kind, name, _ in table_rows(summarize(source, "m.py", "m")) if kind == "calls"]
    assert rows.count(("calls", "dataclasses.replace")) == 2
    assert rows.count(("calls", "replace")) == 1


def test_cls_call_in_a_classmethod_is_filed_under_the_class() -> None:
    source = "class B:\n    @classmethod\n    def make(cls, x):\n        return cls(x)\n" \
             "def g(fn, x):\n    return fn(x)\n"
    rows = [name for kind, name, _ in table_rows(summarize(source, "m.py", "m")) if kind == "calls"]
    assert rows == ["B"]  # a callback parameter's call is filed under no name


def test_identity_and_membership_tests_are_python_bools() -> None:
    """`x is not None` of a GPU tensor is a bool, not a GPU value (an `if` on it does not sync)."""
    from sync_lint.project.summary import summarize

    source = (
        "import torch\n"
        "class P:\n"
        "    def __init__(self):\n"
        "        self.ptr = torch.zeros(3, device='cuda')\n"
        "    def enabled(self):\n"
        "        return self.ptr is not None\n"
        "    def both(self, key, table):\n"
        "        return key in table and self.ptr is None\n"
        "    def compared(self):\n"
        "        return self.ptr > 0\n"
    )
    functions = summarize(source, "m.py", "m").functions
    assert functions["P.enabled"].returns == (("lit", "bool"),)
    assert functions["P.both"].returns == (("lit", "bool"),)
    assert functions["P.compared"].returns[0][0] == "op"


def test_a_global_is_first_bound_where_the_module_binds_it_not_in_a_function() -> None:
    # Evidence points at a global's first module-level binding; a local of the same name in a
    # function above it is not that binding.
    from sync_lint.project.summary import summarize

    source = "def setup():\n    parser = 1\n    return parser\n\n\nif __name__ == '__main__':\n    parser = 2\n"
    assert summarize(source, "m.py", "m").global_lines == {"parser": 7}


def test_a_cycle_of_returns_is_explored_once_per_question_not_once_per_path() -> None:
    # f0 returns f1() or f2(), f1 returns f2() or f3(), ..., and the last ones call f0 again: a
    # question about f0 in "types" mode meets cuts everywhere. Answers that met a cut are kept
    # for the rest of the question; recomputing them on every path was exponential in the
    # chain's length (a vLLM file ran for minutes).
    n = 14
    lines = ["def f%d(c):\n    return f%d(c) if c else f%d(c)\n" % (i, (i + 1) % n, (i + 2) % n) for i in range(n)]
    inference = Inference(_index({"pkg.cyc": "\n\n".join(lines)}))
    computed = []
    original = inference._type_return

    def counting(function: str):  # type: ignore[no-untyped-def]
        computed.append(function)
        return original(function)

    inference._type_return = counting  # type: ignore[method-assign]
    inference._cheap_question(("type-return", "pkg.cyc.f0"), lambda: inference._type_return("pkg.cyc.f0"))
    assert "pkg.cyc.f13" in computed  # the whole cycle was explored
    assert len(computed) <= 2 * n


def test_device_parameter_default_counts_only_where_a_call_may_leave_it() -> None:
    """`device="cpu"` with no known caller is the CPU. The CPU at one source and an accelerator at
    another is an accelerator by convention only, the default included (a call the index cannot see
    may leave it), and so is a value nobody knows next to "cpu"; differing strings are no answer either."""
    inference = Inference(_index({
        "pkg.f": """
            def public(x, device="cpu"):
                return x.to(device)
            def staged(x, device="cpu"):
                return x.to(device)
            def either(x, device="cpu"):
                return x.to(device)
            def unknown(x, device):
                return x.to(device)
            class Holder:
                def __init__(self, x, where):
                    self.buf = x.to(where)
        """,
        "pkg.g": """
            from pkg.f import Holder, either, staged, unknown
            def run(x):
                staged(x, "cuda")
                staged(x, device="cuda:1")
                either(x)
                either(x, "cuda")
                unknown(x, "cpu")
                unknown(x, runner.placement())
                Holder(x, "cpu")
                Holder(x, "cuda")
        """,
    }))
    public = inference.param("pkg.f.public", "device")
    assert (public.value_kind, public.device_value) == ("device", Device.CPU)
    for function in ("staged", "either", "unknown"):
        found = inference.param(f"pkg.f.{function}", "device")
        assert (found.value_kind, found.device_value, found.by_convention) == ("device", Device.GPU, True), function
    where = inference.param("pkg.f.Holder.__init__", "where")
    assert (where.value_kind, where.dtype, where.reason) == ("python", "str", "")
    assert inference.field(["pkg.f.Holder"], "buf").device is not Device.CPU


def test_entry_convention_needs_every_site_to_store_a_tensor() -> None:
    """Entries under a key are a convention only when the tensors agree and no site stores something
    else: a JSON annotation's `obj["iscrowd"]` is an int, whatever an output dict holds."""
    sources = """
        import torch
        def outputs(n):
            return {"boxes": torch.zeros(n, device="cuda"), "scores": torch.zeros(n, device="cuda")}
        def more(n):
            return {"boxes": torch.ones(n, device="cuda"), "scores": torch.ones(n, device="cuda")}
        def again(n):
            return {"boxes": torch.empty(n, device="cuda"), "scores": torch.empty(n, device="cuda")}
        def parsed(n):
            return {"scores": 0.5 if n else 0.25}
    """
    inference = Inference(_index({"pkg.m": sources}))
    assert inference.entry("boxes").device is Device.GPU
    assert inference.entry("boxes").by_convention
    assert not inference.entry("scores").is_tensor  # one site stores a Python number


def test_entry_convention_leaves_out_a_table_of_enum_members() -> None:
    """SGLang's base processor maps attribute names to modalities (`{"grid_thws": Modality.IMAGE}`):
    a dict of another kind, which neither agrees nor disagrees with the tensors stored under the key."""
    sources = """
        from enum import Enum, auto
        import torch
        class Modality(Enum):
            IMAGE = auto()
        ATTRS = {"grid_thws": Modality.IMAGE}
        def process(grids):
            return {"grid_thws": torch.tensor(grids)}
        def again(grids):
            return {"grid_thws": torch.tensor(grids).long()}
    """
    inference = Inference(_index({"pkg.m": sources}))
    assert inference.entry("grid_thws").device is Device.CPU


def test_a_cast_to_a_torch_dtype_moves_nothing() -> None:
    # `torch` is bound by `import torch`: `torch.float32` is a dtype, not a device to move to.
    inference = Inference(_index({"pkg.m": """
        import torch
        import torch as th
        def cast(images: torch.Tensor):
            return images.to(torch.float32)
        def cast_alias(images: torch.Tensor):
            return th.zeros(3).to(th.bfloat16)
        def moved(images: torch.Tensor):
            return images.to(torch.device("cuda"))
    """}))
    assert not inference.returns("pkg.m.cast").is_gpu
    assert inference.returns("pkg.m.cast_alias").device is Device.CPU
    assert inference.returns("pkg.m.moved").is_gpu


def test_a_function_of_tensors_that_builds_a_tensor_returns_where_its_inputs_are() -> None:
    inference = Inference(_index({"pkg.m": """
        import torch
        def rotary(n):
            pos = torch.arange(n).float().to("cuda")
            return torch.polar(torch.ones_like(pos), pos)
        def host(n):
            return torch.complex(torch.zeros(n), torch.ones(n))
    """}))
    assert inference.returns("pkg.m.rotary").device is Device.GPU
    assert inference.returns("pkg.m.host").device is Device.CPU


def test_moving_a_module_of_unknown_class_returns_the_module() -> None:
    # As the per-file analysis has it: `self.model.to(device)` is the module, so calling what it returns
    # runs the module (a GPU input gives a GPU output, by convention).
    inference = Inference(_index({"pkg.m": """
        import torch
        class Runner:
            def run(self, n):
                moved = self.model.to("cuda")
                return moved(torch.zeros(n, device="cuda"))
    """}))
    out = inference.returns("pkg.m.Runner.run")
    assert out.device is Device.GPU and out.by_convention


def test_a_call_s_result_is_as_sure_as_its_arguments_whichever_call_came_first() -> None:
    # The answer for a call is memoised for the next call with the same arguments: an argument on the
    # GPU only by convention is not the same argument as one proven there.
    source = {"pkg.m": """
        def double(x):
            return x * 2
    """}
    proven = Fact(Device.GPU, reason="created on the GPU")
    assumed = Fact(Device.GPU, reason="`t.device` taken for an accelerator", convention=True)
    for first, second in ((proven, assumed), (assumed, proven)):
        inference = Inference(_index(source))
        one = inference.returns_with("pkg.m.double", [first], {}, 6)
        two = inference.returns_with("pkg.m.double", [second], {}, 6)
        assert (one.by_convention, two.by_convention) == (first.convention, second.convention)


def test_a_detached_fact_still_rests_on_its_convention() -> None:
    # Detaching drops the steps made in the checked file's syntax; a convention among them stays.
    import libcst as cst

    step = Fact(Device.GPU, convention=True, origin=cst.Name("t"), reason="`t.device` taken for an accelerator")
    fact = Fact(Device.GPU, via=step, reason="created by `torch.zeros(...)`")
    assert fact.by_convention and detached(fact).via is None
    assert detached(fact).by_convention


def test_a_factory_spreading_a_known_dict_takes_its_device_entry() -> None:
    inference = Inference(_index({"pkg.m": """
        import torch
        def on_cuda(n):
            kw = {"device": "cuda", "dtype": torch.float32}
            return torch.zeros(n, **kw)
        def no_device(n):
            kw = {"dtype": torch.float32}
            return torch.zeros(n, **kw)
        def passed(n, kw):
            return torch.zeros(n, **kw)
        def default_device(n):
            kw = {"device": None, "dtype": torch.float32}
            return torch.zeros(n, **kw)
        def like(n):
            kw = {"dtype": torch.float32}
            return torch.zeros_like(torch.ones(n, device="cuda"), **kw)
        def like_passed(n, kw):
            return torch.zeros_like(torch.ones(n, device="cuda"), **kw)
    """}))
    assert inference.returns("pkg.m.on_cuda").device is Device.GPU
    assert inference.returns("pkg.m.default_device").device is Device.CPU  # `device=None`: the default
    assert inference.returns("pkg.m.like").device is Device.GPU  # no device entry: where its input is
    assert not inference.returns("pkg.m.like_passed").is_tensor  # a dict nobody knows may name a device
    assert not inference.returns("pkg.m.no_device").is_tensor  # no device entry seen: no claim
    assert not inference.returns("pkg.m.passed").is_tensor


def test_summary_a_value_first_read_deep_inside_an_expression_is_kept_whole() -> None:
    # `m` is first read deep inside `idx`'s value; the return must still see the whole of it.
    module = summarize(textwrap.dedent("""
        import torch
        def mask(inputs, lengths):
            n = lengths.shape[0]
            m = torch.arange(0, n).to(inputs.device)
            m = torch.lt(m, lengths.reshape(n, 1)).view(n, 1)
            idx = torch.cumsum(m.to(torch.int64).view(-1), dim=0) - 1
            return m, idx
    """), "m.py", "m")
    (returned,) = module.functions["mask"].returns
    first = returned[1][0]
    assert first[1][1][:2] == ("call", ("attr", ("name", "torch"), "lt")), first
    assert "('?',)" not in repr(first)


def test_a_receiver_nobody_knows_moved_to_a_device_is_a_tensor_there() -> None:
    # As the per-file analysis takes `x.to("cuda")` of an unknown `x`: `tokenizer(...).input_ids`
    # moved to the device of a GPU parameter is a GPU tensor, and `.cpu()` of anything a CPU one.
    inference = Inference(_index({"pkg.m": """
        import torch
        def heal(input_ids, tokenizer):
            input_ids = tokenizer(["a"], return_tensors="pt").input_ids.to(input_ids.device)
            return input_ids
        def host(batch):
            return batch.cpu()
        def cast(batch):
            return batch.to(torch.float16)
        def run(n, tokenizer):
            return heal(torch.zeros(n, device="cuda"), tokenizer)
    """}))
    assert inference.returns("pkg.m.run").is_gpu
    assert inference.returns("pkg.m.host").is_cpu
    assert not inference.returns("pkg.m.cast").is_tensor  # a dtype says nothing of the device


def test_eval_answers_a_shared_subtree_once_per_context_and_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    # `x = f(x, x)` ten times inlines to a value whose tree doubles at each step while its
    # objects are shared: evaluated as a tree, 2**20 nodes; with the memo, one per object.
    inference = Inference(_index({"pkg.m": """
        import torch
        def make(n):
            return torch.zeros(n, device="cuda")
    """}))
    value: Value = ("call", ("name", "make"), (("lit", "number"),), ())
    for _ in range(20):
        value = ("op", (value, value))
    calls = []
    original = Inference._eval

    def counting(self, v, context):  # type: ignore[no-untyped-def]
        calls.append(v)
        return original(self, v, context)

    monkeypatch.setattr(Inference, "_eval", counting)
    summary = inference.index.summary("pkg.m")
    context = inference._context(summary, None)
    reads = inference.reads
    reads.begin()
    assert inference.eval(value, context).is_gpu
    first = reads.end()
    assert len(calls) < 100
    # Another frame evaluating the same value records the same reads.
    reads.begin()
    assert inference.eval(value, context).is_gpu
    assert reads.end() == first and first


MODULE_CALLS = {
    "pkg.layers": """
        import torch
        from torch import nn

        class Scorer(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(8, 1)

            def forward(self, hidden):
                return self.proj(hidden)

        class Wide(Scorer):
            pass

        class Hook:
            def __call__(self, x):
                return x

            def forward(self, x):
                return x.cpu()
    """,
    "pkg.model": """
        import torch
        from pkg.layers import Hook, Scorer, Wide

        class Model:
            def __init__(self):
                self.scorer = Scorer()
                self.wide = Wide()
                self.hook = Hook()

            def run(self):
                gpu = torch.ones(4, device="cuda")
                a = self.scorer(gpu)
                b = self.wide(torch.ones(4))
                return self.hook(gpu)
    """,
}


def test_calling_an_object_runs_its_forward_or_its_call() -> None:
    inference = Inference(_index(MODULE_CALLS))
    scorer = constructed(frozenset({"pkg.layers.Scorer"}))
    assert inference.call_target(scorer).refs == {"pkg.layers.Scorer.forward"}
    # A class with `__call__` runs it, whatever its `forward` does.
    assert inference.call_target(constructed(frozenset({"pkg.layers.Hook"}))).refs == {"pkg.layers.Hook.__call__"}
    assert inference.call_target(constructed(frozenset({"pkg.make.Plain"}))) is None
    # `Model.run` returns `self.hook(gpu)`: the argument passes through `Hook.__call__`.
    assert inference.returns("pkg.model.Model.run").device is Device.GPU


def test_forward_parameters_come_from_the_calls_of_the_objects() -> None:
    inference = Inference(_index(MODULE_CALLS))
    # `self.scorer(gpu)` and `self.wide(torch.ones(4))` (a subclass that inherits `forward`) disagree.
    hidden = inference.param("pkg.layers.Scorer.forward", "hidden")
    assert hidden.lattice() == TENSOR.lattice()
    assert inference.body_param("pkg.layers.Scorer.forward", "hidden").device is Device.GPU
    callers = inference._callers("pkg.layers.Scorer.forward")
    assert sorted(call.line for _summary, call, skip in callers if skip == 1) == [13, 14]
    assert inference.param("pkg.layers.Hook.__call__", "x").device is Device.GPU
    # `Hook.forward` is not what calling a `Hook` runs.
    assert inference.param("pkg.layers.Hook.forward", "x").device is Device.UNKNOWN


DISPATCHED = {
    "pkg.op": """
        import torch
        from torch import nn

        class CustomOp(nn.Module):
            def __init__(self):
                super().__init__()
                self._forward_method = self.dispatch_forward()

            def forward(self, *args, **kwargs):
                return self._forward_method(*args, **kwargs)

            def forward_cuda(self, *args, **kwargs):
                raise NotImplementedError

            def dispatch_forward(self):
                if torch.version.hip:
                    return self.maybe_compile(self.forward_native)
                return self.forward_cuda

            def maybe_compile(self, fn):
                return fn

        class Picky(nn.Module):
            def forward(self, x, *args, **kwargs):  # not all of its arguments are handed on
                return self.impl(x, *args, **kwargs)

            def impl(self, x):
                return x
    """,
    "pkg.layers": """
        import torch
        from pkg.op import CustomOp

        class Rope(CustomOp):
            def forward_cuda(self, positions):
                return positions

            def forward_native(self, positions):
                return positions

        class OwnForward(Rope):
            def forward(self, positions):
                return positions

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rope = Rope()
                self.own = OwnForward()

            def forward(self, n: int):
                self.own(torch.arange(n))
                return self.rope(torch.arange(n, device="cuda"))
    """,
}


def test_a_dispatching_forward_hands_the_calls_of_its_objects_to_the_method_it_chose() -> None:
    inference = Inference(_index(DISPATCHED))
    # The methods `dispatch_forward` returns, not those it calls (`maybe_compile`).
    assert inference._dispatch_targets("pkg.op.CustomOp.forward") == {"forward_cuda", "forward_native"}
    assert inference._dispatch_targets("pkg.op.Picky.forward") == frozenset()
    for method in ("forward_cuda", "forward_native"):
        callers = inference._callers(f"pkg.layers.Rope.{method}")
        assert [(call.line, skip) for _summary, call, skip in callers] == [(24, 1)]
        assert inference.param(f"pkg.layers.Rope.{method}", "positions").device is Device.GPU
    # `OwnForward` objects run their own `forward`: its CPU call reaches neither method above.
    assert [call.line for _s, call, _k in inference._callers("pkg.layers.OwnForward.forward")] == [23]


def test_triton_cdiv_is_arithmetic_on_its_arguments() -> None:
    inference = Inference(_index({
        "pkg.utils": "import triton\n",
        "pkg.m": """
            import torch
            from pkg.utils import triton

            def chunks(n: int):
                return triton.cdiv(torch.arange(n, device="cuda"), 8)

            def count():
                return triton.cdiv(7, 8)
        """,
    }))
    assert inference.returns("pkg.m.chunks").device is Device.GPU
    assert inference.returns("pkg.m.count").device is Device.NOT_TENSOR


def test_a_device_module_for_a_cpu_or_another_platforms_device_is_none_of_cuda() -> None:
    inference = Inference(_index({"pkg.m": """
        import torch

        def default():
            return torch.get_device_module()

        def named(device):
            return torch.get_device_module(device)

        def host():
            return torch.get_device_module("cpu")

        def xpu():
            return torch.get_device_module("xpu")
    """}))
    assert inference.returns("pkg.m.default").value_kind == "device-module"
    assert inference.returns("pkg.m.named").value_kind == "device-module"
    assert inference.returns("pkg.m.host").value_kind == "python"
    assert inference.returns("pkg.m.xpu").value_kind == "python"


def test_a_torch_nn_module_output_is_where_its_input_is() -> None:
    linear = Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({"torch.nn.Linear"}))
    gpu = module_output(linear, [Fact(Device.GPU)], "`self.proj(x)`")
    assert gpu.device is Device.GPU and "`Linear` module" in gpu.reason and not gpu.by_convention
    assert module_output(linear, [Fact(Device.CPU)], "`p(x)`").device is Device.CPU
    assert module_output(linear, [PYTHON], "`p(x)`").device is Device.UNKNOWN  # not a tensor input
    # The first argument decides: a later one may be a mask or an index on another device.
    assert module_output(linear, [PYTHON, Fact(Device.CPU)], "`p(x, m)`").device is Device.UNKNOWN
    project = Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({"pkg.layers.Scorer"}))
    assert module_output(project, [Fact(Device.GPU)], "`s(x)`").device is Device.UNKNOWN
    # A module of a class not known here (declared `nn.Module`, named `model`): a GPU input makes a GPU
    # output by convention; a host input says nothing (the module may move it to its device itself).
    declared = Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({"torch.nn.Module"}))
    for module in (declared, NN_MODULE):
        found = module_output(module, [Fact(Device.GPU)], "`model(x)`")
        assert found.device is Device.GPU and found.by_convention
        assert module_output(module, [Fact(Device.PINNED)], "`model(x)`").device is Device.UNKNOWN
    assert "`.embed()`" in module_output(NN_MODULE, [Fact(Device.GPU)], "`m.embed(x)`", method="embed").reason
    assert module_output(MODULE, [Fact(Device.GPU)], "`utils.f(x)`").device is Device.UNKNOWN  # a Python module
    inference = Inference(_index(MODULE_CALLS))
    assert inference.field(["pkg.layers.Scorer"], "proj").refs == {"torch.nn.Linear"}
    # A GPU input at one call and a CPU one at the other: what it returns is known at neither.
    assert inference.returns("pkg.layers.Scorer.forward").lattice() == TENSOR.lattice()


def test_a_declared_field_read_as_an_entry_is_the_field() -> None:
    inference = Inference(_index({
        "pkg.schema": """
            from typing import TypedDict
            import torch

            class Inputs(TypedDict):
                lens: torch.Tensor

            def parse(n):
                return Inputs(lens=torch.zeros(n, device="cuda"))

            def lens_of(n):
                return parse(n)["lens"]

            def other(n):
                return parse(n)["missing"]
        """,
        "pkg.dicts": """
            import torch

            def host(n):
                return {"lens": torch.zeros(n), "missing": torch.zeros(n)}

            def more(n):
                return {"lens": torch.ones(n), "missing": torch.ones(n)}
        """,
    }))
    # The dicts elsewhere hold CPU tensors under "lens"; the schema's field is a GPU tensor.
    assert inference.returns("pkg.schema.lens_of").device is Device.GPU
    # A key the class does not declare is what the key holds across the repository.
    assert inference.returns("pkg.schema.other").device is Device.CPU


@pytest.mark.parametrize("annotation, types", [
    ("dict[str, Batch]", ("dict", "[]Batch")),
    ("Optional[list[torch.Tensor]]", ("list", "[]torch.Tensor")),
    ("tuple[Batch, ...]", ("tuple", "[]Batch")),
    ("tuple[int, int]", ("tuple",)),
    ("list[list[Batch]]", ("list", "[]list")),
])
def test_annotation_element_types(annotation: str, types: tuple[str, ...]) -> None:
    assert annotation_types(ast.parse(annotation, mode="eval").body) == types


def test_a_container_declared_empty_holds_what_its_annotation_says() -> None:
    inference = Inference(_index({
        "pkg.reg": """
            import torch

            class State:
                def __init__(self):
                    self.lens = torch.zeros(4, device="cuda")

            class Registry:
                def __init__(self):
                    self.states: dict[str, State] = {}
                    self.counts: dict[str, int] = {}
                    self.plain = {}

                def first(self):
                    for state in self.states.values():
                        return state.lens

                def one(self, key):
                    return self.states.get(key).lens

                def count(self, key):
                    return self.counts.get(key)
        """,
    }))
    assert inference.returns("pkg.reg.Registry.first").device is Device.GPU
    assert inference.returns("pkg.reg.Registry.one").device is Device.GPU
    assert not inference.returns("pkg.reg.Registry.count").is_tensor  # `dict[str, int]` says nothing of tensors
    assert inference.field(["pkg.reg.Registry"], "plain").value_kind == "dict"


def test_a_parameter_annotation_beats_another_annotations_class_but_not_a_constructor() -> None:
    inference = Inference(_index({
        "pkg.meta": """
            from dataclasses import dataclass
            import torch

            class BaseMeta:
                pass

            @dataclass
            class LinearMeta:
                lens: torch.Tensor

            class Context:
                def __init__(self):
                    self.metas: dict[str, BaseMeta] = {}

            def clear(meta: LinearMeta):
                return meta.lens

            def built(meta: BaseMeta):
                return meta

            def run(ctx: Context, n: int):
                clear(ctx.metas.get("layer"))
                built(LinearMeta(torch.zeros(n, device="cuda")))
        """,
    }))
    # The caller passes what `dict[str, BaseMeta]` declares; `LinearMeta` does not derive from it.
    assert inference.param("pkg.meta.clear", "meta").refs == {"pkg.meta.LinearMeta"}
    # An object a constructor built is what it is, whatever the parameter says.
    assert inference.param("pkg.meta.built", "meta").refs == {"pkg.meta.LinearMeta"}


@pytest.mark.parametrize(("test", "holds"), [
    ("current_platform.is_cpu()", True),
    ("is_cpu()", True),
    ("_is_cpu", True),
    ("not current_platform.is_cpu()", False),
    ("flag and current_platform.is_cpu()", True),
    ("flag or current_platform.is_cpu()", None),  # when the `or` holds, the platform may be any
    ("x.is_cpu", None),  # a tensor's attribute, not the platform
    ("current_platform.is_cpu(device)", None),
    ("current_platform.is_cuda()", None),
    ("is_npu()", True),
    ("current_platform.is_xpu()", True),
    ("_is_npu", True),
    ("self.is_npu", True),  # a flag an object keeps (SGLang's attention backends)
    ("self._is_npu", True),
    ("self._is_cpu", True),
    ("not is_npu() or flag", False),  # where the `or` fails, the platform is the NPU
    ("is_hip()", None),  # ROCm runs torch's CUDA API
    ("x.is_cuda", False),
    ("not x.is_cuda", True),
    ("x.is_cuda and flag", None),  # failing, either part may have
    ('x.device.type != "cuda"', True),
    ('query.device.type == "cuda"', False),
    ('"cuda" == device.type', False),
    ('x.device.type == "cpu"', None),  # one tensor on the host says nothing of the machine
    ('x.device.type == "mps"', True),  # a tensor only an Apple machine has
    ('x.device.type != "mps"', None),
    ('x.device.type in ("cuda", "xpu")', None),
])
def test_off_cuda_tests(test: str, holds: bool | None) -> None:
    assert off_cuda_test(ast.parse(test, mode="eval").body) is holds


def test_what_a_module_for_another_platform_stores_is_no_source_of_a_fact() -> None:
    # SGLang's MLX worker stores its stub runner, with a host-side pool, into the attribute every
    # worker has: for a CUDA machine that store says nothing (`other-platform-modules`).
    from sync_lint.config import Settings

    index = _index({
        "pkg.pools": """
            class Runner:
                def __init__(self, pool):
                    self.pool = pool
        """,
        "pkg.mlx.worker": """
            from pkg.pools import Runner

            class HostPool:
                pass

            class MlxRunner(Runner):
                def __init__(self):
                    self.pool = HostPool()
        """,
    })
    assert Inference(index).field(["pkg.pools.Runner"], "pool").refs == {"pkg.mlx.worker.HostPool"}
    settings = Settings().device_settings()
    assert settings.off_cuda_module("pkg/mlx/worker.py") and not settings.off_cuda_module("pkg/pools.py")
    assert Inference(index, settings).field(["pkg.pools.Runner"], "pool").refs == frozenset()


def test_returns_of_tuples_and_a_tensor_are_the_tuples_only_for_bundles_of_three_or_more() -> None:
    gpu, enum = Fact(Device.GPU, reason="g"), Fact(Device.NOT_TENSOR, value_kind="python")
    bundle = Fact(Device.NOT_TENSOR, value_kind="tuple", items=(NONE, enum, gpu, enum))
    # DeepSeek's `forward_prepare`: a 4-tuple, or `hidden_states[0]` on an empty batch's early exit.
    assert _tuples_over_tensors([gpu, bundle]) == [bundle]
    # vLLM's linear layers: `output`, or `(output, bias)` with `return_bias`; callers mostly take the tensor.
    pair = Fact(Device.NOT_TENSOR, value_kind="tuple", items=(gpu, NONE))
    assert _tuples_over_tensors([gpu, pair]) == [gpu, pair]
    # Tuples of several lengths, or a return that is neither a tuple nor a tensor: as they are.
    triple = Fact(Device.NOT_TENSOR, value_kind="tuple", items=(gpu, gpu, gpu))
    assert _tuples_over_tensors([gpu, bundle, triple]) == [gpu, bundle, triple]
    assert _tuples_over_tensors([enum, bundle]) == [enum, bundle]


@pytest.mark.parametrize("body,expected", [
    # Rebound in both arms of an `if`: the first value is not what the return reads.
    ("m = a\n    if c:\n        m = b\n    else:\n        m = d\n    return m", {"b", "d"}),
    # One arm leaves the function: the other's value and nothing else.
    ("m = a\n    if c:\n        raise ValueError\n    else:\n        m = b\n    return m", {"b"}),
    # Assigned in each arm of an outer `if`, rebound in both arms of an inner one.
    ("if c:\n        m = a\n    else:\n        m = b\n        if d:\n            m = e\n        else:\n"
     "            m = f\n    return m", {"a", "e", "f"}),
    # One arm keeps the first value: all three.
    ("m = a\n    if c:\n        m = b\n    elif d:\n        m = e\n    return m", {"a", "b", "e"}),
    # A `break` may skip the rebinding: every value the name is given.
    ("m = a\n    for x in b:\n        if c:\n            break\n        m = d\n    return m", {"a", "d"}),
])
def test_summary_a_read_after_branches_joins_the_assignments_that_can_run_last(body: str, expected: set[str]) -> None:
    module = summarize(f"def f(a, b, c, d, e, f):\n    {body}\n", "m.py", "m")
    (value,) = module.functions["f"].returns
    names = {v[1] for v in (value[1] if value[0] == "join" else (value,))}
    assert names == expected


def test_entries_of_a_container_declared_to_hold_numbers_are_python_numbers() -> None:
    inference = Inference(_index({
        "pkg.pool": """
            from typing import Dict, Optional

            class Pool:
                def __init__(self):
                    self.uid_to_buffer_id: Dict[Optional[str], int] = {}
                    self.scales: dict[str, float] = {}

                def get_buffer_id(self, uid):
                    return self.uid_to_buffer_id[uid]

                def scale(self, name):
                    return self.scales[name]
        """,
    }))
    buffer_id = inference.returns("pkg.pool.Pool.get_buffer_id")
    assert (buffer_id.value_kind, buffer_id.dtype) == ("python", "int")
    assert inference.returns("pkg.pool.Pool.scale").dtype == "float"


def test_a_factory_sized_by_a_field_holding_an_int_makes_a_vector() -> None:
    inference = Inference(_index({
        "pkg.runner": """
            import torch

            class Runner:
                def __init__(self, config, max_bs: int):
                    self.max_bs = max_bs
                    self.max_num_reqs = config.max_num_seqs
                    self.weights = torch.zeros(self.max_bs, device="cuda")
                    self.query_start_loc = torch.zeros(self.max_num_reqs + 1, device="cuda")
                    self.shaped = torch.zeros(config.shape, device="cuda")

                def first(self, n):
                    return self.query_start_loc[:n + 1]

                def row(self):
                    return self.weights[0]
        """,
    }))
    field = inference.field(["pkg.runner.Runner"], "max_bs")
    assert (field.value_kind, field.dtype) == ("python", "int")  # no call gives a tensor: what `int` says
    assert any("parameter `max_bs` of `Runner` is declared `int`" in step.reason for step in field.chain)
    assert inference.field(["pkg.runner.Runner"], "weights").ndim == 1
    assert inference.field(["pkg.runner.Runner"], "query_start_loc").ndim == 1  # a number plus a literal
    assert inference.field(["pkg.runner.Runner"], "shaped").ndim is None  # a shape of unknown rank
    assert inference.returns("pkg.runner.Runner.first").ndim == 1  # a slice keeps the rank
    assert inference.returns("pkg.runner.Runner.row").ndim == 0  # one element of a vector


def test_an_int_parameter_a_call_gives_a_gpu_tensor_keeps_the_tensor() -> None:
    inference = Inference(_index({
        "pkg.count": """
            import torch

            def take(n: int):
                return n

            def caller():
                take(torch.zeros((), device="cuda").sum())
        """,
    }))
    assert inference.param("pkg.count.take", "n").device is Device.GPU


def test_a_local_mapping_declared_empty_holds_what_its_annotation_says() -> None:
    inference = Inference(_index({
        "pkg.meta": """
            import torch
            from dataclasses import dataclass

            @dataclass
            class Meta:
                query_start_loc: torch.Tensor

            class Runner:
                def __init__(self):
                    self.buf = torch.zeros(8, device="cuda")

                def prepare(self, names):
                    metadata: dict[str, Meta] = {}
                    for name in names:
                        metadata[name] = Meta(query_start_loc=self.buf[:4])
                    return metadata, len(names)

                def run(self, names):
                    metadata, count = self.prepare(names)
                    return metadata["layer.0"].query_start_loc
        """,
    }))
    prepared = inference.returns("pkg.meta.Runner.prepare")
    assert prepared.value_kind == "tuple"
    assert prepared.items[0].value_kind == "list" and prepared.items[0].items[0].refs == {"pkg.meta.Meta"}
    assert inference.returns("pkg.meta.Runner.run").device is Device.GPU


def test_a_value_not_known_masked_by_a_gpu_mask_is_on_the_gpu() -> None:
    fact, _ = fact_of("""
        import torch
        def f(indices, lengths):
            valid = torch.zeros(4, device="cuda") > 0
            probe(indices[valid])
    """)
    assert fact.is_gpu
    assert "indexed by a GPU tensor" in fact.reason
    tensor, _ = fact_of("""
        import torch
        def f(indices: torch.Tensor, n: int):
            order = torch.arange(n, device="cuda")
            probe(indices[order])
    """)
    assert tensor.is_gpu and tensor.ndim is None
    host, _ = fact_of("""
        import torch
        def f(indices):
            valid = torch.zeros(4) > 0
            probe(indices[valid])
    """)
    assert not host.is_gpu


def test_a_number_a_project_call_returns_stored_into_a_gpu_vector_is_reported(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/pool.py": """
from typing import Dict, Optional


class Pool:
    def __init__(self):
        self.uid_to_buffer_id: Dict[Optional[str], int] = {}

    def get_buffer_id(self, uid: str):
        return self.uid_to_buffer_id[uid]
""",
        "pkg/manager.py": """
import torch

from pkg.pool import Pool


class Manager:
    def __init__(self):
        self.memory_pool = Pool()

    def init_graph(self, max_bs: int):
        self.max_bs = max_bs
        with torch.device("cuda"):
            self.weight_indices = torch.zeros(self.max_bs, dtype=torch.int32)

    def prepare(self, paths, bs):
        weight_indices = torch.empty((bs,), dtype=torch.int64, device="cuda")
        for i, path in enumerate(paths):
            weight_indices[i] = self.memory_pool.get_buffer_id(path)
            self.weight_indices[i] = self.memory_pool.uid_to_buffer_id[path]
            weight_indices[i] = self.memory_pool.describe(path)
""",
    })
    rows = sorted(d.start.row for d in diagnostics if d.code == "SL301")
    assert rows == [19, 20]  # `describe` is not a known method: its result is not known to be a number


def test_a_tensor_cut_into_pieces_is_a_tuple_of_tensors_on_its_device() -> None:
    pieces, _ = fact_of("""
        import torch
        x = torch.zeros(4, 8, device="cuda")
        probe(x.split([3, 5], dim=1))
    """)
    assert pieces.value_kind == "list" and pieces.items[0].is_gpu  # a truth test of it reads nothing
    piece, _ = fact_of("""
        import torch
        x = torch.zeros(4, 8, device="cuda")
        first, second = torch.chunk(x, 2)
        probe(first)
    """)
    assert piece.is_gpu and piece.ndim == 2
    inference = Inference(_index({
        "pkg.embed": """
            import torch

            class Model:
                def __init__(self):
                    self.table = torch.zeros(8, 4, device="cuda")

                def pieces(self, sizes):
                    return self.table.split(sizes)

                def rows(self):
                    first, second = self.table.unbind(0)
                    return first
        """,
    }))
    returned = inference.returns("pkg.embed.Model.pieces")
    assert returned.value_kind == "list" and returned.items[0].is_gpu
    row = inference.returns("pkg.embed.Model.rows")
    assert row.is_gpu and row.ndim == 1


def test_pieces_on_one_path_and_the_whole_tensor_on_the_other_join_to_the_tensor() -> None:
    fact, _ = fact_of("""
        import torch
        def f(lens):
            raw = torch.zeros(4, 3, device="cuda")
            if isinstance(raw, torch.Tensor):
                raw = raw.unbind(0)
            probe(torch.hstack(raw))
    """)
    assert fact.is_gpu and not fact.by_convention


def test_a_number_function_of_pure_arithmetic_returns_a_tensor_where_it_is_given_one(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": """
def cdiv(a: int, b: int) -> int:
    return -(a // -b)


def describe(a: int) -> int:
    return len(str(a))
""",
        "pkg/builder.py": """
import torch

from pkg.utils import cdiv, describe


def build(context_lens_cpu, chunk: int, device: torch.device):
    context_lens = context_lens_cpu.to(device, non_blocking=True)
    num_chunks = cdiv(context_lens.max(), chunk)
    starts = torch.arange(num_chunks, device=device)
    host_chunks = cdiv(len(context_lens_cpu), chunk)
    more = torch.arange(host_chunks, device=device)
    width = describe(context_lens.max())
    widths = torch.arange(width, device=device)
    return starts, more, widths
""",
    })
    rows = sorted(d.start.row for d in diagnostics if d.code == "SL104")
    assert rows == [10]  # `cdiv` of a GPU max is a 0-d GPU tensor; of host numbers, and `describe`, a number


def test_a_list_display_of_a_tensor_joined_with_the_tensor_is_not_taken_for_its_pieces() -> None:
    fact, _ = fact_of("""
        import torch
        def f(outputs):
            audio = torch.zeros(4, device="cuda")
            if not isinstance(audio, (list, tuple)):
                audio = [audio]
            probe(audio)
    """)
    assert not fact.is_gpu


def test_a_tuple_of_ints_a_function_returns_indexes_as_coordinates_not_as_a_host_list(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": """
from typing import Tuple

import torch


def argmax_coord(x: torch.Tensor) -> Tuple[int, ...]:
    return tuple(int(i) for i in torch.unravel_index(x.argmax(), x.shape))
""",
        "pkg/compare.py": """
import torch

from pkg.utils import argmax_coord


def compare(n: int):
    baseline = torch.zeros(n, n, device="cuda")
    coord = argmax_coord(baseline)
    return baseline[coord]
""",
    })
    assert not [d for d in diagnostics if d.code == "SL302"]


def test_keywords_spread_from_a_dict_reach_the_parameters_they_name(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/builder.py": """
from typing import Optional

import torch


class Builder:
    def build(self, lens: torch.Tensor, draft: Optional[torch.Tensor] = None, host: Optional[torch.Tensor] = None):
        if draft is not None and draft.sum().item() == 0:
            return None
        if host is not None and host.sum().item() == 0:
            return None
        return lens
""",
        "pkg/runner.py": """
import torch

from pkg.builder import Builder


class Runner:
    def __init__(self, n: int):
        self.builder = Builder()
        self.draft = torch.zeros(n, device="cuda")
        self.host = torch.zeros(n)

    def step(self, lens: torch.Tensor, spec: bool):
        extra = {}
        if spec:
            extra = dict(draft=self.draft[:4], host=self.host[:4])
        return self.builder.build(lens, **extra)
""",
    })
    rows = sorted(d.start.row for d in diagnostics if d.code == "SL101" and d.path.endswith("builder.py"))
    assert rows == [9]  # `draft` comes from the GPU field through `**extra`; `host` from the CPU one


def test_a_dtype_passed_to_a_helper_gives_its_result_that_dtype(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/processor.py": """
import torch


class MinTokens:
    def __init__(self, device: torch.device):
        self.device = device
        self.logits_slice = (self._device_tensor([], torch.int32), self._device_tensor([], torch.int32))
        self.banned = self._device_tensor([], torch.bool)

    def _device_tensor(self, data: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(data, device="cpu", dtype=dtype, pin_memory=True).to(device=self.device, non_blocking=True)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        logits[self.logits_slice] = -float("inf")
        logits[self.banned] = 0.0
        return logits
""",
    }, pyproject='[tool.sync-lint]\ntarget-torch-version = "2.11"\n')
    rows = sorted(d.start.row for d in diagnostics if d.code == "SL302")
    assert rows == [15]  # int GPU indices (a tuple of them) with a host scalar; a GPU bool mask takes `masked_fill_`


@pytest.mark.parametrize("size,dtype", [("n", "int"), ("0, n", "int"), ("4", "int"), ("x", None), ("f", None)])
def test_arange_over_an_int_name_counts_in_integers(size: str, dtype: str | None) -> None:
    fact, _ = fact_of(f"import torch\ndef f(n: int, x, f: float):\n    probe(torch.arange({size}, device='cuda'))\n")
    assert fact.is_gpu and fact.dtype == dtype


def test_a_method_stored_into_self_is_called_through_its_own_class_only(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": """
def nvidia_fwd(x, lens=None):
    if lens is not None:
        return lens.cpu()
    return x


def ptx_fwd(x, lens=None):
    if lens is not None:
        return lens.cpu()
    return x
""",
        "pkg/kernels.py": """
import torch

from pkg.ops import nvidia_fwd, ptx_fwd


class Nvidia:
    def __init__(self):
        self._fwd = nvidia_fwd

    def run(self, x):
        return self._fwd(x)


class Ptx:
    def __init__(self):
        self._fwd = ptx_fwd

    def run(self, x, n: int):
        lens = torch.zeros(n, device="cuda")
        return self._fwd(x, lens=lens)
""",
    })
    rows = sorted((d.path.rsplit("/", 1)[-1], d.start.row) for d in diagnostics if d.code == "SL103")
    assert rows == [("ops.py", 10)]  # `Ptx.run` reaches `ptx_fwd` only, not `Nvidia`'s `nvidia_fwd`


def test_a_field_declared_int_that_every_construction_gives_a_gpu_tensor_holds_the_tensor(tmp_path) -> None:
    diagnostics = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/meta.py": """
from dataclasses import dataclass

import torch


@dataclass
class PrefillMeta:
    total_seq_lens: int
    causal: bool = True


def build(seq_lens_cpu: torch.Tensor, start: int, causal_mask) -> PrefillMeta:
    seq_lens = seq_lens_cpu.to("cuda", non_blocking=True)
    if causal_mask is not None:
        return PrefillMeta(total_seq_lens=seq_lens[start:].sum(), causal=torch.ones(1, device="cuda").bool())
    return PrefillMeta(total_seq_lens=seq_lens[start:].sum())
""",
        "pkg/model.py": """
import torch

from pkg.meta import PrefillMeta


def gather(meta: PrefillMeta, head_dim: int):
    k = torch.empty([meta.total_seq_lens, head_dim], device="cuda")
    if meta.causal:
        return k
    return None
""",
    })
    rows = sorted(d.start.row for d in diagnostics if d.code == "SL104" and d.path.endswith("model.py"))
    assert rows == [8]  # `causal` keeps its declaration: its default is a Python bool


def test_a_dataclass_default_every_construction_overrides_is_no_source() -> None:
    """`state_indices_tensor: torch.Tensor = torch.Tensor()` (vLLM's V0 `MambaCacheParams`): a CPU
    placeholder no construction leaves in place says nothing of the objects; one construction that
    leaves it makes it count again."""
    source = """
        import dataclasses
        import torch
        @dataclasses.dataclass
        class P:
            ids: torch.Tensor = torch.Tensor()
            def at(self, i):
                return P(self.ids[i])
        def make(n):
            return P(torch.zeros(n, dtype=torch.int32, device="cuda"))
    """
    ids = Inference(_index({"pkg.t": source})).field(["pkg.t.P"], "ids")
    assert ids.device is Device.GPU and "constructed from" in ids.reason
    leaves = Inference(_index({"pkg.t": source + "    def empty():\n            return P()\n"}))
    assert leaves.field(["pkg.t.P"], "ids").device is not Device.GPU


def test_a_class_defined_in_a_factory_is_called_through_where_the_factory_result_is_stored() -> None:
    """SGLang's DeepSeek-OCR: `self.model = self._create_custom_model(...)`, which defines a class in its
    body and returns an instance; `self.model(inputs_embeds=..., token_type_ids=...)` runs that class's
    `forward`, whose field the nested class reads back with `getattr(self, name, None)`."""
    inference = Inference(_index({
        "pkg.m": """
            import torch
            from torch import nn
            class Outer(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.model = self._make()
                def _make(self):
                    class Inner(nn.Module):
                        def forward(self, ids):
                            self._ids = ids
                            return self._mask()
                        def _mask(self):
                            return self._use(getattr(self, "_ids", None))
                        def _use(self, type_ids):
                            return (type_ids == 0).nonzero()
                    return Inner()
                def forward(self, x):
                    return self.model(torch.zeros(3, dtype=torch.long, device="cuda"))
        """,
    }))
    inner = "pkg.m.Outer._make.<locals>.Inner"
    made = inference.returns("pkg.m.Outer._make")
    assert made.value_kind == "object" and made.refs == {inner}
    assert inference.param(f"{inner}.forward", "ids").device is Device.GPU
    assert inference.param(f"{inner}._use", "type_ids").device is Device.GPU


def test_a_call_through_super_runs_the_base_method_on_this_self() -> None:
    """vLLM's V0 `MambaCacheManager.current_run_tensors` unpacks `super().current_run_tensors(**kwargs)`,
    whose second element is a GPU tensor on every path the index can see."""
    inference = Inference(_index({
        "pkg.c": """
            import torch
            class Base:
                def run(self, **kwargs):
                    if "given" not in kwargs:
                        ids = torch.as_tensor([1, 2], dtype=torch.int32, device="cuda")
                    else:
                        ids = kwargs["given"]
                    return None, ids
            class Cache(Base):
                def run(self, **kwargs):
                    _unused, ids = super().run(**kwargs)
                    return ids
        """,
    }))
    assert inference.returns("pkg.c.Cache.run").device is Device.GPU

