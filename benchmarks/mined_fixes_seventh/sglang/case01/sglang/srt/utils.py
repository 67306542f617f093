import os
from typing import Optional

import torch

# (benchmark cut: the rest of sglang.srt.utils)


def get_bool_env_var(name: str, default: str = "false") -> bool:
    value = os.getenv(name, default)
    return value.lower() in ("true", "1")


def next_power_of_2(n: int):
    return 1 << (n - 1).bit_length() if n > 0 else 1


def get_device(device_id: Optional[int] = None) -> str:
    # (benchmark cut: cpu / AMX branch)

    if hasattr(torch, "cuda") and torch.cuda.is_available():
        if device_id is None:
            return "cuda"
        return "cuda:{}".format(device_id)

    # (benchmark cut: xpu / npu / hpu branches)
    raise RuntimeError("No accelerator available")
