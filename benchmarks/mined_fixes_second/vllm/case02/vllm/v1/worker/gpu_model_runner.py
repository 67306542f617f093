# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.attention.backends.gdn_attn import (
    GDNAttentionMetadata,
    GDNAttentionMetadataBuilder,
)
from vllm.v1.kv_cache_interface import MambaSpec
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:
    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.device = device
        self.pin_memory = torch.cuda.is_available()
        self.max_num_reqs = vllm_config.scheduler_config.max_num_seqs
        self.max_num_tokens = 8192
        self.max_model_len = 8192
        self.block_size = 16

        self.query_start_loc = self._make_buffer(
            self.max_num_reqs + 1, dtype=torch.int32
        )
        self.seq_lens = self._make_buffer(self.max_num_reqs, dtype=torch.int32)
        self.block_table = self._make_buffer(
            self.max_num_reqs, self.max_model_len // self.block_size, dtype=torch.int32
        )
        self.slot_mapping = self._make_buffer(self.max_num_tokens, dtype=torch.int64)
        self.num_decode_draft_tokens = self._make_buffer(
            self.max_num_reqs, dtype=torch.int32
        )
        self.num_accepted_tokens = self._make_buffer(
            self.max_num_reqs, dtype=torch.int64
        )
        self.num_accepted_tokens_cpu = np.ones(self.max_num_reqs, dtype=np.int64)

        self.builder = GDNAttentionMetadataBuilder(
            MambaSpec(block_size=self.block_size),
            ["model.layers.0.linear_attn"],
            vllm_config,
            device,
        )

    def _make_buffer(self, *size: int, dtype: torch.dtype) -> CpuGpuBuffer:
        return CpuGpuBuffer(
            *size, dtype=dtype, device=self.device, pin_memory=self.pin_memory
        )

    def _prepare_inputs(self, num_reqs: int, draft_token_ids: dict[int, list[int]]):
        num_decode_draft_tokens = np.full(num_reqs, -1, dtype=np.int32)
        for req_idx, draft in draft_token_ids.items():
            num_decode_draft_tokens[req_idx] = len(draft)
        self.num_decode_draft_tokens.np[:num_reqs] = num_decode_draft_tokens
        self.num_decode_draft_tokens.np[num_reqs:].fill(-1)
        self.num_decode_draft_tokens.copy_to_gpu()

        self.query_start_loc.copy_to_gpu()
        self.seq_lens.copy_to_gpu()
        self.block_table.copy_to_gpu()

    def _build_attention_metadata(
        self,
        num_tokens: int,
        num_reqs: int,
        max_query_len: int,
        use_spec_decode: bool = False,
    ) -> GDNAttentionMetadata:
        max_seq_len = self.seq_lens.np[:num_reqs].max().item()

        if use_spec_decode:
            self.num_accepted_tokens.np[:num_reqs] = self.num_accepted_tokens_cpu[
                :num_reqs
            ]
            self.num_accepted_tokens.np[num_reqs:].fill(1)
            self.num_accepted_tokens.copy_to_gpu()

        common_attn_metadata = CommonAttentionMetadata(
            query_start_loc=self.query_start_loc.gpu[: num_reqs + 1],
            query_start_loc_cpu=self.query_start_loc.cpu[: num_reqs + 1],
            seq_lens=self.seq_lens.gpu[:num_reqs],
            num_reqs=num_reqs,
            num_actual_tokens=num_tokens,
            max_query_len=max_query_len,
            max_seq_len=max_seq_len,
            block_table_tensor=self.block_table.gpu[:num_reqs],
            slot_mapping=self.slot_mapping.gpu[:num_tokens],
            causal=True,
        )

        extra_attn_metadata_args = {}
        if use_spec_decode and isinstance(self.builder, GDNAttentionMetadataBuilder):
            extra_attn_metadata_args = dict(
                num_accepted_tokens=self.num_accepted_tokens.gpu[:num_reqs],
                num_decode_draft_tokens_cpu=self.num_decode_draft_tokens.cpu[:num_reqs],
            )

        return self.builder.build(
            common_prefix_len=0,
            common_attn_metadata=common_attn_metadata,
            **extra_attn_metadata_args,
        )
