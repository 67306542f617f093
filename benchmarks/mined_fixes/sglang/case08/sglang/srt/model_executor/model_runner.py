from sglang.srt.layers.attention.triton_backend import TritonAttnBackend
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, server_args, req_to_token_pool):
        self.model = model
        self.device = server_args.device
        self.req_to_token_pool = req_to_token_pool
        self.attn_backend = TritonAttnBackend(self)

    def forward_extend(self, forward_batch: ForwardBatch):
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward(self, forward_batch: ForwardBatch):
        return self.forward_extend(forward_batch)
