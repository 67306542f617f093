# SPDX-License-Identifier: Apache-2.0


def cdiv(a: int, b: int) -> int:
    """Ceiling division."""
    return -(a // -b)
