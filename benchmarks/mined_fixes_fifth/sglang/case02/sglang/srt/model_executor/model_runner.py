from sglang.srt.layers.attention.hybrid_linear_attn_backend import (
    HybridLinearAttnBackend,
    KimiLinearAttnBackend,
)
from sglang.srt.layers.attention.triton_backend import TritonAttnBackend
from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool
from sglang.srt.model_executor.cuda_graph_runner import CudaGraphRunner
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.server_args import ServerArgs


class SpeculativeAlgorithm:
    def is_eagle(self):
        return False


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.spec_algorithm = SpeculativeAlgorithm()
        self.req_to_token_pool = HybridReqToTokenPool(
            size=server_args.max_running_requests,
            max_context_len=server_args.context_length + 4,
            device=self.device,
        )
        self.init_attention_backend()
        self.init_device_graphs()

    def init_attention_backend(self):
        full_attn_backend = TritonAttnBackend(self)
        linear_attn_backend = KimiLinearAttnBackend(self)
        full_attn_layers = [3, 7, 11, 15, 19, 23]
        self.attn_backend = HybridLinearAttnBackend(
            full_attn_backend, linear_attn_backend, full_attn_layers
        )

    def init_device_graphs(self):
        self.graph_runner = CudaGraphRunner(self)

    def forward_decode(self, forward_batch: ForwardBatch):
        return self.graph_runner.replay(forward_batch)
