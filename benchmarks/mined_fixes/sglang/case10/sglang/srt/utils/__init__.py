import torch


def is_cuda() -> bool:
    return torch.cuda.is_available() and torch.version.cuda is not None


def is_hip() -> bool:
    return torch.version.hip is not None
