# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the buffers and the attention-metadata build that bring the
# query_start_loc / seq_lens / block table tensors to the attention backend.
# Scheduler output, the input batch and the model forward are dropped.
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.utils import CpuGpuBuffer
from vllm.v1.worker.utils import AttentionGroup


class GPUModelRunner:
    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.cache_config = vllm_config.cache_config
        self.scheduler_config = vllm_config.scheduler_config
        self.device = device
        self.pin_memory = True
        self.max_num_reqs = self.scheduler_config.max_num_seqs
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.max_model_len = self.model_config.max_model_len
        self.max_num_blocks_per_req = self.max_model_len // self.cache_config.block_size

        self.attn_groups: list[list[AttentionGroup]] = []

        # Persistent buffers for CUDA graphs.
        self.positions = torch.zeros(
            self.max_num_tokens, dtype=torch.int64, device=self.device
        )
        self.query_start_loc = self._make_buffer(
            self.max_num_reqs + 1, dtype=torch.int32
        )
        self.seq_lens = torch.zeros(
            self.max_num_reqs, dtype=torch.int32, device=self.device
        )
        self.optimistic_seq_lens_cpu = torch.zeros(
            self.max_num_reqs, dtype=torch.int32, pin_memory=self.pin_memory
        )
        self.num_computed_tokens = torch.zeros(
            self.max_num_reqs, dtype=torch.int32, device=self.device
        )
        self.num_scheduled_tokens = self._make_buffer(
            self.max_num_reqs, dtype=torch.int32
        )
        self.block_table = self._make_buffer(
            self.max_num_reqs, self.max_num_blocks_per_req, dtype=torch.int32
        )
        self.slot_mapping = torch.zeros(
            self.max_num_tokens, dtype=torch.int64, device=self.device
        )

    def _make_buffer(
        self, *size: int | torch.SymInt, dtype: torch.dtype, numpy: bool = True
    ) -> CpuGpuBuffer:
        return CpuGpuBuffer(
            *size,
            dtype=dtype,
            device=self.device,
            pin_memory=self.pin_memory,
            with_numpy=numpy,
        )

    def initialize_attn_backends(self, attn_groups: list[list[AttentionGroup]]):
        self.attn_groups = attn_groups
        for groups in self.attn_groups:
            for attn_group in groups:
                attn_group.create_metadata_builders(self.vllm_config, self.device)

    def _prepare_inputs(
        self, num_scheduled_tokens: np.ndarray, num_computed_tokens_np: np.ndarray
    ) -> int:
        num_reqs = len(num_scheduled_tokens)
        cu_num_tokens = np.cumsum(num_scheduled_tokens)

        # Prepare the attention metadata.
        self.query_start_loc.np[0] = 0
        self.query_start_loc.np[1 : num_reqs + 1] = cu_num_tokens
        # Note: pad query_start_loc to be non-decreasing, as kernels
        # like FlashAttention requires that
        self.query_start_loc.np[num_reqs + 1 :].fill(cu_num_tokens[-1])
        self.query_start_loc.copy_to_gpu()

        self.optimistic_seq_lens_cpu[:num_reqs] = torch.from_numpy(
            num_computed_tokens_np + num_scheduled_tokens
        )

        self.num_scheduled_tokens.np[:num_reqs] = num_scheduled_tokens
        self.num_scheduled_tokens.copy_to_gpu(num_reqs)
        num_scheduled_tokens_gpu = self.num_scheduled_tokens.gpu[:num_reqs]
        self.seq_lens[:num_reqs] = (
            self.num_computed_tokens[:num_reqs] + num_scheduled_tokens_gpu
        )
        self.seq_lens[num_reqs:].fill_(0)
        self.block_table.copy_to_gpu(num_reqs)
        return int(cu_num_tokens[-1])

    def _build_attention_metadata(
        self,
        num_tokens: int,
        num_reqs: int,
        max_query_len: int,
    ) -> dict:
        attn_metadata: dict = {}
        max_seq_len = self.optimistic_seq_lens_cpu.numpy()[:num_reqs].max().item()
        seq_lens_cpu = self.optimistic_seq_lens_cpu[:num_reqs]

        cm_base = CommonAttentionMetadata(
            query_start_loc=self.query_start_loc.gpu[: num_reqs + 1],
            query_start_loc_cpu=self.query_start_loc.cpu[: num_reqs + 1],
            seq_lens=self.seq_lens[:num_reqs],
            _seq_lens_cpu=seq_lens_cpu,
            num_reqs=num_reqs,
            num_actual_tokens=num_tokens,
            max_query_len=max_query_len,
            max_seq_len=max_seq_len,
            block_table_tensor=self.block_table.gpu[:num_reqs],
            slot_mapping=self.slot_mapping[:num_tokens],
            causal=True,
        )

        for kv_cache_gid, groups in enumerate(self.attn_groups):
            for attn_gid in range(len(groups)):
                attn_group = self.attn_groups[kv_cache_gid][attn_gid]
                builder = attn_group.get_metadata_builder(0)
                attn_metadata_i = builder.build(
                    common_prefix_len=0,
                    common_attn_metadata=cm_base,
                )
                for layer_name in attn_group.layer_names:
                    attn_metadata[layer_name] = attn_metadata_i
        return attn_metadata

    def execute_model(
        self, num_scheduled_tokens: np.ndarray, num_computed_tokens_np: np.ndarray
    ) -> dict:
        num_reqs = len(num_scheduled_tokens)
        num_tokens = self._prepare_inputs(num_scheduled_tokens, num_computed_tokens_np)
        max_query_len = int(num_scheduled_tokens.max())
        attn_metadata = self._build_attention_metadata(
            num_tokens, num_reqs, max_query_len
        )
        # (benchmark cut: the model forward under set_forward_context)
        return attn_metadata
