from sglang.srt.model_executor.cuda_graph_runner import CudaGraphRunner
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, attn_backend, req_to_token_pool, device: str = "cuda"):
        self.model = model
        self.attn_backend = attn_backend
        self.req_to_token_pool = req_to_token_pool
        self.device = device
        self.cuda_graph_runner: CudaGraphRunner = None

    def forward_decode(self, forward_batch: ForwardBatch):
        if self.cuda_graph_runner is not None:
            return self.cuda_graph_runner.replay(forward_batch)
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward_extend(self, forward_batch: ForwardBatch):
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
