import torch


def is_pin_memory_available(device=None) -> bool:
    return torch.cuda.is_available()
