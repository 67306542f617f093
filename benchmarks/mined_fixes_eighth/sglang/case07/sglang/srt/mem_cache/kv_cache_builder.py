from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True, slots=True, kw_only=True)
class KVCacheBuildResult:
    is_hybrid_swa: bool
    is_hybrid_ssm: bool
    sliding_window_size: Optional[int]
    full_tokens_per_layer: Optional[int]
    swa_tokens_per_layer: Optional[int]
    req_to_token_pool: object
    token_to_kv_pool_allocator: object
    disable_radix_cache: bool
    tree_cache: object


from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sglang.srt.managers.tp_worker import BaseTpWorker

# (benchmark cut: other imports and helpers)


def build_kv_cache(
    *,
    server_args: "ServerArgs",
    model_config: "ModelConfig",
    tp_worker: "BaseTpWorker",
    page_size: int,
    spec_algorithm: "SpeculativeAlgorithm",
    attn_tp_cpu_group: "ProcessGroup",
    tp_cpu_group: "ProcessGroup",
    attn_cp_cpu_group: "ProcessGroup",
    enable_metrics: bool,
    enable_kv_cache_events: bool,
    ps: "ParallelState",
    tp_group: "GroupCoordinator",
    enable_hierarchical_cache: bool,
) -> "KVCacheBuildResult":
    sliding_window_size: Optional[int] = None
    full_tokens_per_layer: Optional[int] = None
    swa_tokens_per_layer: Optional[int] = None
    # (benchmark cut: transformers-backend check, hybrid SSM detection, SWA sizes)

    # Hybrid memory pool
    is_hybrid_swa = tp_worker.is_hybrid_swa
    is_hybrid_ssm = False  # (benchmark cut: real detection)

    req_to_token_pool, token_to_kv_pool_allocator = tp_worker.get_memory_pool()

    # (benchmark cut: disable_radix_cache decision, tree cache construction, mm embedding cache)
    disable_radix_cache = server_args.disable_radix_cache
    tree_cache = None

    return KVCacheBuildResult(
        is_hybrid_swa=is_hybrid_swa,
        is_hybrid_ssm=is_hybrid_ssm,
        sliding_window_size=sliding_window_size,
        full_tokens_per_layer=full_tokens_per_layer,
        swa_tokens_per_layer=swa_tokens_per_layer,
        req_to_token_pool=req_to_token_pool,
        token_to_kv_pool_allocator=token_to_kv_pool_allocator,
        disable_radix_cache=disable_radix_cache,
        tree_cache=tree_cache,
    )
