"""Device inference: for every expression, is it a GPU tensor, a CPU tensor, ...?

A forward dataflow over each function body and the module body, driven by the
engine's single walk (the engine calls `enter`/`leave` and the attribute hooks
as it meets nodes). The environment maps names (and dotted names such as
`self.buf`) to `Fact`s; branches fork it and join conservatively afterwards.
Expressions are evaluated on demand against the environment of the program
point where the walk stands, and memoised.

Sources of facts, most specific first: factories and moves (`torch.zeros(...,
device=d)`, `.cuda()`, `.to("cpu")`, `.pin_memory()`), propagation through
operators, indexing, tensor methods and `torch.*` functions, attributes set in
`__init__`, configured attribute names, and finally naming conventions
(`*_cpu`, `*_gpu`). Loops are analysed once, so a fact established late in a
loop body does not flow back to its top: the analysis then knows less, never
something wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import libcst as cst

from sync_lint.analysis.facts import (
    DTYPE,
    MODULE,
    NONE,
    NUMPY,
    PYTHON,
    RANGE,
    UNKNOWN,
    Device,
    Fact,
    device_value,
    join,
)
from sync_lint.analysis.imports import ImportTable, dotted_name

# --- vocabulary -------------------------------------------------------------------

FACTORIES = frozenset(
    "zeros ones empty full arange range linspace logspace eye rand randn randint randperm "
    "tensor as_tensor scalar_tensor empty_strided normal bernoulli poisson "
    "tril_indices triu_indices complex polar".split()
)
LIKE_FACTORIES = frozenset("zeros_like ones_like empty_like full_like rand_like randn_like randint_like".split())
NEW_METHODS = frozenset("new_zeros new_ones new_empty new_full new_tensor".split())
CPU_FACTORIES = frozenset("from_numpy frombuffer from_file".split())

# torch functions whose result is not a tensor.
TORCH_NON_TENSOR = frozenset(
    "is_tensor is_storage numel equal allclose is_nonzero is_floating_point is_complex "
    "get_default_dtype set_default_dtype manual_seed seed initial_seed no_grad enable_grad "
    "inference_mode set_grad_enabled is_grad_enabled compile jit device dtype Size "
    "get_device_module is_autocast_enabled autocast typename result_type can_cast promote_types "
    "use_deterministic_algorithms are_deterministic_algorithms_enabled set_printoptions "
    "save load Generator Stream Event".split()
)
DTYPE_NAMES = {
    "bool": "bool",
    "uint8": "int", "int8": "int", "int16": "int", "short": "int", "int32": "int", "int": "int",
    "int64": "int", "long": "int", "uint16": "int", "uint32": "int", "uint64": "int",
    "float16": "float", "half": "float", "bfloat16": "float", "float32": "float", "float": "float",
    "float64": "float", "double": "float", "complex64": "float", "complex128": "float",
    "float8_e4m3fn": "float", "float8_e5m2": "float",
}
# Tensor methods and attributes that give plain Python values or metadata.
METADATA_METHODS = frozenset(
    "size dim ndimension numel nelement element_size stride data_ptr is_contiguous get_device "
    "is_pinned storage_offset is_floating_point is_complex is_signed untyped_storage storage "
    "has_names is_set_to is_shared dim_order".split()
)
METADATA_ATTRS = frozenset(
    "shape dtype device is_cuda is_cpu is_meta is_sparse is_quantized ndim layout names "
    "requires_grad is_leaf grad_fn itemsize nbytes".split()
)
TENSOR_ATTRS = frozenset("T mT H mH data grad real imag".split())
HOST_VALUE_METHODS = frozenset({"item", "tolist"})
# torch.cuda / torch.accelerator / torch calls that return a stream or an event handle.
STREAM_HANDLES = frozenset({"Stream", "ExternalStream", "current_stream", "default_stream"})
EVENT_HANDLES = frozenset({"Event"})
# Methods that return a view of their receiver: on pinned memory the view is pinned too.
VIEW_METHODS = frozenset(
    "view view_as narrow reshape flatten squeeze unsqueeze t transpose permute select expand "
    "expand_as as_strided unflatten movedim swapaxes detach".split()
)
BOOL_RESULT = frozenset(
    "eq ne lt gt le ge equal isnan isinf isfinite isneginf isposinf isclose logical_and logical_or "
    "logical_not logical_xor isin signbit bool".split()
)
INT_RESULT = frozenset(
    "argmax argmin argsort nonzero argwhere bucketize searchsorted multinomial randint randperm "
    "long int short bincount count_nonzero".split()
)
FLOAT_RESULT = frozenset("float half bfloat16 double".split())
# Reductions and scans that count a bool input: `mask.sum()` is int64, not a mask.
COUNTING = frozenset("sum nansum prod cumsum cumprod".split())
# Reductions that give a 0-dim tensor when called without `dim`.
REDUCTIONS = frozenset(
    "sum mean max min prod any all amax amin argmax argmin count_nonzero norm std var median "
    "logsumexp nansum nanmean dot vdot trace".split()
)
ELEMENTWISE = frozenset(
    "abs neg exp log log2 log1p sqrt rsqrt sigmoid tanh relu gelu silu clamp clip floor ceil round "
    "sign add sub mul div true_divide floor_divide remainder fmod pow where masked_fill maximum "
    "minimum clone contiguous float half bfloat16 double long int short bool to cumsum cumprod "
    "softmax log_softmax eq ne lt gt le ge isnan isinf isfinite logical_not logical_and "
    "logical_or bitwise_and bitwise_or bitwise_not fill_ zero_ add_ sub_ mul_ div_ clamp_ "
    "masked_fill_ copy_ index_fill_ scatter_ scatter_add_ nan_to_num lerp".split()
)
ACCELERATOR_NAMES = ("cuda", "xpu", "mps", "npu", "hpu")
CPU_NAMES_DEFAULT = (r"_cpu$", r"_host$", r"^cpu_")
GPU_NAMES_DEFAULT = (r"_gpu$", r"_cuda$", r"_dev$")
DEVICE_NAME = re.compile(r"(^|_)(device|dev)(_|$)|^device|device$")
DTYPE_NAME = re.compile(r"dtype")
MODULE_NAMES = frozenset({"model", "module", "net", "network", "submodule"})
NON_TENSOR_ANNOTATIONS = frozenset(
    "int float bool str bytes list dict tuple set List Dict Tuple Set Sequence Mapping "
    "ndarray Module device dtype".split()
)


@dataclass
class DeviceSettings:
    cpu_name_patterns: tuple[str, ...] = CPU_NAMES_DEFAULT
    gpu_name_patterns: tuple[str, ...] = GPU_NAMES_DEFAULT
    gpu_attributes: frozenset[str] = frozenset()
    cpu_attributes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._cpu = [re.compile(p) for p in self.cpu_name_patterns]
        self._gpu = [re.compile(p) for p in self.gpu_name_patterns]

    def by_name(self, name: str) -> tuple[Device, str] | None:
        for pattern in self._cpu:
            if pattern.search(name):
                return Device.CPU, f"its name matches the cpu-name-pattern `{pattern.pattern}`"
        for pattern in self._gpu:
            if pattern.search(name):
                return Device.GPU, f"its name matches the gpu-name-pattern `{pattern.pattern}`"
        return None


# --- environment ---------------------------------------------------------------------


@dataclass
class Scope:
    env: dict[str, Fact]
    parent: "Scope | None" = None
    class_name: str | None = None  # set for methods: the enclosing class
    function_name: str | None = None

    def lookup(self, key: str) -> Fact | None:
        scope: Scope | None = self
        while scope is not None:
            fact = scope.env.get(key)
            if fact is not None:
                return fact
            scope = scope.parent
        return None


@dataclass
class _Branching:
    """Saved environments while the walk is inside a compound statement."""

    start: dict[str, Fact]
    ends: list[dict[str, Fact]] = field(default_factory=list)


def _join_envs(envs: list[dict[str, Fact]]) -> dict[str, Fact]:
    if len(envs) == 1:
        return dict(envs[0])
    keys: set[str] = set().union(*envs)
    merged: dict[str, Fact] = {}
    for key in keys:
        fact: Fact | None = None
        for env in envs:
            fact = join(fact, env.get(key)) if fact is not None else env.get(key)
        if fact is not None:
            merged[key] = fact
    return merged


def _is_true(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def _literal_string(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.SimpleString):
        return expr.evaluated_value if isinstance(expr.evaluated_value, str) else None
    if isinstance(expr, cst.FormattedString):
        text = "".join(p.value for p in expr.parts if isinstance(p, cst.FormattedStringText))
        return text
    return None


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


class DeviceAnalysis:
    """Per-file device facts. The engine drives it; rules call `fact(expr)`."""

    def __init__(self, imports: ImportTable, settings: DeviceSettings) -> None:
        self.imports = imports
        self.settings = settings
        self.scope = Scope(env={})
        self._memo: dict[int, Fact] = {}
        self._branches: list[_Branching] = []
        self._class_stack: list[str] = []
        # Facts about `self.<attr>` established in each class's __init__.
        self.class_attrs: dict[str, dict[str, Fact]] = {}

    # ======================================================================
    # Queries
    # ======================================================================
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
        fact = self.scope.lookup(name)
        if fact is None and name.startswith("self."):
            class_name = self._enclosing_class()
            if class_name is not None:
                fact = self.class_attrs.get(class_name, {}).get(name)
        return fact

    def device_of_argument(self, expr: cst.BaseExpression) -> tuple[Device | None, str]:
        """What device a `device=` argument (or `.to(x)` argument) denotes, and why."""
        text = _literal_string(expr)
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
        if fact.value_kind == "device" and fact.device_value is not None:
            return fact.device_value, "a device value"
        if isinstance(expr, cst.Attribute) and expr.attr.value == "device":
            owner = self.fact(expr.value)
            if owner.is_cpu:
                return Device.CPU, "the device of a CPU tensor"
            return Device.GPU, "the device of a tensor, which is not literally the CPU"
        name = dotted_name(expr)
        if name is not None and "cpu" in name.split(".")[-1].lower():
            return Device.CPU, f"`{name}` names the CPU"
        return Device.GPU, "a device that is not literally the CPU"

    def literal_accelerator(self, expr: cst.BaseExpression) -> bool:
        """`"cuda"`, `"cuda:1"`, `torch.device("cuda")`, `0`: a device that cannot be the CPU at run time.

        A device variable may be the CPU on some machine, which decides whether a fix
        that pins memory (an accelerator-only operation) is safe.
        """
        text = _literal_string(expr)
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

    # ======================================================================
    # Driving hooks (called by the engine's walk)
    # ======================================================================
    def enter(self, node: cst.CSTNode) -> None:
        handler = _ENTER.get(type(node))
        if handler is not None:
            handler(self, node)

    def leave(self, node: cst.CSTNode) -> None:
        handler = _LEAVE.get(type(node))
        if handler is not None:
            handler(self, node)

    def leave_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        handler = _LEAVE_ATTR.get((type(node), attribute))
        if handler is not None:
            handler(self, node)

    # --- scopes ------------------------------------------------------------------
    def _enter_function(self, node: cst.FunctionDef) -> None:
        self._bind_name(node.name.value, replace(PYTHON, value_kind="function"))
        class_name = self._class_stack[-1] if self._class_stack and self._is_direct_method(node) else None
        self.scope = Scope(env={}, parent=self.scope, class_name=class_name, function_name=node.name.value)
        params = node.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            self.scope.env[param.name.value] = self._param_fact(param)
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self.scope.env[star.name.value] = PYTHON

    def _is_direct_method(self, node: cst.FunctionDef) -> bool:
        # Nested functions inherit the scope but are not methods.
        return self.scope.class_name is None and self.scope.function_name is None or (
            self.scope.function_name == "<class>"
        )

    def _leave_function(self, node: cst.FunctionDef) -> None:
        scope = self.scope
        if scope.class_name is not None and node.name.value == "__init__":
            attrs = self.class_attrs.setdefault(scope.class_name, {})
            for key, fact in scope.env.items():
                if key.startswith("self."):
                    attrs[key] = replace(fact, reason=_in_init(fact.reason))
        assert scope.parent is not None
        self.scope = scope.parent

    def _enter_class(self, node: cst.ClassDef) -> None:
        self._bind_name(node.name.value, replace(PYTHON, value_kind="class"))
        self._class_stack.append(node.name.value)
        self.scope = Scope(env={}, parent=self.scope, class_name=None, function_name="<class>")

    def _leave_class(self, node: cst.ClassDef) -> None:
        self._class_stack.pop()
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    def _enter_lambda(self, node: cst.Lambda) -> None:
        self.scope = Scope(env={}, parent=self.scope, function_name="<lambda>")
        for param in node.params.params:
            self.scope.env[param.name.value] = UNKNOWN

    def _leave_lambda(self, node: cst.Lambda) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    def _param_fact(self, param: cst.Param) -> Fact:
        name = param.name.value
        if name in ("self", "cls"):
            return replace(PYTHON, value_kind="self")
        if param.annotation is not None:
            ann = param.annotation.annotation
            ann_name = dotted_name(ann) or ""
            last = ann_name.split(".")[-1]
            if isinstance(ann, cst.Subscript):
                last = (dotted_name(ann.value) or "").split(".")[-1]
            if last == "Tensor":
                by_name = self.settings.by_name(name)
                if by_name is not None:
                    dev, why = by_name
                    return Fact(dev, tensor_like=True, subject=name, reason=f"a `Tensor` parameter and {why}",
                                pinning_unknown=dev is Device.CPU)
                return Fact(Device.UNKNOWN, tensor_like=True, subject=name, reason="annotated as `Tensor`")
            if last in ("Module",) or name in MODULE_NAMES:
                return replace(MODULE, subject=name)
            if last in ("device",):
                dev = Device.CPU if "cpu" in name else Device.GPU
                return device_value(dev, reason=f"a parameter named `{name}`")
            if last in NON_TENSOR_ANNOTATIONS or isinstance(ann, cst.BinaryOperation):
                if last == "ndarray":
                    return replace(NUMPY, subject=name)
                if isinstance(ann, cst.BinaryOperation):  # `Tensor | None` and friends
                    return self._union_annotation(name, ann)
                # For a Python value, `dtype` says which kind of number it is (None: maybe not a number).
                return replace(PYTHON, subject=name, dtype=last if last in ("int", "float", "bool") else None)
        if name in MODULE_NAMES:
            return replace(MODULE, subject=name)
        return self._fact_for_unknown_name(name) or UNKNOWN

    def _union_annotation(self, name: str, ann: cst.BinaryOperation) -> Fact:
        text = ann_text = dotted_name(ann.left) or ""
        ann_text = text + " " + (dotted_name(ann.right) or "")
        if "Tensor" in ann_text:
            by_name = self.settings.by_name(name)
            if by_name is not None:
                return Fact(by_name[0], tensor_like=True, subject=name, reason=by_name[1], from_name=True,
                            pinning_unknown=by_name[0] is Device.CPU)
            return Fact(Device.UNKNOWN, tensor_like=True, subject=name, reason="annotated as a `Tensor` union")
        return replace(PYTHON, subject=name)

    # --- branching ---------------------------------------------------------------------
    def _fork(self) -> None:
        self._branches.append(_Branching(start=dict(self.scope.env)))

    def _end_branch(self) -> None:
        """Close one arm: remember its end state, restart from the fork point."""
        branching = self._branches[-1]
        branching.ends.append(self.scope.env)
        self.scope.env = dict(branching.start)

    def _merge(self, include_current: bool) -> None:
        branching = self._branches.pop()
        envs = branching.ends + ([self.scope.env] if include_current else [])
        self.scope.env = _join_envs(envs) if envs else branching.start

    def _if_after_test(self, node: cst.If) -> None:
        self._fork()

    def _if_after_body(self, node: cst.If) -> None:
        self._end_branch()

    def _leave_if(self, node: cst.If) -> None:
        self._merge(include_current=True)  # the current env is the else arm (or fall-through)

    def _loop_before_body(self, node: cst.CSTNode) -> None:
        if isinstance(node, (cst.For,)):
            self._bind_target(node.target, self._element_fact(self.fact(node.iter)), node.iter)
        self._fork()

    def _leave_loop(self, node: cst.CSTNode) -> None:
        # Zero or more iterations: join the state before the loop with the state after one.
        branching = self._branches.pop()
        self.scope.env = _join_envs([branching.start, self.scope.env])

    def _enter_try(self, node: cst.CSTNode) -> None:
        self._fork()

    def _try_after_body(self, node: cst.CSTNode) -> None:
        branching = self._branches[-1]
        # Handlers may start anywhere in the body: from the join of its start and end.
        body_end = self.scope.env
        branching.ends.append(body_end)
        branching.start = _join_envs([branching.start, body_end])
        self.scope.env = dict(body_end)

    def _enter_handler(self, node: cst.CSTNode) -> None:
        self.scope.env = dict(self._branches[-1].start)
        if isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler)) and node.name is not None:
            self._bind_target(node.name.name, PYTHON, None)

    def _leave_handler(self, node: cst.CSTNode) -> None:
        self._branches[-1].ends.append(self.scope.env)

    def _try_after_handlers(self, node: cst.CSTNode) -> None:
        # `else` runs after a body that raised nothing: continue from the body's end.
        self.scope.env = dict(self._branches[-1].ends[0])

    def _try_after_orelse(self, node: cst.CSTNode) -> None:
        branching = self._branches[-1]
        branching.ends[0] = self.scope.env
        # `finally` and whatever follows see any of the paths.
        self.scope.env = _join_envs(branching.ends)

    def _leave_try(self, node: cst.CSTNode) -> None:
        self._branches.pop()

    def _enter_match(self, node: cst.Match) -> None:
        self._fork()

    def _enter_case(self, node: cst.MatchCase) -> None:
        self.scope.env = dict(self._branches[-1].start)

    def _leave_case(self, node: cst.MatchCase) -> None:
        self._branches[-1].ends.append(self.scope.env)

    def _leave_match(self, node: cst.Match) -> None:
        branching = self._branches.pop()
        self.scope.env = _join_envs(branching.ends + [branching.start])

    # --- bindings --------------------------------------------------------------------
    def _leave_assign(self, node: cst.Assign) -> None:
        value = self.fact(node.value)
        for target in node.targets:
            self._bind_target(target.target, value, node.value)

    def _leave_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, self.fact(node.value), node.value)

    def _leave_aug_assign(self, node: cst.AugAssign) -> None:
        target_fact = self.fact(node.target)
        value_fact = self.fact(node.value)
        combined = _combine([target_fact, value_fact])
        if combined.device is Device.UNKNOWN and target_fact.is_tensor:
            combined = target_fact  # in-place ops keep the tensor where it is
        name = dotted_name(node.target)
        if name is not None:
            self._set(name, combined.as_subject(name, f"updated by `{name} {node.operator.__class__.__name__}=`", None)
                      if combined is not target_fact else target_fact)

    def _leave_named_expr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, self.fact(node.value), node.value)

    def _leave_with_item(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, self.fact(node.item), node.item)

    def _comp_for_after_iter(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, self._element_fact(self.fact(node.iter)), node.iter)

    def _leave_del(self, node: cst.Del) -> None:
        targets = node.target.elements if isinstance(node.target, cst.Tuple) else [node.target]
        for target in targets:
            expr = target.value if isinstance(target, cst.Element) else target
            name = dotted_name(expr)  # type: ignore[arg-type]
            if name is not None:
                self._forget(name)

    def _leave_import(self, node: cst.Import) -> None:
        self.imports.add_import(node)
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            name = dotted_name(bound) if isinstance(bound, (cst.Name, cst.Attribute)) else None
            if name:
                self._bind_name(name.split(".")[0], MODULE)

    def _leave_import_from(self, node: cst.ImportFrom) -> None:
        self.imports.add_import_from(node)
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(bound, cst.Name):
                self.scope.env[bound.value] = replace(PYTHON, value_kind="import")

    def _bind_target(self, target: cst.BaseExpression, value: Fact, origin: cst.BaseExpression | None) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = [e for e in target.elements]
            parts = self._unpack(origin, len(elements), value)
            for element, part in zip(elements, parts):
                inner = element.value
                if isinstance(element, cst.StarredElement):
                    part = PYTHON
                self._bind_target(inner, part, None)
            return
        if isinstance(target, cst.StarredElement):
            self._bind_target(target.value, PYTHON, None)
            return
        name = dotted_name(target)
        if name is None:
            return  # subscript stores (`t[0] = ...`) do not change what `t` is
        if isinstance(target, cst.Name):
            self.imports.shadow(target.value)
        reason = "assigned from {code}" if origin is not None else (value.reason or "")
        fact = value.as_subject(name, reason, origin) if origin is not None else replace(value, subject=name)
        self._set(name, fact)

    def _unpack(self, origin: cst.BaseExpression | None, count: int, value: Fact) -> list[Fact]:
        if isinstance(origin, (cst.Tuple, cst.List)) and len(origin.elements) == count:
            return [self.fact(e.value) for e in origin.elements]
        if value.is_tensor or value.is_unknown_tensor:
            # `a, b = x.chunk(2)`, `vals, idx = x.topk(k)`: parts live where x lives.
            return [replace(value, ndim=None) for _ in range(count)]
        return [UNKNOWN] * count

    def _set(self, name: str, fact: Fact) -> None:
        self._forget(name)
        self.scope.env[name] = fact

    def _forget(self, name: str) -> None:
        env = self.scope.env
        env.pop(name, None)
        prefix = name + "."
        for key in [k for k in env if k.startswith(prefix)]:
            del env[key]

    def _bind_name(self, name: str, fact: Fact) -> None:
        self.scope.env[name] = fact

    # ======================================================================
    # Evaluation
    # ======================================================================
    def _evaluate(self, expr: cst.BaseExpression) -> Fact:
        evaluator = _EVAL.get(type(expr))
        if evaluator is None:
            return UNKNOWN
        return evaluator(self, expr)

    def _eval_name(self, expr: cst.Name) -> Fact:
        name = expr.value
        fact = self.scope.lookup(name)
        if fact is not None:
            return fact
        if name == "None":
            return NONE
        if name in ("True", "False"):
            return PYTHON
        if name in MODULE_NAMES:
            return replace(MODULE, subject=name)
        return self._fact_for_unknown_name(name) or UNKNOWN

    def _fact_for_unknown_name(self, name: str) -> Fact | None:
        by_name = self.settings.by_name(name)
        if by_name is not None:
            dev, why = by_name
            return Fact(dev, tensor_like=True, subject=name, reason=why, from_name=True,
                        pinning_unknown=dev is Device.CPU)
        if DEVICE_NAME.search(name.lower()):
            dev = Device.CPU if "cpu" in name.lower() else Device.GPU
            return device_value(dev, reason=f"a variable named `{name}`")
        if DTYPE_NAME.search(name.lower()):
            return DTYPE
        return None

    def _eval_attribute(self, expr: cst.Attribute) -> Fact:
        attr = expr.attr.value
        if attr in METADATA_ATTRS:
            if attr == "device":
                owner = self.fact(expr.value)
                dev = Device.CPU if owner.is_cpu else Device.GPU
                return device_value(dev, reason="a tensor's `.device`")
            if attr == "dtype":
                return DTYPE
            return PYTHON
        qual = self.imports.resolve(expr)
        if qual is not None:
            return self._eval_qualified_attribute(qual)
        name = dotted_name(expr)
        bound: Fact | None = None
        if name is not None:
            bound = self.scope.lookup(name)
            head, _, rest = name.partition(".")
            if bound is None and head == "self" and self.scope is not None:
                class_name = self._enclosing_class()
                if class_name is not None:
                    bound = self.class_attrs.get(class_name, {}).get(name)
            # An assignment from something unknown is no evidence: it must not hide
            # what configuration and naming conventions say about the attribute.
            if bound is not None and bound.device is not Device.UNKNOWN:
                return bound
        owner = self.fact(expr.value)
        if attr in TENSOR_ATTRS and owner.is_tensor:
            return owner
        if owner.value_kind == "numpy":
            return NUMPY
        if attr in self.settings.gpu_attributes:
            return Fact(Device.GPU, tensor_like=True, subject=name or attr,
                        reason=f"attribute `{attr}` is listed in gpu-attributes")
        if attr in self.settings.cpu_attributes:
            return Fact(Device.CPU, tensor_like=True, subject=name or attr, pinning_unknown=True,
                        reason=f"attribute `{attr}` is listed in cpu-attributes")
        if attr in MODULE_NAMES:
            return replace(MODULE, subject=name)
        fact = self._fact_for_unknown_name(attr)
        if fact is not None:
            return replace(fact, subject=name or attr)
        return bound if bound is not None else UNKNOWN

    def _enclosing_class(self) -> str | None:
        scope: Scope | None = self.scope
        while scope is not None:
            if scope.class_name is not None:
                return scope.class_name
            scope = scope.parent
        return None

    def _eval_qualified_attribute(self, qual: str) -> Fact:
        if qual.startswith("torch."):
            last = qual.rsplit(".", 1)[-1]
            if last in DTYPE_NAMES:
                return DTYPE
            return replace(PYTHON, value_kind="torch-object")
        if qual.startswith("numpy."):
            return NUMPY
        return UNKNOWN

    def _eval_subscript(self, expr: cst.Subscript) -> Fact:
        base = self.fact(expr.value)
        if base.value_kind == "numpy":
            return NUMPY
        if not (base.is_tensor or base.is_unknown_tensor):
            return UNKNOWN
        ndim = base.ndim
        dtype = base.dtype
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
            elif ndim is not None:
                ndim -= 1
        if base.device is Device.PINNED:
            return replace(base, ndim=ndim, dtype=dtype)
        return replace(base, ndim=ndim, dtype=dtype)

    def _eval_call(self, expr: cst.Call) -> Fact:
        qual = self.imports.resolve(expr.func)
        if qual is not None:
            if qual.startswith("torch."):
                return self._eval_torch_call(expr, qual)
            if qual.startswith("numpy."):
                return NUMPY
        func = expr.func
        if isinstance(func, cst.Attribute):
            return self._eval_method(expr, func.value, func.attr.value)
        if isinstance(func, cst.Name):
            builtin = func.value
            if builtin in ("len", "int", "float", "bool", "str", "range", "list", "tuple", "dict", "set",
                           "sorted", "enumerate", "zip", "repr", "isinstance", "hasattr", "getattr", "id",
                           "type", "print", "format", "round", "abs") and self.scope.lookup(builtin) is None:
                if builtin in ("abs", "round") and expr.args:
                    return self.fact(expr.args[0].value)
                return RANGE if builtin == "range" else PYTHON
        return UNKNOWN

    def _eval_torch_call(self, expr: cst.Call, qual: str) -> Fact:
        last = qual.rsplit(".", 1)[-1]
        namespace = qual.rsplit(".", 1)[0]
        if namespace == "torch.nn" and last[:1].isupper():
            return MODULE
        if qual == "torch.device":
            dev, why = self.device_of_argument(expr.args[0].value) if expr.args else (Device.GPU, "")
            return device_value(dev or Device.GPU, reason=f"`torch.device` of {why}", origin=expr)
        if last in STREAM_HANDLES or last in EVENT_HANDLES:
            kind = "stream" if last in STREAM_HANDLES else "event"
            return replace(PYTHON, value_kind=kind, reason="created by {code}", origin=expr)
        if namespace.startswith("torch.cuda") or namespace.startswith("torch.accelerator"):
            return replace(PYTHON, value_kind="torch-object")
        if last in TORCH_NON_TENSOR or last[:1].isupper():
            return PYTHON
        if namespace == "torch" and last in CPU_FACTORIES:
            return Fact(Device.CPU, reason="created by {code} (CPU memory)", origin=expr, ndim=None)
        if namespace == "torch" and (last in FACTORIES or last in LIKE_FACTORIES):
            return self._eval_factory(expr, last)
        # Any other torch function: its result lives where its tensor inputs live.
        inputs = [self.fact(arg.value) for arg in expr.args if arg.keyword is None or arg.keyword.value in
                  ("input", "other", "out", "self", "condition", "tensors", "indices", "mask")]
        result = _combine(inputs, call=expr)
        return _shape_result(result, last, expr)

    def _eval_factory(self, expr: cst.Call, name: str) -> Fact:
        device_arg = next((a for a in expr.args if a.keyword is not None and a.keyword.value == "device"), None)
        pin_arg = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "pin_memory"), None)
        pin = pin_arg is not None and _is_true(pin_arg)
        # `pin_memory=PIN_MEMORY`: decided at run time, so the memory is not provably pageable.
        pin_unknown = (pin_arg is not None and not (isinstance(pin_arg, cst.Name) and pin_arg.value in ("True", "False"))
                       ) or any(a.star == "**" for a in expr.args)
        dtype = _dtype_kwarg(expr)
        ndim = _factory_ndim(expr, name)
        if dtype is None:
            dtype = _factory_default_dtype(expr, name)
        if device_arg is not None:
            dev, why = self.device_of_argument(device_arg.value)
            if dev is Device.CPU or dev is None:
                return Fact(Device.PINNED if pin else Device.CPU, ndim=ndim, dtype=dtype,
                            reason="created by {code}", origin=expr, pinning_unknown=pin_unknown)
            return Fact(Device.GPU, ndim=ndim, dtype=dtype, reason="created by {code}", origin=expr)
        if name in LIKE_FACTORIES or (name == "as_tensor" and expr.args):
            source = self.fact(expr.args[0].value) if expr.args else UNKNOWN
            if source.is_tensor or source.is_unknown_tensor:
                return replace(source, ndim=ndim if ndim is not None else source.ndim, dtype=dtype or source.dtype)
            if name in LIKE_FACTORIES:
                return Fact(Device.UNKNOWN, tensor_like=True)
        return Fact(Device.PINNED if pin else Device.CPU, ndim=ndim, dtype=dtype,
                    reason="created by {code} with no `device=`", origin=expr, pinning_unknown=pin_unknown)

    def _eval_method(self, expr: cst.Call, receiver: cst.BaseExpression, method: str) -> Fact:
        owner = self.fact(receiver)
        if owner.device is Device.NOT_TENSOR:
            if owner.value_kind == "numpy":
                return NUMPY
            if owner.value_kind == "module" and method in ("to", "cuda", "cpu", "half", "float", "eval", "train"):
                return owner
            return UNKNOWN if owner.value_kind in ("self", "torch-object") else PYTHON
        if method in HOST_VALUE_METHODS or method in METADATA_METHODS:
            return PYTHON
        if method == "numpy":
            return NUMPY
        if method == "cuda":
            return Fact(Device.GPU, ndim=owner.ndim, dtype=owner.dtype, reason="moved by {code}", origin=expr)
        if method == "cpu":
            return Fact(Device.CPU, ndim=owner.ndim, dtype=owner.dtype, reason="moved by {code}", origin=expr)
        if method == "pin_memory":
            return Fact(Device.PINNED, ndim=owner.ndim, dtype=owner.dtype, reason="pinned by {code}", origin=expr)
        if method == "to":
            return self._eval_to(expr, owner)
        if method in NEW_METHODS:
            device_arg = next((a for a in expr.args if a.keyword is not None and a.keyword.value == "device"), None)
            if device_arg is not None:
                dev, _ = self.device_of_argument(device_arg.value)
                if dev is not None:
                    return Fact(dev, reason="created by {code}", origin=expr, dtype=_dtype_kwarg(expr))
            if owner.is_tensor or owner.is_unknown_tensor:
                return replace(owner if owner.device is not Device.PINNED else replace(owner, device=Device.CPU),
                               ndim=None, dtype=_dtype_kwarg(expr) or owner.dtype)
            return UNKNOWN
        if owner.is_tensor or owner.is_unknown_tensor:
            result = owner
            if owner.device is Device.PINNED and method not in VIEW_METHODS:
                result = replace(owner, device=Device.CPU)
            return _shape_result(result, method, expr, receiver_fact=owner)
        return UNKNOWN

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
            return replace(owner, dtype=dtype)
        if not (owner.is_tensor or owner.is_unknown_tensor or owner.device is Device.UNKNOWN):
            return owner
        if target is Device.CPU and owner.is_gpu and any(
            a.keyword is not None and a.keyword.value == "non_blocking" and _is_true(a.value) for a in expr.args
        ):
            target = Device.PINNED  # `_to_copy` allocates a pinned result for a non-blocking D2H copy
        return Fact(target, ndim=owner.ndim, dtype=dtype, reason="moved by {code}", origin=expr)

    def _classify_to_argument(self, value: cst.BaseExpression) -> tuple[str, Device | None]:
        """Is a positional `.to(x)` argument a device, a dtype, or a tensor?"""
        if _literal_string(value) is not None:
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

    def _element_fact(self, iterable: Fact) -> Fact:
        if iterable.value_kind == "range":
            return replace(PYTHON, dtype="int")
        if iterable.is_tensor or iterable.is_unknown_tensor:
            ndim = iterable.ndim - 1 if iterable.ndim else None
            return replace(iterable, ndim=ndim)
        if iterable.value_kind == "numpy":
            return NUMPY
        return UNKNOWN

    def _eval_binary(self, expr: cst.BinaryOperation) -> Fact:
        left, right = self.fact(expr.left), self.fact(expr.right)
        result = _combine([left, right], call=None)
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
        facts = [self.fact(expr.left)] + [self.fact(c.comparator) for c in expr.comparisons]
        operators = [type(c.operator) for c in expr.comparisons]
        if any(op in (cst.Is, cst.IsNot, cst.In, cst.NotIn) for op in operators):
            return PYTHON
        result = _combine(facts, call=None)
        if result.is_tensor or result.is_unknown_tensor:
            ndims = [f.ndim for f in facts if f.is_tensor]
            ndim = max(ndims) if ndims and all(n is not None for n in ndims) else None
            return replace(result, dtype="bool", ndim=ndim)
        return PYTHON if result.device is Device.NOT_TENSOR else UNKNOWN

    def _eval_boolean(self, expr: cst.BooleanOperation) -> Fact:
        return join(self.fact(expr.left), self.fact(expr.right))

    def _eval_ifexp(self, expr: cst.IfExp) -> Fact:
        return join(self.fact(expr.body), self.fact(expr.orelse))

    def _eval_paren_free(self, expr: cst.BaseExpression) -> Fact:
        return PYTHON

    def _eval_await(self, expr: cst.Await) -> Fact:
        return UNKNOWN


def _in_init(reason: str) -> str:
    return f"set in `__init__`, {reason}" if reason else "set in `__init__`"


def _combine(facts: Iterable[Fact], call: cst.Call | None = None) -> Fact:
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
        return replace(gpu, ndim=gpu.ndim) if cpu is None else gpu
    if cpu is not None and not unknown_tensor:
        if cpu.device is Device.PINNED:
            cpu = replace(cpu, device=Device.CPU)
        return cpu
    if unknown_tensor or cpu is not None:
        return Fact(Device.UNKNOWN, tensor_like=True)
    if any_unknown:
        return UNKNOWN
    return PYTHON


def _shape_result(result: Fact, op: str, expr: cst.Call, receiver_fact: Fact | None = None) -> Fact:
    """Rank and dtype class of `op`'s result, where the op makes them obvious."""
    if not (result.is_tensor or result.is_unknown_tensor):
        return result
    has_dim = any(a.keyword is not None and a.keyword.value == "dim" for a in expr.args)
    positional = [a for a in expr.args if a.keyword is None]
    base = receiver_fact if receiver_fact is not None else result
    ndim = base.ndim
    dtype = base.dtype
    if op in REDUCTIONS:
        is_method = receiver_fact is not None
        dim_given = has_dim or len(positional) > (0 if is_method else 1)
        ndim = None if dim_given else 0
        if op in ("any", "all"):
            dtype = "bool"
    elif op not in ELEMENTWISE:
        ndim = None
    if dtype == "bool" and op in COUNTING:
        dtype = "int"
    if op == "where" and receiver_fact is None:
        # `torch.where(cond)` gives index tensors; `torch.where(cond, a, b)` takes a's and b's dtype, not cond's.
        dtype = "int" if len(expr.args) == 1 else None
    if op in BOOL_RESULT:
        dtype = "bool"
    elif op in INT_RESULT:
        dtype = "int"
    elif op in FLOAT_RESULT:
        dtype = "float"
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


def _factory_default_dtype(expr: cst.Call, name: str) -> str | None:
    if name in ("randint", "randperm", "tril_indices", "triu_indices"):
        return "int"
    if name in ("tensor", "as_tensor") and expr.args:
        return _literal_dtype(expr.args[0].value)
    if name == "arange":
        positional = [a.value for a in expr.args if a.keyword is None]
        if positional and all(isinstance(p, (cst.Integer, cst.Name)) for p in positional):
            return "int" if all(isinstance(p, cst.Integer) for p in positional) else None
    if name in ("zeros", "ones", "empty", "rand", "randn"):
        return "float"
    return None


def _factory_ndim(expr: cst.Call, name: str) -> int | None:
    positional = [a.value for a in expr.args if a.keyword is None and not a.star]
    if name in ("arange", "range", "linspace", "logspace", "randperm"):
        return 1
    if name == "eye":
        return 2
    if name in ("tensor", "as_tensor") and positional:
        return _list_depth(positional[0])
    if name == "scalar_tensor":
        return 0
    if name in LIKE_FACTORIES or name in ("normal", "bernoulli", "poisson", "complex", "polar"):
        return None
    sizes = positional
    if name == "full":
        size_kw = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "size"), None)
        sizes = [size_kw] if size_kw is not None else positional[:1]
    elif name == "randint":
        size_kw = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "size"), None)
        sizes = [size_kw] if size_kw is not None else positional[-1:]
    else:
        size_kw = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "size"), None)
        if size_kw is not None:
            sizes = [size_kw]
    if len(sizes) == 1:
        only = sizes[0]
        if isinstance(only, (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in only.elements):
                return None
            return len(only.elements)
        if _is_int_size(only):
            return 1
        return None  # `torch.zeros(shape)`: could be an int or a tuple
    if sizes and all(not isinstance(s, (cst.Tuple, cst.List)) for s in sizes):
        return len(sizes)
    return None


def _is_int_size(expr: cst.BaseExpression) -> bool:
    """A size argument that must be one int: `8`, `n + 1`, `len(x)`, `x.shape[0]`, `x.size(0)`."""
    if isinstance(expr, cst.Integer):
        return True
    if isinstance(expr, cst.BinaryOperation) and isinstance(
        expr.operator, (cst.Add, cst.Subtract, cst.FloorDivide, cst.Modulo)
    ):
        # A tuple cannot be added to an int: `n + 1` is a number whatever `n` is.
        return isinstance(expr.left, cst.Integer) or isinstance(expr.right, cst.Integer) or (
            _is_int_size(expr.left) and _is_int_size(expr.right)
        )
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute):
        return expr.value.attr.value == "shape" and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index)
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Name):
            return func.value in ("len", "int")
        return isinstance(func, cst.Attribute) and (func.attr.value == "numel" or (func.attr.value == "size" and bool(expr.args)))
    return False


# Dispatch tables: node type -> method. Built once at import time.
_ENTER: dict[type, Callable[[DeviceAnalysis, cst.CSTNode], None]] = {
    cst.FunctionDef: DeviceAnalysis._enter_function,
    cst.ClassDef: DeviceAnalysis._enter_class,
    cst.Lambda: DeviceAnalysis._enter_lambda,
    cst.Try: DeviceAnalysis._enter_try,
    cst.TryStar: DeviceAnalysis._enter_try,
    cst.ExceptHandler: DeviceAnalysis._enter_handler,
    cst.ExceptStarHandler: DeviceAnalysis._enter_handler,
    cst.Match: DeviceAnalysis._enter_match,
    cst.MatchCase: DeviceAnalysis._enter_case,
}
_LEAVE: dict[type, Callable[[DeviceAnalysis, cst.CSTNode], None]] = {
    cst.FunctionDef: DeviceAnalysis._leave_function,
    cst.ClassDef: DeviceAnalysis._leave_class,
    cst.Lambda: DeviceAnalysis._leave_lambda,
    cst.If: DeviceAnalysis._leave_if,
    cst.For: DeviceAnalysis._leave_loop,
    cst.While: DeviceAnalysis._leave_loop,
    cst.Try: DeviceAnalysis._leave_try,
    cst.TryStar: DeviceAnalysis._leave_try,
    cst.ExceptHandler: DeviceAnalysis._leave_handler,
    cst.ExceptStarHandler: DeviceAnalysis._leave_handler,
    cst.Match: DeviceAnalysis._leave_match,
    cst.MatchCase: DeviceAnalysis._leave_case,
    cst.Assign: DeviceAnalysis._leave_assign,
    cst.AnnAssign: DeviceAnalysis._leave_ann_assign,
    cst.AugAssign: DeviceAnalysis._leave_aug_assign,
    cst.NamedExpr: DeviceAnalysis._leave_named_expr,
    cst.WithItem: DeviceAnalysis._leave_with_item,
    cst.Del: DeviceAnalysis._leave_del,
    cst.Import: DeviceAnalysis._leave_import,
    cst.ImportFrom: DeviceAnalysis._leave_import_from,
}
_LEAVE_ATTR: dict[tuple[type, str], Callable[[DeviceAnalysis, cst.CSTNode], None]] = {
    (cst.If, "test"): DeviceAnalysis._if_after_test,
    (cst.If, "body"): DeviceAnalysis._if_after_body,
    (cst.For, "iter"): DeviceAnalysis._loop_before_body,
    (cst.While, "test"): DeviceAnalysis._loop_before_body,
    (cst.Try, "body"): DeviceAnalysis._try_after_body,
    (cst.TryStar, "body"): DeviceAnalysis._try_after_body,
    (cst.Try, "handlers"): DeviceAnalysis._try_after_handlers,
    (cst.TryStar, "handlers"): DeviceAnalysis._try_after_handlers,
    (cst.Try, "orelse"): DeviceAnalysis._try_after_orelse,
    (cst.TryStar, "orelse"): DeviceAnalysis._try_after_orelse,
    (cst.CompFor, "iter"): DeviceAnalysis._comp_for_after_iter,
}
LEAVE_ATTR_TYPES = frozenset(t for t, _ in _LEAVE_ATTR)
_EVAL: dict[type, Callable[[DeviceAnalysis, cst.BaseExpression], Fact]] = {
    cst.Name: DeviceAnalysis._eval_name,
    cst.Attribute: DeviceAnalysis._eval_attribute,
    cst.Subscript: DeviceAnalysis._eval_subscript,
    cst.Call: DeviceAnalysis._eval_call,
    cst.BinaryOperation: DeviceAnalysis._eval_binary,
    cst.UnaryOperation: DeviceAnalysis._eval_unary,
    cst.Comparison: DeviceAnalysis._eval_comparison,
    cst.BooleanOperation: DeviceAnalysis._eval_boolean,
    cst.IfExp: DeviceAnalysis._eval_ifexp,
    cst.Await: DeviceAnalysis._eval_await,
    cst.Integer: DeviceAnalysis._eval_paren_free,
    cst.Float: DeviceAnalysis._eval_paren_free,
    cst.Imaginary: DeviceAnalysis._eval_paren_free,
    cst.SimpleString: DeviceAnalysis._eval_paren_free,
    cst.ConcatenatedString: DeviceAnalysis._eval_paren_free,
    cst.FormattedString: DeviceAnalysis._eval_paren_free,
    cst.List: DeviceAnalysis._eval_paren_free,
    cst.Tuple: DeviceAnalysis._eval_paren_free,
    cst.Dict: DeviceAnalysis._eval_paren_free,
    cst.Set: DeviceAnalysis._eval_paren_free,
    cst.ListComp: DeviceAnalysis._eval_paren_free,
    cst.SetComp: DeviceAnalysis._eval_paren_free,
    cst.DictComp: DeviceAnalysis._eval_paren_free,
    cst.GeneratorExp: DeviceAnalysis._eval_paren_free,
    cst.Lambda: DeviceAnalysis._eval_paren_free,
}
