# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: the other helpers of vllm/utils.py)
import torch


def is_pin_memory_available() -> bool:
    return torch.cuda.is_available()
