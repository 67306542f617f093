# (benchmark cut: the rest of vllm/utils.py)
from typing import List, TypeVar

T = TypeVar("T")


def is_pin_memory_available() -> bool:
    # (benchmark cut: platform checks; True on a CUDA machine)
    return True


def flatten_2d_lists(lists: List[List[T]]) -> List[T]:
    """Flatten a list of lists to a single list."""
    return [item for sublist in lists for item in sublist]
