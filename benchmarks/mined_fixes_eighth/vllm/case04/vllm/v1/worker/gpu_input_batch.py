# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Datastructures defining a GPU input batch

from typing import cast

import torch

from vllm.v1.sample.logits_processor import LogitsProcessors
from vllm.v1.sample.logits_processor.state import (  # noqa: F401
    BatchUpdateBuilder,  # (benchmark cut: class body not kept in state.py)
)
from vllm.v1.sample.metadata import SamplingMetadata


class InputBatch:
    def __init__(
        self,
        max_num_reqs: int,
        max_model_len: int,
        max_num_batched_tokens: int,
        device: torch.device,
        pin_memory: bool,
        vocab_size: int,
        block_sizes: list[int],  # The block_size of each kv cache group
        kernel_block_sizes: list[int],
        logitsprocs: LogitsProcessors | None = None,
        logitsprocs_need_output_token_ids: bool = False,
        is_spec_decode: bool = False,
        is_pooling_model: bool = False,
        num_speculative_tokens: int = 0,
        cp_kv_cache_interleave_size: int = 1,
    ):
        self.is_pooling_model = is_pooling_model
        self.is_spec_decode = is_spec_decode
        self.max_num_reqs = max_num_reqs
        self.max_model_len = max_model_len
        self.max_num_batched_tokens = max_num_batched_tokens
        self.device = device
        self.pin_memory = pin_memory
        # (benchmark cut: token ids, block table, sampling parameter buffers)

        self.req_output_token_ids: list[list[int] | None] = []

        # Store provided logitsprocs. If none are provided, initialize empty
        # data structure
        self.logitsprocs = logitsprocs or LogitsProcessors()
        self.logitsprocs_need_output_token_ids = logitsprocs_need_output_token_ids

        # (benchmark cut: spec token ids, batch_update_builder setup)
        self.batch_update_builder = BatchUpdateBuilder()

        # This is updated each time the batch constituents change.
        self.sampling_metadata = self._make_sampling_metadata()

    def refresh_metadata(self):
        """Apply any batch updates to sampling metadata."""
        # (benchmark cut: pooling-model branch)

        # For non-pooling models - generate and apply logitsprocs update;
        # reset batch update tracking.
        # Update sampling metadata if batch state is changed.
        batch_update = self.batch_update_builder.get_and_reset(self.num_reqs)
        for logit_proc in self.logitsprocs.all:
            logit_proc.update_state(batch_update)
        if batch_update:
            self.sampling_metadata = self._make_sampling_metadata()

    def _make_sampling_metadata(self) -> SamplingMetadata:
        # (benchmark cut: temperature / top-p / top-k / penalties / allowed
        # token ids copies)
        return SamplingMetadata(
            temperature=None,
            all_greedy=True,
            all_random=False,
            top_p=None,
            top_k=None,
            generators={},
            max_num_logprobs=None,
            prompt_token_ids=None,
            frequency_penalties=None,
            presence_penalties=None,
            repetition_penalties=None,
            output_token_ids=cast(list[list[int]], self.req_output_token_ids),
            spec_token_ids=[],
            no_penalties=True,
            allowed_token_ids_mask=None,
            bad_words_token_ids={},
            logitsprocs=self.logitsprocs,
        )

    @property
    def num_reqs(self) -> int:
        return len(self.req_output_token_ids)
