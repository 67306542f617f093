from sglang.srt.layers.attention.flashattention_backend import FlashAttentionBackend
from sglang.srt.model_executor.cuda_graph_runner import CudaGraphRunner
from sglang.srt.model_executor.forward_batch_info import ForwardBatch

# (benchmark cut: distributed init, model loading, memory pools, sampling)


class ModelRunner:
    """ModelRunner runs the forward passes of the models."""

    def __init__(self, model_config, gpu_id: int, server_args, req_to_token_pool, is_draft_worker=False):
        self.model_config = model_config
        self.gpu_id = gpu_id
        self.server_args = server_args
        self.device = server_args.device
        self.is_draft_worker = is_draft_worker
        self.spec_algorithm_is_eagle = server_args.speculative_algorithm == "EAGLE"
        self.page_size = server_args.page_size
        self.sliding_window_size = None
        self.kv_cache_dtype = model_config.dtype
        # (benchmark cut: init_memory_pool; the ReqToTokenPool holds
        # req_to_token = torch.zeros((size, max_context_len), dtype=torch.int32, device=device))
        self.req_to_token_pool = req_to_token_pool
        self.init_attention_backend()
        self.init_cuda_graphs()

    def init_attention_backend(self):
        """Init attention kernel backend."""
        # (benchmark cut: the other attention backends)
        if self.server_args.attention_backend == "fa3":
            self.attn_backend = FlashAttentionBackend(self)

    def init_cuda_graphs(self):
        """Capture cuda graphs."""
        self.cuda_graph_runner = None
        if self.server_args.disable_cuda_graph:
            return
        self.cuda_graph_runner = CudaGraphRunner(self)

    def forward_target_verify(self, forward_batch: ForwardBatch):
        # (benchmark cut: the eager forward path of the model)
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward(self, forward_batch: ForwardBatch, skip_attn_backend_init: bool = False):
        if (
            self.cuda_graph_runner
            and forward_batch.batch_size <= self.cuda_graph_runner.max_bs
        ):
            return self.cuda_graph_runner.replay(
                forward_batch, skip_attn_backend_init=skip_attn_backend_init
            )
        return self.forward_target_verify(forward_batch)
