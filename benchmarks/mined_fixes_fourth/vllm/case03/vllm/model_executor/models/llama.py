# SPDX-License-Identifier: Apache-2.0
# Minimal decoder stand-in: one attention layer per model layer, so that the
# runner's per-layer metadata reaches the attention backend's forward.
import torch
import torch.nn as nn

from vllm.model_executor.layers.attention.attention import Attention


class LlamaAttention(nn.Module):
    def __init__(self, impl, prefix: str, num_heads: int, head_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_size = head_size
        self.attn = Attention(impl, f"{prefix}.attn", num_heads, head_size)

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor):
        q = k = v = hidden_states.view(-1, self.num_heads, self.head_size)
        return self.attn(q, k, v)


class LlamaForCausalLM(nn.Module):
    def __init__(self, layers: list[LlamaAttention], hidden_size: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.hidden_size = hidden_size

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        hidden_states = torch.zeros(
            positions.shape[0], self.hidden_size, device=positions.device
        )
        for layer in self.layers:
            hidden_states = layer(positions, hidden_states).flatten(1)
        return hidden_states
