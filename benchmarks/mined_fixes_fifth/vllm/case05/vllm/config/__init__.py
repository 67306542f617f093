# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class TextConfig:
    vocab_size: int = 152064
    hidden_size: int = 3584


@dataclass
class LlavaOnevisionConfig:
    image_token_index: int = 151646
    video_token_index: int = 151647
    text_config: TextConfig = field(default_factory=TextConfig)


@dataclass
class DeviceConfig:
    device: str = "cuda"


@dataclass
class ModelConfig:
    hf_config: LlavaOnevisionConfig = field(default_factory=LlavaOnevisionConfig)
    multimodal_config: object = None


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    quant_config: object = None
