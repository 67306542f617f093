import functools

import torch


@functools.lru_cache(maxsize=8)
def is_pin_memory_available(device=None) -> bool:
    if device is not None and str(device) == "cpu":
        return False
    return torch.cuda.is_available()
