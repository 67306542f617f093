# Copyright (c) OpenMMLab. All rights reserved.

import torch
from transformers.configuration_utils import PretrainedConfig

from lmdeploy.utils import get_logger

from ..config import ModelConfig

logger = get_logger('lmdeploy')

# (benchmark cut: module map lookup helpers, _get_model_class, build_model_context, BuildModelContext,
#  _patch_quantization_config, add_adapters, update_custom_module_map)


def build_model_from_hf_config(model_config: PretrainedConfig,
                               dtype: torch.dtype = None,
                               device: torch.device = None,
                               build_model_ctx: 'BuildModelContext' = None):
    """Build model from hf config."""
    from lmdeploy.pytorch.model_inputs import StepContextManager
    ctx_mgr = StepContextManager()
    module_map = _get_module_map()
    if device is None:
        device = torch.device('cuda')
    model_cls = _get_model_class(model_config, module_map)
    with build_model_context(build_model_ctx):
        model = model_cls(model_config, ctx_mgr, dtype=dtype, device=device)
    return model.eval()


def build_patched_model(config: ModelConfig,
                        device: torch.device = None,
                        model_format: str = None,
                        build_model_ctx: 'BuildModelContext' = None):
    """Build patched model."""
    model_config = config.hf_config
    llm_config = config.llm_config
    _patch_quantization_config(llm_config, model_format)
    dtype = config.dtype
    return build_model_from_hf_config(model_config, dtype=dtype, device=device, build_model_ctx=build_model_ctx)
