import torch

from sglang.srt.mem_cache.hisparse_memory_pool import (
    HiSparseDSATokenToKVPool,
    HiSparseTokenToKVPoolAllocator,
)
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.page_size = server_args.page_size
        self.enable_hisparse = server_args.enable_hisparse
        self.hisparse_coordinator = None
        self.tp_group = torch.distributed.group.WORLD
        self.init_memory_pool()
        self.initialize()

    def init_memory_pool(self, max_total_num_tokens: int = 65536):
        self.req_to_token_pool = ReqToTokenPool(
            size=self.server_args.max_running_requests,
            max_context_len=self.server_args.context_length + 4,
            device=self.device,
            enable_memory_saver=False,
        )
        self.token_to_kv_pool = HiSparseDSATokenToKVPool(
            max_total_num_tokens,
            page_size=self.page_size,
            layer_num=61,
            device=self.device,
        )
        self.token_to_kv_pool_allocator = HiSparseTokenToKVPoolAllocator(
            max_total_num_tokens,
            page_size=self.page_size,
            device=self.device,
            kvcache=self.token_to_kv_pool,
        )

    def initialize(self):
        if self.device == "cuda" or self.device == "musa":
            if self.enable_hisparse:
                from sglang.srt.managers.hisparse_coordinator import HiSparseCoordinator

                self.hisparse_coordinator = HiSparseCoordinator(
                    req_to_token_pool=self.req_to_token_pool,
                    token_to_kv_pool_allocator=self.token_to_kv_pool_allocator,
                    top_k=self.server_args.hisparse_top_k,
                    device_buffer_size=self.server_args.hisparse_device_buffer_size,
                    device=self.device,
                    tp_group=self.tp_group,
                    host_to_device_ratio=2,
                )
