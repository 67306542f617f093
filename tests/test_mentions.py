"""What a module mentions, and where (`sync_lint/project/mentions.py`)."""

from __future__ import annotations

import ast
import textwrap

from sync_lint.project.mentions import module_mentions
from sync_lint.project.summary import _module_statements


def mentions(text: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    return all_mentions(text)[:2]


def all_mentions(text: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]]:
    tree = ast.parse(textwrap.dedent(text))
    return module_mentions(tree, list(_module_statements(tree.body)))


def test_a_functions_body_is_its_own_and_the_rest_runs() -> None:
    root, functions = mentions("""
        import torch
        from pkg import ops as renamed
        from pkg.util import helper

        __all__ = ["exported"]

        def body_only(x):
            local = helper(x)
            return renamed.kernel(local), x.shape, self_made

        @decorator(helper_in_decorator)
        def decorated():
            return registered_inside

        def with_default(x=default_value):
            return 1

        def test_something():
            return tested

        class C:
            attr = in_class_body

            def method(self):
                return self.field, from_method(1)

        if torch.cuda.is_available():
            def in_if(y):
                return in_if_body
        """)
    assert set(functions) == {"body_only", "with_default", "in_if"}
    # Locals (`local`, `x`) and attributes of them are no mentions; names the module binds are.
    assert functions["body_only"] == ("helper", "kernel", "renamed")  # sorted
    assert functions["in_if"] == ()
    assert {"exported", "ops", "torch", "cuda", "is_available"} <= set(root)
    # Decorators, defaults and the bodies of roots (decorated, tests) and methods run: root mentions,
    # when the module binds them (`helper_in_decorator` is not bound here, so it is no mention).
    assert "helper_in_decorator" not in root and "from_method" not in root
    assert "self_made" not in functions["body_only"]


def test_strings_and_renamed_imports_mention_what_they_name() -> None:
    root, functions = mentions("""
        import importlib
        from pkg.ops import original as alias

        def lookup(name):
            return getattr(importlib.import_module("pkg.ops"), "by_string"), alias
        """)
    assert "original" in root
    assert {"by_string", "alias", "importlib", "import_module"} <= set(functions["lookup"])


def test_values_are_the_mentions_other_than_as_a_callee() -> None:
    # A function handed on as a value may be called where no call site shows its arguments.
    _root, _functions, values = all_mentions("""
        import functools
        import inspect
        from pkg import ops, hooks

        def direct(x):
            return ops.kernel(x), helper(x)

        def handed_on(callbacks, x):
            callbacks.append(helper)
            return functools.partial(ops.fused, x), getattr(ops, "by_name")

        def helper(x):
            return x

        class C:
            def register(self, module):
                module.register_forward_hook(self.hook)
                return self.run(), hooks.install(self.elsewhere)

            def hook(self, *args):
                return inspect.signature(self.run), hasattr(self, "run"), hooks.add(self.decoder.register)

            def rebind(self):
                self.elsewhere = None
                C.run = None

            def run(self):
                return None
        """)
    assert {"helper", "ops.fused", "self.hook"} <= set(values)
    # Called or looked at only: `kernel`, `run` (`inspect.signature(self.run)`, `C.run = None` rebinds it);
    # `self.elsewhere` is no method of this module, `register_forward_hook` a callee; strings are words
    # more often than names (`"by_name"`).
    assert not {"kernel", "run", "self.run", "elsewhere", "self.elsewhere", "register_forward_hook", "install", "by_name",
                "hook", "self.register"} & set(values)  # `self.decoder.register` is another object's
    assert values == tuple(sorted(values))


def _index(files: dict[str, str]):  # type: ignore[no-untyped-def]
    from sync_lint.project.index import ProjectIndex
    from sync_lint.project.summary import summarize

    return ProjectIndex.from_summaries(
        summarize(textwrap.dedent(text), f"{module.replace('.', '/')}.py", module) for module, text in files.items())


def test_a_function_that_only_dead_code_mentions_is_unreferenced_and_a_cycle_with_a_live_way_in_is_not() -> None:
    files = {
        "pkg.a": """
            def a_fn():
                return b_fn

            def b_fn():
                return a_fn

            def c_fn():
                return d_fn

            def d_fn():
                return c_fn

            def only_from_d():
                return 1

            def e_fn():
                return only_from_d
            """,
        "pkg.x": "from pkg.a import a_fn\n\nTABLE = [a_fn]\n",
    }
    index = _index(files)
    # Asked first, `a_fn` finds `b_fn` (which, mid-question, looks unreferenced) before the table in
    # pkg.x: the answer for `b_fn` given meanwhile must not stay.
    assert not index.unreferenced("pkg.a", "a_fn")
    assert not index.unreferenced("pkg.a", "b_fn")
    assert index.unreferenced("pkg.a", "c_fn") and index.unreferenced("pkg.a", "d_fn")
    assert index.unreferenced("pkg.a", "only_from_d") and index.unreferenced("pkg.a", "e_fn")
    # Asked in the other order, from a fresh index: the same answers.
    index = _index(files)
    assert not index.unreferenced("pkg.a", "b_fn") and not index.unreferenced("pkg.a", "a_fn")


def test_functions_of_a_module_nothing_imports_may_all_run() -> None:
    index = _index({"pkg.script": "def tool():\n    return 1\n", "pkg.other": "X = 1\n"})
    assert not index.unreferenced("pkg.script", "tool")


def test_the_fast_walk_meets_every_node_ast_walk_meets_less_contexts_and_operators() -> None:
    from sync_lint.ast_walk import walk

    source = textwrap.dedent("""
        import torch as t
        @decorate(x := 1)
        async def f(a: int = g(), *args, b=None, **kw) -> "T":
            global G
            async with h() as (p, q):
                y = [i async for i in a if i] + {k: v for k, v in kw.items()}
            match y:
                case [1, *rest] | {"k": _} if rest:
                    return lambda z: z or -a
            try:
                del p[1:2, ...]
            except* ValueError as e:
                raise e from None
        class C(B, metaclass=M):
            x: list[int] = f"{a!r:>{b}}"
    """)
    tree = ast.parse(source)
    skipped = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
    expected = sorted(ast.dump(node) for node in ast.walk(tree) if not isinstance(node, skipped))
    assert sorted(ast.dump(node) for node in walk(tree)) == expected
    # A node comes before its children: a call is met before its callee.
    order = list(walk(tree))
    call = next(node for node in order if isinstance(node, ast.Call))
    assert order.index(call) < order.index(call.func)
