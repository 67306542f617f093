import torch

from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.spec_decode.eagle import EagleProposer
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:

    def __init__(self, vllm_config, device: torch.device):
        self.vllm_config = vllm_config
        self.scheduler_config = vllm_config.scheduler_config
        self.device = device
        self.pin_memory = True
        self.max_num_reqs = self.scheduler_config.max_num_seqs
        self.drafter = EagleProposer(self.vllm_config, self.device, self)
        self.query_start_loc = self._make_buffer(self.max_num_reqs + 1,
                                                 dtype=torch.int32)
        self.seq_lens = self._make_buffer(self.max_num_reqs, dtype=torch.int32)

    def _make_buffer(self, *size: int, dtype: torch.dtype) -> CpuGpuBuffer:
        return CpuGpuBuffer(*size,
                            dtype=dtype,
                            device=self.device,
                            pin_memory=self.pin_memory)

    def _build_common_attn_metadata(self, num_reqs: int, num_tokens: int,
                                    max_query_len: int, blk_table
                                    ) -> CommonAttentionMetadata:
        # async scheduling: the CPU seq_lens are not known, only the GPU ones
        return CommonAttentionMetadata(
            query_start_loc=self.query_start_loc.gpu[:num_reqs + 1],
            query_start_loc_cpu=self.query_start_loc.cpu[:num_reqs + 1],
            seq_lens=self.seq_lens.gpu[:num_reqs],
            num_reqs=num_reqs,
            num_actual_tokens=num_tokens,
            max_query_len=max_query_len,
            max_seq_len=self.max_model_len,
            block_table_tensor=blk_table.get_device_tensor(num_reqs),
            slot_mapping=blk_table.slot_mapping.gpu[:num_tokens],
            causal=True,
        )

    def propose_draft_token_ids(self, scheduler_output, sampled_token_ids,
                                spec_decode_metadata, common_attn_metadata):
        if spec_decode_metadata is None:
            token_indices = None
        else:
            common_attn_metadata, token_indices = self.drafter.prepare_inputs(
                common_attn_metadata, sampled_token_ids,
                spec_decode_metadata.num_draft_tokens)
        return common_attn_metadata, token_indices
