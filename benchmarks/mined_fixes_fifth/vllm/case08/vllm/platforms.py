# SPDX-License-Identifier: Apache-2.0
# Cut down: the backend enum members the ViT code names.
import enum


class _Backend(enum.Enum):
    FLASH_ATTN = enum.auto()
    TORCH_SDPA = enum.auto()
    XFORMERS = enum.auto()
