# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class LlamaConfig:
    vocab_size: int = 128256
    hidden_size: int = 4096


@dataclass
class DeviceConfig:
    device: str = "cuda"


@dataclass
class ModelConfig:
    hf_config: LlamaConfig = field(default_factory=LlamaConfig)
    max_model_len: int = 8192

    def get_vocab_size(self) -> int:
        return self.hf_config.vocab_size


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
