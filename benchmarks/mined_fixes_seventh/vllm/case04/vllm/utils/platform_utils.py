# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: the other platform helpers)


def is_pin_memory_available() -> bool:
    # (benchmark cut: platform checks; True on a CUDA machine)
    return True


def is_uva_available() -> bool:
    """Check if Unified Virtual Addressing (UVA) is available."""
    # UVA requires pinned memory.
    # TODO: Add more requirements for UVA if needed.
    return is_pin_memory_available()
