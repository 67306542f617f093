import torch

from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.model_executor.forward_batch_info import ForwardMode


class EAGLEWorkerV2:
    def __init__(self, target_worker: TpModelWorker):
        self.target_worker = target_worker
        self.speculative_num_draft_tokens = (
            target_worker.server_args.speculative_num_draft_tokens
        )

    def verify(self, batch: ScheduleBatch):
        # Draft and verify-input preparation are cut; the verify batch keeps
        # the scheduler's device seq_lens.
        bs = len(batch.reqs)
        batch.forward_mode = ForwardMode.TARGET_VERIFY
        batch.out_cache_loc = torch.zeros(
            bs * self.speculative_num_draft_tokens,
            dtype=torch.int64,
            device=batch.device,
        )
        model_worker_batch = batch.get_model_worker_batch()
        return self.target_worker.forward_batch_generation(
            model_worker_batch, is_verify=True
        )
