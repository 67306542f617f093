# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field

from vllm.config.model import LogprobsMode


@dataclass
class DeviceConfig:
    device: str = "cuda"
    device_type: str = "cuda"


@dataclass
class ModelConfig:
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    hidden_size: int = 4096
    vocab_size: int = 128256
    logprobs_mode: LogprobsMode = "raw_logprobs"


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
