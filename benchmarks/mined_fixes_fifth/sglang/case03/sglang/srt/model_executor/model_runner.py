import torch

from sglang.srt.layers.attention.trtllm_mla_backend import TRTLLMMLABackend
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.server_args import ServerArgs, set_global_server_args


class ReqToTokenPool:
    def __init__(self, size: int, max_context_len: int, device: str):
        self.device = device
        self.req_to_token = torch.zeros(
            (size, max_context_len), dtype=torch.int32, device=device
        )


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int, model_config):
        self.server_args = server_args
        set_global_server_args(server_args)
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.model_config = model_config
        self.page_size = server_args.page_size
        self.req_to_token_pool = ReqToTokenPool(256, 4096, device=self.device)
        self.model = None
        self.init_attention_backend()

    def init_attention_backend(self):
        if self.server_args.attention_backend == "trtllm_mla":
            self.attn_backend = TRTLLMMLABackend(self)

    def forward_extend(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool = False,
    ):
        if not skip_attn_backend_init:
            self.attn_backend.init_forward_metadata(forward_batch)

        return self.model.forward(
            forward_batch.input_ids,
            forward_batch.positions,
            forward_batch,
        )

    def forward(self, forward_batch: ForwardBatch):
        if forward_batch.forward_mode.is_extend():
            return self.forward_extend(forward_batch)
        raise NotImplementedError()
