# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the buffers and the attention-metadata build that bring the
# query_start_loc / seq_lens / block table tensors to the attention backend,
# plus the mm-prefix ranges the runner attaches to every layer's metadata.
# Scheduler output, sampling and the real model loader are dropped.
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.forward_context import set_forward_context
from vllm.model_executor.models.llama import LlamaAttention, LlamaForCausalLM
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.attention.backends.triton_attn import TritonAttentionBackend
from vllm.v1.utils import CpuGpuBuffer
from vllm.v1.worker.gpu_input_batch import CachedRequestState, InputBatch
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
        self.is_mm_prefix_lm = self.model_config.is_mm_prefix_lm

        self.attn_groups: list[list[AttentionGroup]] = []
        self.model = None
        self.no_compile_layers: dict = {}

        # Request states.
        self.requests: dict[str, CachedRequestState] = {}
        self.input_batch = InputBatch(max_num_reqs=self.max_num_reqs)

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

    def load_model(self, num_layers: int = 2) -> None:
        # (benchmark stand-in for the model loader: one Triton attention
        #  layer per decoder layer, built on the runner's device)
        num_heads = self.model_config.get_num_attention_heads()
        head_size = self.model_config.get_head_size()
        impl_cls = TritonAttentionBackend.get_impl_cls()
        with torch.device(self.device):
            layers = [
                LlamaAttention(
                    impl_cls(
                        num_heads,
                        head_size,
                        head_size**-0.5,
                        self.model_config.get_num_kv_heads(),
                    ),
                    f"model.layers.{i}.self_attn",
                    num_heads,
                    head_size,
                )
                for i in range(num_layers)
            ]
            self.model = LlamaForCausalLM(layers, num_heads * head_size)
        for layer in layers:
            self.no_compile_layers[layer.attn.layer_name] = layer.attn

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

        if self.is_mm_prefix_lm:
            req_doc_ranges = {}
            for req_id in self.input_batch.req_ids:
                image_doc_ranges = []
                req_state = self.requests[req_id]
                for mm_feature in req_state.mm_features:
                    pos_info = mm_feature.mm_position
                    img_doc_range = pos_info.extract_embeds_range()
                    image_doc_ranges.extend(img_doc_range)
                req_idx = self.input_batch.req_id_to_index[req_id]
                req_doc_ranges[req_idx] = image_doc_ranges

            if isinstance(attn_metadata, list):
                for ub_metadata in attn_metadata:
                    for _metadata in ub_metadata.values():
                        _metadata.mm_prefix_range = req_doc_ranges  # type: ignore[attr-defined]
            else:
                for _metadata in attn_metadata.values():
                    _metadata.mm_prefix_range = req_doc_ranges  # type: ignore[attr-defined]
        return attn_metadata

    def execute_model(
        self, num_scheduled_tokens: np.ndarray, num_computed_tokens_np: np.ndarray
    ):
        num_reqs = len(num_scheduled_tokens)
        num_tokens = self._prepare_inputs(num_scheduled_tokens, num_computed_tokens_np)
        max_query_len = int(num_scheduled_tokens.max())
        attn_metadata = self._build_attention_metadata(
            num_tokens, num_reqs, max_query_len
        )
        with set_forward_context(
            attn_metadata,
            self.vllm_config,
            no_compile_layers=self.no_compile_layers,
        ):
            hidden_states = self.model(
                positions=self.positions[:num_tokens],
            )
        return hidden_states
