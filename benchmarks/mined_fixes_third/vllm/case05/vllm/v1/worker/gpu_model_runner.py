# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to model loading and the multimodal encoder call.
import torch

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model


class GPUModelRunner:
    def __init__(self, vllm_config: VllmConfig, device: torch.device):
        self.vllm_config = vllm_config
        self.device = device

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    def _execute_mm_encoder(self, mm_kwargs_group: dict) -> list[torch.Tensor]:
        # Run the encoder.
        # `curr_group_outputs` is either of the following:
        # 1. A tensor of shape (num_items, feature_size, hidden_size)
        # in case feature_size is fixed across all multimodal items.
        # 2. A list or tuple (length: num_items) of tensors,
        # each of shape (feature_size, hidden_size) in case the feature
        # size is dynamic depending on the input multimodal items.
        curr_group_outputs = self.model.embed_multimodal(**mm_kwargs_group)
        return list(curr_group_outputs)
