# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: the custom-op registration (direct_register_custom_op) and the KV
# cache update op are dropped; the layer calls the op function directly.
from typing import Any

import torch
import torch.nn as nn

from vllm.forward_context import ForwardContext, get_forward_context


class Attention(nn.Module):
    def __init__(self, impl: Any, prefix: str, num_heads: int, head_size: int):
        super().__init__()
        self.impl = impl
        self.layer_name = prefix
        self.num_heads = num_heads
        self.head_size = head_size
        self.kv_cache = torch.tensor([])
        self._k_scale = torch.tensor(1.0, dtype=torch.float32)
        self._v_scale = torch.tensor(1.0, dtype=torch.float32)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        output = torch.empty_like(query)
        unified_attention_with_output(query, key, value, output, self.layer_name)
        return output


def get_attention_context(
    layer_name: str,
) -> tuple[Any, "Attention", torch.Tensor]:
    forward_context: ForwardContext = get_forward_context()
    attn_metadata_raw = forward_context.attn_metadata
    if isinstance(attn_metadata_raw, dict):
        attn_metadata = attn_metadata_raw[layer_name]
    elif isinstance(attn_metadata_raw, list):
        # list[dict[str, AttentionMetadata]]: used in speculative decoding
        # where [0] is the base-model (non-speculative) metadata dict.
        attn_metadata = attn_metadata_raw[0][layer_name]
    else:
        attn_metadata = attn_metadata_raw
    attn_layer: Attention = forward_context.no_compile_layers[layer_name]
    kv_cache = attn_layer.kv_cache
    return attn_metadata, attn_layer, kv_cache


def unified_attention_with_output(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    output: torch.Tensor,
    layer_name: str,
    output_scale: torch.Tensor | None = None,
    output_block_scale: torch.Tensor | None = None,
) -> None:
    attn_metadata, self, kv_cache = get_attention_context(layer_name)

    self.impl.forward(
        self,
        query,
        key,
        value,
        kv_cache,
        attn_metadata,
        output=output,
        output_scale=output_scale,
        output_block_scale=output_block_scale,
    )
