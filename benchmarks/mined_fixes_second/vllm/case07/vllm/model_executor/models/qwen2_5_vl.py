# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch
import torch.nn as nn

from vllm.model_executor.layers.attention.mm_encoder_attention import (
    MMEncoderAttention,
)


class Qwen2_5_VisionAttention(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        projection_size: int,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.hidden_size_per_attention_head = projection_size // num_heads
        self.num_attention_heads_per_partition = num_heads

        self.qkv = nn.Linear(embed_dim, 3 * projection_size)
        self.proj = nn.Linear(projection_size, embed_dim)

        self.attn = MMEncoderAttention(
            num_heads=self.num_attention_heads_per_partition,
            head_size=self.hidden_size_per_attention_head,
            scale=self.hidden_size_per_attention_head**-0.5,
            prefix=f"{prefix}.attn",
        )

    def forward(
        self,
        x: torch.Tensor,
        cu_seqlens: torch.Tensor,
        rotary_pos_emb_cos: torch.Tensor,
        rotary_pos_emb_sin: torch.Tensor,
        max_seqlen: torch.Tensor,  # Only used for Flash Attention
        sequence_lengths: torch.Tensor,  # Only used for FlashInfer CuDNN backend
    ) -> torch.Tensor:
        # [s, b, c] --> [s, b, head * 3 * head_dim]
        x = self.qkv(x)
        seq_len, batch_size, _ = x.shape

        qkv = x.view(
            seq_len,
            batch_size,
            3,
            self.num_attention_heads_per_partition,
            self.hidden_size_per_attention_head,
        ).permute(1, 0, 2, 3, 4)
        q, k, v = qkv.unbind(dim=2)

        context_layer = self.attn(
            query=q,
            key=k,
            value=v,
            cu_seqlens=cu_seqlens,
            max_seqlen=max_seqlen,
            sequence_lengths=sequence_lengths,
        )

        context_layer = (
            context_layer.permute(1, 0, 2, 3).reshape(seq_len, batch_size, -1)
        ).contiguous()

        output = self.proj(context_layer)
        return output
