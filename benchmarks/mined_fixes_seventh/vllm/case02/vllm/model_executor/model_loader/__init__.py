from torch import nn

from vllm.model_executor.model_loader.loader import get_model_loader


def get_model(*, vllm_config) -> nn.Module:
    loader = get_model_loader(vllm_config.load_config)
    return loader.load_model(vllm_config=vllm_config)


__all__ = ["get_model", "get_model_loader"]
