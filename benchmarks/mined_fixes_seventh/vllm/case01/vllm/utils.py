# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: the rest of vllm/utils.py)


def cdiv(a: int, b: int) -> int:
    """Ceiling division."""
    return -(a // -b)


def round_down(x: int, y: int) -> int:
    return (x // y) * y


def is_pin_memory_available() -> bool:
    from vllm.platforms import current_platform
    return current_platform.is_pin_memory_available()
