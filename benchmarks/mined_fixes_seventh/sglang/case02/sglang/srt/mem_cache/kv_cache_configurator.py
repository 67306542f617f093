from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import torch

from sglang.srt.configs.hybrid_arch import hybrid_gdn_config, mambaish_config
from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, ReqToTokenPool

logger = logging.getLogger(__name__)


# (benchmark cut: MemoryPoolConfig, _PoolSizes)


@dataclass
class _InitializedPools:
    req_to_token_pool: ReqToTokenPool
    # (benchmark cut: token_to_kv_pool, token_to_kv_pool_allocator, unified_memory_pool)


@dataclass
class KVCacheConfigResult:
    # (benchmark cut: sizes, token_to_kv_pool, allocator, config)
    req_to_token_pool: ReqToTokenPool


@dataclass(slots=True, kw_only=True)
class KVCacheConfigurator:
    device: str
    gpu_id: int
    # (benchmark cut: other configuration fields)
    model_config: Any
    server_args: Any
    is_draft_worker: bool
    layer_info: Any
    req_to_token_pool: Optional[ReqToTokenPool]
    token_to_kv_pool_allocator: Optional[Any]
    mambaish_config: Optional[Any] = field(init=False)
    hybrid_gdn_config: Optional[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.mambaish_config = mambaish_config(self.model_config)
        self.hybrid_gdn_config = hybrid_gdn_config(self.model_config)
        # (benchmark cut: inkling MTP draft flags)

    def configure(self, *, pre_model_load_memory: int):
        """Apply a resolved MemoryPoolConfig and initialize pools."""
        # (benchmark cut: memory pool config resolution and sizing)
        sizes = self._derive_pool_sizes(config=None)

        pools = self._init_pools(
            sizes=sizes,
            req_to_token_pool=self.req_to_token_pool,
            token_to_kv_pool_allocator=self.token_to_kv_pool_allocator,
        )
        return KVCacheConfigResult(
            # (benchmark cut: sizes, token_to_kv_pool, allocator, config)
            req_to_token_pool=pools.req_to_token_pool,
        )

    def _init_pools(
        self,
        *,
        sizes,
        req_to_token_pool: Optional[ReqToTokenPool],
        token_to_kv_pool_allocator,
    ):
        """Initialize the memory pools."""
        # (benchmark cut: unified-memory fast path)

        # Initialize req_to_token_pool
        if req_to_token_pool is None:
            req_to_token_pool = self._build_req_to_token_pool(
                max_num_reqs=sizes.max_running_requests
            )
        else:
            # Draft worker shares req_to_token_pool with the target worker.
            assert self.is_draft_worker
            # (benchmark cut: inkling MTP draft clone_with_new_mamba)

        # (benchmark cut: token_to_kv_pool and its allocator)
        return _InitializedPools(
            req_to_token_pool=req_to_token_pool,
        )

    def _build_req_to_token_pool(self, *, max_num_reqs: int) -> ReqToTokenPool:
        extra_max_context_len = 4  # (benchmark cut: get_req_to_token_extra_context_len)

        if self.server_args.disaggregation_mode == "decode":
            # (benchmark cut: PD decode req pools)
            raise NotImplementedError()
        elif self.mambaish_config:
            req_to_token_pool = self._build_hybrid_req_pool(
                max_num_reqs=max_num_reqs,
                extra_max_context_len=extra_max_context_len,
            )
        else:
            # (benchmark cut: _build_default_req_pool)
            raise NotImplementedError()
        return req_to_token_pool

    def _build_hybrid_req_pool(
        self,
        *,
        max_num_reqs: int,
        extra_max_context_len: int,
    ) -> ReqToTokenPool:
        req_to_token_pool = HybridReqToTokenPool(
            size=max_num_reqs,
            mamba_size=self.server_args.max_mamba_cache_size,
            mamba_spec_state_size=max_num_reqs,
            max_context_len=self.model_config.context_len + extra_max_context_len,
            device=self.device,
            enable_memory_saver=self.server_args.enable_memory_saver,
            cache_params=self.mambaish_config.mamba2_cache_params,
            mamba_layer_ids=(
                [
                    i
                    for i in self.mambaish_config.mamba2_cache_params.layers
                    if self.layer_info.start_layer <= i < self.layer_info.end_layer
                ]
            ),
            enable_mamba_extra_buffer=self.server_args.enable_mamba_extra_buffer(),
            enable_mamba_extra_buffer_lazy=self.server_args.enable_mamba_extra_buffer_lazy(),
            speculative_num_draft_tokens=self.server_args.max_speculative_num_draft_tokens,
            speculative_eagle_topk=self.server_args.speculative_eagle_topk,
            enable_overlap_schedule=not self.server_args.disable_overlap_schedule,
            start_layer=self.layer_info.start_layer,
            enable_linear_replayssm=self.server_args.enable_linear_replayssm,
            linear_replayssm_cache_len=self.server_args.linear_replayssm_cache_len,
            mamba_envelope_layout=self.server_args.enable_page_major_kv_layout,
            # ReplaySSM spec-verify is GDN-only: activate the pool machinery
            # (rings + cursors + the intermediate_ssm gate) only for GDN-hybrid
            # models, so any other mamba-ish model (Mamba2/Nemotron, lightning,
            # ...) run with the flag set stays byte-identical to flag-off.
            enable_gdn_replayssm_spec=(
                self.server_args.enable_gdn_replayssm_spec
                and self.hybrid_gdn_config is not None
            ),
        )
        return req_to_token_pool
