# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch

from vllm.v1.worker.gpu.input_batch import InputBatch, InputBuffers


class GPUModelRunner:
    def __init__(
        self,
        device: torch.device,
        max_num_reqs: int = 256,
        max_num_tokens: int = 8192,
    ):
        self.device = device
        self.max_num_reqs = max_num_reqs
        self.max_num_tokens = max_num_tokens

        self.input_buffers = InputBuffers(
            max_num_reqs=self.max_num_reqs,
            max_num_tokens=self.max_num_tokens,
            device=self.device,
        )

    @torch.inference_mode()
    def execute_model(
        self,
        num_tokens_after_padding: int,
    ) -> InputBatch:
        # No actual tokens to run. A dummy run for DP or memory profiling.
        num_reqs = min(num_tokens_after_padding, self.max_num_reqs)
        input_batch = InputBatch.make_dummy(
            num_reqs=num_reqs,
            num_tokens=num_tokens_after_padding,
            input_buffers=self.input_buffers,
            device=self.device,
        )
        return input_batch

    def _dummy_run(self, num_tokens: int) -> InputBatch:
        return self.execute_model(num_tokens)
