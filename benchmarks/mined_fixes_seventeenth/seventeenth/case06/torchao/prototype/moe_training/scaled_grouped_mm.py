# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD 3-Clause license found in the
# LICENSE file in the root directory of this source tree.

import logging
from typing import Optional

import torch

from torchao.float8.config import ScalingGranularity
from torchao.float8.float8_utils import tensor_to_scale, to_fp8_saturated
from torchao.prototype.moe_training.conversion_utils import MoEScalingType
from torchao.prototype.moe_training.kernels import (
    triton_fp8_per_group_colwise_scales,
    triton_fp8_rowwise_3d_transpose_rhs,
)
from torchao.prototype.moe_training.kernels.mxfp8 import (
    compute_blocked_scale_offsets_for_K_groups,
    compute_blocked_scale_offsets_for_M_groups,
    mxfp8_quantize_cuda_3d,
    triton_mx_block_rearrange_2d_K_groups,
    triton_mx_block_rearrange_2d_M_groups,
    triton_mx_block_rearrange_per_group_3d,
)
from torchao.prototype.moe_training.utils import (
    _is_column_major,
)
from torchao.prototype.mx_formats.config import (
    MXFP8Dim1CastKernelChoice,
    MXGemmKernelChoice,
    ScaleCalculationMode,
)
from torchao.prototype.mx_formats.kernels import triton_to_mxfp8_dim0
from torchao.prototype.mx_formats.mx_tensor import to_mx
from torchao.prototype.mx_formats.utils import _to_mxfp8_dim1_kernel_wrapper

logger: logging.Logger = logging.getLogger(__name__)


def _quantize_then_scaled_grouped_mm(
    A: torch.Tensor,
    B_t: torch.Tensor,
    offs: Optional[torch.Tensor] = None,
    out_dtype: Optional[torch.dtype] = torch.bfloat16,
    scaling_type: MoEScalingType = MoEScalingType.FP8_ROWWISE,
) -> torch.Tensor:
    """
    This function performs dynamic quantization with the given recipe
    on the input tensors A and B, then performs a scaled grouped GEMM and returns the results.

    Args:
        A (bf16/float32 torch.Tensor): The first high-precision input tensor, which must be a 2D tensor of shape (M * num_groups, K)
            and in row-major memory layout.
        B_t (bf16/float32 torch.Tensor): The second high-precision input tensor which must be 3D, which must be shape (E, K, N)
            and in column-major memory layout.
        offs (int32 torch.Tensor): The offsets to use to mark the starting index of each group along dim0 of the A tensor.
        out_dtype (Optional[torch.dtype]): The dtype of the output tensor. Currently only torch.bfloat16 is supported.
    """
    # TODO: Remove logging once prototype is more mature. This is currently very useful for development and debugging.
    if scaling_type == MoEScalingType.FP8_ROWWISE:
        return _Float8GroupedMM.apply(
            A,
            B_t,
            offs,
            out_dtype,
        )
    elif scaling_type == MoEScalingType.MXFP8:
        block_size = 32  # TODO: should we make this configurable? plumb it through in a config somehow?
        return _MXFP8GroupedMM.apply(
            A,
            B_t,
            offs,
            block_size,
            out_dtype,
        )
    else:
        raise ValueError(f"Unsupported scaling type {scaling_type}")


# (benchmark cut: _Float8GroupedMM)


class _MXFP8GroupedMM(torch.autograd.Function):
    """Differentiable implementation of grouped GEMM with dynamic mxpf8 quantization."""

    @staticmethod
    def forward(
        ctx,
        A: torch.Tensor,
        B_t: torch.Tensor,
        offs: Optional[torch.Tensor] = None,
        block_size: int = 32,
        out_dtype: Optional[torch.dtype] = torch.bfloat16,
        emulated: bool = False,
        use_triton_for_dim0_cast: bool = False,
    ) -> torch.Tensor:
        # torchao _quantize_then_scaled_grouped_mm only supports A=2D and B=3D.
        assert A.ndim == 2, "A must be 2D"
        assert B_t.ndim == 3, "B must be 3D"
        assert block_size == 32, "Only block_size=32 is supported"
        assert offs is not None, "offs must be provided for 2d-2d and 2d-3d grouped mm"

        # A_data shape: (M, K)
        # A_scale shape: (M, K//block_size)
        if use_triton_for_dim0_cast:
            A_data, A_scale = triton_to_mxfp8_dim0(
                A,
                inner_block_size=block_size,
            )
            # B_data shape: (E, N, K)
            # B_scale shape: (E, N, K//block_size)
            B_data, B_scales = triton_to_mxfp8_dim0(
                B_t.transpose(-2, -1),
                inner_block_size=block_size,
            )
        else:
            A_scale, A_data = to_mx(
                A,
                elem_dtype=torch.float8_e4m3fn,
                block_size=block_size,
            )
            B_scales, B_data = to_mx(
                B_t.transpose(-2, -1),
                elem_dtype=torch.float8_e4m3fn,
                block_size=block_size,
            )

        # Convert scales to blocked format for 2d-3d grouped mm
        _, blocked_scales_group_offsets_2d3d = (
            compute_blocked_scale_offsets_for_M_groups(offs)
        )
        A_scales_blocked = triton_mx_block_rearrange_2d_M_groups(
            A_scale,
            offs,
            blocked_scales_group_offsets_2d3d,
        )
        B_scales_blocked = triton_mx_block_rearrange_per_group_3d(B_scales)

        # output = input @ weight.T
        # output shape: (M, N)
        out = torch._scaled_grouped_mm(
            A_data,
            B_data.transpose(-2, -1),
            A_scales_blocked,
            B_scales_blocked,
            offs=offs,
            out_dtype=out_dtype,
        )

        ctx.save_for_backward(A, B_t, offs, blocked_scales_group_offsets_2d3d)
        ctx.block_size = block_size
        ctx.out_dtype = out_dtype
        ctx.emulated = emulated
        ctx.use_triton_for_dim0_cast = use_triton_for_dim0_cast
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        A, B_t, offs, blocked_scales_group_offsets_2d3d = ctx.saved_tensors
        block_size = ctx.block_size
        out_dtype = ctx.out_dtype
        use_triton_for_dim0_cast = ctx.use_triton_for_dim0_cast

        # grad_out_data shape: (M, N)
        # grad_out_scale shape: (M, N//block_size)
        if use_triton_for_dim0_cast:
            grad_out_data, grad_out_scale = triton_to_mxfp8_dim0(
                grad_out, inner_block_size=block_size
            )
        else:
            grad_out_scale, grad_out_data = to_mx(
                grad_out,
                elem_dtype=torch.float8_e4m3fn,
                block_size=block_size,
            )

        # Quantize 3d expert weights along N (contraction dimension for next grouped gemm)
        # (E, K, N) -> (E, N, K)
        B = B_t.transpose(-2, -1)
        B_data, B_scales = mxfp8_quantize_cuda_3d(
            B._data if hasattr(B, "_data") else B, block_size=block_size
        )
        # (E, N//block_size, K) -> (E, K, N//block_size)
        B_scales = B_scales.transpose(-2, -1)

        # Convert scales to blocked format for 2d-3d grouped mm
        grad_out_scales_blocked = triton_mx_block_rearrange_2d_M_groups(
            grad_out_scale,
            offs,
            blocked_scales_group_offsets_2d3d,
        )
        B_scales_blocked = triton_mx_block_rearrange_per_group_3d(B_scales)

        # grad_A = scaled grouped mm of (M,N) @ (B,N,K) = (M,K)
        grad_A = torch._scaled_grouped_mm(
            grad_out_data,
            B_data,
            grad_out_scales_blocked,
            B_scales_blocked,
            offs=offs,
            out_dtype=out_dtype,
        )

        # grad_out_t_data shape: (M, N)
        # grad_out_t_scales shape: (N, M//block_size)
        grad_out_t_mx = _to_mxfp8_dim1_kernel_wrapper(
            grad_out,
            block_size,
            elem_dtype=torch.float8_e4m3fn,
            hp_dtype=grad_out.dtype,
            gemm_kernel_choice=MXGemmKernelChoice.CUTLASS,  # Not used
            cast_kernel_choice=MXFP8Dim1CastKernelChoice.CUDA,
            scale_calculation_mode=ScaleCalculationMode.FLOOR,
        )
        grad_out_t_data = grad_out_t_mx.qdata
        grad_out_t_scales = grad_out_t_mx.scale

        # Transpose A so we can scale along the M dimension, then un-transpose.
        # A shape: (M, K)
        # A_t_data shape: (K, M)
        # A_t_scales shape: (K, M//block_size)
        A_t_mx = _to_mxfp8_dim1_kernel_wrapper(
            A,
            block_size,
            elem_dtype=torch.float8_e4m3fn,
            hp_dtype=A.dtype,
            gemm_kernel_choice=MXGemmKernelChoice.CUTLASS,  # Not used
            cast_kernel_choice=MXFP8Dim1CastKernelChoice.CUDA,
            scale_calculation_mode=ScaleCalculationMode.FLOOR,
        )
        A_t_data = A_t_mx.qdata
        A_t_scales = A_t_mx.scale

        # Convert scales to blocked format for 2d-2d grouped mm
        scale_group_offsets = offs // block_size
        _, blocked_scale_group_offsets = compute_blocked_scale_offsets_for_K_groups(
            scale_group_offsets
        )
        grad_out_t_scales_blocked = triton_mx_block_rearrange_2d_K_groups(
            grad_out_t_scales,
            scale_group_offsets,
            blocked_scale_group_offsets,
        )
        A_t_scales_blocked = triton_mx_block_rearrange_2d_K_groups(
            A_t_scales,
            scale_group_offsets,
            blocked_scale_group_offsets,
        )

        # grad_B_t = scaled grouped mm of (N,total_M) @ (total_M,K) = (E,N,K)
        grad_B = torch._scaled_grouped_mm(
            grad_out_t_data,
            A_t_data.transpose(-2, -1),
            grad_out_t_scales_blocked,
            A_t_scales_blocked,
            offs=offs,
            out_dtype=out_dtype,
        )
        # grad_B_t shape =  (E,K,N)
        grad_B_t = grad_B.transpose(-2, -1)
        return grad_A, grad_B_t, None, None, None, None


# (benchmark cut: _to_mxfp8_dim1_3d, _emulated_mxfp8_scaled_grouped_mm_2d_3d, _emulated_mxfp8_scaled_grouped_mm_2d_2d, round_up)


# Aliases for convenience/clarity
_to_mxfp8_then_scaled_grouped_mm = _MXFP8GroupedMM.apply
_to_fp8_rowwise_then_scaled_grouped_mm = _Float8GroupedMM.apply
