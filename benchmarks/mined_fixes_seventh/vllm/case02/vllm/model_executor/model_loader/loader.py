# (benchmark cut: the other loaders, weight iteration and quantization hooks)
import torch
from torch import nn

from vllm.model_executor.model_loader.utils import set_default_torch_dtype


def _initialize_model(vllm_config, *, prefix: str = "") -> nn.Module:
    """Initialize a model with the given configurations."""
    # (benchmark cut: architecture lookup; the Llama class is used)
    from vllm.model_executor.models.llama import LlamaForCausalLM
    model_class = LlamaForCausalLM
    return model_class(vllm_config=vllm_config, prefix=prefix)


class DefaultModelLoader:
    """Model loader that can load different file types from disk."""

    def __init__(self, load_config):
        self.load_config = load_config

    def load_model(self, vllm_config) -> nn.Module:
        device_config = vllm_config.device_config
        model_config = vllm_config.model_config

        target_device = torch.device(device_config.device)
        with set_default_torch_dtype(model_config.dtype):
            with target_device:
                model = _initialize_model(vllm_config=vllm_config)

            # (benchmark cut: weight loading and post-load processing)
        return model.eval()


def get_model_loader(load_config) -> DefaultModelLoader:
    """Get a model loader based on the load format."""
    # (benchmark cut: the other load formats)
    return DefaultModelLoader(load_config)
