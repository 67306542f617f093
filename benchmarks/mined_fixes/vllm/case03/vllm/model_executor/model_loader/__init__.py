import torch
import torch.nn as nn

from vllm.config import VllmConfig
from vllm.model_executor.model_loader.utils import initialize_model


def get_model(*, vllm_config: VllmConfig) -> nn.Module:
    loader = DefaultModelLoader(vllm_config.load_config)
    return loader.load_model(vllm_config=vllm_config,
                             model_config=vllm_config.model_config)


class DefaultModelLoader:

    def __init__(self, load_config):
        self.load_config = load_config

    def load_model(self, vllm_config: VllmConfig, model_config) -> nn.Module:
        device_config = vllm_config.device_config
        target_device = torch.device(device_config.device)
        with target_device:
            model = initialize_model(vllm_config=vllm_config,
                                     model_config=model_config)
        self.load_weights(model, model_config)
        return model.eval()

    def load_weights(self, model: nn.Module, model_config) -> None:
        model.load_weights(self.get_all_weights(model_config, model))

    def get_all_weights(self, model_config, model):
        return iter(())
