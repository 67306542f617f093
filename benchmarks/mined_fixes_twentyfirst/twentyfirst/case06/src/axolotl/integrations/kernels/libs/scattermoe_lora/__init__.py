# SPDX-License-Identifier: Apache-2.0
# Copyright (c) Axolotl AI
# Licensed under the Apache License, Version 2.0

from . import layers
from .lora_ops import ParallelExperts
from .parallel_experts import flatten_sort_count, parallel_linear
from .parallel_linear_lora import ScatterMoELoRA, parallel_linear_lora

__all__ = [
    "layers",
    "ParallelExperts",
    "flatten_sort_count",
    "parallel_linear",
    "ScatterMoELoRA",
    "parallel_linear_lora",
    "lora_ops",
]
