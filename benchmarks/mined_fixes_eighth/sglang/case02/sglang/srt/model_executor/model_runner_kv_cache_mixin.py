from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, ReqToTokenPool

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)


class ModelRunnerKVCacheMixin:
    # (benchmark cut: get_cell_size_per_token, profile_max_num_token,
    #  handle_max_mamba_cache, calculate_mla_kv_cache_dim, set_num_tokens_hybrid_swa)

    def init_memory_pool(self: ModelRunner, total_gpu_memory: int):
        # (benchmark cut: kv_cache_dtype, profiling of max_total_num_tokens)
        max_num_reqs = self.server_args.max_running_requests

        # Initialize req_to_token_pool
        if self.req_to_token_pool is None:
            # FIXME(lsyin): this is the temporary fix for the context length issue when using speculative decoding
            extra_max_context_len = 4
            if self.server_args.speculative_num_draft_tokens is not None:
                extra_max_context_len += self.server_args.speculative_num_draft_tokens

            if self.server_args.disaggregation_mode == "decode":
                # (benchmark cut: DecodeReqToTokenPool / HybridMambaDecodeReqToTokenPool)
                pass
            elif config := self.mambaish_config:
                self.req_to_token_pool = HybridReqToTokenPool(
                    size=max_num_reqs,
                    mamba_size=self.server_args.max_mamba_cache_size,
                    mamba_spec_state_size=max_num_reqs,
                    max_context_len=self.model_config.context_len
                    + extra_max_context_len,
                    device=self.device,
                    enable_memory_saver=self.server_args.enable_memory_saver,
                    cache_params=config.mamba2_cache_params,
                    enable_mamba_extra_buffer=self.server_args.enable_mamba_extra_buffer(),
                    speculative_num_draft_tokens=self.server_args.speculative_num_draft_tokens,
                    enable_overlap_schedule=not self.server_args.disable_overlap_schedule,
                )
            else:
                self.req_to_token_pool = ReqToTokenPool(
                    size=max_num_reqs,
                    max_context_len=self.model_config.context_len
                    + extra_max_context_len,
                    device=self.device,
                    enable_memory_saver=self.server_args.enable_memory_saver,
                )
        else:
            # Draft worker shares req_to_token_pool with the target worker.
            assert self.is_draft_worker

        # (benchmark cut: token_to_kv_pool and token_to_kv_pool_allocator)
