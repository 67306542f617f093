import torch


class MLATokenToKVPoolHost:
    def __init__(
        self,
        device_pool,
        host_to_device_ratio: float,
        host_size: int,
        page_size: int,
        layout: str,
        override_kv_cache_dim: int = None,
    ):
        self.device_pool = device_pool
        self.page_size = page_size
        self.size = int(device_pool.size * host_to_device_ratio)
        self.token_stride_size = override_kv_cache_dim * 2
        self.kv_buffer = torch.empty(
            (device_pool.layer_num, self.size, override_kv_cache_dim),
            dtype=torch.bfloat16,
            pin_memory=True,
        )
        self._next = 0

    def alloc_paged_token_slots(
        self, req_to_host_pool, allocated_len, req_idx, start_pos, num_tokens
    ):
        locs = torch.arange(self._next, self._next + num_tokens, dtype=torch.int64)
        self._next += num_tokens
        return locs

    def backup_from_device_all_layer(
        self, device_pool, host_indices, device_indices, io_backend
    ):
        # transfer kernel (stand-in)
        pass
