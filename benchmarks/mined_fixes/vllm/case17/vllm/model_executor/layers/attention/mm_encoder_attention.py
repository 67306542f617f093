"""Reconstructed from the description of vLLM PR #54292 (code not seen)."""
import numpy as np
import torch
import torch.nn as nn

from vllm.v1.attention.backends.registry import AttentionBackendEnum


class MMEncoderAttention(nn.Module):

    def __init__(self, num_heads: int, head_size: int, scale: float,
                 prefix: str = "") -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_size = head_size
        self.scale = scale

    @classmethod
    def maybe_compute_seq_lens(
        cls,
        attn_backend: AttentionBackendEnum,
        cu_seqlens: np.ndarray,
        device: torch.device,
    ) -> torch.Tensor | None:
        if attn_backend != AttentionBackendEnum.FLASHINFER:
            return None
        sequence_lengths = cu_seqlens[1:] - cu_seqlens[:-1]
        sequence_lengths = torch.from_numpy(sequence_lengths).to(  # SYNC (pre-fix, #54292; reconstructed)
            device, non_blocking=True)
        return sequence_lengths
