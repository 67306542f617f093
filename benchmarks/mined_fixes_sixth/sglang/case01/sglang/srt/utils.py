# (benchmark cut: the real sglang/srt/utils.py is large; only the helpers used here are kept as stand-ins)
import functools

import torch


@functools.lru_cache(maxsize=1)
def is_cuda():
    return torch.cuda.is_available() and torch.version.cuda


def is_musa():
    return False


def add_prefix(name: str, prefix: str) -> str:
    return name if not prefix else f"{prefix}.{name}"


def get_device_capability(device_id: int = 0):
    return torch.cuda.get_device_capability(device_id)


def print_info_once(msg: str):
    print(msg)
