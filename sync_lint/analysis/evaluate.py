"""The evaluator: what an expression is (a GPU tensor, a CPU tensor, a device, ...) and why.

Expressions are evaluated on demand against the bindings of the program point
where the walk stands (the binder's scopes, `flow.py`), and memoised per node.
Sources of facts, most specific first: factories and moves (`torch.zeros(...,
device=d)`, `.cuda()`, `.to("cpu")`, `.pin_memory()`), propagation through
operators, indexing, tensor methods and `torch.*` functions, attributes set in
`__init__`, configured attribute names, and finally naming conventions
(`*_cpu`, `*_gpu`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, Iterable

import libcst as cst

from sync_lint.analysis.construction import construction_methods
from sync_lint.analysis.conventions import DeviceSettings
from sync_lint.analysis.facts import (
    DTYPE,
    EMPTY_DICT,
    MODULE_MOVES,
    MODULE_STATE,
    UNKNOWN_VALUE_DEVICE,
    module_state,
    NN_MODULE,
    NONE,
    NUMPY,
    ON_ANOTHER_PATH,
    PYTHON,
    RANGE,
    UNKNOWN,
    Device,
    Fact,
    backpropagated,
    container_method,
    device_string,
    dict_entry,
    device_value,
    host_list,
    gradient_norm,
    is_host_list,
    join,
    library_fields,
    loader_batches,
    loss_output,
    made_by_tensor_type,
    module_in,
    module_output,
    moved_like,
    module_placement,
    moved_field,
    moved_object,
    nn_module,
    hooked_batch,
    placed_module,
    placed_output,
    prepared_by_launcher,
    none_fallback,
    pieces_of,
    placed_by_library,
    put_entry,
    replace,
    spread_elements,
    string_device,
    string_fact,
    string_text,
    tensor_type,
)
from sync_lint.analysis.flow import Deferred
from sync_lint.analysis.imports import ImportTable
from sync_lint.analysis.knowledge import (
    ACCELERATOR_NAMES,
    NAMESPACE,
    PLACING_METHODS,
    class_like,
    CONTAINERS,
    CONVERTED_NUMBERS,
    CPU_FACTORIES,
    DATA_LOADERS,
    DEVICE_ALLOCATORS,
    DISPATCHING_DEVICE_MAPS,
    DTYPE_NAMES,
    ELEMENTWISE,
    EMPTY_CONTAINERS,
    EVENT_HANDLES,
    FACTORIES,
    GRADIENT_NORM_FUNCTIONS,
    GRADIENT_NORM_METHODS,
    INT_SIZE,
    LIGHTNING_MODULES,
    LIGHTNING_STEP_HOOKS,
    LOADER_PREPARERS,
    PREPARING_NAMES,
    HOST_VALUE_METHODS,
    JOINING_OPS,
    LIKE_FACTORIES,
    METADATA_ATTRS,
    METADATA_METHODS,
    MODULE_NAMES,
    NEW_METHODS,
    NN_MODULE_CLASSES,
    NN_NON_MODULES,
    NON_TENSOR_ANNOTATIONS,
    REDUCTIONS,
    OUTPUT_FIELDS,
    RESULT_FIELDS,
    SAVED_TENSORS,
    SPLITTING_OPS,
    STREAM_HANDLES,
    TENSOR_ATTRS,
    TENSOR_KEYWORDS,
    TENSOR_ONLY_CASTS,
    SHARES_MEMORY,
    arithmetic_call,
    cuda_device_module,
    factory_rank,
    legacy_tensor_type,
    made_by_constructor,
    model_loader,
    preparing_method,
    module_state_class,
    result_dtype,
    torch_handle_kind,
    torch_returns_device,
    torch_returns_python,
)
from sync_lint.analysis.narrowing import holds_with_a_gpu, none_test
from sync_lint.syntax import (
    call_name,
    dotted_name,
    is_false_literal,
    is_none_literal,
    is_true_literal,
    keyword_value,
    literal_string,
)

if TYPE_CHECKING:
    from sync_lint.analysis.flow import Binder
    from sync_lint.project.view import ProjectView

DEVICE_MODULES = frozenset(f"torch.{name}" for name in ACCELERATOR_NAMES) | {"torch.accelerator"}
# What a project fact may stand in for: the value kinds of the index's answers.
# What the binder records for a `def`, `class` or `import` (a name, not a value it can follow).
_DEFINITIONS = frozenset({"import", "class", "function"})
_PROJECT_KINDS = frozenset({"object", "class", "callable", "module", "tuple", "list", "dict", "device", "event", "stream",
                            "device-module"})


INT_NUMBER = replace(PYTHON, dtype="int")


def _none_or_string(expr: cst.BaseExpression) -> bool:
    return is_none_literal(expr) or isinstance(expr, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))


class Evaluator:
    """Facts of expressions at the walk's current program point, memoised per node."""

    def __init__(self, binder: "Binder", imports: ImportTable, settings: DeviceSettings,
                 project: "ProjectView | None" = None) -> None:
        self.binder = binder
        self.imports = imports
        self.settings = settings
        self.project = project
        self._memo: dict[int, Fact] = {}
        # Per class node: the methods that run only while an instance is built, when it is an `nn.Module`.
        self._built: dict[int, frozenset[str]] = {}

    @staticmethod
    def combine(facts: Iterable[Fact]) -> Fact:
        return combine(facts)

    def fact(self, expr: cst.BaseExpression) -> Fact:
        key = id(expr)
        cached = self._memo.get(key)
        if cached is None:
            cached = self._evaluate(expr)
            self._memo[key] = cached
        return cached

    def bound_fact(self, name: str) -> Fact | None:
        """The fact of a name or dotted name the program has bound at this point (an
        assignment, a parameter, a `self.` attribute set in `__init__`); None when the
        name is unbound here, whatever its naming convention suggests."""
        fact = self.binder.lookup(name)
        if fact is None and name.startswith("self."):
            fact = self.binder.init_attribute(name)
        return fact

    def device_of_argument(self, expr: cst.BaseExpression) -> tuple[Device | None, str]:
        """What device a `device=` argument (or `.to(x)` argument) denotes, and why."""
        text = literal_string(expr)
        if text is not None:
            dev = _device_from_string(text)
            return dev, f"device string {text!r}"
        if isinstance(expr, cst.Name) and expr.value == "None":
            return None, "device=None"
        if isinstance(expr, cst.Integer):
            return Device.GPU, f"device index {expr.value}"
        if isinstance(expr, cst.Call):
            qual = self.imports.resolve(expr.func)
            if qual == "torch.device" and expr.args:
                inner, why = self.device_of_argument(expr.args[0].value)
                return inner, why
        fact = self.fact(expr)
        text = string_text(fact)
        if text is not None and device_string(text):
            return string_device(text), f"device string {text!r}"
        if fact.value_kind == "device" and fact.device_value is not None:
            if fact.where is not None and fact.reason and "{code}" not in fact.reason:
                # A device the index followed to where it was given (a reason that quotes the code at its
                # origin is rendered only with that code at hand: `explain_steps`).
                return fact.device_value, f"{fact.reason} ({fact.where})"
            for step in (fact, fact.via):  # the join itself, or the step an assignment keeps of it
                if step is not None and step.reason.endswith(ON_ANOTHER_PATH):
                    return fact.device_value, step.reason
            return fact.device_value, "a device value"
        if fact.value_kind == "none":  # a device parameter every known call leaves None
            return None, fact.reason or "device=None"
        if isinstance(expr, cst.Attribute) and expr.attr.value == "device":
            dev, why, _assumed = _device_attribute(self.fact(expr.value))
            return dev, why
        name = dotted_name(expr)
        if name is not None and "cpu" in name.split(".")[-1].lower():
            return Device.CPU, f"`{name}` names the CPU"
        return Device.GPU, "a device that is not literally the CPU"

    def assumed_device(self, expr: cst.BaseExpression) -> bool:
        """A device argument taken for an accelerator only by convention (`x.device` of an unknown `x`)."""
        if isinstance(expr, cst.Attribute) and expr.attr.value == "device":
            return _device_attribute(self.fact(expr.value))[2]
        fact = self.fact(expr)
        return fact.value_kind == "device" and fact.convention

    def legacy_type(self, expr: cst.BaseExpression) -> tuple[bool, str] | None:
        """`torch.BoolTensor`, `torch.cuda.FloatTensor` or its string: (whether it is a GPU type, the
        torch dtype it holds); None for anything else (a dtype, a name of unknown value)."""
        text = literal_string(expr)
        qualified = text if text is not None else self.imports.resolve(expr)
        return legacy_tensor_type(qualified) if qualified is not None else None

    def literal_accelerator(self, expr: cst.BaseExpression) -> bool:
        """`"cuda"`, `"cuda:1"`, `torch.device("cuda")`, `0`: a device that cannot be the CPU at run time.

        A device variable may be the CPU on some machine, which decides whether a fix
        that pins memory (an accelerator-only operation) is safe.
        """
        text = literal_string(expr)
        if text is not None:
            return text.strip().lower().startswith(ACCELERATOR_NAMES)
        if isinstance(expr, cst.Integer):
            return True
        if isinstance(expr, cst.Call) and self.imports.resolve(expr.func) == "torch.device" and expr.args:
            return self.literal_accelerator(expr.args[0].value)
        return False

    def created_on_accelerator(self, fact: Fact) -> bool:
        """The tensor was made by `.cuda()`, `.to(<literal accelerator>)` or a factory with such a `device=`."""
        origin = fact.origin
        if not isinstance(origin, cst.Call):
            return False
        method = origin.func.attr.value if isinstance(origin.func, cst.Attribute) else None
        if method == "cuda":
            return True
        for position, arg in enumerate(origin.args):
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword == "device" or (keyword is None and method == "to" and position == 0):
                return self.literal_accelerator(arg.value)
        return False

    def param_fact(self, param: cst.Param) -> "Fact | Deferred":
        """A parameter's fact: its annotation and name, then what the project's callers pass
        (computed when the parameter is first read)."""
        name = param.name.value
        local = self._local_param_fact(param, name)
        if self.project is None:
            return self._lightning_batch(name) or self._library_object(param, local)
        function = self.binder.function_qualname()
        batch = self.project.lightning_batch(function, name) if function is not None else None
        if batch is not None:  # `training_step(self, batch, batch_idx)` of a `LightningModule`
            return batch
        if local.value_kind == "self":
            owner = self.binder.class_qualname()
            return replace(local, refs=frozenset({self.project.summary.qualified(owner)})) if owner else local
        return Deferred(lambda: self._project_param_fact(param, function, name, local))

    def _project_param_fact(self, param: cst.Param, function: str | None, name: str, local: Fact) -> Fact:
        assert self.project is not None
        if function is not None and (local.value_kind == "device" or local.value_kind == "python"
                                     and (self.settings.fact_for_name(name) or UNKNOWN).value_kind == "device"):
            # A device parameter's name or annotation alone says accelerator; the project's callers say
            # more: they may all leave it None, pass the CPU, or pass only an unknown tensor's `.device`.
            # So for one annotated as a string (`device: str = "cpu"`).
            found = self.project.param(function, name)
            if found is not None and found.value_kind in ("none", "device"):
                return replace(found, subject=name)
            if found is None and _defaults_to_none(param):
                # Only its name says accelerator, and calls may leave it None: transformers' rope
                # parameter functions, reached through a table of them, get `device=None` at init
                # and copy nothing (four precision audits read their `.to(device=device)` false).
                return device_value(Device.UNKNOWN, reason=f"`{name}` defaults to None, and no caller passes a device")
        # A Python value the project may know more of: unannotated, or a container annotated without
        # what it holds that this file can read (`tensor_list: list[torch.Tensor]`: what callers pass).
        container = param.annotation is not None and _container_annotation(param.annotation.annotation)
        open_value = local.value_kind == "python" and local.dtype is None and (param.annotation is None or container)
        if function is None or local.device is Device.NOT_TENSOR and local.value_kind not in (None, "import") \
                and not open_value:
            return local
        found = self.project.param(function, name)
        if found is None:
            return self._library_object(param, local)
        found = replace(found, subject=name)
        if container and local.value_kind == "python":
            # The annotation says container: the callers' answer counts only as one (its elements).
            if found.value_kind == "list" and found.items and found.items[0].is_tensor and \
                    _nested_list(param.annotation.annotation):
                # `images_list: list[list[torch.Tensor]]` given a list the project takes for one of tensors
                # (transformers' `reorder_images` returns either, by a flag): its elements are lists.
                return local
            return found if found.value_kind in ("list", "tuple", "dict") else local
        if found.is_tensor and not found.by_convention:
            return found
        if local.is_tensor:  # a naming convention (`*_cpu`) beats a convention learned elsewhere
            return local
        if found.is_tensor or (found.value_kind in _PROJECT_KINDS and not local.is_unknown_tensor):
            return found
        return local

    def _library_object(self, param: cst.Param, local: Fact) -> Fact:
        """A parameter annotated with a library's class (`wrapper: BatchPrefillWithRaggedKVCacheWrapper`)."""
        if local.device is not Device.UNKNOWN or local.tensor_like or param.annotation is None:
            return local
        classes = set()
        for name in annotation_names(param.annotation.annotation):
            qualified = self.imports.qualify(name)
            if qualified and "." in qualified and qualified.rsplit(".", 1)[-1][:1].isupper() \
                    and not qualified.startswith(("torch.", "numpy.", "typing.")):
                classes.add(qualified)
        if not classes:
            return local
        return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset(classes), subject=param.name.value)

    def _local_param_fact(self, param: cst.Param, name: str) -> Fact:
        if name in ("self", "cls"):
            return replace(PYTHON, value_kind="self")
        if param.annotation is not None:
            names = annotation_names(param.annotation.annotation)
            lasts = {n.rsplit(".", 1)[-1] for n in names}
            handles = {torch_handle_kind(self.imports.qualify(n)) for n in names} - {None}
            if len(handles) == 1:  # `event: torch.cuda.Event`, `stream: torch.Stream | None`
                kind = handles.pop()
                return Fact(Device.NOT_TENSOR, value_kind=kind, subject=name,
                            reason=f"annotated as a torch {kind}")
            if "Tensor" in lasts:
                by_name = self.settings.by_name(name)
                if by_name is not None:
                    dev, why = by_name
                    return Fact(dev, tensor_like=True, subject=name, reason=f"a `Tensor` parameter and {why}",
                                pinning_unknown=dev is Device.CPU,
                                from_name=isinstance(param.annotation.annotation, cst.BinaryOperation))
                return Fact(Device.UNKNOWN, tensor_like=True, subject=name, reason="annotated as `Tensor`")
            numbers = host_number_lists(param.annotation.annotation, name) if lasts <= {"list", "List"} else None
            if numbers is not None:
                # `ids: list[int]`: a Python list, which indexes a GPU tensor through a blocking copy.
                return numbers
            if "Module" in lasts or name in MODULE_NAMES:
                return replace(NN_MODULE, subject=name)
            if "device" in lasts:
                dev = Device.CPU if "cpu" in name else Device.GPU
                return _defaulted_device(device_value(dev, reason=f"a parameter named `{name}`"), param)
            if lasts and lasts <= NON_TENSOR_ANNOTATIONS:
                if lasts == {"ndarray"}:
                    return replace(NUMPY, subject=name)
                # For a Python value, `dtype` says which kind of number it is (None: maybe not a number).
                last = next(iter(lasts)) if len(lasts) == 1 else None
                return replace(PYTHON, subject=name, dtype=last if last in ("int", "float", "bool") else None)
        if name in MODULE_NAMES:
            return replace(NN_MODULE, subject=name)
        named = self.settings.fact_for_name(name)
        if named is not None and named.value_kind == "device":
            return _defaulted_device(named, param)
        return named or UNKNOWN

    def _evaluate(self, expr: cst.BaseExpression) -> Fact:
        evaluator = _EVAL.get(type(expr))
        if evaluator is None:
            return UNKNOWN
        return evaluator(self, expr)

    def _eval_name(self, expr: cst.Name) -> Fact:
        name = expr.value
        fact = self.binder.lookup(name)
        if fact is not None and not (self.project is not None and fact.value_kind in _DEFINITIONS):
            if fact.device is Device.UNKNOWN and fact.value_kind is None:
                backward = self.binder.loss(name)
                if backward is not None:  # `loss.backward()`, and nothing says where `loss` is
                    return replace(backpropagated("{code}", backward), subject=name)
            return fact
        if name == "None":
            return NONE
        if name in ("True", "False"):
            return PYTHON
        if self.project is not None:
            # An import, class or function the file binds: the project knows what it is.
            found = self.project.name(name, self.binder.function_qualname())
            if found is not None:
                return replace(found, subject=name)
            if fact is not None:
                return fact
        if name in MODULE_NAMES:
            return replace(NN_MODULE, subject=name)
        return self.settings.fact_for_name(name) or UNKNOWN

    def _eval_attribute(self, expr: cst.Attribute) -> Fact:
        attr = expr.attr.value
        if attr in METADATA_ATTRS:
            if attr == "device":
                # A device the program bound to this very name: `self.device = torch.device("cpu")` in
                # `__init__`, or `self.device.type == "cpu"` tested around the use.
                name = dotted_name(expr)
                bound = self.bound_fact(name) if name is not None else None
                if bound is not None and bound.value_kind == "device" and bound.device_value is not None:
                    return bound
                owner = self.fact(expr.value)
                if self.project is not None and owner.refs and owner.value_kind in ("object", "self"):
                    # `cache.device` of a project class: the accelerator its objects are given, with the
                    # steps that say so. Not the CPU: where the deployed code passes a device the index
                    # cannot follow, a test's `torch.device("cpu")` would be all it knows (SGLang's
                    # Cosmos rollout context).
                    found = self.project.attribute(_as_object(owner), "device")
                    if found is not None and found.value_kind == "device" and found.device_value is Device.GPU:
                        return replace(found, subject=name or "device")
                dev, why, assumed = _device_attribute(owner)
                return replace(device_value(dev, reason=why), convention=assumed)
            if attr == "dtype":
                return DTYPE
            return PYTHON
        if attr in SAVED_TENSORS and isinstance(expr.value, cst.Name) and self.project is not None:
            function = self.binder.function_qualname()
            saved = self.project.saved_tensors(function, expr.value.value) if function is not None else None
            if saved is not None:  # `x, offsets = ctx.saved_tensors` in an autograd function's backward
                return saved
        qual = self.imports.resolve(expr)
        if qual is not None:
            if self.project is not None and not qual.startswith(("torch.", "numpy.")):
                # `buffers.SCRATCH` after `from pkg import buffers`: a name of a project module.
                found = self.project.qualified(qual)
                if found is not None:
                    return replace(found, subject=dotted_name(expr) or expr.attr.value)
            return self._eval_qualified_attribute(qual)
        return self._attribute_of(expr.value, attr, dotted_name(expr))

    def _attribute_of(self, base: cst.BaseExpression, attr: str, name: str | None) -> Fact:
        """`base.attr` (spelled `name` when it is a dotted name), also read as `getattr(base, "attr")`."""
        bound: Fact | None = None
        if name is not None:
            bound = self.binder.lookup(name)
            if bound is None and name.startswith("self."):
                bound = self.binder.init_attribute(name)
                if bound is not None and bound.value_kind == "none" and self.project is not None:
                    bound = None  # `self.ev = None` in `__init__` and set elsewhere: the stores say what it holds
            # An assignment from something unknown is no evidence: it must not hide
            # what configuration and naming conventions say about the attribute.
            if bound is not None and bound.device is not Device.UNKNOWN:
                return self._declared_container(base, attr, bound) or bound
        owner = self.fact(base)
        if attr in TENSOR_ATTRS and owner.is_tensor:
            return owner
        if attr in RESULT_FIELDS and owner.is_tensor:  # `t.max(dim=1).values`
            return replace(owner, ndim=None, dtype=RESULT_FIELDS[attr] or owner.dtype, subject=name or attr)
        if attr in OUTPUT_FIELDS and owner.is_gpu:  # `out.loss` of a model's output, on its device
            return replace(owner, ndim=0 if attr == "loss" else None, dtype=OUTPUT_FIELDS[attr],
                           subject=name or attr)
        if owner.value_kind == "numpy":
            return NUMPY
        if attr in self.settings.gpu_attributes:
            return Fact(Device.GPU, tensor_like=True, subject=name or attr,
                        reason=f"attribute `{attr}` is listed in gpu-attributes")
        if attr in self.settings.cpu_attributes:
            return Fact(Device.CPU, tensor_like=True, subject=name or attr, pinning_unknown=True,
                        reason=f"attribute `{attr}` is listed in cpu-attributes")
        moved = moved_field(owner, name or attr)
        if self.project is not None and owner.refs:
            found = self.project.attribute(_as_object(owner), attr)
            # A tensor field of an object moved in place is where it was moved, whatever built it.
            if found is not None and not (moved is not None and (found.is_tensor or found.device is Device.UNKNOWN)):
                return replace(found, subject=name or attr)
        if moved is not None:  # `experience.action_mask` after `experience.to_device(device)`
            return moved
        if attr == "device_module":
            return Fact(Device.NOT_TENSOR, value_kind="device-module", subject=name or attr, from_name=True)
        if attr in MODULE_NAMES:
            return replace(NN_MODULE, subject=name)
        fact = self.settings.fact_for_name(attr)
        if fact is not None:
            return replace(fact, subject=name or attr)
        if self.project is not None and (bound is None or not bound.is_unknown_tensor) and not owner.refs \
                and owner.device is not Device.NOT_TENSOR or self.project is not None and owner.value_kind == "self":
            found = self.project.attribute_convention(attr)
            if found is not None:
                return replace(found, subject=name or attr)
        return bound if bound is not None else UNKNOWN

    def _getattr(self, base: cst.BaseExpression, attr: str) -> Fact:
        """`getattr(batch, "seq_lens", None)`: the attribute, as `batch.seq_lens` reads it (the default
        stands in only where an object has none, which a class declaring it never lacks)."""
        if attr in METADATA_ATTRS:
            if attr == "device":
                dev, why, assumed = _device_attribute(self.fact(base))
                return replace(device_value(dev, reason=why), convention=assumed)
            return DTYPE if attr == "dtype" else PYTHON
        qual = self.imports.resolve(base)
        if qual is not None:  # `getattr(torch, "bfloat16")`: a name of a module, as `torch.bfloat16` reads
            full = f"{qual}.{attr}"
            found = self.project.qualified(full) if self.project is not None and \
                not full.startswith(("torch.", "numpy.")) else None
            return found if found is not None else self._eval_qualified_attribute(full)
        spelled = dotted_name(base)
        return self._attribute_of(base, attr, f"{spelled}.{attr}" if spelled else None)

    def _declared_container(self, base: cst.BaseExpression, attr: str, bound: Fact) -> Fact | None:
        """`self.reqs`, bound here to an empty `{}` that its annotation declares `dict[str, Req]`: the
        project's container of alike elements, which knows what the elements are."""
        if self.project is None or not _empty_container(bound.origin):
            return None
        owner = self.fact(base)
        if not owner.refs:
            return None
        found = self.project.attribute(_as_object(owner), attr)
        if found is None or found.value_kind != "list" or not found.items:
            return None
        spelled = dotted_name(base)
        return replace(found, subject=f"{spelled}.{attr}" if spelled else attr)

    def _eval_qualified_attribute(self, qual: str) -> Fact:
        if qual in DEVICE_MODULES:
            return replace(PYTHON, value_kind="device-module")
        legacy = legacy_tensor_type(qual)
        if legacy is not None:  # `torch.cuda.FloatTensor`, a type that makes tensors on its device
            return tensor_type(*legacy)
        if qual.startswith("torch."):
            last = qual.rsplit(".", 1)[-1]
            if last in DTYPE_NAMES:
                # Its class goes with it, for a callee's `dtype=dtype` (`self._device_tensor(ids, torch.int32)`).
                return replace(DTYPE, dtype=DTYPE_NAMES[last]) if qual == f"torch.{last}" else DTYPE
            return replace(PYTHON, value_kind="torch-object")
        if qual.startswith("numpy."):
            return NUMPY
        return UNKNOWN

    def _eval_subscript(self, expr: cst.Subscript) -> Fact:
        base = self.fact(expr.value)
        if base.value_kind == "numpy":  # a slice keeps an array's rank; anything else may pick a scalar
            sliced = all(isinstance(element.slice, cst.Slice) for element in expr.slice)
            return replace(NUMPY, ndim=base.ndim) if sliced else NUMPY
        layer = module_in(base, sliced=len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Slice))
        if layer is not None:  # `self.layers[i]`, `self.layers[:n]`
            return layer
        if base.device is Device.UNKNOWN and base.value_kind is None and not base.tensor_like and len(expr.slice) == 1 \
                and isinstance(expr.slice[0].slice, cst.Index):
            mask = self.fact(expr.slice[0].slice.value)
            if mask.is_gpu and mask.dtype == "bool":
                # Of a value not known, only a tensor takes a mask (a Python container raises).
                return _indexed_on_the_gpu(expr, mask, ndim=1, dtype=None)
        if not (base.is_tensor or base.is_unknown_tensor):
            return self._container_entry(base, expr)
        ndim = base.ndim
        dtype = base.dtype
        gpu_index = None
        for element in expr.slice:
            index = element.slice
            if isinstance(index, cst.Slice):
                continue
            value = index.value
            if isinstance(value, cst.Name) and value.value == "None":
                ndim = ndim + 1 if ndim is not None else None
                continue
            if isinstance(value, cst.Ellipsis):
                continue
            idx_fact = self.fact(value)
            if idx_fact.is_tensor or idx_fact.is_unknown_tensor or isinstance(value, (cst.List, cst.Tuple)):
                # Advanced indexing: the rank depends on the index.
                ndim = 1 if idx_fact.dtype == "bool" and len(expr.slice) == 1 else None
                gpu_index = idx_fact if idx_fact.is_gpu and gpu_index is None else gpu_index
            elif ndim is not None:
                ndim -= 1
        if gpu_index is not None and base.is_unknown_tensor:
            return _indexed_on_the_gpu(expr, gpu_index, ndim=ndim, dtype=dtype)
        return replace(base, ndim=ndim, dtype=dtype)

    def _container_entry(self, base: Fact, expr: cst.Subscript) -> Fact:
        """`d["key"]`: the entry of a dict the project knows, else what that key holds across the repository."""
        key = literal_string(expr.slice[0].slice.value) if len(expr.slice) == 1 and isinstance(
            expr.slice[0].slice, cst.Index) and isinstance(expr.slice[0].slice.value, cst.SimpleString) else None
        if base.value_kind == "list" and base.items and len(expr.slice) == 1:
            # A list of alike elements (a comprehension the project saw): any element, or a slice of it.
            return base if isinstance(expr.slice[0].slice, cst.Slice) else base.items[0]
        if len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
            entry = dict_entry(base, key, whole=_built_here(base))
            if entry is not None:
                return entry
        if key is None or self.project is None:
            if base.value_kind == "tuple" and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
                index = expr.slice[0].slice.value
                if isinstance(index, cst.Integer):
                    position = int(index.value, 0)
                    return base.items[position] if position < len(base.items) else UNKNOWN
                if not isinstance(index, (cst.SimpleString, cst.ConcatenatedString)):
                    # `self.events[slot]` of a display the project saw (a ping-pong pair): an index
                    # known only at run time reads one of its items, as iterating it would.
                    return self.element_fact(base)
            if base.value_kind == "object" and self.project is not None and len(expr.slice) == 1 and \
                    isinstance(expr.slice[0].slice, cst.Index) and isinstance(expr.slice[0].slice.value, cst.Integer):
                # `topk_output[1]` of a project `NamedTuple`: the field at that position.
                fields = self.project.unpacked(base, None)
                position = int(expr.slice[0].slice.value.value, 0)
                return fields[position] if fields is not None and position < len(fields) else UNKNOWN
            return UNKNOWN
        if base.value_kind == "dict":
            for entry, fact in base.items:
                if entry == key:
                    return fact
        if base.value_kind == "kwargs":
            found = self._multimodal_input(base, key)
            if found is not None:
                return found
        declared = self.project.declared_entry(_as_object(base), key) if base.refs else None
        if declared is not None:
            return declared
        kept = self.project.host_input(key)
        if kept is not None:
            return replace(kept, subject=f"{base.subject}[{key!r}]" if base.subject else None)
        found = self.project.entry(key)
        return found if found is not None else UNKNOWN

    def _multimodal_input(self, kwargs: Fact, key: str) -> Fact | None:
        """`kwargs[key]` of a function's `**kwargs`, when the project declares `key` a multimodal input."""
        found = self.project.multimodal_input(key) if self.project is not None else None
        return replace(found, subject=f"{kwargs.subject}[{key!r}]") if found is not None else None

    def _eval_call(self, expr: cst.Call) -> Fact:
        qual = self.imports.resolve(expr.func)
        if qual is not None:
            if qual.startswith("torch."):
                return self._eval_torch_call(expr, qual)
            if qual == NAMESPACE and all(a.keyword is not None for a in expr.args):
                # A stand-in object (a unit test's `SimpleNamespace(device=torch.device("cpu"))`): the
                # project reads its attributes from what the call gives (`Inference.attribute`).
                fields = tuple(("field", a.keyword.value, self.fact(a.value)) for a in expr.args if a.keyword)
                return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({NAMESPACE}),
                            items=("exact", *fields))
            if self.project is not None and class_like(qual) and not qual.startswith("numpy.") and qual != NAMESPACE \
                    and any(a.keyword is not None for a in expr.args) and self.project.from_a_library(qual):
                fields = library_fields((a.keyword.value, self.fact(a.value)) for a in expr.args if a.keyword)
                if fields:  # `PackedSeqParams(cu_seqlens_q=cu, ...)`
                    return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({qual}), items=fields,
                                reason="created by {code}", origin=expr)
            if qual == "itertools.islice" and expr.args and not expr.args[0].star:
                return self.fact(expr.args[0].value)  # `islice(self.layers, start, end)`: the same elements
            if model_loader(qual) and (self.project is None or self.project.from_a_library(qual.rpartition(".")[0])):
                return self._loaded_model(expr)
            if qual.startswith("numpy."):
                return self._numpy_call(expr, qual[len("numpy."):])
            if arithmetic_call(qual) and expr.args and not any(a.star or a.keyword for a in expr.args):
                return combine([self.fact(a.value) for a in expr.args])
        func = expr.func
        if isinstance(func, cst.Attribute):
            return self._eval_method(expr, func.value, func.attr.value)
        if isinstance(func, cst.Name):
            builtin = func.value
            named = _getattr_name(expr) if builtin == "getattr" else None
            if named is not None and self.binder.lookup(builtin) is None:
                return self._getattr(expr.args[0].value, named)
            if builtin == "sum" and expr.args and not expr.args[0].star and expr.args[0].keyword is None \
                    and self.binder.lookup(builtin) is None:
                added = self._sum_of(expr.args[0].value)
                if added is not None:  # `sum(workloads[i] for i in part)`: a tensor, added up on the device
                    return replace(added, ndim=None, reason="added up on the device by {code}", origin=expr, via=added)
            if builtin in ("next", "iter") and expr.args and not expr.args[0].star and \
                    self.binder.lookup(builtin) is None:
                iterated = self.fact(expr.args[0].value)
                if iterated.value_kind == "object" and iterated.refs:
                    return self._iterator_step(iterated, "__next__" if builtin == "next" else "__iter__")
                return self.element_fact(iterated) if builtin == "next" else iterated  # `next(iter(loader))`
            if builtin in ("len", "int", "float", "bool", "str", "range", "list", "tuple", "dict", "set",
                           "sorted", "enumerate", "zip", "repr", "isinstance", "hasattr", "getattr", "id",
                           "type", "print", "format", "round", "abs") and self.binder.lookup(builtin) is None:
                if builtin in ("abs", "round") and expr.args:
                    return self.fact(expr.args[0].value)
                if builtin == "dict" and not expr.args:
                    return EMPTY_DICT  # `sums = dict()`, then `sums[name] = t`: as `{}` (and as the index reads it)
                if builtin == "str" and len(expr.args) == 1 and not expr.args[0].star:
                    # `str(torch.device(device))` names the same device (`"cuda:0"`, `"cpu"`).
                    named = self.fact(expr.args[0].value)
                    if named.value_kind == "device":
                        return named
                if builtin in ("zip", "enumerate") and expr.args and not any(a.star for a in expr.args):
                    # Iterated in step: each element is a tuple of the iterables' elements.
                    parts = [self.fact(a.value) for a in expr.args if a.keyword is None]
                    if builtin == "enumerate":
                        parts = [RANGE, *parts[:1]]
                    return Fact(Device.NOT_TENSOR, value_kind="zip", items=tuple(parts))
                if builtin == "list" and len(expr.args) == 1 and not expr.args[0].star \
                        and self.fact(expr.args[0].value).value_kind == "range":
                    # `list(range(n))`: a list of Python ints (as an index it is a host list).
                    return Fact(Device.NOT_TENSOR, value_kind="list", items=(INT_NUMBER,),
                                reason="created by {code}", origin=expr)
                if builtin in CONVERTED_NUMBERS:
                    # A number of that type whatever it is given, kept through lists and fields:
                    # `t[lengths[i]] = v` stores one element from the host.
                    return replace(PYTHON, dtype=CONVERTED_NUMBERS[builtin])
                return RANGE if builtin == "range" else PYTHON
        if isinstance(func, (cst.Name, cst.Subscript)):
            callee = self.fact(func)
            if callee.value_kind == "tensor-type":
                return made_by_tensor_type(callee, legacy_ndim(expr, "data" in callee.items), "created by {code}", expr)
            if self.project is not None and callee.refs and isinstance(func, cst.Name):
                result = self._project_call(expr, callee, None)
                if result is not None and result.is_unknown_tensor:  # a tensor of no known device
                    result = self._loss_call(expr, func.value) or result
                if result is not None:
                    return result
            if nn_module(callee):  # `model(input_ids)`, `self.layers[i](hidden)`
                return self._module_call(expr, callee)
            placed = placed_output(callee, "{code}")
            if placed is not None:  # `model(x)` of a project module moved with `model.cuda()`
                return replace(placed, origin=expr)
            # (a function the project knows lands here only when what it returns says nothing; a
            # parameter annotated `Callable[..., Tensor]` is a Python value of no known kind)
            loss = self._loss_call(expr, func.value) if isinstance(func, cst.Name) and _maybe_a_function(callee) \
                else None
            if loss is not None:  # `criterion(output, target)`
                return loss
        return self._made_on_the_host(expr)

    def _placed_by_library(self, expr: cst.Call, receiver: cst.BaseExpression, method: str) -> Fact | None:
        """`super().method(x)`, or `self.method(x)` where the class does not define it, in a class
        derived directly from a library class whose `method` moves `x` to the device
        (`PLACING_METHODS`): `x` there (`placed_by_library`)."""
        is_super = isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Name) and \
            receiver.func.value == "super" and not receiver.args
        is_self = isinstance(receiver, cst.Name) and receiver.value == "self"
        where = self.binder.method_of()
        if not (is_super or is_self) or where is None or not expr.args or expr.args[0].star or expr.args[0].keyword:
            return None
        node = where[0]
        if is_self and any(isinstance(s, cst.FunctionDef) and s.name.value == method for s in node.body.body):
            return None  # the class's own
        if not any(self.imports.resolve(base.value) in PLACING_METHODS[method] for base in node.bases):
            return None
        placed = placed_by_library(self.fact(expr.args[0].value), "{code}")
        return replace(placed, origin=expr)

    def _gradient_parameters(self, expr: cst.Call) -> Fact | None:
        """What a gradient-norm call is given to clip: the module of `model.parameters()`, or tensors."""
        given = next((a.value for a in expr.args if a.keyword is None and not a.star), None) or \
            keyword_value(expr, "parameters")
        if given is None:
            return None
        if isinstance(given, cst.Call) and isinstance(given.func, cst.Attribute) and \
                given.func.attr.value == "parameters":
            return self.fact(given.func.value)
        fact = self.fact(given)
        if fact.value_kind in ("list", "tuple") and fact.items and isinstance(fact.items[0], Fact):
            fact = fact.items[0]  # `get_total_norm([w.grad for w in weights])`
        return fact if fact.is_tensor else None

    def _loss_call(self, expr: cst.Call, name: str) -> Fact | None:
        """A loss function nobody here knows, called on GPU tensors (`loss_output`)."""
        found = loss_output(name, (self.fact(a.value) for a in expr.args if not a.star), "{code}")
        return replace(found, origin=expr) if found is not None else None

    def _sum_of(self, iterable: cst.BaseExpression) -> Fact | None:
        """The GPU tensor that builtin `sum` adds up from `iterable`: the elements of a comprehension or
        a display, or the rows of a GPU tensor; None for anything else."""
        if isinstance(iterable, (cst.GeneratorExp, cst.ListComp)):
            element = self.fact(iterable.elt)
        elif isinstance(iterable, (cst.List, cst.Tuple)) and iterable.elements:
            element = functools.reduce(join, (self.fact(e.value) for e in iterable.elements))
        else:
            element = self.fact(iterable)
            if element.ndim == 0:
                return None  # a 0-dim tensor does not iterate
        return element if element.is_gpu and element.is_tensor else None

    def _made_on_the_host(self, expr: cst.Call) -> Fact:
        """A call nobody here knows that passes `device="cpu"` (SGLang's grammar backends'
        `allocate_vocab_mask(..., device="cpu")`): what it makes, if a tensor, is on the CPU. A
        convention: the library may use the device for something else, or pin what it makes."""
        argument = keyword_value(expr, "device")
        if argument is None or class_like(call_name(expr) or ""):
            return UNKNOWN  # `SentenceTransformer(name, device="cpu")`: an object, not a tensor
        if self.device_of_argument(argument)[0] is not Device.CPU:
            return UNKNOWN
        return Fact(Device.CPU, tensor_like=True, pinning_unknown=True, convention=True,
                    reason="made by {code}, which is given the CPU as its device", origin=expr)

    def _module_call(self, expr: cst.Call, module: Fact, method: str | None = None) -> Fact:
        """A module called (or its `method`): a tensor where its first argument is (`module_output`)."""
        inputs = (self.fact(a.value) for a in expr.args if not a.star)
        found = module_output(module, inputs, "{code}", method)
        return replace(found, origin=expr) if found.is_tensor or found.is_unknown_tensor else found

    def _project_call(self, expr: cst.Call, callee: Fact, receiver: Fact | None) -> Fact | None:
        """A call into the project (a class, a function, a method): what the index says it returns."""
        assert self.project is not None
        if callee.value_kind not in ("class", "callable", "object"):
            return None
        args = [self._argument_fact(a.value) for a in expr.args if a.keyword is None and not a.star]
        kwargs = {a.keyword.value: self._argument_fact(a.value) for a in expr.args if a.keyword is not None}
        complete = not any(a.star for a in expr.args)
        if not complete:
            args, kwargs = [], {}
        found = self.project.call(callee, _as_object(receiver) if receiver is not None else None, args, kwargs,
                                  complete, building=self._building_a_module())
        return replace(found, origin=expr if found.where is None else found.origin) if found is not None else None

    def _argument_fact(self, expr: cst.BaseExpression) -> Fact:
        """An argument of a call into the project; a string literal keeps its text (`"cuda"`, `"cpu"`),
        as the index's own values do, so the callee can tell a device string."""
        text = literal_string(expr)
        if text is not None:
            return Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason=text)
        return self.fact(expr)

    def _eval_torch_call(self, expr: cst.Call, qual: str) -> Fact:
        if qual in DEVICE_ALLOCATORS and any(a.keyword is not None and a.keyword.value == "device" for a in expr.args):
            qual = DEVICE_ALLOCATORS[qual]
        legacy = made_by_constructor(qual)
        if legacy is not None:  # `torch.cuda.FloatTensor([norm])`: a tensor on the type's device
            return made_by_tensor_type(tensor_type(*legacy), legacy_ndim(expr), "created by {code}", expr)
        last = qual.rsplit(".", 1)[-1]
        namespace = qual.rsplit(".", 1)[0]
        if namespace == "torch.nn" and last[:1].isupper() and last not in NN_NON_MODULES:
            # `nn.Linear(...)`: a module object, whose call `module_output` answers (as the index's).
            return Fact(Device.NOT_TENSOR, value_kind="object", refs=frozenset({qual}), items=("exact",))
        if qual == "torch.device":
            dev, why = self.device_of_argument(expr.args[0].value) if expr.args else (Device.GPU, "")
            return device_value(dev or Device.GPU, reason=f"`torch.device` of {why}", origin=expr)
        if last in STREAM_HANDLES or last in EVENT_HANDLES:
            kind = "stream" if last in STREAM_HANDLES else "event"
            return replace(PYTHON, value_kind=kind, reason="created by {code}", origin=expr)
        if namespace.startswith("torch.cuda") or namespace.startswith("torch.accelerator"):
            return replace(PYTHON, value_kind="torch-object")
        if last == "get_device_module":
            if not cuda_device_module(literal_string(expr.args[0].value) if expr.args else None):
                return PYTHON
            return replace(PYTHON, value_kind="device-module", reason="created by {code}", origin=expr)
        if module_state_class(qual):
            made = expr.args[0].value if expr.args and expr.args[0].star == "" else None
            return module_state(self.fact(made) if made is not None else UNKNOWN)
        if qual in DATA_LOADERS:
            return loader_batches(self._host_memory(expr), "{code}", expr)
        if qual in GRADIENT_NORM_FUNCTIONS:  # `clip_grad_norm_(model.parameters(), 1.0)`
            return replace(gradient_norm(self._gradient_parameters(expr), "{code}"), origin=expr)
        if torch_returns_device(qual):
            return device_value(Device.UNKNOWN, reason="the default device, {code}", origin=expr)
        if torch_returns_python(qual) or last[:1].isupper():
            return PYTHON
        if namespace == "torch" and last in CPU_FACTORIES:
            return Fact(Device.CPU, reason="created by {code} (CPU memory)", origin=expr, ndim=None)
        if namespace == "torch" and (last in FACTORIES or last in LIKE_FACTORIES):
            return self._eval_factory(expr, last)
        out = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "out"), None)
        if out is not None:
            # `torch.cat(parts, out=pinned)` writes into `out` and returns it: pinned memory stays pinned.
            written = self.fact(out)
            if written.is_tensor:
                return written
        # Any other torch function: its result lives where its tensor inputs live.
        inputs = [self.fact(arg.value) for arg in expr.args if arg.keyword is None or arg.keyword.value in
                  TENSOR_KEYWORDS]
        result = combine(spread_elements(inputs))
        if namespace == "torch" and last in SPLITTING_OPS and (result.is_tensor or result.is_unknown_tensor):
            return pieces_of(result, last)  # `torch.split(x, sizes)`: a tuple of tensors
        if namespace == "torch" and last in JOINING_OPS and result.device is Device.NOT_TENSOR:
            # `torch.cat((q, k, v))` of values not known here: a tensor wherever they are.
            result = Fact(Device.UNKNOWN, tensor_like=True)
        return shape_result(result, last, expr)

    @staticmethod
    def _pinning(expr: cst.Call, pin_arg: cst.BaseExpression | None) -> tuple[bool, bool]:
        """Whether the call's `pin_memory=` (`pin_arg`) pins (True, or a flag that holds wherever a GPU is),
        and whether it is decided at run time (`pin_memory=self.pin`, `**kwargs`): not provably pageable."""
        pin = pin_arg is not None and (is_true_literal(pin_arg) or holds_with_a_gpu(pin_arg))
        pin_unknown = (pin_arg is not None and not pin and not is_false_literal(pin_arg)) or \
            any(a.star == "**" for a in expr.args)
        return pin, pin_unknown

    def _host_memory(self, expr: cst.Call) -> Fact:
        """Host memory as the call's `pin_memory=` makes it."""
        pin, pin_unknown = self._pinning(expr, keyword_value(expr, "pin_memory"))
        return Fact(Device.PINNED) if pin else Fact(Device.CPU, pinning_unknown=pin_unknown)

    def _eval_factory(self, expr: cst.Call, name: str) -> Fact:
        device_arg = next((a for a in expr.args if a.keyword is not None and a.keyword.value == "device"), None)
        pin_arg = keyword_value(expr, "pin_memory")
        pin, pin_unknown = self._pinning(expr, pin_arg)
        dtype = _dtype_kwarg(expr)
        ndim = _factory_ndim(expr, name, self._holds_int)
        if dtype is None:
            dtype = _factory_default_dtype(expr, name, self._holds_int)
        if device_arg is not None:
            return self._factory_on(device_arg.value, expr, "created by {code}", ndim, dtype, pin, pin_unknown)
        if any(a.star == "**" for a in expr.args):
            # `torch.zeros(n, **factory_kwargs)`: the keywords may carry a device.
            return Fact(Device.UNKNOWN, tensor_like=True, ndim=ndim, dtype=dtype)
        if name in LIKE_FACTORIES or (name == "as_tensor" and expr.args):
            source = self.fact(expr.args[0].value) if expr.args else UNKNOWN
            if pin_arg is not None and source.is_cpu:
                # `torch.empty_like(cpu_perm, pin_memory=PIN_MEMORY)`: new host memory, pinned as asked.
                return Fact(Device.PINNED if pin else Device.CPU, ndim=ndim if ndim is not None else source.ndim,
                            dtype=dtype or source.dtype, reason="created by {code}", origin=expr,
                            pinning_unknown=pin_unknown)
            if source.is_tensor or source.is_unknown_tensor:
                return replace(source, ndim=ndim if ndim is not None else source.ndim, dtype=dtype or source.dtype)
            if name in LIKE_FACTORIES:
                return Fact(Device.UNKNOWN, tensor_like=True)
        context = self.binder.device_context()
        if context is not None:
            # Named, so that an assignment's evidence keeps this step: the line alone does not show it.
            block = f"`with {dotted_name(context)}:`" if dotted_name(context) else "`with torch.device(...):`"
            return replace(self._factory_on(context, expr, f"created inside {block}", ndim, dtype, pin, pin_unknown),
                           subject=f"torch.{name}(...)")
        if pin_arg is None and self._building_a_module():
            return Fact(Device.UNKNOWN, tensor_like=True, ndim=ndim, dtype=dtype, origin=expr,
                        subject=f"torch.{name}(...)",
                        reason="no `device=` while an `nn.Module` is built: its builder's `with torch.device(...)` "
                               "decides where")
        return Fact(Device.PINNED if pin else Device.CPU, ndim=ndim, dtype=dtype,
                    reason="created by {code} with no `device=`", origin=expr, pinning_unknown=pin_unknown)

    def _building_a_module(self) -> bool:
        """The walk is in `__init__` of an `nn.Module` class, or in a method only `__init__` calls."""
        method = self.binder.method_of()
        if method is None:
            return False
        node, owner, name = method
        if self.project is not None:  # the summary has found the constructor's methods already
            known = self.project.builds_module(f"{owner}.{name}")
            if known is not None:
                return known
        built = self._built.get(id(node))
        if built is None:
            built = self._built[id(node)] = construction_methods(node) if self._module_class(node, owner) \
                else frozenset()
        return name in built

    def _module_class(self, node: cst.ClassDef, owner: str) -> bool:
        if self.project is not None:
            return self.project.module_class(owner)
        return any(self.imports.resolve(base.value) in NN_MODULE_CLASSES for base in node.bases)

    def _factory_on(self, device: cst.BaseExpression, expr: cst.Call, reason: str, ndim: int | None,
                    dtype: str | None, pin: bool, pin_unknown: bool) -> Fact:
        """What a factory makes on `device` (its `device=`, or the device of an enclosing `with`)."""
        dev, why = self.device_of_argument(device)
        if dev is Device.CPU or dev is None:
            return Fact(Device.PINNED if pin else Device.CPU, ndim=ndim, dtype=dtype,
                        reason=reason, origin=expr, pinning_unknown=pin_unknown)
        assumed = self.assumed_device(device)
        # A device that is the CPU on another path: the step that says why it counts as the accelerator.
        via = None
        if assumed:
            chosen = self.fact(device)
            if why.endswith(ON_ANOTHER_PATH):
                via = chosen if chosen.reason.endswith(ON_ANOTHER_PATH) else chosen.via
            elif chosen.by_convention and chosen.reason:
                # `torch.zeros(n, device=w.device)`: the device is the convention the finding rests on,
                # so the evidence names it, at its line (`x.device` of a value nobody knows).
                via = chosen if chosen.origin is not None else \
                    replace(chosen, origin=device, subject=chosen.subject or dotted_name(device))
        return Fact(Device.GPU, ndim=ndim, dtype=dtype, reason=reason, origin=expr, convention=assumed, via=via)

    def device_context(self, expr: cst.BaseExpression) -> bool:
        """`torch.device(d)`, or a name bound to a device: a `with` of it sets where factories allocate.
        (`torch.cuda.device(i)` only selects the current GPU, and is not one.)"""
        if isinstance(expr, cst.Call):
            return self.imports.resolve(expr.func) == "torch.device"
        return self.fact(expr).value_kind == "device"

    def _eval_method(self, expr: cst.Call, receiver: cst.BaseExpression, method: str) -> Fact:
        placed = self._placed_by_library(expr, receiver, method) if method in PLACING_METHODS else None
        if placed is not None:  # `super()._prepare_inputs(prompt_inputs)` of a Hugging Face `Trainer`
            return placed
        owner = self.fact(receiver)
        if method in PREPARING_NAMES:
            spelled = dotted_name(receiver)
            if preparing_method(owner.refs, spelled.rsplit(".", 1)[-1] if spelled else None, method):
                return self._prepared(expr)  # `accelerator.prepare(model, optimizer, loader)`
        if method in GRADIENT_NORM_METHODS and not (owner.is_tensor or owner.is_unknown_tensor) and \
                not (self.project is not None and owner.refs and self.project.attribute(_as_object(owner), method)):
            # `accelerator.clip_grad_norm_(model.parameters(), 1.0)`, FSDP's `model.clip_grad_norm_(1.0)`
            module = owner if nn_module(owner) or module_placement(owner) is not None else None
            return replace(gradient_norm(module or self._gradient_parameters(expr), "{code}"), origin=expr)
        if owner.device is Device.NOT_TENSOR:
            if method in MODULE_MOVES and self.project is not None and self.project.module_object(owner, method):
                return self._moved_module(owner, method, expr)  # `Net().cuda()` of a project module
            if owner.value_kind == "numpy":
                return replace(NUMPY, ndim=owner.ndim) if method in ("astype", "copy") else NUMPY
            if nn_module(owner) and method in MODULE_MOVES:
                return self._moved_module(owner, method, expr)
            if owner.value_kind == "device-module" and (method in EVENT_HANDLES or method in STREAM_HANDLES):
                kind = "stream" if method in STREAM_HANDLES else "event"
                return replace(PYTHON, value_kind=kind, reason="created by {code}", origin=expr)
            if owner.value_kind == "kwargs":  # `kwargs.pop("pixel_values", None)`
                key = literal_string(expr.args[0].value) if expr.args and method in ("pop", "get") else None
                return (self._multimodal_input(owner, key) if key is not None else None) or PYTHON
            if owner.value_kind == "dict" and method in ("get", "pop") and expr.args:
                key = literal_string(expr.args[0].value) if isinstance(expr.args[0].value, cst.SimpleString) else None
                entry = dict_entry(owner, key, whole=_built_here(owner))  # `d.get("k")`
                if entry is not None:
                    return entry
            viewed = container_method(owner, method, built_here=_built_here(owner))
            if viewed is not None:
                return viewed
            if self.project is not None and owner.refs:
                callee = self.project.attribute(_as_object(owner), method)
                if callee is not None and callee.value_kind == "tensor-type":
                    # DeepSpeed's `get_accelerator().FloatTensor([norm])`: the platform's legacy type.
                    return made_by_tensor_type(callee, legacy_ndim(expr, "data" in callee.items), "created by {code}",
                                               expr)
                result = self._project_call(expr, callee, owner) if callee is not None else None
                if result is not None:
                    return result
            if nn_module(owner):  # `self.model.compute_logits(hidden)`
                return self._module_call(expr, owner, method)
            if owner.value_kind in ("self", "object"):  # `self.model(input_ids)`: the attribute may be a module
                callee = self.fact(expr.func)
                if nn_module(callee):
                    return self._module_call(expr, callee)
                placed = placed_output(callee, "{code}")
                if placed is not None:  # `self.model(x)` of a project module placed on the GPU
                    return replace(placed, origin=expr)
                loss = self._loss_call(expr, method) if _maybe_a_function(callee) else None
                if loss is not None:  # `self._loss_fn(logits, labels)`
                    return loss
            if owner.value_kind in ("self", "torch-object", "object", "class", "module", "nn-module", "device-module"):
                return self._made_on_the_host(expr)
            return PYTHON
        if method in HOST_VALUE_METHODS or method in METADATA_METHODS:
            return PYTHON
        if method == "numpy":
            return replace(NUMPY, ndim=owner.ndim if owner.is_tensor or owner.is_unknown_tensor else None)
        if method == "cuda":
            return Fact(Device.GPU, ndim=owner.ndim, dtype=owner.dtype, reason="moved by {code}", origin=expr)
        if method == "cpu":
            return Fact(Device.CPU, ndim=owner.ndim, dtype=owner.dtype, reason="moved by {code}", origin=expr)
        if method == "pin_memory":
            return Fact(Device.PINNED, ndim=owner.ndim, dtype=owner.dtype, reason="pinned by {code}", origin=expr)
        if method == "to":
            return self._eval_to(expr, owner)
        if method == "type_as" and len(expr.args) == 1 and expr.args[0].keyword is None:
            return moved_like(owner, self.fact(expr.args[0].value), "moved by {code}", expr)
        if method == "type" and expr.args and (owner.is_tensor or owner.is_unknown_tensor):
            legacy = self.legacy_type(expr.args[0].value)
            if legacy is not None:  # `mask.type(torch.BoolTensor)`: a copy to that type's device
                on_gpu, dtype = legacy
                return Fact(Device.GPU if on_gpu else Device.CPU, ndim=owner.ndim, dtype=DTYPE_NAMES[dtype],
                            reason="converted by {code}", origin=expr)
        if method in NEW_METHODS:
            device_arg = next((a for a in expr.args if a.keyword is not None and a.keyword.value == "device"), None)
            if device_arg is not None:
                dev, _ = self.device_of_argument(device_arg.value)
                if dev is not None:
                    return Fact(dev, reason="created by {code}", origin=expr, dtype=_dtype_kwarg(expr),
                                convention=dev is Device.GPU and self.assumed_device(device_arg.value))
            pin_arg = keyword_value(expr, "pin_memory")
            if device_arg is None and pin_arg is not None and not owner.is_gpu and not is_false_literal(pin_arg):
                # `src.new_empty(src.shape, pin_memory=True)`: a staging buffer in pinned host memory.
                if is_true_literal(pin_arg) or holds_with_a_gpu(pin_arg):
                    return Fact(Device.PINNED, reason="created by {code}", origin=expr, dtype=_dtype_kwarg(expr))
                return Fact(Device.CPU, pinning_unknown=True, reason="created by {code}", origin=expr)
            if owner.is_tensor or owner.is_unknown_tensor:
                return replace(owner if owner.device is not Device.PINNED else replace(owner, device=Device.CPU),
                               ndim=None, dtype=_dtype_kwarg(expr) or owner.dtype)
            return UNKNOWN
        if method in SPLITTING_OPS and (owner.is_tensor or owner.is_unknown_tensor):
            return pieces_of(owner, method)  # `embeds.split(sizes)`: a tuple of tensors
        if owner.is_tensor or owner.is_unknown_tensor:
            result = owner
            # A view shares the pinned memory, and an in-place method (`copy_`, `fill_`) returns its receiver.
            if owner.device is Device.PINNED and method not in SHARES_MEMORY and not method.endswith("_"):
                result = replace(owner, device=Device.CPU)
            return shape_result(result, method, expr, receiver_fact=owner)
        if method in TENSOR_ONLY_CASTS and not expr.args:
            dtype = result_dtype(method, None, by_method=True, arguments=0)
            return Fact(Device.UNKNOWN, tensor_like=True, ndim=owner.ndim, dtype=dtype)
        return self._made_on_the_host(expr)

    def _numpy_call(self, expr: cst.Call, name: str) -> Fact:
        """`numpy.<name>(...)`: an array, whose rank is known where the call always makes a vector
        (`np.arange(n)`, `np.cumsum(lens)` or `np.repeat(a, k)` with no axis, `np.array([1, 2])`)."""
        positional = [a.value for a in expr.args if a.keyword is None and not a.star]
        if any(a.keyword is not None and a.keyword.value == "axis" or a.star for a in expr.args):
            return NUMPY
        if name in ("arange", "flatnonzero") or name in ("cumsum", "cumprod") and len(positional) == 1 or \
                name == "repeat" and len(positional) == 2:
            return replace(NUMPY, ndim=1)
        if name in ("array", "asarray") and positional:
            depth = _list_depth(positional[0])
            if depth is None and is_host_list(self.fact(positional[0])):
                depth = 1
            return replace(NUMPY, ndim=depth) if depth else NUMPY
        return NUMPY

    def _holds_int(self, expr: cst.BaseExpression) -> bool:
        """A name or attribute known to hold one Python integer (a factory's size)."""
        fact = self.fact(expr)
        return fact.value_kind == "python" and fact.dtype == "int"

    def _iterator_step(self, iterator: Fact, dunder: str) -> Fact:
        """`next(it)` (or `iter(it)`) of a project object: what its class's `__next__` (`__iter__`) returns."""
        if self.project is None:
            return UNKNOWN
        callee = self.project.attribute(_as_object(iterator), dunder)
        found = self.project.call(callee, _as_object(iterator), [], {}, complete=True) if callee is not None else None
        return found if found is not None else UNKNOWN

    def _lightning_batch(self, name: str) -> Fact | None:
        """Without the project's index: the batch of a step hook of a class that spells a `LightningModule`
        base itself (`Inference.lightning_batch`)."""
        where = self.binder.method_of()
        if where is None or where[2] not in LIGHTNING_STEP_HOOKS:
            return None
        node = where[0]
        method = next((s for s in node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == where[2]), None)
        params = method.params.params if method is not None else ()
        if len(params) < 2 or params[1].name.value != name or not self.in_lightning_class():
            return None
        return hooked_batch(where[2], name)

    def in_lightning_class(self) -> bool:
        """The walk is in a method of a class that spells a `LightningModule` base itself."""
        where = self.binder.method_of()
        return where is not None and any(self.imports.resolve(base.value) in LIGHTNING_MODULES
                                         for base in where[0].bases)

    def _prepared(self, expr: cst.Call) -> Fact:
        """`model, opt, loader = accelerator.prepare(model, opt, loader)`: each argument as the launcher
        returns it (`prepared_by_launcher`); one argument comes back alone, several as a tuple."""
        given = [a.value for a in expr.args if a.keyword is None and not a.star]
        if len(given) != len(expr.args):
            return UNKNOWN
        loaders = isinstance(expr.func, cst.Attribute) and expr.func.attr.value in LOADER_PREPARERS
        parts = [prepared_by_launcher(self.fact(a), dotted_name(a), "{code}", origin=expr, loaders=loaders)
                 for a in given]
        return parts[0] if len(parts) == 1 else Fact(Device.NOT_TENSOR, value_kind="tuple", items=tuple(parts))

    def _loaded_model(self, expr: cst.Call) -> Fact:
        """`AutoModelForCausalLM.from_pretrained(name, device_map="cuda")`: a module of a class not known
        here, placed where `device_map=` puts it (a device; `"auto"`: the accelerators) or where an
        enclosing `with torch.device(d):` builds it; placed nowhere known otherwise."""
        device_map = keyword_value(expr, "device_map")
        where = device_map if device_map is not None and not isinstance(device_map, cst.Dict) else \
            self.binder.device_context()
        if where is None:
            return NN_MODULE
        if literal_string(where) in DISPATCHING_DEVICE_MAPS:
            return placed_module(NN_MODULE, Device.GPU, "loaded by {code} across the accelerators",
                                 convention=True, origin=expr)
        dev, why = self.device_of_argument(where)
        if dev not in (Device.GPU, Device.CPU):
            return NN_MODULE
        how = "loaded by {code} onto" if where is device_map else "loaded by {code} inside a `with` of"
        assumed = literal_string(where) is None or self.assumed_device(where)
        return placed_module(NN_MODULE, dev, f"{how} {why}", origin=expr, convention=dev is Device.GPU and assumed)

    def _moved_module(self, module: Fact, method: str, expr: cst.Call) -> Fact:
        """`model.cuda()`, `model.to(device)`: the module, placed where it was moved (`placed_module`);
        `model.eval()`, `model.half()`, `model.to(torch.bfloat16)`: the module as it was."""
        if method not in ("cuda", "cpu", "to"):
            return module
        moved = self._eval_to(expr, Fact(Device.UNKNOWN, tensor_like=True)) if method == "to" else \
            Fact(Device.GPU if method == "cuda" else Device.CPU)
        if not moved.is_tensor:
            return module
        where = Device.CPU if moved.is_cpu else Device.GPU
        return placed_module(module, where, f"moved to the {'CPU' if where is Device.CPU else 'GPU'} by {{code}}",
                             convention=moved.convention, origin=expr)

    def _eval_to(self, expr: cst.Call, owner: Fact) -> Fact:
        target: Device | None = None
        why = ""
        dtype = owner.dtype
        for arg in expr.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword in ("non_blocking", "copy", "memory_format"):
                continue
            if keyword == "dtype":
                dtype = _dtype_of(arg.value, self.imports) or None
                continue
            if self.fact(arg.value).value_kind == "none":
                continue  # `.to(None)`, `.to(device=None)`: no move
            kind, dev = self._classify_to_argument(arg.value)
            if kind == "device" or keyword == "device":
                if kind != "device":
                    dev, why = self.device_of_argument(arg.value)
                target = dev
                why = why or "to a device"
            elif kind == "tensor":
                target = dev
            elif kind == "dtype":
                dtype = _dtype_of(arg.value, self.imports) or None
            else:
                return Fact(Device.UNKNOWN, tensor_like=owner.is_tensor or owner.is_unknown_tensor)
        if target is None:
            if dtype in ("int", "bool") and owner.device is Device.UNKNOWN:
                # A module's `.to(dtype)` takes only floating types: `.to(torch.int64)` of a value not known
                # is a tensor.
                return replace(owner, dtype=dtype, tensor_like=True)
            return replace(owner, dtype=dtype)
        if not (owner.is_tensor or owner.is_unknown_tensor or owner.device is Device.UNKNOWN):
            return owner
        if target is Device.CPU and owner.is_gpu and any(
            a.keyword is not None and a.keyword.value == "non_blocking" and is_true_literal(a.value) for a in expr.args
        ):
            target = Device.PINNED  # `_to_copy` allocates a pinned result for a non-blocking D2H copy
        assumed = target is Device.GPU and any(self.assumed_device(a.value) for a in expr.args
                                               if a.keyword is None or a.keyword.value == "device")
        return Fact(target, ndim=owner.ndim, dtype=dtype, reason="moved by {code}", origin=expr, convention=assumed)

    def _classify_to_argument(self, value: cst.BaseExpression) -> tuple[str, Device | None]:
        """Is a positional `.to(x)` argument a device, a dtype, or a tensor?"""
        if literal_string(value) is not None:
            return "device", self.device_of_argument(value)[0]
        if _dtype_of(value, self.imports) is not None:
            return "dtype", None
        if isinstance(value, cst.Call) and self.imports.resolve(value.func) == "torch.device":
            return "device", self.device_of_argument(value)[0]
        if isinstance(value, cst.Attribute) and value.attr.value == "device":
            return "device", self.device_of_argument(value)[0]
        if isinstance(value, cst.Attribute) and value.attr.value == "dtype":
            return "dtype", None
        fact = self.fact(value)
        if fact.value_kind == "device":
            return "device", fact.device_value
        if fact.value_kind == "dtype":
            return "dtype", None
        if fact.is_tensor:
            return "tensor", Device.CPU if fact.is_cpu else fact.device
        if isinstance(value, cst.Integer):
            return "device", Device.GPU
        return "unknown", None

    def element_fact(self, iterable: Fact) -> Fact:
        if iterable.value_kind == "range":
            return INT_NUMBER
        layer = module_in(iterable)
        if layer is not None:  # `for layer in self.layers`
            return layer
        if iterable.value_kind == "zip":
            return Fact(Device.NOT_TENSOR, value_kind="tuple", items=tuple(self.element_fact(i) for i in iterable.items))
        if iterable.is_tensor or iterable.is_unknown_tensor:
            ndim = iterable.ndim - 1 if iterable.ndim else None
            return replace(iterable, ndim=ndim)
        if iterable.value_kind == "numpy":
            return NUMPY
        if iterable.value_kind == "list" and iterable.items:
            return iterable.items[0]
        if iterable.value_kind == "tuple" and iterable.items and \
                len({item.lattice() for item in iterable.items}) == 1:
            return iterable.items[0]  # elements alike (a pair of streams): any of them
        return UNKNOWN

    def _eval_binary(self, expr: cst.BinaryOperation) -> Fact:
        left, right = self.fact(expr.left), self.fact(expr.right)
        if "numpy" in (left.value_kind, right.value_kind) and \
                all(f.value_kind == "numpy" or f.value_kind == "python" and f.dtype != "str" for f in (left, right)):
            # `np.cumsum(lens) - 1` is an array, of the rank of its array operands (a number broadcasts).
            ndims = [f.ndim for f in (left, right) if f.value_kind == "numpy"]
            return replace(NUMPY, ndim=max(ndims) if None not in ndims else None)  # type: ignore[type-var]
        result = combine([left, right])
        if isinstance(expr.operator, cst.Divide) and result.dtype == "int":
            result = replace(result, dtype="float")
        bitwise = isinstance(expr.operator, (cst.BitAnd, cst.BitOr, cst.BitXor))
        if result.dtype == "bool" and not bitwise and not (left.dtype == "bool" and right.dtype == "bool"):
            result = replace(result, dtype=None)  # `mask * 2` holds numbers, not a mask
        if bitwise and result.dtype is None:
            if left.dtype == "bool" or right.dtype == "bool":
                result = replace(result, dtype="bool")
        if left.ndim is not None and right.ndim is not None and result.is_tensor:
            result = replace(result, ndim=max(left.ndim, right.ndim))
        return result

    def _eval_unary(self, expr: cst.UnaryOperation) -> Fact:
        if isinstance(expr.operator, cst.Not):
            return PYTHON
        return self.fact(expr.expression)

    def _eval_comparison(self, expr: cst.Comparison) -> Fact:
        # Tested first: an identity or membership test is a Python bool whatever its operands are, and
        # reading one (`f(x) is not None`) can mean asking the project about every caller.
        if any(type(c.operator) in (cst.Is, cst.IsNot, cst.In, cst.NotIn) for c in expr.comparisons):
            return PYTHON
        if any(_none_or_string(c.comparator) for c in expr.comparisons) or _none_or_string(expr.left):
            # `target != None`, `param_device == "disk"` of a tensor: `Tensor.__eq__` does not implement
            # either, and Python compares identities instead: a Python bool, nothing read from the device.
            return PYTHON
        facts = [self.fact(expr.left)] + [self.fact(c.comparator) for c in expr.comparisons]
        result = combine(facts)
        if result.is_tensor or result.is_unknown_tensor:
            ndims = [f.ndim for f in facts if f.is_tensor]
            ndim = max(ndims) if ndims and all(n is not None for n in ndims) else None
            return replace(result, dtype="bool", ndim=ndim)
        return PYTHON if result.device is Device.NOT_TENSOR else UNKNOWN

    def _eval_boolean(self, expr: cst.BooleanOperation) -> Fact:
        left, right = self.fact(expr.left), self.fact(expr.right)
        if isinstance(expr.operator, cst.And) and left.device is Device.NOT_TENSOR:
            # `meta and meta.seq_lens.max() <= n` is `meta` only where `meta` is falsy (None, False, 0): the
            # value is a tensor only as the right side, and a truth test of the falsy rest reads nothing.
            return right
        return join(left, right)

    def _eval_ifexp(self, expr: cst.IfExp) -> Fact:
        if holds_with_a_gpu(expr.test):  # `cpu.pin_memory() if PIN_MEMORY else cpu`
            return self.fact(expr.body)
        tested = none_test(expr.test)
        if tested is not None and self._never_none(tested[0]):
            # `target_length if target_length is not None else lengths.max()` where every call passes a
            # length: the fallback never runs (transformers' ASR encoders' subsampled masks).
            return self.fact(expr.orelse if tested[1] else expr.body)
        body, orelse = self.fact(expr.body), self.fact(expr.orelse)
        if tested is not None and dotted_name(expr.body if not tested[1] else expr.orelse) == tested[0]:
            # `x if x is not None else <GPU tensor>`: see `none_fallback`.
            when_none, given = (body, orelse) if tested[1] else (orelse, body)
            fallback = none_fallback(when_none, given)
            if fallback is not None:
                return fallback
            left = self.left_none(tested[0], when_none)
            if left is not None:  # `total if total is not None else counts.sum()`, never given a total
                return left
        return join(body, orelse)

    def _never_none(self, name: str) -> bool:
        """Whether `name` is a parameter of the function being walked that every known call of it
        passes a value certainly not None (`Inference.never_none`)."""
        function = self.binder.function_qualname()
        return self.project is not None and function is not None and self.project.never_none(function, name)

    def left_none(self, name: str, when_none: Fact | None, given: "Fact | Deferred | None" = None) -> Fact | None:
        """What a parameter is after its None fallback (`x if x is not None else <GPU tensor>`, or the
        join after `if x is None: x = <GPU tensor>`) when every known call of the function being walked
        leaves it None (`Inference.always_unset`): the fallback, as every call computes it; None when the
        fallback is no GPU tensor, or `given` (the parameter's binding on the other path) is no longer
        the one it got on entry."""
        function = self.binder.function_qualname()
        if when_none is None or not when_none.is_gpu or not self.binder.unrebound_param(name, given) or \
                self.project is None or function is None or not self.project.always_none(function, name):
            return None
        return replace(when_none, reason=f"{when_none.reason} when `{name}` is None (as every known call leaves it)")

    def _eval_paren_free(self, expr: cst.BaseExpression) -> Fact:
        if isinstance(expr, cst.Integer):  # a size: `eval_iters = 100`, then `torch.zeros(eval_iters)` is 1-D
            return INT_NUMBER
        return replace(PYTHON, dtype="float") if isinstance(expr, cst.Float) else PYTHON

    def _eval_string(self, expr: cst.SimpleString) -> Fact:
        """A string that names a device keeps its text (as the index's values do), so that a name bound to
        it (`device = "cpu"`) says which device a `device=` argument is; any other string is plain data."""
        text = literal_string(expr)
        if text is not None and device_string(text):
            return string_fact(text)
        return PYTHON

    def _eval_display(self, expr: cst.List | cst.Tuple | cst.ListComp | cst.GeneratorExp) -> Fact:
        """A list or tuple of events or streams (`[torch.cuda.Event() for _ in range(2)]`, a ping-pong pair)
        keeps its handles, so `self.events[i].synchronize()` is a wait; any other display is plain data."""
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            elements = [expr.elt]
        else:
            elements = [e.value for e in expr.elements if isinstance(e, cst.Element)]
            if len(elements) != len(expr.elements):
                return PYTHON  # a starred element
        if not elements:
            # `vals = []`: what `.append` adds later is what it holds (see `Binder.leave_expr`).
            return Fact(Device.NOT_TENSOR, value_kind="list", empty=True) if isinstance(expr, cst.List) else PYTHON
        kind = "tuple" if isinstance(expr, cst.Tuple) else "list"
        # A display holding tensors keeps them: `_, mask = (None, gpu_mask)`, `for v in [a, b]`,
        # `torch.cat([x[i] for i in ...])`. A comprehension's element is read once the walk has bound
        # its variables (the binder binds them when it passes the `for`), as statements are.
        facts = [self.fact(e) for e in elements]
        if any(f.is_tensor for f in facts):
            items = tuple(facts) if kind == "tuple" else (functools.reduce(join, facts),)
            return Fact(Device.NOT_TENSOR, value_kind=kind, items=items, reason="created by {code}", origin=expr)
        if not all(isinstance(e, cst.Call) for e in elements):
            return PYTHON
        kinds = {f.value_kind for f in facts}
        if len(kinds) != 1 or not kinds <= {"event", "stream"}:
            return PYTHON
        return Fact(Device.NOT_TENSOR, value_kind=kind, items=tuple(facts) if kind == "tuple" else facts[:1],
                    reason="created by {code}", origin=expr)

    def _eval_dict(self, expr: cst.Dict | cst.DictComp) -> Fact:
        """A dict this code builds keeps the tensors it holds, so that `d["k"]`, `d.get("k")`, `d.values()`
        and `d.items()` read them (`batch = {k: v.cuda() for k, v in batch.items()}`). Its entries are
        (key, fact) pairs; a key known only at run time (a comprehension's, `d[name] = t`) is None,
        which any key reads. A dict holding no tensor is plain data, as before; `{}` is an empty dict
        that stores fill (`Binder.store_entry`)."""
        if isinstance(expr, cst.DictComp):
            entries: dict[str | None, Fact] = {None: self.fact(expr.value)}
        else:
            if not expr.elements:
                return EMPTY_DICT
            entries = {}
            for element in expr.elements:
                if isinstance(element, cst.StarredDictElement):  # `{**base, "k": t}`: what `base` holds
                    spread = self.fact(element.value)
                    entries.update(spread.items if spread.value_kind == "dict" else ())
                    continue
                key = literal_string(element.key) if isinstance(element.key, cst.SimpleString) else None
                put_entry(entries, key, self.fact(element.value))
        if not any(fact.is_tensor for fact in entries.values()):
            return PYTHON
        return Fact(Device.NOT_TENSOR, value_kind="dict", items=tuple(entries.items()), reason="created by {code}",
                    origin=expr)

    def _eval_await(self, expr: cst.Await) -> Fact:
        # `await fetch(n)` of an `async def`: a call of one reads as what it returns (as in summaries).
        return self.fact(expr.expression)


def _built_here(fact: Fact) -> bool:
    """A dict assigned from a display or comprehension in this file (then filled by stores the binder
    saw), not one the project holds, which other code may fill under keys known only at run time."""
    return isinstance(fact.origin, (cst.Dict, cst.DictComp))


def _empty_container(node: cst.CSTNode | None) -> bool:
    """`{}`, `[]`, `dict()`, `defaultdict(list)`, ...: a container with nothing in it yet."""
    if isinstance(node, cst.Dict):
        return not node.elements
    if isinstance(node, cst.List):
        return not node.elements
    if isinstance(node, cst.Call) and not any(a.keyword for a in node.args):
        name = call_name(node)
        return name in EMPTY_CONTAINERS and not node.args or name == "defaultdict"
    return False


def _device_from_string(text: str) -> Device | None:
    text = text.strip().lower()
    if text.startswith("cpu"):
        return Device.CPU
    if text.startswith("meta"):
        return None
    if text:
        return Device.GPU  # cuda, cuda:0, xpu, mps, npu, hpu: an accelerator
    return None


def _list_depth(expr: cst.BaseExpression) -> int | None:
    depth = 0
    while isinstance(expr, (cst.List, cst.Tuple)):
        depth += 1
        if not expr.elements:
            return depth
        first = expr.elements[0]
        if isinstance(first, cst.StarredElement):
            return None
        expr = first.value
    if isinstance(expr, (cst.Integer, cst.Float, cst.UnaryOperation)):
        return depth
    # `torch.tensor(ORDER)`, `torch.tensor(a + b)`: a name or a sum may hold a list itself.
    if depth and isinstance(expr, (cst.Name, cst.BinaryOperation)):
        return depth
    return None


def _literal_dtype(expr: cst.BaseExpression) -> str | None:
    while isinstance(expr, (cst.List, cst.Tuple)) and expr.elements:
        first = expr.elements[0]
        if isinstance(first, cst.StarredElement):
            return None
        expr = first.value
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    if isinstance(expr, cst.Integer):
        return "int"
    if isinstance(expr, cst.Float):
        return "float"
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return "bool"
    return None



def combine(facts: Iterable[Fact]) -> Fact:
    """The device of a result computed from these inputs."""
    gpu = cpu = None
    unknown_tensor = False
    any_unknown = False
    for fact in facts:
        if fact.is_gpu and gpu is None:
            gpu = fact
        elif fact.is_cpu and cpu is None:
            cpu = fact
        elif fact.is_unknown_tensor:
            unknown_tensor = True
        elif fact.device is Device.UNKNOWN:
            any_unknown = True
    if gpu is not None:
        # A GPU input decides: CPU scalars and Python numbers broadcast onto it.
        return gpu
    if cpu is not None and not unknown_tensor:
        if cpu.device is Device.PINNED:
            cpu = replace(cpu, device=Device.CPU)
        return cpu
    if unknown_tensor or cpu is not None:
        return Fact(Device.UNKNOWN, tensor_like=True)
    if any_unknown:
        return UNKNOWN
    return PYTHON


def _indexed_on_the_gpu(expr: cst.Subscript, index: Fact, ndim: int | None, dtype: str | None) -> Fact:
    """`state_indices[valid_mask]` of a value whose device is not known, with a GPU index: a host tensor
    indexed by device memory raises, so the value indexed is on the GPU, as the index is."""
    return Fact(Device.GPU, ndim=ndim, dtype=dtype, origin=expr, via=index,
                reason="{code} is indexed by a GPU tensor (a host tensor indexed by device memory raises)")


def shape_result(result: Fact, op: str, expr: cst.Call, receiver_fact: Fact | None = None) -> Fact:
    """Rank and dtype class of `op`'s result, where the op makes them obvious."""
    if not (result.is_tensor or result.is_unknown_tensor):
        return result
    has_dim = any(a.keyword is not None and a.keyword.value == "dim" for a in expr.args)
    positional = [a for a in expr.args if a.keyword is None]
    base = receiver_fact if receiver_fact is not None else result
    ndim = base.ndim
    if op in REDUCTIONS:
        is_method = receiver_fact is not None
        dim_given = has_dim or len(positional) > (0 if is_method else 1)
        ndim = None if dim_given else 0
    elif op not in ELEMENTWISE:
        ndim = None
    dtype = result_dtype(op, base.dtype, by_method=receiver_fact is not None, arguments=len(expr.args))
    return replace(result, ndim=ndim, dtype=dtype)


def _dtype_of(expr: cst.BaseExpression, imports: ImportTable) -> str | None:
    qual = imports.resolve(expr)
    if qual is not None and qual.startswith("torch."):
        return DTYPE_NAMES.get(qual[len("torch."):])
    return None


def _dtype_kwarg(expr: cst.Call) -> str | None:
    for arg in expr.args:
        if arg.keyword is not None and arg.keyword.value == "dtype":
            name = dotted_name(arg.value)
            if name is not None:
                return DTYPE_NAMES.get(name.rsplit(".", 1)[-1])
    return None


def _factory_default_dtype(expr: cst.Call, name: str, number: Callable[[cst.BaseExpression], bool]) -> str | None:
    """The dtype class a factory gives without `dtype=`; `number` says whether a name or attribute holds one
    Python integer (`torch.arange(n, device=...)` with `n: int` counts in int64, as with a literal)."""
    if name in ("randint", "randperm", "tril_indices", "triu_indices"):
        return "int"
    if name in ("tensor", "as_tensor") and expr.args:
        return _literal_dtype(expr.args[0].value)
    if name == "arange":
        positional = [a.value for a in expr.args if a.keyword is None]
        if positional and all(_is_int_size(p, number) for p in positional):
            return "int"  # `torch.arange(x.shape[0], device=...)` counts in int64, as over a literal
        return None
    if name in ("zeros", "ones", "empty", "rand", "randn"):
        return "float"
    return None


def _factory_ndim(expr: cst.Call, name: str, number: Callable[[cst.BaseExpression], bool]) -> int | None:
    """The rank of a factory's result (`factory_rank`); `number` says whether a name or attribute holds
    one Python integer (an `int`-annotated parameter, a name assigned one)."""
    positional = [a.value for a in expr.args if a.keyword is None and not a.star]
    if name in ("tensor", "as_tensor") and positional:
        return _list_depth(positional[0])
    size_kw = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "size"), None)
    return factory_rank(name, [_size_kind(p, number) for p in positional],
                        _size_kind(size_kw, number) if size_kw is not None else None, size_kw is not None)


def _size_kind(expr: cst.BaseExpression, number: Callable[[cst.BaseExpression], bool]) -> int | str | None:
    """A size argument as `factory_rank` reads it: a display's length, INT_SIZE, or None."""
    if isinstance(expr, (cst.Tuple, cst.List)):
        return None if any(isinstance(e, cst.StarredElement) for e in expr.elements) else len(expr.elements)
    return INT_SIZE if _is_int_size(expr, number) else None


def _is_int_size(expr: cst.BaseExpression, number: Callable[[cst.BaseExpression], bool]) -> bool:
    """A size argument that must be one int: `8`, `n + 1`, `len(x)`, `x.shape[0]`, `x.size(0)`, a name
    known to hold an int, and arithmetic of those."""
    if isinstance(expr, cst.Integer):
        return True
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, (cst.Add, cst.Subtract, cst.FloorDivide, cst.Modulo)) and (
                isinstance(expr.left, cst.Integer) or isinstance(expr.right, cst.Integer)):
            return True  # a tuple cannot be added to an int: `n + 1` is a number whatever `n` is
        # `n * k` repeats a tuple `n`: an int only where both sides are.
        return isinstance(expr.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.FloorDivide, cst.Modulo)) \
            and _is_int_size(expr.left, number) and _is_int_size(expr.right, number)
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute):
        return expr.value.attr.value == "shape" and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index)
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Name):
            return func.value in ("len", "int")
        return isinstance(func, cst.Attribute) and (func.attr.value == "numel" or (func.attr.value == "size" and bool(expr.args)))
    if isinstance(expr, (cst.Name, cst.Attribute)):
        return number(expr)
    return False


# Node type -> evaluation method. Built once at import time.
_EVAL: dict[type, Callable[[Evaluator, cst.BaseExpression], Fact]] = {
    cst.Name: Evaluator._eval_name,
    cst.Attribute: Evaluator._eval_attribute,
    cst.Subscript: Evaluator._eval_subscript,
    cst.Call: Evaluator._eval_call,
    cst.BinaryOperation: Evaluator._eval_binary,
    cst.UnaryOperation: Evaluator._eval_unary,
    cst.Comparison: Evaluator._eval_comparison,
    cst.BooleanOperation: Evaluator._eval_boolean,
    cst.IfExp: Evaluator._eval_ifexp,
    cst.Await: Evaluator._eval_await,
    cst.Integer: Evaluator._eval_paren_free,
    cst.Float: Evaluator._eval_paren_free,
    cst.Imaginary: Evaluator._eval_paren_free,
    cst.SimpleString: Evaluator._eval_string,
    cst.ConcatenatedString: Evaluator._eval_paren_free,
    cst.FormattedString: Evaluator._eval_paren_free,
    cst.List: Evaluator._eval_display,
    cst.Tuple: Evaluator._eval_display,
    cst.Dict: Evaluator._eval_dict,
    cst.Set: Evaluator._eval_paren_free,
    cst.ListComp: Evaluator._eval_display,
    cst.SetComp: Evaluator._eval_paren_free,
    cst.DictComp: Evaluator._eval_dict,
    cst.GeneratorExp: Evaluator._eval_display,
    cst.Lambda: Evaluator._eval_paren_free,
}


# Values that have no `.device`: where the analysis says `x` is one of them and the code reads
# `x.device`, the analysis is wrong about `x`, so the device is only assumed.
_PLAIN_DATA = frozenset({"python", "list", "tuple", "dict", "none", "numpy", "dtype"})


def _device_attribute(owner: Fact) -> tuple[Device, str, bool]:
    """`x.device`: (device, why, only assumed). It is as sure as `x`: the device of a value whose
    device is not known is taken for an accelerator, by convention (code that uses `x.device` as a
    target nearly always runs it on one), never as proof."""
    if owner.is_cpu:
        return Device.CPU, "the device of a CPU tensor", False
    if owner.is_gpu:
        return Device.GPU, "the device of a GPU tensor", owner.by_convention
    if owner.device is Device.NOT_TENSOR and owner.value_kind not in _PLAIN_DATA:
        return Device.GPU, "a device that is not literally the CPU", False  # `self.device`, `model.device`
    return Device.GPU, UNKNOWN_VALUE_DEVICE, True


def _getattr_name(call: cst.Call) -> str | None:
    """`name` for `getattr(obj, "name")` or `getattr(obj, "name", default)` (as the project summaries
    read it: `getattr_name` in sync_lint/project/summary.py)."""
    if not 2 <= len(call.args) <= 3 or any(a.star or a.keyword for a in call.args):
        return None
    name = call.args[1].value
    text = literal_string(name) if isinstance(name, cst.SimpleString) else None
    return text if text is not None and text.isidentifier() else None


def _as_object(fact: Fact) -> Fact:
    """`self` as the project sees it: an instance of its class."""
    return replace(fact, value_kind="object") if fact.value_kind == "self" else fact


def _defaulted_device(fact: Fact, param: cst.Param) -> Fact:
    """A device parameter that defaults to None (`device: torch.device | None = None`): an
    accelerator only by convention, since a call that leaves it makes `.to(device=device)` no move
    and `torch.zeros(n, device=device)` a CPU tensor."""
    if _defaults_to_none(param):
        return replace(fact, convention=True, reason=fact.reason + " that defaults to None")
    return fact


def _container_annotation(node: cst.BaseExpression) -> bool:
    """`list[torch.Tensor]`, `Sequence[Batch] | None`: an annotation that names only containers."""
    lasts = {name.rsplit(".", 1)[-1] for name in annotation_names(node)}
    return bool(lasts) and lasts <= CONTAINERS


def _list_element(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """The element annotation of a list annotation (`int` of `Optional[list[int]]`), or None."""
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        try:
            node = cst.parse_expression(text) if isinstance(text, str) else node
        except cst.ParserSyntaxError:
            return None
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        sides = [n for n in (node.left, node.right) if not (isinstance(n, cst.Name) and n.value == "None")]
        return _list_element(sides[0]) if len(sides) == 1 else None
    if not isinstance(node, cst.Subscript) or len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    last = (dotted_name(node.value) or "").rsplit(".", 1)[-1]
    element = node.slice[0].slice.value
    if last == "Optional":
        return _list_element(element)
    return element if last in ("list", "List") else None


def _nested_list(node: cst.BaseExpression) -> bool:
    """A list annotation whose elements are lists (`list[list[torch.Tensor]]`)."""
    element = _list_element(node)
    return element is not None and _list_element(element) is not None


def host_number_lists(node: cst.BaseExpression, subject: str = "") -> Fact | None:
    """`list[int]`, `list[list[int]]`: Python lists of numbers, at any depth (vLLM's bad-word token ids,
    whose last element indexes one logit); None for any other annotation."""
    element = _list_element(node)
    if element is None:
        return None
    if {n.rsplit(".", 1)[-1] for n in annotation_names(element)} in ({"int"}, {"bool"}):
        return host_list(subject)
    inner = host_number_lists(element)
    return Fact(Device.NOT_TENSOR, value_kind="list", items=(inner,), subject=subject) if inner is not None else None


def annotation_names(node: cst.BaseExpression) -> tuple[str, ...]:
    """The type names an annotation allows, `Optional`/`Union`/`| None`/strings unwrapped.

    `Optional[torch.Tensor]` -> ("torch.Tensor",); `Tensor | None` -> ("Tensor",);
    `"ForwardBatch"` -> ("ForwardBatch",); `List[int]` -> ("List",).
    """
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        if not isinstance(text, str):
            return ()
        try:
            node = cst.parse_expression(text)
        except cst.ParserSyntaxError:
            return ()
    if isinstance(node, cst.Name) and node.value == "None":
        return ()
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return annotation_names(node.left) + annotation_names(node.right)
    if isinstance(node, cst.Subscript):
        head = dotted_name(node.value) or ""
        last = head.rsplit(".", 1)[-1]
        elements = [e.slice.value for e in node.slice if isinstance(e.slice, cst.Index)]
        if last in ("Optional", "Union"):
            return tuple(n for e in elements for n in annotation_names(e))
        if last == "Annotated" and elements:
            return annotation_names(elements[0])
        return (head,) if head else ()
    name = dotted_name(node)
    return (name,) if name else ()


def _defaults_to_none(param: cst.Param) -> bool:
    return isinstance(param.default, cst.Name) and param.default.value == "None"


def legacy_ndim(call: cst.Call, data: bool = False) -> int | None:
    """The rank of what a legacy tensor type's call makes: `FloatTensor([a, b])` (data) is a vector,
    `FloatTensor(2, 3)` (sizes) has one dimension per size; None when the call does not show it.
    `data`: a maker that reads its argument as data (`partial(torch.tensor, device=...)`), where a
    number is a 0-dim tensor."""
    positional = [a for a in call.args if a.keyword is None]
    if not positional or any(a.star for a in positional):
        return None
    if len(positional) == 1 and isinstance(positional[0].value, (cst.List, cst.Tuple)):
        elements = positional[0].value.elements
        flat = all(isinstance(e, cst.Element) and not isinstance(e.value, (cst.List, cst.Tuple)) for e in elements)
        return 1 if elements and flat else None
    if data:
        return 0 if len(positional) == 1 and isinstance(positional[0].value, (cst.Integer, cst.Float)) else None
    if all(isinstance(a.value, cst.Integer) for a in positional):
        return len(positional)
    return None


def _maybe_a_function(callee: Fact) -> bool:
    """A callee that may be a function nobody here knows: nothing known of it, a Python value of no
    known kind (a parameter annotated `Callable[...]`), or a project function whose result says nothing."""
    return callee.value_kind is None or callee.value_kind == "callable" or \
        callee.value_kind == "python" and callee.dtype is None
