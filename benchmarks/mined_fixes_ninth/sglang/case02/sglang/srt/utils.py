"""Common utilities."""

import logging
import os
from typing import Optional

import torch

logger = logging.getLogger(__name__)

_warned_bool_env_var_keys = set()

# (benchmark cut: the rest of sglang.srt.utils)


def is_npu() -> bool:
    return hasattr(torch, "npu") and torch.npu.is_available()


def is_cpu() -> bool:
    # (benchmark cut: is_host_cpu_x86 probe)
    return os.getenv("SGLANG_USE_CPU_ENGINE", "0") == "1"


def get_bool_env_var(name: str, default: str = "false") -> bool:
    value = os.getenv(name, default)
    value = value.lower()

    truthy_values = ("true", "1")
    falsy_values = ("false", "0")

    if (value not in truthy_values) and (value not in falsy_values):
        if value not in _warned_bool_env_var_keys:
            logger.warning(
                f"get_bool_env_var({name}) see non-understandable value={value} and treat as false"
            )
        _warned_bool_env_var_keys.add(value)

    return value in truthy_values


def support_triton(backend: str) -> bool:
    return backend not in ["torch_native", "intel_amx", "ascend"]


def is_pin_memory_available() -> bool:
    return torch.cuda.is_available()


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


def get_device_core_count(device_id: int = 0) -> int:
    if hasattr(torch, "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device_id).multi_processor_count

    return 0


def get_compiler_backend() -> str:
    # (benchmark cut: hpu / npu backends)
    return "inductor"


def next_power_of_2(n: int):
    return 1 << (n - 1).bit_length() if n > 0 else 1
