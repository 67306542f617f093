from torchao.prototype.moe_training.kernels.mxfp8.quant import (
    compute_blocked_scale_offsets_for_K_groups,  # noqa: F401
    compute_blocked_scale_offsets_for_M_groups,  # noqa: F401
    mxfp8_quantize_cuda_3d,  # noqa: F401
    torch_to_blocked_2d_K_groups,  # noqa: F401
    torch_to_blocked_2d_M_groups,  # noqa: F401
    torch_to_blocked_per_group_3d,  # noqa: F401
    triton_mx_block_rearrange_2d_K_groups,  # noqa: F401
    triton_mx_block_rearrange_2d_M_groups,  # noqa: F401
    triton_mx_block_rearrange_per_group_3d,  # noqa: F401
)
