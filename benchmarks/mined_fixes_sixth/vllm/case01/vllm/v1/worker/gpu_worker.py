# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
"""A GPU worker class."""

import torch

from vllm.config import VllmConfig

# (benchmark cut: distributed init, memory profiling, sleep mode, profiler)


class Worker:
    def __init__(
        self,
        vllm_config: VllmConfig,
        local_rank: int,
        rank: int,
    ):
        self.vllm_config = vllm_config
        self.device_config = vllm_config.device_config
        self.model_config = vllm_config.model_config
        self.parallel_config = vllm_config.parallel_config
        self.local_rank = local_rank
        self.rank = rank

    def init_device(self):
        if self.device_config.device_type == "cuda":
            # (benchmark cut: DP local-rank adjustment and visible-device checks)
            self.device = torch.device(f"cuda:{self.local_rank}")
            torch.accelerator.set_device_index(self.device)
            # (benchmark cut: distributed environment init, memory snapshot)
        else:
            raise RuntimeError(f"Not support device type: {self.device_config.device}")

        from vllm.v1.worker.gpu_model_runner import (
            GPUModelRunner as GPUModelRunnerV1,
        )

        self.model_runner = GPUModelRunnerV1(self.vllm_config, self.device)

    def initialize_from_config(self, kv_cache_config) -> None:
        self.model_runner.initialize_kv_cache(kv_cache_config)

    def execute_model(self, num_scheduled_tokens):
        return self.model_runner.execute_model(num_scheduled_tokens)
