import torch

from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.logprob_processor import OutputLogprobProcessor


class ModelRunner:
    def __init__(self, model, server_args):
        self.model = model
        self.device = server_args.device
        self.output_logprob_processor = OutputLogprobProcessor()

    def _preprocess_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num(logits)

    def forward(self, forward_batch) -> LogitsProcessorOutput:
        return self.model.forward(forward_batch.input_ids, forward_batch.positions, forward_batch)

    def compute_logprobs_only(self, logits_output: LogitsProcessorOutput, model_worker_batch) -> None:
        result = self.output_logprob_processor.compute_logprobs_only(
            logits_output.next_token_logits,
            model_worker_batch.top_logprobs_nums,
            model_worker_batch.token_ids_logprobs,
            self._preprocess_logits,
        )
        if result is not None:
            logits_output.next_token_token_ids_logprobs_val = result.token_ids_logprobs_val
            logits_output.next_token_token_ids_logprobs_idx = result.token_ids_logprobs_idx
