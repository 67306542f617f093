# Stand-in for the flash_attn package (kernels are not part of this benchmark).


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                           max_seqlen_k, dropout_p=0.0, causal=False):
    raise NotImplementedError("flash-attn kernel stub")
