# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
from dataclasses import dataclass, field


@dataclass
class DeepseekV3Config:
    hidden_size: int = 7168
    vocab_size: int = 129280
    rms_norm_eps: float = 1e-6
    num_hidden_layers: int = 61
    num_nextn_predict_layers: int = 1


@dataclass
class ModelConfig:
    hf_config: DeepseekV3Config = field(default_factory=DeepseekV3Config)
    max_model_len: int = 4096
    dtype: str = "bfloat16"
    uses_mrope: bool = False


@dataclass
class SpeculativeConfig:
    method: str = "mtp"
    num_speculative_tokens: int = 1
    draft_model_config: ModelConfig = field(default_factory=ModelConfig)

    def use_eagle(self) -> bool:
        return self.method in ("eagle", "eagle3", "mtp")


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    speculative_config: SpeculativeConfig | None = field(
        default_factory=SpeculativeConfig
    )
