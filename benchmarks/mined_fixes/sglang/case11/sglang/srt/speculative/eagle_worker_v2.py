import torch

from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.speculative.eagle_utils import _eagle_prefill_tail_tokens


class EAGLEWorkerV2:
    def __init__(self, server_args, target_worker: TpModelWorker, draft_runner):
        self.target_worker = target_worker
        self.draft_runner = draft_runner

    def forward_batch_generation(self, batch: ScheduleBatch):
        batch_output = self.target_worker.forward_batch_generation(batch)
        self._draft_extend_for_prefill(
            batch,
            batch_output.logits_output.hidden_states,
            batch_output.next_token_ids,
        )
        return batch_output

    def _draft_extend_for_prefill(
        self,
        batch: ScheduleBatch,
        target_hidden_states: torch.Tensor,
        next_token_ids: torch.Tensor,
    ):
        """
        Run draft model extend to correctly fill the KV cache.

        Args:
            batch: The batch to run.
            target_hidden_states: Hidden states from the target model forward
            next_token_ids: Next token ids generated from the target forward.
        """
        # Construct input_ids
        if not batch.forward_mode.is_idle():
            # Chunked-prefill-aware tail tokens (see PR #26329).
            tail_tokens = _eagle_prefill_tail_tokens(batch, next_token_ids)

            new_input_ids = torch.empty_like(batch.input_ids)
            pt = 0
            for i, extend_len in enumerate(batch.extend_lens):
                input_ids = batch.input_ids[pt : pt + extend_len]
                new_input_ids[pt : pt + extend_len].copy_(
                    torch.cat((input_ids[1:], tail_tokens[i].reshape(1)))
                )
                pt += extend_len
            batch.input_ids = new_input_ids
        return self.draft_runner.forward(batch, target_hidden_states)
