from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.srt.managers.utils import GenerationBatchResult

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import ScheduleBatch


class SchedulerOutputProcessorMixin:
    """
    This class implements the output processing logic for Scheduler.
    We put them into a separate file to make the `scheduler.py` shorter.
    """

    def process_batch_result_decode(
        self,
        batch: ScheduleBatch,
        result: GenerationBatchResult,
    ):
        logits_output, next_token_ids = (
            result.logits_output,
            result.next_token_ids,
        )

        if batch.return_logprob:
            if logits_output.next_token_token_ids_logprobs_val:
                logits_output.next_token_token_ids_logprobs_val = [
                    v.tolist() for v in logits_output.next_token_token_ids_logprobs_val
                ]
            next_token_logprobs = logits_output.next_token_logprobs.tolist()

        next_token_ids = next_token_ids.tolist()
        for i, (req, next_token_id) in enumerate(zip(batch.reqs, next_token_ids)):
            req.output_ids.append(next_token_id)
            if req.return_logprob:
                req.output_token_logprobs_val.append(next_token_logprobs[i])
                req.output_token_ids_logprobs_val.append(
                    logits_output.next_token_token_ids_logprobs_val[i]
                )
