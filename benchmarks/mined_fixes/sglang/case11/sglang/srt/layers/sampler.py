import torch
from torch import nn


class Sampler(nn.Module):
    def forward(self, logits_output, sampling_info, return_logprob: bool = False):
        logits = logits_output.next_token_logits
        if sampling_info.is_all_greedy:
            batch_next_token_ids = torch.argmax(logits, -1)
        else:
            probs = torch.softmax(logits / sampling_info.temperatures, dim=-1)
            batch_next_token_ids = torch.multinomial(probs, num_samples=1).view(-1)
        return batch_next_token_ids.to(torch.int32)
