"""Common utilities (benchmark stand-in: only get_device)."""

import logging
from typing import Optional

import torch

logger = logging.getLogger(__name__)


def get_device(device_id: Optional[int] = None) -> str:
    # (benchmark cut: the is_cpu() / AMX branch)
    if hasattr(torch, "cuda") and torch.cuda.is_available():
        if device_id is None:
            return "cuda"
        return "cuda:{}".format(device_id)
    # (benchmark cut: xpu / npu / hpu / musa branches)
    raise RuntimeError("No accelerator (CUDA, XPU, HPU, NPU) is available.")
