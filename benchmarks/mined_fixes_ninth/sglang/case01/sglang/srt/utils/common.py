import logging
from typing import Optional

import torch

logger = logging.getLogger(__name__)

# (benchmark cut: the rest of sglang.srt.utils.common)


def is_cpu() -> bool:
    # (benchmark cut: real platform probe)
    return False


def is_npu() -> bool:
    # (benchmark cut: real platform probe)
    return False


def get_device(device_id: Optional[int] = None) -> str:
    if is_cpu():
        # (benchmark cut: AMX logging)
        return "cpu"

    if hasattr(torch, "cuda") and torch.cuda.is_available():
        if device_id is None:
            return "cuda"
        return "cuda:{}".format(device_id)

    # (benchmark cut: xpu / npu / hpu branches)
    raise RuntimeError("No accelerator available")


def is_pin_memory_available(device=None) -> bool:
    # (benchmark cut: platform checks)
    return torch.cuda.is_available()


def is_flashinfer_available():
    """
    Check whether flashinfer is available.
    As of Oct. 6, 2024, it is only available on NVIDIA GPUs.
    """
    # (benchmark cut: SGLANG_IS_FLASHINFER_AVAILABLE env override)
    return torch.cuda.is_available()


def is_hip() -> bool:
    return torch.version.hip is not None


def is_cuda():
    return torch.cuda.is_available() and torch.version.cuda is not None


def support_triton(backend: str) -> bool:
    return backend not in ["torch_native", "intel_amx", "ascend"]
