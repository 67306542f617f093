import torch


class PagedTokenToKVPoolAllocator:
    def __init__(self, size: int, page_size: int, device: str):
        self.size = size
        self.page_size = page_size
        self.device = device
        self.num_pages = size // page_size
        self.free_pages = torch.arange(
            1, self.num_pages + 1, dtype=torch.int64, device=self.device
        )

    def alloc(self, need_size: int):
        num_pages = need_size // self.page_size
        out_pages = self.free_pages[:num_pages]
        self.free_pages = self.free_pages[num_pages:]
        out_indices = (
            out_pages[:, None] * self.page_size
            + torch.arange(self.page_size, device=self.device)
        ).reshape(-1)
        return out_indices

    def alloc_extend(
        self,
        prefix_lens: torch.Tensor,
        prefix_lens_cpu: torch.Tensor,
        seq_lens: torch.Tensor,
        seq_lens_cpu: torch.Tensor,
        last_loc: torch.Tensor,
        extend_num_tokens: int,
    ):
        # The real allocator runs alloc_extend_kernel (Triton) with last_loc
        # on the device; a stand-in with the same inputs.
        out_indices = torch.empty(
            (extend_num_tokens,), dtype=torch.int64, device=self.device
        )
        return out_indices
