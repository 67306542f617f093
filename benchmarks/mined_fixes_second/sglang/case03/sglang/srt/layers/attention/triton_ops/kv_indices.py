import torch


class _KernelLauncher:
    """Stand-in for a @triton.jit kernel: ``kernel[grid](*args)``."""

    def __init__(self, fn):
        self.fn = fn

    def __getitem__(self, grid):
        return self.fn


def _create_flashinfer_kv_indices(
    req_to_token_ptr: torch.Tensor,
    req_pool_indices_ptr: torch.Tensor,
    page_kernel_lens_ptr: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_start_idx: torch.Tensor,
    kv_indices_ptr: torch.Tensor,
    req_to_token_ptr_stride: int,
):
    # Device kernel in the real code (writes kv_indices on the GPU).
    return None


create_flashinfer_kv_indices_triton = _KernelLauncher(_create_flashinfer_kv_indices)
