from dataclasses import dataclass
from typing import Optional

import torch

from sglang.srt.speculative.spec_info import SpecInput, SpecInputType


@dataclass
class DFlashDraftInputV2(SpecInput):
    """Draft-side state carried across overlap iterations (spec-v2)."""

    # Legacy Eagle-shaped fields; DFLASH relays via FutureMap so these are unused.
    topk_p: torch.Tensor
    topk_index: torch.Tensor
    bonus_tokens: torch.Tensor
    new_seq_lens: torch.Tensor
    hidden_states: torch.Tensor
    max_top_k: int = 1
    uniform_top_k_value: Optional[int] = None
    reserved_seq_lens_cpu: Optional[torch.Tensor] = None
    reserved_seq_lens_sum: Optional[int] = None

    # Filled by scheduler after dispatch.
    future_indices: Optional[torch.Tensor] = None

    verify_token_budget: Optional[int] = None

    def __post_init__(self):
        super().__init__(spec_input_type=SpecInputType.DFLASH_DRAFT)
        # Spec v2 draft state itself does not change token accounting.
        self.num_tokens_per_req = 1
        self.num_tokens_for_logprob_per_req = 1

    def prepare_for_decode(self, batch):
        # The real method fills reserved_seq_lens_cpu (a CPU int tensor, one
        # reservation per request) from the requests' KV lengths and plans the
        # spec-decode allocation on the plan stream; reduced to the CPU part.
        lens = [len(req.origin_input_ids) + len(req.output_ids) for req in batch.reqs]
        self.reserved_seq_lens_cpu = torch.tensor(lens, dtype=torch.int64)
        self.reserved_seq_lens_sum = sum(lens)

    def filter_batch(self, new_indices: torch.Tensor, has_been_filtered: bool = True):
        if self.reserved_seq_lens_cpu is not None:
            self.reserved_seq_lens_cpu = self.reserved_seq_lens_cpu[new_indices.cpu()]  # SYNC (pre-fix, #31468)
            self.reserved_seq_lens_sum = int(self.reserved_seq_lens_cpu.sum().item())

        if self.future_indices is not None:
            self.future_indices = self.future_indices[new_indices]
            return

        self.topk_p = self.topk_p[new_indices]
        self.topk_index = self.topk_index[new_indices]
        self.bonus_tokens = self.bonus_tokens[new_indices]
        self.new_seq_lens = self.new_seq_lens[new_indices]
        self.hidden_states = self.hidden_states[new_indices]
