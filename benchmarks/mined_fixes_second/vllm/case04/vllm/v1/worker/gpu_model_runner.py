# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
from typing import Optional

import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.v1.attention.backends.utils import CommonAttentionMetadata
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:
    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.speculative_config = vllm_config.speculative_config
        self.device = device
        self.pin_memory = torch.cuda.is_available()
        self.max_model_len = self.model_config.max_model_len
        self.max_num_reqs = 256
        self.max_num_tokens = 8192

        self.query_start_loc = self._make_buffer(self.max_num_reqs + 1,
                                                 dtype=torch.int32)
        self.seq_lens = self._make_buffer(self.max_num_reqs, dtype=torch.int32)
        self.block_table = self._make_buffer(self.max_num_reqs, 512,
                                             dtype=torch.int32)
        self.slot_mapping = self._make_buffer(self.max_num_tokens,
                                              dtype=torch.int64)
        self.num_computed_tokens_cpu = np.zeros(self.max_num_reqs,
                                                dtype=np.int32)
        self._draft_token_ids = None

    def _make_buffer(self, *size, dtype) -> CpuGpuBuffer:
        return CpuGpuBuffer(*size,
                            dtype=dtype,
                            device=self.device,
                            pin_memory=self.pin_memory)

    def _prepare_inputs(
        self,
        num_scheduled_tokens: np.ndarray,
    ) -> Optional[CommonAttentionMetadata]:
        num_reqs = len(num_scheduled_tokens)
        total_num_scheduled_tokens = int(num_scheduled_tokens.sum())
        max_num_scheduled_tokens = int(num_scheduled_tokens.max())

        self.query_start_loc.np[0] = 0
        self.query_start_loc.np[1:num_reqs + 1] = np.cumsum(
            num_scheduled_tokens)
        self.query_start_loc.copy_to_gpu()
        query_start_loc = self.query_start_loc.gpu[:num_reqs + 1]

        self.seq_lens.np[:num_reqs] = (
            self.num_computed_tokens_cpu[:num_reqs] + num_scheduled_tokens)
        # Fill unused with 0 for full cuda graph mode.
        self.seq_lens.np[num_reqs:].fill(0)
        self.seq_lens.copy_to_gpu()
        seq_lens = self.seq_lens.gpu[:num_reqs]
        max_seq_len = self.seq_lens.np[:num_reqs].max().item()

        # Used in the below loop.
        query_start_loc_cpu = self.query_start_loc.cpu[:num_reqs + 1]
        seq_lens_cpu = self.seq_lens.cpu[:num_reqs]
        num_computed_tokens_cpu = torch.from_numpy(
            self.num_computed_tokens_cpu[:num_reqs])
        spec_decode_common_attn_metadata = None

        common_attn_metadata = CommonAttentionMetadata(
            query_start_loc=query_start_loc,
            query_start_loc_cpu=query_start_loc_cpu,
            seq_lens=seq_lens,
            seq_lens_cpu=seq_lens_cpu,
            num_computed_tokens_cpu=num_computed_tokens_cpu,
            num_reqs=num_reqs,
            num_actual_tokens=total_num_scheduled_tokens,
            max_query_len=max_num_scheduled_tokens,
            max_seq_len=max_seq_len,
            block_table_tensor=self.block_table.gpu[:num_reqs],
            slot_mapping=self.slot_mapping.gpu[:total_num_scheduled_tokens],
            causal=True,
        )

        if (self.speculative_config
                and spec_decode_common_attn_metadata is None):
            spec_decode_common_attn_metadata = common_attn_metadata
        return spec_decode_common_attn_metadata

    def propose_draft_token_ids(
        self,
        sampled_token_ids,
        common_attn_metadata: CommonAttentionMetadata,
    ):
        return sampled_token_ids

    @torch.inference_mode()
    def execute_model(
        self,
        num_scheduled_tokens: np.ndarray,
        logits: torch.Tensor,
    ):
        spec_decode_common_attn_metadata = self._prepare_inputs(
            num_scheduled_tokens)

        sampled_token_ids = logits.argmax(dim=-1)

        def propose_draft_token_ids(sampled_token_ids):
            assert spec_decode_common_attn_metadata is not None
            self._draft_token_ids = self.propose_draft_token_ids(
                sampled_token_ids,
                spec_decode_common_attn_metadata,
            )

        use_padded_batch_for_eagle = self.speculative_config and \
            self.speculative_config.use_eagle() and \
            not self.speculative_config.disable_padded_drafter_batch
        effective_drafter_max_model_len = self.max_model_len
        if effective_drafter_max_model_len is None:
            effective_drafter_max_model_len = self.model_config.max_model_len
        if (self.speculative_config
                and self.speculative_config.draft_model_config is not None
                and self.speculative_config.draft_model_config.max_model_len
                is not None):
            effective_drafter_max_model_len = (
                self.speculative_config.draft_model_config.max_model_len)
        input_fits_in_drafter = spec_decode_common_attn_metadata and (
            spec_decode_common_attn_metadata.seq_lens.max() +
            self.speculative_config.num_speculative_tokens
            <= effective_drafter_max_model_len)
        if use_padded_batch_for_eagle and input_fits_in_drafter:  # SYNC (pre-fix, #25884)
            # EAGLE speculative decoding can use the GPU sampled tokens
            # as inputs, and does not need to wait for bookkeeping to finish.
            propose_draft_token_ids(sampled_token_ids)

        if (self.speculative_config and not use_padded_batch_for_eagle  # SYNC (pre-fix, #25884)
                and input_fits_in_drafter):
            # ngram and other speculative decoding methods use the sampled
            # tokens on the CPU, so they are run after bookkeeping.
            propose_draft_token_ids(sampled_token_ids)

        return sampled_token_ids
