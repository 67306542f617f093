import torch


class RadixCache:
    def __init__(self, req_to_token_pool, token_to_kv_pool_allocator, page_size: int):
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator
        self.page_size = page_size
        self.device = token_to_kv_pool_allocator.device

    def match_prefix(self, key):
        # Nothing cached in this cut-down tree: an empty device tensor.
        return torch.empty((0,), dtype=torch.int64, device=self.device)
