import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:

    def __init__(self, vllm_config: VllmConfig, device: torch.device):
        self.vllm_config = vllm_config
        self.scheduler_config = vllm_config.scheduler_config
        self.device = device
        self.pin_memory = True
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.max_num_reqs = self.scheduler_config.max_num_seqs

        self.query_start_loc = self._make_buffer(self.max_num_reqs + 1,
                                                 dtype=torch.int32)
        self.seq_lens = self._make_buffer(self.max_num_reqs, dtype=torch.int32)
        self.attn_groups = []

    def _make_buffer(self, *size: int, dtype: torch.dtype) -> CpuGpuBuffer:
        return CpuGpuBuffer(*size,
                            dtype=dtype,
                            device=self.device,
                            pin_memory=self.pin_memory)

    def _build_attention_metadata(self, num_reqs: int, num_tokens: int,
                                  max_query_len: int):
        self.query_start_loc.copy_to_gpu()
        self.seq_lens.copy_to_gpu()
        attn_metadata = {}
        for kv_cache_gid, kv_cache_group in enumerate(
                self.kv_cache_config.kv_cache_groups):
            blk_table = self.input_batch.block_table[kv_cache_gid]
            common_attn_metadata = CommonAttentionMetadata(
                query_start_loc=self.query_start_loc.gpu[:num_reqs + 1],
                query_start_loc_cpu=self.query_start_loc.cpu[:num_reqs + 1],
                seq_lens=self.seq_lens.gpu[:num_reqs],
                num_reqs=num_reqs,
                num_actual_tokens=num_tokens,
                max_query_len=max_query_len,
                max_seq_len=int(self.seq_lens.np[:num_reqs].max()),
                block_table_tensor=blk_table.get_device_tensor(num_reqs),
                slot_mapping=blk_table.slot_mapping.gpu[:num_tokens],
                causal=True,
                _seq_lens_cpu=self.seq_lens.cpu[:num_reqs],
            )
            for attn_group in self.attn_groups[kv_cache_gid]:
                builder = attn_group.get_metadata_builder()
                attn_metadata_i = builder.build(
                    common_prefix_len=0,
                    common_attn_metadata=common_attn_metadata,
                )
                for layer_name in attn_group.layer_names:
                    attn_metadata[layer_name] = attn_metadata_i
        return attn_metadata
