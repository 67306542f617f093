from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, MambaPool
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, mamba_layers, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        mamba_pool = MambaPool(
            size=512,
            num_layers=len(mamba_layers),
            conv_shape=(8192, 3),
            temporal_shape=(32, 128, 128),
            device=self.device,
        )
        self.req_to_token_pool = HybridReqToTokenPool(
            size=256, mamba_pool=mamba_pool, mamba_layers=mamba_layers, device=self.device
        )
