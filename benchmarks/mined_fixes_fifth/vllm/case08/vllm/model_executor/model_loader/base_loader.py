# SPDX-License-Identifier: Apache-2.0
# Cut down: weight loading and quantization post-processing are dropped.
import torch
import torch.nn as nn

from vllm.config import ModelConfig, VllmConfig


def initialize_model(vllm_config: VllmConfig, prefix: str = "") -> nn.Module:
    from vllm.model_executor.models.qwen2_vl import (
        Qwen2VLForConditionalGeneration)

    return Qwen2VLForConditionalGeneration(vllm_config=vllm_config,
                                           prefix=prefix)


class BaseModelLoader:

    def load_model(self, vllm_config: VllmConfig,
                   model_config: ModelConfig) -> nn.Module:
        """Load a model with the given configurations."""
        device_config = vllm_config.device_config
        target_device = torch.device(device_config.device)
        with target_device:
            model = initialize_model(vllm_config=vllm_config, prefix="")
        return model.eval()
