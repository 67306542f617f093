import torch


def get_local_torch_device() -> torch.device:
    """Return the torch device for the current rank."""
    return torch.device(f"cuda:{torch.cuda.current_device()}")
