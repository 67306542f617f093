from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.model_runner import ModelRunner


class TpModelWorker:
    def __init__(self, model_runner: ModelRunner):
        self.model_runner = model_runner

    def forward_batch_generation(self, forward_batch: ForwardBatch):
        logits_output = self.model_runner.forward_decode(forward_batch)
        next_token_ids = self.model_runner.sample(logits_output, forward_batch)
        return logits_output, next_token_ids
