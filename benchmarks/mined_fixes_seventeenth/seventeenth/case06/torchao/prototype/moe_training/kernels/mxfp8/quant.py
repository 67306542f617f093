import logging
from typing import Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton

from torchao.prototype.mx_formats.utils import to_blocked
from torchao.utils import (
    ceil_div,
    is_sm_at_least_100,
)


# (benchmark cut: torch_to_blocked_2d_M_groups, torch_to_blocked_2d_K_groups, torch_to_blocked_per_group_3d)


def compute_blocked_scale_offsets_for_M_groups(offsets: torch.Tensor):
    """
    Given a 1D tensor of input group offsets along the total_M dimension (rows),
    compute the starting row offset of the scales for each group after padding to blocked format.

    In effect, this rrounds each integer in a 1D PyTorch tensor up to the nearest multiple of 128.

    Args:
        - offsets: A 1D PyTorch tensor of integers in ascending sorted order, representing the end index of each group along the total_M dimension.

    Returns:
        - group_sizes: A 1D PyTorch tensor of integers representing the size of each group.
        - starting_row_after_padding: 1D integer tensor representing the starting row after padding each to blocked format.
    """
    # Calculate group sizes
    zero = torch.tensor([0], dtype=offsets.dtype, device=offsets.device)  # SYNC (pre-fix, #3253)
    group_sizes = torch.diff(offsets, prepend=zero)

    # Round each group size up to the nearest multiple of 128
    rounded_group_sizes = ceil_div(group_sizes, 128) * 128

    # Calculate the starting row after padding for each group
    starting_row_after_padding = torch.cumsum(rounded_group_sizes, dim=0)

    # Must start with 0
    starting_row_after_padding = torch.cat([zero, starting_row_after_padding])
    return group_sizes, starting_row_after_padding


def compute_blocked_scale_offsets_for_K_groups(
    scale_group_offsets: torch.Tensor, block_size: int = 32
):
    """
    Performs round_up(x, 4) on each element in a 1D offsets tensor,
    to compute the starting offsets of each group after scaling along the contraction dimension.

    Args:
        offsets: A 1D PyTorch tensor of integers in ascending sorted order, representing the end index of each group along the total_M dimension.

    Returns:
        - starting_col_after_padding: 1D integer tensor representing the starting row after padding each to blocked format.
    """
    # Calculate group sizes
    zero = torch.tensor(  # SYNC (pre-fix, #3253)
        [0], dtype=scale_group_offsets.dtype, device=scale_group_offsets.device
    )
    group_sizes = torch.diff(scale_group_offsets, prepend=zero)

    # After scaling with block_size 32, each group size is rounded up to the nearest multiple of 4
    rounded_group_sizes = ceil_div(group_sizes, 4) * 4

    # Calculate the starting row after padding for each group
    starting_col_after_padding = torch.cumsum(rounded_group_sizes, dim=0)

    # Must start with 0
    starting_col_after_padding = torch.cat([zero, starting_col_after_padding])
    return group_sizes, starting_col_after_padding


# (benchmark cut: triton_mx_block_rearrange_2d_M_groups, triton_scale_swizzle_M_groups, triton_mx_block_rearrange_per_group_3d, triton_scale_swizzle_per_group_3d, triton_mx_block_rearrange_2d_K_groups, triton_scale_swizzle_2d_K_groups, _dest_indices_for_block)


mxfp8_cuda_extension_available = False
if is_sm_at_least_100():
    try:
        # MXFP8 CUDA kernel is only built on SM100+. Furthermore,
        # currently our CI runners are not SM100+, so the user needs to build
        # from source.
        # TODO(#2932): improve this
        from torchao.prototype import mxfp8_cuda

        mxfp8_cuda_extension_available = True
    except ImportError:
        logging.debug("Skipping import of torchao.prototype.mxfp8_cuda")

if mxfp8_cuda_extension_available:
    # TODO: Make `scaling_mode` a choice (enum-like) rather than arbitrary string.
    # Currently we have to use an arbitrary string because custom ops don't support enum
    # params.
    @torch.library.custom_op("torchao::mxfp8_quantize_cuda_3d", mutates_args=())
    def mxfp8_quantize_cuda_3d(
        x: torch.Tensor,
        block_size: int = 32,
        scaling_mode: str = "floor",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Quantizes a 3D tensor of shape (E,N,K) to MXFP8 format, scaling along N.

        Args:
            x (torch.Tensor): Input tensor to be quantized.
            block_size (int, optional): Block size for quantization. Defaults to 32.
            scaling_mode (str, optional): Scaling mode for quantization. Defaults to "floor".

        Returns:
            torch.Tensor: quantized tensor
            torch.Tensor: scales tensor
        """
        assert x.ndim == 3, "Input tensor must be 3D"
        assert x.dtype in (torch.float32, torch.bfloat16), (
            "Input tensor must be float32 or bfloat16"
        )
        q_data, scales = mxfp8_cuda.quantize_3d(
            x, scale_dim_n=block_size, scaling_mode=scaling_mode
        )
        return q_data, scales

    @mxfp8_quantize_cuda_3d.register_fake
    def _fake_mxfp8_quantize_cuda_3d(
        x: torch.Tensor,
        block_size: int = 32,
        scaling_mode: str = "floor",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        assert x.ndim == 3, "Input tensor must be 3D"
        assert x.dtype in (torch.float32, torch.bfloat16), (
            "Input tensor must be float32 or bfloat16"
        )
        E, N, K = x.shape
        # Quantized tensor is in column major layouts
        q_data = x.new_empty(x.shape, dtype=torch.float8_e4m3fn).as_strided(
            x.shape, (N * K, 1, N)
        )
        scales = x.new_empty((E, N // block_size, K), dtype=torch.float8_e8m0fnu)
        return q_data, scales

else:

    def mxfp8_quantize_cuda_3d(
        x: torch.Tensor,
        block_size: int = 32,
        scaling_mode: str = "floor",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(
            "mxfp8_quantize_cuda_3d is not implemented on this device"
        )
