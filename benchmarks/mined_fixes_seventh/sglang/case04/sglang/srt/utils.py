import os
from typing import Optional

import torch

# (benchmark cut: the rest of sglang.srt.utils)


def get_device(device_id: Optional[int] = None) -> str:
    # (benchmark cut: cpu / AMX branch)

    if hasattr(torch, "cuda") and torch.cuda.is_available():
        if device_id is None:
            return "cuda"
        return "cuda:{}".format(device_id)

    # (benchmark cut: xpu / npu / hpu branches)
    raise RuntimeError("No accelerator available")
