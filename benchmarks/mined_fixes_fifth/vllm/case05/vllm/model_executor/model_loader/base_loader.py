# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: weight loading and quantization post-processing are dropped.
import torch
import torch.nn as nn

from vllm.config import ModelConfig, VllmConfig


def initialize_model(vllm_config: VllmConfig, prefix: str = "") -> nn.Module:
    from vllm.model_executor.models.llava_onevision import (
        LlavaOnevisionForConditionalGeneration)

    return LlavaOnevisionForConditionalGeneration(vllm_config=vllm_config,
                                                  prefix=prefix)


class BaseModelLoader:

    def load_model(self, vllm_config: VllmConfig,
                   model_config: ModelConfig) -> nn.Module:
        """Load a model with the given configurations."""
        device_config = vllm_config.device_config
        load_device = device_config.device
        target_device = torch.device(load_device)
        with target_device:
            model = initialize_model(vllm_config=vllm_config, prefix="")
        return model.eval()
