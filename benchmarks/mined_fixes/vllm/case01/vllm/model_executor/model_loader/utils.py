import torch.nn as nn

from vllm.model_executor.models.registry import ModelRegistry


def get_model_architecture(model_config) -> tuple[type[nn.Module], str]:
    architectures = getattr(model_config.hf_config, "architectures", [])
    return ModelRegistry.resolve_model_cls(architectures)


def initialize_model(vllm_config, *, prefix: str = "", model_config=None) -> nn.Module:
    if model_config is None:
        model_config = vllm_config.model_config
    model_class, _ = get_model_architecture(model_config)
    return model_class(vllm_config=vllm_config, prefix=prefix)
