import logging
from typing import Optional

import torch

logger = logging.getLogger(__name__)

# (benchmark cut: the rest of sglang.srt.utils.common)


def is_cpu() -> bool:
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
