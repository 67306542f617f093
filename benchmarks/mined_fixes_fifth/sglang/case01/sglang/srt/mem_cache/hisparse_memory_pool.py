import torch


class HiSparseDSATokenToKVPool:
    def __init__(self, size: int, page_size: int, layer_num: int, device: str):
        self.size = size
        self.page_size = page_size
        self.layer_num = layer_num
        self.kv_cache_dim = 576
        self.device = device
        self.full_to_hisparse_device_index_mapping = torch.zeros(
            size + page_size, dtype=torch.int64, device=device
        )

    def translate_loc_from_full_to_compressed(self, locs: torch.Tensor):
        return locs


class _HiSparseAttnAllocator:
    def __init__(self, size: int, device: str):
        self.size = size
        self.device = device
        self.free_pages = torch.arange(1, size + 1, dtype=torch.int64, device=device)

    def available_size(self):
        return len(self.free_pages)

    def alloc(self, need_size: int):
        if need_size > len(self.free_pages):
            return None
        out = self.free_pages[:need_size]
        self.free_pages = self.free_pages[need_size:]
        return out


class HiSparseTokenToKVPoolAllocator:
    def __init__(self, size: int, page_size: int, device: str, kvcache):
        self.size = size
        self.size_full = size
        self.page_size = page_size
        self.device = device
        self.compress_ratio = 1
        self._kvcache = kvcache
        self.hisparse_attn_allocator = _HiSparseAttnAllocator(size, device)
        self.free_pages = torch.arange(1, size + 1, dtype=torch.int64, device=device)

    def get_kvcache(self):
        return self._kvcache

    def available_size(self):
        return len(self.free_pages)

    def alloc(self, need_size: int):
        if need_size > len(self.free_pages):
            return None
        select_index = self.free_pages[:need_size]
        self.free_pages = self.free_pages[need_size:]
        return select_index

    def alloc_device_buffer(self, compressed_logical_indices, alloc_size: int):
        return self.hisparse_attn_allocator.alloc(alloc_size)

    def get_last_loc_compressed(self, out_cache_loc: torch.Tensor) -> torch.Tensor:
        return out_cache_loc // self.compress_ratio


class DeepSeekV4HiSparseTokenToKVPoolAllocator(HiSparseTokenToKVPoolAllocator):
    pass


class DeepSeekV4SingleKVPoolHost:
    def __init__(self, device_pool, host_size: int, page_size: int):
        self.device_pool = device_pool
        self.page_size = page_size
        self.kv_cache_total_dim = 576
        self.dtype = torch.bfloat16
