import torch


def get_device_module():
    return torch.cuda
