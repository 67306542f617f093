from typing import List

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.mem_cache.mamba_radix_cache import MambaRadixCache
from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        set_global_server_args_for_scheduler(server_args)
        self.model_runner = ModelRunner(server_args)
        self.req_to_token_pool = self.model_runner.req_to_token_pool
        self.tree_cache = MambaRadixCache(
            self.req_to_token_pool,
            None,
            enable_mamba_extra_buffer=server_args.enable_mamba_extra_buffer(),
        )

    def get_new_batch_prefill(self, reqs: List[Req]) -> ScheduleBatch:
        new_batch = ScheduleBatch.init_new(reqs, self.req_to_token_pool, self.tree_cache)
        new_batch.prepare_for_extend()
        return new_batch

    def update_running_batch(self, batch: ScheduleBatch) -> ScheduleBatch:
        batch.prepare_for_decode()
        return batch

    def process_batch_result_decode(self, batch: ScheduleBatch, finished: List[Req]):
        for req in finished:
            self.tree_cache.cache_finished_req(req)
