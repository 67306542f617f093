import torch

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
        self.attn_backend = None
        self.model = None

    @property
    def model_is_mrope(self) -> bool:
        """Detect if the model has "mrope" rope_scaling type.
        mrope requires keep "rope_deltas" between prompt and decoding phases."""
        rope_scaling = getattr(self.model_config.hf_text_config, "rope_scaling", {})
        if rope_scaling is None:
            return False
        is_mrope_enabled = "mrope_section" in rope_scaling
        return is_mrope_enabled

    def forward_decode(self, forward_batch: ForwardBatch):
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward_extend(self, forward_batch: ForwardBatch):
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward(self, forward_batch: ForwardBatch):
        if forward_batch.forward_mode.is_decode():
            return self.forward_decode(forward_batch)
        return self.forward_extend(forward_batch)
