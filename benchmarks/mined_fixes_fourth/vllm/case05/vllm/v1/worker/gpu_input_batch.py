# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the speculative-decoding bookkeeping the runner updates.
import torch


class InputBatch:
    def __init__(
        self,
        max_num_reqs: int,
        device: torch.device,
        pin_memory: bool,
    ):
        self.max_num_reqs = max_num_reqs
        self.device = device
        self.pin_memory = pin_memory
        self._req_ids: list[str | None] = []
        self.req_id_to_index: dict[str, int] = {}

        # Speculative decoding
        self.num_accepted_tokens_cpu_tensor = torch.ones(
            (max_num_reqs,), dtype=torch.int64, device="cpu", pin_memory=pin_memory
        )
        self.num_accepted_tokens_cpu = self.num_accepted_tokens_cpu_tensor.numpy()

        self.sampling_metadata = None

    @property
    def num_reqs(self) -> int:
        return len(self.req_id_to_index)
