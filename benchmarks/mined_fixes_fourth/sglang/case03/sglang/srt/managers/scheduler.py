from typing import Optional

from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.server_args import ServerArgs


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        self.server_args = server_args
        self.device = server_args.device
        self.req_to_token_pool = ReqToTokenPool(
            server_args.max_running_requests,
            server_args.context_length + 4,
            device=self.device,
        )
        self.running_batch: Optional[ScheduleBatch] = None

    def update_running_batch(self, batch: ScheduleBatch) -> Optional[ScheduleBatch]:
        """Update the current running decoding batch."""
        initial_bs = batch.batch_size()

        batch.filter_batch()
        if batch.is_empty():
            batch.batch_is_full = False
            return batch

        # Decode-memory check / retraction is cut.
        return batch

    def get_next_batch_to_run(self) -> Optional[ScheduleBatch]:
        if self.running_batch is not None and not self.running_batch.is_empty():
            self.running_batch = self.update_running_batch(self.running_batch)
        return self.running_batch
