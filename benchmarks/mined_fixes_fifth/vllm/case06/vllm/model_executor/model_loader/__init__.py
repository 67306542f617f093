# SPDX-License-Identifier: Apache-2.0
import torch.nn as nn

from vllm.config import VllmConfig
from vllm.model_executor.model_loader.base_loader import BaseModelLoader


def get_model(*, vllm_config: VllmConfig) -> nn.Module:
    loader = BaseModelLoader()
    return loader.load_model(vllm_config=vllm_config,
                             model_config=vllm_config.model_config)
