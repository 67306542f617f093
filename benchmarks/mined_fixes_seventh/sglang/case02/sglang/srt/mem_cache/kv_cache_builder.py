from __future__ import annotations

import logging
from typing import Optional

from sglang.srt.mem_cache.cache_init_params import CacheInitParams
from sglang.srt.mem_cache.mamba_radix_cache import MambaRadixCache

logger = logging.getLogger(__name__)


def build_kv_cache(
    *,
    server_args,
    model_config,
    tp_worker,
    page_size: int,
    spec_algorithm,
    # (benchmark cut: process groups, metrics flags, parallel state)
):
    # (benchmark cut: hybrid SWA / SSM / DSA detection)

    req_to_token_pool, token_to_kv_pool_allocator = tp_worker.get_memory_pool()

    disable_radix_cache = server_args.disable_radix_cache
    # (benchmark cut: transformers-backend multimodal and PD-decode checks)

    params = CacheInitParams(
        disable=disable_radix_cache,
        req_to_token_pool=req_to_token_pool,
        token_to_kv_pool_allocator=token_to_kv_pool_allocator,
        page_size=page_size,
        is_eagle=spec_algorithm.is_eagle(),
        # (benchmark cut: cache groups, eviction policy, metrics, pp / chunked sizes)
        enable_mamba_extra_buffer=server_args.enable_mamba_extra_buffer(),
        enable_mamba_extra_buffer_lazy=server_args.enable_mamba_extra_buffer_lazy(),
    )

    # (benchmark cut: create_tree_cache(TreeCacheBuildContext(...)) registry
    #  dispatch; for a hybrid SSM model without HiCache it builds MambaRadixCache)
    tree_cache = MambaRadixCache(params)

    # (benchmark cut: multimodal embedding cache, KVCacheBuildResult)
    return tree_cache
