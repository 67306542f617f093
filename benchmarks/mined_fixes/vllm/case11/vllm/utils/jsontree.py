"""Helper functions to work with nested JSON structures."""
from collections.abc import Iterable
from typing import Any, Callable, TypeVar, Union

_T = TypeVar("_T")
_U = TypeVar("_U")

JSONTree = Union[dict[str, "JSONTree[_T]"], list["JSONTree[_T]"],
                 tuple["JSONTree[_T]", ...], _T]


def json_map_leaves(func: Callable[[_T], _U], value: Any) -> Any:
    """Apply a function to each leaf in a nested JSON structure."""
    if isinstance(value, dict):
        return {k: json_map_leaves(func, v) for k, v in value.items()}
    elif isinstance(value, list):
        return [json_map_leaves(func, v) for v in value]
    elif isinstance(value, tuple):
        return tuple(json_map_leaves(func, v) for v in value)
    else:
        return func(value)
