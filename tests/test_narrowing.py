"""What a branch's test proves about devices (`sync_lint/analysis/narrowing.py`), and the binder
applying it to the arm it holds in."""

from __future__ import annotations

import libcst as cst
import pytest

from sync_lint.analysis.facts import Device
from sync_lint.analysis.narrowing import narrowings, none_test
from sync_lint.config import Settings
from sync_lint.engine import lint_source
from sync_lint.registry import all_rules

SETTINGS = Settings(target_torch_version="2.11")


def proved(test: str) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str, bool]]]:
    when_true, when_false = narrowings(cst.parse_expression(test))
    return ([(n.key, n.device.value, n.tensor) for n in when_true],
            [(n.key, n.device.value, n.tensor) for n in when_false])


@pytest.mark.parametrize("test, expected", [
    # Not the CPU is taken for the accelerator, as a `device=` that is not literally the CPU is.
    ('device.type == "cpu"', ([("device", "cpu", False)], [("device", "gpu", False)])),
    ('device.type != "cpu"', ([("device", "gpu", False)], [("device", "cpu", False)])),
    ('"cuda" == self.device.type', ([("self", "gpu", True)], [])),  # `self.device` when `self` is no tensor
    ('x.device.type == "cpu"', ([("x", "cpu", True)], [("x", "gpu", True)])),
    ('str(x.device) == "cuda:0"', ([("x", "gpu", True)], [])),
    ('device == "cpu"', ([("device", "cpu", False)], [("device", "gpu", False)])),
    ("t.is_cuda", ([("t", "gpu", True)], [])),
    ("not t.is_cuda", ([], [("t", "gpu", True)])),
    ("not t.is_cpu", ([("t", "gpu", True)], [("t", "cpu", True)])),
    # `t.is_cuda` false proves nothing (the CPU, another accelerator, `meta`).
    ('t.is_cuda and device.type == "cpu"', ([("t", "gpu", True), ("device", "cpu", False)], [])),
    ('t.is_cpu or device.type != "cuda"', ([], [("t", "gpu", True), ("device", "gpu", False)])),
    # Not a device: another string, another operator, a call that is not `str`.
    ('device.type == "meta"', ([], [])),
    ('mode == "train"', ([], [])),
    ('device.type in ("cpu", "mps")', ([], [])),
    ('get(device) == "cpu"', ([], [])),
    # Pinned memory: `t.is_pinned()` proves it where it holds; a flag that holds with a GPU
    # (`PIN_MEMORY`) leaves an `and` false only where its other side is.
    ("t.is_pinned()", ([("t", "pinned-cpu", True)], [])),
    ("PIN_MEMORY and not t.is_pinned()", ([], [("t", "pinned-cpu", True)])),
    ("pin and not t.is_pinned()", ([], [])),
])
def test_what_a_test_proves(test: str, expected: tuple) -> None:
    assert proved(test) == expected


def rows(source: str) -> list[tuple[int, str]]:
    result = lint_source(source, "snippet.py", list(all_rules().values()), SETTINGS)
    return sorted((d.start.row, d.code) for d in result.diagnostics)


def test_a_tensor_tested_for_its_device() -> None:
    source = (
        "import torch\n\n\n"
        "def f(t, x: torch.Tensor):\n"
        "    y = x.cuda()\n"
        "    if t.is_cuda:\n"
        "        t.item()\n"                       # 7: `t` is on the GPU here, whatever else it is
        "    if y.device.type == 'cpu':\n"
        "        y.tolist()\n"                     # 9: not on the GPU in this arm
        "    else:\n"
        "        y.tolist()\n"                     # 11
        "    if not y.is_cpu:\n"
        "        return y.tolist()\n"              # 13
    )
    assert rows(source) == [(7, "SL101"), (11, "SL102"), (13, "SL102")]
    result = lint_source(source, "snippet.py", list(all_rules().values()), SETTINGS)
    (item,) = [d for d in result.diagnostics if d.start.row == 7]
    assert "`t.is_cuda` holds here" in item.evidence


# Whole checks: (source, the rows reported), each scenario with what it shows.
CASES = {
    # vLLM's KV-transfer helper: a CPU device gets a plain tensor, any other a pinned copy.
    "a_device_tested_for_the_cpu_copies_nothing": (
        "import torch\n\n\n"
        "def to(ids, device):\n"
        "    if device.type == 'cpu':\n"
        "        return torch.tensor(ids, dtype=torch.int64, device=device)\n"   # 6: on the host
        "    return torch.tensor(ids, dtype=torch.int64, device=device)\n"       # 7
        "\n\n"
        "def early(ids, device):\n"
        "    if device.type != 'cpu':\n"
        "        return None\n"
        "    return torch.tensor(ids, device=device)\n",                          # 13: on the host
        [(7, "SL304")]),
    # A Hugging Face model has `.device`: the test tells of `model.device`, not of a tensor `model`.
    "a_module_with_a_device_is_not_taken_for_a_tensor": (
        "import torch\n\n\n"
        "def f(model, ids):\n"
        "    if model.device.type == 'cpu':\n"
        "        return torch.tensor(ids, device=model.device)\n"   # 6: the CPU in this arm
        "    return torch.tensor(ids, device=model.device)\n",       # 7
        [(7, "SL304")]),
    "a_device_attribute_the_program_binds_or_tests": (
        "import torch\n\n\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self.device = torch.device('cpu')\n\n"
        "    def f(self, ids):\n"
        "        return torch.tensor(ids, device=self.device)\n"      # 9: the CPU, set in __init__
        "\n\n"
        "class B:\n"
        "    def f(self, ids):\n"
        "        if self.device.type == 'cpu':\n"
        "            return torch.tensor(ids, device=self.device)\n"  # 15: the CPU in this arm
        "        return torch.tensor(ids, device=self.device)\n",      # 16
        [(16, "SL304")]),
    # Both arms fall through: what the test told of `y` in one of them does not outlive the branch.
    "after_the_branch_a_value_is_what_it_was": (
        "import torch\n\n\n"
        "def f(x: torch.Tensor):\n"
        "    y = x.cuda()\n"
        "    if y.device.type == 'cpu':\n"
        "        pass\n"
        "    if y.is_cpu and y.device.type == 'cpu':\n"   # narrowed twice in one arm
        "        pass\n"
        "    return y.tolist()\n",   # 10
        [(10, "SL102")]),
    # SGLang's n-gram worker: `if not prev.is_cpu: prev = prev.cpu()`. Not the CPU is the accelerator;
    # a tensor tested `is_cpu` is a tensor, whatever else is known of it.
    "a_tensor_not_on_the_cpu_is_read_from_the_gpu": (
        "import torch\n\n\n"
        "def f(prev, x: torch.Tensor, y: torch.Tensor):\n"
        "    if not prev.is_cpu:\n"
        "        prev = prev.cpu()\n"                # 6
        "    if x.device.type == 'cpu':\n"
        "        return x.tolist()\n"                # 8: the CPU in this arm
        "    n = x.tolist()\n"                       # 9: after an arm that returns
        "    if y.device.type != 'cpu':\n"
        "        n = y.tolist()\n"                   # 11
        "    return prev, n\n",
        [(6, "SL103"), (9, "SL102"), (11, "SL102")]),
    # vLLM's mamba helpers: `assert seq_lens.is_cuda` before reading it back.
    "an_assert_narrows_what_follows_it": (
        "import torch\n\n\n"
        "def f(seq_lens, q: torch.Tensor):\n"
        "    assert seq_lens.is_cuda\n"
        "    n = seq_lens.max().item()\n"        # 6: on the GPU after the assert
        "    q = q.cuda()\n"
        "    assert q.device.type == 'cpu', 'never'\n"
        "    return q.tolist(), n\n"             # 9: the assert says the CPU
        "\n\n"
        "def g(t, flag):\n"
        "    if flag:\n"
        "        assert t.is_cuda\n"
        "        t.item()\n"                     # 15
        "    return t.item()\n",                  # 16: after the branch, `t` is what it was
        [(6, "SL101"), (15, "SL101")]),
}


@pytest.mark.parametrize("name", CASES)
def test_findings_in_narrowed_code(name: str) -> None:
    source, expected = CASES[name]
    assert rows(source) == expected


@pytest.mark.parametrize("test, expected", [
    ("n is None", ("n", True)),
    ("n is not None", ("n", False)),
    ("self.n is None", ("self.n", True)),
    ("n == None", None),  # not an identity test
    ("n is False", None),
    ("f(n) is None", None),
])
def test_a_none_test_names_what_it_tests(test: str, expected: tuple | None) -> None:
    assert none_test(cst.parse_expression(test)) == expected


def test_a_host_value_the_caller_did_not_pass_computed_on_the_gpu() -> None:
    """`if n is None: n = <GPU tensor>`: the value read after the `if` is on the GPU on every pass
    that reaches it without a host number, as a sync inside the arm would be."""
    source = (
        "from typing import Optional\n"
        "import torch\n\n\n"
        "def f(n: Optional[int], m: Optional[int], k: Optional[int], t=None):\n"
        "    c = torch.zeros((4,), dtype=torch.int32, device='cuda')\n"
        "    if n is None:\n"
        "        n = c[-1]\n"
        "    torch.empty(n, device='cuda')\n"                      # 9: found
        "    size = m if m is not None else c.sum()\n"
        "    torch.empty(size, device='cuda')\n"                   # 11: found
        "    if k is not None:\n"
        "        pass\n"
        "    else:\n"
        "        k = c[0]\n"
        "    torch.empty(k, device='cuda')\n"                      # 16: found
        "    if t is None:\n"
        "        t = c\n"
        "    t.item()\n"                                            # 19: `t` may be the caller's tensor
    )
    assert rows(source) == [(9, "SL104"), (11, "SL104"), (16, "SL104")]


def test_a_fallback_to_a_host_value_is_no_gpu_and_a_plain_join_is_one_by_convention() -> None:
    source = (
        "from typing import Optional\n"
        "import torch\n\n\n"
        "def f(n: Optional[int], flag: bool):\n"
        "    c = torch.zeros((4,), dtype=torch.int32, device='cuda')\n"
        "    if n is None:\n"
        "        n = 4\n"                                           # a host fallback
        "    torch.empty(n, device='cuda')\n"
        "    m = c[0] if flag else 3\n"                             # not a None test: a GPU on one path
        "    torch.empty(m, device='cuda')\n"
        "    if n is None:\n"
        "        n = c[-1]\n"
        "        return n\n"                                        # the arm leaves: nothing joins
        "    torch.empty(n, device='cuda')\n"
    )
    assert rows(source) == [(11, "SL104")]


def test_a_cached_value_made_on_the_gpu_when_missing_is_on_the_gpu() -> None:
    """OLMo's adaptive clipping before #602: `avg = state.get("grad_norm_exp_avg")`, `if avg is None: avg =
    <GPU clone>`, then `if clip_coef_clamped < 1.0:` on a value computed from it. A get-or-create cache
    holds what an earlier pass made there; a parameter left None (`t` below) may be the caller's tensor."""
    source = (
        "import torch\n\n\n"
        "def f(state, key, t=None):\n"
        "    avg = state.get(key)\n"
        "    if avg is None:\n"
        "        avg = torch.zeros(1, device='cuda')\n"
        "    if avg * 2 < 1.0:\n"                                   # 8: found
        "        pass\n"
        "    last = state['last']\n"
        "    last = last if last is not None else torch.ones(1, device='cuda')\n"
        "    if last < 1.0:\n"                                      # 12: found
        "        pass\n"
        "    if t is None:\n"
        "        t = torch.zeros(1, device='cuda')\n"
        "    if t < 1.0:\n"                                         # 16: not found
        "        pass\n"
    )
    assert rows(source) == [(8, "SL104"), (12, "SL104")]


def test_an_isinstance_test_for_a_numpy_type_sees_host_memory() -> None:
    source = (
        "import numpy as np\n"
        "import torch\n\n\n"
        "def f(x: torch.Tensor):\n"
        "    y = x.cuda()\n"
        "    if isinstance(y, np.number):\n"
        "        y.tolist()\n"                                   # a NumPy scalar here
        "    if isinstance(y, (np.ndarray, np.generic)):\n"
        "        y.tolist()\n"
        "    if isinstance(y, (np.ndarray, torch.Tensor)):\n"
        "        y.tolist()\n"                                   # 12: may be the tensor
        "    y.tolist()\n"                                       # 13: what it was before the tests
    )
    assert rows(source) == [(12, "SL102"), (13, "SL102")]


def test_where_an_isinstance_test_for_a_tensor_fails_the_value_is_no_tensor() -> None:
    source = (
        "import torch\n\n\n"
        "def scale(x: torch.Tensor, alpha: torch.Tensor | float, beta: torch.Tensor | float):\n"
        "    if isinstance(alpha, torch.Tensor):\n"
        "        a = alpha.to(x.dtype)\n"
        "    else:\n"
        "        a = float(alpha)\n"                              # 8: a Python number here
        "    if isinstance(beta, torch.Tensor):\n"
        "        return x * beta\n"
        "    return x * a * float(beta)\n"                        # 11: a Python number here too
    )
    strict = Settings(target_torch_version="2.11", strict=True)
    result = lint_source(source, "snippet.py", list(all_rules().values()), strict)
    assert [(d.start.row, d.code) for d in result.diagnostics] == []
    # Where the test holds, the tensor is what it was.
    known = "import torch\n\n\ndef f(n):\n    t = torch.ones(n, device='cuda')\n" \
            "    if not isinstance(t, torch.Tensor):\n        return 0\n    return float(t)\n"
    assert rows(known) == [(8, "SL104")]
    # Where it fails, the value is no tensor even when it is known to be one: the code there runs only
    # for the other sources a value may have (a parameter some callers pass a list), or never.
    dead = "import torch\n\n\ndef f(n):\n    t = torch.ones(n, device='cuda')\n" \
           "    if isinstance(t, torch.Tensor):\n        return t.sum()\n    return [int(v) for v in t]\n"
    assert rows(dead) == []
    # The body of `if not isinstance(t, torch.Tensor):` is left as it is: there a tensor that every
    # source makes is usually turned into one (`torch.tensor(eos_token_id, device=device)` in
    # transformers' logits processors, whose one caller passes a tensor), which never runs.
