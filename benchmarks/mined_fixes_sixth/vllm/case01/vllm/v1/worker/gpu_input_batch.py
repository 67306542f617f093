# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch

from vllm.v1.worker.block_table import MultiGroupBlockTable

# (benchmark cut: request state, sampling and logits-processor state)


class InputBatch:
    def __init__(
        self,
        max_num_reqs: int,
        max_model_len: int,
        device: torch.device,
        pin_memory: bool,
        block_size: int,
    ):
        self.max_num_reqs = max_num_reqs
        self.device = device
        self.pin_memory = pin_memory
        self.req_ids: list[str] = []

        self.num_prompt_tokens_cpu_tensor = torch.zeros(
            (max_num_reqs,),
            device="cpu",
            dtype=torch.int32,
            pin_memory=pin_memory,
        )
        self.num_computed_tokens_cpu_tensor = torch.zeros(
            (max_num_reqs,),
            device="cpu",
            dtype=torch.int32,
            pin_memory=pin_memory,
        )

        # Block table.
        self.block_table = MultiGroupBlockTable(
            max_num_reqs=max_num_reqs,
            max_num_blocks_per_req=(max_model_len + block_size - 1) // block_size,
            pin_memory=pin_memory,
            device=device,
        )

    @property
    def num_reqs(self) -> int:
        return len(self.req_ids)
