# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

from __future__ import annotations

from dataclasses import dataclass

import torch

from vllm.v1.sample.thinking_budget_state import ThinkingBudgetStateHolder


@dataclass
class SamplingMetadata:
    temperature: torch.Tensor | None
    all_greedy: bool
    all_random: bool

    no_penalties: bool

    # req_index -> bad_words_token_ids
    bad_words_token_ids: dict[int, list[list[int]]]

    output_token_ids: list[list[int]]

    spec_token_ids: list[list[int]] | None = None

    thinking_budget_state_holder: ThinkingBudgetStateHolder | None = None
