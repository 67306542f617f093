from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, model_is_mrope: bool, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        # Qwen3.5 (hybrid GDN + M-RoPE)
        self.model_is_mrope = model_is_mrope
        self.req_to_token_pool = HybridReqToTokenPool(
            size=256,
            mamba_size=1024,
            max_context_len=4096,
            device=self.device,
            enable_mamba_extra_buffer=server_args.enable_mamba_extra_buffer(),
        )
