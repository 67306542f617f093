import torch

from sglang.srt.mem_cache.allocator import PagedTokenToKVPoolAllocator
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.page_size = server_args.page_size
        self.init_memory_pool()

    def init_memory_pool(self, max_total_num_tokens: int = 65536):
        self.req_to_token_pool = ReqToTokenPool(
            size=self.server_args.max_running_requests,
            max_context_len=self.server_args.context_length + 4,
            device=self.device,
        )
        self.token_to_kv_pool = None
        self.token_to_kv_pool_allocator = PagedTokenToKVPoolAllocator(
            max_total_num_tokens,
            page_size=self.page_size,
            dtype=torch.bfloat16,
            device=self.device,
            kvcache=self.token_to_kv_pool,
            need_sort=False,
        )
