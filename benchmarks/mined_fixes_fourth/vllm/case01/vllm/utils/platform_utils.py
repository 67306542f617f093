# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: the real one also checks WSL and the platform.
import torch


def is_pin_memory_available() -> bool:
    return torch.cuda.is_available()
