# SPDX-License-Identifier: Apache-2.0
# Minimal Qwen3-Next stand-in: a stack of GatedDeltaNet linear-attention layers.
import torch
import torch.nn as nn

from vllm.model_executor.layers.mamba.gdn_linear_attn import GatedDeltaNetAttention


class Qwen3NextForCausalLM(nn.Module):
    def __init__(self, num_layers: int, num_v_heads: int, head_k_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(
            GatedDeltaNetAttention(f"model.layers.{i}.linear_attn", num_v_heads, head_k_dim)
            for i in range(num_layers)
        )
        self.num_v_heads = num_v_heads
        self.head_k_dim = head_k_dim

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        num_tokens = positions.shape[0]
        width = self.num_v_heads * self.head_k_dim
        mixed_qkv = torch.zeros(num_tokens, width, device=positions.device)
        b = torch.zeros(num_tokens, self.num_v_heads, device=positions.device)
        a = torch.zeros(num_tokens, self.num_v_heads, device=positions.device)
        core_attn_out = torch.empty_like(mixed_qkv)
        for layer in self.layers:
            layer(mixed_qkv, b, a, core_attn_out)
            mixed_qkv = core_attn_out
        return core_attn_out
