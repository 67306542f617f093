# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: the other torch helpers)
import torch


def get_accelerator_view_from_cpu_tensor(cpu_tensor: torch.Tensor) -> torch.Tensor:
    """
    Get an accelerator view of a CPU tensor using Unified Virtual Addressing (UVA).
    """
    assert cpu_tensor.is_pinned(), "CPU tensor must be pinned"
    # (benchmark cut: XPU branch)
    return torch.ops._C.get_cuda_view_from_cpu_tensor(cpu_tensor)
