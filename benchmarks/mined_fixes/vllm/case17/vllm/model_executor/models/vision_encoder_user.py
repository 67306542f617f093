import numpy as np
import torch
import torch.nn as nn

from vllm.model_executor.layers.attention.mm_encoder_attention import (
    MMEncoderAttention)


class VisionTransformer(nn.Module):

    def __init__(self, config, attn_backend) -> None:
        super().__init__()
        self.attn_backend = attn_backend
        self.proj = nn.Linear(config.in_channels, config.hidden_size)

    @property
    def device(self) -> torch.device:
        return self.proj.weight.device

    def forward(self, x: torch.Tensor, grid_thw: list[list[int]]):
        lens = np.array([t * h * w for t, h, w in grid_thw], dtype=np.int32)
        cu_seqlens = np.concatenate([np.zeros(1, dtype=np.int32),
                                     np.cumsum(lens, dtype=np.int32)])
        sequence_lengths = MMEncoderAttention.maybe_compute_seq_lens(
            self.attn_backend, cu_seqlens, self.device)
        return self.proj(x), sequence_lengths
