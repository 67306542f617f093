# (benchmark cut: backend selection; the default CUDA backend is FlashAttention)


def get_attn_backend(
    num_heads,
    head_size,
    num_kv_heads,
    sliding_window,
    dtype,
    kv_cache_dtype,
    block_size,
    is_blocksparse: bool = False,
):
    from vllm.attention.backends.flash_attn import FlashAttentionBackend
    return FlashAttentionBackend
