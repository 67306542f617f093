from typing import List

import torch
from torch import nn

from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.logprob_processor import LogprobStage, get_token_ids_logprobs_raw


class Sampler(nn.Module):
    def forward(
        self,
        logits_output: LogitsProcessorOutput,
        sampling_info,
        return_logprob: bool,
        top_logprobs_nums: List[int],
        token_ids_logprobs: List[List[int]],
    ):
        logits = logits_output.next_token_logits
        logprobs = torch.log_softmax(logits, dim=-1)
        batch_next_token_ids = torch.argmax(logits, -1)

        if return_logprob:
            if any(x is not None for x in token_ids_logprobs):
                (
                    logits_output.next_token_token_ids_logprobs_val,
                    logits_output.next_token_token_ids_logprobs_idx,
                ) = get_token_ids_logprobs_raw(
                    logprobs,
                    token_ids_logprobs,
                    stage=LogprobStage.DECODE,
                    delay_cpu_copy=True,
                )
            logits_output.next_token_logprobs = logprobs[
                torch.arange(len(batch_next_token_ids), device=sampling_info.device),
                batch_next_token_ids,
            ]
        return batch_next_token_ids
