import torch

from sglang.srt.layers.logits_processor import LogitsProcessor, LogitsProcessorOutput
from sglang.srt.layers.sampler import Sampler
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, server_args, gpu_id: int = 0):
        self.model = model
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.sampler = Sampler()
        self.logits_processor = LogitsProcessor()

    def forward_decode(self, forward_batch: ForwardBatch) -> LogitsProcessorOutput:
        hidden_states = self.model(forward_batch.input_ids, forward_batch.positions)
        return self.logits_processor(hidden_states, self.model.lm_head)

    def sample(
        self,
        logits_output: LogitsProcessorOutput,
        forward_batch: ForwardBatch,
    ) -> torch.Tensor:
        """Sample and compute logprobs and update logits_output.

        Args:
            logits_output: The logits output from the model forward
            forward_batch: The forward batch that generates logits_output

        Returns:
            A list of next_token_ids
        """
        # Sample the next tokens
        next_token_ids = self.sampler(
            logits_output,
            forward_batch.sampling_info,
            forward_batch.return_logprob,
            forward_batch.top_logprobs_nums,
            forward_batch.token_ids_logprobs,
            # For prefill, we only use the position of the last token.
            (
                forward_batch.positions
                if forward_batch.forward_mode.is_decode()
                else forward_batch.seq_lens - 1
            ),
        )
        return next_token_ids
