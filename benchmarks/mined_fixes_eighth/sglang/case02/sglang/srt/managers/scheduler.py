"""A scheduler that manages a tensor parallel GPU worker."""

import logging
from typing import List, Optional

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.managers.scheduler_output_processor_mixin import (
    SchedulerOutputProcessorMixin,
)
from sglang.srt.mem_cache.cache_init_params import CacheInitParams
from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

logger = logging.getLogger(__name__)


class Scheduler(SchedulerOutputProcessorMixin):
    """A scheduler that manages a tensor parallel GPU worker."""

    def __init__(
        self,
        server_args: ServerArgs,
        port_args,
        gpu_id: int,
        tp_rank: int,
        moe_ep_rank: int,
        pp_rank: int,
        dp_rank: Optional[int],
    ):
        # Parse args
        self.server_args = server_args
        self.tp_rank = tp_rank
        self.pp_rank = pp_rank
        self.page_size = server_args.page_size
        self.enable_overlap = not server_args.disable_overlap_schedule
        self.spec_algorithm = SpeculativeAlgorithm.from_string(
            server_args.speculative_algorithm
        )
        set_global_server_args_for_scheduler(server_args)

        # (benchmark cut: ipc channels, tokenizer, moe config)

        # Launch a tensor parallel worker
        from sglang.srt.managers.tp_worker import TpModelWorker

        self.tp_worker = TpModelWorker(
            server_args=server_args,
            gpu_id=gpu_id,
            tp_rank=tp_rank,
            moe_ep_rank=moe_ep_rank,
            pp_rank=pp_rank,
            dp_rank=dp_rank,
            nccl_port=port_args.nccl_port,
        )
        self.model_config = self.tp_worker.model_config

        # (benchmark cut: draft worker, token and memory info)

        # Init memory pool and cache
        self.init_cache_with_memory_pool()

        self.chunked_req: Optional[Req] = None
        self.running_batch: ScheduleBatch = ScheduleBatch(reqs=[])

    def init_cache_with_memory_pool(self):
        server_args = self.server_args

        # Hybrid memory pool
        self.is_hybrid_ssm = (
            self.tp_worker.model_runner.hybrid_gdn_config is not None
            or self.tp_worker.model_runner.mamba2_config is not None
        )

        self.req_to_token_pool, self.token_to_kv_pool_allocator = (
            self.tp_worker.get_memory_pool()
        )

        # Create cache
        params = CacheInitParams(
            disable=server_args.disable_radix_cache,
            req_to_token_pool=self.req_to_token_pool,
            token_to_kv_pool_allocator=self.token_to_kv_pool_allocator,
            page_size=self.page_size,
            is_eagle=self.spec_algorithm.is_eagle(),
            # (benchmark cut: tp_cache_group, eviction policy, metrics, events)
            enable_mamba_extra_buffer=server_args.enable_mamba_extra_buffer(),
            pp_rank=self.pp_rank,
            chunked_prefill_size=server_args.chunked_prefill_size,
        )

        # (benchmark cut: ChunkCache, C++ radix tree, HiCache, SWA, LMCache branches)
        if self.is_hybrid_ssm:
            from sglang.srt.mem_cache.mamba_radix_cache import MambaRadixCache

            self.tree_cache = MambaRadixCache(params)
        else:
            from sglang.srt.mem_cache.radix_cache import RadixCache

            self.tree_cache = RadixCache(params)

    def get_new_batch_prefill(self) -> Optional[ScheduleBatch]:
        # (benchmark cut: PrefillAdder, waiting-queue policy, chunked prefill)
        can_run_list: List[Req] = self.get_prefill_candidates()  # (benchmark cut: stand-in for PrefillAdder.can_run_list)
        if not can_run_list:
            return None

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

        new_batch.prepare_for_extend()

        # (benchmark cut: prefill stats, mixed chunk)
        return new_batch

    def update_running_batch(self, batch: ScheduleBatch) -> Optional[ScheduleBatch]:
        """Update the current running decoding batch."""
        # (benchmark cut: filter_batch, check_decode_mem / retract_decode)

        # Update batch tensors
        batch.prepare_for_decode()
        return batch

    # (benchmark cut: event loops, get_next_batch_to_run, run_batch, recv_requests)
