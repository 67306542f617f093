# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Stub for the fused Triton log_softmax + gather kernel.
import torch


def compute_token_logprobs(
    logits: torch.Tensor, token_ids: torch.Tensor
) -> torch.Tensor:
    return logits.log_softmax(dim=-1, dtype=torch.float32).gather(-1, token_ids)
