# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: only greedy verification, done with torch ops instead of the
# Triton kernels; logits processors, sampling constraints, random
# verification and logprobs are dropped. The output is built the same way:
# a [batch_size, max_spec_len + 1] tensor on the logits' device, padded
# with PLACEHOLDER_TOKEN_ID.
import torch
import torch.nn as nn

from vllm.v1.outputs import SamplerOutput
from vllm.v1.spec_decode.metadata import SpecDecodeMetadata

PLACEHOLDER_TOKEN_ID: int = -1


class RejectionSampler(nn.Module):
    def forward(
        self,
        metadata: SpecDecodeMetadata,
        draft_probs: torch.Tensor | None,
        logits: torch.Tensor,
        sampling_metadata,
    ) -> SamplerOutput:
        target_logits_indices = metadata.target_logits_indices
        bonus_logits_indices = metadata.bonus_logits_indices
        bonus_token_ids = logits[bonus_logits_indices].argmax(dim=-1)
        raw_target_logits = logits[target_logits_indices]
        raw_target_logits = raw_target_logits.to(torch.float32)
        target_logits = raw_target_logits

        output_token_ids = rejection_sample(
            metadata.draft_token_ids,
            metadata.num_draft_tokens,
            metadata.max_spec_len,
            metadata.cu_num_draft_tokens,
            draft_probs,
            target_logits,
            bonus_token_ids,
        )
        return SamplerOutput(
            sampled_token_ids=output_token_ids,
            logprobs_tensors=None,
        )


def rejection_sample(
    # [num_tokens]
    draft_token_ids: torch.Tensor,
    # [batch_size]
    num_draft_tokens: list[int],
    max_spec_len: int,
    # [batch_size]
    cu_num_draft_tokens: torch.Tensor,
    # [num_tokens, vocab_size]
    draft_probs: torch.Tensor | None,
    # [num_tokens, vocab_size]
    target_logits: torch.Tensor,
    # [batch_size, 1]
    bonus_token_ids: torch.Tensor,
) -> torch.Tensor:
    batch_size = len(num_draft_tokens)
    device = target_logits.device

    # Create output buffer.
    output_token_ids = torch.full(
        (batch_size, max_spec_len + 1),
        PLACEHOLDER_TOKEN_ID,
        dtype=torch.int32,  # Consistent with SamplerOutput.sampled_token_ids.
        device=device,
    )
    # (benchmark stand-in for rejection_greedy_sample_kernel: the target
    #  argmax is written in place of each draft token; no early stop)
    target_argmax = target_logits.argmax(dim=-1).to(torch.int32)
    start = 0
    for req_idx, n in enumerate(num_draft_tokens):
        output_token_ids[req_idx, :n] = target_argmax[start : start + n]
        output_token_ids[req_idx, n : n + 1] = bonus_token_ids[req_idx : req_idx + 1]
        start += n
    return output_token_ids
