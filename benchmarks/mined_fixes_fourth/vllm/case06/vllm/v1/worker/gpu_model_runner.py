# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to model loading and the multimodal encoder call.
import torch
import torch.nn as nn

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model_loader
from vllm.multimodal.utils import group_mm_kwargs_by_modality


class GPUModelRunner:
    def __init__(self, vllm_config: VllmConfig, device: torch.device):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.load_config = vllm_config.load_config
        self.device = device
        self.pin_memory = True

    def load_model(self) -> None:
        model_loader = get_model_loader(self.load_config)
        self.model = model_loader.load_model(
            vllm_config=self.vllm_config, model_config=self.model_config
        )

    def get_model(self) -> nn.Module:
        return self.model

    def _execute_mm_encoder(
        self, mm_kwargs: list[tuple[str, dict[str, torch.Tensor]]]
    ) -> list[torch.Tensor]:
        model = self.get_model()
        encoder_outputs = []
        for modality, num_items, mm_kwargs_group in group_mm_kwargs_by_modality(
            mm_kwargs,
            device=self.device,
            pin_memory=self.pin_memory,
        ):
            # Run the encoder.
            # `curr_group_outputs` is either of the following:
            # 1. A tensor of shape (num_items, feature_size, hidden_size)
            # in case feature_size is fixed across all multimodal items.
            # 2. A list or tuple (length: num_items) of tensors,
            # each of shape (feature_size, hidden_size) in case the feature
            # size is dynamic depending on the input multimodal items.
            curr_group_outputs = model.get_multimodal_embeddings(**mm_kwargs_group)
            for output in curr_group_outputs:
                encoder_outputs.append(output)
        return encoder_outputs
