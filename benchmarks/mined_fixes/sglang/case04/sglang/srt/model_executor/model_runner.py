import torch

from sglang.srt.layers.sampler import Sampler


class ModelRunner:
    def __init__(self, model, server_args):
        self.model = model
        self.server_args = server_args
        self.device = server_args.device
        self.sampler = Sampler()
        self.prefill_attention_backend_str = server_args.prefill_attention_backend

    def forward(self, forward_batch):
        return self.model.forward(forward_batch.input_ids, forward_batch.positions, forward_batch)

    def sample(self, logits_output, forward_batch) -> torch.Tensor:
        next_token_ids = self.sampler(
            logits_output,
            forward_batch.sampling_info,
            forward_batch.return_logprob,
        )
        return next_token_ids
