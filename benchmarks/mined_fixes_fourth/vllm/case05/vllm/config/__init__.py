# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class DeviceConfig:
    device: str = "cuda"
    device_type: str = "cuda"


@dataclass
class ModelConfig:
    model: str = "Qwen/Qwen3-Next-80B-A3B-Instruct"
    is_hybrid: bool = True
    hidden_size: int = 2048
    vocab_size: int = 151936


@dataclass
class CacheConfig:
    block_size: int = 16
    mamba_cache_mode: str = "none"


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class SpeculativeConfig:
    method: str = "mtp"
    num_speculative_tokens: int = 2


@dataclass
class LoadConfig:
    load_format: str = "auto"


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    load_config: LoadConfig = field(default_factory=LoadConfig)
    speculative_config: SpeculativeConfig | None = field(
        default_factory=SpeculativeConfig
    )
