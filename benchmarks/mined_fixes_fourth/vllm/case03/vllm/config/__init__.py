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
    model: str = "google/gemma-3-4b-it"
    max_model_len: int = 8192
    dtype: torch.dtype = torch.bfloat16
    num_attention_heads: int = 8
    num_kv_heads: int = 4
    head_size: int = 256
    is_mm_prefix_lm: bool = True

    def get_num_attention_heads(self, parallel_config=None) -> int:
        return self.num_attention_heads

    def get_num_kv_heads(self, parallel_config=None) -> int:
        return self.num_kv_heads

    def get_head_size(self) -> int:
        return self.head_size


@dataclass
class CacheConfig:
    block_size: int = 16


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
    parallel_config: object | None = None
