from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


class Scheduler:
    def __init__(self, server_args):
        self.server_args = server_args
        self.device = server_args.device
        self.enable_overlap = not server_args.disable_overlap_schedule
        self.req_to_token_pool = ReqToTokenPool(
            size=server_args.max_running_requests,
            max_context_len=server_args.context_length + 4,
            device=self.device,
            enable_memory_saver=False,
        )
        self.running_batch = ScheduleBatch(reqs=[], device=self.device)

    def update_running_batch(self, batch: ScheduleBatch):
        batch.prepare_for_decode()
        return batch
