def get_alloc_reserve_per_decode() -> int:
    # 2 * alloc_len_per_decode in the real code (adaptive speculative config).
    return 8


def alloc_token_slots(tree_cache, num_tokens: int):
    allocator = tree_cache.token_to_kv_pool_allocator
    out_cache_loc = allocator.alloc(num_tokens)
    if out_cache_loc is None:
        raise RuntimeError(f"Out of memory. Try to allocate {num_tokens} tokens.")
    return out_cache_loc
