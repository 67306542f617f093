"""What the per-file device analysis asks the project: one file's window onto the index.

The per-file evaluator (`analysis/evaluate.py`) knows the file, flow-sensitively;
the project knows everything else. Where the file alone cannot say what a value
is (a parameter, a field of an object of a known class, the result of a call into
another module, a name imported from elsewhere), the evaluator asks this view.
Every answer is a `Fact` whose evidence names the steps in other files.
"""

from __future__ import annotations

from sync_lint.analysis.facts import UNKNOWN, Device, Fact, constructed, detached, module_output, replace
from sync_lint.analysis.knowledge import LIGHTNING_MODULES
from sync_lint.project.infer import (
    DEFAULT_BUDGET,
    MODULE_HOPS,
    Inference,
    _informative,
    join_sources,
)
from sync_lint.project.index import nested_name
from sync_lint.project.summary import ModuleSummary
from sync_lint.project.values import predicate_of


class ProjectView:
    def __init__(self, inference: Inference, summary: ModuleSummary) -> None:
        self.inference = inference
        self.summary = summary
        self.module = summary.module
        self.root = inference.index.root  # evidence paths in other files are relative to it

    def _qualified(self, local: str) -> str:
        return self.summary.qualified(local)

    def _takes(self, function: str, name: str) -> bool:
        """Whether the module's function `function` (a local qualname) has a parameter `name`."""
        info = self.summary.functions.get(function)
        return info is not None and any(param.name == name for param in info.params)

    def param(self, function: str, name: str) -> Fact | None:
        """The fact of parameter `name` of the module's function `function` (a local qualname)."""
        if function not in self.summary.functions:
            return None
        qualified = self._qualified(function)
        fact = self.inference.param(qualified, name)
        if fact.is_unknown_tensor:  # calls that disagree: the body's own reading (`Inference.body_param`)
            fact = self.inference.body_param(qualified, name)
        if fact.is_unknown_tensor:  # a tensor, by its annotation or its callers: not an object with a device
            placed = [line for line, param in self.summary.functions[function].placed_params if param == name]
            if placed:
                # `torch.arange(total, device=counts.device)`: the body computes on the parameter's device,
                # which is taken for an accelerator (`x.device` of a value not known), so the parameter is
                # on it too. Only here: what flows out of the function keeps the callers' answer.
                return Fact(Device.GPU, tensor_like=True, convention=True, subject=name,
                            reason=f"its device is the device of a call at line {placed[0]}, an accelerator by "
                                   "convention")
        return fact if _informative(fact) or fact.value_kind == "none" else None

    def lightning_batch(self, function: str, name: str) -> Fact | None:
        """The batch a Lightning step hook of the module's class receives (`Inference.lightning_batch`)."""
        info = self.summary.functions.get(function)
        return self.inference.lightning_batch(self.summary, info, name) if info is not None else None

    def saved_tensors(self, function: str, name: str) -> Fact | None:
        """`name.saved_tensors` in the module's function `function` (`Inference.saved_tensors`)."""
        info = self.summary.functions.get(function)
        return self.inference.saved_tensors(self.summary, info, name, DEFAULT_BUDGET) if info is not None else None

    def builds_module(self, function: str) -> bool | None:
        """Whether the module's function `function` (a local qualname) runs only while an instance of
        its `nn.Module` class is built, as the summary found it; None when the summary has no such function."""
        info = self.summary.functions.get(function)
        return self.inference.builds_module(self.summary, info) if info is not None else None

    def unreferenced(self, function: str) -> bool:
        """Whether no code that runs mentions the module's module-level function `function`
        (`ProjectIndex.unreferenced`)."""
        return self.inference.index.unreferenced(self.module, function)

    def never_none(self, function: str, name: str) -> bool:
        """Whether every known call of the module's function `function` (a local qualname) passes its
        parameter `name` a value certainly not None (`Inference.never_none`)."""
        return self._takes(function, name) and self.inference.never_none(self._qualified(function), name)

    def always_none(self, function: str, name: str) -> bool:
        """Whether every known call of the module's function `function` (a local qualname) leaves its
        parameter `name` None, and there is one (`Inference.always_unset`)."""
        return self._takes(function, name) and self.inference.always_unset(self._qualified(function), name, False)

    def never_runs(self, function: str, line: int) -> tuple[str, str] | None:
        """Why `line` of the module's function `function` (a local qualname) runs on no known call
        (`Inference.never_runs`)."""
        info = self.summary.functions.get(function)
        return self.inference.never_runs(self.summary, info, line) if info is not None else None

    def off_cuda_only(self, function: str) -> str | None:
        """`path:line` of a call that shows the module's function `function` (a local qualname) runs only
        off CUDA in deployed code (`Inference.off_cuda_only`), or None."""
        if function not in self.summary.functions:
            return None
        return self.inference.off_cuda_only(self._qualified(function))

    def off_cuda_arm(self, function: str, line: int) -> str | None:
        """The project function whose result puts `line` of the module's function `function` (a local
        qualname) in code that runs only off CUDA (`FunctionInfo.predicate_arms`: `if
        use_torch_reference(buf.device):`), or None."""
        info = self.summary.functions.get(function)
        if info is None:
            return None
        index = self.inference.index
        for first, last, context in info.predicate_arms:
            if first <= line <= last and index.runs_off_cuda((context,)):
                return predicate_of(context)
        return None

    def instance(self, class_name: str) -> Fact | None:
        """An instance of the module's class `class_name` (a local qualname): what `self` is."""
        if class_name not in self.summary.classes:
            return None
        return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({self._qualified(class_name)}))

    def name(self, name: str, function: str | None) -> Fact | None:
        """A name the function does not bind: a module global, a class, a function, an import."""
        summary = self.summary
        if function is not None:
            imported = summary.local_imports.get((function, name)) or nested_name(summary, function, name)
            if imported is not None:  # an import in the function, or a class or function defined in it
                fact = self.inference.qualified(imported)
                return fact if fact is not None and _informative(fact) else None
        if name in summary.classes or name in summary.functions or name in summary.globals \
                or name in summary.imports or summary.star_imports:
            from sync_lint.project.infer import Context

            fact = self.inference.eval(("name", name), Context(summary, None, budget=6))
            return fact if _informative(fact) else None
        return None

    def from_a_library(self, dotted: str) -> bool:
        """Whether a qualified name (`megatron.core.packed_seq_params.PackedSeqParams`) is defined outside
        the project."""
        return "." in dotted and self.inference.index.resolve(dotted) is None

    def qualified(self, dotted: str) -> Fact | None:
        """A qualified name (`pkg.buffers.SCRATCH`): what the project says it is."""
        fact = self.inference.qualified(dotted)
        return fact if fact is not None and _informative(fact) else None

    def attribute(self, owner: Fact, attr: str) -> Fact | None:
        """`owner.attr` where the owner is an object, class or module the project knows."""
        if owner.value_kind not in ("object", "class", "module") or not owner.refs:
            return None
        fact = self.inference.object_attribute(owner, attr)
        return fact if _informative(fact) else None

    def unpacked(self, owner: Fact, count: int | None) -> list[Fact] | None:
        """The fields of an object of a project `NamedTuple` class, in order, as `count` names take them
        from unpacking it (any number when None); None for any other object, or a count that is not
        the number of fields."""
        fields = self.inference.tuple_fields(owner)
        if fields is None or count is not None and len(fields) != count:
            return None
        return [self.attribute(owner, name) or UNKNOWN for name in fields]

    def call(self, callee: Fact, receiver: Fact | None, args: list[Fact], kwargs: dict[str, Fact],
             complete: bool = False, building: bool = False) -> Fact | None:
        """The result of calling a project class or function with these argument facts (`complete`:
        the call passes no `*args`/`**kwargs`, so a parameter it leaves out has its default;
        `building`: the call is made while an `nn.Module` is built, see `Context`)."""
        if callee.value_kind == "class" and callee.refs:
            return constructed(callee.refs)
        if callee.value_kind == "object" and callee.refs:
            # `self.encoder(hidden)`: the object's `forward` (or `__call__`), with the object as `self`.
            target = self.inference.call_target(callee, budget=DEFAULT_BUDGET)
            if target is None:
                fact = module_output(callee, [*args, *kwargs.values()], "{code}")
                return fact if _informative(fact) else None
            callee, receiver = target, callee
            budget = MODULE_HOPS + 1
        else:
            budget = DEFAULT_BUDGET
        if callee.value_kind != "callable" or not callee.refs:
            return None
        # The inference memoises what a call returns for these arguments, for other files too.
        given = (args, kwargs)
        args = [detached(a) for a in args]
        kwargs = {k: detached(v) for k, v in kwargs.items()}
        receiver = detached(receiver) if receiver is not None else None
        results = []
        for target in sorted(callee.refs):
            found = self.inference.index.function(target)
            bound = found is not None and found[1].kind in ("method", "classmethod") and "bound" in callee.items
            leading = [receiver if receiver is not None else Fact(Device.UNKNOWN)] if bound else []
            results.append(self.inference.returns_with(target, leading + args, kwargs, budget, complete, building))
        fact = join_sources(results)
        if not _informative(fact):
            return None
        if len(callee.refs) == 1 and fact.via is None and fact.where is not None:
            (target,) = callee.refs
            fact = self._through_argument(fact, target, "bound" in callee.items, *given)
        return fact

    def _through_argument(self, fact: Fact, target: str, bound_call: bool, args: list[Fact],
                          kwargs: dict[str, Fact]) -> Fact:
        """`fact`, the result of calling `target`, continued by this file's own evidence of the
        argument it returns (`helper(b)` where `helper` returns `x * 2`: why `b` is on the GPU). The
        project's answer ends at the callee's `return`: it is shared with other calls, which pass
        other arguments. The argument is the one tensor on the result's device among those the
        `return`s read (`pack(n, x)` returning `x.view(n, -1)`: `x`, not the size)."""
        found = self.inference.index.function(target)
        if found is None or not fact.is_tensor:
            return fact
        info = found[1]
        returned = self.inference.return_params(target, info)
        bound = bound_call and info.kind in ("method", "classmethod")  # `self`/`cls` is not among `args`
        positional = [p.name for p in info.params if p.kind in ("posonly", "pos")][1 if bound else 0:]
        given = {**dict(zip(positional, args)), **kwargs}
        alike = [given[name] for name in sorted(returned) if name in given
                 and given[name].is_tensor and given[name].device is fact.device]
        if len(alike) != 1 or (alike[0].origin is None and alike[0].where is None):
            return fact
        return replace(fact, via=alike[0])

    def device_array(self, classes: frozenset[str]) -> bool:
        """Whether objects of these classes expose device memory (see `Inference.device_array`)."""
        return self.inference.device_array(classes)

    def declared_entry(self, owner: Fact, key: str) -> Fact | None:
        """`owner["key"]` where the owner's class declares a field `key` (a `TensorSchema`, a `TypedDict`):
        that field, even when nothing is known of it; None for other owners."""
        if owner.value_kind != "object" or not owner.refs or not self.inference.declares_field(owner.refs, key):
            return None
        return self.inference.object_attribute(owner, key)

    def plain_attribute(self, owner: Fact, attr: str) -> bool:
        """Whether `owner.attr` is plain data: the owner is an object of project classes that each keep
        `attr` as a field or a store on `self`, with no method or property of that name."""
        return owner.value_kind == "object" and bool(owner.refs) and self.inference.stores_plainly(owner.refs, attr)

    def entry(self, key: str) -> Fact | None:
        """`container["key"]`: what entries with that key hold across the repository (a convention)."""
        fact = self.inference.entry(key)
        return fact if fact.is_tensor else None

    def multimodal_input(self, key: str) -> Fact | None:
        """`kwargs["key"]` of a function's `**kwargs`: one of vLLM's multimodal inputs, if the project declares it."""
        return self.inference.multimodal_input(key, self.summary.module)

    def host_input(self, key: str) -> Fact | None:
        """`container["key"]` of a container nobody knows: a multimodal input declared to stay on the host."""
        return self.inference.host_input(key, self.summary.module)

    def attribute_convention(self, attr: str) -> Fact | None:
        """`x.attr` for an `x` of unknown class: what that attribute holds across the repository. Not in
        a module that imports nothing of torch: what tensor code stores under a name says nothing of
        the objects of code that never names torch (vLLM's `self.partial` symmetric-memory buffer and a
        tool parser's regex match `m.partial`)."""
        if not any(target == "torch" or target.startswith("torch.") for target in self.summary.imports.values()):
            return None
        fact = self.inference.attribute_convention(attr)
        return fact if fact.is_tensor else None

    def cpu_side_class(self, classes: tuple[str, ...], bases: frozenset[str]) -> str | None:
        """The name of one of `bases` that makes code data-processing code, or None. `classes` are the
        classes around it in the text being checked (local qualnames, outermost first): one of them
        derives from such a base (through project classes, or by the name a file spells for a library
        base). Outside every class: the module defines such a class and no model (an image processor's
        module-level helpers)."""
        for local in classes:
            found = self._cpu_side(local, bases)
            if found is not None:
                return found
        if classes:
            return None
        found = None
        for local in self.summary.classes:
            if any(name.endswith(("Module", "Model")) for name in self._base_names(local)):
                return None
            found = found or self._cpu_side(local, bases)
        return found

    def module_object(self, owner: Fact, method: str) -> bool:
        """Whether `owner` is an object of project `nn.Module` classes none of which defines `method`
        (`Net().cuda()`: torch's own move, which returns the module)."""
        return owner.value_kind == "object" and bool(owner.refs) and all(
            self.inference.module_class(cls) and self.inference.index.method(cls, method) is None
            for cls in owner.refs)

    def lightning_module(self, classes: frozenset[str]) -> bool:
        """Whether one of these classes (qualified) derives from Lightning's `LightningModule`."""
        return any(self.inference.derives_from(cls, LIGHTNING_MODULES) for cls in classes)

    def module_class(self, local: str) -> bool:
        """The class derives from `torch.nn.Module` (through project classes, or by a base it spells)."""
        return self.inference.module_class(self._qualified(local))

    def _cpu_side(self, local: str, bases: frozenset[str]) -> str | None:
        return next((name for name in self._base_names(local) if name in bases), None)

    def _base_names(self, local: str) -> list[str]:
        return self.inference.base_names(self._qualified(local))
