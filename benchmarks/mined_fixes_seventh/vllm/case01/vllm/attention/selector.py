# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: backend selection; an MLA model on V1 gets the MLA backend)
import torch


def get_attn_backend(
    head_size: int,
    dtype: torch.dtype,
    kv_cache_dtype,
    block_size: int,
    is_attention_free: bool,
    is_blocksparse: bool = False,
    use_mla: bool = False,
):
    from vllm.v1.attention.backends.mla.common import MLACommonBackend
    return MLACommonBackend
