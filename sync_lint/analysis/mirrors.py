"""Host mirrors: the `_cpu` copy serving code keeps beside a device tensor.

`seq_lens_cpu` next to `seq_lens`, `m.query_start_loc_cpu` next to
`m.query_start_loc`. A mirror provably exists where its name is bound at that
point (an assignment, a parameter, a `self.` attribute set in `__init__`) to a
CPU tensor or a value of unknown kind (not `None`, not a list), where the same
dotted name was already read in the enclosing function, or where its attribute
name is a configured cpu-attribute. The statement being walked must not write the
mirror (`x_cpu = x.cpu()` is how a mirror is kept fresh).
"""

from __future__ import annotations

import re

import libcst as cst

from sync_lint.analysis.device import DeviceAnalysis
from sync_lint.analysis.facts import Device
from sync_lint.analysis.marks import SyntaxMarks
from sync_lint.analysis.provider import Provider
from sync_lint.syntax import dotted_name

_GPU_SUFFIX = re.compile(r"_(gpu|cuda|dev|device)$")
_SEQUENCE_TARGETS = (cst.Tuple, cst.List)
_WRAPPERS = (cst.Subscript, cst.StarredElement)


def written_names(target: cst.BaseExpression) -> frozenset[str]:
    """The names an assignment target writes into: `x_cpu` for `x_cpu[:n] = ...` too."""
    # Concrete types: an ABC `isinstance` costs more than the rest of this function.
    if type(target) in _SEQUENCE_TARGETS:
        return frozenset().union(*(written_names(e.value) for e in target.elements))  # type: ignore[attr-defined]
    while type(target) in _WRAPPERS:
        target = target.value  # type: ignore[attr-defined]
    name = dotted_name(target)
    return frozenset({name}) if name is not None else frozenset()


class HostMirrors(Provider):
    def __init__(self, marks: SyntaxMarks, devices: DeviceAnalysis, cpu_attributes: frozenset[str]) -> None:
        self._marks = marks
        self._devices = devices
        self._cpu_attributes = cpu_attributes
        # Dotted `*_cpu` names read so far, one set per enclosing function (module first).
        self._seen: list[set[str]] = [set()]
        # The targets of the assignments being walked.
        self._writing: list[tuple[cst.BaseExpression, ...]] = []

    # --- queries ------------------------------------------------------------------------
    def mirror_of(self, name: str) -> str | None:
        """The host mirror of the tensor named `name` (`seq_lens_cpu` for `seq_lens`), or None."""
        head, dot, last = name.rpartition(".")
        for candidate in dict.fromkeys((_GPU_SUFFIX.sub("", last) + "_cpu", last + "_cpu")):
            full = head + dot + candidate
            fact = self._devices.bound_fact(full)
            if fact is not None:
                # Bound to a CPU tensor, or to a value of unknown kind named as a host copy.
                if fact.is_cpu or fact.device is Device.UNKNOWN:
                    return full
            elif dot and (candidate in self._cpu_attributes or any(full in s for s in self._seen)):
                return full
        return None

    def being_written(self) -> frozenset[str]:
        """The names the statements being walked assign to."""
        return frozenset().union(*(written_names(target) for targets in self._writing for target in targets))

    # --- what the walk tells us ---------------------------------------------------------
    def _enter_function(self, node: cst.FunctionDef) -> None:
        self._seen.append(set())

    def _leave_function(self, node: cst.FunctionDef) -> None:
        self._seen.pop()

    def _attribute(self, node: cst.Attribute) -> None:
        if node.attr.value.endswith("_cpu") and not self._marks.is_store(node):
            name = dotted_name(node)
            if name is not None:
                self._seen[-1].add(name)

    # The targets are kept as they are: few assignments are ever asked about (`being_written`),
    # so their names are worked out then.
    def _enter_assign(self, node: cst.Assign) -> None:
        self._writing.append(tuple(t.target for t in node.targets))

    def _enter_single_target(self, node: cst.AugAssign | cst.AnnAssign) -> None:
        self._writing.append((node.target,))

    def _leave_assignment(self, node: cst.CSTNode) -> None:
        self._writing.pop()

    ENTER = {
        cst.FunctionDef: _enter_function,
        cst.Attribute: _attribute,
        cst.Assign: _enter_assign,
        cst.AugAssign: _enter_single_target,
        cst.AnnAssign: _enter_single_target,
    }
    LEAVE = {
        cst.FunctionDef: _leave_function,
        cst.Assign: _leave_assignment,
        cst.AugAssign: _leave_assignment,
        cst.AnnAssign: _leave_assignment,
    }
