import torch

from sglang.srt.layers.attention.flashinfer_backend import FlashInferAttnBackend
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.model_executor.cuda_graph_runner import CudaGraphRunner
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.server_args import ServerArgs


class SpeculativeAlgorithm:
    def is_eagle(self):
        return False


class ModelRunner:
    def __init__(self, server_args: ServerArgs, model_config, gpu_id: int = 0):
        self.server_args = server_args
        self.model_config = model_config
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.spec_algorithm = SpeculativeAlgorithm()
        self.kv_cache_dtype = torch.bfloat16
        self.dtype = torch.bfloat16
        self.sliding_window_size = None
        self.req_to_token_pool = ReqToTokenPool(
            size=server_args.max_running_requests,
            max_context_len=server_args.context_length + 4,
            device=self.device,
        )
        self.token_to_kv_pool_allocator = None
        self.init_attention_backend()
        self.init_device_graphs()

    def init_attention_backend(self):
        self.attn_backend = FlashInferAttnBackend(self)

    def init_device_graphs(self):
        self.graph_runner = CudaGraphRunner(self)

    def forward_decode(self, forward_batch: ForwardBatch):
        return self.graph_runner.replay(forward_batch)
