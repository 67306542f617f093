# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field

import torch


@dataclass
class DeviceConfig:
    device: str = "cuda"
    device_type: str = "cuda"


@dataclass
class ModelConfig:
    model: str = "deepseek-ai/DeepSeek-V3"
    max_model_len: int = 32768
    dtype: torch.dtype = torch.bfloat16
    head_size: int = 576

    def get_head_size(self) -> int:
        return self.head_size


@dataclass
class CacheConfig:
    block_size: int = 64


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    speculative_config: object | None = None
