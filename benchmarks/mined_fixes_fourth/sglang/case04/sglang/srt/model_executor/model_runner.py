from sglang.srt.layers.attention.deepseek_v4_backend_hip_radix import (
    DeepseekV4HipRadixBackend,
)
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.page_size = server_args.page_size
        self.req_to_token_pool = ReqToTokenPool(
            server_args.max_running_requests,
            server_args.context_length,
            device=self.device,
        )
        self.cuda_graph_bs = set(range(1, 65))
        self.attn_backend = DeepseekV4HipRadixBackend(self)

    def forward(self, forward_batch: ForwardBatch):
        can_run_graph = forward_batch.batch_size in self.cuda_graph_bs
        if can_run_graph:
            # Replay: the graph runner prepares the captured metadata.
            self.attn_backend.init_forward_metadata_out_graph(forward_batch)
        else:
            self.attn_backend.init_forward_metadata(forward_batch)
        # Model forward (DeepseekV4 layers) is cut.
        return can_run_graph
