from dataclasses import dataclass

import torch

from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs


@dataclass
class LogitsProcessorOutput:
    next_token_logits: torch.Tensor


@dataclass
class GenerationBatchResult:
    logits_output: LogitsProcessorOutput = None
    next_token_ids: torch.Tensor = None
    accept_lens: torch.Tensor = None
    can_run_cuda_graph: bool = False


class TpModelWorker:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.model_runner = ModelRunner(server_args, gpu_id)

    def get_memory_pool(self):
        return (
            self.model_runner.req_to_token_pool,
            self.model_runner.token_to_kv_pool_allocator,
        )

    def forward_batch_generation(self, batch, is_verify: bool = False):
        logits = self.model_runner.forward(batch)
        return GenerationBatchResult(
            logits_output=LogitsProcessorOutput(next_token_logits=logits),
            can_run_cuda_graph=False,
        )
