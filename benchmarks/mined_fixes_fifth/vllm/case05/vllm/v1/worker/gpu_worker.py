# SPDX-License-Identifier: Apache-2.0
import torch

from vllm.config import VllmConfig
from vllm.v1.worker.gpu_model_runner import GPUModelRunner


class Worker:

    def __init__(self, vllm_config: VllmConfig, local_rank: int, rank: int):
        self.vllm_config = vllm_config
        self.local_rank = local_rank
        self.rank = rank

    def init_device(self):
        self.device = torch.device(f"cuda:{self.local_rank}")
        torch.cuda.set_device(self.device)

        # Construct the model runner
        self.model_runner: GPUModelRunner = GPUModelRunner(
            self.vllm_config, self.device)

    def load_model(self) -> None:
        self.model_runner.load_model()
