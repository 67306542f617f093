"""Syntax marks: the structural facts about a node that its own fields do not show.

Whether a subscript is assigned to (`t[0] = ...`) or read, whether Python tests an
expression for truth, which simple statement the walk is in, and whether the walk
is inside an allowed-sync block (`with gpu_sync_allowed():`) or a `raise`. Marks are set when
the walk enters the node that decides them, before any of its children.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.analysis.knowledge import (
    CPU_PLATFORM_FLAGS,
    OTHER_DEVICE_TYPES,
    OTHER_PLATFORM_FLAGS,
    OTHER_PLATFORM_TESTS,
)
from sync_lint.analysis.provider import Provider
from sync_lint.syntax import dotted_name


def host_only_test(test: cst.BaseExpression) -> tuple[bool, str] | None:
    """(True, why) for a test that holds exactly where the code runs off CUDA, (False, why) for one
    that fails exactly there, None for any other: a test that the platform has no accelerator
    (`current_platform.is_cpu()`, `is_cpu()`, SGLang's `_is_cpu`; the project summaries read these
    alike, on `ast`), or is another accelerator (`is_npu()`, `_is_npu`, `self.is_npu`, ...), and `x.is_cuda` or
    `x.device.type == "cuda"` (false where `x` is not on CUDA: a reference path for the host, or another
    accelerator's). Through `not`, an `and` whose holding says so, and an `or` whose failing does."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = host_only_test(test.expression)
        return None if inner is None else (not inner[0], inner[1])
    if isinstance(test, cst.BooleanOperation):
        # An `and` that holds, each part holds; an `or` that fails, each part fails (`if not is_npu() or
        # ...: return None` leaves the rest to the NPU).
        wanted = isinstance(test.operator, cst.And)
        for part in (test.left, test.right):
            found = host_only_test(part)
            if found is not None and found[0] is wanted:
                return found
        return None
    if _platform_test(test, _CPU_PLATFORM_TESTS, CPU_PLATFORM_FLAGS) is not None:
        return True, "the platform has no accelerator (`if current_platform.is_cpu():`), where its tensors " \
                     "are on the CPU"
    other = _platform_test(test, OTHER_PLATFORM_TESTS, OTHER_PLATFORM_FLAGS, attributes=OTHER_PLATFORM_TESTS)
    if other is not None:
        return True, f"the platform is an accelerator other than CUDA (`{other}`), whose waits this linter has " \
                     "not measured"
    if isinstance(test, cst.Attribute) and test.attr.value == "is_cuda":
        key = dotted_name(test.value)
        if key is not None:
            return False, f"`{key}` is not on CUDA (a reference path for the host, or another accelerator's)"
    typed = _cuda_type_test(test)
    if typed is not None:
        key, holds, named = typed
        if named == "cuda":
            return holds, f"`{key}.type` is not `\"cuda\"` (a reference path for the host, or another accelerator's)"
        return holds, f"`{key}.type` is `\"{named}\"`, a device only another machine than a CUDA one has"
    return None


def _cuda_type_test(test: cst.BaseExpression) -> tuple[str, bool, str] | None:
    """(`x.device`, whether the test holds exactly off CUDA, the type named) for `x.device.type ==
    "cuda"` (False) or `!= "cuda"` (True), and for `x.device.type == "mps"` or another machine's
    device type (True: SGLang's MiniMax-H3 streams its attention that way for Apple GPUs); either side.
    Not `!= "mps"`, which holds on CUDA and on the CPU alike, nor `== "cpu"` (`OTHER_DEVICE_TYPES`)."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    comparison = test.comparisons[0]
    if not isinstance(comparison.operator, (cst.Equal, cst.NotEqual)):
        return None
    sides = (test.left, comparison.comparator)
    named = next((side.evaluated_value for side in sides if isinstance(side, cst.SimpleString)
                  and isinstance(side.evaluated_value, str)), None)
    differs = isinstance(comparison.operator, cst.NotEqual)
    if named != "cuda" and (named not in OTHER_DEVICE_TYPES or differs):
        return None
    for side in sides:
        if isinstance(side, cst.Attribute) and side.attr.value == "type":
            key = dotted_name(side.value)
            if key is not None:
                return key, differs if named == "cuda" else True, named
    return None


_CPU_PLATFORM_TESTS = frozenset({"is_cpu"})


def _platform_test(test: cst.BaseExpression, tests: frozenset[str], flags: frozenset[str],
                   attributes: frozenset[str] = frozenset()) -> str | None:
    """The test as spelled when it is a call of one of `tests` with no argument (`is_npu()`,
    `current_platform.is_xpu()`), one of the `flags` holding such an answer, as a name or an attribute
    (`_is_npu`, `self._is_npu`), or an attribute named in `attributes` (`self.is_npu`); else None.
    (`x.is_cpu` is no platform test: a tensor's, it holds on a CUDA machine too.)"""
    if isinstance(test, cst.Call) and not test.args:
        func = test.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
        if name in tests:
            return f"{dotted_name(func) or name}()"
    if isinstance(test, cst.Name) and test.value in flags:
        return test.value
    if isinstance(test, cst.Attribute) and (test.attr.value in flags or test.attr.value in attributes):
        return dotted_name(test) or test.attr.value
    return None


def _exits(body: cst.BaseSuite) -> bool:
    """Whether a block always leaves by `return`, `raise`, `continue` or `break` (its last statement, or an
    `if` whose every arm does), so the code after the `if` holding it runs only when the test failed."""
    if isinstance(body, cst.SimpleStatementSuite):
        return bool(body.body) and isinstance(body.body[-1], _EXITS)
    last = body.body[-1] if body.body else None
    if isinstance(last, cst.SimpleStatementLine):
        return bool(last.body) and isinstance(last.body[-1], _EXITS)
    if isinstance(last, cst.If):
        other = last.orelse
        return _exits(last.body) and other is not None and \
            (_exits(other.body) if isinstance(other, cst.Else) else _exits(cst.IndentedBlock(body=[other])))
    return False


_EXITS = (cst.Return, cst.Raise, cst.Continue, cst.Break)


# Decorators of functions a GPU DSL compiles, as spelled (a suffix: `cutlass.cute.kernel`).
DEVICE_CODE_DECORATORS = ("cute.kernel", "cute.jit", "triton.jit", "cuda.jit", "tilelang.jit", "T.prim_func",
                          "helion.kernel")


class SyntaxMarks(Provider):
    def __init__(self, allowed_sync_contexts: tuple[str, ...] = ()) -> None:
        self._allowed_names = frozenset(allowed_sync_contexts)
        self._store_targets: set[int] = set()
        self._conditions: set[int] = set()
        self._allowed_withs: set[int] = set()
        self._allowed_depth = 0
        self._kernels: set[int] = set()
        self._kernel_depth = 0
        self._error_depth = 0
        # `if` -> (1: its body runs only off CUDA; -1: its `else`, or what follows it, does; why).
        self._host_arms: dict[int, tuple[int, str]] = {}
        self._host_paths: list[str] = []  # why each enclosing arm runs only off CUDA, innermost last
        self._after_exits: list[int] = [0]  # per open block: the off-CUDA regions opened after an `if` in it
        self._elifs: set[int] = set()  # the `if` nodes that are another's `elif`
        # The simple statement the walk is in (None between statements and in headers).
        self.statement: cst.SimpleStatementLine | None = None

    # --- queries ----------------------------------------------------------------------
    def is_store(self, node: cst.CSTNode) -> bool:
        """True when `node` is being assigned to (`t[0] = ...`), not read."""
        return id(node) in self._store_targets

    def is_condition(self, node: cst.CSTNode) -> bool:
        """True when Python evaluates `node` for its truth (`if`, `while`, `assert`, `and`/`or`/`not`)."""
        return id(node) in self._conditions

    @property
    def in_allowed_context(self) -> bool:
        """Inside `with <allowed-sync-context>():`: findings here are intended syncs."""
        return self._allowed_depth > 0

    @property
    def in_device_code(self) -> bool:
        """Inside a function a GPU DSL compiles (`@cute.kernel`, `@triton.jit`): its Python never runs on
        the host with tensors, so nothing in it syncs the host."""
        return self._kernel_depth > 0

    @property
    def on_error_path(self) -> bool:
        """Inside a `raise` statement (`raise ValueError(f"... {t.tolist()}")`) or an `assert`'s message:
        the host waits only on the way to an exception, which a step that runs on never takes. (The
        `assert`'s test is evaluated every time, and stays a finding.)"""
        return self._error_depth > 0

    @property
    def host_path(self) -> str | None:
        """Why the walk is in code that runs only off CUDA, or None: an arm of a test that the platform has
        no accelerator (`if current_platform.is_cpu():`, SGLang's `if _is_cpu:`), or that a tensor is not
        on CUDA (the `else` of `if x.is_cuda:`, the code after `if x.is_cuda: return ...`)."""
        return self._host_paths[-1] if self._host_paths else None

    # --- marking ----------------------------------------------------------------------
    def _mark_store(self, target: cst.BaseExpression) -> None:
        self._store_targets.add(id(target))
        if type(target) in (cst.Tuple, cst.List):  # concrete types: an ABC `isinstance` is slow
            for element in target.elements:
                self._mark_store(element.value)

    def _assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._mark_store(target.target)

    def _aug_or_ann(self, node: cst.AugAssign | cst.AnnAssign) -> None:
        self._store_targets.add(id(node.target))

    def _test(self, node: cst.If | cst.While | cst.Assert | cst.IfExp | cst.CompIf) -> None:
        self._conditions.add(id(node.test))

    def _after_if_test(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            self._elifs.add(id(node.orelse))
        found = host_only_test(node.test)
        if found is None:
            return
        holds, why = found
        self._host_arms[id(node)] = (1 if holds else -1, why)
        if holds:
            self._host_paths.append(why)

    def _after_if_body(self, node: cst.If) -> None:
        arm, why = self._host_arms.get(id(node), (0, ""))
        if arm == 1:
            self._host_paths.pop()
        elif arm == -1 and node.orelse is not None:
            self._host_paths.append(why)

    def _leave_if(self, node: cst.If) -> None:
        arm, why = self._host_arms.pop(id(node), (0, ""))
        if arm == -1 and node.orelse is not None:
            self._host_paths.pop()
        elif arm == -1 and _exits(node.body) and id(node) not in self._elifs:
            # `if x.is_cuda: return ...`: the rest of the block is off CUDA (not after an `elif`, which an
            # earlier arm that falls through may have skipped)
            self._host_paths.append(why)
            self._after_exits[-1] += 1

    def _enter_block(self, node: cst.IndentedBlock) -> None:
        self._after_exits.append(0)

    def _leave_block(self, node: cst.IndentedBlock) -> None:
        for _ in range(self._after_exits.pop()):
            self._host_paths.pop()

    def _bool_op(self, node: cst.BooleanOperation) -> None:
        # `a and b`: `a` is always tested; `b` only when the whole is tested.
        self._conditions.add(id(node.left))
        if id(node) in self._conditions:
            self._conditions.add(id(node.right))

    def _not(self, node: cst.UnaryOperation) -> None:
        if isinstance(node.operator, cst.Not):
            self._conditions.add(id(node.expression))

    def _enter_statement(self, node: cst.SimpleStatementLine) -> None:
        self.statement = node

    def _leave_statement(self, node: cst.SimpleStatementLine) -> None:
        self.statement = None

    def _enter_with(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            func = call.func if isinstance(call, cst.Call) else call
            name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
            if name in self._allowed_names:
                self._allowed_withs.add(id(node))
                self._allowed_depth += 1
                return

    def _leave_with(self, node: cst.With) -> None:
        if id(node) in self._allowed_withs:
            self._allowed_depth -= 1

    def _enter_function(self, node: cst.FunctionDef) -> None:
        for decorator in node.decorators:
            expr = decorator.decorator
            if isinstance(expr, cst.Call):
                expr = expr.func
            if (dotted_name(expr) or "").endswith(DEVICE_CODE_DECORATORS):
                self._kernels.add(id(node))
                self._kernel_depth += 1
                return

    def _leave_function(self, node: cst.FunctionDef) -> None:
        if id(node) in self._kernels:
            self._kernel_depth -= 1

    def _enter_raise(self, node: cst.Raise) -> None:
        self._error_depth += 1

    def _leave_raise(self, node: cst.Raise) -> None:
        self._error_depth -= 1

    def _after_assert_test(self, node: cst.Assert) -> None:
        if node.msg is not None:
            self._error_depth += 1

    def _leave_assert(self, node: cst.Assert) -> None:
        if node.msg is not None:
            self._error_depth -= 1

    ENTER = {
        cst.Assign: _assign,
        cst.AugAssign: _aug_or_ann,
        cst.AnnAssign: _aug_or_ann,
        cst.If: _test,
        cst.While: _test,
        cst.Assert: _test,
        cst.IfExp: _test,
        cst.CompIf: _test,
        cst.BooleanOperation: _bool_op,
        cst.UnaryOperation: _not,
        cst.With: _enter_with,
        cst.SimpleStatementLine: _enter_statement,
        cst.FunctionDef: _enter_function,
        cst.Raise: _enter_raise,
        cst.IndentedBlock: _enter_block,
    }
    LEAVE = {
        cst.IndentedBlock: _leave_block,
        cst.If: _leave_if,
        cst.Raise: _leave_raise,
        cst.Assert: _leave_assert,
        cst.With: _leave_with,
        cst.FunctionDef: _leave_function,
        cst.SimpleStatementLine: _leave_statement,
    }
    AFTER_FIELD = {
        (cst.Assert, "test"): _after_assert_test,
        (cst.If, "test"): _after_if_test,
        (cst.If, "body"): _after_if_body,
    }
