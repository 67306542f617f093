# (benchmark cut: the JIT FlashAttention-3 varlen kernel; a torch stand-in with the same signature)
import torch


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q,
    max_seqlen_k,
    softmax_scale=None,
    window_size=(-1, -1),
    sinks=None,
    **kwargs,
):
    return torch.empty_like(q)
