# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class DeviceConfig:
    device: str = "cuda"
    device_type: str = "cuda"


@dataclass
class PoolerConfig:
    pooling_type: str | None = None


@dataclass
class BertConfig:
    hidden_size: int = 768
    vocab_size: int = 30522
    layer_norm_eps: float = 1e-12
    cls_token_id: int = 101
    sep_token_id: int = 102


@dataclass
class ModelConfig:
    model: str = "naver/splade-v3"
    hf_config: BertConfig = field(default_factory=BertConfig)
    pooler_config: PoolerConfig | None = field(default_factory=PoolerConfig)


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class LoadConfig:
    load_format: str = "auto"


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    load_config: LoadConfig = field(default_factory=LoadConfig)
