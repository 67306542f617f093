from typing import List

from sglang.srt.managers.schedule_batch import Req, SamplingBatchInfo, ScheduleBatch
from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.server_args import ServerArgs
from sglang.srt.speculative.ngram_worker import NGRAMWorker


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        self.server_args = server_args
        self.tp_worker = TpModelWorker(server_args)
        self.draft_worker = NGRAMWorker(
            server_args, gpu_id=0, target_worker=self.tp_worker
        )
        self.draft_worker.alloc_memory_pool()
        self.running_batch: ScheduleBatch = None

    def update_running_batch(self, batch: ScheduleBatch) -> ScheduleBatch:
        batch.prepare_for_decode()
        return batch

    def run_batch(self, batch: ScheduleBatch):
        batch.has_grammar = any(req.grammar is not None for req in batch.reqs)
        if batch.sampling_info is None:
            batch.sampling_info = SamplingBatchInfo()
        return self.draft_worker.forward_batch_generation(batch)
