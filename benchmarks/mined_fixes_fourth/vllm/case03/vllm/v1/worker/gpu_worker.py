# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to device selection and runner creation.
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.v1.worker.gpu_model_runner import GPUModelRunner


class Worker:
    def __init__(self, vllm_config: VllmConfig, local_rank: int = 0):
        self.vllm_config = vllm_config
        self.device_config = vllm_config.device_config
        self.local_rank = local_rank

    def init_device(self):
        if self.device_config.device_type == "cuda":
            self.device = torch.device(f"cuda:{self.local_rank}")
            torch.accelerator.set_device_index(self.device)
        else:
            raise RuntimeError(f"Not support device type: {self.device_config.device}")
        # Construct the model runner
        self.model_runner: GPUModelRunner = GPUModelRunner(
            self.vllm_config, self.device
        )

    def execute_model(
        self, num_scheduled_tokens: np.ndarray, num_computed_tokens_np: np.ndarray
    ):
        return self.model_runner.execute_model(
            num_scheduled_tokens, num_computed_tokens_np
        )
