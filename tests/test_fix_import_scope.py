"""Where a fix finds the module it needs: the scope that binds it at run time.

SL304 turns `gpu_t.new_tensor(0.5)` into `torch.full((), 0.5, ...)`, so the fixed
code needs `torch`. Two kinds of module must keep working after the fix:

- a lazy-import module, whose functions import torch themselves so that importing
  the module does not import torch: the fix uses the function's own binding (or
  imports torch inside the function), never a module-level `import torch`;
- a module that imports torch only under `if TYPE_CHECKING:`: that name is not
  bound at run time, so the fix imports torch inside the function it edits.

Each fixed module is executed against a stand-in `torch` module: importing it must
not import torch, and calling the fixed function must not raise NameError.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types

import pytest

from sync_lint.fix import snippet_fixes


class _FakeTensor:
    dtype = "float32"
    device = "cuda:0"

    def cuda(self) -> "_FakeTensor":
        return self

    def new_tensor(self, value):  # the unfixed code calls this
        return ("new_tensor", value)


def _fake_torch() -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.zeros = lambda *args, **kwargs: _FakeTensor()  # type: ignore[attr-defined]
    torch.full = lambda shape, value, **kwargs: ("full", value, kwargs["device"])  # type: ignore[attr-defined]
    return torch


def _fix(source: str) -> str:
    outcome = snippet_fixes(source, unsafe=True)
    assert outcome.errors == []
    assert outcome.applied.get("SL304"), "the SL304 fix was not applied"
    return outcome.new_source


def _import_module(code: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[str]]:
    """Execute `code` as a module with a stand-in torch; (its namespace, modules imported at import time)."""
    monkeypatch.setitem(sys.modules, "torch", _fake_torch())
    imported: list[str] = []
    real_import = builtins.__import__

    def recording_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        imported.append(name)
        return real_import(name, *args, **kwargs)

    namespace: dict = {"__name__": "fixed_module"}
    monkeypatch.setattr(builtins, "__import__", recording_import)
    exec(compile(code, "fixed_module.py", "exec"), namespace)
    monkeypatch.setattr(builtins, "__import__", real_import)
    return namespace, imported


def _module_level_imports(code: str) -> list[str]:
    return [alias.name for stmt in ast.parse(code).body if isinstance(stmt, ast.Import) for alias in stmt.names]


LAZY = '''\
"""Helpers; importing this module must not import torch."""


def make_scale(device):
    import torch

    base = torch.zeros(4, device="cuda")
    return base.new_tensor(0.5)
'''


def test_lazy_module_uses_the_functions_own_import(monkeypatch):
    fixed = _fix(LAZY)
    assert _module_level_imports(fixed) == []
    assert "    return torch.full((), 0.5, dtype=base.dtype, device=base.device)\n" in fixed
    assert fixed.count("    import torch\n") == 1
    namespace, imported = _import_module(fixed, monkeypatch)
    assert "torch" not in imported
    assert namespace["make_scale"]("cuda") == ("full", 0.5, "cuda:0")


LAZY_ALIASED = '''\
"""Helpers; importing this module must not import torch."""


def make_scale(device):
    import torch as th

    base = th.zeros(4, device="cuda")
    return base.new_tensor(0.5)


def shift(base):
    gpu = base.cuda()
    return gpu.new_tensor(1)
'''


def test_lazy_module_alias_and_a_function_without_its_own_import(monkeypatch):
    fixed = _fix(LAZY_ALIASED)
    assert _module_level_imports(fixed) == []
    # The function's own alias is used; the function that imports nothing imports torch itself.
    assert "    return th.full((), 0.5, dtype=base.dtype, device=base.device)\n" in fixed
    assert "def shift(base):\n    import torch\n    gpu = base.cuda()\n" in fixed
    namespace, imported = _import_module(fixed, monkeypatch)
    assert "torch" not in imported
    assert namespace["make_scale"]("cuda") == ("full", 0.5, "cuda:0")
    assert namespace["shift"](_FakeTensor()) == ("full", 1, "cuda:0")


TYPE_CHECKING_ONLY = '''\
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def first(starts: "torch.Tensor"):
    """Doc."""
    starts = starts.cuda()
    return starts.new_tensor(0)
'''


def test_type_checking_import_is_not_a_run_time_binding(monkeypatch):
    fixed = _fix(TYPE_CHECKING_ONLY)
    namespace, imported = _import_module(fixed, monkeypatch)
    assert namespace["first"](_FakeTensor()) == ("full", 0, "cuda:0")  # no NameError
    assert "torch" not in imported
    # The fix imports torch in the function it edits, below the docstring.
    assert 'def first(starts: "torch.Tensor"):\n    """Doc."""\n    import torch\n    starts = starts.cuda()\n' in fixed
    assert _module_level_imports(fixed) == []


def test_type_checking_import_keeps_the_file_style():
    source = TYPE_CHECKING_ONLY.replace("    ", "\t").replace("\n", "\r\n")
    fixed = _fix(source)
    assert '\t"""Doc."""\r\n\timport torch\r\n\tstarts = starts.cuda()\r\n' in fixed
    compile(fixed, "fixed.py", "exec")


ONE_LINE_BODY = '''\
"""Helpers; importing this module must not import torch."""


def scale(device):
    import torch
    return torch.zeros(4, device="cuda")


def shift(base): gpu = base.cuda(); return gpu.new_tensor(1)
'''


def test_a_one_line_body_gets_its_import_on_the_same_line(monkeypatch):
    fixed = _fix(ONE_LINE_BODY)
    assert "def shift(base): import torch; gpu = base.cuda(); return torch.full(" in fixed
    namespace, imported = _import_module(fixed, monkeypatch)
    assert "torch" not in imported
    assert namespace["shift"](_FakeTensor()) == ("full", 1, "cuda:0")


REBOUND_LATER = '''\
import torch


def shift(base):
    gpu = base.cuda()
    one = gpu.new_tensor(1)
    import torch.distributed
    return one
'''


def test_a_name_the_function_rebinds_later_is_imported_in_the_function(monkeypatch):
    # `import torch.distributed` makes `torch` local to `shift`: the module's `torch` is not
    # reachable above it, so the fix imports torch at the top of the function.
    fixed = _fix(REBOUND_LATER)
    assert "def shift(base):\n    import torch\n    gpu = base.cuda()\n" in fixed
    monkeypatch.setitem(sys.modules, "torch.distributed", types.ModuleType("torch.distributed"))
    namespace, _ = _import_module(fixed, monkeypatch)
    assert namespace["shift"](_FakeTensor()) == ("full", 1, "cuda:0")  # no UnboundLocalError
