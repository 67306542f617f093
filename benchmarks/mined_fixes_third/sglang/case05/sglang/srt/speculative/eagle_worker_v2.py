import torch

from sglang.srt.managers.schedule_batch import ModelWorkerBatch
from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.speculative.eagle_info import EagleVerifyInput


class EAGLEWorkerV2:
    def __init__(self, target_worker: TpModelWorker, speculative_num_steps: int):
        self.target_worker = target_worker
        self.req_to_token_pool = target_worker.model_runner.req_to_token_pool
        self.device = target_worker.model_runner.device
        self.speculative_num_steps = speculative_num_steps

    def verify(self, batch: ModelWorkerBatch):
        # Parse args
        verify_input: EagleVerifyInput = batch.spec_info
        verify_input.num_tokens_per_req = self.speculative_num_steps + 1
        bs = len(batch.seq_lens)

        # Batch 1: Target verify
        verify_forward_batch, can_run_cuda_graph = verify_input.prepare_for_v2_verify(
            self.req_to_token_pool,
            batch,
            self.target_worker,
        )
        return verify_forward_batch
