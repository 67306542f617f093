from typing import List, Optional

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.mem_cache.chunk_cache import ChunkCache
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool, TokenToKVPoolAllocator
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo
from sglang.srt.server_args import ServerArgs
from sglang.srt.speculative.eagle_info import EagleDraftInput
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        self.server_args = server_args
        self.device = server_args.device
        self.enable_overlap = not server_args.disable_overlap_schedule
        self.req_to_token_pool = ReqToTokenPool(
            server_args.max_running_requests,
            server_args.context_length + 4,
            device=self.device,
        )
        self.token_to_kv_pool_allocator = TokenToKVPoolAllocator(
            65536, page_size=server_args.page_size, device=self.device
        )
        self.tree_cache = ChunkCache(
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            page_size=server_args.page_size,
        )
        self.spec_algorithm = SpeculativeAlgorithm.EAGLE
        self.running_batch: Optional[ScheduleBatch] = None

    def new_running_batch(self, reqs: List[Req]) -> ScheduleBatch:
        batch = ScheduleBatch.init_new(
            reqs,
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            self.tree_cache,
            self.enable_overlap,
            self.spec_algorithm,
        )
        # Set by the spec-v2 worker after the first verify (cut).
        batch.spec_info = EagleDraftInput()
        batch.sampling_info = SamplingBatchInfo.from_schedule_batch(
            batch, self.server_args.vocab_size
        )
        return batch

    def update_running_batch(self, batch: ScheduleBatch) -> Optional[ScheduleBatch]:
        """Update the current running decoding batch."""
        # Filtering, decode-memory check and retraction are cut.
        batch.prepare_for_decode()
        return batch

    def get_next_batch_to_run(self) -> Optional[ScheduleBatch]:
        if self.running_batch is not None:
            self.running_batch = self.update_running_batch(self.running_batch)
        return self.running_batch
