# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class DeviceConfig:
    device: str = "cuda"


@dataclass
class Qwen2VLVisionConfig:
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    in_channels: int = 3
    hidden_size: int = 1536
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0


@dataclass
class Qwen2VLConfig:
    vision_config: Qwen2VLVisionConfig = field(
        default_factory=Qwen2VLVisionConfig)
    rms_norm_eps: float = 1e-6


@dataclass
class ModelConfig:
    hf_config: Qwen2VLConfig = field(default_factory=Qwen2VLConfig)


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    device_config: DeviceConfig = field(default_factory=DeviceConfig)
    quant_config: object = None
