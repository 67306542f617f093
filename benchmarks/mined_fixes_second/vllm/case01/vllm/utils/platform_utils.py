import torch


def is_pin_memory_available() -> bool:
    return torch.cuda.is_available()
