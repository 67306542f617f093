from typing import List

import torch


class ReqToTokenPool:
    """A memory pool that maps a request to its token locations."""

    def __init__(self, size: int, max_context_len: int, device: str):
        self.size = size
        self.max_context_len = max_context_len
        self.device = device
        self.req_to_token = torch.zeros(
            (size + 1, max_context_len), dtype=torch.int32, device=device
        )
        self.free_slots = list(range(1, size + 1))


class TokenToKVPoolAllocator:
    def __init__(self, size: int, page_size: int, device: str):
        self.size = size
        self.page_size = page_size
        self.device = device
        self.free_pages = torch.arange(1, size + 1, dtype=torch.int64, device=device)

    def alloc(self, need_size: int):
        select_index = self.free_pages[:need_size]
        self.free_pages = self.free_pages[need_size:]
        return select_index
