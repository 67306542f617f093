# SPDX-License-Identifier: Apache-2.0
# Cut down: weight loading and quantization post-processing are dropped.
import torch
import torch.nn as nn

from vllm.config import VllmConfig


def _initialize_model(vllm_config: VllmConfig, prefix: str = "") -> nn.Module:
    from vllm.model_executor.models.llama import LlamaForCausalLM
    return LlamaForCausalLM(vllm_config=vllm_config, prefix=prefix)


class DefaultModelLoader:

    def load_model(self, vllm_config: VllmConfig) -> nn.Module:
        device_config = vllm_config.device_config
        target_device = torch.device(device_config.device)
        with target_device:
            model = _initialize_model(vllm_config=vllm_config)
        return model.eval()


def get_model(*, vllm_config: VllmConfig) -> nn.Module:
    loader = DefaultModelLoader()
    return loader.load_model(vllm_config=vllm_config)
