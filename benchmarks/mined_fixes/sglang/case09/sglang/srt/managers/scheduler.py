from sglang.srt.managers.overlap_utils import FutureMap
from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


class Scheduler:
    def __init__(self, server_args, spec_algorithm):
        self.server_args = server_args
        self.device = server_args.device
        self.spec_algorithm = spec_algorithm
        self.req_to_token_pool = ReqToTokenPool(
            size=server_args.max_running_requests,
            max_context_len=server_args.context_length + 4,
            device=self.device,
            enable_memory_saver=False,
        )
        self.future_map = FutureMap(
            self.device, self.spec_algorithm, self.req_to_token_pool
        )

    def run_batch(self, batch: ScheduleBatch):
        if self.spec_algorithm.is_some():
            self.future_map.resolve_seq_lens_cpu(batch)
        return self.model_worker.forward_batch_generation(batch)
