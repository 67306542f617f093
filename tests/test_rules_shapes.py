"""SL201-SL207 (data-dependent shapes and checked ops) beyond the fixtures.

Configured fixes, fix hints, `--strict`, evidence text, import aliases in fixes,
and the cases where a fix must not be offered.
"""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from fixture_support import FIXTURE_TORCH, lint_text
from sync_lint.config import Settings
from sync_lint.engine.context import FileContext
from sync_lint.fix import fix_source
from sync_lint.registry import all_rules
from sync_lint.rulekit import keyword_edit
from sync_lint.rulekit import statement_hints, valid_expression

GPU = "import torch\ndevice = torch.device('cuda')\n"


def gpu(body: str) -> str:
    """A snippet with `torch` imported and a CUDA `device` bound."""
    return GPU + textwrap.dedent(body)


def findings(source: str, code: str, **settings: object):
    result = lint_text(textwrap.dedent(source), **settings)
    assert not result.errors, result.errors
    return [d for d in result.diagnostics if d.code == code]


def fixed(source: str, **settings: object) -> str:
    rules = [r for r in all_rules().values() if r.active_for_torch(FIXTURE_TORCH)]
    config = Settings(target_torch_version=FIXTURE_TORCH).override(**settings)
    outcome = fix_source(textwrap.dedent(source), "snippet.py", rules, config, unsafe=True)
    assert outcome.errors == []
    return outcome.new_source


# --- hints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comment, expected",
    [
        ("# sync-lint: nonzero-size=4096", {"nonzero-size": "4096"}),
        ("# sync-lint: num_classes = vocab.size", {"num-classes": "vocab.size"}),
        ("# noqa: SL101  # sync-lint: nonzero-size=n; num-classes=10", {"nonzero-size": "n", "num-classes": "10"}),
        ("# sync-lint: nonzero-size=16  # expect: SL201", {"nonzero-size": "16"}),
        ("# plain comment", {}),
        ("# sync-lint: nonzero-size=", {}),
    ],
)
def test_statement_hints(comment: str, expected: dict[str, str]) -> None:
    statement = cst.parse_module(f"y = f(x)  {comment}\n").body[0]
    assert isinstance(statement, cst.SimpleStatementLine)
    assert statement_hints(statement) == expected


def test_valid_expression_rejects_typos() -> None:
    assert valid_expression("max_num_reqs * 2") == "max_num_reqs * 2"
    assert valid_expression("not valid python") is None
    assert valid_expression(None) is None


def _keyword_edit(source: str, name: str = "k", value: str = "1") -> str:
    module = cst.parse_module(source)
    ctx = FileContext("x.py", source, module, Settings())
    call = module.body[0].body[0].value  # type: ignore[attr-defined]
    edit = keyword_edit(ctx, call, name, value)
    return source[:edit.start] + edit.content + source[edit.end:]


@pytest.mark.parametrize(
    "source,expected",
    [
        ("f(a)\n", "f(a, k=1)\n"),
        ("f(a, k=0)\n", "f(a, k=1)\n"),
        # A multi-line last argument keeps its layout.
        ("f(a, [\n    1,\n])\n", "f(a, [\n    1,\n], k=1)\n"),
        # The argument's own parentheses stay around it, not around the new keyword.
        ("f((a))\n", "f((a), k=1)\n"),
        ("f()\n", "f(k=1)\n"),
    ],
)
def test_keyword_edit(source: str, expected: str) -> None:
    assert _keyword_edit(source) == expected


def test_hint_applies_only_to_its_own_statement() -> None:
    source = gpu("""
    mask = torch.rand(8, device=device) > 0.5
    y = 1  # sync-lint: nonzero-size=8
    if torch.nonzero(mask).shape[0]:
        pass
    """)
    (finding,) = findings(source, "SL201")
    assert finding.fix is None
    assert "nonzero-size=N" in finding.message


# --- configured fixes --------------------------------------------------------------------


def test_nonzero_fix_from_configuration() -> None:
    source = GPU + "max_num_reqs = 8\nmask = torch.rand(8, device=device) > 0.5\nidx = torch.nonzero(mask)\n"
    assert findings(source, "SL201")[0].fix is None
    out = fixed(source, nonzero_static_size="max_num_reqs")
    assert out.endswith("idx = torch.nonzero_static(mask, size=max_num_reqs)\n")


def test_configured_fix_naming_an_unbound_name_is_refused() -> None:
    """The configured size is code; where nothing binds its name, the fix would raise NameError."""
    source = GPU + "mask = torch.rand(8, device=device) > 0.5\nidx = torch.nonzero(mask)\n"
    rules = [r for r in all_rules().values() if r.active_for_torch(FIXTURE_TORCH)]
    config = Settings(target_torch_version=FIXTURE_TORCH).override(nonzero_static_size="max_num_reqs")
    outcome = fix_source(source, "snippet.py", rules, config, unsafe=True)
    assert outcome.new_source == source
    [error] = outcome.errors
    assert error.rule == "SL201" and "`max_num_reqs` is not bound" in error.message


def test_nonzero_as_tuple_on_a_0_dim_tensor_gets_no_fix() -> None:
    source = GPU + "flag = torch.zeros((), device=device) > 0\nidx = torch.where(flag)  # sync-lint: nonzero-size=1\n"
    (finding,) = findings(source, "SL201")
    assert finding.fix is None


def test_one_hot_fix_from_configuration() -> None:
    source = gpu("""
    import torch.nn.functional as F


    class Head:
        def encode(self):
            x = torch.randint(0, 9, (8,), device=device)
            return F.one_hot(x)
    """)
    out = fixed(source, one_hot_num_classes="self.num_classes")
    assert out.endswith("        return F.one_hot(x, num_classes=self.num_classes)\n")


def test_fixes_are_unsafe_and_say_why() -> None:
    source = gpu("""
    import torch.nn.functional as F
    x = torch.randint(0, 9, (8,), device=device)
    a = torch.nonzero(x)  # sync-lint: nonzero-size=8
    b = torch.bincount(x, minlength=9)
    c = F.one_hot(x)  # sync-lint: num-classes=9
    d = torch.linalg.inv(x)
    """)
    result = lint_text(textwrap.dedent(source))
    fixes = [d.fix for d in result.diagnostics if d.fix is not None]
    assert len(fixes) == 4
    assert all(f.applicability == "unsafe" for f in fixes)
    messages = " ".join(f.message for f in fixes)
    for caveat in ("truncated", "device-side assert", "no longer raise"):
        assert caveat in messages


# --- fixes keep the file's names ---------------------------------------------------------


def test_fixes_use_the_files_torch_alias() -> None:
    source = """
    import torch as th
    from torch.linalg import inv
    x = th.randint(0, 9, (8,), device="cuda")
    c = th.bincount(x, minlength=9)
    A = th.rand(3, 3, device="cuda")
    B = inv(A)
    C = A.inverse()
    """
    out = fixed(source)
    counts = "th.zeros(9, dtype=th.int64, device=x.device).scatter_add_(0, x.long(), th.ones_like(x, dtype=th.int64))"
    assert f"c = {counts}" in out
    assert "B = th.linalg.inv_ex(A)[0]" in out
    assert "C = th.linalg.inv_ex(A)[0]" in out
    assert "import torch\n" not in out


def test_bincount_fix_needs_names_and_one_line() -> None:
    source = gpu("""
    x = torch.randint(0, 9, (8,), device=device)
    w = torch.rand(8, device=device)
    a = torch.bincount(x, weights=w * 2, minlength=9)
    b = torch.bincount(
        x, minlength=9)
    c = torch.bincount(x, weights=w, minlength=9)
    """)
    a, b, c = findings(source, "SL204")
    assert a.fix is None and b.fix is None
    assert c.fix is not None and "float64" in c.fix.message


# --- repeat_interleave mirrors -------------------------------------------------------------


def test_repeat_interleave_mirror_must_be_bound_and_on_the_cpu() -> None:
    source = gpu("""
    def unbound(reps_gpu):
        return torch.repeat_interleave(reps_gpu)

    def a_list(reps_gpu):
        reps_cpu = [1, 2]
        return torch.repeat_interleave(reps_gpu)

    def bound(reps_gpu, reps_cpu):
        return torch.repeat_interleave(reps_gpu)
    """)
    unbound, a_list, bound = findings(source, "SL205")
    assert unbound.fix is None  # `reps_cpu` is only a naming convention here
    assert a_list.fix is None
    assert bound.fix is not None
    assert bound.fix.edits[0].content == "torch.repeat_interleave(reps_gpu, output_size=int(reps_cpu.sum()))"


# --- strict mode and evidence ----------------------------------------------------------------


def test_strict_mode_reports_unknown_tensors() -> None:
    source = """
    import torch
    def f(x: torch.Tensor):
        return x.unique(), torch.nonzero(x)
    """
    assert findings(source, "SL203") == [] and findings(source, "SL201") == []
    assert len(findings(source, "SL203", strict=True)) == 1
    (strict,) = findings(source, "SL201", strict=True)
    assert strict.confidence == "strict"


def test_clip_grad_norm_of_parameters_of_unknown_device_is_reported_by_convention() -> None:
    # The check reads the total norm, which is where the gradients are: on the accelerator by convention,
    # as `if not torch.isfinite(norm):` after a plain call is judged; not for a module kept on the CPU.
    source = """
    import torch
    def step(model):
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
    def cpu_step():
        model = torch.nn.Linear(4, 4).to("cpu")
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
    """
    (finding,) = findings(source, "SL207")
    assert (finding.start.row, finding.confidence) == (4, "convention")
    assert "gradient norm" in (finding.evidence or "")


def test_evidence_names_the_gpu_origin() -> None:
    source = GPU + "mask = torch.rand(8, device=device) > 0.5\nkept = torch.rand(8, device=device)[mask]\n"
    (finding,) = findings(source, "SL202")
    assert "`mask` is on the GPU" in (finding.evidence or "")


# --- rule-specific edges --------------------------------------------------------------------


def test_mask_store_messages_follow_the_value() -> None:
    source = gpu("""
    x = torch.rand(8, device=device)
    m = x > 0.5
    x[m] = x.sum()
    x[m] = torch.rand(8, device=device)[:3]
    x[m] = 0
    """)
    zero_dim, vals = findings(source, "SL202")
    assert "torch.where(mask, v, t, out=t)" in zero_dim.message
    assert "masked_scatter_" in vals.message


def test_distribution_validation_switch_is_read_in_order() -> None:
    source = gpu("""
    from torch.distributions import Categorical, Distribution
    p = torch.rand(4, device=device)
    a = Categorical(p)
    Distribution.set_default_validate_args(False)
    b = Categorical(p)
    c = Categorical(p, validate_args=True)
    Distribution.set_default_validate_args(True)
    d = Categorical(p)
    """)
    assert [f.start.row for f in findings(source, "SL207")] == [6, 9, 11]


@pytest.mark.parametrize(
    "call, reported",
    [
        ("torch.histc(w)", True),
        ("torch.histc(w, 10, 0, 0)", True),
        ("torch.histc(w, max=0.0)", True),
        ("torch.histc(w, min=-1)", False),
        ("torch.histc(w, 10, 0.5, 0.5)", True),
        ("torch.histc(w, 10, 0, hi)", False),
    ],
)
def test_histc_range(call: str, reported: bool) -> None:
    source = GPU + f"w = torch.rand(8, device=device)\nhi = 1.0\nh = {call}\n"
    assert bool(findings(source, "SL204")) is reported


def test_rules_are_not_version_gated() -> None:
    codes = ("SL201", "SL202", "SL203", "SL204", "SL205", "SL206", "SL207")
    rules = all_rules()
    assert all(rules[c].active_for_torch("2.13") for c in codes)


def test_size_dependent_ops_only_under_strict() -> None:
    source = gpu("""
    ids = torch.randint(0, 100, (1024,), device=device)
    vocab = torch.arange(200, device=device)
    hit = torch.isin(ids, vocab)
    only_number = torch.isin(ids, 3)
    m = ids.float().mode()
    m2 = torch.mode(ids, dim=0)
    u = ids.unique()
    """)
    assert [f.start.row for f in findings(source, "SL203")] == [10]
    strict = findings(source, "SL203", strict=True)
    assert [f.start.row for f in strict] == [6, 8, 9, 10]
    assert "74" in strict[0].message and "2048" in strict[1].message


def test_integer_results_of_a_mask_are_not_masks() -> None:
    # Device-inference dtypes SL202 relies on: counts, products and `where` results are not bool.
    source = gpu("""
    m = torch.rand(8, device=device) > 0.5
    x = torch.rand(8, device=device)
    rows, = torch.where(m)
    a = x[rows]
    b = x[torch.where(m, 1, 0)]
    c = x[m.sum(0)]
    d = x[m.cumsum(0)]
    e = x[m * 2]
    f = x[m & (x > 0)]
    """)
    assert [f.start.row for f in findings(source, "SL202")] == [12]

