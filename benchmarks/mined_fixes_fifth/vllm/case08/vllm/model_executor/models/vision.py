# SPDX-License-Identifier: Apache-2.0
# Cut down: the platform query is reduced to its result on an H100 with
# flash-attn installed.
from vllm.platforms import _Backend


def get_vit_attn_backend(support_fa: bool = False) -> _Backend:
    """
    Get the available attention backend for Vision Transformer.
    """
    # (benchmark cut: VLLM_ATTENTION_BACKEND override and capability checks)
    return _Backend.FLASH_ATTN if support_fa else _Backend.XFORMERS
