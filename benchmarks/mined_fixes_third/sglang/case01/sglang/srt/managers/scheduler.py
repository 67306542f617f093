from typing import List

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.mem_cache.radix_cache import RadixCache
from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs, set_global_server_args


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        set_global_server_args(server_args)
        self.model_runner = ModelRunner(server_args)
        self.req_to_token_pool = self.model_runner.req_to_token_pool
        self.token_to_kv_pool_allocator = self.model_runner.token_to_kv_pool_allocator
        self.tree_cache = RadixCache(
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            page_size=server_args.page_size,
        )
        self.waiting_queue: List[Req] = []

    def get_new_batch_prefill(self):
        can_run_list = []
        for req in self.waiting_queue:
            req.prefix_indices = self.tree_cache.match_prefix(req.origin_input_ids)
            can_run_list.append(req)
        self.waiting_queue = []

        # Create a new batch
        new_batch = ScheduleBatch.init_new(
            can_run_list,
            self.req_to_token_pool,
            self.token_to_kv_pool_allocator,
            self.tree_cache,
        )
        new_batch.prepare_for_extend()
        return new_batch
