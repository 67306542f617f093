"""Device inference: for every expression, is it a GPU tensor, a CPU tensor, ...?

The provider rules query (`ctx.devices.fact(expr)`). It is two parts, as mypy
separates its binder from its checker: the binder (`flow.py`) follows control flow
and records what each name holds; the evaluator (`evaluate.py`) says what an
expression is, from those bindings, the import table and the torch API tables
(`knowledge.py`), falling back on naming conventions (`conventions.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from sync_lint.analysis import flow
from sync_lint.analysis.conventions import DeviceSettings
from sync_lint.analysis.evaluate import Evaluator
from sync_lint.analysis.facts import Device, Fact
from sync_lint.analysis.imports import ImportTable
from sync_lint.analysis.knowledge import LIGHTNING_MODULES
from sync_lint.analysis.provider import BoundHooks, Provider, bind_hooks

if TYPE_CHECKING:
    from sync_lint.project.view import ProjectView


class DeviceAnalysis(Provider):
    """Per-file device facts. The walk drives the binder; rules call `fact(expr)`."""

    def __init__(self, imports: ImportTable, settings: DeviceSettings, project: "ProjectView | None" = None) -> None:
        self.binder = flow.Binder()
        self.evaluator = Evaluator(self.binder, imports, settings, project)
        self.binder.evaluator = self.evaluator

    def hooks(self) -> BoundHooks:
        return bind_hooks(self.binder, flow.ENTER, flow.LEAVE, flow.AFTER_FIELD)

    def release(self) -> None:
        """The walk is over and its findings made: nothing asks for facts any more (`Binder.release`)."""
        self.binder.release()

    # --- queries ------------------------------------------------------------------------
    def fact(self, expr: cst.BaseExpression) -> Fact:
        """What `expr` is at the walk's current program point."""
        return self.evaluator.fact(expr)

    def bound_fact(self, name: str) -> Fact | None:
        """The fact of a name or dotted name the program has bound at this point (an
        assignment, a parameter, a `self.` attribute set in `__init__`); None when the
        name is unbound here, whatever its naming convention suggests."""
        return self.evaluator.bound_fact(name)

    def device_of_argument(self, expr: cst.BaseExpression) -> tuple[Device | None, str]:
        """What device a `device=` argument (or `.to(x)` argument) denotes, and why."""
        return self.evaluator.device_of_argument(expr)

    def assumed_device(self, expr: cst.BaseExpression) -> bool:
        """A device argument taken for an accelerator only by convention (`x.device` of an unknown `x`)."""
        return self.evaluator.assumed_device(expr)

    def literal_accelerator(self, expr: cst.BaseExpression) -> bool:
        """`"cuda"`, `"cuda:1"`, `torch.device("cuda")`, `0`: a device that cannot be the CPU at run time."""
        return self.evaluator.literal_accelerator(expr)

    def legacy_type(self, expr: cst.BaseExpression) -> tuple[bool, str] | None:
        """`torch.BoolTensor` or `"torch.cuda.FloatTensor"`: (whether it is a GPU type, its torch dtype)."""
        return self.evaluator.legacy_type(expr)

    def created_on_accelerator(self, fact: Fact) -> bool:
        """The tensor was made by `.cuda()`, `.to(<literal accelerator>)` or a factory with such a `device=`."""
        return self.evaluator.created_on_accelerator(fact)

    def lightning_module(self, fact: Fact) -> bool:
        """An instance of Lightning's `LightningModule`: of that class, of a project class deriving from
        it, or `self` in a method of a class that spells it as a base."""
        if fact.refs & LIGHTNING_MODULES:
            return True
        project = self.evaluator.project
        if project is not None and fact.refs and project.lightning_module(fact.refs):
            return True
        return fact.value_kind == "self" and self.evaluator.in_lightning_class()

    def device_array(self, fact: Fact) -> bool:
        """An object of a project class that exposes device memory (`__cuda_array_interface__`,
        `__dlpack__`): `torch.as_tensor` of it views that memory, copying nothing from the host."""
        project = self.evaluator.project
        return fact.value_kind == "object" and bool(fact.refs) and project is not None \
            and project.device_array(fact.refs)
