"""A scheduler that manages a tensor parallel GPU worker."""

from __future__ import annotations

import logging
from typing import Optional

from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.mem_cache import kv_cache_builder
from sglang.srt.server_args import ServerArgs
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm
from sglang.srt.utils.common import use_mlx

logger = logging.getLogger(__name__)


class Scheduler:
    """A scheduler that manages a tensor parallel GPU worker."""

    def __init__(self, server_args: ServerArgs, *args, **kwargs):
        # (benchmark cut: real signature and argument parsing)
        self.server_args = server_args
        # (benchmark cut: other flags)
        self.enable_overlap = not server_args.disable_overlap_schedule and not use_mlx()
        self.spec_algorithm = SpeculativeAlgorithm.from_string(
            server_args.speculative_algorithm
        )
        self.page_size = server_args.page_size
        # (benchmark cut: ipc, tokenizer, moe/gemm config, mamba backend)

        # Launch a model worker and draft model worker if using speculative decoding
        self.init_model_worker()

        # Init cache and memory pool
        result = kv_cache_builder.build_kv_cache(
            server_args=self.server_args,
            model_config=self.model_config,
            tp_worker=self.tp_worker,
            page_size=self.page_size,
            # (benchmark cut: process groups, metrics, parallel state)
        )
        self.req_to_token_pool = result.req_to_token_pool
        self.token_to_kv_pool_allocator = result.token_to_kv_pool_allocator
        self.disable_radix_cache = result.disable_radix_cache
        self.tree_cache = result.tree_cache
        # (benchmark cut: policies, grammar, counters, ...)

    # (benchmark cut: event loops, request handling)

    def _get_new_batch_prefill_raw(
        self, prefill_delayer_single_pass=None
    ) -> Optional[ScheduleBatch]:
        # (benchmark cut: grammar queue, prefill adder / policy; fills can_run_list)

        # Create a new batch
        new_batch = ScheduleBatch.init_new(
            can_run_list,
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            self.tree_cache,
            self.model_config,
            self.enable_overlap,
            self.spec_algorithm,
            chunked_req=self.chunked_req,
        )
        # (benchmark cut: extend preparation, mixed chunked prefill)
        return new_batch

    def update_running_batch(self, batch: ScheduleBatch) -> Optional[ScheduleBatch]:
        """Update the current running decoding batch."""
        initial_bs = batch.batch_size()

        batch.filter_batch(v1_spec_info_filtered=True)
        if batch.is_empty():
            return batch

        # (benchmark cut: decode memory check / retraction)

        # Update batch tensors
        batch.prepare_for_decode()
        return batch

    def run_batch(self, batch: ScheduleBatch, **fwd_kwargs):
        # (benchmark cut: overlap-stream setup, future indices, non-generation paths)
        batch_result = self.model_worker.forward_batch_generation(batch, **fwd_kwargs)
        # (benchmark cut: result stashing / copy_to_cpu)

        if batch.is_spec_v2:
            batch.spec_info = batch_result.next_draft_input
            batch.spec_info.future_indices = future_indices
        # (benchmark cut: remaining result handling)
        return batch_result
