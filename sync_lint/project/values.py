"""Symbolic values: what a per-file summary says an expression is, before the project is known.

A summary cannot evaluate `forward_batch.seq_lens` (the class of `forward_batch`
and where its field was stored live in other files), so it records the expression's
shape instead, and the project index interprets it once every file is summarised.
Values are plain tuples (cheap to build, pickle and compare); the first item is the
tag:

| tag | form | meaning |
|---|---|---|
| `lit` | `("lit", kind)` | a Python literal: `none`, `number`, `str`, `bool`, `list`, `tuple`, `set`, `fstr` |
| `param` | `("param", name)` | a parameter of the enclosing function |
| `name` | `("name", name)` | a name the function does not bind: a module global, an import, a builtin |
| `attr` | `("attr", base, name)` | `base.name` |
| `call` | `("call", func, args, kwargs)` | `func(*args, **kwargs)`; `kwargs` is `((name, value), ...)`, a `**` is `("**", value)`, and a model loaded inside `with torch.device(d):` has `(BUILT_ON_KEY, d)` |
| `sub` | `("sub", base, key)` | `base[key]`; `key` is `("key", "text")` for a string literal, `("key", 3)` for an int |
| `iter` | `("iter", base)` | an element of `base` (a `for` target, a comprehension variable) |
| `item` | `("item", base, i)` | element `i` of a tuple `base` (tuple unpacking) |
| `op` | `("op", operands)`, `("op", operands, "cmp")`, `("op", operands, "bit")` | arithmetic, a comparison (a bool result), a bitwise operation (a bool result of bool operands): lives where its tensor operands live |
| `join` | `("join", alternatives)` | one of several values (branches, `a or b`, `x if c else y`) |
| `and` | `("and", operands)` | `a and b and c`: the last operand where every earlier one is no tensor (a falsy one is the value only where a truth test reads nothing), else one of them |
| `tuple` | `("tuple", elements)` | a tuple or list display of values |
| `listof` | `("listof", element)` | a list or generator whose elements are alike (a comprehension) |
| `dict` | `("dict", ((key, value), ...))` | a dict display with string keys |
| `decl` | `("decl", types)` | an empty container stored with an annotation (`self.reqs: dict[str, Req] = {}`): the annotation's types |
| `lambda` | `("lambda",)` | a lambda |
| `on` | `("on", value, device, how, test, line)` | `value` where a test around it proves its device (`if x.device.type == "cpu":`); `how` is `tensor`, `shows` or `device`; or, `how` being `type`, a return that runs only when parameter `device` is no tensor (`isinstance`) |
| `unlessgiven` | `("unlessgiven", name, value)` | `value`, given to parameter `name` only where it is None (`if x is None: x = torch.arange(n)`) |
| `?` | `("?",)` | nothing known |
"""

from __future__ import annotations

from typing import Any

Value = tuple[Any, ...]

UNKNOWN: Value = ("?",)
NONE: Value = ("lit", "none")

# The keyword under which a summary records the device of the `with torch.device(d):` block a model is
# loaded in (`AutoModel.from_pretrained(name)` there is placed on `d`): no Python keyword is spelled so.
BUILT_ON_KEY = "<with torch.device>"
# How deep a value may nest before the rest is unknown: keeps summaries small and
# the interpretation cheap, and cuts self-referencing loops (`x = x[1:]`).
MAX_DEPTH = 10
# The context recorded for a call site made where a test says the code runs off CUDA: the platform has
# no accelerator (`if current_platform.is_cpu():`) or is another one (`if is_npu():`), or a tensor is not
# on CUDA (`if not x.is_cuda:`, after `if x.is_cuda: return ...`); beside the `with` blocks around it.
OFF_CUDA = "<off-cuda>"
# The prefix of a context recorded for a call made where a project function's result was tested
# (`off_cuda_if`).
OFF_CUDA_IF = "<off-cuda-if>"


def dotted_parts(value: Value) -> list[str] | None:
    """The names a dotted name's value spells, outermost first (`["torch", "cuda", "synchronize"]`);
    None for a value that is no dotted name."""
    parts: list[str] = []
    while value[0] == "attr":
        parts.append(value[2])
        value = value[1]
    if value[0] != "name":
        return None
    return [value[1], *reversed(parts)]


def off_cuda_if(function: str, result: bool) -> str:
    """The context of code that runs where the function `function` (a qualname) returned `result`: off
    CUDA when the function's `off_cuda_result` is `result`."""
    return f"{OFF_CUDA_IF}{function}:{int(result)}"


def predicate_of(context: str) -> str:
    """The function an `off_cuda_if` context names."""
    return context[len(OFF_CUDA_IF):].rpartition(":")[0]
# How many alternatives a join keeps.
MAX_JOIN = 8


def join(values: list[Value]) -> Value:
    """One value for several alternatives (duplicates and unknowns dropped)."""
    unique: list[Value] = []
    for value in values:
        parts = value[1] if value[0] == "join" else (value,)
        for part in parts:
            if part not in unique:
                unique.append(part)
    known = [v for v in unique if v != UNKNOWN] or [UNKNOWN]
    if len(known) == 1:
        return known[0]
    return ("join", tuple(known[:MAX_JOIN]))


def render(value: Value, limit: int = 60) -> str:
    """Source-like text for a value, for evidence (`forward_batch.seq_lens`, `torch.zeros(...)`)."""
    text = _render(value, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(value: Value, level: int) -> str:
    tag = value[0]
    if level > 6:
        return "..."
    if tag in ("param", "name"):
        return value[1]
    if tag == "attr":
        return f"{_render(value[1], level + 1)}.{value[2]}"
    if tag == "call":
        args = [_render(a, level + 1) for a in value[2]]
        args += [f"{k}={_render(v, level + 1)}" if k != "**" else f"**{_render(v, level + 1)}" for k, v in value[3]
                 if k != BUILT_ON_KEY]
        inner = ", ".join(args)
        return f"{_render(value[1], level + 1)}({inner if len(inner) < 40 else '...'})"
    if tag == "sub":
        key = value[2]
        shown = repr(key[1]) if key[0] == "key" else _render(key, level + 1)
        return f"{_render(value[1], level + 1)}[{shown}]"
    if tag == "iter":
        return f"<element of {_render(value[1], level + 1)}>"
    if tag == "item":
        return f"{_render(value[1], level + 1)}[{value[2]}]"
    if tag == "op":
        return " op ".join(_render(v, level + 1) for v in value[1][:2])
    if tag == "join":
        # `out = []` grown by `.append`: the empty display says nothing the rest does not.
        shown = [v for v in value[1] if v != ("tuple", ())] or list(value[1])
        return " or ".join(_render(v, level + 1) for v in shown[:2])
    if tag == "and":
        return " and ".join(_render(v, level + 1) for v in value[1][-2:])
    if tag == "tuple":
        return "(" + ", ".join(_render(v, level + 1) for v in value[1][:3]) + ")"
    if tag == "listof":
        return f"[{_render(value[1], level + 1)} for ...]"
    if tag == "dict":
        return "{" + ", ".join(f"{k!r}: ..." for k, _ in value[1][:3]) + "}"
    if tag == "lit":
        return {"none": "None", "str": "'...'", "number": "<number>", "bool": "<bool>"}.get(value[1], value[1])
    if tag in ("*", "**"):
        return tag + _render(value[1], level + 1)
    if tag == "on":
        return _render(value[1], level)
    if tag == "unlessgiven":
        return _render(value[2], level)
    if tag == "spread":
        return f"{_render(value[1], level + 1)}[{value[2]!r}]"
    if tag == "built":
        return "<the device its module is built on>"
    if tag == "decl":
        return " | ".join(t for t in value[1] if not t.startswith("[]")) + " (declared, empty)"
    return "?"
