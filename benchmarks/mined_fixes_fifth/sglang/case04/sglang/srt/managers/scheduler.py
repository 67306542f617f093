import logging
from typing import List, Optional

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.mem_cache.chunk_cache import ChunkCache
from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.enable_overlap = False
        self.model_runner = ModelRunner(server_args, gpu_id)
        self.req_to_token_pool = self.model_runner.req_to_token_pool
        self.token_to_kv_pool_allocator = self.model_runner.token_to_kv_pool_allocator
        self.tree_cache = ChunkCache(
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            server_args.page_size,
        )
        self.waiting_queue: List[Req] = []
        self.running_batch: ScheduleBatch = ScheduleBatch(reqs=[])

    def get_new_batch_prefill(self) -> Optional[ScheduleBatch]:
        can_run_list = self.waiting_queue
        self.waiting_queue = []
        if not can_run_list:
            return None
        new_batch = ScheduleBatch.init_new(
            can_run_list,
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            self.tree_cache,
            self.enable_overlap,
        )
        new_batch.prepare_for_extend()
        return new_batch

    def update_running_batch(self, batch: ScheduleBatch) -> Optional[ScheduleBatch]:
        """Update the current running decoding batch."""
        # Check if decode out of memory
        if not batch.check_decode_mem():
            retracted_reqs, new_token_ratio, _ = batch.retract_decode(
                self.server_args
            )
            self.new_token_ratio = new_token_ratio
            self.waiting_queue.extend(retracted_reqs)

        if batch.is_empty():
            return batch

        # Update batch tensors
        batch.prepare_for_decode()
        return batch

    def run_batch(self, batch: ScheduleBatch):
        model_worker_batch = batch.get_model_worker_batch()
        return model_worker_batch
