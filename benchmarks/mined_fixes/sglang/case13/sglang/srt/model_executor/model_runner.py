from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.sampler import Sampler


class ModelRunner:
    def __init__(self, model, server_args):
        self.model = model
        self.device = server_args.device
        self.sampler = Sampler()

    def forward(self, forward_batch) -> LogitsProcessorOutput:
        return self.model.forward(forward_batch.input_ids, forward_batch.positions, forward_batch)

    def sample(self, logits_output: LogitsProcessorOutput, forward_batch):
        return self.sampler(
            logits_output,
            forward_batch.sampling_info,
            forward_batch.return_logprob,
            forward_batch.top_logprobs_nums,
            forward_batch.token_ids_logprobs,
        )
