import torch

from sglang.srt.layers.attention.aiter_backend import AiterAttnBackend
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.models.deepseek_v2 import DeepseekV2ForCausalLM
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.model = DeepseekV2ForCausalLM().to(self.device)
        self.token_to_kv_pool = None
        self.attn_backend = AiterAttnBackend(self)

    def forward_extend(self, forward_batch: ForwardBatch):
        forward_batch.attn_backend = self.attn_backend
        forward_batch.token_to_kv_pool = self.token_to_kv_pool
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
