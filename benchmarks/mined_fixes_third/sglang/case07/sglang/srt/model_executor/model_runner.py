import torch

from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, MambaPool
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.init_memory_pool()

    def init_memory_pool(self):
        mamba_pool = MambaPool(
            size=1024,
            num_mamba_layers=48,
            conv_state_shape=((8192, 3),),
            temporal_state_shape=(32, 128, 128),
            conv_dtype=torch.bfloat16,
            ssm_dtype=torch.float32,
            device=self.device,
        )
        self.req_to_token_pool = HybridReqToTokenPool(
            size=256,
            mamba_pool=mamba_pool,
            max_context_len=4096,
            device=self.device,
            enable_memory_saver=False,
            enable_mamba_extra_buffer=self.server_args.enable_mamba_extra_buffer(),
        )
