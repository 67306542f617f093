# SPDX-License-Identifier: Apache-2.0
# Cut down: only the fields the data flow below needs.
import enum
from dataclasses import dataclass, field

import torch


class CUDAGraphMode(enum.Enum):
    NONE = 0
    PIECEWISE = 1
    FULL = 2
    FULL_DECODE_ONLY = (FULL, NONE)
    FULL_AND_PIECEWISE = (FULL, PIECEWISE)

    def decode_mode(self) -> "CUDAGraphMode":
        return CUDAGraphMode(self.value[0]) if self.separate_routine() else self

    def separate_routine(self) -> bool:
        return isinstance(self.value, tuple)


@dataclass
class CompilationConfig:
    cudagraph_mode: CUDAGraphMode = CUDAGraphMode.FULL_AND_PIECEWISE
    max_capture_size: int = 512


@dataclass
class ParallelConfig:
    tensor_parallel_size: int = 1


@dataclass
class ModelConfig:
    max_model_len: int = 8192
    dtype: torch.dtype = torch.bfloat16
    num_attention_heads: int = 32

    def get_num_attention_heads(self, parallel_config: ParallelConfig) -> int:
        return self.num_attention_heads // parallel_config.tensor_parallel_size


@dataclass
class CacheConfig:
    block_size: int = 16
    cache_dtype: str = "auto"


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    parallel_config: ParallelConfig = field(default_factory=ParallelConfig)
    compilation_config: CompilationConfig = field(default_factory=CompilationConfig)

    def pad_for_cudagraph(self, batch_size: int) -> int:
        return batch_size
