from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch

# (benchmark cut: EagleDraftInput body, verify(), the tree-building and acceptance kernels)


@dataclass
class EagleDraftInput:
    # (benchmark cut: draft-side fields)
    topk_p: torch.Tensor = None
    topk_index: torch.Tensor = None


@dataclass
class EagleVerifyInput:
    draft_token: torch.Tensor
    custom_mask: torch.Tensor
    positions: torch.Tensor
    retrive_index: torch.Tensor
    retrive_next_token: torch.Tensor
    retrive_next_sibling: torch.Tensor
    retrive_cum_len: torch.Tensor
    spec_steps: int
    topk: int
    draft_token_num: int
    capture_hidden_mode: int
    seq_lens_sum: int
    seq_lens_cpu: torch.Tensor

    def prepare_for_verify(self, batch, page_size: int):
        batch.input_ids = self.draft_token
        # (benchmark cut: out_cache_loc allocation and assign_req_to_token_pool)


def build_tree_kernel_efficient(
    verified_id: torch.Tensor,
    score_list: List[torch.Tensor],
    token_list: List[torch.Tensor],
    parents_list: List[torch.Tensor],
    seq_lens: torch.Tensor,
    seq_lens_sum: int,
    topk: int,
    spec_steps: int,
    num_verify_tokens: int,
):
    # (benchmark cut: top-k selection and the sgl_kernel build_tree_kernel_efficient launch,
    # which fills tree_mask / positions / retrive_* in place; only the allocations are kept)
    bs = seq_lens.numel()
    device = seq_lens.device
    draft_tokens = torch.empty((bs * num_verify_tokens,), dtype=torch.int64, device=device)
    tree_mask = torch.full(
        (
            seq_lens_sum * num_verify_tokens
            + num_verify_tokens * num_verify_tokens * bs,
        ),
        True,
        device=device,
    )
    retrive_index = torch.full(
        (bs, num_verify_tokens), -1, device=device, dtype=torch.long
    )
    retrive_next_token = torch.full(
        (bs, num_verify_tokens), -1, device=device, dtype=torch.long
    )
    retrive_next_sibling = torch.full(
        (bs, num_verify_tokens), -1, device=device, dtype=torch.long
    )
    positions = torch.empty((bs * num_verify_tokens,), device=device, dtype=torch.long)
    return (
        tree_mask,
        positions,
        retrive_index,
        retrive_next_token,
        retrive_next_sibling,
        draft_tokens,
    )
