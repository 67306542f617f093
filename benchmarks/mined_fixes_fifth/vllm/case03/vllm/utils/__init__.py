# SPDX-License-Identifier: Apache-2.0
import torch


def cdiv(a: int, b: int) -> int:
    """Ceiling division."""
    return -(a // -b)


def is_pin_memory_available() -> bool:
    return torch.cuda.is_available()
