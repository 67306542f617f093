# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    max_model_len: int = 163840
    dtype: str = "bfloat16"


@dataclass
class CacheConfig:
    block_size: int = 64
    cache_dtype: str = "fp8_ds_mla"


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class SpeculativeConfig:
    num_speculative_tokens: int = 3


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    speculative_config: SpeculativeConfig | None = field(
        default_factory=SpeculativeConfig
    )
